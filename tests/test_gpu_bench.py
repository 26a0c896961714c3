"""The GPU benchmark scripts' functions, on the CPU at tiny sizes: their rows carry the fields the device
run's JSON needs, and every verdict is computed from the numbers (a faster or slower fake row flips it)."""
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("triton")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import gpu_bench  # noqa: E402
import gpu_decode  # noqa: E402
import gpu_tiled  # noqa: E402
import gpu_fla  # noqa: E402
import gpu_lab_step  # noqa: E402
import gpu_layer  # noqa: E402
import gpu_readout  # noqa: E402
import gpu_session  # noqa: E402

from glrtheory import Pattern  # noqa: E402
from glrtheory.analysis import cache_peak  # noqa: E402
from glrtheory.kernels.torch import readout_algorithm  # noqa: E402

TINY = dict(B=1, T=16, d_model=8, heads=2)
#: For the tests of a script's CPU run as CI makes it: no CUDA, so the Triton kernels interpreted (conftest turns the
#: interpreter on only there) and no CUDA graph to capture. On the H200 the same runs differ (call126: these five
#: tests failed there).
interpreted_run = pytest.mark.skipif(torch.cuda.is_available(),
                                     reason="a script's CPU run as CI makes it: Triton interpreted, no CUDA graphs")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_layer_rows_and_verdicts_on_the_cpu():
    result = gpu_layer.run(("ssm", "fenwick"), **TINY, device="cpu")
    rows = result["rows"]
    mha = [r for r in rows if r["op"].startswith("nn.MultiheadAttention")]
    assert [r["precision"] for r in mha] == ["float32", "bf16 autocast"]
    assert all(r["ms_fwd"] > 0 and r["ms_fwd_bwd"] > 0 for r in mha)
    for spec in ("ssm", "fenwick"):
        ours = [r for r in rows if r.get("spec") == spec]
        assert ours[0]["precision"] == "bf16 autocast"
        assert all(r["readout_algorithm"] == readout_algorithm(Pattern.from_spec(spec).tables(16))[0] for r in ours)
        timed = [r for r in ours if "ms_fwd_bwd" in r]
        assert len(timed) == 1 and all("error" in r for r in ours if r is not timed[0])  # fallback after an error
        verdict = [v for v in result["verdicts"] if v["spec"] == spec]
        anchor = next(r for r in mha if r["precision"] == timed[0]["precision"])
        assert verdict[0]["fwd_bwd_over_mha"] == pytest.approx(timed[0]["ms_fwd_bwd"] / anchor["ms_fwd_bwd"])
        assert verdict[0]["peak_at_most_4gib"] is None and verdict[0]["targets_met"] is None  # no CUDA peak


def test_layer_rows_in_float32_too():
    """``float32``: each of our layers is also timed without autocast, and its verdict is against attention's float32
    row."""
    result = gpu_layer.run(("ssm",), **TINY, device="cpu", modes=(), float32=True)
    ours = [r for r in result["rows"] if r.get("spec") == "ssm"]
    assert [r["precision"] for r in ours] == ["bf16 autocast", "float32"] and all(r["ms_fwd_bwd"] > 0 for r in ours)
    mha = {r["precision"]: r for r in result["rows"] if r["op"].startswith("nn.MultiheadAttention")}
    verdicts = {v["precision"]: v for v in result["verdicts"] if v["spec"] == "ssm"}
    for precision, row in zip(("bf16 autocast", "float32"), ours):
        over = row["ms_fwd_bwd"] / mha[precision]["ms_fwd_bwd"]
        assert verdicts[precision]["fwd_bwd_over_mha"] == pytest.approx(over)


@interpreted_run
def test_rows_alone_run_in_a_fresh_process():
    """``row_alone`` runs ``--row NAME --mode MODE`` in another process and reads its row back: on the CPU the
    CUDA-graph capture itself fails, and the row says so (the graph needs CUDA); a name that is no layer fails
    in the child too, by name; ``torch.compile`` runs on the CPU and times the layer."""
    row = gpu_layer.row_alone("graph", "ssm", **TINY, device="cpu", rep=1)
    assert row["op"] == "GLRMixer ssm readout" and row["precision"] == gpu_layer.GRAPHED and "error" in row
    bad = gpu_layer.row_alone("graph", "no_such_spec", **TINY, device="cpu", rep=1)
    assert "no_such_spec" in bad["error"] and "ms_fwd_bwd" not in bad
    compiled = gpu_layer.row_alone("compile", "ssm", **TINY, device="cpu", rep=1)
    assert compiled["precision"] == gpu_layer.COMPILED and "error" not in compiled
    assert compiled["ms_fwd"] > 0 and compiled["ms_fwd_bwd"] > 0
    verdict, = gpu_layer.verdicts([compiled, dict(op="nn.MultiheadAttention causal", precision="bf16 autocast",
                                                  ms_fwd_bwd=2.0)])
    assert verdict["fwd_bwd_over_mha"] is None                  # no compiled attention row
    assert verdict["fwd_bwd_over_eager_mha"] == pytest.approx(compiled["ms_fwd_bwd"] / 2.0)


