"""``GLRMixer(readout=True)`` as a layer, forward + backward, next to ``nn.MultiheadAttention`` (issue 12's layer
target: forward + backward at or below attention's, peak memory at most 4 GiB).

    python benchmarks/gpu_layer.py [--specs ssm,fenwick,power2,blocks] [--shape 8,2048,1024,8] [--out PATH]
    python benchmarks/gpu_layer.py --specs ssm,fenwick --modes "" --float32     # ours without autocast too
    python benchmarks/gpu_layer.py --host-profile ssm --out PATH    # where the eager layer's host time goes
    python benchmarks/gpu_layer.py --host-profile ssm --compiled --sort cumulative --out PATH
    python benchmarks/gpu_layer.py --host-ops attention --out PATH   # op by op, attention or a spec
    python benchmarks/gpu_layer.py --specs ssm --modes "" --jit-launches    # eager only, Triton's JIT launches
    python benchmarks/gpu_layer.py --specs fenwick --modes "" --readout-settings '{"solve_boundaries": false}'
    python benchmarks/gpu_layer.py --specs ssm --interleaved '[{"direct": false}, {}]'   # an A/B in one process

Shape B8 T2048, d_model 1024, 8 heads (d_head = d_key = 128), float32 parameters and input ``x [B, T, d_model]``.
Ours runs under ``torch.autocast(bfloat16)`` (the mixer computes scores, softmax and scan in float32 inside,
the readout's products in bf16);
where that raises, the row records the error and a second row times the layer without autocast (float32).
Attention: ``nn.MultiheadAttention(d_model, heads, batch_first=True)`` with the causal mask (``attn_mask`` and
``is_causal=True``, ``need_weights=False``: PyTorch hands it to SDPA), in float32 and under bf16 autocast.
Each row: median ms of the forward (no grad) and of forward + backward (``y.backward(g)``), the peak memory of
the first forward + backward (``max_memory_allocated`` after ``reset_peak_memory_stats``), and for ours the readout
algorithm ``glr_readout`` runs (``readout_algorithm``); ``fwd_bwd_device``: the kernel time of one forward +
backward, its kernel launches and longest kernels (``gpu_common.device_busy``; well below ``ms_fwd_bwd``
means the layer waits on the host); ``host_ms_fwd_bwd``: the host's own time to issue one forward + backward
while the device is busy (``gpu_common.host_ms``; it reads above the wall time of host-bound rows, so compare it
between rows). ``verdicts`` computes the targets from those numbers,
each against the attention row of the same precision (bf16 autocast or float32). On CUDA, last, each layer's
forward + backward once more as a captured CUDA graph (``graphed_row``, precision ``GRAPHED``), each in a
fresh process (``row_alone``): what is left once the host's per-launch cost is gone; and each compiled by
``torch.compile`` (``compiled_row``, precision ``COMPILED``; ours compiles into two graphs around the mixing, which
runs as it is), also in a fresh process, as a model would be trained (``--modes`` picks which). ``--jit-launches``
launches every Triton kernel through Triton's JIT instead of directly (``triton_launch.DIRECT``), for an A/B of the
host's cost. Verdicts compare each row with attention
of the same precision, and rows not eager also with eager attention in bf16.
"""
from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gpu_common import (TIMING, bench, device_busy, error, free, host_ms, is_cuda, parser, peak_bytes,  # noqa: E402
                        saver, sync)
from gpu_readout import _apply  # noqa: E402

from glrtheory.kernels.layers import GLRMixer  # noqa: E402
from glrtheory.kernels.scan.readout import readout_algorithm  # noqa: E402

SPECS = ("ssm", "fenwick", "power2", "blocks")
SHAPE = dict(B=8, T=2048, d_model=1024, heads=8)
#: The peak-memory target of one forward + backward.
PEAK_TARGET_BYTES = 4 * 2**30


def _autocast(device, on: bool):
    return torch.autocast(torch.device(device).type, dtype=torch.bfloat16) if on else contextlib.nullcontext()


def _steps(layer, x, device, autocast: bool):
    """``(forward, forward_backward)``: ``layer(x)`` (under bf16 autocast if asked), and that with
    ``backward(g)`` for a fixed random g."""
    g = torch.randn_like(x)

    def forward():
        with _autocast(device, autocast):
            return layer(x)

    def forward_backward():
        forward().backward(g)

    return forward, forward_backward


