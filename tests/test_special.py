"""tracejit.scipy.special: values against SciPy (interpreted and compiled, float64 and
float32, special values), derivatives against finite differences to second order and
against hand derivations, and the errors."""

import numpy as np
import pytest
import scipy.special as ss

import tracejit as tj
import tracejit.numpy as tnp
import tracejit.scipy.special as ts
from tracejit.compiler import special as special_helpers
from tracejit.testing import check_grads

RNG = np.random.default_rng(0)

# name -> (inputs, SciPy reference); inputs cover wide ranges and the special values
_X = np.concatenate([np.linspace(-6, 6, 41), [0.0, -0.0, np.inf, -np.inf, np.nan, 1e-300]])
_P = np.concatenate([np.linspace(-4.75, 30, 40), [0.5, 1e-3, 100.0, 1e4, -1.0, 0.0, np.nan]])
_U = np.concatenate([np.linspace(-0.999, 0.999, 41), [1.0, -1.0, 0.0, -0.0, 1.5, np.nan]])
UNARY = {
    "erf": (_X, ss.erf),
    "erfc": (_X, ss.erfc),
    "erfinv": (_U, ss.erfinv),
    "gammaln": (_P, ss.gammaln),
    "digamma": (_P, ss.digamma),
    "expit": (_X, ss.expit),
    "logit": ((_U + 1) / 2, ss.logit),
}
_XY = (np.array([0.0, 0.0, 0.0, 1.5, -2.0, 3.0, 0.0, 2.0]),
       np.array([0.0, np.nan, 2.0, 0.5, 4.0, 0.0, -0.5, np.inf]))
BINARY = {"xlogy": ss.xlogy, "xlog1py": ss.xlog1py}
ORDERS = (1, 2, 3, 5)


def _all(xs: dict, pairs, poly_x):
    out = {name: getattr(ts, name)(x) for name, x in xs.items()}
    out.update({name: getattr(ts, name)(*pairs) for name in BINARY})
    out.update({f"polygamma{n}": ts.polygamma(n, poly_x) for n in ORDERS})
    return out


ALL = tj.jit(_all)  # one compiled program for every function (a compile costs ~1 s)


def _reference(xs, pairs, poly_x):
    ref = {name: UNARY[name][1](x) for name, x in xs.items()}
    ref.update({name: fn(*pairs) for name, fn in BINARY.items()})
    ref.update({f"polygamma{n}": ss.polygamma(n, poly_x) for n in ORDERS})
    return ref


_POLY_X = np.concatenate([np.linspace(0.05, 40, 30), np.linspace(-3.7, -0.3, 7), [1e5]])


