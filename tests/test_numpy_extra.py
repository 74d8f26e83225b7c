"""The NumPy 2 names, ufunc compositions, statistics and grids of tracejit/numpy/_extra.py
(and the array-API names of numpy.linalg): values against NumPy, derivatives against finite
differences, and a compiled gradient."""

import numpy as np
import pytest

import tracejit as tj
import tracejit.numpy as tnp
from tracejit.testing import check_grads

RNG = np.random.default_rng(11)
X = RNG.uniform(0.1, 0.9, 5)
Y = RNG.uniform(-2.0, 2.0, 5)
M = RNG.standard_normal((3, 4))
SQ = RNG.standard_normal((3, 3)) + 3 * np.eye(3)
W = RNG.uniform(0.5, 2.0, 4)

DIFFERENTIABLE = [
    ("acos", tnp.acos, np.acos, (X,)),
    ("atan2", tnp.atan2, np.atan2, (X, Y)),
    ("pow", tnp.pow, np.pow, (X, Y)),
    ("fmod", tnp.fmod, np.fmod, (Y, X)),
    ("divmod", lambda a, b: tnp.divmod(a, b)[1], lambda a, b: np.divmod(a, b)[1], (Y, X)),
    ("modf", lambda a: tnp.modf(3 * a), lambda a: np.modf(3 * a), (Y,)),
    ("ldexp", lambda a: tnp.ldexp(a, 3), lambda a: np.ldexp(a, 3), (Y,)),
    ("vecdot", tnp.vecdot, np.vecdot, (M, M)),
    ("matvec", tnp.matvec, np.matvec, (M, W)),
    ("vecmat", tnp.vecmat, np.vecmat, (M[:, 0], M)),
    ("cumulative_prod", lambda a: tnp.cumulative_prod(a, include_initial=True),
     lambda a: np.cumulative_prod(a, include_initial=True), (X,)),
    ("average weighted", lambda a, w: tnp.average(a, axis=1, weights=w),
     lambda a, w: np.average(a, axis=1, weights=w), (M, W)),
    ("ptp", lambda a: tnp.ptp(a, axis=0), lambda a: np.ptp(a, axis=0), (M,)),
    ("cov", tnp.cov, np.cov, (M,)),
    ("cov weighted", lambda a, w: tnp.cov(a, aweights=w, ddof=0),
     lambda a, w: np.cov(a, aweights=w, ddof=0), (M, W)),
    ("corrcoef", tnp.corrcoef, np.corrcoef, (M,)),
    ("ediff1d", lambda a: tnp.ediff1d(a, to_begin=[0.0]),
     lambda a: np.ediff1d(a, to_begin=[0.0]), (X,)),
    ("meshgrid", lambda a, b: tnp.meshgrid(a, b[:3]), lambda a, b: np.meshgrid(a, b[:3]),
     (X, Y)),
    ("vander", lambda a: tnp.vander(a, 4), lambda a: np.vander(a, 4), (X,)),
    ("diagflat", lambda a: tnp.diagflat(a, 1), lambda a: np.diagflat(a, 1), (X,)),
    ("logspace", lambda a: tnp.logspace(a[0], a[1], 6), lambda a: np.logspace(a[0], a[1], 6),
     (X,)),
    ("linalg.outer", tnp.linalg.outer, np.linalg.outer, (X, Y)),
    ("linalg.trace", tnp.linalg.trace, np.linalg.trace, (SQ,)),
    ("linalg.diagonal", tnp.linalg.diagonal, np.linalg.diagonal, (M,)),
    ("linalg.tensorinv", lambda a: tnp.linalg.tensorinv(a.reshape(3, 3, 1), 1),
     lambda a: np.linalg.tensorinv(a.reshape(3, 3, 1), 1), (SQ,)),
    ("linalg.tensorsolve", lambda a, b: tnp.linalg.tensorsolve(a, b[:3]),
     lambda a, b: np.linalg.tensorsolve(a, b[:3]), (SQ, Y)),
]


