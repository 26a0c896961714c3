"""The forward walk alone (``triton.forward_walk``, without the chunk inverses and the coefficient gather) of
power2 and ssm at B2 T16384 H16 D128 bf16 under a few launch settings (``backend.GPU`` keys), each checked
against the walk at the first setting (max |h - h_ref|).

    python benchmarks/gpu_walk_variants.py [--out benchmarks/results/gpu_walk_variants.json]
    TRITON_INTERPRET=1 python benchmarks/gpu_walk_variants.py --small    # B1 T300 H2 D32 on the CPU: a check

The first setting is the default in force (the lags compiled in); the others load the lags, or change the warps
or the slice width.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gpu_common import bench, error, inputs, saver  # noqa: E402

from glrtheory.kernels.scan import triton as backend  # noqa: E402

SETTINGS = [dict(static_lags=32, lag_BD=32, lag_warps=8), dict(static_lags=0, lag_BD=32, lag_warps=8),
            dict(static_lags=32, lag_BD=32, lag_warps=4), dict(static_lags=0, lag_BD=32, lag_warps=4),
            dict(static_lags=32, lag_BD=16, lag_warps=4)]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=str(Path(__file__).parent / "results" / "gpu_walk_variants.json"))
    p.add_argument("--small", action="store_true", help="B1 T300 H2 D32 on the CPU (TRITON_INTERPRET=1)")
    args = p.parse_args()
    save, settings, kept = saver(args.out, "gpu_walk_variants.py"), backend._settings(), dict(backend._settings())
    (Bt, n, H, D), device = ((1, 300, 2, 32), "cpu") if args.small else ((2, 16384, 16, 128), "cuda")
    rows, chunk = [], 64
    for spec in ("power2", "ssm"):
        tables, u, a, b = inputs(spec, Bt, n, H, D, device=device)
        tab = backend._check(u, a, b, tables, chunk)
        T = backend.chunk_inverses(b, tab.b_idx, n, chunk)
        ref = None
        for setting in SETTINGS:
            settings.update(setting)
            row = dict(spec=spec, **setting)
            try:
                A, B = (backend.table_coefficients(tab, side, x, chunk) for side, x in (("a", a), ("b", b)))
                walk = lambda: backend.forward_walk(u, A, B, tab.a_idx, tab.b_idx, tab.ext, T, chunk)  # noqa: E731
                h = walk()
                ref = h if ref is None else ref
                row["max_abs_diff"] = float((h.float() - ref.float()).abs().max())
                row["ms_walk"] = None if args.small else bench(walk, rep=100)
            except Exception as e:
                row["error"] = error(e)
            print(row, flush=True)
            rows.append(row)
            save(dict(shape=dict(B=Bt, T=n, H=H, D=D, dtype="bfloat16", chunk=chunk), rows=rows))
    settings.clear()
    settings.update(kept)


if __name__ == "__main__":
    main()
