"""The documentation in docs/: its examples run, its links resolve, and the project points only to itself."""
import doctest
import itertools
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = sorted((ROOT / "docs").glob("*.md"))
PAGES = ("index", "quantities", "mathematics", "architecture", "extending", "claims")
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
TEXT = {".py", ".md", ".toml", ".ipynb", ".txt", ".cfg", ".sh", ".json", ".yaml", ".yml", ""}


def words(*path: str) -> str:
    """The file at ROOT / path with every run of whitespace made one space (quotes may wrap across lines)."""
    return " ".join(ROOT.joinpath(*path).read_text().split())


def test_the_pages_exist():
    assert {p.stem for p in DOCS} >= set(PAGES)


@pytest.mark.parametrize("page", DOCS, ids=[p.stem for p in DOCS])
def test_examples_run(page):
    """Every ``>>>`` line of the page is a doctest: the numbers on the page are what the code computes."""
    result = doctest.testfile(str(page), module_relative=False, verbose=False, report=True,
                              optionflags=doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS)
    assert result.failed == 0


@pytest.mark.parametrize("page", [ROOT / "README.md", *DOCS], ids=["README", *[p.stem for p in DOCS]])
def test_relative_links_resolve_inside_the_repository(page):
    for target in LINK.findall(page.read_text()):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue
        path = (page.parent / unquote(target.split("#")[0])).resolve()
        assert path.is_relative_to(ROOT), f"{page.name} links outside the repository: {target}"
        assert path.exists(), f"{page.name} links to a missing file: {target}"


def tracked_text_files() -> list[Path]:
    """The repository's tracked text files (skips when this is not a git checkout)."""
    try:
        out = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    files = [ROOT / f for f in out.splitlines()]
    return [f for f in files if f.is_file() and f.suffix in TEXT and f != Path(__file__).resolve()]


def test_no_file_names_the_internal_design_notes():
    """User-facing text points to docs/, never to the development notes that users do not have."""
    design = "DESIGN" + ".md"
    bad = [str(f.relative_to(ROOT)) for f in tracked_text_files() if design in f.read_text(errors="ignore")]
    assert not bad, f"files that mention {design} (point to the matching docs/ page instead): {bad}"


def test_nothing_points_outside_the_repository():
    """No tracked file names a folder beside the repository or a path of the development machine."""
    outside = re.compile(r"\.\./shared/|/work/(main|wt|shared)\b")
    bad = [str(f.relative_to(ROOT)) for f in tracked_text_files() if outside.search(f.read_text(errors="ignore"))]
    assert not bad, f"files that point outside the repository: {bad}"


def test_python_lines_are_at_most_120_columns():
    """The project's line length: no line of a tracked .py file is longer than 120 characters."""
    files = [f for f in tracked_text_files() if f.suffix == ".py"] + [Path(__file__).resolve()]
    long = [f"{f.relative_to(ROOT)}:{i}" for f in files for i, line in enumerate(f.read_text().splitlines(), 1)
            if len(line) > 120]
    assert not long, f"lines over 120 columns: {long}"


def test_gpu_scan_page_quotes_its_calls():
    """docs/gpu_scan.md: each kernel's share, the settings' and the variants' times and the final rows are those
    of the device calls' JSON, with the verdicts the page gives."""
    from helpers import gpu_call

    text = words("docs", "gpu_scan.md")

    def rows(call, name="tune.json"):
        return gpu_call(call, name)["rows"]

    def tune(call, spec, **setting):
        found = [r for r in rows(call) if r["spec"] == spec and all(r.get(k) == v for k, v in setting.items())]
        assert len(found) == 1, (call, spec, setting)
        return found[0]

    def pair(r):
        return f"{r['ms']:.3f} / {r['ms_fwd_bwd']:.3f}"

    default = dict(lag_BD=32, LB=8, lag_warps=8)
    today = dict(default, static_lags=32, walk_bf16=True, inverse_precision_16="tf32")
    profile, now = tune("call28", "power2", **default), tune("call36", "power2", **today)

    def kernels(row):
        return {name.split("<")[0].split()[-1]: ms for name, ms in row["ms_per_kernel_fwd_bwd"].items()}

    def share(row, part):
        return [ms for name, ms in row["ms_per_kernel_fwd_bwd"].items() if part in name][0]

    assert f"(forward {profile['ms']:.3f} ms, forward + backward {profile['ms_fwd_bwd']:.3f} ms)" in text
    assert f"(forward {now['ms']:.3f} ms, forward + backward {now['ms_fwd_bwd']:.3f} ms)" in text
    for name in ("backward_pull", "forward_walk", "coef_grad", "chunk_inverse"):
        assert f"`{name}`" in text and f"| {kernels(profile)[name]:.3f} | {kernels(now)[name]:.3f} |" in text
    add, gather = "CUDAFunctor_add<c10::BFloat16>", "scatter_gather"
    assert f"`b.grad` | {share(profile, add):.3f} | {share(now, add):.3f} |" in text
    assert f"the backward's) | {share(profile, gather):.3f} | {share(now, gather):.3f} |" in text
    assert "2.9 us a chunk for power2" in text and round(kernels(profile)["forward_walk"] / 256 * 1e3, 1) == 2.9
    ssm = tune("call28", "ssm", **default)["ms_per_kernel_fwd_bwd"]["forward_walk"]
    assert "0.425 ms in the same call" in text and f"{ssm:.3f}" == "0.425"
    ssm_now = tune("call36", "ssm", **today)["ms_per_kernel_fwd_bwd"]["forward_walk"]
    assert f"1.9 us for power2 and 1.2 us for ssm ({ssm_now:.3f} ms)" in text
    assert round(kernels(now)["forward_walk"] / 256 * 1e3, 1) == 1.9 and round(ssm_now / 256 * 1e3, 1) == 1.2

    bf16 = {spec: [pair(tune("call30", spec, **default, walk_bf16=on)) for on in (True, False)]
            for spec in ("ssm", "power2")}
    assert f"ssm took {bf16['ssm'][0]} ms (forward / forward + backward) with it against {bf16['ssm'][1]}" in text
    assert f"power2 {bf16['power2'][0]} against {bf16['power2'][1]}, so it was off by default" in text
    walk = {(r["static_lags"], r["walk_bf16"], r["inverse_precision_16"]): r for r in rows("call36")
            if r["spec"] == "power2" and r["lag_BD"] == 32}
    static, static_bf16, static_bf16_tf32 = walk[32, False, "tf32x3"], walk[32, True, "tf32x3"], walk[32, True, "tf32"]
    assert f"power2 took {pair(static_bf16)} with it against {pair(static)} (`call36`), so it is on" in text
    assert f"| {pair(static_bf16)} against {pair(static)} | **kept** (`walk_bf16` on) |" in text
    assert f"| {pair(static_bf16_tf32)} against {pair(static_bf16)} | **kept** (`inverse_precision_16`) |" in text
    loaded = tune("call35", "power2", static_lags=0)
    compiled = tune("call35", "power2", **default, static_lags=32, walk_bf16=False, inverse_precision="tf32x3")
    assert f"| {pair(compiled)} against {pair(loaded)} | **kept** (its backward pull is slower for power2, " in text
    assert f"{compiled['ms_per_kernel_fwd_bwd']['backward_pull']:.3f} against {kernels(profile)['backward_pull']:.3f}" \
        in text
    alone = {(r["spec"], r["static_lags"]): r["ms_walk"] for r in rows("call35", "walk.json") if r["lag_warps"] == 8}
    assert (f"{alone['power2', 32]:.3f} against {alone['power2', 0]:.3f} ms, ssm {alone['ssm', 32]:.3f} against "
            f"{alone['ssm', 0]:.3f})") in text
    lagged, tables = tune("call26", "power2", **default), tune("call26", "power2", lags=False)
    assert f"| {pair(lagged)} against {pair(tables)} | **kept** |" in text
    assert f"forward + backward {profile['ms_fwd_bwd']:.3f} against {lagged['ms_fwd_bwd']:.3f} (`call26`)" in text
    inverses = {(r["spec"], r["inverse_precision"]): r["ms_inverse"]
                for r in gpu_call("call31", "tune.json")["inverse_sweep"] if r["inverse_warps"] == 1}
    assert f"inverses {inverses['power2', 'tf32']:.3f} against {inverses['power2', 'tf32x3']:.3f}" in text
    in_registers = rows("call29")
    assert f"| {pair(in_registers[0])}; ssm {pair([r for r in in_registers if r['spec'] == 'ssm'][0])} |" in text
    segments = [tune("call32", "power2", **default, walk_bf16=False, segments=s)["ms"] for s in (4, 8, 16, 1)]
    assert "{:.3f}, {:.3f}, {:.3f} forward against {:.3f}".format(*segments) in text and min(segments) == segments[3]
    final = {r["op"]: r for r in rows("call31", "gpu_triton.json")}
    in_place = {r["op"]: r for r in rows("call33", "gpu_triton.json")}
    p2, p2_before = in_place["glr_scan_triton power2"], final["glr_scan_triton power2"]
    assert (f"{pair(p2)} against {pair(p2_before)} (`call31`); ssm {in_place['glr_scan_triton ssm']['ms']:.3f} "
            f"against {final['glr_scan_triton ssm']['ms']:.3f}") in text
    quoted = ", ".join(f"{s} {pair(final[f'glr_scan_triton {s}'])}" for s in ("ssm", "fenwick", "blocks", "quadratic"))
    assert f"power2 {pair(p2_before)} ms, {quoted};" in text
    assert f"{p2_before['over_floor']:.1f}x its memory floor" in text and f"{p2_before['floor_ms']:.3f} ms" in text
    assert p2_before["ms_fwd_bwd"] <= 2.5 and p2_before["ms"] > 0.75            # quoted as under / not under
    today_rows = {r["op"]: r for r in rows("call39", "gpu_triton.json")}
    p2_now, sdpa = today_rows["glr_scan_triton power2"], today_rows["sdpa causal"]
    quoted = ", ".join(f"{s} {pair(today_rows[f'glr_scan_triton {s}'])}" for s in ("ssm", "fenwick", "blocks",
                                                                                   "quadratic"))
    assert f"(`call39/gpu_triton.json`): power2 {pair(p2_now)} ms, {quoted}; causal SDPA (bf16) {pair(sdpa)}" in text
    assert (f"forward {p2_now['over_floor']:.1f}x its memory floor and {sdpa['ms'] / p2_now['ms']:.1f}x faster than "
            "SDPA") in text
    assert p2_now["ms"] <= 0.75 and p2_now["ms_fwd_bwd"] <= 2.5                 # quoted as met


