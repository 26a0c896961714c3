"""CUDA checks the device session runs first (``pytest -m gpu``): the matrix-state readout ``glr_readout``
at CUDA sizes (T = 4097, the algorithm it picks for each pattern) against the materializing float64 reference
``q_t^T glr_scan(k v^T)_t`` on the same device, forward and gradients (float32, 1e-5), forward in bf16 (1e-2,
the reference on the bf16-rounded inputs). ``check_readout`` also runs on the CPU at small T, so the check
itself is tested where there is no GPU."""
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from gpu_common import inputs  # noqa: E402

from glrtheory.kernels.torch import glr_readout, glr_scan  # noqa: E402
from tests.helpers import rel_err  # noqa: E402

TOL = {torch.float32: 1e-5, torch.bfloat16: 1e-2}
SPECS = ["ssm", "fenwick", "power2", "blocks", "window:64"]


def reference(q, k, v, a, b, tables):
    """``o_t = q_t^T H_t`` with ``H = glr_scan(u)``, ``u_t = k_t v_t^T`` materialized (float64)."""
    dk, dv = k.shape[-1], v.shape[-1]
    h = glr_scan(torch.einsum("bthk,bthv->bthkv", k, v).reshape(*k.shape[:3], dk * dv), a, b, tables)
    return torch.einsum("bthk,bthkv->bthv", q, h.reshape(*h.shape[:3], dk, dv))


def check_readout(spec, T, dtype, device, B=2, H=2, d=16, grad=True):
    """Relative errors of glr_readout against ``reference`` in float64 on the same (rounded) inputs: the
    output, and with ``grad`` the gradients of q, k, v, a, b for a random cotangent."""
    tables, k, a, b = inputs(spec, B, T, H, d, dtype=dtype, device=device)
    q, v = torch.randn_like(k) * d ** -0.5, torch.randn_like(k)
    ours = [x.detach().requires_grad_(grad) for x in (q, k, v, a, b)]
    ref = [x.detach().double().requires_grad_(grad) for x in (q, k, v, a, b)]
    out, expected = glr_readout(*ours, tables), reference(*ref, tables)
    errors = {"o": rel_err(out.detach().double().cpu(), expected.detach().double().cpu())}
    if grad:
        g = torch.randn_like(expected)
        out.backward(g.to(out.dtype))
        expected.backward(g)
        errors.update({f"d{n}": rel_err(x.grad.cpu(), r.grad.cpu()) for n, x, r in zip("qkvab", ours, ref)})
    return errors


@pytest.mark.parametrize("spec", ["ssm", "fenwick"])
def test_the_check_on_the_cpu(spec):
    errors = check_readout(spec, 63, torch.float32, "cpu")
    assert max(errors.values()) <= TOL[torch.float32], errors


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("spec", SPECS)
def test_readout_at_cuda_sizes(spec):
    torch.manual_seed(0)
    errors = check_readout(spec, 4097, torch.float32, "cuda")
    assert max(errors.values()) <= TOL[torch.float32], errors
    errors = check_readout(spec, 4097, torch.bfloat16, "cuda", grad=False)
    assert errors["o"] <= TOL[torch.bfloat16], errors


def test_tune_sets_the_blocks_that_run(monkeypatch):
    """``gpu_readout._apply``: a tuned block size goes where heads of that width read it (the ``wide`` blocks over
    ``WIDE_HEAD``, else the top level), other keys to the top level, and the settings it started from stay as
    they were."""
    import gpu_readout
    from glrtheory.kernels.scan import readout_triton as R

    monkeypatch.setattr(R, "GPU", dict(R.GPU, wide=dict(R.GPU["wide"])))
    monkeypatch.setattr(R, "_setting", lambda: R.GPU)
    base = dict(R.GPU, wide=dict(R.GPU["wide"]))
    gpu_readout._apply(base, dict(out_v=32, warps=8), 256)
    assert R._blocks(256, 256)["out_v"] == 32 and R.GPU["warps"] == 8 and R.GPU["out_v"] == base["out_v"]
    assert base["wide"]["out_v"] != 32 and base["warps"] != 8
    gpu_readout._apply(base, dict(out_v=32), 128)
    assert R._blocks(128, 128)["out_v"] == 32 and R.GPU["wide"] == base["wide"]


def test_tune_sets_the_scans_settings_under_their_prefix(monkeypatch):
    """``gpu_readout._apply``: ``scan.KEY`` sets the scan's ``triton.GPU[KEY]`` on top of the scan's base (and only
    there), an empty setting restores that base, an unknown ``scan.`` key raises naming it; and a readout plan's
    signature changes with the scan's settings, so that a tuned chunk inverse is launched by a fresh plan."""
    import gpu_readout
    from glrtheory import Pattern
    from glrtheory.kernels.scan import readout_triton as R
    from glrtheory.kernels.scan import triton as S
    from glrtheory.kernels.scan.readout_plan import aligned_layout

    monkeypatch.setattr(R, "GPU", dict(R.GPU, wide=dict(R.GPU["wide"])))
    monkeypatch.setattr(S, "GPU", dict(S.GPU))
    base, scan_base = dict(R.GPU, wide=dict(R.GPU["wide"])), dict(S.GPU)
    warps = scan_base["inverse_warps"] + 1
    gpu_readout._apply(base, {"scan.inverse_warps": warps, "out_v": 32}, 128, scan_base)
    assert S.GPU["inverse_warps"] == warps and R.GPU["out_v"] == 32 and "inverse_warps" not in R.GPU
    gpu_readout._apply(base, {}, 128, scan_base)
    assert S.GPU == scan_base and R.GPU == base
    with pytest.raises(ValueError, match="scan.nope"):
        gpu_readout._apply(base, {"scan.nope": 1}, 128, scan_base)
    monkeypatch.setattr(S, "_settings", lambda: S.GPU)
    monkeypatch.setattr(R, "_settings", lambda: S.GPU)
    monkeypatch.setattr(R, "_setting", lambda: R.GPU)
    x = torch.zeros(1, 64, 1, 16)
    layout = aligned_layout(Pattern.from_spec("fenwick").tables(64), 16)
    before = R._signature(x, x, x, x[..., :1], x[..., :1], layout)
    S.GPU["inverse_warps"] = warps + 1
    assert R._signature(x, x, x, x[..., :1], x[..., :1], layout) != before
