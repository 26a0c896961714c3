"""Bad input to the Python API as an audit met it, each once a raw traceback (AttributeError, ValueError,
NotImplementedError, a Triton error) and now a GLRError naming the problem; the cases that must keep working
beside them are checked too."""
import re

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from glrtheory import GLRError, Pattern  # noqa: E402
from glrtheory.errors import WorkLimitError  # noqa: E402
from glrtheory.kernels.cpu import scan  # noqa: E402
from glrtheory.kernels.decode import MAX_STATE, DecodeCache  # noqa: E402
from glrtheory.kernels.torch import GLRCache, GLRMixer  # noqa: E402


def mixer():
    torch.manual_seed(0)
    return GLRMixer("ssm", 8, 2)


def test_the_mixer_names_a_wrong_cache_tables_or_empty_input():
    m = mixer()
    with pytest.raises(GLRError, match="forward needs the cache of init_cache\\(max_length\\), got str"):
        m(torch.randn(1, 4, 8), cache="abc")
    with pytest.raises(GLRError, match="step needs the cache of init_cache\\(max_length\\), got dict"):
        m.step(torch.randn(1, 8), {})
    with pytest.raises(GLRError, match="tables must be the IndexTables of x's T = 12 .* got tables at n = 8"):
        m.coefficients(torch.randn(1, 12, 8), Pattern.from_spec("ssm").tables(8))
    with pytest.raises(GLRError, match="tables must be the IndexTables of x's T = 8 .* got tuple"):
        m.coefficients(torch.randn(1, 8, 8), tuple(Pattern.from_spec("ssm").tables(8)))
    u, a, b, q = m.coefficients(torch.randn(1, 8, 8), Pattern.from_spec("ssm").tables(8))      # the right ones
    assert u.shape[:2] == a.shape[:2] == b.shape[:2] == (1, 8)
    with pytest.raises(GLRError, match=r"x must have shape \[batch, T, 8\] with a batch of at least 1, got \(0, 4, 8"):
        m(torch.randn(0, 4, 8))
    cache = m.init_cache(4)
    with pytest.raises(GLRError, match=r"x must have shape \[batch, 8\] with a batch of at least 1, got \(0, 8\)"):
        m.step(torch.randn(0, 8), cache)
    assert cache.batch is None and cache.t == 0


def test_a_cache_refuses_a_pattern_name_and_an_input_on_another_device():
    with pytest.raises(GLRError, match="a GLRCache needs a Pattern \\(Pattern.from_spec\\(spec\\)\\), got str"):
        GLRCache("ssm", 4)
    m = mixer()
    cache = m.init_cache(4)
    y = m.step(torch.randn(1, 8), cache)
    assert y.shape == (1, 8) and cache.t == 1
    m.to("meta")
    with pytest.raises(GLRError, match="the cache holds states on cpu, the input is on meta"):
        m.step(torch.randn(1, 8, device="meta"), cache)


def test_a_decode_cache_states_its_state_limit():
    with pytest.raises(GLRError, match=f"= {2**31 + 2} values is over the limit of {MAX_STATE}"):
        DecodeCache(Pattern.from_spec("ssm"), 4, d=2, batch=(2**30 + 1,))
    assert DecodeCache(Pattern.from_spec("ssm"), 4, d=1, batch=(2, 3)).held == 0        # a small one is made


def test_the_numba_scan_names_a_ragged_input_and_a_query_batch_that_does_not_fit():
    rng = np.random.default_rng(0)
    tables = Pattern.from_spec("ssm").tables(4)
    with pytest.raises(GLRError, match="u cannot be read as a numpy array"):
        scan([[1.0], [1.0, 2.0]], np.ones((2, 1)), np.ones((2, 1)), Pattern.from_spec("ssm").tables(2))
    u, a, b = rng.random((3, 4, 2)), rng.random((3, 4, 1)), rng.random((3, 4, 1)) / 2
    with pytest.raises(GLRError, match=r"readout q's batch \(2,\) does not broadcast with the states' \(3,\)"):
        scan(u, a, b, tables, q=rng.random((2, 4, 1)))
    with pytest.raises(GLRError, match=r"readout q's batch \(2, 3\) would widen the states' \(3,\) to \(2, 3\)"):
        scan(u, a, b, tables, q=rng.random((2, 3, 4, 1)))
    assert scan(u, a, b, tables, q=rng.random((1, 4, 1))).shape == (3, 4, 2)           # q broadcast over batch


