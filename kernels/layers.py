"""``GLRMixer``: a token-mixing layer ``H = (I - B)^{-1} A U`` built from a pattern spec.

Per head, with ``x_t`` the layer input, data-dependent coefficients normalized so that every state is a
convex combination of the inputs and states it reads (so ``|h_t| <= max_s |u_s|``; the recurrence
cannot blow up, ``sum_s |b[t, s]| = gamma_t < 1``):

    gamma_t = sigmoid(w_g . x_t)                       (0 when B(t) is empty)
    a[t, s] = (1 - gamma_t) softmax_{s in A(t)}(score(t, s))
    b[t, s] = gamma_t       softmax_{s in B(t)}(score(t, s))
    score(t, s) = w_a . x_s  (resp. w_b . x_s)         scores="source"
    score(t, s) = q_t . k_s / sqrt(d_key)              scores="query_key"
    score(t, s) + beta[lag_bucket(t - s)]             lag_bias=True: a learned bias per head, side and
                                                      bucket of lags [2^(k-1), 2^k) (``lag_buckets``)
    u_t     = v_t                         (vector state), or  k_t v_t^T  (readout: matrix state)
    o_t     = h_t                         (vector state), or  q_t^T H_t / sqrt(d_key)  (readout)

With ``scores="query_key"`` and B empty (``attention``, ``window:W``) this is causal softmax attention
(sliding-window attention): ``h_t = sum_{s in A(t)} softmax_s(q_t . k_s / sqrt(d)) v_s``.

``forward(x)`` runs ``glr_scan`` on the whole sequence ``x[batch, T, d_model]`` (training; a readout
layer runs ``glr_readout``, which never builds the per-token ``d_key x d_head`` states, and on CUDA replays its
whole step as CUDA graphs where that applies, ``layer_graphs``; ``forward_eagerly`` runs it op by op);
``forward(x, cache=cache)`` also leaves in a fresh cache the live set after the prompt x.
``torch.compile(mixer)`` compiles ``forward(x)`` into two graphs, the projections and scores before the mixing
and the output after it; the mixing (Triton kernels or custom ops) and the lookup of the index tables' device
copies run outside them (both read numpy tables, which the compiler cannot trace). ``forward(x, cache)`` and
``step`` run eagerly only.
``step(x_t, cache)`` decodes one token and gives the same output; ``init_cache(max_length)`` makes the
cache, which holds exactly the live set (``u_s`` with its key while a later A(t') reads it, ``h_s``
with its key while a later B(t') reads it).

Parameters may be float32, float64, bfloat16 or float16, and ``torch.autocast`` may be on: the scores,
softmax and scan compute in float32 (float64 for float64 inputs), except the matrix-state readout, which
takes q, k, v as the projections give them (bfloat16 under autocast) and runs its products in that dtype
(``glr_readout``: its solve and states stay float32). Outputs have the input's dtype, or under autocast the out
projection's (the autocast dtype for float32 inputs), as torch's own layers give it.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from glrtheory.checks import check_device, check_integer, check_real
from glrtheory.errors import GLRError
from glrtheory.patterns import Pattern
from glrtheory.patterns.tables import IndexTables, check_size

from . import layer_graphs
from .scan.op import glr_scan
from .scan.readout import glr_readout
from .state import GLRCache

#: Score modes: how a[t, s] and b[t, s] are scored (module docstring).
SCORES = ("source", "query_key")
#: Lag buckets of ``lag_bias``: bucket k holds the lags ``[2^(k-1), 2^k)`` (bucket 0 the lag 0), the last all longer.
LAG_BUCKETS = 24
#: Sequence lengths whose tables a mixer keeps.
TABLES_KEPT = 8

Tensor = torch.Tensor


def _compute_dtype(x: Tensor) -> torch.dtype:
    """float64 for float64 inputs, else float32 (bf16 / fp16 / autocast compute in float32)."""
    return torch.float64 if x.dtype == torch.float64 else torch.float32


def _masked_softmax(z: Tensor, valid: Tensor) -> Tensor:
    """``softmax`` of ``z[..., w]`` over the valid slots (0 in the others; all-invalid rows give 0). Invalid
    slots score the dtype's lowest finite value, so an all-invalid row is uniform (then zeroed), never NaN."""
    z = z.masked_fill(~valid, torch.finfo(z.dtype).min)
    return torch.softmax(z, dim=-1) * valid


