"""The matrix-state readout ``glr_readout`` on one GPU: its Triton kernels (``readout_triton``) against its
torch-op path and fla's ``chunk_simple_gla``, with a per-kernel profile and a sweep of the launch settings.

    python benchmarks/gpu_readout.py [--specs ssm,fenwick,blocks] [--shape 2,16384,16,128] [--chunk C]
        [--dtype bfloat16|float32] [--out PATH]

1. ``tune``: forward ms of ssm and fenwick for each setting of ``readout_triton.GPU`` in ``SETTINGS``; the
   fastest (mean over the two) is used for the rest. ``--settings``: the same for a list of settings given as
   JSON (after the tune, or instead of it with ``--skip-tune``). ``--tune-backward``: the same for the backward's
   ``BACK_SETTINGS`` by forward + backward ms (``tune_backward``), each setting's gradients checked first;
   ``--back-settings``: a list of settings tuned that way.
2. ``rows``: per spec and backend (``torch``, ``triton``), q, k, v ``[B, T, H, D]`` bf16 (``--dtype``; q scaled by
   ``D^-1/2``), the pattern's random stable a, b: forward ms, forward + backward ms (each backend's own
   backward), and the forward's and the gradients' norm-relative differences from the float32
   torch-op path; fla's ``chunk_simple_gla`` and ``chunk_log_linear_attn`` (the Fenwick levels of log-linear
   attention, fenwick's counterpart; forward, and forward + backward where they run) and causal SDPA (forward,
   forward + backward) in the same run.
3. ``profile``: per spec, the Triton forward's CUDA kernels (``torch.profiler``), ms per call, by total;
   ``profile_torch_fwd_bwd``, ``profile_triton_fwd_bwd``: the same for each backend's forward + backward of ssm;
   ``profile_triton_fwd_bwd_others``: the Triton forward + backward's of the other specs, by spec.
4. ``--fla-shapes``: ``gpu_fla.fla_shapes`` (fla's forward and ours at fla's benchmark shapes).
"""
from __future__ import annotations

import itertools
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gpu_common import TIMING, bench, dtype_name, error, free, inputs, is_cuda, parser, saver  # noqa: E402
from gpu_bench import sdpa  # noqa: E402
from gpu_fla import FLA_SHAPES, fla_gla, fla_log_linear, fla_shapes  # noqa: E402

from glrtheory.kernels.scan import readout_triton  # noqa: E402
from glrtheory.kernels.scan import triton as scan_triton  # noqa: E402
from glrtheory.kernels.scan.readout import glr_readout, readout_algorithm  # noqa: E402

SPECS = ("ssm", "fenwick", "blocks")
#: The prefix of a tuned setting of the scan's kernels (``triton.GPU``), which the readout's step 1 launches.
SCAN = "scan."
#: Launch settings the tune tries (``readout_triton.GPU`` keys).
SETTINGS = [dict(walk_k=wk, walk_v=wv, out_k=64, out_v=ov, warps=4)
            for wk, wv, ov in itertools.product((32, 64), (32, 64), (64, 128))]
SETTINGS += [dict(walk_k=64, walk_v=64, out_k=64, out_v=ov, warps=8) for ov in (64, 128)]
#: The backward's settings the tune tries (forward + backward ms).
BACK_SETTINGS = [dict(back_k=bk, back_warps=w) for bk, w in itertools.product((64, 16, 32), (4, 8))]
#: Bound on ``grad_error`` for bf16 inputs (the tests' bound).
GRAD_BOUND = 1e-2


#: ``glr_readout``'s chunk in every call here (``--chunk``; None: its default).
CHUNK = None
#: Our rows' q, k, v, a, b dtype (``--dtype``); the anchors' stays bf16.
DTYPE = torch.bfloat16


def readout(*args, **kw):
    """``glr_readout`` at ``CHUNK``."""
    return glr_readout(*args, chunk=CHUNK, **kw)


def problem(spec, B, T, H, D, device):
    tables, k, a, b = inputs(spec, B, T, H, D, dtype=DTYPE, device=device)
    q, v = torch.randn_like(k) * D ** -0.5, torch.randn_like(k)
    return tables, [x.requires_grad_() for x in (q, k, v, a, b)]


def forward_ms(spec, shape, device, backend="triton") -> float:
    tables, xs = problem(spec, *shape, device)
    with torch.no_grad():
        return bench(lambda: readout(*xs, tables, backend=backend), rep=100, device=device)


