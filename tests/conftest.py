import secrets

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
