"""Result dtypes and values as NumPy's for float32 and complex operands (the bugs the
coverage table's float32 and complex columns found), eager and compiled."""

import numpy as np
import pytest

import tracejit as tj
import tracejit.numpy as tnp
from tracejit.testing import check_grads

X = np.array([0.3, -0.7, 0.2, 0.9, 2.5, -3.25], np.float32)
Y = np.array([0.5, 0.1, -0.8, -0.3, 0.7, 1.5], np.float32)


@pytest.mark.parametrize("name", ["copysign", "fmod", "logaddexp2", "floor_divide", "modf",
                                  "divmod"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_float_binary_functions_keep_the_dtype_and_numpys_rounding(name, dtype):
    x, y = X.astype(dtype), Y.astype(dtype)
    fn = getattr(tnp, name)
    args = (x,) if name == "modf" else (x, y)
    want = getattr(np, name)(*args)
    for got in (fn(*args), tj.jit(fn)(*args)):
        for g, w in zip(np.atleast_1d(got) if name not in ("modf", "divmod") else got,
                        np.atleast_1d(want) if name not in ("modf", "divmod") else want):
            assert np.asarray(g).dtype == np.asarray(w).dtype
            np.testing.assert_allclose(g, w, rtol=2e-7 if dtype == np.float32 else 1e-15)


def test_floor_division_is_the_quotient_of_a_minus_fmod():
    # 0.7 / 0.1 rounds to 7 in float32, but 0.7 - fmod(0.7, 0.1) is six tenths: NumPy says 6
    x, y = np.float32(0.7), np.float32(0.1)
    assert np.floor_divide(x, y) == 6
    assert tnp.floor_divide(x, y) == 6 and tj.jit(tnp.floor_divide)(x, y) == 6
    edges = np.array([np.nan, np.inf, -np.inf, 1e300, -0.0, 0.0, 2.0, -2.0, 0.7, 5e-324])
    a, b = np.repeat(edges, edges.size), np.tile(edges, edges.size)
    with np.errstate(all="ignore"):
        want = np.floor_divide(a, b)
    np.testing.assert_array_equal(tj.jit(tnp.floor_divide)(a, b), want)
    np.testing.assert_array_equal(np.signbit(tj.jit(tnp.floor_divide)(a, b)), np.signbit(want))


def test_fmod_is_exact_and_differentiates():
    x, y = np.float32(0.2), np.float32(-0.8)
    assert tnp.fmod(x, y) == np.fmod(x, y)  # mod - y would round: 0.19999999
    ints = np.array([7, -7, 7, -7, 0]), np.array([3, 3, -3, -3, 5])
    np.testing.assert_array_equal(tnp.fmod(*ints), np.fmod(*ints))
    assert tnp.fmod(*ints).dtype == np.fmod(*ints).dtype
    # d fmod(x, y) = dx - trunc(x / y) dy
    x, y = np.array([2.75, -1.3, 0.45]), np.array([0.7, 0.4, -0.3])
    check_grads(tnp.fmod, (x, y), order=2)
    gy = tj.grad(lambda y: tnp.sum(tnp.fmod(x, y)))(y)
    np.testing.assert_allclose(gy, -np.trunc(x / y))


def test_cov_and_corrcoef_compute_in_float64_as_numpy():
    m = np.random.default_rng(0).standard_normal((3, 6)).astype(np.float32)
    for fn in ("cov", "corrcoef"):
        got, want = getattr(tnp, fn)(m), getattr(np, fn)(m)
        assert got.dtype == want.dtype == np.float64
        np.testing.assert_allclose(got, want, rtol=1e-12)
    assert tnp.result_type(m, np.float64) == np.float64
    assert tnp.result_type(np.float32, m) == np.float32


def test_complex_nan_variance_vecmat_and_lstsq_rank():
    z = np.array([1 + 2j, np.nan, 3 - 1j, 0.5j])
    for fn in ("nanvar", "nanstd"):
        got = getattr(tnp, fn)(z)
        assert np.asarray(got).dtype == np.float64
        np.testing.assert_allclose(got, getattr(np, fn)(z), rtol=1e-14)
    v, m = np.array([1 + 2j, 2, 3 - 1j]), np.arange(6.0).reshape(3, 2) + 1j
    np.testing.assert_allclose(tnp.vecmat(v, m), np.vecmat(v, m))  # v is conjugated
    np.testing.assert_allclose(tj.jit(tnp.vecmat)(v, m), np.vecmat(v, m))
    a = np.random.default_rng(1).standard_normal((5, 3))
    assert np.asarray(tnp.linalg.lstsq(a, a[:, 0])[2]).dtype == np.linalg.lstsq(a, a[:, 0])[2].dtype


def test_complex_xlogy_and_xlog1py():
    import scipy.special as ss

    import tracejit.scipy.special as tss
    x, y = np.array([0, 1 + 1j, 2 - 0.5j, 0.3]), np.array([0, 2 + 0.1j, -1 + 1j, 0.5j])
    for fn in ("xlogy", "xlog1py"):
        np.testing.assert_allclose(getattr(tss, fn)(x, y), getattr(ss, fn)(x, y), atol=1e-15)
        np.testing.assert_allclose(tj.jit(getattr(tss, fn))(x, y), getattr(ss, fn)(x, y),
                                   atol=1e-15)
    check_grads(lambda y: tss.xlogy(x[1:], y), (y[1:],), order=2)


def test_signbit_of_negative_zero_and_nan_and_copysign():
    x = np.array([-0.0, 0.0, -np.nan, np.nan, -1.0, 2.0, -np.inf])
    for dtype in (np.float64, np.float32):
        xs = x.astype(dtype)
        np.testing.assert_array_equal(tj.jit(tnp.signbit)(xs), np.signbit(xs))
        np.testing.assert_array_equal(tj.jit(tnp.copysign)(np.ones_like(xs), xs),
                                      np.copysign(1.0, xs))
    np.testing.assert_array_equal(tnp.signbit(np.array([-2, 0, 3])), [True, False, False])


def test_compiled_complex_division_by_zero_gives_numpys_values():
    z = np.array([1 + 1j, 0j, 1 + 0j, -2j, 3 + 4j])
    zero = np.zeros(5, complex)
    f = tj.jit(lambda a, b: (a / b, b ** -1.0, b ** 0.5, b ** -2))
    with np.errstate(all="ignore"):
        want = (z / zero, zero ** -1.0, zero ** 0.5, zero ** -2)
    for got, ref in zip(f(z, zero), want):
        np.testing.assert_array_equal(got, ref)


def test_heaviside_keeps_nan():
    x = np.array([np.nan, -1.0, 0.0, 2.0])
    np.testing.assert_array_equal(tj.jit(tnp.heaviside)(x, 0.5), np.heaviside(x, 0.5))
