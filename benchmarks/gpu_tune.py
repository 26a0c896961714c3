"""Choose the Triton scan's GPU launch settings: time power2 and ssm (B2 T16384 H16 D128, bf16) forward
and forward + backward, and the chunk inverses alone, for a few settings (``SETTINGS``).

    python benchmarks/gpu_tune.py [--out benchmarks/results/gpu_tune.json] [--inverses] [--settings JSON]

``--inverses`` first times the chunk inverses alone for each of ``INVERSE_SETTINGS`` (``inverse_sweep``).
``--settings '[{}, {"grad_warps": 4}]'`` times the settings given instead of ``SETTINGS``, each on top of ``DEFAULT``
(a key the scan does not read is refused).

The settings are those that ptxas compiles for sm_90a without register spills in both walks (checked on a
CPU: compile with ``triton.compile`` and run the wheel's ``ptxas -v``; then unspecialized, so with more registers
than the GPU's code, see ``h200_compile.py``).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gpu_common import bench, error, inputs, kernel_ms, saver  # noqa: E402

from glrtheory.kernels.scan import triton as backend  # noqa: E402

#: Launch settings to time (``backend.GPU`` keys, plus the chunk). The first is the default in force: lag tables'
#: lags compiled in (``static_lags``), 32-wide slices and 8 warps, the walks' products in bfloat16 factors, the
#: chunk inverses of bfloat16 coefficients in one tf32 pass (call36: power2 0.669 / 2.186 ms, the fastest of six);
#: then the walks' products in tf32, the inverses in three tf32 passes, the lags loaded (the default of call31),
#: 16-wide slices at 4 warps. power2 and ssm are lag tables, so the ``lag_`` keys set their walks.
#: Earlier: chunks of 32 or 128 were slower than 64, with the index-table gathers (call2) and with the per-lag
#: reads (call23); 8 warps walked 2-3x slower than 4 through the index tables (call2), not per lag (call26);
#: lag tables through their index tables: power2 1.044 / 3.574 ms (call35); the forward in segments whose
#: inverses a side stream prepares was slower at 4, 8 and 16 segments (call32).
DEFAULT = dict(lag_BD=32, LB=8, lag_warps=8, lags=True, static_lags=32, walk_bf16=True, inverse_precision_16="tf32",
               chunk=64)
SETTINGS = [DEFAULT, dict(DEFAULT, walk_bf16=False), dict(DEFAULT, inverse_precision_16="tf32x3"),
            dict(DEFAULT, static_lags=0), dict(DEFAULT, lag_BD=16, lag_warps=4)]


def breakdown(fn, steps=5) -> dict:
    """CUDA milliseconds per call of the 12 longest kernels ``fn`` launches (``gpu_common.kernel_ms``)."""
    return dict(list(kernel_ms(fn, steps)[0].items())[:12])


#: The chunk inverses' settings ``inverse_sweep`` times (``inverse_precision``, ``inverse_warps``).
INVERSE_SETTINGS = [(p, w) for p in ("ieee", "tf32x3", "tf32") for w in (1, 2, 4)]


def inverse_sweep(specs=("power2", "ssm", "fenwick"), B=2, T=16384, H=16, D=128, chunk=64) -> list[dict]:
    """ms of the chunk inverses alone per spec and ``INVERSE_SETTINGS``; the setting in force is restored."""
    rows, kept = [], dict(backend.GPU)
    for spec in specs:
        tables, u, a, b = inputs(spec, B, T, H, D)
        tab = backend._check(u, a, b, tables, chunk)
        for precision, warps in INVERSE_SETTINGS:
            backend.GPU.update(inverse_precision_16=precision, inverse_warps=warps)          # b is bfloat16
            row = dict(spec=spec, inverse_precision=precision, inverse_warps=warps)
            try:
                row["ms_inverse"] = bench(lambda: backend.chunk_inverses(b, tab.b_idx, T, chunk), rep=50)
            except Exception as e:
                row["error"] = error(e)
            print(row, flush=True)
            rows.append(row)
    backend.GPU.update(kept)
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "gpu_tune.json"))
    ap.add_argument("--inverses", action="store_true", help="first time the chunk inverses' settings alone")
    ap.add_argument("--settings", help="JSON list of settings to time instead of SETTINGS, each on top of DEFAULT")
    args = ap.parse_args(argv)
    settings = SETTINGS if args.settings is None else [dict(DEFAULT, **s) for s in json.loads(args.settings)]
    unknown = {k for s in settings for k in s} - set(backend.GPU) - {"chunk"}
    if unknown:
        ap.error(f"--settings: no such setting of the scan: {sorted(unknown)}")
    B, T, H, D = 2, 16384, 16, 128
    rows, kept = [], dict(backend.GPU)
    save = saver(args.out, "gpu_tune.py")
    sweep = inverse_sweep() if args.inverses else []
    for spec in ("power2", "ssm"):
        tables, u, a, b = inputs(spec, B, T, H, D, grad=True)
        g = torch.randn_like(u)
        for setting in settings:
            chunk = setting["chunk"]
            backend.GPU.clear()                       # the settings in force, then this one's (none carried over)
            backend.GPU.update(kept, **{k: v for k, v in setting.items() if k != "chunk"})
            row = dict(spec=spec, **setting)
            try:
                tab = backend._check(u, a, b, tables, chunk)
                with torch.no_grad():
                    row["ms_inverse"] = bench(lambda: backend.chunk_inverses(b, tab.b_idx, T, chunk), rep=50)
                    row["ms"] = bench(lambda: backend.glr_scan_triton(u, a, b, tables, chunk=chunk), rep=50)
                row["ms_fwd_bwd"] = bench(lambda: backend.glr_scan_triton(u, a, b, tables, chunk=chunk).backward(g),
                                          rep=50)
                row["ms_per_kernel_fwd_bwd"] = breakdown(                 # where the time goes, kernel by kernel
                    lambda: backend.glr_scan_triton(u, a, b, tables, chunk=chunk).backward(g))
            except Exception as e:
                row["error"] = error(e)
            print(row, flush=True)
            rows.append(row)
            save(dict(shape="B2 T16384 H16 D128 bf16", rows=rows, inverse_sweep=sweep))
    backend.GPU.update(kept)
    return 0


if __name__ == "__main__":
    sys.exit(main())
