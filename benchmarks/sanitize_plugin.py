"""pytest plugin for ``gpu_sanitize.sh``: no CUDA graphs (a capture cannot allocate without PyTorch's caching
allocator, which the sanitizer run switches off), so that every kernel runs eagerly where memcheck sees it.
``SANITIZE_FROM=N`` deselects the first N tests collected (those an earlier run, cut by its time limit, cleared)."""
import os


def pytest_configure(config):
    from glrtheory.kernels.scan import chunk, readout_triton
    chunk.CUDA_GRAPHS = False
    readout_triton._setting()["graphs"] = 0


def pytest_collection_modifyitems(config, items):
    start = int(os.environ.get("SANITIZE_FROM", "0"))
    if start:
        config.hook.pytest_deselected(items=items[:start])
        del items[:start]