@pytest.mark.parametrize("a_lags, b_lags, message", [(None, None, "A-lags must be a sequence of integers, got None"),
                                                     ("01", (), "A-lags must be a sequence of integers, got '01'"),
                                                     ((0,), 5, "B-lags must be a sequence of integers, got 5")])
def test_lags_must_be_sequences(a_lags, b_lags, message):
    with pytest.raises(GLRError, match=message):
        Pattern.from_lags(a_lags, b_lags)
    assert Pattern.from_lags(np.array([0]), [1, 2]).spec == "lags:1,2"


def test_the_triton_scan_refuses_meta_tensors_and_takes_a_numpy_chunk():
    pytest.importorskip("triton")
    from glrtheory.kernels.scan.triton import glr_scan_triton

    device = "cuda" if torch.cuda.is_available() else "cpu"
    tables = Pattern.from_spec("ssm").tables(4)
    meta = torch.randn(1, 4, 1, 1, device="meta")
    with pytest.raises(GLRError, match="the triton scan needs CUDA tensors \\(got meta\\)"):
        glr_scan_triton(meta, meta, meta, tables)
    u = torch.randn(1, 4, 1, 1, device=device)
    h = glr_scan_triton(u, torch.ones_like(u), torch.full_like(u, 0.5), tables, chunk=np.int64(16))
    want = [float(u[0, 0, 0, 0])]
    for t in range(1, 4):
        want.append(0.5 * want[-1] + float(u[0, t, 0, 0]))
    assert h[0, :, 0, 0].tolist() == pytest.approx(want, rel=1e-5)


def test_chunks_past_a_grid_axis_are_refused_at_the_boundary(monkeypatch):
    """The scan's and the readout's launches put the chunks on a CUDA grid's second axis (at most 65535): the
    scan refuses past it, naming the limit; the Triton readout declines (its torch ops run instead)."""
    pytest.importorskip("triton")
    from glrtheory.kernels.scan import readout_triton, triton
    from glrtheory.kernels.scan.readout_plan import aligned_layout

    device = "cuda" if torch.cuda.is_available() else "cpu"
    n = 65535 * 16 + 1
    u = torch.zeros(1, n, 1, 1, device=device)
    with pytest.raises(GLRError, match=f"a grid axis of at most 65535: n = {n} in chunks of 16 is 65536; take "
                                       f"chunk=128 \\(n <= {65535 * 128}\\)"):
        triton.glr_scan_triton(u, u, u, Pattern.from_spec("ssm").tables(n), chunk=16)
    monkeypatch.setattr(triton, "MAX_GRID_Y", 3)
    for n, refused in ((48, False), (49, True)):
        u = torch.ones(1, n, 1, 1, device=device)
        call = lambda: triton.glr_scan_triton(u, u, u / 2, Pattern.from_spec("ssm").tables(n), chunk=16)  # noqa: E731
        if refused:
            with pytest.raises(GLRError, match="in chunks of 16 is 4"):
                call()
        else:
            assert float(call()[0, -1, 0, 0]) == pytest.approx(2 - 2.0 ** (1 - n), rel=1e-6)
    u = torch.ones(1, 3 * 128 + 1, 1, 1, device=device)
    with pytest.raises(GLRError, match="in chunks of 128 is 4; take the chunk backend"):    # 128: nothing wider
        triton.glr_scan_triton(u, u, u, Pattern.from_spec("ssm").tables(3 * 128 + 1), chunk=128)
    monkeypatch.setattr(readout_triton, "MAX_GRID_Y", 2)
    q = torch.zeros(1, 31, 1, 4, device=device)
    for n, chunks in ((17, 2), (31, 3)):          # fenwick's chunks hold rows cC + 1 .. cC + C (row 0 its own)
        layout = aligned_layout(Pattern.from_spec("fenwick").tables(n), 16)
        why = readout_triton.refusal(q[:, :n], layout, 4)
        assert layout.n_chunks == chunks
        assert (why is not None and f"at most 2: {chunks} chunks of 16" in why) == (chunks > 2)


def test_flags_must_be_booleans_and_a_key_size_must_have_a_use():
    tables = Pattern.from_spec("ssm").tables(4)
    u, a, b = np.ones((4, 1)), np.ones((4, 1)), np.full((4, 1), 0.5)
    with pytest.raises(GLRError, match="count must be True or False, got 'yes'"):
        scan(u, a, b, tables, count="yes")
    assert scan(u, a, b, tables, count=np.bool_(True))[1] is not None
    from glrtheory.kernels.scan.readout import glr_readout

    q = torch.ones(1, 4, 1, 2)
    with pytest.raises(GLRError, match="transient must be True or False, got 'no'"):
        glr_readout(q, q, q, q[..., :1], q[..., :1] / 2, tables, transient="no")
    with pytest.raises(GLRError, match="d_key sizes the readout's queries and keys or the query-key scores'"):
        GLRMixer("ssm", 8, 2, d_key=3)
    assert GLRMixer("ssm", 8, 2, d_key=3, readout=True).d_key == 3
    assert GLRMixer("ssm", 8, 2, d_key=3, scores="query_key").d_key == 3


