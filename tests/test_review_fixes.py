"""Regression tests for fixes found in review of the complex special functions, pivoted
QR and `**` fast-path work."""

import numpy as np
import pytest
import scipy.linalg

import tracejit as tj
import tracejit.numpy as tnp
import tracejit.scipy.linalg as tl


@pytest.mark.parametrize("e", [-2, -3, -1.0, -2.0])
def test_eager_grad_of_negative_integer_power_at_a_python_float(e):
    # the interpreter's integer_pow read `.dtype` of the Python float operand
    x = 1.7
    expected = e * x ** (e - 1)
    assert np.isclose(tj.grad(lambda a: a ** e)(x), expected)
    assert np.isclose(tj.jit(tj.grad(lambda a: a ** e))(x), expected)


def test_power_half_of_integers_and_its_gradient():
    xi = np.arange(5)
    got = tj.jit(lambda a: tnp.power(a, 0.5))(xi)
    assert got.dtype == np.power(xi, 0.5).dtype
    np.testing.assert_allclose(got, np.power(xi, 0.5))
    x = np.array([0.3, 1.0, 4.0])
    g = tj.jit(tj.grad(lambda a: tnp.sum(tnp.power(a, 0.5))))(x)
    np.testing.assert_allclose(g, 0.5 / np.sqrt(x))


@pytest.mark.parametrize("x", [np.array([True, False]), np.array(True)])
def test_bool_squared_is_int8_as_ndarray_power(x):
    expected = x ** 2
    for fn in (tj.jit(lambda a: a ** 2), lambda a: tj.jit(tj.vmap(lambda b: b ** 2))(a)
               if a.ndim else tj.jit(lambda b: b ** 2)(a)):
        got = fn(x)
        assert got.dtype == expected.dtype == np.int8
        np.testing.assert_array_equal(got, expected)
    assert tj.jit(lambda a: tnp.power(a, 2))(x).dtype == np.power(x, 2).dtype


@pytest.mark.parametrize("pivoting", [False, True])
@pytest.mark.parametrize("mode", ["full", "economic", "r"])
def test_qr_of_float16_factors_in_float32_as_scipy(pivoting, mode):
    a = (np.eye(4, 3) + np.arange(12).reshape(4, 3) / 7).astype(np.float16)
    got = tl.qr(a, pivoting=pivoting, mode=mode)
    expected = scipy.linalg.qr(a, pivoting=pivoting, mode=mode)
    assert len(got) == len(expected)
    for g, e in zip(got, expected):
        assert np.asarray(g).dtype == e.dtype
        np.testing.assert_allclose(g, e, atol=1e-5)


_HALF_POWER_X = np.array([-0.0, -np.inf, 4.0, 2.0, 0.0])


@pytest.mark.parametrize("name, fn, ref", [
    ("power", lambda a: tnp.power(a, 0.5), lambda x: np.power(x, 0.5)),
    ("numpy scalar exponent", lambda a: a ** np.float64(0.5), lambda x: x ** np.float64(0.5)),
    ("float32", lambda a: tnp.power(a.astype(np.float32), 0.5),
     lambda x: np.power(x.astype(np.float32), 0.5)),
    ("array exponent", lambda a: tnp.power(a, tnp.full(5, 0.5)),
     lambda x: np.power(x, np.full(5, 0.5))),
    ("float_power", lambda a: tnp.float_power(a, 0.5), lambda x: np.float_power(x, 0.5)),
])
def test_half_powers_keep_numpys_special_values_eager_and_compiled(name, fn, ref):
    # NumPy's power takes sqrt for a scalar exponent 0.5 ((-0.0) ** 0.5 = -0.0, (-inf) ** 0.5
    # = nan); an array exponent and float_power give C's pow (0.0, inf)
    x = _HALF_POWER_X
    with np.errstate(all="ignore"):
        expected = ref(x)
        for got in (fn(x), tj.jit(fn)(x)):
            got = np.asarray(got)
            assert got.dtype == expected.dtype
            np.testing.assert_array_equal(got, expected)
            np.testing.assert_array_equal(np.signbit(got), np.signbit(expected))


@pytest.mark.parametrize("fn, x", [
    (lambda a: a + 1, np.ones(3, np.float16)),            # a float16 input
    (lambda a: tnp.tanh(a) * 2, np.ones(3, np.int8)),     # NumPy computes tanh(int8) in float16
])
def test_jit_of_float16_names_the_problem(fn, x):
    # Numba has no float16: the error says so instead of failing inside Numba
    with pytest.raises(TypeError, match="float16"):
        tj.jit(fn)(x)
    assert np.asarray(fn(x)).dtype == np.float16  # tracing without jit keeps NumPy's dtype