def test_gpu_readout_page_quotes_its_calls():
    """docs/gpu_readout.md: each kernel's share, the rows and the verdicts are those of the device calls' JSON."""
    from helpers import gpu_call

    text = words("docs", "gpu_readout.md")
    calls = {c: gpu_call(c, "readout.json") for c in ("call20", "call45", "call47", "call48", "call49")}

    def share(call, spec, kernel):
        return [r["ms"] for r in calls[call]["profile"][spec] if r["kernel"] == kernel][0]

    for kernel in ("boundary_walk", "chunk_output", "chunk_coefficients", "chunk_inverse"):
        cells = " | ".join(f"{share(c, spec, kernel):.3f}" for spec in ("ssm", "fenwick", "blocks")
                           for c in ("call20", "call45"))
        assert f"| `{kernel}` | {cells} |" in text, kernel
    rows = {c: {r["op"]: r for r in calls[c]["rows"]} for c in calls}

    def pair(c, op):
        return f"{rows[c][op]['ms']:.3f} / {rows[c][op]['ms_fwd_bwd']:.3f}"

    for spec in ("ssm", "fenwick", "blocks"):
        assert (f"| {spec} | {pair('call20', 'glr_readout ' + spec)} | {pair('call45', 'glr_readout ' + spec)} | "
                f"{pair('call49', 'glr_readout ' + spec)} |") in text
    assert (f"| causal SDPA bf16 | {pair('call20', 'sdpa causal')} | {pair('call45', 'sdpa causal')} | "
            f"{pair('call49', 'sdpa causal')} |") in text
    now, sdpa = rows["call49"], rows["call49"]["sdpa causal"]["ms_fwd_bwd"]
    both = [now[f"glr_readout {s}"]["ms_fwd_bwd"] for s in ("ssm", "fenwick", "blocks")]
    assert f"ssm {both[0]:.3f}, fenwick {both[1]:.3f}, blocks {both[2]:.3f} ms against {sdpa:.3f} (`call49`)" in text
    assert max(both) < sdpa and "(`call49`): **met**" in text
    fla = now["fla chunk_simple_gla"]["ms"]
    ssm, fenwick = now["glr_readout ssm"]["ms"], now["glr_readout fenwick"]["ms"]
    assert f"ssm {ssm:.3f} ms against fla's {fla:.3f} ms ({ssm / fla:.2f}x): **met**" in text and ssm / fla <= 1.5
    assert f"fenwick {fenwick:.3f} ms ({fenwick / fla:.1f}x): **not met**" in text and fenwick / fla > 1.5
    assert [r["kernel"] for r in calls["call49"]["profile"]["ssm"] if "at::" not in r["kernel"]] == [
        "chunk_output", "boundary_walk", "decay_sums"]                                  # no step-1 kernels
    for spec, kernel in (("ssm", "decay_sums"), ("ssm", "boundary_walk"), ("ssm", "chunk_output"),
                         ("fenwick", "chunk_inverse"), ("blocks", "chunk_coefficients")):
        assert f"{share('call49', spec, kernel):.3f}" in text, (spec, kernel)
    tuned = {c: {row["decay"]: row["ssm"] for row in calls[c]["tune_settings_0"]}
             for c in ("call47", "call48", "call49")}
    for c, ms in tuned.items():                     # the first-order forward on and off, each in its call's run
        assert f"{ms[True]:.3f} ms against {ms[False]:.3f}" in text, c
    assert tuned["call47"][True] > tuned["call47"][False] and tuned["call49"][True] < tuned["call49"][False]
    unrolled = {row["unrolled_sources"]: row for row in gpu_call("call55", "unrolled.json")["tune_settings_0"]}
    assert (f"fenwick forward {unrolled[True]['fenwick']:.3f} ms against {unrolled[False]['fenwick']:.3f}, ssm "
            f"{unrolled[True]['ssm']:.3f} against {unrolled[False]['ssm']:.3f}") in text
    assert unrolled[True]["fenwick"] < unrolled[False]["fenwick"]                   # kept
    late = gpu_call("call57", "readout.json")
    now = {r["op"]: r for r in late["rows"]}
    ssm, fenwick, fla = (now[op]["ms"] for op in ("glr_readout ssm", "glr_readout fenwick", "fla chunk_simple_gla"))
    assert (f"ssm {ssm:.3f} ms, fenwick {fenwick:.3f} ms against fla's {fla:.3f} ms in the same run (fenwick "
            f"{fenwick / fla:.1f}x; {fenwick / calls['call49']['rows'][0]['ms']:.1f}x") in text
    assert calls["call49"]["rows"][0]["op"] == "fla chunk_simple_gla" and fenwick / fla > 1.5
    ratios = {s: [r["over_fla"] for r in late["fla_shapes"] if r["op"] == f"glr_readout {s}"]
              for s in ("ssm", "fenwick")}
    d256 = [r["over_fla"] for r in late["fla_shapes"] if r["op"] == "glr_readout ssm" and r["D"] == 256]
    assert (f"ssm takes {min(ratios['ssm']):.2f}x to {max(ratios['ssm']):.2f}x fla's time: within 1.5x at all six, "
            f"d = 256 included ({d256[0]:.2f}x); fenwick {min(ratios['fenwick']):.2f}x to "
            f"{max(ratios['fenwick']):.2f}x") in text and max(ratios["ssm"]) <= 1.5
    walk = [r["ms"] for r in late["profile"]["fenwick"] if r["kernel"] == "boundary_walk"][0]
    assert f"fenwick's walk takes {walk:.3f} ms" in text
    own, compiled = (gpu_call("call54", f"host_ssm{c}_own.json") for c in ("", "_compiled"))
    us = {c: {r["function"].split(":")[-1]: r for r in h["functions"]}
          for c, h in (("eager", own), ("compiled", compiled))}
    engine = "<method 'run_backward' of 'torch._C._EngineBase' objects>"
    assert (f"{us['eager'][engine]['own_us']:.0f} us" in text and f"falls to {us['compiled'][engine]['own_us']:.0f} us"
            in text)
    assert (f"`glr_readout` {us['eager']['glr_readout']['cumulative_us']:.0f} us forward, the Triton backward "
            f"(`_backward`) {us['eager']['_backward']['cumulative_us']:.0f} us, of which its 9 Triton launches take "
            f"{us['eager']['run']['cumulative_us']:.0f} us") in text and us["eager"]["run"]["calls"] == 9
    assert (f"{compiled['wall_us_per_iter']:.0f} us under cProfile against {own['wall_us_per_iter']:.0f} eager"
            in text)


def test_float32_first_order_slices_follow_call_232():
    """docs/gpu_readout.md quotes call232's alternating float32 tune as its JSON has it, and the setting follows it:
    slices of 32 for first-order patterns (ssm faster with 32 in both rounds), fenwick keeping 64 (slower with 32)."""
    from helpers import gpu_call

    from glrtheory.kernels.scan import readout_triton

    text = words("docs", "gpu_readout.md")
    rows = gpu_call("call232", "time_float32.json")["tune_back_settings_0"][1:]      # one stage, then slices of 32
    by_slices = {k: [r for r in rows if r.get("back_k", 64) == k] for k in (64, 32)}
    (ssm64, fen64), (ssm32, fen32) = ([[r[s] for r in by_slices[k]] for s in ("ssm", "fenwick")] for k in (64, 32))
    assert max(ssm32) < min(ssm64) and min(fen32) > max(fen64)
    assert (f"{ssm32[0]:.3f} and {ssm32[1]:.3f} ms against {ssm64[0]:.3f} and {ssm64[1]:.3f} with 64" in text
            and f"fenwick took {fen32[0]:.3f} and {fen32[1]:.3f} with 32 against {fen64[0]:.3f} and {fen64[1]:.3f}"
            in text)
    setting = readout_triton.GPU
    assert setting["float32"]["decay_back_k"] == 32 and setting["decay_back_k"] is None and setting["back_k"] == 64


def test_gpu_readout_page_quotes_calls_61_to_64():
    """docs/gpu_readout.md: the backward's wrong gradients (calls 61, 62) and the boundary solve (calls 63, 64) as their
    JSON has them, and the verdicts those numbers give."""
    from helpers import gpu_call

    text = words("docs", "gpu_readout.md")
    checks = {d: gpu_call("call61", f"ssm_{d}.json")["rows"] for d in (64, 128)}
    by_slice = {row["setting"].get("back_k"): row for row in checks[128]
                if row["dtype"] == "bfloat16" and set(row["setting"]) <= {"back_k"}}
    assert by_slice[None]["q"] != by_slice[None]["q"] and by_slice[16]["ok"] and by_slice[64]["ok"]     # NaN, right
    assert all(row["ok"] for row in checks[64]) and all(row.get("ok", True) for row in checks[128]
                                                        if row["dtype"] == "float32")
    tune = {(r["back_k"], r["back_warps"]): r for r in gpu_call("call62", "readout.json")["tune_backward"]}
    assert "wrong gradients" in tune[(32, 4)]["error"]
    assert (f"ssm's forward + backward {tune[(64, 4)]['ssm']:.2f} ms against {tune[(16, 4)]['ssm']:.2f} with slices "
            f"of 16") in text
    walked, solved = ({r["op"]: r for r in gpu_call("call63", f"readout_solve_{x}.json")["rows"]}["glr_readout fenwick"]
                      for x in ("false", "true"))
    first = {r["kernel"]: r["ms"] for r in gpu_call("call63", "readout_fla.json")["profile"]["fenwick"]}
    late = gpu_call("call64", "readout_local.json")
    row = {r["op"]: r for r in late["rows"]}["glr_readout fenwick"]
    kernels = {r["kernel"]: r["ms"] for r in late["profile"]["fenwick"]}
    assert (f"fenwick forward {solved['ms']:.3f} ms against the walk's {walked['ms']:.3f} with the walk's 32 x 64 "
            f"blocks (`boundary_local` {first['boundary_local']:.3f} ms), **{row['ms']:.3f}** with whole 128 x 128 "
            f"heads at 8 warps (`boundary_local` {kernels['boundary_local']:.3f}") in text
    assert f"forward + backward {row['ms_fwd_bwd']:.3f} against {walked['ms_fwd_bwd']:.3f}" in text
    tuned = late["tune_settings_0"]
    assert tuned[0]["solve_boundaries"] is False and min(tuned, key=lambda r: r["fenwick"]) is tuned[1]   # kept
    assert f"{tuned[0]['fenwick']:.3f}" == f"{walked['ms']:.3f}" and row["grad_rel_err_vs_float32"] < 1e-2
    assert (f"fenwick {row['ms']:.3f} ms forward, {row['ms_fwd_bwd']:.3f} ms forward + backward (gradients within "
            f"{row['grad_rel_err_vs_float32']:.4f} of float32)") in text
    fla57 = {r["op"]: r["ms"] for r in gpu_call("call57", "readout.json")["rows"]}["fla chunk_simple_gla"]
    assert f"against fla's {fla57:.3f} ms of `call57` that is {row['ms'] / fla57:.1f}x" in text
    assert row["ms"] / fla57 > 1.5 and "fenwick still **not met**" in text


