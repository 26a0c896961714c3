"""Shared by the GPU benchmark scripts: the timer, peak memory, errors as rows record them, the machine
header with the GPU, and random scan inputs. Every function also runs on the CPU (``device``)."""
from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import machine  # noqa: E402

from glrtheory import Pattern  # noqa: E402


#: How ``bench`` times, for the JSON.
TIMING = ("after one warm-up call: on CUDA triton.testing.do_bench median (CUDA events, warm-up 25 ms), or where a "
          "call takes longer than rep / 4 ms (rep 50 to 200 ms) the median of 3 synchronized wall-clock calls; on "
          "the CPU (the scripts' own smoke runs) one wall-clock call")


def is_cuda(device) -> bool:
    return torch.device(device).type == "cuda"


def sync(device) -> None:
    """Wait for the device (CUDA) to finish what it was given; nothing on the CPU."""
    if is_cuda(device):
        torch.cuda.synchronize(device)


def _call_ms(fn, device) -> float:
    """Wall-clock ms of one call, the device synchronized before and after."""
    sync(device)
    t0 = time.perf_counter()
    fn()
    sync(device)
    return 1e3 * (time.perf_counter() - t0)


def bench(fn, rep=200, device="cuda") -> float:
    """ms of ``fn()`` after one warm-up call. On CUDA the median of ``triton.testing.do_bench`` (CUDA events, warm-up
    25 ms, ``rep`` ms), except when a call after the warm-up takes longer than ``rep / 4`` ms (do_bench would make
    at least 7 calls): then the median of 3 synchronized wall-clock calls after the warm-up. On the CPU, where the
    GPU scripts run only as tests of themselves (Triton under its interpreter), one call after the warm-up."""
    first = _call_ms(fn, device)                                  # warm-up (it may compile)
    if not is_cuda(device):
        return _call_ms(fn, device)
    later = [_call_ms(fn, device)] if first > rep / 4 else []
    if (later or [first])[0] <= rep / 4:
        from triton.testing import do_bench
        return float(do_bench(fn, warmup=25, rep=rep, return_mode="median"))
    later += [_call_ms(fn, device) for _ in range(3 - len(later))]
    return float(np.median(later))


def peak_bytes(fn, device) -> dict:
    """``torch.cuda.max_memory_allocated`` over one call of ``fn`` (after ``reset_peak_memory_stats``), and the
    same less what was allocated before the call; ``{}`` on the CPU (not measured)."""
    if not is_cuda(device):
        return {}
    sync(device)
    before = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    fn()
    sync(device)
    peak = torch.cuda.max_memory_allocated(device)
    return dict(peak_bytes=peak, peak_bytes_over_start=peak - before)


def kernel_ms(fn, steps=5) -> tuple[dict, float]:
    """CUDA milliseconds per call of each kernel ``fn`` launches, longest first, and the launches per call
    (``torch.profiler``, ``steps`` calls after one warm-up)."""
    from torch.profiler import ProfilerActivity, profile
    fn()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(steps):
            fn()
        torch.cuda.synchronize()
    events = [e for e in prof.key_averages() if e.self_device_time_total > 0]
    ms = {e.key: e.self_device_time_total / 1e3 / steps for e in events}
    return dict(sorted(ms.items(), key=lambda kv: -kv[1])), sum(e.count for e in events) / steps


def device_busy(fn, device, steps=5) -> dict:
    """What the device does for one ``fn()``: the summed kernel time ``device_ms``, the launches and the 15
    longest kernels (``kernel_ms``); compared with the wall time, it tells a host-bound call (the device waits
    on Python and launches) from a device-bound one. Empty on a CPU."""
    if not is_cuda(device):
        return {}
    ms, launches = kernel_ms(fn, steps)
    return dict(device_ms=sum(ms.values()), launches=launches,
                top_kernels={k[:80]: v for k, v in list(ms.items())[:15]})


#: How long the device is kept busy while ``host_ms`` times the host (a call that waits on the device shows as
#: about this long or more).
HOST_BUSY_MS = 50.0


def _sleep_cycles_per_ms() -> float:
    """Clock cycles of ``torch.cuda._sleep`` per millisecond, measured with CUDA events."""
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    cycles = 10**7
    start.record()
    torch.cuda._sleep(cycles)
    end.record()
    end.synchronize()
    return cycles / start.elapsed_time(end)