def test_a_readout_over_its_work_limit_is_refused_at_the_boundary(monkeypatch):
    """attention's direct readout: rows in blocks of 64 beside a block over the widest span T - 1, so
    ``B H T (64 + T - 1)(d_k + d_v)`` multiply-adds; exactly at the limit runs, one over it is refused."""
    from glrtheory.kernels.scan import readout_plan
    from glrtheory.kernels.scan.readout import glr_readout
    B, T, H, dk, dv = 2, 63, 3, 4, 5
    tables = Pattern.from_spec("attention").tables(T)
    q, k = torch.randn(2, B, T, H, dk, dtype=torch.float64)
    v = torch.randn(B, T, H, dv, dtype=torch.float64)
    a, b = torch.rand(B, T, H, tables.a_idx.shape[1], dtype=torch.float64), torch.zeros(B, T, H, 0, dtype=torch.float64)
    need = B * H * T * (64 + T - 1) * (dk + dv)
    monkeypatch.setitem(readout_plan.MAX_WORK, "cpu", need)
    assert torch.isfinite(glr_readout(q, k, v, a, b, tables)).all()
    monkeypatch.setitem(readout_plan.MAX_WORK, "cpu", need - 1)
    message = re.escape(f"the direct readout would take about {need:.3g} multiply-adds (T=63, batch x heads=6, "
                        f"d_k=4, d_v=5), over the limit MAX_WORK['cpu'] = {need - 1} on cpu")
    with pytest.raises(WorkLimitError, match=message):
        glr_readout(q, k, v, a, b, Pattern.from_spec("attention").tables(T))


def test_power2_readout_at_long_t_is_refused_on_the_cpu_at_once():
    """tiled mixing of power2 at T = 131072 (over 90 s on a 2-core CPU before the limit)."""
    from glrtheory.kernels.scan.readout import glr_readout
    T = 2**17
    tables = Pattern.from_spec("power2").tables(T)
    q = torch.randn(1, T, 1, 16)
    a, b = torch.rand(1, T, 1, tables.a_idx.shape[1]), torch.rand(1, T, 1, tables.b_idx.shape[1])
    with pytest.raises(WorkLimitError, match=r"tiled_mixing readout .* over the limit MAX_WORK\['cpu'\] = 2\^40 "):
        glr_readout(q, q, q, a, b, tables)


def test_numbers_in_text_are_ascii_decimals():
    """``parse_integer`` / ``parse_real``, the one grammar of numbers in specs and on the command line: a sign,
    ASCII digits, for reals a point and an exponent; spaces around it are allowed. Python's ``int`` takes ``1_0``,
    other scripts' digits and (base 0) ``0x10``, and ``float`` takes ``1_0.5``, ``nan`` and ``inf``: refused here."""
    from glrtheory.checks import parse_integer, parse_real

    for text, value in [("0", 0), ("-7", -7), ("+12", 12), (" 3 ", 3), ("007", 7), (str(2**70), 2**70)]:
        assert parse_integer(text) == value and type(parse_integer(text)) is int
    for text, value in [("0.5", 0.5), (".5", 0.5), ("5.", 5.0), ("-1e-3", -0.001), ("+2E+2", 200.0), (" 4 ", 4.0),
                        ("1e308", 1e308)]:
        assert parse_real(text) == value
    refused = ["", "+", "1.", "x", "1_0", "\u0663", "\uff11", "0x10", "1e3"]      # integers
    for text in refused:
        with pytest.raises(ValueError):
            parse_integer(text)
    for text in ["", ".", "e3", "1e", "1_0.5", "\u0663.5", "nan", "inf", "-Infinity", "1e309", "0x1p3"]:
        with pytest.raises(ValueError):
            parse_real(text)
    assert all(_python_reads(int, t) for t in refused[4:8])
    assert all(_python_reads(float, t) for t in ["1_0.5", "\u0663.5", "nan", "-Infinity"])


def _python_reads(kind, text) -> bool:
    try:
        kind(text, 0) if text.startswith("0x") else kind(text)
        return True
    except ValueError:
        return False