def test_gpu_readout_page_quotes_the_direct_launches():
    """docs/gpu_readout.md: the A/B of direct Triton launches (calls 67, 68) and the layer's rows after it."""
    from helpers import gpu_call

    text = words("docs", "gpu_readout.md")

    def ms(call, name, op, precision="bf16 autocast", key="ms_fwd_bwd"):
        row = next(r for r in gpu_call(call, name)["rows"] if r["op"] == op and r["precision"] == precision)
        return row[key] if key != "device" else row["fwd_bwd_device"]["device_ms"]

    ssm, mha = "GLRMixer ssm readout", "nn.MultiheadAttention causal"
    jit67, direct67 = ms("call67", "layer_jit.json", ssm), ms("call67", "layer.json", ssm)
    jit68, direct68 = ms("call68", "layer_jit.json", ssm), ms("call68", "layer.json", ssm)
    assert (f"took {jit67:.3f} ms through the JIT against {direct67:.3f} ms direct (`call67`) and {jit68:.3f} against "
            f"{direct68:.3f} ms (`call68`, in the other order)") in text and jit67 > direct67 and jit68 > direct68
    assert (f"{direct68:.3f} ms against attention's {ms('call68', 'layer.json', mha):.3f} ms while its kernels take "
            f"{ms('call68', 'layer.json', ssm, key='device'):.3f} ms") in text
    comp = "bf16 autocast, torch.compile"
    graph = "bf16 autocast, CUDA graph"
    assert (f"Compiled it takes {ms('call68', 'layer.json', ssm, comp):.3f} ms against compiled attention's "
            f"{ms('call68', 'layer.json', mha, comp):.3f} ms (`call68`); as CUDA graphs "
            f"{ms('call66', 'layer.json', ssm, graph):.3f} ms against {ms('call66', 'layer.json', mha, graph):.3f} ms "
            f"(`call66`)") in text


def test_gpu_readout_page_quotes_call_69():
    """docs/gpu_readout.md: slices read in place against copied (call 69, one run) and the walk's launches."""
    from helpers import gpu_call

    text = words("docs", "gpu_readout.md")

    def ssm(name, spec="ssm"):
        row = next(r for r in gpu_call("call69", name)["rows"]
                   if r["op"] == f"GLRMixer {spec} readout" and r["precision"] == "bf16 autocast")
        return row["fwd_bwd_device"]

    place, copied = ssm("layer.json"), ssm("layer_copies.json")
    k = lambda d, name: d["top_kernels"][name]  # noqa: E731
    assert (f"ssm's boundary walk took {k(place, 'boundary_walk'):.3f} ms against {k(copied, 'boundary_walk'):.3f} "
            f"copied and its chunk output {k(place, 'chunk_output'):.3f} against "
            f"{k(copied, 'chunk_output'):.3f}") in text
    assert (f"the kernels' time was the same, {place['device_ms']:.3f} ms against {copied['device_ms']:.3f} "
            f"copied") in text and place["launches"] == copied["launches"] - 2
    walked, solved = ssm("layer_walk.json", "fenwick"), ssm("layer.json", "fenwick")
    assert f"in {walked['launches']:.0f} launches against {solved['launches']:.0f}" in " ".join(
        (ROOT / "kernels" / "scan" / "readout_triton.py").read_text().replace("#:", "").split())
    assert (f"({walked['device_ms']:.3f} against {solved['device_ms']:.3f} ms" in " ".join(
        (ROOT / "kernels" / "scan" / "readout_triton.py").read_text().replace("#:", "").split()))
    assert f"took as long in {solved['launches'] - walked['launches']:.0f} fewer launches, `call69`" in text


def test_gpu_readout_page_quotes_calls_71_and_72():
    """docs/gpu_readout.md: the kernels with strides in units of 8 against copied, the interleaved A/B (call 72) and
    the host's cost of single calls (call 71)."""
    from helpers import gpu_call

    text = words("docs", "gpu_readout.md")

    def device(name):
        row = next(r for r in gpu_call("call72", name)["rows"]
                   if r["op"] == "GLRMixer ssm readout" and r["precision"] == "bf16 autocast")
        return row["fwd_bwd_device"]

    place, copied = device("layer.json"), device("layer_copies.json")
    k = lambda d, name: d["top_kernels"][name]  # noqa: E731
    assert (f"In place at 3096 the boundary walk then took {k(place, 'boundary_walk'):.3f} ms and the chunk output "
            f"{k(place, 'chunk_output'):.3f} against {k(copied, 'boundary_walk'):.3f} and "
            f"{k(copied, 'chunk_output'):.3f} copied, and the layer's kernels {place['device_ms']:.3f} ms in "
            f"{place['launches']:.0f} launches against {copied['device_ms']:.3f} ms in "
            f"{copied['launches']:.0f}") in text
    mha, copies, in_place = (r["median_ms"] for r in gpu_call("call72", "ab_in_place.json")["rows"])
    assert (f"attention {mha:.3f} ms, ssm with copies {copies:.3f} ms, in place {in_place:.3f} ms "
            f"({in_place / mha:.2f}x attention's; not met)") in text
    alone = {r["op"].split()[1] if r["op"].startswith("GLR") else "mha": r["ms_fwd_bwd"]
             for r in gpu_call("call72", "layer.json")["rows"] if r["precision"] == "bf16 autocast"}
    assert f"gave ssm {alone['ssm']:.3f} ms against attention's {alone['mha']:.3f}" in text
    rows = gpu_call("call71", "launch.json")["rows"]
    host = {(r["op"], r.get("launch")): r["host_us"] for r in rows}
    two, sixteen = "triton kernel, 2 tensors + 8 ints", "triton kernel, 16 tensors + 8 ints"
    ro = "glr_readout ssm, B1 T2048 H1 d128 bf16, "
    assert (f"a torch elementwise op {host['x.add_(1)', None]:.1f} us, the projection's `F.linear` "
            f"{host['F.linear [8, 2048, 1024] x [3096, 1024] bf16', None]:.1f} us, a Triton kernel launched directly "
            f"{host[two, 'direct']:.1f} us with 2 tensor arguments and {host[sixteen, 'direct']:.1f} us with 16 "
            f"({host[two, 'jit']:.1f} and {host[sixteen, 'jit']:.1f} through Triton's JIT); `glr_readout` alone "
            f"{host[ro + 'forward + backward', None]:.0f} us a forward + backward for ssm "
            f"({host[ro + 'forward', None]:.0f} forward)") in text


def test_gpu_readout_quotes_the_plans_numbers_from_calls_75_to_77():
    """The bound launch, the readout's host cost, the interleaved ratios and the host profile of calls 75-77."""
    from helpers import gpu_call
    text = words("docs", "gpu_readout.md")
    launch = {r["launch"]: r["host_us"] for r in gpu_call("call75", "launch.json")["rows"]
              if r["op"] == "triton kernel, 16 tensors + 8 ints"}
    assert (f"{launch['bound']:.1f} us a kernel with 16 tensors against {launch['direct']:.1f} us launched directly"
            in text)
    host = {c: next(r["host_us"] for r in gpu_call(c, "launch.json")["rows"]
                    if r["op"] == "glr_readout ssm, B1 T2048 H1 d128 bf16, forward + backward")
            for c in ("call74", "call75", "call76")}
    ratios = {}
    for c in ("call75", "call76"):
        mha, ssm = gpu_call(c, "ab.json")["rows"]
        ratios[c] = ssm["median_ms"] / mha["median_ms"]
    assert (f"{host['call75']:.0f} us a forward + backward in `call75` ({host['call74']:.0f} us in `call74`), but "
            f"{host['call76']:.0f} us on the slower host of `call76`; interleaved with attention the eager ssm layer "
            f"took {ratios['call75']:.2f}x its time (`call75`) and {ratios['call76']:.2f}x (`call76`)") in text
    profile = gpu_call("call77", "host_profile.json")
    us = {r["function"]: r["cumulative_us"] for r in profile["functions"]}
    bound = next(v for k, v in us.items() if k.startswith("triton_launch.py") and k.endswith("__call__"))
    driver = next(v for k, v in us.items() if k.startswith("driver.py") and k.endswith("__call__"))
    assert (f"the nine bound launches take {bound:.0f} us of a {profile['wall_us_per_iter']:.0f} us step, Triton's own "
            f"launcher {driver:.0f} us of it") in text


def test_gpu_readout_quotes_the_diagonal_forward_of_calls_80_to_82():
    """Diagonal patterns' forward without M: the A/B of each call's two settings, fenwick's kernels with and without
    M, the ratio to fla, and fla's log-linear attention failing to compile."""
    from helpers import gpu_call
    text = words("docs", "gpu_readout.md")
    tune = {c: {r["diagonal"]: r["fenwick"] for r in gpu_call(c, "readout.json")["tune_settings_0"]}
            for c in ("call80", "call81", "call82")}
    assert (f"fenwick forward **{tune['call80'][True]:.3f} ms against {tune['call80'][False]:.3f}** with M formed"
            in text)
    assert f"fenwick forward {tune['call81'][True]:.3f} ms against {tune['call81'][False]:.3f} without DIAG" in text
    assert (f"fenwick forward {tune['call82'][True]:.3f} against {tune['call82'][False]:.3f} without DIAG "
            f"({tune['call80'][True]:.3f} with `call80`'s step 1)") in text
    assert tune["call80"][True] < tune["call80"][False] and all(tune[c][True] > tune["call80"][True]
                                                                for c in ("call81", "call82"))
    kernels = {c: {r["kernel"]: r["ms"] for r in gpu_call(c, "readout.json")["profile"]["fenwick"]}
               for c in ("call75", "call80", "call82")}
    assert (f"`chunk_coefficients` {kernels['call80']['chunk_coefficients']:.3f} against "
            f"{kernels['call75']['chunk_coefficients']:.3f} ms and the chunk output "
            f"{kernels['call80']['chunk_output']:.3f} against {kernels['call75']['chunk_output']:.3f}") in text
    assert f"`chunk_carries` {kernels['call82']['chunk_carries']:.3f} ms" in text
    fla = next(r["ms"] for r in gpu_call("call80", "readout.json")["rows"] if r["op"] == "fla chunk_simple_gla")
    fenwick = tune["call80"][True]
    assert (f"fenwick **{fenwick:.3f} ms** forward against fla's {fla:.3f} ms in the same run ({fenwick / fla:.2f}x): "
            f"still **not met**") in text and fenwick / fla > 1.5
    for c in ("call80", "call82"):
        log_linear = next(r for r in gpu_call(c, "readout.json")["rows"] if r["op"] == "fla chunk_log_linear_attn")
        assert log_linear["error"].startswith("CompilationError") and "ms" not in log_linear
    assert "does not compile under Triton 3.6 on the H200 (`call80`, `call82`" in text


