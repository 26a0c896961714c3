"""Shared test helpers: relative error (NaN never passes), pattern spec strategies, device calls' results."""
import json
import os
import re
import secrets
from pathlib import Path

import numpy as np
from hypothesis import strategies as st

GPU_CALLS = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "gpu_calls"


def gpu_call(call: str, name: str) -> dict:
    """The JSON ``name`` that device call ``call`` (``callN``) brought back."""
    return json.loads((GPU_CALLS / call / name).read_text())


def sweep_ms(call: str, setting: dict, key: str = "tune_settings_0") -> list[float]:
    """fenwick's ms in each row of a ``gpu_readout.py`` call's sweep ``key`` run under exactly ``setting``, in order."""
    return [r["fenwick"] for r in gpu_call(call, "readout.json")[key]
            if {k: v for k, v in r.items() if k not in ("ssm", "fenwick")} == setting]


def anchored_rows(call: str) -> tuple[float, float, dict, dict]:
    """A ``gpu_readout.py`` call's rows: ``(fla's chunk_simple_gla forward ms, causal SDPA's forward + backward ms,
    fenwick's row, ssm's row)``."""
    rows = {r["op"]: r for r in gpu_call(call, "readout.json")["rows"]}
    return (rows["fla chunk_simple_gla"]["ms"], rows["sdpa causal"]["ms_fwd_bwd"], rows["glr_readout fenwick"],
            rows["glr_readout ssm"])


def rng_seed() -> int:
    """The ``rng`` fixture's seed: ``GLR_TEST_SEED`` where it is set (to replay a failure), else a fresh 64-bit one."""
    given = os.environ.get("GLR_TEST_SEED", "")
    if not given:
        return secrets.randbits(64)
    if not re.fullmatch(r"[0-9]+", given):
        raise ValueError(f"GLR_TEST_SEED must be a non-negative integer (a seed the tests printed), got {given!r}")
    return int(given)


def large_readout_inputs(seed: int, spec: str, d: int, n: int, device: str = "cuda"):
    """``(tables, [q, k, v, a, b], grad)`` of one head pair, drawn on ``device`` by a torch generator seeded with seed:
    q, k, v and grad standard normal ``[1, n, 2, d]``, a in [0.5, 1.5), b in (-1, 1) / (b's width) (a stable
    readout at any n)."""
    import torch

    from glrtheory import Pattern

    tables = Pattern.from_spec(spec).tables(n)
    wa, wb = tables.a_idx.shape[1], tables.b_idx.shape[1]
    g = torch.Generator(device=device).manual_seed(seed)
    xs = [torch.randn(1, n, 2, d, device=device, generator=g) for _ in range(3)]
    xs += [torch.rand(1, n, 2, wa, device=device, generator=g) + 0.5,
           (torch.rand(1, n, 2, wb, device=device, generator=g) * 2 - 1) / max(1, wb)]
    return tables, xs, torch.randn(1, n, 2, d, device=device, generator=g)


def rel_err(out, ref) -> float:
    """``||out - ref|| / ||ref||``; NaN anywhere gives NaN, which fails every ``<=`` check."""
    out, ref = np.asarray(out, dtype=np.float64), np.asarray(ref, dtype=np.float64)
    if out.shape != ref.shape:
        raise AssertionError(f"shape {out.shape} != reference shape {ref.shape}")
    denom = np.linalg.norm(ref)
    return float(np.linalg.norm(out - ref) / (denom if denom else 1.0))


BUILTIN_SPECS = ["ssm", "attention", "window:5", "lags:1,3,7", "power2", "power:3", "quadratic",
                 "exponent:0", "exponent:0.37", "exponent:1", "fenwick", "blocks", "blocks:6",
                 "kron:1,11", "kron:1,11,101", "window:3+power2", "fenwick+lags:5", "blocks:4+quadratic"]

_terms = st.one_of(
    st.sampled_from(["ssm", "attention", "power2", "quadratic", "fenwick", "blocks"]),
    st.integers(1, 40).map(lambda w: f"window:{w}"),
    st.lists(st.integers(1, 70), min_size=1, max_size=5).map(lambda ls: "lags:" + ",".join(map(str, ls))),
    st.integers(2, 7).map(lambda b: f"power:{b}"),
    st.floats(0, 1).map(lambda a: f"exponent:{a:.3f}"),
    st.integers(1, 20).map(lambda c: f"blocks:{c}"),
    st.sampled_from(["kron:1,11", "kron:1,01", "kron:1,11,111", "kron:1,01,101"]),
)
#: Random valid specs: one to three terms united.
specs = st.lists(_terms, min_size=1, max_size=3).map("+".join)
#: The awkward lengths of docs/architecture.md, plus random ones.
lengths = st.one_of(st.sampled_from([1, 2, 63, 1000]), st.integers(1, 200))


class RefusedLaunch:
    """A Triton kernel whose every launch the device refuses (``OutOfResources``, as an H200 refuses blocks' backward
    at d = 256: call63's numbers); each launch's grid is appended to ``tried``."""

    def __init__(self, tried: list):
        self.tried = tried

    def __getitem__(self, grid):
        from triton.runtime.errors import OutOfResources

        def launch(*args, **kw):
            self.tried.append(grid)
            raise OutOfResources(278528, 232448, "shared memory")
        return launch


def tables_reading_below_the_split(read: bool = True):
    """``(IndexTables, C)``: six chunks of C = 16 rows on ssm's chain (each row reads its predecessor: boundary
    states 0 .. 4 at rows 15, 31, .., 79), and with ``read`` row 49 (chunk 3) also reads row 31 (state 1) instead of
    its predecessor's own chunk row: a source below the power of two m = 2 that would balance a split walk."""
    from glrtheory.patterns.tables import IndexTables

    C, nc = 16, 6
    t = np.arange(C * nc)
    b = np.full((C * nc, 2), -1)
    b[1:, 0] = t[1:] - 1
    b[3 * C + 1] = [2 * C - 1, 3 * C] if read else [3 * C, -1]
    return IndexTables(t[:, None], b), C


def one_line_error(err: str, prog: str = "glr") -> str:
    """The one line of a command's stderr, which must start ``{prog}: error: ``."""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{prog}: error: "), err
    return lines[0]


def run_cli(capsys, *argv):
    """``glr`` with argv in this process: (exit code, stdout, stderr)."""
    from glrtheory.cli import main

    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err
