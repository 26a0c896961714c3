"""glr_scan (the public torch API) refuses malformed index tables with a GLRError whose message names
the table, the row and the rule it breaks (the argument checks are in test_kernels_torch.py)."""
import re

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from glrtheory import GLRError, Pattern  # noqa: E402
from glrtheory.kernels.torch import glr_scan  # noqa: E402

N = 10


def _bad_tables():
    a_idx, b_idx = (np.array(x) for x in Pattern.from_spec("power2").tables(N))
    unsorted, late, dup = b_idx.copy(), b_idx.copy(), b_idx.copy()
    unsorted[9, :2] = b_idx[9, 1::-1]
    late[5] = [-1, 4] + [-1] * (b_idx.shape[1] - 2)
    dup[5, :2] = 3
    return [
        ((a_idx, b_idx + 20), r"b_idx\[0, 0\] = 19 is out of range \(needs -1 or 0 <= s < t, t = 0\)"),
        ((a_idx, np.where(b_idx >= 0, np.arange(N)[:, None], -1)), r"b_idx\[1, 0\] = 1 is out of range"),
        ((a_idx, unsorted), r"b_idx row 9 is not strictly increasing: \[5, 1, 7, 8\]"),
        ((a_idx, dup), r"b_idx row 5 is not strictly increasing"),
        ((a_idx, late), r"b_idx row 5 has an entry after its -1 padding"),
        ((a_idx.astype(float), b_idx), r"a_idx must be an integer index table, got dtype float64"),
        ((a_idx[:-1], b_idx), r"b_idx must have shape \[n=9, w\], got \(10, 4\)"),
        ((a_idx[:, :, None], b_idx), r"a_idx must have shape"),
        (a_idx, r"tables must be the pair \(a_idx, b_idx\)"),
        ((list(map(list, a_idx[:-1])) + [[9, 9]], b_idx), r"a_idx is ragged: every row must have one width w"),
        ((torch.as_tensor(a_idx).to("meta"), b_idx), r"a_idx is a meta tensor, which holds no values"),
    ]


@pytest.mark.parametrize("case", range(len(_bad_tables())))
def test_bad_tables_are_named(case):
    tables, message = _bad_tables()[case]
    g = torch.Generator().manual_seed(case)
    u = torch.randn(2, N, 2, 3, dtype=torch.float64, generator=g)
    a = torch.randn(2, N, 2, 1, dtype=torch.float64, generator=g)
    b = torch.randn(2, N, 2, 4, dtype=torch.float64, generator=g)
    with pytest.raises(GLRError, match=message):
        glr_scan(u, a, b, tables)


def test_lags_must_describe_their_tables():
    """IndexTables' lags stand in for a side's table in the Triton scan: lags that do not give the table are refused
    (b_lags [2] with ssm's table ran, 0.086 off, on the Triton backend), lags past the table's rows dropped."""
    from glrtheory.patterns.tables import IndexTables
    t = Pattern.from_spec("power2").tables(N)
    assert IndexTables(t.a_idx, t.b_idx, [0], [1, 2, 4, 8, 16]).lags("b").tolist() == [1, 2, 4, 8]
    for bad in ([2, 4, 8], [1, 2], [1, 3, 4, 8]):
        with pytest.raises(GLRError, match=re.escape(f"b_lags {bad} do not describe their table")):
            IndexTables(t.a_idx, t.b_idx, [0], bad)
    with pytest.raises(GLRError, match=r"a_lags \[0, 1\] do not describe their table"):
        IndexTables(t.a_idx, t.b_idx, [0, 1], [1, 2, 4, 8])
    for spec in ("ssm", "attention", "window:5", "lags:1,3,8", "quadratic"):      # a pattern's own lags pass
        for n in (1, 2, 63):
            tables = Pattern.from_spec(spec).tables(n)
            IndexTables(*tables, tables.lags("a"), tables.lags("b"))


def test_backend_must_be_a_name():
    tables = Pattern.from_spec("ssm").tables(4)
    u, a = torch.randn(1, 4, 1, 2), torch.rand(1, 4, 1, 1)
    with pytest.raises(GLRError, match=r"backend must be one of .* or None, got \['chunk'\]"):
        glr_scan(u, a, a, tables, backend=["chunk"])


def test_a_backend_for_another_device_says_so():
    """backend='triton' with CPU tensors names the devices it runs on (it said "cpu runs none")."""
    tables = Pattern.from_spec("ssm").tables(4)
    u, a = torch.randn(1, 4, 1, 2), torch.rand(1, 4, 1, 1)
    with pytest.raises(GLRError, match="backend 'triton' runs on cuda tensors, not on cpu"):
        glr_scan(u, a, a, tables, backend="triton")