def test_gpu_readout_quotes_the_register_stack_of_calls_118_to_120():
    """The register stack's row and bullet: each sweep's walked and solved forward, the backward's, the layer's A/B
    and the re-timed rows, each from its call's JSON."""
    from helpers import anchored_rows, gpu_call, sweep_ms as sweep
    text = words("docs", "gpu_readout.md")
    walk = {"solve_boundaries": False}
    stack, memory, ahead = sweep("call118", walk), sweep("call118", dict(walk, stack_slots=0)), sweep("call119", walk)
    solve = sweep("call118", {}) + sweep("call119", {})
    others = [r["fenwick"] for c in ("call118", "call119") for r in gpu_call(c, "readout.json")["tune_settings_0"]
              if len(r) > 3 and "stack_slots" not in r]
    assert (f"fenwick forward walked {stack[0]:.3f} ms with the stack against {memory[0]:.3f} gathering from memory "
            f"(`call118`), {ahead[0]:.3f} with the loads a step ahead (`call119`), against {solve[0]:.3f} with the "
            f"solve; other tiles and warps {min(others):.2f}-{max(others):.2f} ms") in text
    assert f"{solve[1]:.3f}" == f"{solve[0]:.3f}" and min(stack + memory + ahead) > max(solve)
    back = {r["solve_boundaries"]: r["fenwick"] for r in gpu_call("call118", "readout.json")["tune_back_settings_0"]
            if len(r) == 3}
    assert f"forward + backward walked {back[False]:.3f} against {back[True]:.3f} solved (`call118`)" in text
    layer = [r["median_ms"] for r in gpu_call("call120", "layer.json")["rows"] if r["op"] != "attention"]
    assert (f"{layer[1]:.3f} / {layer[3]:.3f} ms with the stack, {layer[0]:.3f} / {layer[2]:.3f} without "
            f"(`call120`)") in text
    fla, _, fen, ssm = anchored_rows("call119")
    assert (f"fenwick {fen['ms']:.3f} ms forward against fla's {fla:.3f} ({fen['ms'] / fla:.2f}x): still **not met**; "
            f"ssm {ssm['ms']:.3f} ({ssm['ms'] / fla:.2f}x)") in text
    assert (f"walked, with no gather from memory, fenwick's boundary states still cost more than solved (forward "
            f"{ahead[0]:.3f} against {solve[0]:.3f} ms)") in text


def test_gpu_readout_quotes_the_chunk_pairs_of_call_121():
    """The chunk output in pairs: each setting's fenwick forward against one chunk a program (the sweep's first and
    last rows), from ``call121``'s JSON; the reads a head from the layout (``ext_count`` against the pairs' unions)."""
    from helpers import sweep_ms

    from glrtheory import Pattern
    from glrtheory.kernels.scan.readout_plan import aligned_layout
    from proofs.fenwick_readout_work import reads
    text = words("docs", "gpu_readout.md")
    readme = words("README.md")
    single = sweep_ms("call121", {})
    pairs = {k: sweep_ms("call121", dict({"out_pairs": True}, **s))[0] for k, s in (
        ("4", {}), ("stages", {"out_stages": 2}), ("8", {"out_warps": 8}), ("halves", {"out_v": 64}),
        ("both", {"out_v": 64, "out_warps": 8}))}
    assert len(single) == 2 and min(pairs.values()) > max(single)
    assert (f"fenwick forward {pairs['4']:.3f} ms at 4 warps, {pairs['stages']:.3f} at 2 stages, {pairs['8']:.3f} at "
            f"8 warps, {pairs['halves']:.3f} with d_v halves, {pairs['both']:.3f} with both, against "
            f"{single[0]:.3f} / {single[1]:.3f} one chunk a program") in text
    assert (f"fenwick's forward took {pairs['4']:.3f} ms ({pairs['stages']:.3f} at 2 pipeline stages; "
            f"{pairs['halves']:.3f}-{pairs['both']:.3f} with 8 warps or d_v halves) against **{single[0]:.3f} / "
            f"{single[1]:.3f}** without") in readme
    layout = aligned_layout(Pattern.from_spec("fenwick").tables(16384), 64)
    listed = [set()] + reads(layout) + [set()]         # listed[i]: chunk i - 1's; pairs (-1, 0), (1, 2), ...
    paired = sum(len(listed[i] | listed[i + 1]) for i in range(0, len(listed) - 1, 2))
    assert (paired, int(layout.ext_count.sum())) == (704, 1280)
    assert "704 state reads a head against 1280" in readme and "704 reads a head against 1280" in text


def test_gpu_readout_quotes_the_inverse_order_of_call_122():
    """The chunk inverses' diagonal blocks first: the inverses alone per precision (``tune.json``'s sweep at 1 warp),
    fenwick's forward in each order (the sweep's rows) and the rows of the kernels as they are, from ``call122``."""
    from helpers import GPU_CALLS, anchored_rows, gpu_call, sweep_ms
    text = words("docs", "gpu_readout.md")
    readme = words("README.md")
    inverse = {(r["spec"], r["inverse_precision"], r["inverse_diagonal_first"]): r["ms_inverse"]
               for r in gpu_call("call122", "tune.json")["inverse_sweep"] if r["inverse_warps"] == 1}
    for precision, label in (("tf32", "bf16 coefficients (one tf32 pass, 1 warp)"),
                             ("tf32x3", "float32 coefficients (three tf32 passes, as the readout's chunks then "
                                        "and E_PP's blocks)")):
        pairs = ", ".join(f"{s} {inverse[(s, precision, False)]:.3f} -> {inverse[(s, precision, True)]:.3f}"
                          for s in ("fenwick", "power2", "ssm"))
        assert f"{label}: {pairs}" in text
    old, new = sweep_ms("call122", {"scan.inverse_diagonal_first": False}), sweep_ms("call122", {})
    wide = sweep_ms("call122", {"scan.inverse_diagonal_first": True, "scan.inverse_warps": 2})
    assert len(old) == len(new) == 2 and min(new) > max(old) and wide[0] > max(new)
    assert (f"fenwick's forward {new[0]:.3f} / {new[1]:.3f} ms against {old[0]:.3f} / {old[1]:.3f} (alternating), "
            f"{wide[0]:.3f} at 2 warps") in text
    assert f"fenwick's forward took **{new[0]:.3f} / {new[1]:.3f} ms against {old[0]:.3f} / {old[1]:.3f}**" in readme
    alone = "; ".join(f"{s} {inverse[(s, 'tf32', True)]:.3f} against {inverse[(s, 'tf32', False)]:.3f}"
                      for s in ("fenwick", "power2", "ssm"))
    assert alone in readme
    fla, sdpa, fen, ssm = anchored_rows("call122")
    quoted = (f"fenwick {fen['ms']:.3f} ms forward against fla's {fla:.3f} ({fen['ms'] / fla:.2f}x", f"ssm "
              f"{ssm['ms']:.3f} ({ssm['ms'] / fla:.2f}x)")
    assert all(q in text and q in readme for q in quoted)
    assert (f"forward + backward fenwick {fen['ms_fwd_bwd']:.3f}, ssm {ssm['ms_fwd_bwd']:.3f} against SDPA's "
            f"{sdpa:.3f} ms") in text
    assert f"forward + backward {fen['ms_fwd_bwd']:.3f} and {ssm['ms_fwd_bwd']:.3f} against SDPA's {sdpa:.3f}" in readme
    summary = (GPU_CALLS / "call122" / "pytest.txt").read_text().strip().splitlines()[-1]
    assert summary.startswith("167 passed") and "167 passed on the H200" in readme


def test_gpu_readout_quotes_the_inverse_precision_of_calls_123_124():
    """Step 1's chunk inverses in q's precision: fenwick's forward with one and three tf32 passes (the sweeps'
    rows, alternating), the rows and the test counts of ``call123`` and ``call124``, from their JSON and pytest
    summaries."""
    from helpers import GPU_CALLS, anchored_rows, gpu_call, sweep_ms
    text = words("docs", "gpu_readout.md")
    readme = words("README.md")
    three = {c: sweep_ms(c, {"scan.inverse_precision_16": "tf32x3"}) for c in ("call123", "call124")}
    one = {c: sweep_ms(c, {}) for c in ("call123", "call124")}
    assert all(len(one[c]) == len(three[c]) == 2 and max(one[c]) < min(three[c]) for c in one)
    pair = {c: (f"{one[c][0]:.3f} / {one[c][1]:.3f}", f"{three[c][0]:.3f} / {three[c][1]:.3f}") for c in one}
    assert (f"fenwick forward {pair['call123'][0]} ms (`call123`), {pair['call124'][0]} (`call124`) against "
            f"{pair['call123'][1]} and {pair['call124'][1]} with three passes") in text
    assert f"fenwick's forward **{pair['call124'][0]} ms against {pair['call124'][1]}** with three passes" in readme
    fla, sdpa, fen, ssm = anchored_rows("call124")
    assert (f"fenwick {fen['ms']:.3f} ms forward against fla's {fla:.3f} ({fen['ms'] / fla:.2f}x, **not met**), "
            f"ssm {ssm['ms']:.3f} ({ssm['ms'] / fla:.2f}x); forward + backward {fen['ms_fwd_bwd']:.3f} and "
            f"{ssm['ms_fwd_bwd']:.3f} against SDPA's {sdpa:.3f} ms") in readme
    assert (f"fenwick **{fen['ms']:.3f} ms** forward against fla's {fla:.3f} ({fen['ms'] / fla:.2f}x): still **not "
            f"met**; ssm {ssm['ms']:.3f} ({ssm['ms'] / fla:.2f}x); forward + backward fenwick {fen['ms_fwd_bwd']:.3f}, "
            f"ssm {ssm['ms_fwd_bwd']:.3f} against SDPA's {sdpa:.3f} ms") in text
    assert f"{fen['grad_rel_err_vs_float32']:.4f}" == "0.0028" and "error against float32 0.0028" in readme
    inverse, before = ([r["ms"] for r in gpu_call(c, "readout.json")["profile"]["fenwick"]
                        if r["kernel"] == "chunk_inverse"] for c in ("call124", "call122"))
    assert f"`chunk_inverse`'s two launches {inverse[0]:.3f} ms against {before[0]:.3f} (`call122`)" in text
    summaries = [(GPU_CALLS / c / "pytest.txt").read_text().strip().splitlines()[-1] for c in ("call123", "call124")]
    assert summaries[0].startswith("8 failed, 469 passed, 1 skipped") and "8 of its cases failed" in readme
    assert summaries[1].startswith("477 passed, 1 skipped") and "477 passed, 1 skipped (`call124`)" in readme


