"""``GLRMixer``: a token-mixing layer ``H = (I - B)^{-1} A U`` built from a pattern spec.

Per head, with ``x_t`` the layer input, data-dependent coefficients normalized so that every state is a
convex combination of the inputs and states it reads (so ``|h_t| <= max_s |u_s|``; the recurrence
cannot blow up, ``sum_s |b[t, s]| = gamma_t < 1``):

    gamma_t = sigmoid(w_g . x_t)                       (0 when B(t) is empty)
    a[t, s] = (1 - gamma_t) softmax_{s in A(t)}(w_a . x_s)
    b[t, s] = gamma_t       softmax_{s in B(t)}(w_b . x_s)
    u_t     = v_t                         (vector state), or  k_t v_t^T  (readout: matrix state)
    o_t     = h_t                         (vector state), or  q_t^T H_t / sqrt(d_key)  (readout)

``forward(x)`` runs ``glr_scan`` on the whole sequence ``x[batch, T, d_model]`` (training).
``step(x_t, cache)`` decodes one token and gives the same output; ``init_cache(max_length)``
makes the cache, which holds exactly the live set of DESIGN.md section 2 (``u_s`` with its score while
a later A(t') reads it, ``h_s`` with its score while a later B(t') reads it).
"""
from __future__ import annotations

import torch
from torch import nn

from glrtheory.errors import GLRError
from glrtheory.patterns import Pattern

from .torch_scan import glr_scan