def _slot_weights(q: Tensor | None, e: Tensor, idx: Tensor, valid: Tensor | None,
                  bias: Tensor | None = None) -> Tensor | None:
    """The softmax over each row's valid slots of their scores (``_slot_scores``, plus ``bias[T, H, w]`` if given;
    ``_masked_softmax``). A table
    one slot wide needs no scores: the weight is 1 where the slot is valid (exactly what the softmax gives,
    whose derivative is then 0), ``[T, 1, 1]``, or None (1 everywhere) where its mask is None
    (``_device_tables``)."""
    if idx.shape[1] == 1:
        return None if valid is None else valid.to(e.dtype)
    z = _slot_scores(q, e, idx)
    return _masked_softmax(z if bias is None else z + bias, valid)


def _slot_scores(q: Tensor | None, e: Tensor, idx: Tensor) -> Tensor:
    """Scores ``[B, T, H, w]`` of the table slots ``idx[T, w]`` (padding clamped to 0, masked later).

    Source scores: ``e[B, T, H]`` gathered at the sources. Query-key scores (q, e = k ``[B, T, H, d]``):
    ``q_t . k_s``, from the dense ``Q K^T`` when that is smaller than the gathered keys. Gathers by
    ``index_select``: its backward adds by index, where advanced indexing's sorts the indices first."""
    src = idx.clamp(min=0)
    if q is None:
        return _gather_time(e, src).transpose(-1, -2)                     # [B, T, w, H] -> [B, T, H, w]
    T, w = idx.shape
    if w * e.shape[-1] >= T:
        s = torch.einsum("bthd,bshd->bhts", q, e)                         # dense [B, H, T, T]
        return s.gather(-1, src.expand(s.shape[:2] + src.shape)).permute(0, 2, 1, 3)
    return torch.einsum("bthd,btwhd->bthw", q, _gather_time(e, src))


def _device_tables(tables: IndexTables, device) -> tuple[Tensor, ...]:
    """``(a_idx, b_idx, valid_a [T, 1, wa], valid_b [T, 1, wb], has_b [T, 1])`` on ``device``: the tables as
    int64, where their slots are real (not -1 padding), and which rows read any state. A one-slot side's mask is
    None where it would change nothing: A's where every row's slot is real, B's always (its slot is real exactly
    where ``has_b``, by which the gate is multiplied first): no launches to multiply by ones (ssm)."""
    ai, bi = (torch.tensor(idx, device=device, dtype=torch.long) for idx in tables)
    one_a, one_b = (idx.shape[1] == 1 for idx in tables)
    valid_a = None if one_a and (tables.a_idx >= 0).all() else ai[:, None] >= 0
    valid_b = None if one_b else bi[:, None] >= 0
    return ai, bi, valid_a, valid_b, (bi >= 0).any(1)[:, None]


def lag_buckets(lags: np.ndarray) -> np.ndarray:
    """``min(bit_length(lag), LAG_BUCKETS - 1)`` of non-negative integer lags: 0 for the lag 0, k for
    ``2^(k-1) <= lag < 2^k``."""
    return np.minimum(np.frexp(np.asarray(lags, np.float64))[1], LAG_BUCKETS - 1)


def _table_buckets(tables: IndexTables, device) -> tuple[Tensor, Tensor]:
    """``lag_buckets(t - s)`` of every slot of ``a_idx`` and ``b_idx`` (0 at padding, which is masked), int64."""
    t = np.arange(tables.n)[:, None]
    return tuple(torch.tensor(lag_buckets(np.where(idx >= 0, t - idx, 0)), dtype=torch.long, device=device)
                 for idx in tables)


def gate_bias(timescales, n_heads: int) -> Tensor:
    """``log(tau_h - 1)`` for h < n_heads (float64), the bias that starts head h's gate at ``1 - 1 / tau_h``, with
    ``tau_h`` log-spaced from ``timescales = (tau_min, tau_max)`` (``tau_min`` for one head); both must exceed 1."""
    if not isinstance(timescales, (tuple, list)) or len(timescales) != 2:
        raise GLRError(f"timescales must be a pair (tau_min, tau_max), got {timescales!r}")
    low, high = (check_real(t, "a timescale", 1, open_low=True) for t in timescales)
    if low > high:
        raise GLRError(f"timescales must be (tau_min, tau_max) with tau_min <= tau_max, got {timescales!r}")
    return torch.log(torch.logspace(math.log10(low), math.log10(high), n_heads, dtype=torch.float64) - 1)