def test_gpu_readout_quotes_the_coefficient_precision_of_call125():
    """``[M | E]``'s products in q's precision: fenwick's forward with one and three tf32 passes (alternating),
    ``chunk_coefficients``' time against ``call124``'s, the rows, the tests and the layer of ``call125``, from its JSON
    and pytest summary."""
    from helpers import GPU_CALLS, gpu_call, sweep_ms
    text, readme = words("docs", "gpu_readout.md"), words("README.md")
    one, three = sweep_ms("call125", {}), sweep_ms("call125", {"scan.inverse_precision_16": "tf32x3"})
    assert len(one) == len(three) == 2 and max(one) < min(three)
    pair = f"{one[0]:.3f} / {one[1]:.3f} ms against {three[0]:.3f} / {three[1]:.3f}"
    assert f"fenwick forward {pair} with three passes for the inverses and the products" in text
    assert f"fenwick's forward **{pair}** with three passes for both" in readme
    coefficients = {(c, spec): r["ms"] for c in ("call124", "call125") for spec in ("fenwick", "blocks")
                    for r in gpu_call(c, "readout.json")["profile"][spec] if r["kernel"] == "chunk_coefficients"}
    new, old = ({spec: f"{coefficients[c, spec]:.3f}" for spec in ("fenwick", "blocks")}
                for c in ("call125", "call124"))
    fen = f"`chunk_coefficients` {new['fenwick']} ms against {old['fenwick']}"
    assert f"{fen} (`call124`), blocks' {new['blocks']} against {old['blocks']}" in text
    assert fen + " (`call124`)" in readme
    rows = {r["op"]: r for r in gpu_call("call125", "readout.json")["rows"]}
    fla, sdpa = rows["fla chunk_simple_gla"]["ms"], rows["sdpa causal"]["ms_fwd_bwd"]
    fenwick, blocks = rows["glr_readout fenwick"], rows["glr_readout blocks"]
    assert (f"fenwick **{fenwick['ms']:.3f} ms** forward against fla's {fla:.3f} ({fenwick['ms'] / fla:.2f}x): still "
            f"**not met**; blocks {blocks['ms']:.3f}; forward + backward fenwick {fenwick['ms_fwd_bwd']:.3f}, blocks "
            f"{blocks['ms_fwd_bwd']:.3f} against SDPA's {sdpa:.3f} ms") in text
    assert (f"fenwick {fenwick['ms']:.3f} ms forward against fla's {fla:.3f} ({fenwick['ms'] / fla:.2f}x, **not "
            f"met**); forward + backward {fenwick['ms_fwd_bwd']:.3f} against SDPA's {sdpa:.3f} ms") in readme
    assert fenwick["ms"] / fla > 1.5 and fenwick["ms_fwd_bwd"] < sdpa
    summary = (GPU_CALLS / "call125" / "pytest.txt").read_text().strip().splitlines()[-1]
    assert summary.startswith("619 passed, 2 skipped") and "619 passed, 2 skipped" in readme
    layer = {(r["op"], r["precision"]): r for r in gpu_call("call125", "layer.json")["rows"]}
    ms = [layer[f"GLRMixer {s} readout", "bf16 autocast"]["ms_fwd_bwd"] for s in ("ssm", "fenwick")]
    gib = [layer[f"GLRMixer {s} readout", "bf16 autocast"]["peak_bytes"] / 2**30 for s in ("ssm", "fenwick")]
    mha = layer["nn.MultiheadAttention causal", "bf16 autocast"]["ms_fwd_bwd"]
    assert (f"ssm {ms[0]:.3f}, fenwick {ms[1]:.3f} ms against attention's {mha:.3f}; peaks {gib[0]:.2f} / "
            f"{gib[1]:.2f} GiB") in readme


def test_readme_quotes_the_whole_suite_of_call126():
    """The whole test suite on the H200 (``call126``): its pytest summary, the six failures named, and the scan's power2
    row of the same call, from its files."""
    from helpers import GPU_CALLS, gpu_call
    readme = words("README.md")
    text = (GPU_CALLS / "call126" / "pytest.txt").read_text()
    assert text.strip().splitlines()[-1].startswith("6 failed, 2768 passed, 14 skipped")
    assert "2768 passed, 14 skipped, 6 failed" in readme
    failed = sorted({line.split()[1].split(" - ")[0] for line in text.splitlines() if line.startswith("FAILED")})
    assert len(failed) == 6 and sum(f.startswith("tests/test_gpu_bench.py::") for f in failed) == 5
    assert "tests/test_cli_patterns.py::test_console_script_is_installed" in failed
    source = (ROOT / "tests" / "test_gpu_bench.py").read_text()      # each of the five now skips where CUDA is
    assert all(f"@interpreted_run\ndef {f.split('::')[1]}(" in source for f in failed if "test_gpu_bench" in f)
    rows = {r["op"]: r for r in gpu_call("call126", "gpu_triton.json")["rows"]}
    p2, sdpa = rows["glr_scan_triton power2"], rows["sdpa causal"]["ms"]
    assert (f"power2 {p2['ms']:.2f} ms forward against SDPA's {sdpa:.2f} ({sdpa / p2['ms']:.1f}x), "
            f"{p2['ms_fwd_bwd']:.2f} ms forward + backward") in readme


def test_cpu_scan_page_quotes_the_runs_of_2026_12_03_to_08():
    """Each run of 2026-12-03 to 12-08 in ``cpu_scan_runs/`` is a row of ``docs/cpu_scan.md``'s table: its time,
    load, copy, the three ratios (preallocated, own output dropped, kept), the verdict (met: the first two at most 2x)
    and the one-thread time, from its JSON; one of the nine of 12-03 met 2x, the eighth, three of the first four of
    12-04, none of the next three, all of the next forty-two, then three but the first of them, then four but the
    third, then all three on the Intel host of 12-08."""
    import json
    text = (ROOT / "docs" / "cpu_scan.md").read_text()
    folder = ROOT / "benchmarks" / "results" / "cpu_scan_runs"
    runs = [path for day in ("03", "04", "05", "06", "07", "08")
            for path in sorted(folder.glob(f"cpu_scan-202612{day}T*.json"))]
    met, scaling = [], []
    for path in runs:
        run = json.loads(path.read_text())
        rows = {r["method"]: r["seconds"] for r in run["rows"] if r["n"] == 65536}
        scaling.append(rows["numba_1thread"] / rows["numba"])
        ratios = [rows[k] / rows["copy"] for k in ("numba", "numba_alloc", "numba_alloc_kept")]
        met.append(max(ratios[:2]) <= 2)
        when = run["machine"]["date"][5:16].replace("T", " ")
        assert (f"| {when} | {run['machine']['load_average'][0]:.2f} in the JSON | {rows['copy'] * 1e3:.2f} ms | "
                f"{' / '.join(f'{x:.2f}x' for x in ratios)}: {'met' if met[-1] else '**not met**'} "
                f"(one thread {rows['numba_1thread'] * 1e3:.2f} ms) |") in text, path.name
    assert met == ([False] * 7 + [True, False] + [True] * 3 + [False] * 4 + [True] * 42 + [False, True, True]
                   + [True, True, False, True] + [True] * 3)
    others = scaling[:7] + scaling[8:9]
    assert (f"two threads {scaling[7]:.1f}x faster than one, against {min(others):.1f}x-{max(others):.1f}x in the "
            f"other runs of that day") in " ".join(text.split())
    assert "(met in sixty of seventy-five runs, fifty-four of the last sixty-two)" in text
    assert f"with two threads only {scaling[12]:.1f}x faster than one" in " ".join(text.split())


def test_fla_shapes_of_call127_are_quoted_from_their_json():
    """fla's six shapes in ``call127``: ssm's and fenwick's ranges of time over fla's, how many of ssm's are within
    1.5x, and the D256 row against ``call57``'s, in README and the readout page."""
    from helpers import gpu_call

    shapes = gpu_call("call127", "readout.json")["fla_shapes"]
    over = {spec: [r["over_fla"] for r in shapes if r["op"] == f"glr_readout {spec}"] for spec in ("ssm", "fenwick")}
    assert len(over["ssm"]) == len(over["fenwick"]) == 6
    wide = {c: {r["op"].split()[-1]: r["ms"] for r in gpu_call(c, "readout.json")["fla_shapes"]
                if r["D"] == 256 and r.get("ms")} for c in ("call127", "call57")}
    now, then = wide["call127"], wide["call57"]
    within = sum(x <= 1.5 for x in over["ssm"])
    assert within == 5 and max(over["ssm"]) == now["ssm"] / now["chunk_simple_gla"]
    readme, text = words("README.md"), words("docs", "gpu_readout.md")
    ssm = f"ssm takes {min(over['ssm']):.2f}x to {max(over['ssm']):.2f}x fla's time, within 1.5x at five of the six"
    assert ssm in readme
    assert (f"at B8 T2048 H32 D256 it takes {now['ssm']:.3f} ms against fla's {now['chunk_simple_gla']:.3f} "
            f"({max(over['ssm']):.2f}x), where `call57` measured {then['ssm']:.3f} ms "
            f"({then['ssm'] / then['chunk_simple_gla']:.2f}x)") in readme
    assert f"fenwick takes {min(over['fenwick']):.2f}x to {max(over['fenwick']):.2f}x" in readme
    assert (f"ssm {min(over['ssm']):.2f}x to {max(over['ssm']):.2f}x fla's time, within 1.5x at five; at B8 T2048 "
            f"H32 D256 {now['ssm']:.3f} ms against {now['chunk_simple_gla']:.3f} ({max(over['ssm']):.2f}x), slower "
            f"than the {then['ssm']:.3f} ms of `call57`") in text
    assert f"fenwick {min(over['fenwick']):.2f}x to {max(over['fenwick']):.2f}x" in text


