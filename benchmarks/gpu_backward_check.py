"""Which launch settings of the Triton readout's backward compute right gradients on this GPU.

    python benchmarks/gpu_backward_check.py [--specs ssm,fenwick,blocks] [--heads 64,128] [--n 4097]
        [--dtypes bfloat16,float32] [--backward-head 128] [--settings JSON] [--isolate] [--out PATH]

Per spec, head size d, input dtype and setting of ``readout_triton.GPU`` (``SETTINGS``, each on top of the
defaults, ``gpu_readout._apply``): the five gradients (q, k, v, a, b) of ``<glr_readout(q, k, v, a, b), g>`` by the
Triton backward against float32 autograd through the torch-op path on the same values (B1, 2 heads, n positions),
each as ``||got - ref|| / ||ref||`` (NaN where the kernel produced NaN; the exception's text where it raised).
dq comes from ``chunk_output_backward`` alone; dk, dv also from ``boundary_backward``; da, db from all four
kernels, so the failing gradients say which kernel is wrong. The tests' bound is 1e-2 (bf16), 1e-5 (float32). An
illegal memory access leaves the CUDA context unusable, so that every later row fails too: ``--isolate`` checks each
row in its own process, and a process that dies gives its row the exit code and its last line of output as the error.
On the CPU (``--device cpu`` with ``TRITON_INTERPRET=1``) the interpreter runs with its own settings
(``readout_triton.INTERPRETER``): SETTINGS change the GPU's only.
"""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from gpu_common import dtype_name, error, parser, saver  # noqa: E402
from gpu_readout import _apply, grad_errors  # noqa: E402
from tests.helpers import large_readout_inputs  # noqa: E402

from glrtheory.kernels.scan import readout_triton  # noqa: E402

#: Settings tried, each on top of ``readout_triton.GPU``'s defaults.
SETTINGS = [{}, dict(back_k=16), dict(back_k=64), dict(back_k=128), dict(back_warps=8),
            dict(back_k=64, back_warps=8), dict(walk_k=64, walk_v=64), dict(walk_k=16, walk_v=16)]
BOUND = {torch.bfloat16: 1e-2, torch.float32: 1e-5}


def check(spec: str, d: int, n: int, dtype, seed: int = 0, device="cuda") -> dict:
    """The five gradients' relative errors (``gpu_readout.grad_errors``) of one run against the torch path
    (``chunked_aligned`` forced, as the GPU chooses it at n = 4097)."""
    tables, xs, grad = large_readout_inputs(seed, spec, d, n, device)
    leaves = [x.to(dtype).requires_grad_() for x in xs]
    grad = grad.to(dtype)
    try:
        errors = grad_errors(tables, leaves, grad, "triton", algorithm="chunked_aligned")
    except Exception as exc:                     # an illegal memory access is sticky: later rows fail too
        return {"error": error(exc)}
    return dict(errors, ok=all(e <= BOUND[dtype] for e in errors.values()))


def isolated(case: dict, device: str) -> dict:
    """``check``'s row for ``case`` (spec, d, n, dtype, setting, backward_head) from this script run in a process of
    its own; where that process writes no row, its exit code and last line of output as the error."""
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "row.json"
        done = subprocess.run([sys.executable, __file__, "--device", device, "--specs", case["spec"],
                               "--heads", str(case["d"]), "--n", str(case["n"]), "--dtypes", case["dtype"],
                               "--backward-head", str(case["backward_head"]), "--settings",
                               json.dumps([case["setting"]]), "--out", str(out)], capture_output=True, text=True)
        rows = json.loads(out.read_text())["rows"] if out.exists() else []
    if rows:
        return rows[0]
    last = (done.stderr.strip() or done.stdout.strip() or "no output").splitlines()[-1]
    return {"error": f"exit code {done.returncode}: {last}"}


def main(argv=None) -> int:
    ap = parser(__doc__, "backward_check", ("ssm", "fenwick", "blocks"))
    ap.add_argument("--heads", default="64,128")
    ap.add_argument("--n", type=int, default=4097)
    ap.add_argument("--dtypes", default="bfloat16,float32")
    ap.add_argument("--backward-head", type=int, default=readout_triton.BACKWARD_HEAD,
                    help="readout_triton.BACKWARD_HEAD: wider heads take the torch ops' gradients")
    ap.add_argument("--settings", type=json.loads, default=SETTINGS, help="a JSON list of readout_triton.GPU updates")
    ap.add_argument("--isolate", action="store_true", help="each row in a process of its own")
    args = ap.parse_args(argv)
    head, readout_triton.BACKWARD_HEAD = readout_triton.BACKWARD_HEAD, args.backward_head
    save, rows = saver(args.out, "gpu_backward_check.py"), []
    base = dict(readout_triton.GPU)
    for spec in args.specs.split(","):
        for d in map(int, args.heads.split(",")):
            for dtype in (getattr(torch, x) for x in args.dtypes.split(",")):
                for setting in args.settings:
                    case = dict(spec=spec, d=d, n=args.n, dtype=dtype_name(dtype), setting=setting,
                                backward_head=args.backward_head)
                    if args.isolate:
                        found = isolated(case, args.device)
                    else:
                        _apply(base, setting, d)
                        found = check(spec, d, args.n, dtype, device=args.device)
                    row = dict(case, **found)
                    print(row, flush=True)
                    rows.append(row)
                    save(dict(bounds={dtype_name(k): v for k, v in BOUND.items()}, rows=rows))
    _apply(base, {}, 0)
    readout_triton.BACKWARD_HEAD = head
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
