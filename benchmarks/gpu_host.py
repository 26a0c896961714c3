"""Where the host's time goes in tiled mixing (``readout_blocks.TILED``) on one GPU: the host's milliseconds
(``gpu_common.host_ms``: the device kept busy, so that no call waits on it) of each step of one tile, at power2's
first tile of the layer's shape (B8 T2048 H8 D128, bf16, tiles of ``readout.tile_columns``).

    python benchmarks/gpu_host.py [--specs power2] [--shape 8,2048,8,128] [--out PATH]

Rows: the tile's coefficient gathers, its unit vectors, ``glr_scan`` (its forward, then the Triton op's own
function alone, ``_scan_function``; then its forward + backward), ``tile_product`` forward (launched directly,
and through Triton's JIT) and forward + backward, and the whole tile (``readout_blocks._tile``).
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gpu_common import error, host_ms, inputs, parser, saver  # noqa: E402

from glrtheory.kernels.scan import readout_blocks, triton as triton_scan, triton_launch  # noqa: E402
from glrtheory.kernels.scan.op import glr_scan  # noqa: E402
from glrtheory.kernels.scan.readout import tile_columns  # noqa: E402
from glrtheory.kernels.scan.tile_product import tile_product  # noqa: E402
from glrtheory.kernels.scan.triton_tables import triton_tables  # noqa: E402


def steps(spec: str, B: int, T: int, H: int, D: int, device) -> dict:
    """name -> a no-argument callable: the tile's steps (module docstring)."""
    tables, q, a, b = inputs(spec, B, T, H, D, dtype=torch.bfloat16, device=device)
    k, v = torch.randn_like(q), torch.randn_like(q)
    C = tile_columns(B, H, T, q.device.type)
    sub, (ja, jb) = readout_blocks._tile_tables(tables, 0, q.device)

    def gathers():
        return [torch.gather(x, 3, j[None, :, None].expand(B, -1, H, -1)) for x, j in ((a, ja), (b, jb))]

    def unit_vectors():
        return torch.eye(T, C, dtype=q.dtype, device=q.device)[None, :, None].expand(B, T, H, C).contiguous()

    ca, cb = gathers()
    e = unit_vectors()
    tab = triton_tables(sub, T, triton_scan.DEFAULT_CHUNK, q.device)
    m = glr_scan(e, ca, cb, sub)
    leaves = [x.detach().clone().requires_grad_() for x in (ca, cb)]
    tiles = [x.detach().clone().requires_grad_() for x in (q, k[:, :C], v[:, :C], m)]
    grad_m, grad_o = torch.randn_like(m), torch.randn_like(q)

    def scan_op():
        with torch.no_grad():
            return glr_scan(e, ca, cb, sub)

    def scan_direct():
        return triton_scan._scan_function(e, ca, cb, *tab.tensors, triton_scan.DEFAULT_CHUNK, tab.a_diagonal,
                                          *map(list, tab.lag_values))

    def scan_backward():
        glr_scan(e, *leaves, sub).backward(grad_m)

    def product():
        with torch.no_grad():
            return tile_product(q, k[:, :C], v[:, :C], m)

    def product_jit():
        triton_launch.DIRECT = False
        try:
            return product()
        finally:
            triton_launch.DIRECT = True

    def product_backward():
        tile_product(*tiles).backward(grad_o)

    def tile():
        with torch.no_grad():
            return readout_blocks._tile(q, k[:, :C], v[:, :C], a, b, tables, 0, C)

    return dict(tile_columns=C, gathers=gathers, unit_vectors=unit_vectors, scan_op=scan_op, scan_direct=scan_direct,
                scan_forward_backward=scan_backward, tile_product=product, tile_product_jit=product_jit,
                tile_product_forward_backward=product_backward, tile=tile)


def main(argv=None) -> int:
    ap = parser(__doc__, "host", ("power2",))
    ap.add_argument("--shape", default="8,2048,8,128", help="B,T,H,D")
    args = ap.parse_args(argv)
    try:
        B, T, H, D = (int(x) for x in args.shape.split(","))
    except ValueError:
        ap.error(f"--shape takes four integers B,T,H,D, got {args.shape!r}")
    save = saver(args.out, "gpu_host.py")
    rows = []
    for spec in args.specs.split(","):
        try:
            fns = steps(spec, B, T, H, D, args.device)
            row = dict(spec=spec, tile_columns=fns.pop("tile_columns"))
            row.update({name: host_ms(fn, args.device) for name, fn in fns.items()})
        except Exception as e:              # noqa: BLE001 - recorded in the row
            row = dict(spec=spec, error=error(e))
        rows.append(row)
        print(row, flush=True)
    save(dict(shape=dict(B=B, T=T, H=H, D=D), rows=rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
