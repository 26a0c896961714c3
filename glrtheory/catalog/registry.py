"""The catalog's table: every entry with its pattern, state and where the data dependence sits, and the
architectures the scalar-coefficient framework cannot express exactly (with the reason)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from .attention import sliding_window_attention, softmax_attention
from .chacal import chacal
from .linear import gla, linear_attention, retention, simple_gla
from .log_linear import levels, log_linear_attention
from .long_conv import long_conv
from .multi_lag import multi_lag
from .operator import delta_net, gated_delta_net
from .ssm import diagonal_ssm, mamba2


@dataclass(frozen=True)
class Entry:
    """One architecture written in the framework.

    ``spec``: the pattern it runs on (with a parameter placeholder such as ``window:W``); ``example``:
    a concrete spec (or several, separated by " | ") for cost tables; ``state``: the shape of one state
    h_t per batch element (heads H, key and value dims K, V, SSM state N, head dim P, channels D, levels
    L); ``data_in``: which of A and B carry the token data (parameters such as gamma or a convolution
    kernel do not count). ``copies(n)``: how many recurrences of the pattern run side by side over the sequence
    (1, or the Fenwick levels of log-linear attention), with its growth class ``copies_theta``.
    """

    name: str
    function: Callable
    spec: str
    example: str
    state: str
    data_in: str
    note: str
    copies: Callable[[int], int] = lambda n: 1
    copies_theta: str = "1"


ENTRIES: tuple[Entry, ...] = (
    Entry("softmax_attention", softmax_attention, "attention", "attention", "[H, V]", "A",
          "a[t,s] = softmax_s(scale q_t.k_s); B empty"),
    Entry("sliding_window_attention", sliding_window_attention, "window:W", "window:64", "[H, V]", "A",
          "softmax over the last W keys; B empty"),
    Entry("linear_attention", linear_attention, "ssm", "ssm", "[H, K, V]", "neither",
          "a = b = 1, u = vec(k v^T), readout q"),
    Entry("retention", retention, "ssm", "ssm", "[H, K, V]", "neither",
          "b = gamma per head (LTI), u = vec(k v^T)"),
    Entry("simple_gla", simple_gla, "ssm", "ssm", "[H, K, V]", "B",
          "b_t = exp(g_t) per head and step"),
    Entry("gla", gla, "ssm", "ssm", "[H, K, V]", "A and B",
          "one recurrence per key row: a_t = k_t[i], b_t = exp(g_t[i]), u = v"),
    Entry("mamba2", mamba2, "ssm", "ssm", "[H, N, P]", "A and B",
          "a_t = dt_t, b_t = exp(dt_t A), u = vec(B_t x_t^T), readout C_t, plus D x_t"),
    Entry("diagonal_ssm", diagonal_ssm, "ssm", "ssm", "[D, N]", "A and B",
          "per (channel, state): a_t = delta_t B_t[n], b_t = exp(delta_t A[d,n]); readout sums C_t[n]"),
    Entry("long_conv", long_conv, "window:L (attention when L >= T)", "attention | window:64", "[D]", "neither",
          "a[t,s] = kernel[t-s] (Toeplitz, LTI); B empty"),
    Entry("chacal", chacal, "attention+exponent:1", "attention+exponent:1", "[H, V]", "A and B",
          "a = (1-gamma) A/d_t, b = gamma A/d_t, d_t = 1 - gamma A[t,t]"),
    Entry("log_linear_attention", log_linear_attention, "ssm", "ssm", "[H, L, K, V]", "B",
          "one ssm per Fenwick level (L = ceil(log2 T)+1): a = fixed level masks, b = exp(g_t) masked; "
          "readout sums lambda_t^l h^l_t",
          copies=levels, copies_theta="log(n)"),
    Entry("multi_lag", multi_lag, "power2 | quadratic | any lag set", "power2 | quadratic", "[H, K, V]", "A and B",
          "b[t, t-l_j] = exp(g_t[j]), a_t = beta_t, u = vec(k v^T)"),
)


#: Entries that need operator-valued B-coefficients (K x K on the key dimension; ``solve_operator``).
OPERATOR_ENTRIES: tuple[Entry, ...] = (
    Entry("delta_net", delta_net, "ssm", "ssm", "[H, K, V]", "A and B",
          "operator B_t = I - beta_t k_t k_t^T, a_t = beta_t, u = vec(k v^T)"),
    Entry("gated_delta_net", gated_delta_net, "ssm", "ssm", "[H, K, V]", "A and B",
          "operator B_t = exp(g_t)(I - beta_t k_t k_t^T), a_t = beta_t, u = vec(k v^T)"),
)


@dataclass(frozen=True)
class Inexpressible:
    """An architecture the scalar-coefficient framework cannot write exactly, and why."""

    name: str
    reason: str


INEXPRESSIBLE: tuple[Inexpressible, ...] = (
    Inexpressible("DeltaNet, Gated DeltaNet",
                  "the transition S_t = (I - beta_t k_t k_t^T) S_{t-1} + beta_t k_t v_t^T multiplies the state "
                  "by a K x K operator acting on its key dimension; scalar b[t,s] can only scale whole states "
                  "(exact with operator-valued coefficients: delta_net, gated_delta_net)"),
    Inexpressible("RWKV-7, Longhorn (generalized delta rules)",
                  "transitions diag(w_t) + a_t b_t^T (or I - e_t k_t k_t^T): a rank-one operator mixes the key "
                  "rows, so no per-row decomposition into scalar recurrences exists"),
    Inexpressible("selective SSMs with complex diagonal A (Mamba-1 complex, S4D-Lin when selective)",
                  "a complex mode is a rotation of a 2-dim real state (a 2 x 2 block), not a real scalar; the "
                  "LTI case is a convolution and is exact as long_conv"),
    Inexpressible("log-linear attention as a single recurrence on output states",
                  "the query-dependent level scales lambda_t make B = I - D M^{-1} dense (no sparse scalar "
                  "pattern, fenwick included); exact only as one ssm per level (the catalog's form)"),
    Inexpressible("mLSTM (xLSTM)",
                  "the output divides by max(|n_t^T q_t|, 1): the max makes the map from values to outputs "
                  "non-linear for fixed gates"),
    Inexpressible("TTT, Titans (non-linear memories)",
                  "the state update is a gradient step of a non-linear model: the states are not a linear "
                  "function of the inputs"),
    Inexpressible("bidirectional mixers (non-causal attention, Hyena with k_rev)",
                  "the framework is causal: A(t) holds only s <= t and B(t) only s < t"),
)


def table(n: int = 1024) -> list[dict]:
    """One row per entry (scalar, then operator-valued): its pattern and the costs of docs/quantities.md at length n, from
    ``glrtheory.analysis`` (max decode cost, cache peak, total cost ``nnz_a + nnz_b``) and
    ``glrtheory.symbolic.costs.theta`` (growth classes), each times ``copies``."""
    import sympy as sp

    from ..analysis import cache_peak, decode_costs, total_cost
    from ..patterns import Pattern
    from ..symbolic.costs import theta

    rows = []
    for e, example in ((e, x.strip()) for e in ENTRIES + OPERATOR_ENTRIES for x in e.example.split("|")):
        p = Pattern.from_spec(example)
        c = e.copies(n)
        th = theta(p)
        rows.append({
            "name": e.name, "coefficients": "operator" if e in OPERATOR_ENTRIES else "scalar",
            "spec": e.spec, "example": p.spec, "copies": c, "state": e.state,
            "data_in": e.data_in, "n": n,
            "decode_max": c * int(decode_costs(p, n).max()), "cache_peak": c * cache_peak(p, n),
            "total": c * total_cost(p, n),
            **{k: None if v is None else str(sp.sympify(v) * sp.sympify(e.copies_theta)) for k, v in th.items()},
            "note": e.note,
        })
    return rows
