"""``glr catalog``: the table's numbers come from glrtheory.analysis and glrtheory.symbolic.costs."""
import json

import pytest

from glrtheory import Pattern
from glrtheory.analysis import cache_peak, decode_costs, total_cost
from glrtheory.catalog import ENTRIES, INEXPRESSIBLE, OPERATOR_ENTRIES, levels
from helpers import run_cli as run
from glrtheory.symbolic.costs import theta


@pytest.mark.parametrize("n", [1, 2, 63, 1000])
def test_json_rows_match_analysis(capsys, n):
    code, out, _ = run(capsys, "catalog", "--json", "--n", str(n))
    assert code == 0
    rows = json.loads(out)
    assert [r["name"] for r in rows] == [e.name for e in ENTRIES + OPERATOR_ENTRIES for _ in e.example.split("|")]
    assert {r["coefficients"] for r in rows if r["name"] in ("delta_net", "gated_delta_net")} == {"operator"}
    for r in rows:
        p = Pattern.from_spec(r["example"])
        c = levels(n) if r["name"] == "log_linear_attention" else 1
        assert r["copies"] == c and r["n"] == n
        assert r["decode_max"] == c * int(decode_costs(p, n).max())
        assert r["cache_peak"] == c * cache_peak(p, n)
        assert r["total"] == c * total_cost(p, n)
        if r["name"] != "log_linear_attention":
            assert {k: r[k] for k in ("theta_total", "theta_decode", "theta_cache")} == theta(p)
    ll = next(r for r in rows if r["name"] == "log_linear_attention")
    assert (ll["theta_total"], ll["theta_decode"], ll["theta_cache"]) == ("n*log(n)", "log(n)", "log(n)")


def test_text_table_and_inexpressible(capsys):
    code, out, _ = run(capsys, "catalog")
    assert code == 0 and "n = 1024" in out
    for e in ENTRIES:
        assert e.name in out
    assert "delta_net (op)" in out
    assert "ssm x11" in out and "power2" in out and "quadratic" in out
    code, out, _ = run(capsys, "catalog", "--inexpressible", "--json")
    assert code == 0 and [x["name"] for x in json.loads(out)] == [x.name for x in INEXPRESSIBLE]
    code, out, _ = run(capsys, "catalog", "--inexpressible")
    assert "DeltaNet" in out


def test_bad_length_is_one_line_error(capsys):
    code, out, err = run(capsys, "catalog", "--n", "0")
    assert code == 2 and err.startswith("glr: error:") and len(err.strip().splitlines()) == 1
