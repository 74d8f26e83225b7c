"""Sorting and order statistics: sort/argsort (the `argsort` primitive, stable), partition,
lexsort, searchsorted (its own primitive), median/quantile/percentile and their nan forms,
unique with a static size. Values against NumPy (eager and traced), derivatives through the
permutation against finite differences, and compiled programs."""

import warnings

import numpy as np
import pytest
from conftest import assert_like_numpy, checked_ir

import tracejit as tj
import tracejit.numpy as tnp
from tracejit.core import eval_ir
from tracejit.testing import check_grads

rng = np.random.default_rng(3)
X = rng.standard_normal((3, 5))
X[0, 1] = X[0, 3]  # a tie
A3 = rng.standard_normal((2, 3, 4))
V = rng.standard_normal(7)
N = X.copy()
N[1, 2] = np.nan
N[2, :] = np.nan
SORTED = np.sort(V)

CASES = [
    ("sort", lambda m, x: m.sort(x), (X,), 2),
    ("sort_axis0", lambda m, x: m.sort(x, axis=0), (X,), 2),
    ("sort_none", lambda m, x: m.sort(x, axis=None), (A3,), 2),
    ("sort_neg", lambda m, x: m.sort(x, axis=-2, kind="stable"), (A3,), 2),
    ("sort_size1", lambda m, x: m.sort(x), (V[:1],), 1),
    ("sort_empty", lambda m, x: [m.sort(x), m.argsort(x)], (np.zeros((2, 0)),), 0),
    ("sort_nan", lambda m, x: [m.sort(x, axis=1), m.argsort(x, axis=1)], (N,), 0),
    ("argsort", lambda m, x: [m.argsort(x, kind="stable"), m.argsort(x, axis=0, kind="stable"),
                              m.argsort(x, axis=None, kind="stable")],
     (X,), 0),
    ("argsort_ties", lambda m, x: m.argsort(x, kind="stable"), (np.array([2, 1, 2, 0, 1, 2]),), 0),
    ("sort_bool", lambda m, x: m.sort(x > 0), (V,), 0),
    ("lexsort", lambda m, a, b: m.lexsort([a, b]), (np.round(V), V > 0), 0),
    ("lexsort_2d", lambda m, a: m.lexsort((a, np.round(a)), axis=0), (X,), 0),
    ("searchsorted", lambda m, a, v: [m.searchsorted(a, v), m.searchsorted(a, v, "right"),
                                      m.searchsorted(a, a, side="right"),
                                      m.searchsorted(a, 0.1)], (SORTED, X), 0),
    ("searchsorted_sorter", lambda m, v: m.searchsorted(V, v, sorter=np.argsort(V)), (X,), 0),
    ("median", lambda m, x: [m.median(x), m.median(x, axis=1), m.median(x, axis=0),
                             m.median(x[:, :4], axis=-1, keepdims=True)], (X,), 2),
    ("median_axes", lambda m, x: m.median(x, axis=(0, 2)), (A3,), 2),
    ("median_int", lambda m, x: m.median(x), (np.arange(6),), 0),
    ("quantile", lambda m, x: [m.quantile(x, 0.3), m.quantile(x, [0.0, 0.45, 1.0], axis=1),
                               m.quantile(x, np.array([[0.2], [0.9]]), axis=0,
                                          keepdims=True)], (X,), 2),
    ("quantile_methods", lambda m, x: [m.quantile(x, [0.13, 0.5, 0.77], axis=1, method=k)
                                       for k in ("lower", "higher", "midpoint", "nearest")],
     (X,), 1),
    ("percentile", lambda m, x: [m.percentile(x, [25, 75], axis=-1), m.percentile(x, 40)],
     (X,), 2),
    ("quantile_0d", lambda m, x: m.quantile(x, 0.5), (np.float64(1.5),), 1),
    ("quantile_int", lambda m, x: m.quantile(x, 0.4), (np.arange(7),), 0),
    ("nanmedian", lambda m, x: [m.nanmedian(x, axis=1), m.nanmedian(x[:2])], (N,), 0),
    ("nanquantile", lambda m, x: [m.nanquantile(x, [0.3, 0.6], axis=1),
                                  m.nanpercentile(x[:2], 50)], (N,), 0),
    ("median_nan", lambda m, x: [m.median(x, axis=1), m.quantile(x, 0.5, axis=1)], (N,), 0),
    ("unique", lambda m, x: m.unique(x, size=9, fill_value=-1.0),
     (np.array([3.0, 1.0, 3.0, np.nan, 2.0, np.nan, 1.0]),), 0),
    ("unique_default_fill", lambda m, x: m.unique(x, size=5), (np.array([[2, 1], [2, 5]]),),
     0),
    ("unique_short", lambda m, x: m.unique(x, size=2), (np.array([4.0, 1.0, 3.0]),), 0),
]

EXPECTED = {
    "unique": np.array([1.0, 2.0, 3.0, np.nan, -1.0, -1.0, -1.0, -1.0, -1.0]),
    "unique_default_fill": np.array([1, 2, 5, 1, 1]),
    "unique_short": np.array([1.0, 3.0]),
}


def _flat(out):
    return list(out) if isinstance(out, (list, tuple)) else [out]


def _ids(cases):
    return [c[0] for c in cases]


