"""The test suite's own helpers: the ``rng`` fixture's seed, which ``GLR_TEST_SEED`` replays."""
import numpy as np
import pytest

from tests.helpers import rng_seed


def test_the_rng_fixture_replays_a_seed(monkeypatch, request):
    monkeypatch.setenv("GLR_TEST_SEED", "1211486483272781269")
    assert rng_seed() == 1211486483272781269
    got = request.getfixturevalue("rng").integers(2**62, size=4)
    assert (got == np.random.default_rng(1211486483272781269).integers(2**62, size=4)).all()


@pytest.mark.parametrize("unset", [None, ""])
def test_fresh_seeds_without_the_variable(monkeypatch, unset):
    if unset is None:
        monkeypatch.delenv("GLR_TEST_SEED", raising=False)
    else:
        monkeypatch.setenv("GLR_TEST_SEED", unset)
    seeds = {rng_seed() for _ in range(8)}
    assert len(seeds) == 8 and all(0 <= s < 2**64 for s in seeds)


@pytest.mark.parametrize("bad", ["-1", "12a", "1.5", " 3", "²"])
def test_a_bad_seed_is_named(monkeypatch, bad):
    monkeypatch.setenv("GLR_TEST_SEED", bad)
    with pytest.raises(ValueError, match="GLR_TEST_SEED must be a non-negative integer"):
        rng_seed()