def test_the_d256_settings_of_call128_are_quoted_from_their_json_and_kept():
    """``call128``'s sweep at B8 T2048 H32 D256: the fastest setting (ssm + fenwick) is the ``wide`` one now in force,
    README and the readout page quote it against the setting before (the sweep's first row), and fla's six shapes in
    the same call."""
    from helpers import gpu_call

    from glrtheory.kernels.scan import readout_triton

    run = gpu_call("call128", "readout.json")
    sweep = [({k: v for k, v in r.items() if k not in ("ssm", "fenwick")}, r) for r in run["tune_settings_0"]]
    (best_setting, best), before = min(sweep, key=lambda s: s[1]["ssm"] + s[1]["fenwick"]), sweep[0][1]
    assert sweep[0][0] == {} and best_setting == {"out_k": 64, "out_after": False}
    assert {k: readout_triton.GPU["wide"][k] for k in best_setting} == best_setting
    over = {spec: [r["over_fla"] for r in run["fla_shapes"] if r["op"] == f"glr_readout {spec}"]
            for spec in ("ssm", "fenwick")}
    wide = {r["op"].split()[-1]: r["ms"] for r in run["fla_shapes"] if r["D"] == 256 and r.get("ms")}
    assert len(over["ssm"]) == 6 and max(over["ssm"]) <= 1.5
    readme, text = words("README.md"), words("docs", "gpu_readout.md")
    quote = (f"ssm's forward {best['ssm']:.3f} ms against {before['ssm']:.3f} before (fenwick {best['fenwick']:.3f} "
             f"against {before['fenwick']:.3f})")
    shapes = (f"ssm takes {min(over['ssm']):.2f}x to {max(over['ssm']):.2f}x fla's time, within 1.5x at all six again "
              f"(D256: {wide['ssm']:.3f} ms against {wide['chunk_simple_gla']:.3f}); fenwick takes "
              f"{min(over['fenwick']):.2f}x to {max(over['fenwick']):.2f}x")
    assert quote in readme and shapes in readme
    assert f"without it {best['ssm']:.3f} / {best['fenwick']:.3f}, now the `wide` setting" in text
    assert shapes in text


def test_wide_heads_backward_of_calls_128_to_131_is_quoted_from_their_json():
    """Heads of 256 through the backward's kernels: the readout's forward + backward before (``call128``, torch ops)
    and after (``call129``; ``call130``'s sweep at 8 warps, the ``wide`` setting now in force), SDPA's, and the layer
    at 4 heads (``call131``), in README and the readout page."""
    from helpers import gpu_call

    from glrtheory.kernels.scan import readout_triton

    def fwd_bwd(call):
        return {r["op"].split()[-1]: r["ms_fwd_bwd"] for r in gpu_call(call, "readout.json")["rows"]
                if r.get("D") == 256 and "ms_fwd_bwd" in r}

    torch_ops, kernels = fwd_bwd("call128"), fwd_bwd("call129")
    eight = next(r for r in gpu_call("call130", "readout.json")["tune_back_settings_0"] if r.get("back_warps") == 8)
    layer = {r["op"]: r for r in gpu_call("call131", "layer.json")["rows"] if r["precision"] == "bf16 autocast"}
    ssm, fenwick, mha = (layer[k] for k in ("GLRMixer ssm readout", "GLRMixer fenwick readout",
                                            "nn.MultiheadAttention causal"))
    assert readout_triton.BACKWARD_HEAD == 256 and readout_triton.GPU["wide"]["back_warps"] == 8
    assert eight["ssm"] < kernels["ssm"] < torch_ops["ssm"] and eight["fenwick"] < kernels["fenwick"]
    readme, text = words("README.md"), words("docs", "gpu_readout.md")
    assert (f"ssm {eight['ssm']:.3f} ms and fenwick {eight['fenwick']:.3f} (`call130`, at 8 warps, now "
            f"`GPU[\"wide\"]`) against {torch_ops['ssm']:.3f} and {torch_ops['fenwick']:.3f} through the torch ops "
            f"(`call128`); SDPA takes {kernels['causal']:.3f}") in readme
    assert (f"ssm {ssm['ms_fwd_bwd']:.3f} ms and fenwick {fenwick['ms_fwd_bwd']:.3f} forward + backward against "
            f"`nn.MultiheadAttention`'s {mha['ms_fwd_bwd']:.3f}, peaks {ssm['peak_bytes'] / 2**30:.2f} / "
            f"{fenwick['peak_bytes'] / 2**30:.2f} GiB") in readme
    assert (f"ssm {kernels['ssm']:.3f} ms, fenwick {kernels['fenwick']:.3f} (`call129`) against "
            f"{torch_ops['ssm']:.3f} and {torch_ops['fenwick']:.3f} through the torch ops (`call128`)") in text
    assert f"{eight['ssm']:.3f} and {eight['fenwick']:.3f} (`call130`). SDPA takes {kernels['causal']:.3f} ms" in text
    assert f"Blocks took {kernels['blocks']:.3f} ms" in text
    assert (f"ssm {ssm['ms_fwd_bwd']:.3f}, fenwick {fenwick['ms_fwd_bwd']:.3f} ms forward + backward against "
            f"attention's {mha['ms_fwd_bwd']:.3f} (`call131`") in text


def test_float32_blocks_of_64_of_calls_156_and_157_are_quoted_from_their_json():
    """``call156``, ``call157``: the float32 chunk output's d_k slices and d_v blocks of 64 (``GPU["float32"]``) are
    the fastest of each sweep, at the main shape and at D256, against the settings before them (each timed twice); the
    readout page quotes the sweeps and the rows."""
    from helpers import gpu_call

    from glrtheory.kernels.scan import readout_triton

    blocks = {k: v for k, v in readout_triton.GPU["float32"].items() if k not in ("chunk_walk", "decay_back_k")}
    assert blocks == {"out_k": 64, "out_v": 64}
    main, wide = (gpu_call(c, "readout.json") for c in ("call156", "call157"))
    assert main["dtype"] == wide["dtype"] == "float32" and wide["shape"] == dict(B=8, T=2048, H=32, D=256)
    sweep = main["tune_settings_0"]
    key = lambda r: r["ssm"] + r["fenwick"]                                  # noqa: E731
    best = min(sweep, key=key)
    assert {k: v for k, v in best.items() if k not in ("ssm", "fenwick")} == {"float32": {"out_k": 64}, "out_v": 64}
    before = [r for r in sweep if set(r) == {"ssm", "fenwick"}]
    text = words("docs", "gpu_readout.md")
    span = lambda xs: f"{min(xs):.3f}-{max(xs):.3f}"                         # noqa: E731
    assert (f"took ssm {best['ssm']:.3f} ms and fenwick {best['fenwick']:.3f}, against "
            f"{span([r['ssm'] for r in before])} and {span([r['fenwick'] for r in before])}") in text
    new = [r for r in wide["tune_settings_0"] if "float32" not in r]
    old = [r for r in wide["tune_settings_0"] if "float32" in r]
    assert len(new) == len(old) == 2 and max(map(key, new)) < min(map(key, old))
    assert (f"took ssm {span([r['ssm'] for r in new])} ms and fenwick {span([r['fenwick'] for r in new])} against "
            f"{span([r['ssm'] for r in old])} and {span([r['fenwick'] for r in old])}") in text
    quoted = {s: (f"{span([r[s] for r in before])}, and {span([r[s] for r in new])} against "
                  f"{span([r[s] for r in old])}") for s in ("ssm", "fenwick")}
    assert (f"float32 forward takes {best['fenwick']:.3f} ms against {quoted['fenwick']} at B8 T2048 H32 D256; "
            f"ssm's {best['ssm']:.3f} against {quoted['ssm']}.") in words("README.md")
    rows = {r["op"].split()[-1]: r for r in main["rows"] if r["op"].startswith("glr_readout")}
    assert max(max(r["rel_err_vs_float32"], r["grad_rel_err_vs_float32"]) for r in rows.values()) < 7e-7
    assert (f"ssm {rows['ssm']['ms']:.3f} / {rows['ssm']['ms_fwd_bwd']:.3f}, fenwick {rows['fenwick']['ms']:.3f} / "
            f"{rows['fenwick']['ms_fwd_bwd']:.3f} ms forward / forward + backward") in text


def test_float32_heads_and_chunks_of_128_of_call133_are_quoted_from_their_json():
    """``call133``: the float32 chunk output's d_k slices at d_v blocks of 128 (the fastest of the sweep 32, 128 the
    slowest, over the shared memory), the float32 rows, and chunks of 128 against 64, in the readout page."""
    from helpers import gpu_call

    run = gpu_call("call133", "readout_f32.json")
    ms = {}
    for r in run["tune_settings_0"]:
        ms.setdefault(r["float32"]["out_k"], []).append((r["ssm"], r["fenwick"]))
    fastest = min(ms, key=lambda k: min(s + f for s, f in ms[k]))
    assert fastest == 32 and max(ms, key=lambda k: ms[k][0][1]) == 128
    rows = {r["op"].split()[-1]: r for r in run["rows"] if r.get("dtype") == "float32"}
    assert run["dtype"] == "float32" and max(r["rel_err_vs_float32"] for r in rows.values()) < 5e-7
    c128 = {r["op"].split()[-1]: r["ms"] for r in gpu_call("call133", "readout_c128.json")["rows"] if "ms" in r}
    text = words("docs", "gpu_readout.md")
    (s32, f32), (s32b, f32b), (s64, f64), (s128, f128) = ms[32][0], ms[32][1], ms[64][0], ms[128][0]
    assert (f"32 took {s32:.3f} / {f32:.3f} ({s32b:.3f} / {f32b:.3f} again), 64 took {s64:.3f} / {f64:.3f}, and 128 "
            f"took {s128:.3f} / {f128:.3f}") in text
    assert (f"ssm {rows['ssm']['ms']:.3f}, fenwick {rows['fenwick']['ms']:.3f}, blocks {rows['blocks']['ms']:.3f} ms "
            f"forward ({rows['ssm']['ms_fwd_bwd']:.3f}, {rows['fenwick']['ms_fwd_bwd']:.3f}, "
            f"{rows['blocks']['ms_fwd_bwd']:.3f} with the backward)") in text
    assert f"fenwick forward {c128['fenwick']:.3f} ms" in text and f"ssm {c128['ssm']:.3f} (chunk output" in text
    assert (f"fenwick's float32 forward {f32:.3f} ms against {f64:.3f} with slices of 64 and {f128:.3f} with 128 "
            "(over the shared memory)") in words("README.md")


def _fla_rows(call: str, name: str) -> dict:
    """``{(op, B, T, H, D): row}`` of a ``gpu_fla.py`` or ``gpu_readout.py`` JSON's rows."""
    from helpers import gpu_call
    return {(r["op"], r["B"], r["T"], r["H"], r["D"]): r for r in gpu_call(call, name)["rows"]}