def _slot_softmax(scores: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """``softmax`` of ``scores[..., s]`` over the valid slots of each table row (0 in padded slots)."""
    valid = idx >= 0
    z = scores[..., idx.clamp(min=0)].masked_fill(~valid, torch.finfo(scores.dtype).min)
    return torch.softmax(z, dim=-1) * valid


class GLRCache:
    """Decode cache: the live inputs ``u_s`` and states ``h_s`` (with their scores), keyed by position.

    ``size`` is the number of states held: after step t it equals the live set of DESIGN.md section 2
    at length ``max_length`` (``glrtheory.analysis.live_profile(p, max_length)[t]``).
    """

    def __init__(self, pattern: Pattern, max_length: int):
        self.max_length = max_length
        self.a_idx, self.b_idx = pattern.tables(max_length)
        self.last_a = pattern.support_a(max_length).last_use()
        self.last_b = pattern.support_b(max_length).last_use()
        self.t = 0
        self.inputs: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        self.states: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    @property
    def size(self) -> int:
        return len(self.inputs) + len(self.states)

    def _keep(self, t: int, u, e, h, c) -> None:
        """Store step t's input and state if a later position reads them; drop what step t read last."""
        if self.last_a[t] > t:
            self.inputs[t] = (u, e)
        if self.last_b[t] > t:
            self.states[t] = (h, c)
        for s in self.a_idx[t][self.a_idx[t] >= 0]:
            if self.last_a[s] == t:
                self.inputs.pop(int(s), None)
        for s in self.b_idx[t][self.b_idx[t] >= 0]:
            if self.last_b[s] == t:
                self.states.pop(int(s), None)
        self.t = t + 1


class GLRMixer(nn.Module):
    """Token mixer from a pattern spec: ``n_heads`` heads of ``H = (I - B)^{-1} A U`` (module docstring).

    ``d_head`` (default ``d_model // n_heads``) is the value size per head; ``readout=True`` adds
    query/key projections of size ``d_key`` (default d_head) and a matrix state ``k v^T`` read by q.
    ``chunk`` is the chunk length of ``glr_scan`` (None: its default for the device).
    """

    def __init__(self, spec: str | Pattern, d_model: int, n_heads: int, d_head: int | None = None, *,
                 readout: bool = False, d_key: int | None = None, chunk: int | None = None,
                 bias: bool = False, device=None, dtype=None):
        super().__init__()
        self.pattern = spec if isinstance(spec, Pattern) else Pattern.from_spec(spec)
        for v, name in ((d_model, "d_model"), (n_heads, "n_heads")):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise GLRError(f"{name} must be a positive integer, got {v!r}")
        if d_head is None and d_model % n_heads:
            raise GLRError(f"d_model={d_model} is not divisible by n_heads={n_heads}; pass d_head")
        self.d_model, self.n_heads = d_model, n_heads
        self.d_head = d_head or d_model // n_heads
        self.d_key = (d_key or self.d_head) if readout else 0
        self.readout, self.chunk = readout, chunk
        kw = dict(bias=bias, device=device, dtype=dtype)
        H = n_heads
        self.values = nn.Linear(d_model, H * self.d_head, **kw)
        self.keys = nn.Linear(d_model, H * self.d_key, **kw) if readout else None
        self.queries = nn.Linear(d_model, H * self.d_key, **kw) if readout else None
        self.scores = nn.Linear(d_model, 3 * H, bias=True, device=device, dtype=dtype)  # gate, a, b
        self.out = nn.Linear(H * self.d_head, d_model, **kw)
        self._tables: dict[int, tuple] = {}

    def tables(self, n: int):
        """The pattern's index tables at length n (kept, so glr_scan reuses its plan)."""
        if n not in self._tables:
            self._tables[n] = self.pattern.tables(n)
        return self._tables[n]

    # -- per-token projections: x[..., d_model] -> heads first ----------------------------------
    def _project(self, x: torch.Tensor):
        """Inputs u, scores (gate, a, b) and queries for x[B, T, d_model]; heads first: [B, H, T, ...]."""
        B, T, _ = x.shape
        H = self.n_heads
        heads = lambda y, k: y.view(B, T, H, k).transpose(1, 2)  # noqa: E731
        v = heads(self.values(x), self.d_head)
        g, e, c = self.scores(x).view(B, T, 3, H).permute(2, 0, 3, 1)
        if self.readout:
            k = heads(self.keys(x), self.d_key)
            q = heads(self.queries(x), self.d_key) * self.d_key ** -0.5
            u = (k.unsqueeze(-1) * v.unsqueeze(-2)).flatten(-2)
        else:
            q, u = None, v
        return u, torch.sigmoid(g), e, c, q

    def _output(self, h: torch.Tensor, q) -> torch.Tensor:
        """o = h (or q^T H); [B, H, T, .] -> out projection -> [B, T, d_model]."""
        if self.readout:
            h = torch.matmul(q.unsqueeze(-2), h.unflatten(-1, (self.d_key, self.d_head))).squeeze(-2)
        B, H, T, dv = h.shape
        return self.out(h.transpose(1, 2).reshape(B, T, H * dv))

    def coefficients(self, x: torch.Tensor):
        """``(u, a, b, q)`` for ``x[batch, T, d_model]``: inputs ``u[batch, H, T, D]``, table-aligned
        coefficients ``a``, ``b`` (non-negative, each row of ``[a | b]`` sums to 1) and queries (or None)."""
        if x.ndim != 3 or x.shape[-1] != self.d_model:
            raise GLRError(f"x must have shape [batch, T, {self.d_model}], got {tuple(x.shape)}")
        a_idx, b_idx = self.tables(x.shape[1])
        u, g, e, c, q = self._project(x)
        ai, bi = (torch.as_tensor(i, device=x.device, dtype=torch.long) for i in (a_idx, b_idx))
        g = g * torch.as_tensor((b_idx >= 0).any(1), device=x.device, dtype=x.dtype)
        a = (1 - g).unsqueeze(-1) * _slot_softmax(e, ai)
        b = g.unsqueeze(-1) * _slot_softmax(c, bi)
        return u, a, b, q

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x[batch, T, d_model] -> y[batch, T, d_model]``, all positions at once (chunked glr_scan)."""
        u, a, b, q = self.coefficients(x)
        return self._output(glr_scan(u, a, b, self.tables(x.shape[1]), chunk=self.chunk), q)

    # -- decoding ----------------------------------------------------------------------------------
    def init_cache(self, max_length: int) -> GLRCache:
        """An empty decode cache for sequences of up to ``max_length`` tokens."""
        return GLRCache(self.pattern, max_length)

    def step(self, x_t: torch.Tensor, cache: GLRCache) -> torch.Tensor:
        """Decode one token: ``x_t[batch, d_model] -> y_t[batch, d_model]``, equal to ``forward`` at
        position ``cache.t``; updates the cache (keeps only the live set)."""
        if x_t.ndim != 2 or x_t.shape[-1] != self.d_model:
            raise GLRError(f"x_t must have shape [batch, {self.d_model}], got {tuple(x_t.shape)}")
        t = cache.t
        if t >= cache.max_length:
            raise GLRError(f"the cache was made for {cache.max_length} tokens; step {t} is past it")
        u, g, e, c, q = (y[:, :, 0] if y is not None else None for y in self._project(x_t[:, None]))
        sa = [int(s) for s in cache.a_idx[t] if s >= 0]
        sb = [int(s) for s in cache.b_idx[t] if s >= 0]
        if not sb:
            g = torch.zeros_like(g)
        us, es = zip(*[(u, e) if s == t else cache.inputs[s] for s in sa])
        h = (1 - g)[..., None] * torch.einsum("bhs,bhsd->bhd", torch.softmax(torch.stack(es, -1), -1),
                                                torch.stack(us, -2))
        if sb:
            hs, cs = zip(*[cache.states[s] for s in sb])
            h = h + g[..., None] * torch.einsum("bhs,bhsd->bhd", torch.softmax(torch.stack(cs, -1), -1),
                                                  torch.stack(hs, -2))
        cache._keep(t, u, e, h, c)
        return self._output(h[:, :, None], None if q is None else q[:, :, None])[:, 0]