@pytest.mark.parametrize("name, fn, args, order", CASES, ids=_ids(CASES))
def test_values_like_numpy(name, fn, args, order):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        expected = [EXPECTED[name]] if name in EXPECTED else _flat(fn(np, *args))
        eager = _flat(fn(tnp, *args))
        ir = checked_ir(lambda *a: fn(tnp, *a), *args)
        traced = _flat(eval_ir(ir, list(args)))
    for e, got, tr in zip(expected, eager, traced, strict=True):
        assert_like_numpy(got, e)
        assert_like_numpy(tr, e)


@pytest.mark.parametrize("name", ["sort", "median", "quantile", "percentile", "sort_none"])
def test_float32_kept(name):
    _, fn, args, _ = next(c for c in CASES if c[0] == name)
    args32 = tuple(np.asarray(a, np.float32) for a in args)
    for e, g in zip(_flat(fn(np, *args32)), _flat(fn(tnp, *args32)), strict=True):
        assert_like_numpy(g, e, rtol=1e-6)


GRAD = [c for c in CASES if c[3]]


@pytest.mark.parametrize("name, fn, args, order", GRAD, ids=_ids(GRAD))
def test_gradients(name, fn, args, order):
    outs = _flat(fn(np, *args))
    weights = [np.cos(np.arange(np.size(o)) + 0.5).reshape(np.shape(o)) for o in outs]
    # X has a tie: the derivative of sort there is not defined; move it apart.
    args = tuple(a + np.linspace(0, 1e-2, np.size(a)).reshape(np.shape(a)) for a in args)

    def f(*a):
        return sum(tnp.sum(tnp.sin(o) * w) for o, w in zip(_flat(fn(tnp, *a)), weights))
    check_grads(f, args, order=order)


def test_sort_gradient_is_the_permuted_cotangent():
    g = tj.grad(lambda x: tnp.sum(tnp.sort(x) * np.arange(7.0)))(V)
    np.testing.assert_array_equal(g, np.argsort(np.argsort(V)).astype(float))


def test_quantile_gradient_wrt_q():
    check_grads(lambda q: tnp.sum(tnp.quantile(V, q)), (np.array([0.21, 0.62]),), order=1)


def test_errors():
    with pytest.raises(np.exceptions.AxisError):
        tnp.sort(np.float64(1.0), axis=0)
    with pytest.raises(ValueError, match="out of bounds"):
        tnp.partition(V, 7)
    with pytest.raises(ValueError, match="range"):
        tnp.quantile(V, 1.5)
    with pytest.raises(ValueError, match="range"):
        tnp.percentile(V, -1)
    with pytest.raises(ValueError, match="not a valid method"):
        tnp.quantile(V, 0.5, method="bogus")
    with pytest.raises(ValueError, match="side"):
        tnp.searchsorted(SORTED, 0.0, side="middle")
    with pytest.raises(ValueError, match="too deep"):
        tnp.searchsorted(X, 0.0)
    with pytest.raises(tj.errors.ConcretizationError, match="size="):
        tj.make_ir(lambda x: tnp.unique(x))(V)


def test_partition_property():
    for k in (0, 3, -1):
        p = tnp.partition(V, k)
        kk = k % 7
        assert p[kk] == np.partition(V, k)[kk]
        assert (p[:kk] <= p[kk]).all() and (p[kk:] >= p[kk]).all()
        i = tnp.argpartition(V, k)
        assert V[i][kk] == np.partition(V, k)[kk]


def test_jit_programs():
    def f(x, a, v):
        return {
            "sort": tnp.sort(x, axis=1),
            "sort0": tnp.sort(x, axis=0),
            "argsort": tnp.argsort(x, axis=-1, kind="stable"),
            "med": tnp.median(x, axis=1),
            "q": tnp.quantile(x, [0.25, 0.9], axis=0),
            "pct": tnp.percentile(x, 30.0),
            "nanmed": tnp.nanmedian(tnp.where(x > 1.0, tnp.nan, x), axis=1),
            "ss": tnp.searchsorted(a, v),
            "ssr": tnp.searchsorted(a, v[0], side="right"),
            "uniq": tnp.unique(tnp.round(x), size=6, fill_value=9.0),
            "lex": tnp.lexsort([x[0], tnp.round(x[1])]),
        }

    x = rng.standard_normal((4, 6))
    a = np.sort(rng.standard_normal(5))
    v = rng.standard_normal(3)
    expect = f(x, a, v)
    got = tj.jit(f)(x, a, v)
    for k in expect:
        np.testing.assert_allclose(got[k], expect[k], rtol=1e-12, err_msg=k)
        assert np.asarray(got[k]).dtype == np.asarray(expect[k]).dtype, k

    def loss(x):
        out = f(x, a, v)
        return (tnp.sum(tnp.sin(out["sort"]) * np.arange(24.0).reshape(4, 6))
                + tnp.sum(out["med"] ** 2) + tnp.sum(out["q"] * 3.0) + out["pct"]
                + tnp.sum(out["sort0"][0]) + tnp.sum(tnp.cos(out["uniq"])))

    g = tj.jit(tj.grad(loss))(x)
    np.testing.assert_allclose(g, tj.grad(loss)(x), rtol=1e-12, atol=1e-14)
    check_grads(loss, (x,), order=1, modes=("rev",))