def _time(row: dict, layer, x, device, autocast: bool, rep: int) -> dict:
    """Fill ``ms_fwd``, ``ms_fwd_bwd`` and the peak memory of one forward + backward of ``layer(x)``."""
    forward, forward_backward = _steps(layer, x, device, autocast)
    row.update(peak_bytes(forward_backward, device))       # the first call: compiles, and fails here if it fails
    with torch.no_grad():
        row["ms_fwd"] = bench(forward, rep=rep, device=device)
    row["ms_fwd_bwd"] = bench(forward_backward, rep=rep, device=device)
    row["fwd_bwd_device"] = device_busy(forward_backward, device)
    row["host_ms_fwd_bwd"] = host_ms(forward_backward, device)
    return row


def mixer_rows(spec, B, T, d_model, heads, device="cuda", rep=100, float32=False) -> list[dict]:
    """Ours under bf16 autocast; if that raises (or ``float32``), also a float32 row (without autocast)."""
    mixer = GLRMixer(spec, d_model, heads, readout=True, device=device)
    x = torch.randn(B, T, d_model, device=device, requires_grad=True)
    try:
        name, cls = readout_algorithm(mixer.tables(T))[:2]
    except Exception as e:                                 # the rows still run
        name, cls = f"unknown: {error(e)}", None
    rows = []
    for autocast in (True, False):
        row = dict(op=f"GLRMixer {spec} readout", spec=spec, B=B, T=T, d_model=d_model, heads=heads,
                   precision="bf16 autocast" if autocast else "float32", readout_algorithm=name, cost_class=cls)
        rows.append(row)
        try:
            _time(row, mixer, x, device, autocast, rep)
            if not float32:
                return rows
        except Exception as e:                             # record, do not hide
            row["error"] = error(e)
        x.grad = None
    return rows


class CausalMHA(nn.Module):
    """``nn.MultiheadAttention`` self-attention with the causal mask (``need_weights=False``)."""

    def __init__(self, d_model, heads, T, device):
        super().__init__()
        self.mha = nn.MultiheadAttention(d_model, heads, batch_first=True, device=device)
        self.register_buffer("mask", torch.ones(T, T, dtype=torch.bool, device=device).triu(1))

    def forward(self, x):
        return self.mha(x, x, x, attn_mask=self.mask, is_causal=True, need_weights=False)[0]


def mha_rows(B, T, d_model, heads, device="cuda", rep=100) -> list[dict]:
    """Causal ``nn.MultiheadAttention``, float32 and under bf16 autocast."""
    layer = CausalMHA(d_model, heads, T, device)
    x = torch.randn(B, T, d_model, device=device, requires_grad=True)
    rows = []
    for autocast in (False, True):
        row = dict(op="nn.MultiheadAttention causal", B=B, T=T, d_model=d_model, heads=heads,
                   precision="bf16 autocast" if autocast else "float32")
        try:
            _time(row, layer, x, device, autocast, rep)
        except Exception as e:
            row["error"] = error(e)
        rows.append(row)
    return rows


#: The precision label of the rows timed as one captured CUDA graph (``graphed_row``).
GRAPHED = "bf16 autocast, CUDA graph"
#: The precision label of the rows timed under ``torch.compile`` (``compiled_row``).
COMPILED = "bf16 autocast, torch.compile"


def graphed_row(op: str, make_layer, B, T, d_model, heads, device="cuda", rep=100, **extra) -> dict:
    """Forward + backward of a fresh ``make_layer()`` captured once as CUDA graphs
    (``torch.cuda.make_graphed_callables``, under bf16 autocast with its cache off, as graphs require) and
    replayed: the time without the host's per-launch cost, the same treatment for ours and attention."""
    row = dict(op=op, B=B, T=T, d_model=d_model, heads=heads, precision=GRAPHED, **extra)
    try:
        x = torch.randn(B, T, d_model, device=device, requires_grad=True)
        g = torch.randn_like(x)
        with torch.autocast("cuda", dtype=torch.bfloat16, cache_enabled=False):
            layer = torch.cuda.make_graphed_callables(make_layer(), (x,), num_warmup_iters=3)

        def forward_backward():
            with torch.autocast("cuda", dtype=torch.bfloat16, cache_enabled=False):
                y = layer(x)
            y.backward(g)

        row["ms_fwd_bwd"] = bench(forward_backward, rep=rep, device=device)
    except Exception as e:                                 # record, do not hide
        row["error"] = error(e)
    return row