@pytest.mark.parametrize("compiled", [False, True], ids=["interpreted", "compiled"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_values_match_scipy(compiled, dtype):
    xs = {name: x.astype(dtype) for name, (x, _) in UNARY.items()}
    pairs = tuple(a.astype(dtype) for a in _XY)
    poly_x = _POLY_X.astype(dtype)
    got = (ALL if compiled else _all)(xs, pairs, poly_x)
    ref = _reference(xs, pairs, poly_x)
    for name, want in ref.items():
        g = np.asarray(got[name])
        assert g.dtype == dtype, (name, g.dtype)
        want = np.asarray(want).astype(dtype)
        tol = 1e-13 if dtype == np.float64 else 2e-6
        if name.startswith("polygamma") and dtype == np.float64:
            tol = 1e-12  # the series here against SciPy's zeta-based one
        np.testing.assert_allclose(g, want, rtol=tol, atol=0, equal_nan=True, err_msg=name)


def test_special_values():
    assert ts.digamma(0.0) == -np.inf and ts.digamma(-0.0) == np.inf
    assert np.isnan(ts.digamma(-2.0)) and ts.polygamma(1, -2.0) == np.inf
    assert ts.erfinv(1.0) == np.inf and ts.erfinv(-1.0) == -np.inf
    assert ts.xlogy(0.0, 0.0) == 0.0 and np.isnan(ts.xlogy(0.0, np.nan))
    assert ts.gammaln(np.inf) == np.inf
    # the compiled polygamma loop, directly
    poles = np.array([0.0, -1.0, -3.0, np.inf, -np.inf, np.nan])
    for n in (1, 2, 3):
        f = tj.jit(lambda x, n=n: ts.polygamma(n, x))
        np.testing.assert_array_equal(f(poles), ss.polygamma(n, poles), err_msg=str(n))


@pytest.mark.parametrize("name", ["erf", "erfc", "erfinv", "gammaln", "digamma", "expit",
                                  "logit"])
def test_unary_derivatives_to_second_order(name):
    x = {"erfinv": np.array([-0.7, 0.1, 0.55]), "logit": np.array([0.2, 0.5, 0.9]),
         "gammaln": np.array([0.3, 2.5, 7.0]), "digamma": np.array([0.4, 1.5, 6.0])
         }.get(name, np.array([-1.3, 0.2, 2.1]))
    check_grads(lambda v: tnp.sum(getattr(ts, name)(v) * np.array([1.0, -2.0, 0.5])), (x,),
                order=2)


def test_hand_derivatives():
    x = np.array([0.3, 1.7, 5.0])
    g = tj.grad(lambda v: tnp.sum(ts.gammaln(v)))(x)
    np.testing.assert_allclose(g, ss.digamma(x), rtol=1e-14)
    h = tj.grad(lambda v: tnp.sum(ts.digamma(v)))(x)
    np.testing.assert_allclose(h, ss.polygamma(1, x), rtol=1e-14)
    k = tj.grad(lambda v: tnp.sum(ts.polygamma(2, v)))(x)
    np.testing.assert_allclose(k, ss.polygamma(3, x), rtol=1e-14)
    u = np.array([-0.9, 0.0, 0.4])
    np.testing.assert_allclose(tj.grad(lambda v: tnp.sum(ts.erfinv(v)))(u),
                               np.sqrt(np.pi) / 2 * np.exp(ss.erfinv(u) ** 2), rtol=1e-14)
    # the compiled gradient equals the interpreted one
    cg = tj.jit(tj.grad(lambda v: tnp.sum(ts.gammaln(v) + ts.erf(v) * ts.digamma(v))))
    with tj.disable_jit():
        want = cg(x)
    np.testing.assert_allclose(cg(x), want, rtol=1e-14)


def test_binary_derivatives():
    x, y = np.array([0.5, 2.0, 1.5]), np.array([0.3, 1.1, 4.0])
    for name in BINARY:
        check_grads(lambda a, b, name=name: tnp.sum(getattr(ts, name)(a, b)), (x, y), order=2)
    # d/dx xlogy(x, y) = log(y), also at x == 0 (the value's 0 * log(y) there is 0)
    gx = tj.grad(lambda a: tnp.sum(ts.xlogy(a, y)))(np.zeros(3))
    np.testing.assert_allclose(gx, np.log(y), rtol=1e-15)
    check_grads(lambda v: ts.polygamma(1, v), (np.array([0.7, 3.0]),), order=2)


def test_logsumexp_matches_scipy_with_weights_and_signs():
    a = RNG.standard_normal((4, 5)) * 30
    b = RNG.standard_normal((4, 5))
    b[0, :2] = 0.0
    for axis in (None, 0, 1, -1, (0, 1)):
        for keepdims in (False, True):
            np.testing.assert_allclose(ts.logsumexp(a, axis=axis, b=b, keepdims=keepdims,
                                                    return_sign=True),
                                       ss.logsumexp(a, axis=axis, b=b, keepdims=keepdims,
                                                    return_sign=True), rtol=1e-13)
        np.testing.assert_allclose(ts.logsumexp(a, axis=axis),
                                   ss.logsumexp(a, axis=axis), rtol=1e-13)
    bp = np.abs(b) + 0.1
    check_grads(lambda u, w: ts.logsumexp(u, axis=1, b=w), (a / 30, bp), order=2)
    # large entries do not overflow; a zero weight hides an infinite entry
    assert np.isfinite(ts.logsumexp(np.array([1e4, 1e4 - 1.0]), b=np.array([1.0, 2.0])))
    assert ts.logsumexp(np.array([np.inf, 1.0]), b=np.array([0.0, 1.0])) == 1.0


def test_softmax_and_log_softmax_over_all_entries():
    x = RNG.standard_normal((3, 4))
    np.testing.assert_allclose(ts.softmax(x), ss.softmax(x), rtol=1e-14)
    np.testing.assert_allclose(ts.log_softmax(x, axis=0), ss.log_softmax(x, axis=0),
                               rtol=1e-14)


def test_errors_name_the_problem():
    with pytest.raises(TypeError, match="order n must be a whole number"):
        ts.polygamma(1.5, np.ones(2))
    with pytest.raises(TypeError, match="order n must be a whole number"):
        ts.polygamma(-1, np.ones(2))
    with pytest.raises(TypeError, match="complex"):
        ts.erfinv(np.ones(2, np.complex128))
    with pytest.raises(KeyError, match="no special-function helper"):
        special_helpers.preamble(["_sf_nothing"])