def host_ms(fn, device, calls=5, reps=5) -> float | None:
    """Host milliseconds per ``fn()`` while the device is still busy with a sleep kernel queued first (at least
    ``HOST_BUSY_MS``, and four times the wall time of the ``calls``), so that no launch waits for the device: the
    host's own cost of a call. Per rep, ``calls`` calls in a row (a warm host, as in a training loop) averaged; the
    median of ``reps``. A call that synchronizes with the device shows as at least the busy time over ``calls``.
    None on the CPU. It reads above the wall time of host-bound calls (the eager ssm layer: 2.871 ms a step against
    2.470 timed, gpu_calls/call72): launches queued behind a busy device seem to cost the host more; compare it
    between rows, not with their wall times."""
    if not is_cuda(device):
        return None
    fn()
    busy = max(HOST_BUSY_MS, 4 * calls * _call_ms(fn, device))
    cycles = int(busy * _sleep_cycles_per_ms())
    times = []
    for _ in range(reps):
        torch.cuda._sleep(cycles)
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        times.append(1e3 * (time.perf_counter() - t0) / calls)
        sync(device)
    return float(np.median(times))


def python_functions(fn, device, calls: int = 1, top: int = 30) -> list[dict]:
    """The ``top`` Python functions by their own time over ``calls`` calls of ``fn()`` (cProfile, the device
    synchronized before the profile ends): each one's calls, own and cumulative ms per call, the slowest first."""
    profile = cProfile.Profile()
    profile.enable()
    for _ in range(calls):
        fn()
    sync(device)
    profile.disable()
    stats = pstats.Stats(profile).stats                 # (file, line, name) -> (calls, ..., own s, cumulative s, ...)
    rows = sorted(stats.items(), key=lambda kv: -kv[1][2])[:top]
    return [dict(function=f"{Path(f).name}:{line} {name}", calls=n / calls, own_ms=1e3 * own / calls,
                 cumulative_ms=1e3 * cum / calls) for (f, line, name), (_, n, own, cum, _) in rows]


def free(device) -> None:
    """Give cached CUDA blocks back between rows (so one row's peak does not hold the next one's memory)."""
    if is_cuda(device):
        torch.cuda.empty_cache()


def parser(doc: str, name: str, specs) -> argparse.ArgumentParser:
    """Arguments every row-by-row GPU script takes: ``--out`` (default ``results/gpu_<name>.json``), ``--specs``
    and ``--device`` (CUDA where there is one)."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / f"gpu_{name}.json"))
    ap.add_argument("--specs", default=",".join(specs))
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    return ap


def saver(path, script: str):
    """``save(result)``: write ``result`` with the machine header, the command and the seconds since this call
    as JSON at path (called after every row, so a run cut short keeps what it measured)."""
    t0 = time.perf_counter()
    head = dict(machine=gpu_header(), command=f"python benchmarks/{script} " + " ".join(sys.argv[1:]))

    def save(result: dict) -> None:
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        part = target.with_name(target.name + ".part")          # then renamed: a cut run leaves whole JSON
        part.write_text(json.dumps(dict(head, **result, seconds=time.perf_counter() - t0), indent=1, default=float))
        part.replace(target)
    return save


def error(e: BaseException) -> str:
    """An exception as a row records it: its type, the start of its message and, where that is cut, the message's
    last line too (a Triton ``CompilationError`` quotes the source first and says what is wrong last)."""
    text = str(e)
    last = text.strip().splitlines()[-1] if text.strip() else ""
    cut = f"{text[:300]} ... {last[:300]}" if len(text) > 300 and last not in text[:300] else text[:300]
    return f"{type(e).__name__}: {cut}"


def dtype_name(dtype) -> str:
    return str(dtype).replace("torch.", "")


def gpu_header() -> dict:
    """``machine()`` plus, where CUDA is there, the GPU, its multiprocessors, Triton and CUDA versions."""
    header = machine()
    if torch.cuda.is_available():
        import triton
        prop = torch.cuda.get_device_properties(0)
        header.update(gpu=prop.name, multiprocessors=prop.multi_processor_count, triton=triton.__version__,
                      cuda=torch.version.cuda)
    return header


def inputs(spec, B, T, H, D, dtype=torch.bfloat16, grad=False, device="cuda"):
    """The pattern's tables at T and random ``u [B, T, H, D]``, ``a`` in [0.5, 1.5), ``b`` with rows of
    absolute sum < 1 (a stable recurrence)."""
    tables = Pattern.from_spec(spec).tables(T)
    wa, wb = tables[0].shape[1], tables[1].shape[1]
    u = torch.randn(B, T, H, D, device=device, dtype=dtype)
    a = (torch.rand(B, T, H, wa, device=device) + 0.5).to(dtype)
    b = ((torch.rand(B, T, H, wb, device=device) * 2 - 1) / max(1, wb)).to(dtype)
    if grad:
        u, a, b = (x.requires_grad_() for x in (u, a, b))
    return tables, u, a, b