def compiled_row(op: str, make_layer, B, T, d_model, heads, device="cuda", rep=100, **extra) -> dict:
    """``_time`` of ``torch.compile(make_layer())`` (default backend, inductor) under bf16 autocast: the first
    call compiles the forward and backward graphs, the no-grad forward compiles once more."""
    row = dict(op=op, B=B, T=T, d_model=d_model, heads=heads, precision=COMPILED, **extra)
    try:
        x = torch.randn(B, T, d_model, device=device, requires_grad=True)
        _time(row, torch.compile(make_layer()), x, device, True, rep)
    except Exception as e:                                 # record, do not hide
        row["error"] = error(e)
    return row


#: The rows ``row_alone`` runs in a fresh process, by mode: their function and precision label.
MODES = {"graph": (graphed_row, GRAPHED), "compile": (compiled_row, COMPILED)}


def verdicts(rows: list[dict], peak_target: int = PEAK_TARGET_BYTES) -> list[dict]:
    """Per row of ours with a forward + backward time: its ratio to attention of the same precision, and
    the targets ``fwd_bwd <= attention`` and ``peak <= peak_target`` (None where a number is missing); rows
    timed otherwise than eagerly also get their ratio to eager bf16 attention (``fwd_bwd_over_eager_mha``)."""
    anchors = {r["precision"]: r for r in rows if r["op"].startswith("nn.MultiheadAttention") and "ms_fwd_bwd" in r}
    eager = anchors.get("bf16 autocast")
    out = []
    for r in rows:
        if not r["op"].startswith("GLRMixer") or "ms_fwd_bwd" not in r:
            continue
        ref = anchors.get(r["precision"])
        ratio = r["ms_fwd_bwd"] / ref["ms_fwd_bwd"] if ref else None
        time_ok = None if ratio is None else ratio <= 1.0
        peak_ok = r["peak_bytes"] <= peak_target if "peak_bytes" in r else None
        met = None if None in (time_ok, peak_ok) else time_ok and peak_ok
        verdict = dict(spec=r["spec"], precision=r["precision"], readout_algorithm=r.get("readout_algorithm"),
                       fwd_bwd_over_mha=ratio, fwd_bwd_at_or_below_mha=time_ok,
                       peak_gib=r["peak_bytes"] / 2**30 if "peak_bytes" in r else None,
                       peak_at_most_4gib=peak_ok, targets_met=met)
        if r["precision"] in (GRAPHED, COMPILED):
            verdict["fwd_bwd_over_eager_mha"] = r["ms_fwd_bwd"] / eager["ms_fwd_bwd"] if eager else None
        out.append(verdict)
    return out


def run(specs=SPECS, B=SHAPE["B"], T=SHAPE["T"], d_model=SHAPE["d_model"], heads=SHAPE["heads"], device="cuda",
        rep=100, save=None, modes=tuple(MODES), float32=False) -> dict:
    """Attention rows, then ours per spec (``float32``: also without autocast, ``mixer_rows``); ``save(result)``
    after every row (a run cut short keeps them)."""
    result = dict(shape=dict(B=B, T=T, d_model=d_model, heads=heads), timing=TIMING, rows=[], verdicts=[],
                  peak_target_bytes=PEAK_TARGET_BYTES)

    def add(rows):
        result["rows"] += rows
        result["verdicts"] = verdicts(result["rows"])
        for r in rows:
            print(r, flush=True)
        if save is not None:
            save(result)

    add(mha_rows(B, T, d_model, heads, device, rep))
    for spec in specs:
        add(mixer_rows(spec, B, T, d_model, heads, device, rep, float32))
        free(device)
    if is_cuda(device):
        for mode in modes:
            for name in ("attention",) + tuple(specs):
                add([row_alone(mode, name, B, T, d_model, heads, device, rep)])
    return result