def test_fla_log_linear_of_calls_137_to_140_comes_from_their_json():
    """fla's log-linear attention against fenwick in gpu_readout.md and gpu_notes.md: the main rows of call137, the
    ranges over fla's six shapes of call138, and chunk_simple_gla's time at the main shape in calls 137-140."""
    text, notes = words("docs", "gpu_readout.md"), words("benchmarks", "results", "gpu_notes.md")
    main = (2, 16384, 16, 128)
    r137 = _fla_rows("call137", "readout.json")
    log_linear, fenwick = r137[("fla chunk_log_linear_attn", *main)], r137[("glr_readout fenwick", *main)]
    gla = r137[("fla chunk_simple_gla", *main)]["ms"]
    for page in (text, notes):
        assert f"{log_linear['ms']:.3f} ms forward" in page and f"{log_linear['ms_fwd_bwd']:.3f}" in page
        assert f"{fenwick['ms']:.3f}" in page and f"{fenwick['ms_fwd_bwd']:.3f}" in page
    assert (f"**{fenwick['ms'] / log_linear['ms']:.2f}x and {fenwick['ms_fwd_bwd'] / log_linear['ms_fwd_bwd']:.2f}x "
            "of it**") in text
    assert f"2.47x ({fenwick['ms']:.3f} against {gla:.3f} ms, `call137`" in text and fenwick["ms"] / gla > 1.5
    rows = _fla_rows("call138", "fla.json").values()
    ll = [r["ms"] for r in rows if r["op"] == "fla chunk_log_linear_attn"]
    over = [r["over_fla_log_linear"] for r in rows if r["op"] == "glr_readout fenwick"]
    assert len(ll) == len(over) == 6
    assert f"takes {min(ll):.3f} to {max(ll):.3f} ms, and fenwick {min(over):.2f}x to {max(over):.2f}x of that" in text
    assert f"fla's log-linear attention {min(ll):.3f} to {max(ll):.3f} ms forward" in notes
    slower = [1 / r["over_fla_log_linear"] for c, f in [("call138", "fla.json"), ("call139", "fla_1.json"),
                                                         ("call139", "fla_2.json"), ("call139", "fla_3.json"),
                                                         ("call139", "fla_4.json"), ("call140", "fla.json")]
              for r in _fla_rows(c, f).values() if "over_fla_log_linear" in r]
    spread = f"{min(slower):.1f}x to {max(slower):.1f}x"
    assert f"by {spread}" in text and spread in notes
    at_main = [_fla_rows(c, f)[("fla chunk_simple_gla", *main)]["ms"]
               for c, f in [("call137", "readout.json"), ("call138", "fla.json"), ("call139", "fla_1.json"),
                            ("call139", "fla_4.json"), ("call140", "fla.json")]]
    assert f"between {min(at_main):.3f} and {max(at_main):.3f} ms" in notes
    assert min(at_main) < 0.44 and max(at_main) > 0.59                   # the spread the pages describe


def test_fla_log_linear_error_was_the_level_weights_dtype():
    """The pages say why fla's log-linear attention failed in calls 80-136: our float32 level weights; call137's row
    (bf16 weights) has a time and no error."""
    text = words("docs", "gpu_readout.md")
    assert "It passed float32 level weights beside bf16 values" in text
    row = _fla_rows("call137", "readout.json")[("fla chunk_log_linear_attn", 2, 16384, 16, 128)]
    assert "error" not in row and row["ms"] > 0


def test_level_walk_of_call142_comes_from_its_json():
    """The level walk's sweep and rows (call142) in gpu_readout.md, gpu_notes.md, README.md and the setting's comment,
    each as the phrase it is quoted in; the solved forward's range over calls 134-142 and the solved forward +
    backward of calls 134 and 137. The sweep's ``{"level_walk": true}`` ran with ad2e72c's tiles, 32 x 64."""
    from helpers import gpu_call, sweep_ms as sweep
    text, notes, readme = (words("docs", "gpu_readout.md"), words("benchmarks", "results", "gpu_notes.md"),
                           words("README.md"))
    comment = words("kernels", "scan", "readout_triton.py").replace(" #: ", " ")     # the settings' comment
    level = dict(level_walk=True, level_k=64, level_v=64, level_warps=8)
    (walked,), (solved,) = sweep("call142", level), sweep("call142", {})
    (narrow,), (wide,) = sweep("call142", {"level_walk": True}), sweep("call142", dict(level, level_v=128))
    main = (2, 16384, 16, 128)
    row = _fla_rows("call142", "readout.json")[("glr_readout fenwick", *main)]
    backs = [_fla_rows(c, f)[("glr_readout fenwick", *main)]["ms_fwd_bwd"]
             for c, f in (("call134", "readout_outv.json"), ("call137", "readout.json"))]
    kernel = {k["kernel"]: k["ms"] for k in gpu_call("call142", "readout.json")["profile"]["fenwick"]}
    assert gpu_call("call142", "readout.json")["setting"]["level_walk"] and walked < solved
    back = f"{min(backs):.3f}-{max(backs):.3f} solved"
    assert (f"fenwick forward {walked:.3f} ms with tiles of 64 x 64 at 8 warps, {narrow:.3f} with 32 x 64, "
            f"{wide:.3f} with 64 x 128, against {solved:.3f} with the solve; the kernel {kernel['level_walk']:.3f} ms; "
            f"forward + backward {row['ms_fwd_bwd']:.3f}, against {back} in calls 134 and 137") in text
    assert (f"It took fenwick's forward to {walked:.3f} ms against {solved:.3f} with the solve (`call142`), the kernel "
            f"{kernel['level_walk']:.3f} ms of it and the chunk output {kernel['chunk_output']:.3f}") in text
    assert (f"fenwick's forward took {walked:.3f} ms with it against {solved:.3f} with the solve, forward + backward "
            f"{row['ms_fwd_bwd']:.3f} (`call142`) against {back} in calls 134 and 137") in readme
    assert (f"fenwick's forward {walked:.3f} ms against {solved:.3f} solved, with d_k x d_v tiles of 64 x 64 and 8 "
            f"warps (32 x 64 {narrow:.3f}, 64 x 128 {wide:.3f}), forward + backward {row['ms_fwd_bwd']:.3f} "
            f"(gpu_calls/call142) against {back} (calls 134, 137)") in comment
    assert (f"fenwick forward **{walked:.3f} ms walked by level** (tiles of 64 x 64, 8 warps) against **{solved:.3f} "
            f"solved**; {narrow:.3f} at 32 x 64, {wide:.3f} at 64 x 128") in notes
    assert (f"fenwick {row['ms']:.3f} ms forward, {row['ms_fwd_bwd']:.3f} forward + backward, within "
            f"{row['rel_err_vs_float32']:.4f} / {row['grad_rel_err_vs_float32']:.4f} of float32") in notes
    assert f"{100 * (1 - walked / solved):.1f}% less in the forward" in notes
    assert f"forward + backward {row['ms_fwd_bwd']:.3f} ms against {back}" in notes
    before = [r["ms"] for c, f in [("call134", "readout_outv.json"), ("call137", "readout.json"),
                                   ("call138", "fla.json"), ("call139", "fla_1.json"), ("call139", "fla_4.json"),
                                   ("call140", "fla.json")]
              for key, r in _fla_rows(c, f).items() if key == ("glr_readout fenwick", *main)]
    spread = before + [solved]
    assert len(before) == 6 and max(row["ms"], walked) < min(spread)
    assert f"forward took {min(spread):.3f} to {max(spread):.3f} ms in calls 134-142" in notes


def test_fla_anchor_of_calls_149_to_151_comes_from_their_json():
    """fla's ``chunk_simple_gla`` in fresh processes (calls 149-151): how many took 0.426-0.430 ms, the one slower
    time, that every process whose choices were found chose the same configurations (as README and the readout
    page say), and fenwick's forward of call148 over the anchor."""
    from helpers import gpu_call
    runs = [r for c in ("call149", "call150", "call151") for r in gpu_call(c, "fla_autotune.json")["rows"]]
    fast, slow = [r["ms"] for r in runs if r["ms"] < 0.45], [r["ms"] for r in runs if r["ms"] >= 0.45]
    assert len(runs) == 20 and len(fast) == 19 and slow == [runs[0]["ms"]]
    chosen = {str(sorted(r["configs"].items())) for r in runs if r["configs"]}
    assert len([r for r in runs if r["configs"]]) == 12 and len(chosen) == 1
    fenwick = _fla_rows("call148", "readout.json")[("glr_readout fenwick", 2, 16384, 16, 128)]["ms"]
    readme, text = words("README.md"), words("docs", "gpu_readout.md")
    assert (f"19 took {min(fast):.3f} to {max(fast):.3f} ms, one (the first of `call149`) {slow[0]:.3f}, and in the 12 "
            f"whose autotuned kernels' choices were recorded, every kernel chose the same configuration") in readme
    assert f"fenwick's forward ({fenwick:.3f} ms, `call148`) is {fenwick / max(fast):.1f}x fla's" in readme
    assert f"took {min(fast):.3f}-{max(fast):.3f} ms; the first process of `call149` took {slow[0]:.3f}" in text


def test_tiled_mixing_table_is_quoted_from_its_json():
    """The tile widths' table of gpu_readout.md's tiled-mixing section: each width's ms and peak (GB) from
    ``call160``'s JSON, tiles of 64 from ``call159``'s; 512 within 30% of the fastest width of each pattern."""
    from helpers import gpu_call

    text = (ROOT / "docs" / "gpu_readout.md").read_text()
    rows = {(r["op"].split()[-1], r["chunk"]): r for r in gpu_call("call160", "tiled.json")["rows"][1:]}
    narrow = gpu_call("call159", "tiled.json")["rows"][1]
    assert f"| 64 (`call159`) | {narrow['ms']:.2f} / {narrow['ms_fwd_bwd']:.2f} | |" in text
    for width in (256, 512, 1024, 2048):
        cells = [f"{r['ms']:.2f} / {r['ms_fwd_bwd']:.2f}, {r['peak_bytes'] / 1e9:.2f} GB"
                 for r in (rows["power2", width], rows["quadratic", width])]
        line = next(line for line in text.splitlines() if line.startswith(f"| {width} "))
        assert line.endswith(f"| {cells[0]} | {cells[1]} |"), width
    for spec in ("power2", "quadratic"):
        best = min(rows[spec, w]["ms_fwd_bwd"] for w in (256, 512, 1024, 2048))
        assert rows[spec, 512]["ms_fwd_bwd"] <= 1.3 * best


