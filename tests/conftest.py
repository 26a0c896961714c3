import os
import secrets

# BLAS thread pools fight over the 2 cores of the CI machine: a 3x3 triangular solve took 24 ms under
# load with two threads. Set before numpy (imported by torch below) starts its pool.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

try:                                    # the Triton kernels run under the CPU interpreter where there is no GPU;
    import torch                        # the variable must be set before anything imports triton (torch may
    _cuda = torch.cuda.is_available()   # import it lazily), or the kernels are compiled, not interpreted
except ImportError:
    _cuda = False
if not _cuda:
    os.environ.setdefault("TRITON_INTERPRET", "1")

import numpy as np
import pytest
from hypothesis import settings

settings.register_profile("ci", max_examples=25, deadline=None, print_blob=True)
settings.load_profile("ci")


@pytest.fixture
def rng():
    """A freshly seeded generator; the seed is printed so a failure can be replayed."""
    seed = secrets.randbits(64)
    print(f"rng seed: {seed}")
    return np.random.default_rng(seed)
