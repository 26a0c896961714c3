"""Decoding from a trained model with its cache, and what decoding costs at a given context length.

``generate`` feeds the prompt through ``model.step`` (the decode cache of every ``GLRMixer``, which
holds exactly the live set of the pattern) and then samples one byte per step: ``argmax`` at
temperature 0, else from ``softmax(logits / temperature)`` with a seeded generator.
``decode_profile`` decodes L tokens from an empty cache and reports tokens per second, the bytes of
every tensor the cache holds, and the most states/inputs any mixer cache held, next to
``glrtheory.analysis.cache_peak(pattern, L)`` (the theory says they are equal).
"""
from __future__ import annotations

import time

import torch

from glrtheory.analysis import cache_peak
from glrtheory.checks import check_integer
from glrtheory.errors import GLRError
from glrtheory.kernels.torch import GLRCache

from .evaluate import autocast


def _walk(obj, seen: set, found: list):
    """Collect the distinct tensors and ``GLRCache`` objects reachable from obj."""
    if id(obj) in seen:
        return
    seen.add(id(obj))
    if isinstance(obj, torch.Tensor):
        found.append(obj)
    elif isinstance(obj, dict):
        for v in obj.values():
            _walk(v, seen, found)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            _walk(v, seen, found)
    elif hasattr(obj, "__dict__") and not isinstance(obj, type):
        if isinstance(obj, GLRCache):
            found.append(obj)
        for v in vars(obj).values():
            _walk(v, seen, found)


def _found(cache) -> list:
    found: list = []
    _walk(cache, set(), found)
    return found


def cache_contents(cache) -> tuple[int, list[int]]:
    """``(bytes of all tensors held, [states/inputs held by each GLRCache])`` of a model's cache."""
    found = _found(cache)
    nbytes = sum(x.numel() * x.element_size() for x in found if isinstance(x, torch.Tensor))
    return nbytes, [c.size for c in found if isinstance(c, GLRCache)]


def _next(logits: torch.Tensor, temperature: float, gen: torch.Generator | None) -> torch.Tensor:
    if temperature == 0:
        return logits.argmax(-1)
    probs = torch.softmax(logits.float() / temperature, -1)
    return torch.multinomial(probs.cpu(), 1, generator=gen)[:, 0].to(logits.device)


def check_temperature(temperature, name: str = "temperature") -> None:
    """A sampling temperature is a number >= 0 (0: greedy); NaN or < 0 raises a GLRError naming it (NaN sampled
    from NaN probabilities: a RuntimeError in multinomial)."""
    if not temperature >= 0:
        raise GLRError(f"{name} must be a number >= 0, got {temperature}")


@torch.no_grad()
def generate(model, prompt: torch.Tensor, n_new: int, *, temperature: float = 0.0, seed: int = 0,
             max_length: int | None = None) -> torch.Tensor:
    """``prompt[batch, P] (long) -> tokens[batch, P + n_new]``, decoding with the model's cache. Bad input (a
    prompt not of that shape and an integer dtype, n_new not an integer >= 0, temperature NaN or < 0) raises a
    GLRError."""
    if prompt.ndim != 2 or prompt.shape[1] < 1 or prompt.dtype.is_floating_point or prompt.dtype.is_complex:
        raise GLRError(f"prompt must be integer tokens of shape [batch, P] with P >= 1, got {prompt.dtype} of shape "
                       f"{tuple(prompt.shape)}")
    check_integer(n_new, "n_new", 0)
    check_temperature(temperature)
    model.eval()
    device = prompt.device
    cache = model.init_cache(prompt.shape[0], max_length or prompt.shape[1] + n_new)
    gen = torch.Generator().manual_seed(seed)
    out = [prompt[:, i] for i in range(prompt.shape[1])]
    with autocast(device):
        for x in out[:-1]:
            model.step(x, cache)
        for _ in range(n_new):
            out.append(_next(model.step(out[-1], cache), temperature, gen))
    return torch.stack(out, 1)


@torch.no_grad()
def decode_profile(model, pattern: str, length: int, device: torch.device, *, last: int = 256,
                   seed: int = 0) -> dict:
    """Decode ``length`` sampled tokens from an empty cache (batch 1) and measure it.

    Returns ``tokens_per_s`` (over all ``length`` steps), ``tokens_per_s_last`` (over the last ``last``
    steps, at a context near ``length``), ``held_peak`` (the most states/inputs one mixer cache held,
    exact: read after every step), ``cache_peak`` from the analysis at ``length``, and
    ``cache_bytes_peak``: the bytes of every tensor in the cache when the caches held the most, computed
    as ``empty + per_entry * held_total_peak`` with the bytes per held entry measured by walking the cache
    at steps 2^k (every entry of a layer has one size, so this is exact; tested against a walk per step).
    """
    from glrtheory.patterns import Pattern

    model.eval()
    cache = model.init_cache(1, length)
    mixers = [c for c in _found(cache) if isinstance(c, GLRCache)]
    empty = cache_contents(cache)[0]
    gen = torch.Generator().manual_seed(seed)
    x = torch.zeros(1, dtype=torch.long, device=device)
    held_peak = total_peak = 0
    walked = (0, 0)  # (bytes in entries, entries) at the walk with the most entries
    first_last = max(0, length - last)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    sync()
    start = mark = time.perf_counter()
    with autocast(device):
        for t in range(length):
            if t == first_last:
                sync()
                mark = time.perf_counter()
            x = _next(model.step(x, cache), 1.0, gen)
            sizes = [c.size for c in mixers]
            held_peak, total_peak = max(held_peak, max(sizes, default=0)), max(total_peak, sum(sizes))
            if t & (t + 1) == 0 and sum(sizes) > walked[1]:  # t + 1 a power of two
                walked = (cache_contents(cache)[0] - empty, sum(sizes))
    sync()
    end = time.perf_counter()
    per_entry = walked[0] / walked[1] if walked[1] else 0.0
    return {"pattern": pattern, "context": length, "tokens_per_s": length / (end - start),
            "tokens_per_s_last": (length - first_last) / (end - mark), "held_peak": held_peak,
            "cache_peak": cache_peak(Pattern.from_spec(pattern), length),
            "cache_bytes_peak": int(empty + per_entry * total_peak), "bytes_per_entry": per_entry}