def grad_errors(tables, xs, g, backend, **kw) -> dict:
    """Each of the five gradients' ``||got - ref|| / ||ref||`` (keys q, k, v, a, b) of ``<glr_readout(q, k, v, a, b),
    g>`` against float32 autograd through the torch-op path on the same values (kw: more ``glr_readout`` arguments)."""
    got = torch.autograd.grad(readout(*xs, tables, backend=backend, **kw), xs, g)
    leaves = [x.detach().float().requires_grad_() for x in xs]
    ref = torch.autograd.grad(readout(*leaves, tables, backend="torch", **kw), leaves, g.float())
    return {name: float((x.double() - r.double()).norm() / r.double().norm())
            for name, x, r in zip("qkvab", got, ref)}


def grad_error(tables, xs, g, backend) -> float:
    """The largest of ``grad_errors``; NaN if any is (Python's ``max`` would keep a number found before a NaN)."""
    return float(np.max(list(grad_errors(tables, xs, g, backend).values())))


def fwd_bwd_ms(spec, shape, device, backend="triton") -> float:
    """Forward + backward ms, after checking the gradients (``grad_error`` at most ``GRAD_BOUND``: a setting that
    computes wrong gradients raises, so the backward's tune never picks it)."""
    tables, xs = problem(spec, *shape, device)
    g = torch.randn_like(xs[2])
    err = grad_error(tables, xs, g, backend)
    if not err <= GRAD_BOUND:
        raise AssertionError(f"wrong gradients: relative error {err:.3g} (bound {GRAD_BOUND})")
    return bench(lambda: readout(*xs, tables, backend=backend).backward(g), rep=50, device=device)


def _apply(base: dict, setting: dict, head: int, scan_base: dict | None = None) -> None:
    """``readout_triton.GPU`` = base with setting on top; for heads over ``WIDE_HEAD`` the keys its ``wide`` settings
    hold (block sizes, ``out_after``, ``back_warps``) go there, as those are the ones such heads run. Keys
    ``scan.KEY`` go to the scan's settings (``triton.GPU``: the chunk inverses'), as scan_base with them on top. A
    key that is no setting raises ValueError, naming it."""
    scan = {key[len(SCAN):]: value for key, value in setting.items() if key.startswith(SCAN)}
    setting = {key: value for key, value in setting.items() if not key.startswith(SCAN)}
    unknown = sorted(set(setting) - set(base)) + [SCAN + key for key in sorted(set(scan) - set(scan_base or {}))]
    if unknown:
        raise ValueError(f"no such setting {unknown}; the settings are {sorted(base)} and, with the prefix "
                         f"{SCAN!r}, {sorted(scan_base or {})}")
    if scan_base is not None:
        scan_triton.GPU.clear()
        scan_triton.GPU.update(scan_base, **scan)
    new = dict(base, wide=dict(base["wide"]))
    for key, value in setting.items():
        wide = head > readout_triton.WIDE_HEAD and key in new["wide"]
        (new["wide"] if wide else new)[key] = value
    readout_triton.GPU.clear()
    readout_triton.GPU.update(new)


def tune(shape, device, save, result, settings=SETTINGS, measure=forward_ms, key="tune") -> dict | None:
    """Each setting's ms (``measure``) for ssm and fenwick into ``result[key]``, each applied on top of the settings in
    force before the tune (``_apply``: the ``wide`` keys into those for heads over ``WIDE_HEAD``); then those
    settings with the fastest (sum) on top stay in force (unchanged if every setting failed). Returns the fastest
    row, or None."""
    before, scan_before = dict(readout_triton.GPU), dict(scan_triton.GPU)
    rows = result[key] = []
    for setting in settings:
        _apply(before, setting, shape[3], scan_before)
        row = dict(setting)
        try:
            for spec in ("ssm", "fenwick"):
                row[spec] = measure(spec, shape, device)
        except Exception as e:
            row["error"] = error(e)
        rows.append(row)
        print(row, flush=True)
        save(result)
    _apply(before, {}, shape[3], scan_before)
    done = [(row, setting) for row, setting in zip(rows, settings) if "error" not in row]
    if not done:
        return None
    best, setting = min(done, key=lambda pair: pair[0]["ssm"] + pair[0]["fenwick"])
    _apply(before, setting, shape[3], scan_before)
    return best


def row(spec, backend, shape, device) -> dict:
    B, T, H, D = shape
    out = dict(op=f"glr_readout {spec}", backend=backend, B=B, T=T, H=H, D=D, dtype=dtype_name(DTYPE))
    try:
        tables, xs = problem(spec, *shape, device)
        out["readout_algorithm"] = readout_algorithm(tables)[0]
        with torch.no_grad():
            got = readout(*xs, tables, backend=backend).double()
            ref = readout(*(x.float() for x in xs), tables, backend="torch").double()
            out["rel_err_vs_float32"] = float((got - ref).norm() / ref.norm())
            out["ms"] = bench(lambda: readout(*xs, tables, backend=backend), rep=100, device=device)
        g = torch.randn_like(xs[2])
        out["grad_rel_err_vs_float32"] = grad_error(tables, xs, g, backend)
        out["ms_fwd_bwd"] = bench(lambda: readout(*xs, tables, backend=backend).backward(g), rep=100,
                                  device=device)
    except Exception as e:
        out["error"] = error(e)
    free(device)
    return out