def _pairs(got, want):
    if isinstance(want, (tuple, list)):
        return list(zip(got, want))
    return [(got, want)]


@pytest.mark.parametrize("name,fn,ref,args", DIFFERENTIABLE, ids=[c[0] for c in DIFFERENTIABLE])
def test_values_and_derivatives(name, fn, ref, args):
    for g, w in _pairs(fn(*args), ref(*args)):
        np.testing.assert_allclose(g, w, rtol=1e-10, atol=1e-12)
    check_grads(fn, args, order=2, eps=1e-6)


def test_fmod_and_modf_keep_the_sign_of_x_exactly():
    a = np.array([-7.5, 7.5, -0.0, 5.0, 1e300, -3.0])
    b = np.array([2.0, -2.0, 3.0, 2.5, 3.0, 3.0])
    np.testing.assert_array_equal(tnp.fmod(a, b), np.fmod(a, b))
    np.testing.assert_array_equal(np.signbit(tnp.fmod(a, b)), np.signbit(np.fmod(a, b)))
    c = np.array([-2.5, 2.5, np.inf, -np.inf, -0.0])
    for g, w in zip(tnp.modf(c), np.modf(c)):
        np.testing.assert_array_equal(g, w)
        np.testing.assert_array_equal(np.signbit(g), np.signbit(w))


def test_predicates_grids_and_windows_match_numpy():
    v = np.array([-np.inf, -1.0, 0.0, np.inf, np.nan])
    np.testing.assert_array_equal(tnp.isposinf(v), np.isposinf(v))
    np.testing.assert_array_equal(tnp.isneginf(v), np.isneginf(v))
    bins = np.array([0.0, 0.25, 0.5, 1.0])
    for right in (False, True):
        np.testing.assert_array_equal(tnp.digitize(X, bins, right), np.digitize(X, bins, right))
        np.testing.assert_array_equal(tnp.digitize(X, bins[::-1], right),
                                      np.digitize(X, bins[::-1], right))
    assert bool(tnp.array_equal(M, M.copy())) and not bool(tnp.array_equal(M, M[:2]))
    assert bool(tnp.array_equiv(M[0], np.stack([M[0], M[0]])))
    np.testing.assert_array_equal(tnp.indices((2, 3)), np.indices((2, 3)))
    for g, w in zip(tnp.tril_indices_from(SQ, -1), np.tril_indices_from(SQ, -1)):
        np.testing.assert_array_equal(g, w)
    np.testing.assert_allclose(tnp.geomspace(1.0, 1000.0, 4), np.geomspace(1.0, 1000.0, 4))
    assert tnp.geomspace(1.0, 1000.0, 4)[-1] == 1000.0
    np.testing.assert_allclose(tnp.hanning(7), np.hanning(7))
    for g, w in zip(tnp.unstack(M, axis=1), np.unstack(M, axis=1)):
        np.testing.assert_array_equal(g, w)
    assert tnp.broadcast_shapes((3, 1), (1, 4)) == (3, 4)


def test_compiled_gradient_of_a_statistics_loss():
    def loss(a, w):
        return (tnp.sum(tnp.cov(a, aweights=w) ** 2) + tnp.sum(tnp.corrcoef(a))
                + tnp.sum(tnp.fmod(a, 0.7)) + tnp.sum(tnp.matvec(a, w)))
    g = tj.grad(loss, argnums=(0, 1))
    for got, want in zip(tj.jit(g)(M, W), g(M, W)):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match="indexing"):
        tnp.meshgrid(X, indexing="yx")
    with pytest.raises(TypeError, match="axis must be specified"):
        tnp.average(M, weights=W)
    with pytest.raises(ValueError, match="one-dimensional"):
        tnp.linalg.outer(M, X)
    with pytest.raises(ValueError, match="at least 2-dimensional"):
        tnp.matrix_transpose(X)
