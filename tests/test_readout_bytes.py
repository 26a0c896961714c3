"""``benchmarks/readout_bytes.py``: the tensor sizes it counts are those of the tensors the readout's plan allocates
(fenwick's solved, diagonal path, under the Triton interpreter), and docs/gpu_readout.md's floor table and README's
floor are what it computes from ``call114``'s profile."""
import json
import re
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("triton")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from readout_bytes import fused_forward_bytes, measured_ms, solved_forward_bytes, tensor_bytes  # noqa: E402

from glrtheory.kernels.scan import readout_triton  # noqa: E402
from glrtheory.kernels.scan.readout_plan import aligned_layout  # noqa: E402
from tests.test_readout_triton import DEVICE, inputs  # noqa: E402


@pytest.mark.parametrize("block", [16, 32])
def test_sizes_are_the_plans_tensors(rng, monkeypatch, block):
    """fenwick at T = 300 (19 boundary states), chunks of 16, 2 heads, d = 8: every size ``tensor_bytes`` counts
    equals the nbytes of the tensor the plan's forward allocates or reads (a and b in float32, as ``glr_readout``
    casts them)."""
    monkeypatch.setitem(readout_triton._setting(), "boundary_block", block)
    monkeypatch.setitem(readout_triton._setting(), "min_solved", 1)
    tables, low, _ = inputs(rng, "fenwick", 300, torch.bfloat16, H=2, dk=8, dv=8)
    q, k, v, a, b = low[:3] + [x.float() for x in low[3:]]
    plan = readout_triton._plan(q, k, v, a, b, aligned_layout(tables, 16))
    assert plan.solves and plan.diagonal
    o, _, ecoef, states, inverses, upper, *_ = plan.forward(q, k, v, a, b)
    lower = plan.boundary_inverses(ecoef, q)[1]
    got = tensor_bytes("fenwick", 1, 300, 2, 8, 16, block)
    tab = plan.tab
    assert tab["x_col"].nbytes == got["b_table"]
    real = dict(rows=q.nbytes, a=a.nbytes, b=b.nbytes, inverses=inverses.nbytes, ecoef=ecoef.nbytes,
                states=states.nbytes, e_rows=ecoef.view(2, -1, plan.sizes[8])[:, tab["b_flat"]].nbytes,
                diagonal=torch.empty(plan.diagonal_shape).nbytes, upper=upper.nbytes, lower=lower.nbytes,
                b_table=tab["b_idx"].nbytes, b_src=tab["b_src"].nbytes, b_flat=tab["b_flat"].nbytes)
    assert o.nbytes == q.nbytes and {key: got[key] for key in real} == real


def copy_gbps() -> float:
    """The copy bandwidth of ``call39`` (GB/s), the floors' measure."""
    result = json.loads((ROOT / "benchmarks" / "results" / "gpu_calls" / "call39" / "gpu_triton.json").read_text())
    return next(r for r in result["rows"] if r["op"] == "copy u->h")["GB_per_s"]


def test_the_floor_table_is_computed_from_call114():
    """Each row of the page's table: the launch's MB from ``solved_forward_bytes`` at the benchmark's shape, its ms
    from ``call114``'s profile and the GB/s they give; the total, and its floor at call39's copy bandwidth against
    1.5x fla's forward of call114."""
    calls = ROOT / "benchmarks" / "results" / "gpu_calls"
    result = json.loads((calls / "call114" / "readout.json").read_text())
    ms = measured_ms(result["profile"]["fenwick"])
    got = solved_forward_bytes("fenwick", 2, 16384, 16, 128, 64)
    text = " ".join((ROOT / "docs" / "gpu_readout.md").read_text().split())
    copy = copy_gbps()
    for key, n in got.items():
        assert (f"| {key} | {n / 1e6:.1f} | {ms[key]:.3f} | {n / ms[key] / 1e6:.0f} | {n / copy / 1e6:.3f} |"
                in text), key
    fla = next(r["ms"] for r in result["rows"] if r["op"] == "fla chunk_simple_gla")
    total = sum(got.values())
    assert (f"{total / 1e6:.1f} MB in all, {total / copy / 1e6:.3f} ms at the copy bandwidth of `call39` "
            f"({copy:.0f} GB/s), where 1.5x fla's forward of `call114` is {1.5 * fla:.3f} ms") in text
    assert total / copy / 1e6 < 1.5 * fla < sum(ms.values())
    assert f"would take {total / copy / 1e6 / (1.5 * fla):.0%} of the time the target allows" in text
    readme = " ".join((ROOT / "README.md").read_text().split())
    assert (f"its launches move at least {total / 1e6:.1f} MB, {total / copy / 1e6:.3f} ms at the measured copy "
            f"bandwidth, where the target allows {1.5 * fla:.3f} ms") in readme
    assert re.search(r"\| product \| [\d.]+ \| [\d.]+ \| 39\d\d \|", text)                 # at the copy's pace


