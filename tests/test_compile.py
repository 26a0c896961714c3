"""``torch.compile(GLRMixer)``: the compiled layer gives the eager layer's outputs and gradients, in the two
graphs its docstring names (projections and scores, then the output), with the mixing run between them."""
import pytest

torch = pytest.importorskip("torch")
import torch._dynamo  # noqa: E402

from glrtheory.kernels.torch import GLRMixer  # noqa: E402
from tests.helpers import rel_err  # noqa: E402

pytestmark = pytest.mark.usefixtures("nan_scratch")     # scratch the code leaves unwritten is NaN

CASES = [("ssm", dict(readout=True)), ("fenwick", dict(readout=True)), ("power2", {}),
         ("window:3+ssm", dict(scores="query_key")), ("attention", dict(readout=True, scores="query_key")),
         ("power2", dict(lag_bias=True)), ("fenwick", dict(readout=True, lag_bias=True))]


def _run(layer, x, g):
    """Output of ``layer(x)`` and the gradients of ``<output, g>`` in x and every parameter."""
    x = x.detach().requires_grad_(True)
    layer.zero_grad()
    y = layer(x)
    y.backward(g)
    return [y.detach(), x.grad] + [p.grad for p in layer.parameters()]


@pytest.mark.parametrize("spec,kw", CASES, ids=[c[0] + "-" + "-".join(c[1]) for c in CASES])
@pytest.mark.parametrize("n", [1, 63])
def test_compiled_layer_equals_eager(spec, kw, n):
    torch.manual_seed(n)
    layer = GLRMixer(spec, 16, 2, dtype=torch.float64, **kw)
    if layer.lag_bias is not None:                        # a random bias, so that its buckets change the output
        torch.nn.init.normal_(layer.lag_bias)
    x, g = torch.randn(2, n, 16, dtype=torch.float64), torch.randn(2, n, 16, dtype=torch.float64)
    torch._dynamo.reset()
    compiled = _run(torch.compile(layer, backend="aot_eager"), x, g)      # first: the tables are built under compile
    for want, got in zip(_run(layer, x, g), compiled, strict=True):
        assert rel_err(got, want) < 1e-12
    assert torch._dynamo.explain(layer)(x).graph_count == 2


def test_inductor_compiles_the_readout_layer():
    """The default backend (inductor, C++ on the CPU) on a float32 readout layer, within float32 tolerance."""
    torch.manual_seed(0)
    layer = GLRMixer("ssm", 16, 2, readout=True)
    x, g = torch.randn(2, 63, 16), torch.randn(2, 63, 16)
    torch._dynamo.reset()
    compiled = _run(torch.compile(layer), x, g)
    for want, got in zip(_run(layer, x, g), compiled, strict=True):
        assert rel_err(got, want) < 1e-5