def row_of(mode: str, name: str, B, T, d_model, heads, device="cuda", rep=100) -> dict:
    """The ``MODES[mode]`` row of causal attention (name "attention") or of our layer for the spec ``name``."""
    shape = dict(B=B, T=T, d_model=d_model, heads=heads, device=device, rep=rep)
    make_row = MODES[mode][0]
    if name == "attention":
        return make_row("nn.MultiheadAttention causal", lambda: CausalMHA(d_model, heads, T, device), **shape)
    return make_row(f"GLRMixer {name} readout", lambda: GLRMixer(name, d_model, heads, readout=True, device=device),
                    spec=name, **shape)


def row_alone(mode: str, name: str, B, T, d_model, heads, device="cuda", rep=100, timeout=300) -> dict:
    """``row_of`` in a fresh Python process (``--row NAME --mode MODE``): inside the process that had timed the
    eager rows, the CUDA-graph captures of our layers failed (gpu_calls/call20, call21) where a fresh process
    captured them; a fresh process also compiles from nothing. A process that writes no row gives a row with
    its error."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "row.json"
        cmd = [sys.executable, str(Path(__file__).resolve()), "--row", name, "--mode", mode, "--device", str(device),
               "--shape", f"{B},{T},{d_model},{heads}", "--rep", str(rep), "--out", str(out)]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
            failure = f"the --row process exited {proc.returncode}: {proc.stderr[-300:]}"
        except subprocess.TimeoutExpired:
            failure = f"the --row process ran past {timeout} s"
        if out.exists():
            return json.loads(out.read_text())
    return dict(op=name, B=B, T=T, d_model=d_model, heads=heads, precision=MODES[mode][1], error=failure)


def interleaved(spec: str, variants: list[dict], B, T, d_model, heads, device="cuda", rep=100, rounds=5) -> dict:
    """An A/B in one process: our layer's eager forward + backward (bf16 autocast) under each variant, and causal
    attention's, timed in turn ``rounds`` times, so that a host that runs slower in one process than in another
    (attention alone moved 2.25 to 2.55 ms between processes, gpu_calls/call68, call69) moves every row alike. A
    variant sets ``readout_triton.GPU`` keys (``gpu_readout._apply``, on the settings in force before) and, with
    ``"direct"``, ``triton_launch.DIRECT``; each row has the per-round times, their median and the median's ratio to
    attention's, and the median of its host's own time per step (``host_ms``, None on the CPU)."""
    from glrtheory.kernels.scan import readout_triton, triton_launch

    saved, head = (dict(readout_triton.GPU), triton_launch.DIRECT), d_model // heads
    settings = [{key: value for key, value in v.items() if key != "direct"} for v in variants]
    for setting in settings:
        _apply(saved[0], setting, head)                  # refuses a key that is no setting before anything runs
    x = torch.randn(B, T, d_model, device=device, requires_grad=True)
    steps = [("attention", {}, _steps(CausalMHA(d_model, heads, T, device), x, device, True)[1])]
    mixer = GLRMixer(spec, d_model, heads, readout=True, device=device)
    steps += [(f"GLRMixer {spec} readout", v, _steps(mixer, x, device, True)[1]) for v in variants]
    times, hosts = [[] for _ in steps], [[] for _ in steps]
    try:
        for _ in range(rounds):
            for (_, variant, step), setting, ms, host in zip(steps, [{}] + settings, times, hosts):
                _apply(saved[0], setting, head)
                triton_launch.DIRECT = variant.get("direct", True)
                ms.append(bench(step, rep=rep, device=device))
                host.append(host_ms(step, device))
    finally:
        _apply(saved[0], {}, head)
        triton_launch.DIRECT = saved[1]
    anchor = float(np.median(times[0]))
    rows = [dict(op=op, variant=variant, ms_fwd_bwd=ms, median_ms=float(np.median(ms)),
                 over_attention=float(np.median(ms)) / anchor,
                 host_ms=None if None in host else float(np.median(host)))
            for (op, variant, _), ms, host in zip(steps, times, hosts)]
    return dict(spec=spec, B=B, T=T, d_model=d_model, heads=heads, precision="bf16 autocast", rounds=rounds,
                rows=rows)


def host_profile(spec: str, B, T, d_model, heads, device="cuda", rep=20, top=40, compiled=False,
                 sort="own", links=5) -> dict:
    """Where the host's time goes in one forward + backward of our layer (bf16 autocast): ``rep`` warm
    iterations under ``cProfile`` (of ``torch.compile(layer)`` if ``compiled``), the ``top`` functions by ``sort``
    (``"own"`` or ``"cumulative"`` time), each with its calls and microseconds
    (own and cumulative) per iteration, its ``links`` callers and callees with the cumulative microseconds per
    iteration of each call path (the largest first), and the wall time per iteration (with the profiler's own
    cost)."""
    import cProfile
    import pstats
    import time

    if sort not in ("own", "cumulative"):
        raise ValueError(f"sort must be 'own' or 'cumulative', got {sort!r}")
    layer = GLRMixer(spec, d_model, heads, readout=True, device=device)
    layer = torch.compile(layer) if compiled else layer
    x = torch.randn(B, T, d_model, device=device, requires_grad=True)
    forward_backward = _steps(layer, x, device, True)[1]
    for _ in range(3):
        forward_backward()
    sync(device)
    profiler = cProfile.Profile()
    start = time.perf_counter()
    profiler.enable()
    for _ in range(rep):
        forward_backward()
    profiler.disable()
    sync(device)
    wall = (time.perf_counter() - start) / rep
    stats = pstats.Stats(profiler).stats
    rows = sorted(stats.items(), key=lambda item: -item[1][2 if sort == "own" else 3])[:top]

    def label(function) -> str:
        file, line, name = function
        return f"{Path(file).name}:{line}:{name}"

    def linked(pairs) -> list[dict]:
        """``(function, cumulative seconds of the path)`` as the ``links`` largest, in microseconds per iteration."""
        return [dict(function=label(f), cumulative_us=cum / rep * 1e6)
                for f, cum in sorted(pairs, key=lambda pair: -pair[1])[:links]]

    return dict(op=f"GLRMixer {spec} readout", compiled=compiled, sort=sort, B=B, T=T, d_model=d_model,
                heads=heads, rep=rep, wall_us_per_iter=wall * 1e6,
                functions=[dict(function=label(f), calls=nc / rep, own_us=own / rep * 1e6,
                                cumulative_us=cum / rep * 1e6,
                                callers=linked((c, edge[3]) for c, edge in callers.items()),
                                callees=linked((g, entry[4][f][3]) for g, entry in stats.items() if f in entry[4]))
                           for f, (_, nc, own, cum, callers) in rows])


def host_ops(name: str, B, T, d_model, heads, device="cuda", rep=10, top=40) -> dict:
    """Where the host's time goes, op by op, in one eager forward + backward (bf16 autocast) of causal attention
    (name "attention") or of our layer for the spec ``name``: ``torch.profiler`` (host activity only) over ``rep``
    warm steps, the ``top`` ops and autograd nodes by their own host time, each by input shapes with its calls and
    microseconds (own and total) per step; custom ``autograd.Function`` s show as their class (``AlignedTriton``)
    and backward node, their own time the Python the profiler does not break down (launches included)."""
    from torch.profiler import ProfilerActivity, profile

    layer = (CausalMHA(d_model, heads, T, device) if name == "attention"
             else GLRMixer(name, d_model, heads, readout=True, device=device))
    x = torch.randn(B, T, d_model, device=device, requires_grad=True)
    forward_backward = _steps(layer, x, device, True)[1]
    for _ in range(3):
        forward_backward()
    sync(device)
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        for _ in range(rep):
            forward_backward()
        sync(device)
    events = sorted(prof.key_averages(group_by_input_shape=True), key=lambda e: -e.self_cpu_time_total)
    return dict(op=name, B=B, T=T, d_model=d_model, heads=heads, rep=rep,
                self_us_per_step=sum(e.self_cpu_time_total for e in events) / rep,
                ops=[dict(op=e.key, shapes=str(e.input_shapes), calls=e.count / rep,
                          self_us=e.self_cpu_time_total / rep, total_us=e.cpu_time_total / rep) for e in events[:top]])


def main(argv=None) -> int:
    ap = parser(__doc__, "layer", SPECS)
    ap.add_argument("--shape", default=",".join(map(str, SHAPE.values())), help="B,T,d_model,heads")
    ap.add_argument("--row", metavar="NAME", help="only the --mode row of NAME (attention or a spec), written as "
                    "JSON to --out (what row_alone runs)")
    ap.add_argument("--mode", choices=sorted(MODES), default="graph", help="with --row: CUDA graph or torch.compile")
    ap.add_argument("--rep", type=int, default=100)
    ap.add_argument("--host-profile", metavar="SPEC", help="only where the host's time goes in our layer for SPEC "
                    "(host_profile), written as JSON to --out")
    ap.add_argument("--host-ops", metavar="NAME", help="only the host's time op by op (host_ops) in attention (NAME "
                    "attention) or our layer for the spec NAME, written as JSON to --out")
    ap.add_argument("--compiled", action="store_true", help="with --host-profile: of torch.compile(layer)")
    ap.add_argument("--sort", choices=("own", "cumulative"), default="own", help="with --host-profile: the order")
    ap.add_argument("--modes", default=",".join(MODES), help="the rows after the eager ones, each in a fresh process "
                    f"(comma-separated, of {', '.join(MODES)}; empty for none)")
    ap.add_argument("--jit-launches", action="store_true", help="Triton kernels launched through Triton's JIT, not "
                    "directly (triton_launch.DIRECT = False; eager rows and --host-profile)")
    ap.add_argument("--readout-settings", metavar="JSON", help="launch settings of the Triton readout to change "
                    "(readout_triton.GPU, e.g. '{\"solve_boundaries\": false}'; eager rows and --host-profile)")
    ap.add_argument("--interleaved", metavar="JSON", help="only an A/B of variants of the first spec's layer, each a "
                    "dict of readout_triton.GPU settings and 'direct' (e.g. '[{\"direct\": false}, {}]'), timed in "
                    "turn with attention in one process (interleaved), written as JSON to --out")
    ap.add_argument("--rounds", type=int, default=5, help="with --interleaved: the turns")
    ap.add_argument("--float32", action="store_true", help="also time our layers without autocast (float32)")
    args = ap.parse_args(argv)
    modes = tuple(m for m in args.modes.split(",") if m)
    if set(modes) - set(MODES):
        ap.error(f"--modes takes {', '.join(MODES)}, got {args.modes!r}")
    if args.jit_launches:
        from glrtheory.kernels.scan import triton_launch
        triton_launch.DIRECT = False
    shape = dict(zip(SHAPE, map(int, args.shape.split(","))))
    if args.readout_settings:
        from glrtheory.kernels.scan import readout_triton
        try:
            _apply(dict(readout_triton.GPU), json.loads(args.readout_settings), shape["d_model"] // shape["heads"])
        except ValueError as e:
            ap.error(f"--readout-settings: {e}")
    if args.host_profile:
        result = host_profile(args.host_profile, **shape, device=args.device, compiled=args.compiled,
                              sort=args.sort)
        saver(args.out, "gpu_layer.py")(result)
        for row in result["functions"]:
            print(row)
        return 0
    if args.host_ops:
        result = host_ops(args.host_ops, **shape, device=args.device)
        saver(args.out, "gpu_layer.py")(result)
        for row in result["ops"]:
            print(row)
        return 0
    if args.interleaved:
        try:
            result = interleaved(args.specs.split(",")[0], json.loads(args.interleaved), **shape, device=args.device,
                                 rep=args.rep, rounds=args.rounds)
        except ValueError as e:
            ap.error(f"--interleaved: {e}")
        saver(args.out, "gpu_layer.py")(result)
        for row in result["rows"]:
            print(row)
        return 0
    if args.row:
        row = row_of(args.mode, args.row, **shape, device=args.device, rep=args.rep)
        Path(args.out).write_text(json.dumps(row))
        return 0
    run(args.specs.split(","), **shape, device=args.device, rep=args.rep, save=saver(args.out, "gpu_layer.py"),
        modes=modes, float32=args.float32)
    return 0


if __name__ == "__main__":
    sys.exit(main())