def test_the_group_lead_counts_against_these_bytes():
    """``proofs/fenwick_group_heads.py``'s numbers at the benchmark's shape: the MB it saves are the states the
    product moves (its bytes here less the inverse it reads) less the heads' pass (1 / 16 of them), and the total it
    quotes is this module's."""
    from proofs import fenwick_group_heads as lead
    shape = ("fenwick", 2, 16384, 16, 128, 64)
    solved = solved_forward_bytes(*shape)
    total = sum(solved.values())
    product_states = solved["product"] - tensor_bytes(*shape)["lower"]
    assert lead.bytes_saved() == pytest.approx(product_states * (1 - 1 / 16) / 1e6, rel=1e-12)
    doc = " ".join(lead.__doc__.split())
    assert f"{lead.bytes_saved():.0f} MB at G = 16, of the {total / 1e6:.0f} MB" in doc
    calls, copy = ROOT / "benchmarks" / "results" / "gpu_calls", copy_gbps()
    fla = next(r["ms"] for r in json.loads((calls / "call125" / "readout.json").read_text())["rows"]
               if r["op"] == "fla chunk_simple_gla")
    floor = (total - lead.bytes_saved() * 1e6) / copy / 1e6
    text = " ".join((ROOT / "docs" / "gpu_readout.md").read_text().split())
    assert (f"{lead.bytes_saved():.0f} MB fewer of the {total / 1e6:.1f} MB above, a floor of {floor:.3f} ms at the "
            f"copy bandwidth in place of {total / copy / 1e6:.3f}, where 1.5x fla's forward of `call125` is "
            f"{1.5 * fla:.3f} ms: {floor / (1.5 * fla):.0%} of the time the target allows in place of "
            f"{total / copy / 1e6 / (1.5 * fla):.0%}") in text
    assert floor < total / copy / 1e6 < 1.5 * fla
    readme = " ".join((ROOT / "README.md").read_text().split())
    assert (f"That moves {lead.bytes_saved():.0f} MB fewer: a floor of {floor:.3f} ms at the copy bandwidth in place "
            f"of {total / copy / 1e6:.3f}") in readme


def test_the_fused_lead_counts_against_these_bytes():
    """``fused_forward_bytes``: step 1 as today but E_PP's blocks, and one walk that reads what today's chunk output
    reads and writes H in place of reading it; the pages' MB, floor and share of the target from it, call39's copy
    bandwidth and call137's fla."""
    shape = ("fenwick", 2, 16384, 16, 128, 64)
    t, solved = tensor_bytes(*shape), solved_forward_bytes(*shape)
    fused = fused_forward_bytes(*shape)
    assert fused["walk and output"] == solved["chunk_output"]
    assert fused["chunk_inverse"] == solved["chunk_inverse"] - t["e_rows"] - t["b_src"] - t["diagonal"]
    lean = sum(fused_forward_bytes(*shape, keep_states=False).values())
    total, today = sum(fused.values()), sum(solved.values())
    assert total - lean == t["states"]
    fla = next(r["ms"] for r in json.loads((ROOT / "benchmarks" / "results" / "gpu_calls" / "call137" /
                                            "readout.json").read_text())["rows"] if r["op"] == "fla chunk_simple_gla")
    floor, allowed = total / copy_gbps() / 1e6, 1.5 * fla
    text = " ".join((ROOT / "docs" / "gpu_readout.md").read_text().split())
    assert (f"counts {total / 1e6:.1f} MB for such a forward with today's step 1 ({lean / 1e6:.1f} MB without writing "
            f"H), against {today / 1e6:.1f} MB today: {floor:.3f} ms at the copy bandwidth, where 1.5x fla's forward "
            f"of `call137` is {allowed:.3f} ms: {floor / allowed:.0%} of the time the target allows") in text
    readme = " ".join((ROOT / "README.md").read_text().split())
    assert (f"counts {total / 1e6:.1f} MB for it against {today / 1e6:.1f} MB today: a floor of {floor:.3f} ms at the "
            f"copy bandwidth, where the target allows {allowed:.3f}") in readme
    from proofs.fenwick_level_slots import slot_walk
    from glrtheory import Pattern
    assert slot_walk(aligned_layout(Pattern.from_spec("fenwick").tables(16384), 64)) == 9
    assert "9 at P = 256" in text and "(9 at this shape)" in readme
    layouts = sum(1025 - C + 1 for C in (4, 8, 16, 64))             # the proof's (n, C): n = 1 .. 1025, C <= n
    assert f"checks the slots exactly on {layouts} layouts" in text


def test_fused_and_profile_exclude_each_other(capsys):
    from readout_bytes import main
    with pytest.raises(SystemExit) as e:
        main(["--fused", "--profile", "x.json"])
    assert e.value.code == 2 and "not built" in capsys.readouterr().err
    assert main(["--fused"]) == 0 and "walk and output" in capsys.readouterr().out


