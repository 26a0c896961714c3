"""pytest plugin for ``gpu_sanitize.sh``: no CUDA graphs (a capture cannot allocate without PyTorch's caching
allocator, which the sanitizer run switches off), so that every kernel runs eagerly where memcheck sees it."""


def pytest_configure(config):
    from glrtheory.kernels.scan import chunk, readout_triton
    chunk.CUDA_GRAPHS = False
    readout_triton._setting()["graphs"] = 0