def test_tile_product_rows_are_quoted_from_their_json():
    """gpu_readout.md's tiled-mixing section: call163's breakdown and call164's readout and layer rows, from their
    JSON (kernel times summed by kind as the page names them)."""
    from helpers import gpu_call

    text = words("docs", "gpu_readout.md")
    before = gpu_call("call163", "tiled.json")["rows"][1]
    kernels = before["fwd_bwd_kernels"]
    scans = sum(v for k, v in kernels.items() if k in ("coef_grad", "forward_walk", "backward_pull", "chunk_inverse"))
    assert (f"{before['fwd_bwd_device']['device_ms']:.2f} ms of kernels in {before['fwd_bwd_device']['launches']:.0f} "
            f"launches, the scans {scans:.2f}") in text
    rows = {r["op"].split()[-1]: r for r in gpu_call("call164", "tiled.json")["rows"]}
    p2, quad = rows["power2"], rows["quadratic"]
    ours = {k: p2["fwd_bwd_kernels"][k] for k in ("_forward", "_backward_rows", "_backward_columns")}
    busy = p2["fwd_bwd_device"]
    assert (f"the readout power2 {p2['ms']:.2f} / {p2['ms_fwd_bwd']:.2f} ({busy['device_ms']:.2f} ms of "
            f"kernels in {busy['launches']:.0f} launches: `_forward` {ours['_forward']:.2f}, "
            f"`_backward_rows` {ours['_backward_rows']:.2f}, `_backward_columns` {ours['_backward_columns']:.2f} over "
            f"the two forwards and the backward), quadratic {quad['ms']:.2f} / {quad['ms_fwd_bwd']:.2f} "
            f"({quad['fwd_bwd_device']['device_ms']:.2f})") in text
    layer = {r["op"].split()[1]: r for r in gpu_call("call164", "layer.json")["rows"] if "GLRMixer" in r["op"]}
    assert (f"the layer power2 {layer['power2']['ms_fwd']:.2f} / {layer['power2']['ms_fwd_bwd']:.2f} ms") in text
    assert (f"peaks {layer['power2']['peak_bytes'] / 2**30:.2f} and {layer['quadratic']['peak_bytes'] / 2**30:.2f} "
            f"GiB") in text


def test_blockwise_rows_are_quoted_from_their_json():
    """gpu_readout.md's paragraph on ``Blockwise``'s rows (call166): the readout's and the layer's times from their
    JSON, faster than call164's on the wall and in launches."""
    from helpers import gpu_call

    text = words("docs", "gpu_readout.md")
    now = gpu_call("call166", "tiled.json")["rows"][1]
    then = {r["op"]: r for r in gpu_call("call164", "tiled.json")["rows"]}["glr_readout power2"]
    busy = now["fwd_bwd_device"]
    assert (f"the readout power2 {now['ms']:.2f} / {now['ms_fwd_bwd']:.2f} ms forward / forward + backward "
            f"({busy['device_ms']:.2f} ms of kernels in {busy['launches']:.0f} launches, against "
            f"{then['ms_fwd_bwd']:.2f} ms and {then['fwd_bwd_device']['launches']:.0f} launches in `call164`)") in text
    layer = {r["op"].split()[1] + r["precision"]: r for r in gpu_call("call166", "layer.json")["rows"]}
    assert (f"the layer power2 {layer['power2bf16 autocast']['ms_fwd_bwd']:.2f} ms forward + backward (10.07 in "
            f"`call164`), peak {layer['power2bf16 autocast']['peak_bytes'] / 2**30:.2f} GiB") in text
    assert now["ms_fwd_bwd"] < then["ms_fwd_bwd"] and busy["launches"] < then["fwd_bwd_device"]["launches"]


def test_gpu_readout_quotes_the_chunk_walks_offline_compile():
    """The fused walk's resources in gpu_readout.md, as ``h200_compile.py --chunk-walk`` wrote them (committed), and
    its defaults in ``readout_triton.GPU`` those the page names: d_v blocks of 32 at 8 warps, 16-bit slots, the inputs
    at the step's top, the own terms in the walk, and the walk itself off."""
    from glrtheory.kernels.scan import readout_triton

    rows = {}
    for line in (ROOT / "benchmarks" / "results" / "chunk_walk_compile.txt").read_text().splitlines()[1:]:
        *settings, reg, stack, shared = line.split()
        key = tuple(value for _, value in (s.split("=") for s in settings))     # v, warps, ahead, slot16, own, split
        rows[key[:-1] if key[-1] == "False" else key] = (int(reg[4:]), int(stack[6:]), int(shared[7:]))
    assert len(rows) == 76
    text = words("docs", "gpu_readout.md")
    gpu = readout_triton.GPU
    default = (str(gpu["walk_chunk_v"]), str(gpu["walk_chunk_warps"]), str(gpu["walk_chunk_ahead"]),
               str(gpu["walk_chunk_slot16"]), str(gpu["walk_chunk_own"]))
    assert default == ("32", "8", "False", "True", "True") and not gpu["chunk_walk"]
    own_off = default[:4] + ("False",)
    assert (f"spills {rows[default][1]} bytes with the own terms in the walk (16-bit slots, the inputs at the step's "
            f"top: the defaults) and nothing without them ({rows[own_off][0]} registers)") in text
    assert rows[own_off][1] == 0
    two_waves = [rows["16", "8", "False", slot16, "True"] for slot16 in ("False", "True")]
    assert all(stack == 0 for _, stack, _ in two_waves)
    lean = rows["16", "8", "False", "True", "False"], rows["16", "16", "False", "True", "False"]
    assert lean[0][1] == lean[1][1] == 0
    assert f"take {lean[0][0]} registers ({lean[1][0]} at 16 warps)" in text
    wide = rows["64", "8", "False", "True", "True"][2]
    assert f"ask {wide} bytes of shared memory, more than the H200 has" in text and wide > 232448
    split = rows[default + ("True",)], rows[own_off + ("True",)]
    assert (f"Split in two (`walk_chunk_split`, next bullet), the defaults spill {split[0][1]} bytes ({split[1][1]} "
            "without the own terms)") in text


def test_the_float32_backward_tune_on_the_h200_is_quoted_from_call242():
    """call242 alternated slices of 64 (the setting with ``decay_back_k`` None) with the default on an H200: ssm's
    four times in README and gpu_readout.md, fenwick's in gpu_readout.md, to the digits quoted; the default wins for
    ssm in both of its runs."""
    from helpers import gpu_call

    run = gpu_call("call242", "time_float32.json")
    assert run["machine"]["gpu"] == "NVIDIA H200" and run["dtype"] == "float32"
    rows = run["tune_back_settings_0"]
    wide = [r for r in rows if "float32" in r and r["float32"]["decay_back_k"] is None]
    default = [r for r in rows if "float32" not in r]
    assert len(wide) == len(default) == 2 and max(r["ssm"] for r in default) < min(r["ssm"] for r in wide)
    ssm = (f"{default[0]['ssm']:.3f} / {default[1]['ssm']:.3f} against {wide[0]['ssm']:.3f} / "
           f"{wide[1]['ssm']:.3f} (`call242`)")
    assert ssm in words("README.md")
    page = words("docs", "gpu_readout.md")
    assert (f"ssm {default[0]['ssm']:.3f} / {default[1]['ssm']:.3f} ms against {wide[0]['ssm']:.3f} / "
            f"{wide[1]['ssm']:.3f}, fenwick {default[0]['fenwick']:.2f} / {default[1]['fenwick']:.2f} against "
            f"{wide[0]['fenwick']:.2f} / {wide[1]['fenwick']:.2f}") in page


def pytest_progress(text: str) -> str:
    """The progress characters of ``pytest -q`` output (each line's ``[ NN%]`` column cut off)."""
    return "".join(line.split("[")[0] for line in text.splitlines()).replace(" ", "")


def test_the_padded_memcheck_of_calls_243_246_and_247_is_quoted_from_their_logs():
    """README's ranges of the scan's and the readout's test files that ran under padded memcheck are those of the
    logs: call243's files cut by the time limit (their progress dots and skips; no test failed, and no sanitizer log
    that came back has an error line), call246's runs from SANITIZE_FROM on (its output: the scan's summary line,
    the readout's dots) and call247's summary of the readout's last tests; the calls leave no gap, and each file is
    covered whole (the readout's size on CUDA from call246's progress percentages)."""
    calls = ROOT / "benchmarks" / "results" / "gpu_calls"
    ran = {}
    for name in ("test_kernels_triton", "test_readout_triton"):
        progress = pytest_progress((calls / "call243" / "s" / f"{name}.pytest.txt").read_text())
        assert set(progress) <= {".", "s"}, name       # no F or E
        ran[name] = len(progress)
    logs = list((calls / "call243" / "s").glob("*.sanitizer.txt"))
    assert len(logs) == 3 and not any(re.search(r"Invalid|Misaligned|Out of range", p.read_text()) for p in logs)
    command, output = (calls / "call246" / "call.log").read_text(), (calls / "call246" / "output.txt").read_text()
    start = {name: int(first) for first, name in re.findall(r"SANITIZE_FROM=(\d+) \S+ \S+ bash \S+ tests/(\w+)\.py",
                                                           command)}
    summary = r"(\d+) passed, (\d+) skipped, (\d+) deselected"
    passed, skipped, deselected = map(int, re.search(summary, output).groups())
    assert deselected == start["test_kernels_triton"] and "ERROR SUMMARY: 0 errors" in output
    scan_last = deselected + passed + skipped
    readout = output.split("test_readout_triton.pytest.txt")[-1]
    dots = pytest_progress(readout)
    assert set(dots) == {"."} and not re.search(r"Invalid|Misaligned|Out of range", output)
    readout_last = start["test_readout_triton"] + len(dots)
    assert all(start[name] <= ran[name] for name in ran)           # no gap between calls 243 and 246
    assert scan_last == len(subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "tests/test_kernels_triton.py"], cwd=ROOT,
        capture_output=True, text=True).stdout.split("\n\n")[0].split())    # the scan's file whole
    shown = [(len(line.split("[")[0].strip()), int(line.split("[")[1].rstrip("%] "))) for line in readout.splitlines()
             if "%]" in line]
    done = list(itertools.accumulate(n for n, _ in shown))
    sizes = [t for t in range(done[-1], 4 * done[-1])    # pytest shows floor(100 done / selected) at each line's end
             if all(100 * d // t == percent for d, (_, percent) in zip(done, shown))]
    last = (calls / "call247" / "san.txt").read_text()
    assert "test_readout_triton:" in last and last.rstrip().endswith("ERROR SUMMARY: 0 errors")
    passed, skipped, from_247 = map(int, re.search(summary, last).groups())
    assert f"SANITIZE_FROM={from_247} " in (calls / "call247" / "call.log").read_text()
    assert from_247 <= readout_last                                 # no gap between calls 246 and 247
    assert from_247 + passed + skipped - start["test_readout_triton"] in sizes     # the readout's file whole
    assert (f"in the scan's and the readout's files whole (H100s: `call243` ran the scan's first "
            f"{ran['test_kernels_triton']} and the readout's first {ran['test_readout_triton']} before its time limit, "
            f"`call246` the scan's {start['test_kernels_triton'] + 1}th to {scan_last}th and the readout's "
            f"{start['test_readout_triton'] + 1}th to {readout_last}th, `call247` the readout's {from_247 + 1}th to "
            f"{from_247 + passed + skipped}th)") in words("README.md")
