"""Every notebook in notebooks/ executes top to bottom without an error, and prints what its committed copy shows."""
import copy
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))
#: test_claims_notebook.py executes the claims notebook itself (and checks what it prints).
RUN_HERE = [p for p in NOTEBOOKS if p.stem != "the_papers_claims"]


def printed(nb) -> list[str]:
    """Each code cell's text: what it printed and the value it showed (figures left out)."""
    return ["".join(o.get("text", "") if o.get("output_type") == "stream" else o.get("data", {}).get("text/plain", "")
                    for o in c.get("outputs", [])) for c in nb.cells if c.cell_type == "code"]


@pytest.mark.parametrize("path", RUN_HERE, ids=[p.stem for p in RUN_HERE])
def test_notebook_runs(path, tmp_path):
    """It runs, and its text outputs are today's: a committed output the code no longer gives is stale."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    committed = nbformat.read(path, as_version=4)
    nb = copy.deepcopy(committed)
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()  # raises CellExecutionError on the first failing cell
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors
    stale = [i for i, (old, new) in enumerate(zip(printed(committed), printed(nb))) if old != new]
    assert not stale, f"code cells {stale} print otherwise now: execute the notebook and commit it"


def test_there_are_notebooks():
    assert NOTEBOOKS, "notebooks/ holds the project's exploration notebooks"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_is_committed_with_outputs(path):
    """The committed file reads well on a repository page: every code cell ran (no errors), figures are
    inline PNGs, and no cell switches matplotlib to a non-interactive back-end."""
    nbformat = pytest.importorskip("nbformat")
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(c.get("execution_count") for c in code), "execute and save the notebook"
    outputs = [o for c in code for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert not any("matplotlib.use(" in c.source for c in code)
    if any("matplotlib" in c.source for c in code):
        assert any("image/png" in o.get("data", {}) for o in outputs), "figures must show inline"