def profile(spec, shape, device, backend="triton", backward=False) -> list[dict]:
    """CUDA kernels of 5 forwards (or forwards + backwards): name, calls per call, ms per call (none on a CPU)."""
    if not is_cuda(device):
        return []
    tables, xs = problem(spec, *shape, device)
    g = torch.randn_like(xs[2])

    def call():
        if backward:
            readout(*xs, tables, backend=backend).backward(g)
        else:
            with torch.no_grad():
                readout(*xs, tables, backend=backend)

    call()
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
        for _ in range(5):
            call()
        torch.cuda.synchronize()
    events = [e for e in prof.key_averages() if e.device_time_total > 0]
    events.sort(key=lambda e: -e.device_time_total)
    return [dict(kernel=e.key[:90], calls=e.count / 5, ms=e.device_time_total / 5e3) for e in events[:12]]


def main(argv=None) -> int:
    ap = parser(__doc__, "readout", SPECS)
    ap.add_argument("--shape", default="2,16384,16,128")
    ap.add_argument("--skip-tune", action="store_true")
    ap.add_argument("--tune-backward", action="store_true", help="sweep BACK_SETTINGS (forward + backward)")
    ap.add_argument("--settings", action="append", default=[], type=json.loads,
                    help='a JSON list of readout_triton.GPU updates to tune by forward ms after the sweep of '
                         'SETTINGS (add --skip-tune to run only these), e.g. \'[{"decay": false}, {"decay": true}]\' '
                         '(repeatable, in order); keys "scan.KEY" update the scan\'s triton.GPU')
    ap.add_argument("--back-settings", action="append", default=[], type=json.loads,
                    help='as --settings, tuned by forward + backward ms (e.g. \'[{}, {"decay_warps": 8}]\')')
    ap.add_argument("--fla-shapes", action="store_true")
    ap.add_argument("--backends", default="torch,triton", help="comma-separated backends of the rows")
    ap.add_argument("--chunk", type=int, default=None, help="glr_readout's chunk (default: its own)")
    ap.add_argument("--dtype", choices=("bfloat16", "float32"), default="bfloat16", help="our rows' inputs")
    args = ap.parse_args(argv)
    global CHUNK, DTYPE
    CHUNK, DTYPE = args.chunk, getattr(torch, args.dtype)
    shape, device = tuple(map(int, args.shape.split(","))), args.device
    save = saver(args.out, "gpu_readout.py")
    result = dict(timing=TIMING, shape=dict(zip("BTHD", shape)), dtype=args.dtype, chunk=CHUNK, rows=[])
    if not args.skip_tune:
        result["best_setting"] = tune(shape, device, save, result)
    for i, settings in enumerate(args.settings):
        result[f"best_settings_{i}"] = tune(shape, device, save, result, settings, key=f"tune_settings_{i}")
    if args.tune_backward:
        result["best_back_setting"] = tune(shape, device, save, result, BACK_SETTINGS, fwd_bwd_ms, "tune_backward")
    for i, settings in enumerate(args.back_settings):
        result[f"best_back_settings_{i}"] = tune(shape, device, save, result, settings, fwd_bwd_ms,
                                                 f"tune_back_settings_{i}")
    result["setting"] = dict(readout_triton.GPU)
    result["rows"].append(fla_gla(*shape, device=device))
    result["rows"].append(fla_log_linear(*shape, device=device))
    result["rows"].append(sdpa(*shape, device=device))
    for spec in args.specs.split(","):
        for backend in args.backends.split(","):
            result["rows"].append(row(spec, backend, shape, device))
            print(result["rows"][-1], flush=True)
            save(result)
    result["profile"] = {spec: profile(spec, shape, device) for spec in args.specs.split(",")}
    result["profile_torch_fwd_bwd"] = profile("ssm", shape, device, backend="torch", backward=True)
    result["profile_triton_fwd_bwd"] = profile("ssm", shape, device, backend="triton", backward=True)
    result["profile_triton_fwd_bwd_others"] = {spec: profile(spec, shape, device, backward=True)
                                               for spec in args.specs.split(",") if spec != "ssm"}
    save(result)
    if args.fla_shapes:
        result["fla_shapes"] = fla_shapes(FLA_SHAPES if is_cuda(device) else [(1, 1100, 1, 16)], device=device)
        save(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