@interpreted_run
def test_host_profile_names_where_the_layer_spends(tmp_path):
    """``gpu_layer.py --host-profile``: per-iteration calls and microseconds of the top 40 profiled functions,
    sorted by own time (each within its cumulative time), and the JSON written."""
    out = tmp_path / "host.json"
    assert gpu_layer.main(["--host-profile", "ssm", "--device", "cpu", "--shape", "1,16,8,2", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    rows = result["functions"]
    assert result["op"] == "GLRMixer ssm readout" and result["wall_us_per_iter"] > 0 and len(rows) == 40
    assert [r["own_us"] for r in rows] == sorted((r["own_us"] for r in rows), reverse=True)
    assert all(r["calls"] > 0 and 0 <= r["own_us"] <= r["cumulative_us"] * (1 + 1e-9) for r in rows)
    assert gpu_layer.main(["--host-profile", "ssm", "--device", "cpu", "--shape", "1,16,8,2", "--sort", "cumulative",
                           "--out", str(out)]) == 0
    rows = json.loads(out.read_text())["functions"]
    for r in rows:                  # each call path within the function's cumulative time, the largest first
        for side in ("callers", "callees"):
            paths = [p["cumulative_us"] for p in r[side]]
            assert len(paths) <= 5 and paths == sorted(paths, reverse=True)
            assert all(0 <= p <= r["cumulative_us"] * (1 + 1e-9) for p in paths), (r, side)
    step = rows[0]                                  # the profiled step itself: its forward, then its backward
    assert step["function"].endswith(":forward_backward") and step["callers"] == []
    assert {p["function"].rsplit(":", 1)[1] for p in step["callees"]} == {"forward", "backward"}
    paths = {(p["function"], r["function"]): p["cumulative_us"] for r in rows for p in r["callers"]}
    both = [(r["function"], p["function"], p["cumulative_us"]) for r in rows for p in r["callees"]
            if (r["function"], p["function"]) in paths]
    assert len(both) >= 10 and all(paths[f, g] == us for f, g, us in both)   # one path, seen from both ends


def test_host_ops_names_each_ops_host_time(tmp_path):
    """``gpu_layer.py --host-ops``: per step, each op's calls and own and total host microseconds, by own time; our
    layer's readout shows as its autograd function (``Blockwise`` on the CPU at this size) and attention's as
    attention."""
    for name, expect in (("ssm", "Blockwise"), ("attention", "attention")):
        out = tmp_path / f"{name}.json"
        assert gpu_layer.main(["--host-ops", name, "--device", "cpu", "--shape", "1,16,8,2", "--out", str(out)]) == 0
        result = json.loads(out.read_text())
        rows = result["ops"]
        assert (result["op"] == name and len(rows) == 40
                and result["self_us_per_step"] >= sum(r["self_us"] for r in rows))
        assert [r["self_us"] for r in rows] == sorted((r["self_us"] for r in rows), reverse=True)
        assert all(r["calls"] > 0 and 0 <= r["self_us"] <= r["total_us"] * (1 + 1e-9) for r in rows)
        assert any(expect in r["op"] for r in rows)


def test_bench_on_the_cpu_times_one_call_after_the_warm_up(monkeypatch):
    """``gpu_common.bench`` on the CPU: two calls (the warm-up, then the one timed) and the second's time, not the
    first's (a warm-up that compiles must not count)."""
    import gpu_common
    times = iter([50.0, 7.0, 9.0, 11.0])
    monkeypatch.setattr(gpu_common, "_call_ms", lambda fn, device: (fn(), next(times))[1])
    calls = []
    assert gpu_common.bench(lambda: calls.append(1), rep=100, device="cpu") == 7.0 and len(calls) == 2
    assert "on the CPU (the scripts' own smoke runs) one wall-clock call" in gpu_common.TIMING


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_host_ms_is_the_hosts_own_time_and_shows_a_sync():
    """``gpu_common.host_ms``: a launch costs the host well under the device's busy time; a call that waits on the
    device shows as at least ``HOST_BUSY_MS`` over the calls timed in a row."""
    from gpu_common import HOST_BUSY_MS, host_ms
    x = torch.ones(1024, device="cuda")
    assert host_ms(lambda: x.add_(1), "cuda") < HOST_BUSY_MS / 100
    assert host_ms(lambda: x.sum().item(), "cuda", calls=1) > HOST_BUSY_MS * 0.8
    assert host_ms(lambda: x.sum().item(), "cuda", calls=4) > HOST_BUSY_MS * 0.8 / 4
    assert host_ms(lambda: None, "cpu") is None


def test_launch_bench_refuses_without_cuda_and_runs_with_it(tmp_path):
    """``gpu_launch.py`` measures CUDA launches: without CUDA it refuses (exit 2); with it every row has a host time
    or an error, and a direct launch of a compiled kernel costs the host less than one through Triton's JIT."""
    import gpu_launch
    out = tmp_path / "launch.json"
    if not torch.cuda.is_available():
        with pytest.raises(SystemExit) as exit_info:
            gpu_launch.main(["--out", str(out)])
        assert exit_info.value.code == 2 and not out.exists()
        return
    assert gpu_launch.main(["--out", str(out)]) == 0
    rows = json.loads(out.read_text())["rows"]
    assert all(r.get("host_us", 0) > 0 for r in rows), rows
    launches = {(r["op"], r["launch"]): r["host_us"] for r in rows if "launch" in r}
    assert launches[("triton kernel, 16 tensors + 8 ints", "direct")] < launches[
        ("triton kernel, 16 tensors + 8 ints", "jit")]


def test_layer_modes_and_jit_launches(tmp_path, monkeypatch):
    """``--modes ""`` leaves out the rows in fresh processes; ``--jit-launches`` turns the direct launches off; a
    mode that is not one is refused; ``--readout-settings`` changes the readout's GPU settings."""
    from glrtheory.kernels.scan import triton_launch
    monkeypatch.setattr(triton_launch, "DIRECT", True)
    out = tmp_path / "layer.json"
    shape = ["--device", "cpu", "--shape", "1,16,8,2", "--rep", "1", "--out", str(out)]
    assert gpu_layer.main(["--specs", "ssm", "--modes", "", "--jit-launches"] + shape) == 0
    rows = json.loads(out.read_text())["rows"]
    assert [r["precision"] for r in rows] == ["float32", "bf16 autocast", "bf16 autocast"]
    assert triton_launch.DIRECT is False
    with pytest.raises(SystemExit):
        gpu_layer.main(["--specs", "ssm", "--modes", "graph,eager"] + shape)
    from glrtheory.kernels.scan import readout_triton
    monkeypatch.setitem(readout_triton.GPU, "solve_boundaries", True)
    assert gpu_layer.main(["--specs", "ssm", "--modes", "", "--readout-settings", '{"solve_boundaries": false}']
                          + shape) == 0
    assert readout_triton.GPU["solve_boundaries"] is False
    with pytest.raises(SystemExit):
        gpu_layer.main(["--specs", "ssm", "--modes", "", "--readout-settings", '{"solve_boundary": false}'] + shape)


def test_interleaved_ab_applies_each_variant_in_its_turn(tmp_path, monkeypatch):
    """``gpu_layer.py --interleaved``: attention and each variant timed in turn, each round; a variant's settings in
    force exactly while its own step is timed (recorded by a stand-in for ``bench``), restored after; medians and
    ratios from the per-round times; an unknown setting refused by name."""
    from glrtheory.kernels.scan import readout_triton, triton_launch
    seen = []

    def fake_bench(step, rep, device):
        seen.append((readout_triton.GPU["solve_boundaries"], triton_launch.DIRECT))
        return float(len(seen))

    monkeypatch.setattr(gpu_layer, "bench", fake_bench)
    monkeypatch.setitem(readout_triton.GPU, "solve_boundaries", True)
    monkeypatch.setattr(triton_launch, "DIRECT", True)
    out = tmp_path / "ab.json"
    assert gpu_layer.main(["--specs", "ssm", "--device", "cpu", "--shape", "1,16,8,2", "--rounds", "2", "--out",
                           str(out), "--interleaved", '[{"direct": false}, {"solve_boundaries": false}]']) == 0
    assert seen == [(True, True), (True, False), (False, True)] * 2
    assert readout_triton.GPU["solve_boundaries"] is True and triton_launch.DIRECT is True
    rows = json.loads(out.read_text())["rows"]
    assert [r["ms_fwd_bwd"] for r in rows] == [[1.0, 4.0], [2.0, 5.0], [3.0, 6.0]]
    assert [r["median_ms"] for r in rows] == [2.5, 3.5, 4.5] and rows[2]["over_attention"] == pytest.approx(4.5 / 2.5)
    with pytest.raises(SystemExit):
        gpu_layer.main(["--specs", "ssm", "--device", "cpu", "--out", str(out), "--interleaved", '[{"dirct": 0}]'])


def _layer(ms, peak=None, precision="bf16 autocast", op="GLRMixer x readout"):
    return dict(op=op, spec="x", precision=precision, ms_fwd_bwd=ms, **({} if peak is None else dict(peak_bytes=peak)))


def test_layer_verdicts_follow_the_numbers():
    mha = [_layer(10.0, op="nn.MultiheadAttention causal"), _layer(30.0, op="nn.MultiheadAttention causal",
                                                                    precision="float32")]
    met = gpu_layer.verdicts(mha + [_layer(9.0, 3 * 2**30)])[0]
    assert met["fwd_bwd_at_or_below_mha"] and met["peak_at_most_4gib"] and met["targets_met"]
    assert met["fwd_bwd_over_mha"] == pytest.approx(0.9)
    slow = gpu_layer.verdicts(mha + [_layer(11.0, 3 * 2**30)])[0]
    assert slow["fwd_bwd_at_or_below_mha"] is False and slow["targets_met"] is False
    big = gpu_layer.verdicts(mha + [_layer(9.0, 5 * 2**30)])[0]
    assert big["peak_at_most_4gib"] is False and big["targets_met"] is False
    fp32 = gpu_layer.verdicts(mha + [_layer(20.0, 2**30, precision="float32")])[0]
    assert fp32["fwd_bwd_over_mha"] == pytest.approx(20 / 30) and fp32["targets_met"]     # same-precision anchor
    alone = gpu_layer.verdicts([_layer(9.0, 2**30)])[0]
    assert alone["fwd_bwd_over_mha"] is None and alone["targets_met"] is None


def test_decode_rows_checks_and_summary_on_the_cpu():
    result = gpu_decode.run(("fenwick", "ssm"), contexts=(16, 64), device="cpu", steps=4)
    assert not result["skipped"] and "CUDA graph" in result["note"]
    assert [c["passed"] for c in result["checks"]] == [True, True]
    per_entry = 4 * gpu_decode.MODEL["heads"] * (gpu_decode.MODEL["d_model"] // gpu_decode.MODEL["heads"] + 2)
    for r in result["rows"]:
        assert r["ms_step"] > 0 and r["positions"] == [r["context"], r["context"] + 4]
        assert r["cache_entries"] == r["live_set"] <= r["cache_peak"] == cache_peak(Pattern.from_spec(r["spec"]),
                                                                                       r["horizon"])
        assert r["cache_bytes"] == per_entry * r["cache_entries"]       # float32 state + 2 source scores per head
    fen = next(s for s in result["summary"] if s["spec"] == "fenwick")
    lo, hi = (next(r for r in result["rows"] if r["spec"] == "fenwick" and r["context"] == L) for L in (16, 64))
    assert fen["ratio"] == pytest.approx(hi["ms_step"] / lo["ms_step"]) and fen["cache_matches_live_set"]


def _decode(spec, L, ms, terms):
    return dict(spec=spec, context=L, ms_step=ms, terms_mean=terms, cache_entries=1, live_set=1)


def test_decode_targets_follow_the_numbers():
    flat = gpu_decode.summary([_decode("fenwick", 2**10, 1.0, 10), _decode("fenwick", 2**20, 1.25, 10)])[0]
    assert flat["ratio"] == pytest.approx(1.25) and flat["target_met"]
    steep = [_decode("fenwick", 2**10, 1.0, 10), _decode("fenwick", 2**20, 1.4, 10)]
    assert not gpu_decode.summary(steep)[0]["target_met"]
    log = [_decode("power2", 2**10, 1.0, 11), _decode("power2", 2**20, 2.0, 21)]
    assert gpu_decode.summary(log)[0]["target_met"]                    # 2.0 <= 1.3 * 21 / 11
    log[1]["ms_step"] = 3.0
    assert not gpu_decode.summary(log)[0]["target_met"]
    short = gpu_decode.summary([_decode("fenwick", 2**10, 1.0, 10), _decode("fenwick", 2**17, 1.0, 10)])[0]
    assert short["target_met"] is None and "1048576" in short["why"]       # flat, but 2^20 not reached


def test_decode_budget_skips_rows_and_says_so():
    result = gpu_decode.run(("ssm",), contexts=(16, 2**12), device="cpu", steps=2, budget_s=0.0)
    assert [r["context"] for r in result["rows"]] == [16]
    assert result["skipped"][0]["context"] == 2**12 and "budget" in result["skipped"][0]["why"]


def test_scan_and_fla_rows_on_the_cpu():
    row = gpu_bench.ours("power2", 1, 33, 2, 4, copy_gbps=1.0, device="cpu", dtype=torch.float32)
    assert row["ms"] > 0 and row["over_floor_fwd_bwd"] == pytest.approx(row["ms_fwd_bwd"] / row["floor_ms_fwd_bwd"])
    assert gpu_bench.sdpa(1, 16, 2, 4, device="cpu", dtype=torch.float32)["ms_fwd_bwd"] > 0
    rows = gpu_fla.fla_shapes([(1, 16, 2, 8)], device="cpu", dtype=torch.float32)
    assert [r["op"] for r in rows[:2]] == ["fla chunk_simple_gla", "fla chunk_log_linear_attn"]
    assert all("skipped" in r and "ms" not in r for r in rows[:2])
    assert [r["readout_algorithm"] for r in rows[2:]] == [readout_algorithm(Pattern.from_spec(s).tables(16))[0]
                                                           for s in gpu_fla.FLA_SPECS]
    assert all(r["ms"] > 0 and "over_fla" not in r and "over_fla_log_linear" not in r for r in rows[2:])


def test_scan_script_on_the_cpu(tmp_path, monkeypatch):
    from glrtheory.kernels.scan import triton as backend

    monkeypatch.setattr(backend, "GPU", dict(backend.GPU))          # --settings sets them
    monkeypatch.setattr(backend, "DEFAULT_CHUNK", backend.DEFAULT_CHUNK)
    out = tmp_path / "scan.json"
    assert gpu_bench.main(["--device", "cpu", "--shape", "1,16,2,4", "--specs", "ssm", "--skip-sweep", "--out",
                           str(out), "--settings", str(ROOT / "benchmarks" / "results" / "gpu_tune.json")]) == 0
    result = json.loads(out.read_text())
    assert result["settings"] == dict(BD=16, JB=8, E=64, warps=4, grad_warps=8, inverse_precision="tf32x3",
                                      inverse_precision_16="tf32", inverse_warps=1, lags=True, LB=8, lag_BD=32,
                                      lag_warps=8, walk_bf16=True, static_lags=32,
                                      chunk=64)         # the tune's fastest power2 (a tune without lag keys)
    assert [r["op"] for r in result["rows"]] == ["copy u->h", "glr_scan ssm", "sdpa causal", "fla chunk_simple_gla"]
    assert {"platform", "date"} <= set(result["machine"]) and result["rows"][1]["ms_fwd_bwd"] > 0


@interpreted_run
def test_readout_script_on_the_cpu(tmp_path):
    """``gpu_readout.py`` at T = 1100 (ssm gets ``chunked_aligned``), its Triton rows under the interpreter:
    both backends' rows with their error against float32, fla's two rows saying why they are missing, SDPA's row;
    ``--back-settings`` timing ssm's and fenwick's forward + backward for each setting."""
    out = tmp_path / "readout.json"
    assert gpu_readout.main(["--device", "cpu", "--shape", "1,1100,1,16", "--skip-tune", "--specs", "ssm",
                             "--back-settings", '[{"decay_warps": 4}]', "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    gla, log_linear, attention, *rows = result["rows"]
    assert (gla["op"], log_linear["op"]) == ("fla chunk_simple_gla", "fla chunk_log_linear_attn")
    assert all("skipped" in fla and "ms" not in fla for fla in (gla, log_linear))
    assert attention["op"] == "sdpa causal" and attention["ms"] > 0 and attention["ms_fwd_bwd"] > 0
    assert [(r["op"], r["backend"]) for r in rows] == [("glr_readout ssm", "torch"), ("glr_readout ssm", "triton")]
    for r in rows:
        assert r["readout_algorithm"] == "chunked_aligned" and r["ms"] > 0 and r["ms_fwd_bwd"] > 0
        assert 1e-4 < r["rel_err_vs_float32"] < 1e-2           # bf16 products: not float32 in disguise
        assert 1e-4 < r["grad_rel_err_vs_float32"] < 1e-2
    assert result["setting"] == gpu_readout.readout_triton.GPU and result["profile"] == {"ssm": []}
    assert result["profile_triton_fwd_bwd_others"] == {}
    (tuned,) = result["tune_back_settings_0"]
    assert tuned["decay_warps"] == 4 and tuned["ssm"] > 0 and tuned["fenwick"] > 0 and "error" not in tuned


def test_readout_tune_measures_each_setting_on_the_same_base(monkeypatch):
    """``gpu_readout.tune``: each setting is timed on top of the settings in force before (not of the setting
    before it), the fastest stays in force with the rest restored, a tune where every setting fails
    changes nothing, and a key that is no setting is refused by name."""
    gpu = gpu_readout.readout_triton.GPU
    monkeypatch.setattr(gpu_readout.readout_triton, "GPU", dict(gpu, walk_k=32, out_k=64, walk_v=64))
    gpu = gpu_readout.readout_triton.GPU
    seen = []

    def measure(spec, shape, device):               # a fake time: the settings it ran at, or a failure
        if gpu["walk_v"] == 16:
            raise RuntimeError("refused")
        seen.append((gpu["walk_k"], gpu["out_k"]))
        return gpu["walk_k"] + gpu["out_k"]

    settings = [dict(walk_k=16), dict(out_k=16), dict(walk_v=16), dict(walk_k=64, out_k=128)]
    result, shape = {}, (2, 16384, 16, 128)
    best = gpu_readout.tune(shape, "cpu", lambda r: None, result, settings, measure)
    assert seen == [(16, 64)] * 2 + [(32, 16)] * 2 + [(64, 128)] * 2          # never (16, 16): one setting at a time
    assert best == dict(out_k=16, ssm=48, fenwick=48) and "error" in result["tune"][2]
    assert (gpu["walk_k"], gpu["out_k"], gpu["walk_v"]) == (32, 16, 64)
    before = dict(gpu)
    assert gpu_readout.tune(shape, "cpu", lambda r: None, {}, [dict(walk_v=16, out_k=99)], measure) is None
    assert gpu == before
    with pytest.raises(ValueError, match=r"no such setting \['walkk'\]"):
        gpu_readout.tune(shape, "cpu", lambda r: None, {}, [dict(walkk=16)], measure)
    assert gpu == before


def test_session_merge(tmp_path):
    (tmp_path / "part_layer.json").write_text(json.dumps(dict(machine={"gpu": "X"}, rows=[1])))
    (tmp_path / "pytest.txt").write_text("t.py::a PASSED\nFAILED t.py::b - boom\n"
                                         "======= 1 failed, 7 passed, 3 deselected in 12.5s =======\n")
    (tmp_path / "parts.txt").write_text("scan 2 3\nlayer 0 40\ndecode 130 30\npytest 1 20\n")
    merged = gpu_session.merge(tmp_path, 150)
    assert json.loads((tmp_path / "gpu_session.json").read_text()) == json.loads(json.dumps(merged))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gpu_session.json", "pytest.txt"]
    parts = merged["parts"]
    assert merged["machine"] == {"gpu": "X"} and parts["layer"]["result"]["rows"] == [1]
    assert parts["decode"]["cut_at_time_cap"] and not parts["scan"]["cut_at_time_cap"]
    assert parts["pytest"]["result"]["counts"] == dict(failed=1, passed=7, deselected=3)
    assert parts["pytest"]["result"]["failed"] == ["t.py::b"]


def test_session_script_parses():
    for script in ("gpu_session.sh", "gpu_readout_call.sh"):
        assert subprocess.run(["bash", "-n", str(ROOT / "benchmarks" / script)]).returncode == 0, script


def test_tune_settings_name_only_launch_settings_of_the_scan():
    """Every key ``gpu_tune.py`` sets is one the Triton scan reads (a misspelt key would time the default
    while recording the setting), and its first setting is the default in force."""
    import gpu_tune

    from glrtheory.kernels.scan import triton as backend

    for setting in gpu_tune.SETTINGS:
        assert set(setting) - {"chunk"} <= set(backend.GPU), setting
    first = gpu_tune.SETTINGS[0]
    assert all(backend.GPU[k] == v for k, v in first.items() if k != "chunk")
    assert first["chunk"] == backend.DEFAULT_CHUNK


@interpreted_run
def test_backward_tune_refuses_wrong_gradients(monkeypatch):
    """``gpu_readout.fwd_bwd_ms`` checks the gradients before it times: a backward whose gradients are off (here
    dq scaled by 1.05, 5 % off) raises, so the backward's tune records the setting as failed; the right one times."""
    shape = (1, 1100, 1, 16)                        # ssm gets chunked_aligned
    assert gpu_readout.fwd_bwd_ms("ssm", shape, "cpu", backend="torch") > 0
    original = gpu_readout.glr_readout

    class Scaled(torch.autograd.Function):
        @staticmethod
        def forward(ctx, q):
            return q.clone()

        @staticmethod
        def backward(ctx, grad):
            return grad * 1.05

    def wrong(q, *rest, **kw):
        return original(Scaled.apply(q), *rest, **kw) if kw.get("backend") != "torch" else original(q, *rest, **kw)

    monkeypatch.setattr(gpu_readout, "glr_readout", wrong)
    with pytest.raises(AssertionError, match="wrong gradients"):
        gpu_readout.fwd_bwd_ms("ssm", shape, "cpu", backend="triton")


@interpreted_run
def test_backward_check_script_on_the_cpu(tmp_path):
    """``gpu_backward_check.py`` under the interpreter (ssm, n = 130, d = 16, float32 and bf16): a row per dtype and
    setting with the five gradients' errors within the tests' bounds, ``ok`` set from them, and BACKWARD_HEAD
    restored after ``--backward-head``."""
    import gpu_backward_check

    head = gpu_backward_check.readout_triton.BACKWARD_HEAD
    out = tmp_path / "check.json"
    assert gpu_backward_check.main(["--device", "cpu", "--specs", "ssm", "--heads", "16", "--n", "130",
                                    "--settings", "[{}]", "--backward-head", "64", "--out", str(out)]) == 0
    rows = json.loads(out.read_text())["rows"]
    assert [(r["dtype"], r["backward_head"]) for r in rows] == [("bfloat16", 64), ("float32", 64)]
    for r, bound in zip(rows, (1e-2, 1e-5)):
        errors = [r[name] for name in "qkvab"]
        assert r["ok"] and 0 < max(errors) <= bound, r
    assert gpu_backward_check.readout_triton.BACKWARD_HEAD == head


@interpreted_run
def test_backward_check_isolates_each_row(monkeypatch, tmp_path):
    """``--isolate``: each row checked in a process of its own (this process's ``check`` never called) gives the
    same row as a check in this process (the inputs are seeded)."""
    import gpu_backward_check

    args = ["--device", "cpu", "--specs", "ssm", "--heads", "16", "--n", "130", "--dtypes", "float32",
            "--settings", "[{}]"]
    rows = []
    for flags in ([], ["--isolate"]):
        if flags:
            monkeypatch.setattr(gpu_backward_check, "check", lambda *a, **k: pytest.fail("checked in this process"))
        out = tmp_path / f"check{len(flags)}.json"
        assert gpu_backward_check.main(args + flags + ["--out", str(out)]) == 0
        rows.append(json.loads(out.read_text())["rows"])
    assert rows[1] == rows[0] and len(rows[0]) == 1 and rows[0][0]["ok"]


def test_an_isolated_row_whose_process_dies_names_the_exit(monkeypatch, tmp_path):
    """``--isolate``: where the row's process writes no row (killed by an illegal memory access), the row names the
    setting and carries the exit code and the last line of the process's output."""
    import subprocess

    import gpu_backward_check

    died = subprocess.CompletedProcess([], -6, stdout="", stderr="a\nCUDA error: an illegal memory access\n")
    monkeypatch.setattr(gpu_backward_check.subprocess, "run", lambda *a, **k: died)
    out = tmp_path / "check.json"
    assert gpu_backward_check.main(["--isolate", "--device", "cuda", "--specs", "ssm", "--heads", "256", "--n", "300",
                                    "--dtypes", "bfloat16", "--settings", '[{"back_k": 32}]', "--backward-head", "256",
                                    "--out", str(out)]) == 0
    row, = json.loads(out.read_text())["rows"]
    assert row == dict(spec="ssm", d=256, n=300, dtype="bfloat16", setting={"back_k": 32}, backward_head=256,
                       error="exit code -6: CUDA error: an illegal memory access")


def test_grad_error_is_nan_when_any_gradient_is(monkeypatch):
    """``gpu_readout.grad_error`` is the largest gradient error, and NaN wherever one of them is NaN, also after a
    finite one (where Python's ``max`` would drop it), so a NaN in dk still fails ``fwd_bwd_ms``' check."""
    errors = {"q": 1e-3, "k": float("nan"), "v": 2e-3, "a": 1e-3, "b": 1e-3}
    monkeypatch.setattr(gpu_readout, "grad_errors", lambda *args: errors)
    assert math.isnan(gpu_readout.grad_error(None, None, None, "triton"))
    errors["k"] = 5e-3
    assert gpu_readout.grad_error(None, None, None, "triton") == 5e-3


def test_fla_inputs_give_log_linear_level_weights_in_q_dtype():
    """fla's log-linear kernel multiplies the level weights into a product with v: float32 weights beside bf16 v
    fail to compile ("Both operands must be same dtype"), which calls 80-136 recorded as the anchor's error."""
    q, k, v, g, levels = gpu_fla.fla_inputs("chunk_log_linear_attn", 2, 1000, 3, 8, "cpu")
    assert levels.dtype == q.dtype == v.dtype == torch.bfloat16 and g.dtype == torch.float32
    assert levels.shape == (2, 1000, 3, 11) and g.shape == (2, 1000, 3) and q.shape == (2, 1000, 3, 8)
    assert len(gpu_fla.fla_inputs("chunk_simple_gla", 1, 64, 1, 8, "cpu")) == 4


def test_error_keeps_the_last_line_of_a_long_message():
    """A row's error keeps the start of a long message and its last line, where Triton says what is wrong."""
    from gpu_common import error

    long = ValueError("at 177:18:\n" + "    source line\n" * 40 + "Both operands must be same dtype. Got fp32 and bf16")
    assert error(long).startswith("ValueError: at 177:18:") and error(long).endswith("Got fp32 and bf16")
    assert error(KeyError("short")) == "KeyError: 'short'"
    assert len(error(ValueError("x" * 1000))) == len("ValueError: ") + 300 + len(" ... ") + 300


def test_fla_script_on_the_cpu(tmp_path):
    """Two shapes, each in a process of its own, saved in order with our rows' times; bad shapes exit 2."""
    out = tmp_path / "fla.json"
    assert gpu_fla.main(["--shapes", "1,16,2,8;1,33,1,4", "--specs", "fenwick", "--device", "cpu",
                         "--dtype", "float32", "--out", str(out)]) == 0
    rows = json.loads(out.read_text())["rows"]
    assert [(r["op"], r["T"]) for r in rows] == [("fla chunk_simple_gla", 16), ("fla chunk_log_linear_attn", 16),
                                                 ("glr_readout fenwick", 16), ("fla chunk_simple_gla", 33),
                                                 ("fla chunk_log_linear_attn", 33), ("glr_readout fenwick", 33)]
    assert rows[2]["ms"] > 0 and "machine" in json.loads(out.read_text())
    for bad in ("1,16,2", "1,x,2,8", "1,16,0,8"):
        with pytest.raises(SystemExit) as e:
            gpu_fla.main(["--shapes", bad, "--device", "cpu", "--out", str(out)])
        assert e.value.code == 2


def test_tiled_script_on_the_cpu(tmp_path):
    """``gpu_tiled.py`` at a tiny shape in float32 with tiles of 32 and 64 columns: SDPA's row, then one row per spec
    and tile, each timed, by tiled mixing, and equal to the float32 run at the default tiles (within 1e-5)."""
    out = tmp_path / "tiled.json"
    assert gpu_tiled.main(["--device", "cpu", "--shape", "1,70,2,8", "--dtype", "float32", "--chunks", "32,64",
                           "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    rows = result["rows"]
    assert [(r["op"], r.get("chunk")) for r in rows] == [("sdpa causal", None)] + [
        (f"glr_readout {s}", c) for s in ("power2", "quadratic") for c in (32, 64)]
    for r in rows[1:]:
        assert "error" not in r and r["algorithm"] == "tiled_mixing" and r["ms"] > 0 and r["ms_fwd_bwd"] > 0
        assert r["rel_err_vs_float32"] <= 1e-5
    assert result["shape"] == dict(B=1, T=70, H=2, D=8) and "machine" in result
    for bad in (["--shape", "1,70,2"], ["--shape", "1,x,2,8"], ["--shape", "1,0,2,8"], ["--chunks", "0"]):
        with pytest.raises(SystemExit) as e:
            gpu_tiled.main(["--device", "cpu", "--out", str(out), *bad])
        assert e.value.code == 2


def test_tiled_script_profiles_the_host(tmp_path):
    """``--host``: no host milliseconds on a CPU (``host_ms`` needs CUDA), and the Python functions by their own
    time per forward + backward, the slowest first, among them the scan that makes each tile of M."""
    out = tmp_path / "tiled.json"
    assert gpu_tiled.main(["--device", "cpu", "--shape", "1,70,2,8", "--dtype", "float32", "--specs", "power2",
                           "--rep", "2", "--host", "--out", str(out)]) == 0
    row = json.loads(out.read_text())["rows"][1]
    assert row["host_ms"] is None and row["host_ms_fwd_bwd"] is None
    functions = row["host_functions"]
    assert 0 < len(functions) <= 30
    own = [f["own_ms"] for f in functions]
    assert own == sorted(own, reverse=True) and own[0] > 0
    assert all(f["cumulative_ms"] >= f["own_ms"] and f["calls"] > 0 for f in functions)
    assert any("glr_scan" in f["function"] or "substitute" in f["function"] for f in functions)


def test_a_failed_fresh_process_gives_a_row_naming_it():
    """A shape's process that fails (here: no such device) gives one row naming its exit and its last line."""
    bad = gpu_fla.in_fresh_process((1, 16, 2, 8), ["ssm"], "nodevice", torch.float32)
    assert len(bad) == 1 and bad[0]["error"].startswith("its process exited 1: ") and "nodevice" in bad[0]["error"]


def test_lab_step_script_on_the_cpu(tmp_path):
    """``gpu_lab_step.py`` on the CPU: one row per chosen mixer with its three ways timed twice, the same losses each
    way (the same seed and data; the dispatcher changes no arithmetic), nothing captured on a CPU; a task the config
    lacks exits 2."""
    out = tmp_path / "lab.json"
    assert gpu_lab_step.main(["--device", "cpu", "--steps", "2", "--specs", "ssm", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["config"] == "configs/lab/h200_short.toml"
    (row,) = result["rows"]
    assert row["mixer"] == "ssm" and row["task"] == "mqar" and row["graphed"] == "not on CUDA"
    for way in gpu_lab_step.WAYS:
        assert len(row[f"ms_per_step_{way}"]) == 2 and row[f"best_{way}"] == min(row[f"ms_per_step_{way}"]) > 0
        assert 0 < row[f"best_{way}_after_capture"] <= row[f"best_{way}"]
    assert len(set(row["loss_last"].values())) == 1
    with pytest.raises(SystemExit) as e:
        gpu_lab_step.main(["--device", "cpu", "--task", "sorting", "--out", str(out)])
    assert e.value.code == 2


@interpreted_run
def test_float32_probe_script_on_the_cpu(tmp_path, monkeypatch):
    """``gpu_float32_probe.py`` under the interpreter (fenwick, n = 70, d = 16, two seeds, two runs each): the float32
    torch path and the Triton runs within 1e-6 of float64 (the interpreter's runs identical), and a Triton output
    off by 1e-3 of itself shows as such in the row, against float64 and against the float32 torch path."""
    import gpu_float32_probe as probe

    out = tmp_path / "probe.json"
    probe.main(["--device", "cpu", "--seeds", "7,8", "--heads", "16", "--n", "70", "--repeats", "2", "--out",
                str(out)])
    rows = json.loads(out.read_text())["rows"]
    assert [(r["seed"], r["spec"], r["d"]) for r in rows] == [(7, "fenwick", 16), (8, "fenwick", 16)]
    for r in rows:
        assert len(r["triton_vs_f64"]) == 2 and set(r["torch32_vs_f64"]) == set(probe.NAMES)
        assert 0 < max(r["torch32_vs_f64"].values()) <= 1e-6
        assert 0 < max(max(e.values()) for e in r["triton_vs_f64"]) <= 1e-6
        assert max(r["triton_runs_differ"].values()) == 0
    readout = probe.glr_readout
    monkeypatch.setattr(probe, "glr_readout", lambda *args, backend, **kw: readout(*args, backend=backend, **kw) * (
        1.001 if backend == "triton" else 1.0))
    row = probe.probe(7, "fenwick", 16, 70, 1, device="cpu")
    for name in probe.NAMES:                      # every gradient goes through the scaled output
        assert 0.9e-3 < row["triton_vs_f64"][0][name] < 1.1e-3, name
        assert 0.9e-3 < row["triton_vs_torch32_max"][name] < 1.1e-3, name


@interpreted_run
def test_launch_trace_script_on_the_cpu(tmp_path, capsys):
    """``gpu_launch_trace.py`` under the interpreter (fenwick, n = 70, d = 16): a saved trace names the forward's and
    backward's launches; a second run matches it; a setting that is none is refused; and ``differences`` reports
    exactly the launch and argument changed in a copy of it by more than the bound, a tensor of integers that differs,
    and launches that differ by name."""
    import gpu_launch_trace as trace

    saved = tmp_path / "trace.pt"
    trace.main(["--device", "cpu", "--n", "70", "--head", "16", "--save", str(saved)])
    trace.main(["--device", "cpu", "--n", "70", "--head", "16", "--against", str(saved), "--bound", "0"])
    text = capsys.readouterr().out
    assert text.count("launches: chunk_inverse") == 2 and "chunk_output_backward" in text
    assert "every launch's tensors as saved" in text
    with pytest.raises(ValueError, match=r"no such setting \['bogus'\]"):      # gpu_readout._apply's check
        trace.main(["--device", "cpu", "--n", "70", "--head", "16", "--settings", '{"bogus": 1}'])
    launches = torch.load(saved)
    names = [name for name, _ in launches]
    i = names.index("chunk_output_backward")
    changed = [(name, [None if x is None else x.clone() for x in xs]) for name, xs in launches]
    floats = [j for j, x in enumerate(changed[i][1]) if x is not None and x.is_floating_point() and x.norm() > 0]
    changed[i][1][floats[0]] *= 1 + 2e-4
    assert trace.differences(launches, launches, 0.0) == []
    lines = trace.differences(changed, launches, 1e-4)
    assert len(lines) == 1 and lines[0].startswith(f"launch {i} chunk_output_backward arg {floats[0]} ")
    assert trace.differences(changed, launches, 3e-4) == []
    counts = [("walk", [torch.arange(3), None])]
    assert trace.differences([("walk", [torch.tensor([0, 1, 3]), None])], counts, 1.0) == ["launch 0 walk arg 0: "
                                                                                          "integers differ"]
    renamed = [("other", xs) if j == 1 else (name, xs) for j, (name, xs) in enumerate(launches)]
    assert trace.differences(renamed, launches, 0.0)[-1] == (f"launch 1: other, saved {names[1]}: the launches "
                                                             "differ from here")
