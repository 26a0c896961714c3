"""The least DRAM bytes of each launch of the Triton readout's forward where its boundary states are solved for and
M is read from the chunk inverses (fenwick's path: ``readout_triton``'s ``solves`` and ``diagonal``), from the
shapes alone: every tensor a launch reads counted once, every tensor it writes once, index tables once in all (every
head reads the same). Over the copy bandwidth this is a floor of that sequence of launches, whatever they do inside,
up to the few MB that the small launches of the boundary inverse pass each other, which might stay in L2.

    python benchmarks/readout_bytes.py [--spec fenwick] [--shape 2,16384,16,128] [--chunk 64] [--profile JSON]
    python benchmarks/readout_bytes.py --fused      (a forward in one walk with a state per Fenwick level on chip)
    python benchmarks/readout_bytes.py --flops [--profile JSON]     (the products' FLOPs, fla's, and their rates)

With ``--profile`` (a ``gpu_readout.py`` result) each launch's measured ms (the JSON's ``profile`` of the spec) and
the bandwidth that implies are printed beside its bytes.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from glrtheory import Pattern
from glrtheory.kernels.scan import readout_triton
from glrtheory.kernels.scan.readout_plan import aligned_layout, readout_summary

#: Bytes of an element: q, k, v, the output, L, the boundary states and the inverse for the product in bf16; a, b
#: (as ``glr_readout`` casts them), the chunk inverses, E, E_PP's blocks, U and X in float32; tables int32 (int64
#: for the boundary rows' gather, ``b_flat``).
BF16, F32, I32, I64 = 2, 4, 4, 8
#: A launch's key, from a fragment of its kernel's name in ``torch.profiler``.
KERNELS = {"direct_copy": "cast a, b", "chunk_inverse": "chunk_inverse", "chunk_coefficients": "chunk_coefficients",
           "boundary_local": "boundary_local", "index_elementwise": "E_PP rows", "boundary_inverse": "boundary_inverse",
           "nvjet": "product", "chunk_output": "chunk_output"}


def solved_layout(spec: str, T: int, chunk: int):
    """The pattern's aligned layout, if its boundary states are solved for (as fenwick's): the launches this script
    models; a pattern whose states read only their predecessor (ssm, blocks) is walked by other launches."""
    tables = Pattern.from_spec(spec).tables(T)
    algorithm = readout_summary(tables)["algorithm"]
    if algorithm != "chunked_aligned":
        raise ValueError(f"{spec} at T = {T} gets the {algorithm} readout: this script models the aligned one")
    layout = aligned_layout(tables, chunk)
    if layout is None or not readout_triton._tables(layout, "cpu")["gather"]:
        raise ValueError(f"{spec}'s boundary states are not solved for (they read only their predecessor and are "
                         f"walked, or it has no aligned layout in chunks of {chunk}): this script models the solved "
                         "forward")
    return layout


def tensor_bytes(spec: str, B: int, T: int, H: int, D: int, chunk: int, block: int | None = None) -> dict[str, int]:
    """The bytes of each tensor the launches move: ``rows`` (q, k, v or the output), ``a`` and ``b`` (float32),
    ``inverses`` (the chunks' ``T_k``), ``ecoef`` (E), ``states`` (L or H), ``e_rows`` (E's boundary rows),
    ``diagonal`` (E_PP's diagonal blocks' inverses), ``upper`` (U, float32; X's float32 copy is as large),
    ``lower`` (U^T in bf16), ``boundary_last_rows`` (the rows of the chunk inverses ``boundary_local`` reads), and the
    index tables ``b_table`` (B's, or ``x_col`` of its shape), ``b_src`` and ``b_flat``; E_PP's diagonal blocks of
    ``block`` rows (default ``readout_triton.GPU["boundary_block"]``)."""
    tables = Pattern.from_spec(spec).tables(T)
    layout = aligned_layout(tables, chunk)
    N, C, nc, P, m = B * H, layout.chunk, layout.n_chunks, layout.n_boundary, layout.m
    block = block or readout_triton.GPU["boundary_block"]
    return dict(rows=N * T * D * BF16, a=N * T * tables.a_idx.shape[1] * F32, b=N * T * tables.b_idx.shape[1] * F32,
                inverses=N * nc * C * C * F32, ecoef=N * nc * C * m * F32, states=N * P * D * D * BF16,
                e_rows=N * P * m * F32, diagonal=N * -(-P // block) * block * block * F32, upper=N * P * P * F32,
                lower=N * P * P * BF16, boundary_last_rows=N * P * C * F32, b_table=T * tables.b_idx.shape[1] * I32,
                b_src=P * m * I32, b_flat=P * I64)


def solved_forward_bytes(spec: str, B: int, T: int, H: int, D: int, chunk: int) -> dict[str, int]:
    """Each launch's least bytes (read + written): ``"cast a, b"`` the two casts of bf16 a and b to float32,
    ``"chunk_inverse"`` both of its launches (the chunks' inverses and E_PP's diagonal blocks of
    ``readout_triton.GPU["boundary_block"]``), ``"E_PP rows"`` the gather of E's boundary rows, ``"product"``
    cuBLAS's ``H = U^T L``; the others are the Triton kernels of those names."""
    t = tensor_bytes(spec, B, T, H, D, chunk)
    return {
        "cast a, b": (t["a"] + t["b"]) * (BF16 + F32) // F32,
        "chunk_inverse": t["b"] + t["b_table"] + t["inverses"] + t["e_rows"] + t["b_src"] + t["diagonal"],
        "chunk_coefficients": t["inverses"] + t["b"] + t["b_table"] + t["ecoef"],           # b_table: x_col
        "boundary_local": 2 * t["rows"] + t["a"] + t["boundary_last_rows"] + t["states"],
        "E_PP rows": 2 * t["e_rows"] + t["b_flat"],
        "boundary_inverse": t["e_rows"] + t["b_src"] + t["diagonal"] + 2 * t["upper"] + t["lower"],
        "product": t["lower"] + 2 * t["states"],
        "chunk_output": 4 * t["rows"] + t["a"] + t["inverses"] + t["ecoef"] + t["states"],
    }


def fused_forward_bytes(spec: str, B: int, T: int, H: int, D: int, chunk: int, keep_states: bool = True
                        ) -> dict[str, int]:
    """The least bytes of a forward that walks the chunks in one kernel holding one boundary state per Fenwick level
    on chip (``proofs/fenwick_level_slots.py``; not built): today's casts and step 1 without E_PP's blocks
    (``"chunk_inverse"`` the chunks' inverses alone, ``"chunk_coefficients"``), then ``"walk and output"``, which
    reads q, k, v, a, the chunk inverses and E and writes o, and the boundary states H where ``keep_states`` (for
    the backward, which reads them)."""
    t = tensor_bytes(spec, B, T, H, D, chunk)
    solved = solved_forward_bytes(spec, B, T, H, D, chunk)
    return {"cast a, b": solved["cast a, b"],
            "chunk_inverse": t["b"] + t["b_table"] + t["inverses"],
            "chunk_coefficients": solved["chunk_coefficients"],
            "walk and output": 4 * t["rows"] + t["a"] + t["inverses"] + t["ecoef"] + keep_states * t["states"]}


def product_flops(spec: str, B: int, T: int, H: int, D: int, chunk: int) -> dict[str, int]:
    """The floating-point operations (two a multiply-add) of the tensor-core products of the solved forward's
    launches, as they run them (step 1's and the boundary inverse's small products left out): ``chunk_output``
    ``Q K^T`` and ``(S * M) V`` over each chunk's window (``2 C (C + w) D``) and ``Q H_j`` for each boundary state a
    chunk reads (``C D^2``, ``ext_count`` in all), ``boundary_local`` ``K^T diag(m_p) V`` over each boundary state's
    window, ``product`` cuBLAS's dense ``U^T L`` (``|P|^2 D^2``, zeros above the diagonal included)."""
    layout = solved_layout(spec, T, chunk)
    N, C, W, nc, P = B * H, layout.chunk, layout.chunk + layout.span, layout.n_chunks, layout.n_boundary
    reads = int(layout.ext_count.sum())
    return {"chunk_output": 2 * N * (nc * 2 * C * W * D + reads * C * D * D),
            "boundary_local": 2 * N * P * W * D * D, "product": 2 * N * P * P * D * D}


def fla_flops(B: int, T: int, H: int, D: int, chunk: int = 64) -> int:
    """The same for fla's ``chunk_simple_gla`` forward in chunks of ``chunk``: each chunk's state ``K^T V``
    (``chunk_fwd_h``), then ``Q K^T``, ``(S * decay) V`` and ``Q S`` (``chunk_fwd_o``): ``2 C D^2 + 2 C^2 D`` a
    chunk."""
    return 2 * B * H * -(-T // chunk) * (2 * chunk * D * D + 2 * chunk * chunk * D)


def measured_ms(profile: list[dict]) -> dict[str, float]:
    """ms per forward of each launch key of ``solved_forward_bytes`` in a ``gpu_readout.py`` profile (``[{kernel,
    ms}]``); kernels of no key (a memset) are left out."""
    out: dict[str, float] = {}
    for row in profile:
        key = next((k for fragment, k in KERNELS.items() if fragment in row["kernel"]), None)
        if key is not None:
            out[key] = out.get(key, 0.0) + row["ms"]
    return out


def print_flops(flops: dict[str, int], fla: int, ms: dict[str, float], forward: float | None, fla_ms: float | None
                ) -> None:
    """Print each launch's GFLOP (and TFLOP/s where ``ms`` times it), their sum and fla's, and the rate of the whole
    forward and of fla's where their ms are given."""
    for key, n in flops.items():
        print(f"{key:20s} {n / 1e9:8.1f} GFLOP" + (f"  {ms[key]:.3f} ms  {n / ms[key] / 1e9:.0f} TFLOP/s"
                                                    if key in ms else ""))
    total = sum(flops.values())
    print(f"{'total':20s} {total / 1e9:8.1f} GFLOP, {total / fla:.2f}x fla's {fla / 1e9:.1f}")
    for name, n, t in (("forward", total, forward), ("fla chunk_simple_gla", fla, fla_ms)):
        if t:
            print(f"{name:20s} {t:.3f} ms  {n / t / 1e9:.0f} TFLOP/s")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spec", default="fenwick")
    ap.add_argument("--shape", default="2,16384,16,128", help="B,T,H,D")
    ap.add_argument("--chunk", type=int, default=64)
    ap.add_argument("--profile", help="a gpu_readout.py JSON: each launch's ms and bandwidth beside its bytes")
    ap.add_argument("--flops", action="store_true", help="each launch's tensor-core products in GFLOP "
                    "(product_flops) and fla's chunk_simple_gla's, with --profile their TFLOP/s")
    ap.add_argument("--fused", action="store_true", help="the bytes of a forward that walks the chunks in one "
                    "kernel with a boundary state per Fenwick level on chip (fused_forward_bytes; not built)")
    args = ap.parse_args(argv)
    B, T, H, D = map(int, args.shape.split(","))
    if args.fused and args.profile:
        ap.error("--profile times today's launches; --fused counts a forward that is not built")
    run = json.loads(Path(args.profile).read_text()) if args.profile else {}
    ms = measured_ms(run["profile"][args.spec]) if run else {}
    if args.flops:
        if args.fused:
            ap.error("--flops counts today's launches; --fused a forward that is not built")
        rows = {r["op"]: r.get("ms") for r in run.get("rows", [])}
        try:
            flops = product_flops(args.spec, B, T, H, D, args.chunk)
        except ValueError as e:
            ap.error(str(e))
        print_flops(flops, fla_flops(B, T, H, D), ms, rows.get(f"glr_readout {args.spec}"),
                    rows.get("fla chunk_simple_gla"))
        return 0
    try:
        solved_layout(args.spec, T, args.chunk)
    except ValueError as e:
        ap.error(str(e))
    got = (fused_forward_bytes if args.fused else solved_forward_bytes)(args.spec, B, T, H, D, args.chunk)
    for key, n in got.items():
        timed = f"  {ms[key]:.3f} ms  {n / ms[key] / 1e6:.0f} GB/s" if key in ms else ""
        print(f"{key:20s} {n / 1e6:8.1f} MB{timed}")
    print(f"{'total':20s} {sum(got.values()) / 1e6:8.1f} MB" + (f"  {sum(ms.values()):.3f} ms" if ms else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