@pytest.mark.parametrize("T, chunk, D", [(16384, 64, 128), (4096, 16, 32), (1024, 64, 64)])
def test_product_flops_are_the_proofs_counts(T, chunk, D):
    """``product_flops``' chunk output is the multiply-adds ``proofs/fenwick_readout_work.py`` derives (``R(k)`` reads
    over ``|P| = T / C = 2^k`` boundary states, ``|P| + 1`` chunks), twice, for 2 x 3 heads; ``boundary_local`` one
    ``C x D x D`` product a boundary state, the product ``|P|^2 D^2``; fla's count is that chunk output with one
    state read a chunk plus a ``K^T V`` a chunk, over ``T / C`` chunks."""
    from readout_bytes import fla_flops, product_flops
    from proofs.fenwick_readout_work import reads_formula, work

    P = T // chunk
    k = P.bit_length() - 1
    got = product_flops("fenwick", 2, T, 3, D, chunk)
    assert got["chunk_output"] == 2 * 6 * work(P + 1, int(reads_formula(k)), chunk, D, D)
    assert got["boundary_local"] == 2 * 6 * P * chunk * D * D and got["product"] == 2 * 6 * P * P * D * D
    assert fla_flops(2, T, 3, D, chunk) == 2 * 6 * (work(P, P, chunk, D, D) + P * chunk * D * D)


@pytest.mark.parametrize("flags", [["--flops"], []])
def test_counts_refuse_patterns_whose_launches_they_do_not_model(capsys, flags):
    """ssm's boundary states are walked (other launches), power2 gets the tiled readout: the FLOP and the byte counts
    refuse both in one line (exit 2; the bytes once printed 2326 MB of launches ssm never runs), and count fenwick's."""
    from readout_bytes import main
    for spec, says in (("ssm", "ssm's boundary states are not solved for"),
                       ("power2", "power2 at T = 16384 gets the tiled_mixing readout")):
        with pytest.raises(SystemExit) as e:
            main(flags + ["--spec", spec])
        assert e.value.code == 2 and says in capsys.readouterr().err
    assert main(flags) == 0 and ("x fla's" if flags else "2463.7 MB") in capsys.readouterr().out


def test_flop_rates_of_call154_are_quoted():
    """docs/gpu_readout.md's and README's FLOP accounting of ``call154``: fenwick's forward's products against
    fla's, both rates, and the rate 1.5x fla's time would need, from the JSON and ``product_flops``."""
    from readout_bytes import fla_flops, product_flops

    run = json.loads((ROOT / "benchmarks" / "results" / "gpu_calls" / "call154" / "readout.json").read_text())
    ms = {r["op"]: r.get("ms") for r in run["rows"]}
    ours, fla_ms = ms["glr_readout fenwick"], ms["fla chunk_simple_gla"]
    flops, fla = product_flops("fenwick", 2, 16384, 16, 128, 64), fla_flops(2, 16384, 16, 128)
    total, lower = sum(flops.values()), sum(flops.values()) - flops["product"] / 2
    kernel_ms = measured_ms(run["profile"]["fenwick"])
    text = " ".join((ROOT / "docs" / "gpu_readout.md").read_text().split())
    assert (f"{total / 1e9:.1f} GFLOP of products against fla's {fla / 1e9:.1f} ({total / fla:.2f}x; "
            f"{lower / fla:.2f}x counting only the lower triangle of the dense product), at "
            f"{total / ours / 1e9:.0f} TFLOP/s against fla's {fla / fla_ms / 1e9:.0f}") in text
    assert (f"would need {total / (1.5 * fla_ms) / 1e9:.0f} TFLOP/s, "
            f"{total / (1.5 * fla_ms) / (fla / fla_ms):.1f} times fla's rate") in text
    rate = {k: f"{flops[k] / 1e9:.1f} at {flops[k] / kernel_ms[k] / 1e9:.0f}" for k in flops}
    rate["chunk_output"] = rate["chunk_output"].replace(" at", " GFLOP at")
    assert (f"the chunk output {rate['chunk_output']} TFLOP/s, most of it Q times about five boundary states a "
            f"chunk, `boundary_local` {rate['boundary_local']}, cuBLAS's product {rate['product']}.") in text
    readme = " ".join((ROOT / "README.md").read_text().split())
    assert (f"run {total / 1e9:.1f} GFLOP of tensor-core products ({total / fla:.2f}x the {fla / 1e9:.1f} of fla's "
            f"`chunk_simple_gla`; {lower / fla:.2f}x without the zeros of the dense boundary product) at "
            f"{total / ours / 1e9:.0f} TFLOP/s, where fla's run at {fla / fla_ms / 1e9:.0f}. fenwick {ours:.3f} ms "
            f"against fla's {fla_ms:.3f} ({ours / fla_ms:.2f}x, **not met**): within 1.5x would need "
            f"{total / (1.5 * fla_ms) / 1e9:.0f} TFLOP/s from launches whose chunk output reaches "
            f"{flops['chunk_output'] / kernel_ms['chunk_output'] / 1e9:.0f}") in readme