def _gather_time(x: Tensor, src: Tensor) -> Tensor:
    """``x[:, src]``: x ``[B, T, ...]`` at the positions ``src[T', w]``, ``[B, T', w, ...]``."""
    return x.index_select(1, src.flatten()).unflatten(1, src.shape)


class GLRMixer(nn.Module):
    """Token mixer from a pattern spec: ``n_heads`` heads of ``H = (I - B)^{-1} A U`` (module docstring).

    Parameters
    ----------
    spec : str or Pattern
        The pattern (``"power2"``, ``"attention"``, ``"window:64+fenwick"``, ...).
    d_model, n_heads : int
        Model width and number of heads.
    d_head : int, optional
        Value size per head (default ``d_model // n_heads``).
    readout : bool
        Matrix state ``u_t = k_t v_t^T`` read out by ``q_t`` (query/key projections of size d_key).
    d_key : int, optional
        Key size of the readout and of the query-key scores (default d_head).
    chunk : int, optional
        Chunk length of ``glr_scan`` (None: its default for the device).
    scores : {"source", "query_key"}
        ``"source"``: a[t, s] scored by ``w_a . x_s`` (cost O(d_model) per token and head);
        ``"query_key"``: by ``q_t . k_s / sqrt(d_key)`` over the supports (cost ``2 d_key (nnz_a + nnz_b)``
        per head, like attention's scores restricted to the pattern).
    timescales : (tau_min, tau_max), optional
        Start head h's gate at ``gamma_h = 1 - 1 / tau_h``, with ``tau_h`` log-spaced from tau_min (head 0) to
        tau_max (the last head), both > 1, by its bias ``log(tau_h - 1)``: at a constant gate a state keeps
        ``gamma^j`` of what entered j hops back, so tau_h hops is head h's memory (an ssm's hop is one token).
        None: the gate's bias starts as the other scores' (uniform in ``+-d_model^-1/2``, gamma near 1/2).
    lag_bias : bool
        Add to every score of a[t, s] (and of b[t, s]) a learned bias of the head and of the bucket of the lag
        ``t - s`` (``lag_buckets``; one set per side, zero at the start): the softmax over a row's sources can then
        prefer some lags over others for every t. Without it, source scores depend on s alone, so every t that
        reads s weighs it alike, whatever the lag.

    Attributes
    ----------
    in_proj : nn.Linear
        The input projections stacked, by name: ``values``, then ``keys`` and ``queries`` (readout), ``scores``
        (the gate, then A's and B's source scores in source mode), ``score_queries`` and ``score_keys``
        (query-key mode); ``projection_rows(name)`` gives a projection's rows. Biased only with ``bias``.
    score_bias : nn.Parameter or None
        The scores' bias where ``bias`` is off.
    lag_bias : nn.Parameter or None
        ``[2, n_heads, LAG_BUCKETS]``: the lag buckets' biases of A's scores, then of B's (``lag_bias=True``).
    out : nn.Linear
        The out projection.

    Raises
    ------
    GLRError
        Bad sizes, an unknown spec or score mode, a CUDA device on a machine without CUDA.
    """

    def __init__(self, spec: str | Pattern, d_model: int, n_heads: int, d_head: int | None = None, *,
                 readout: bool = False, d_key: int | None = None, chunk: int | None = None,
                 bias: bool = False, scores: str = "source", timescales=None, lag_bias: bool = False,
                 device=None, dtype=None):
        super().__init__()
        self.pattern = spec if isinstance(spec, Pattern) else Pattern.from_spec(spec)
        for v, name in ((d_model, "d_model"), (n_heads, "n_heads"), (d_head, "d_head"), (d_key, "d_key"),
                        (chunk, "chunk")):
            if v is not None:
                check_integer(v, name, 1)
        for v, name in ((readout, "readout"), (bias, "bias"), (lag_bias, "lag_bias")):
            if not isinstance(v, bool):
                raise GLRError(f"{name} must be True or False, got {v!r}")
        if d_head is None and d_model % n_heads:
            raise GLRError(f"d_model={d_model} is not divisible by n_heads={n_heads}; pass d_head")
        if scores not in SCORES:
            raise GLRError(f"scores must be one of {SCORES}, got {scores!r}")
        device = None if device is None else check_device(device)
        if dtype is not None and not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
            raise GLRError(f"dtype must be a floating torch dtype, got {dtype!r}")
        self.d_model, self.n_heads, self.score_mode = d_model, n_heads, scores
        self.d_head = d_head or d_model // n_heads
        query_key = scores == "query_key"
        if d_key is not None and not (readout or query_key):
            raise GLRError("d_key sizes the readout's queries and keys or the query-key scores' projections; this "
                           "mixer has neither (readout=False, scores='source')")
        self.d_key = (d_key or self.d_head) if (readout or query_key) else 0
        self.readout, self.chunk = readout, chunk
        H = n_heads
        score_width = H if query_key else 3 * H         # gate (query-key), or gate, a, b scores (source)
        widths = dict(values=H * self.d_head, keys=H * self.d_key if readout else 0,
                      queries=H * self.d_key if readout else 0, scores=score_width,
                      score_queries=H * self.d_key if query_key else 0, score_keys=H * self.d_key if query_key else 0)
        self._inputs = tuple(name for name, w in widths.items() if w)
        self._widths = tuple(widths[name] for name in self._inputs)
        # every input projection in one matrix (one product and one parameter: nothing to stack per step)
        self.in_proj = nn.Linear(d_model, sum(self._widths), bias=bias, device=device, dtype=dtype)
        # the scores keep a bias where the other projections have none
        self.score_bias = None if bias else nn.Parameter(torch.empty(score_width, device=device, dtype=dtype))
        if self.score_bias is not None:
            nn.init.uniform_(self.score_bias, -d_model ** -0.5, d_model ** -0.5)    # as nn.Linear's bias
        self.out = nn.Linear(H * self.d_head, d_model, bias=bias, device=device, dtype=dtype)
        self.lag_bias = nn.Parameter(torch.zeros(2, H, LAG_BUCKETS, device=device, dtype=dtype)) if lag_bias else None
        if timescales is not None:      # the gate's bias: the scores' first H
            scores_bias = self.in_proj.bias[self.projection_rows("scores")] if bias else self.score_bias
            with torch.no_grad():
                scores_bias[:H] = gate_bias(timescales, H)
        self._tables: dict[int, IndexTables] = {}

    def tables(self, n: int) -> IndexTables:
        """The pattern's index tables at length n, kept for the last ``TABLES_KEPT`` lengths (with the
        device plans glr_scan builds from them)."""
        if n not in self._tables:
            for side in (self.pattern.support_a(n), self.pattern.support_b(n)):
                check_size(side, f"GLRMixer({self.pattern.spec!r})")
            while len(self._tables) >= TABLES_KEPT:
                self._tables.pop(next(iter(self._tables)))
            self._tables[n] = self.pattern.tables(n)
        return self._tables[n]

    # -- per-token projections, [B, T, H, ...] --------------------------------------------------
    def _project(self, x: Tensor, states: bool = True):
        """Inputs u ``[B, T, H, D]``, gate ``[B, T, H]``, A/B scoring features, readout queries (or None)
        for ``x[B, T, d_model]``, in the compute dtype. With ``states=False`` a readout layer gives
        ``u = (k, v)`` instead of the flattened ``k v^T``, and q, k, v in the projections' dtype.

        Scoring features: source mode ``(None, e, c)`` with ``e, c [B, T, H]``; query-key mode
        ``(q, k, k)`` with ``q, k [B, T, H, d_key]`` (q scaled by ``d_key^-1/2``). The readout queries are
        scaled by ``d_key^-1/2`` too, except with ``states=False`` (``_coefficients`` puts the scale into a)."""
        B, T, _ = x.shape
        H, f = self.n_heads, _compute_dtype(x)
        heads = lambda y, k: y.to(f).view(B, T, H, k)  # noqa: E731
        as_given = lambda y, k: y.view(B, T, H, k)  # noqa: E731   glr_readout's q, k, v: no float32 round trip
        qkv = as_given if self.readout and not states else heads
        proj = self._projections(x)
        v = qkv(proj["values"], self.d_head)
        if self.score_mode == "query_key":
            g = proj["scores"].to(f)
            kq = heads(proj["score_keys"], self.d_key)
            feats = (heads(proj["score_queries"], self.d_key) * self.d_key ** -0.5, kq, kq)
        else:
            g, e, c = proj["scores"].to(f).view(B, T, 3, H).unbind(2)
            feats = (None, e, c)
        if self.readout:
            k, q = qkv(proj["keys"], self.d_key), qkv(proj["queries"], self.d_key)
            u = (k.unsqueeze(-1) * v.unsqueeze(-2)).flatten(-2) if states else (k, v)
            q = q * self.d_key ** -0.5 if states else q
        else:
            q, u = None, v
        return u, torch.sigmoid(g), feats, q

    def _projections(self, x: Tensor) -> dict[str, Tensor]:
        """Each input projection of x by name (``values``, ``keys``, ``queries``, ``scores``, ``score_queries``,
        ``score_keys``, those the layer has): ``x W^T + c`` with ``W = in_proj.weight`` the projections' weights
        stacked in that order (rows ``projection_rows(name)``), c their biases (``in_proj.bias``, and ``score_bias``
        on the scores where the others have none), split by name."""
        y = nn.functional.linear(x, self.in_proj.weight, self.in_proj.bias)
        parts = dict(zip(self._inputs, y.split(self._widths, -1)))
        if self.score_bias is not None:
            parts["scores"] = parts["scores"] + self.score_bias
        return parts

    def projection_rows(self, name: str) -> slice:
        """The rows of ``in_proj.weight`` (and ``in_proj.bias``) that make the input projection ``name``."""
        i = self._inputs.index(name)
        start = sum(self._widths[:i])
        return slice(start, start + self._widths[i])

    def _output(self, h: Tensor, q, like: Tensor) -> Tensor:
        """o = h (or q^T H); ``[B, T, H, .]`` -> out projection -> ``[B, T, d_model]`` (``_out``)."""
        if self.readout:
            h = torch.matmul(q.unsqueeze(-2), h.unflatten(-1, (self.d_key, self.d_head))).squeeze(-2)
        return self._out(h, like)

    def _out(self, h: Tensor, like: Tensor) -> Tensor:
        """The out projection of ``o[B, T, H, d_head]`` -> ``[B, T, d_model]``: o enters in the weight's dtype and
        leaves in like's; under autocast o enters as it is and leaves as the projection gives it (no cast back:
        ``nn.Linear`` and ``nn.MultiheadAttention`` do the same)."""
        B, T, H, dv = h.shape
        h = h.reshape(B, T, H * dv)
        if torch.is_autocast_enabled(h.device.type):
            return self.out(h)
        return self.out(h.to(self.out.weight.dtype)).to(like.dtype)

    def _check_x(self, x: Tensor, shape: str) -> None:
        if not isinstance(x, Tensor) or x.ndim != len(shape.split(",")) or x.shape[-1] != self.d_model:
            got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise GLRError(f"x must have shape [{shape}{self.d_model}], got {got}")
        if x.shape[0] == 0:
            raise GLRError(f"x must have shape [{shape}{self.d_model}] with a batch of at least 1, got "
                           f"{tuple(x.shape)}")
        w = self.in_proj.weight
        if x.device != w.device:
            raise GLRError(f"x is on {x.device}, the mixer on {w.device}; move one to the other")
        if not x.is_floating_point() or (x.dtype != w.dtype and not torch.is_autocast_enabled(x.device.type)):
            raise GLRError(f"x is {x.dtype}, the mixer {w.dtype}: cast x, or the mixer (mixer.to(dtype)), "
                           f"or run under torch.autocast")

    def coefficients(self, x: Tensor, tables=None):
        """``(u, a, b, q)`` for ``x[batch, T, d_model]``: inputs ``u[batch, T, H, D]``, table-aligned
        coefficients ``a[batch, T, H, wa]``, ``b[batch, T, H, wb]`` (non-negative, each row of
        ``[a | b]`` sums to 1) and readout queries (or None), in float32 (float64 for float64 x)."""
        return self._coefficients(x, tables)[:4]

    def _coefficients(self, x: Tensor, tables=None, states: bool = True):
        """``coefficients`` plus the scoring features ``(q_s, e, c)`` (``_keys`` makes of them what the decode
        cache keeps per position); u = (k, v) for a readout layer with ``states=False``, with q, k, v in the
        projections' dtype, q unscaled and a times ``d_key^-1/2`` instead (H is linear in A, so ``q^T H`` is the
        same), in one op, and b not zeroed in rows without B (``glr_readout`` ignores padded slots)."""
        self._check_x(x, "batch, T, ")
        if tables is not None and (not isinstance(tables, IndexTables) or tables.n != x.shape[1]):
            got = f"tables at n = {tables.n}" if isinstance(tables, IndexTables) else type(tables).__name__
            raise GLRError(f"tables must be the IndexTables of x's T = {x.shape[1]} (pattern.tables(T)), got {got}")
        n_or_tables = x.shape[1] if tables is None else tables
        ai, bi, valid_a, valid_b, has_b = self._table_tensors(n_or_tables, x.device)
        scales = None if states else self._readout_scales(n_or_tables, x)     # before any op: no graph break
        buckets = None if self.lag_bias is None else self._buckets(n_or_tables, x.device)      # so too
        u, g, (q_s, e, c), q = self._project(x, states)
        if states:
            g = g * has_b
            a = 1 - g
        else:                                               # s (1 - g has_b)
            a = torch.addcmul(*scales, g)
        a, b = a.unsqueeze(-1), g.unsqueeze(-1)
        biases = (None, None) if buckets is None else tuple(
            self.lag_bias[side][:, k].transpose(0, 1) for side, k in enumerate(buckets))     # [T, H, w]
        weights = _slot_weights(q_s, e, ai, valid_a, biases[0]), _slot_weights(q_s, c, bi, valid_b, biases[1])
        a, b = (x if w is None else x * w for x, w in zip((a, b), weights))
        return u, a, b, q, (q_s, e, c)

    def forward(self, x: Tensor, cache: GLRCache | None = None) -> Tensor:
        """``x[batch, T, d_model] -> y[batch, T, d_model]``, all positions at once (chunked glr_scan).

        With a fresh ``cache`` (``init_cache(max_length)``, T <= max_length), the cache is left holding
        the live set after these T tokens, so that ``step`` continues the sequence."""
        self._check_x(x, "batch, T, ")
        T, tables = x.shape[1], None
        if cache is not None:
            _check_cache(cache, "forward")
            if cache.t != 0:
                raise GLRError(f"forward(x, cache) prefills a fresh cache; this one is at step {cache.t}")
            cache.check(self.pattern, x.shape[0], T, self._layout(), x.device)
            tables = cache.prompt_tables(T)
        if self.readout and cache is None:       # no per-token d_key x d_head states (glr_readout)
            replayed = layer_graphs.replay(self, x)
            return self.forward_eagerly(x) if replayed is None else replayed
        u, a, b, q, feats = self._coefficients(x, tables)
        h = self._mix(glr_scan, u, a, b, tables=tables)
        if cache is not None:
            cache.prefill(u, _keys(*feats), h)
        return self._output(h, q, x)

    def forward_eagerly(self, x: Tensor) -> Tensor:
        """A readout layer's ``forward(x)`` op by op (without the CUDA graphs of ``layer_graphs``)."""
        (k, v), a, b, q, _ = self._coefficients(x, None, states=False)
        return self._out(self._mix(glr_readout, q, k, v, a, b, transient=True), x)   # o goes into out

    def _tables_of(self, n_or_tables: int | IndexTables) -> IndexTables:
        """The given tables, or ``self.tables(n)`` for a length n."""
        return self.tables(n_or_tables) if isinstance(n_or_tables, int) else n_or_tables

    @torch.compiler.disable
    def _table_tensors(self, n_or_tables: int | IndexTables, device) -> tuple[Tensor, ...]:
        """``_device_tables`` of the given tables, or of ``self.tables(n)`` for a length n, built once per device;
        outside ``torch.compile``'s graphs, as ``_mix``."""
        tables = self._tables_of(n_or_tables)
        return tables.memo(("mixer", str(device)), lambda: _device_tables(tables, device))

    @torch.compiler.disable
    def _buckets(self, n_or_tables: int | IndexTables, device) -> tuple[Tensor, Tensor]:
        """``_table_buckets`` of the given tables (or ``self.tables(n)``), built once per device."""
        tables = self._tables_of(n_or_tables)
        return tables.memo(("mixer_lags", str(device)), lambda: _table_buckets(tables, device))

    @torch.compiler.disable
    def _readout_scales(self, n_or_tables: int | IndexTables, x: Tensor) -> tuple[Tensor, Tensor]:
        """``(s, -s has_b [T, 1])`` in x's compute dtype and on its device, ``s = d_key^-1/2`` (0-d): the readout's
        ``a = s (1 - g has_b)`` is ``addcmul(s, -s has_b, g)``; built once per tables, device and dtype, outside
        ``torch.compile``'s graphs as ``_table_tensors``."""
        tables = self._tables_of(n_or_tables)
        has_b = self._table_tensors(tables, x.device)[4]
        scale, dtype = self.d_key ** -0.5, _compute_dtype(x)

        def build():
            return torch.tensor(scale, dtype=dtype, device=x.device), has_b.to(dtype) * -scale
        return tables.memo(("mixer_readout", str(x.device), dtype, scale), build)

    @torch.compiler.disable
    def _mix(self, mix, *inputs: Tensor, tables: IndexTables | None = None, **options) -> Tensor:
        """``mix(*inputs, tables, **options)``, ``glr_readout(q, k, v, a, b)`` or ``glr_scan(u, a, b)``, on the given
        tables or else those of the inputs' length; under ``torch.compile`` it runs as it is, between the graphs
        before and after it."""
        tables = self.tables(inputs[0].shape[1]) if tables is None else tables
        return mix(*inputs, tables, chunk=self.chunk, **options)

    # -- decoding ----------------------------------------------------------------------------------
    def init_cache(self, max_length: int) -> GLRCache:
        """An empty decode cache for sequences of up to ``max_length`` tokens."""
        return GLRCache(self.pattern, max_length, self._layout())

    def _layout(self) -> dict:
        """What the states a cache holds depend on, besides the pattern and the batch."""
        return {"n_heads": self.n_heads, "d_head": self.d_head, "d_key": self.d_key, "readout": self.readout,
                "scores": self.score_mode}

    def step(self, x_t: Tensor, cache: GLRCache) -> Tensor:
        """Decode one token: ``x_t[batch, d_model] -> y_t[batch, d_model]``, equal to ``forward`` at
        position ``cache.t``; updates the cache (keeps only the live set)."""
        self._check_x(x_t, "batch, ")
        _check_cache(cache, "step")
        cache.check(self.pattern, x_t.shape[0], 1, self._layout(), x_t.device)
        t = cache.t
        u, g, (q_s, e, c), q = self._project(x_t[:, None])
        u, g, q_s, e, c, q = (None if y is None else y[:, 0] for y in (u, g, q_s, e, c, q))
        k = _keys(q_s, e, c)
        sa, sb = cache.sources(t)
        if not sb:
            g = torch.zeros_like(g)

        def mix(pairs, side, sources):
            vals, keys = (torch.stack(z, 1) for z in zip(*pairs))          # [B, S, H, .]
            if q_s is not None:
                z = torch.einsum("bhd,bshd->bhs", q_s, keys)
            else:
                z = keys[..., side].transpose(1, 2)
            if self.lag_bias is not None:
                z = z + self.lag_bias[side][:, torch.as_tensor(lag_buckets([t - s for s in sources]), device=z.device)]
            return torch.einsum("bhs,bshd->bhd", torch.softmax(z, -1), vals)

        h = ((1 - g)[..., None] * mix([(u, k) if s == t else cache.inputs[s] for s in sa], 0, sa) if sa
             else torch.zeros_like(u))          # an empty A(t) (a user pattern's) adds nothing
        if sb:
            h = h + g[..., None] * mix([cache.states[s] for s in sb], 1, sb)
        cache.batch = x_t.shape[0]
        cache.keep(t, u, k, h)
        return self._output(h[:, None], None if q is None else q[:, None], x_t)[:, 0]


def _check_cache(cache, verb: str) -> None:
    if not isinstance(cache, GLRCache):
        raise GLRError(f"{verb} needs the cache of init_cache(max_length), got {type(cache).__name__}")


def _keys(q_s, e: Tensor, c: Tensor) -> Tensor:
    """What the decode cache keeps with each position to score it later: its key ``[..., H, d_key]``
    (query-key mode), or its source scores stacked ``[..., H, 2]`` (e for A, c for B)."""
    return e if q_s is not None else torch.stack((e, c), -1)
