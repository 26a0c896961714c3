"""The claims notebook runs, and docs/claims.md, the README and the committed outputs state its verdicts."""
import ast
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "the_papers_claims.ipynb"
VERDICTS = {"confirmed", "refined", "refuted", "inconclusive"}


def verdicts_of(nb) -> dict:
    """The JSON object printed by the last code cell: claim -> verdict."""
    last = [c for c in nb.cells if c.cell_type == "code"][-1]
    text = "".join(o.get("text", "") for o in last.get("outputs", []) if o.get("output_type") == "stream")
    return json.loads(text.splitlines()[0])


def table_verdicts(text: str) -> dict:
    """Rows ``| claim | ... | **verdict**[: condition] | ...`` of a markdown table."""
    return dict(re.findall(r"^\| ([0-9][\w-]*) \|.*?\| \*\*(\w+)\*\*[^|]*\|", text, flags=re.M))


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path_factory.mktemp("claims"))}}).execute()
    return nb


def test_every_claim_gets_a_verdict(executed):
    v = verdicts_of(executed)
    assert set(v) == {"1", "2", "3", "3-reading", "4", "5", "6", "7"}
    assert set(v.values()) <= VERDICTS


def test_the_ledger_and_the_readme_state_the_computed_verdicts(executed):
    v = verdicts_of(executed)
    assert table_verdicts((ROOT / "docs" / "claims.md").read_text()) == v
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## The paper's claims", 1)[1].split("\n## ", 1)[0]
    assert table_verdicts(section) == v


def test_committed_outputs_are_current(executed):
    """The notebook is committed executed, with its figures, and its saved verdicts are today's."""
    nbformat = pytest.importorskip("nbformat")
    committed = nbformat.read(NOTEBOOK, as_version=4)
    code = [c for c in committed.cells if c.cell_type == "code"]
    assert all(c.get("execution_count") for c in code), "commit the notebook executed, with its outputs"
    images = [o for c in code for o in c.outputs if "image/png" in o.get("data", {})]
    assert len(images) >= 3
    assert not [o for c in code for o in c.outputs if o.get("output_type") == "error"]
    assert verdicts_of(committed) == verdicts_of(executed)


def test_the_ledger_counts_the_settings_the_notebook_counts(executed):
    """Claims 6 and 7: the number of comparisons (a pattern against ssm in one setting) beyond the seed spread,
    and the lab's capacity verdicts, that docs/claims.md states are the notebook's."""
    printed = "".join(o.get("text", "") for c in executed.cells if c.cell_type == "code" for o in c.get("outputs", [])
                      if o.get("output_type") == "stream")
    ledger = " ".join((ROOT / "docs" / "claims.md").read_text().split())
    claim6 = printed[printed.index("differences in accuracy, pattern minus ssm"):printed.index("claim 6: ")]
    gains, lost = (len(re.findall(rf"^  {kind} beyond the seed spread ", claim6, re.M)) for kind in ("gain", "loss"))
    losses = int(re.search(r"claim 7: refuted \((\d+) comparisons worse beyond the seed spread", printed).group(1))
    assert f"beat `ssm` beyond the seed spread in {gains} comparisons" in ledger
    stated = re.findall(r"lose to `ssm` beyond the seed spread in (\d+) comparisons?", ledger)
    assert [int(x) for x in stated] == ([lost] if lost else [])
    verdicts = ast.literal_eval(re.search(r"\(capacity predictions\): (\{.*\})", printed).group(1))
    refuted = verdicts.get("refuted", 0)
    assert (f"capacity predictions over these sweeps: {verdicts.get('confirmed', 0)} confirmed, "
            f"{verdicts.get('inconclusive', 0)} inconclusive, {refuted or 'none'} refuted") in ledger
    chance = re.findall(r"^chance alone .*: about ([0-9.]+) of the (\d+) comparisons", printed, re.M)
    assert len(chance) == 2
    assert f"about {chance[0][0]} of the {chance[0][1]} comparisons with two seeds or more a side" in ledger
    assert f"about {chance[1][0]} of these {chance[1][1]} comparisons cross the spread" in ledger
    assert f"about {chance[0][0]} of the {chance[0][1]} comparisons each way" in (ROOT / "README.md").read_text()
    words = ["no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"]
    assert f"No comparison gains and {words[losses] if losses < len(words) else losses} lose" in ledger
