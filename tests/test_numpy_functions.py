"""Numerical and array functions of `tracejit.numpy` built over existing primitives (diff,
gradient, cross, kron, convolve, interp, polyval, trapezoid, joining/splitting helpers, the
nan* reductions, select, piecewise, isclose, einsum with '...'): values and dtypes against
NumPy (eager and traced), derivatives against finite differences, and one compiled
program."""

import warnings

import numpy as np
import pytest
from conftest import assert_like_numpy, checked_ir

import tracejit as tj
import tracejit.numpy as tnp
from tracejit.core import eval_ir
from tracejit.testing import check_grads

rng = np.random.default_rng(0)
V = rng.standard_normal(6)
W = rng.standard_normal(3)
M = rng.standard_normal((3, 4))
A3 = rng.standard_normal((2, 3, 4))
B3 = rng.standard_normal((4, 3))
XP = np.array([-1.0, -0.3, 0.4, 1.1, 2.0])
FP = np.array([0.5, -1.0, 2.0, 0.3, 1.0])
XQ = np.array([-1.5, -1.0, -0.2, 0.4, 0.9, 2.0, 2.5])
NANS = np.array([[1.0, np.nan, 3.0, -2.0], [np.nan, 0.5, 0.25, 4.0], [2.0, 1.0, -1.0, 0.1]])

# (id, function of (module, *args), args, gradient order or 0 for no gradient check)
CASES = [
    ("diff", lambda m, x: m.diff(x), (V,), 2),
    ("diff_n2_axis0", lambda m, x: m.diff(x, n=2, axis=0), (A3.reshape(6, 4),), 2),
    ("diff_prepend", lambda m, x: m.diff(x, prepend=0.5, append=x[:, :1]), (M,), 2),
    ("diff_n0", lambda m, x: m.diff(x, n=0), (V,), 1),
    ("diff_size1", lambda m, x: m.diff(x), (V[:1],), 0),
    ("diff_bool", lambda m, x: m.diff(x > 0), (V,), 0),
    ("gradient", lambda m, x: m.gradient(x), (V,), 2),
    ("gradient_2d", lambda m, x: m.gradient(x, 0.5, axis=-1), (M,), 2),
    ("gradient_axes", lambda m, x: m.gradient(x, axis=(0, 2)), (A3,), 2),
    ("gradient_coords", lambda m, x: m.gradient(x, np.cumsum(np.arange(1.0, 7.0))), (V,), 2),
    ("gradient_int", lambda m, x: m.gradient(np.arange(5) ** 2), (V,), 0),
    ("cross3", lambda m, a, b: m.cross(a, b), (M[:, :3], B3[:3]), 2),
    ("cross_axis", lambda m, a, b: m.cross(a, b, axisa=0, axisb=0, axisc=0),
     (M[:3, :2], B3[:3, :2]), 2),
    ("cross_bcast", lambda m, a, b: m.cross(a, b), (A3[:, :, :3], W), 2),
    ("kron", lambda m, a, b: m.kron(a, b), (M[:2, :3], B3[:2]), 2),
    ("kron_1d2d", lambda m, a, b: m.kron(a, b), (W, M), 2),
    ("kron_scalar", lambda m, a, b: m.kron(a, b), (np.float64(2.5), W), 2),
    ("convolve", lambda m, a, b: m.convolve(a, b), (V, W), 2),
    ("convolve_same", lambda m, a, b: m.convolve(a, b, mode="same"), (W, V), 2),
    ("convolve_valid", lambda m, a, b: m.convolve(a, b, "valid"), (V, W[:2]), 2),
    ("correlate", lambda m, a, b: m.correlate(a, b), (V, W), 2),
    ("correlate_full", lambda m, a, b: m.correlate(a, b, "full"), (W, V), 2),
    ("correlate_same", lambda m, a, b: m.correlate(a, b, "same"), (V[:5], W[:2]), 2),
    ("correlate_same_rev", lambda m, a, b: m.correlate(a, b, "same"), (W[:2], V[:5]), 2),
    ("correlate_valid_rev", lambda m, a, b: m.correlate(a, b, "valid"), (W, V), 2),
    ("interp", lambda m, x, fp: m.interp(x, XP, fp), (XQ + 0.05, FP), 2),
    ("interp_lr", lambda m, x: m.interp(x, XP, FP, left=-7.0, right=9.0), (XQ + 0.05,), 1),
    ("interp_nodes", lambda m, x: m.interp(x, XP, FP), (XQ,), 0),
    ("interp_scalar", lambda m, x: m.interp(x, XP, FP), (np.float64(0.7),), 1),
    ("polyval", lambda m, p, x: m.polyval(p, x), (W, M), 2),
    ("polyval_scalar", lambda m, p, x: m.polyval(p, x), (V, np.float64(0.3)), 2),
    ("trapezoid", lambda m, y: m.trapezoid(y), (V,), 2),
    ("trapezoid_x", lambda m, y, x: m.trapezoid(y, x, axis=0), (M, np.cumsum(W ** 2)), 2),
    ("trapezoid_dx", lambda m, y: m.trapezoid(y, dx=0.3, axis=1), (A3,), 2),
    ("trapezoid_xnd", lambda m, y: m.trapezoid(y, np.cumsum(np.abs(M), 1)), (M,), 2),
    ("cumulative_sum", lambda m, x: m.cumulative_sum(x, include_initial=True), (V,), 2),
    ("cumulative_sum_ax", lambda m, x: m.cumulative_sum(x, axis=-2), (A3,), 2),
    ("atleast_3d", lambda m, a, b, c: m.atleast_3d(a, b, c), (np.float64(1.5), W, M), 1),
    ("dstack", lambda m, a, b: m.dstack([a, b]), (M, M[::-1]), 1),
    ("dstack_1d", lambda m, a, b: m.dstack((a, b)), (W, W[::-1]), 1),
    ("hsplit", lambda m, a: m.hsplit(a, 2), (M,), 1),
    ("hsplit_1d", lambda m, a: m.hsplit(a, [1, 4]), (V,), 1),
    ("vsplit", lambda m, a: m.vsplit(a, [1]), (M,), 1),
    ("dsplit", lambda m, a: m.dsplit(a, [1, 3]), (A3,), 1),
    ("append", lambda m, a, b: m.append(a, b), (M, W), 1),
    ("append_axis", lambda m, a, b: m.append(a, b, axis=0), (M, M[:1]), 1),
    ("insert_int", lambda m, a: m.insert(a, 1, 5.0), (V,), 1),
    ("insert_neg", lambda m, a, v: m.insert(a, -1, v, axis=1), (M, W), 1),
    ("insert_seq", lambda m, a, v: m.insert(a, [3, 1, 1, 6], v), (V, V[:4]), 1),
    ("insert_slice", lambda m, a: m.insert(a, slice(0, 4, 2), [7.0, 8.0], axis=1), (M,), 1),
    ("insert_none", lambda m, a: m.insert(a, 2, -1.0), (M,), 1),
    ("insert_row", lambda m, a, v: m.insert(a, 1, v, axis=0), (M, V[:4]), 1),
    ("delete_int", lambda m, a: m.delete(a, -2), (V,), 1),
    ("delete_seq", lambda m, a: m.delete(a, [0, 2], axis=1), (M,), 1),
    ("delete_slice", lambda m, a: m.delete(a, slice(None, None, 2), axis=0), (M,), 1),
    ("delete_mask", lambda m, a: m.delete(a, np.array([True, False, True])), (W,), 1),
    ("rot90", lambda m, a: m.rot90(a), (M,), 1),
    ("rot90_k", lambda m, a: [m.rot90(a, k, axes=(2, 0)) for k in (-1, 2, 3, 4)], (A3,), 1),
    ("rollaxis", lambda m, a: [m.rollaxis(a, 2), m.rollaxis(a, 0, 3), m.rollaxis(a, -1, -2),
                               m.rollaxis(a, 1, 2)], (A3,), 1),
    ("block", lambda m, a, b: m.block([[a, b[:3, :2]], [b[3:, :4]]]),
     (M[:3, :2], np.concatenate([B3, B3], 1)), 1),
    ("block_1d", lambda m, a, b: m.block([a, b, 2.0]), (W, V), 1),
    ("block_deep", lambda m, a: m.block([[[a]], [[a]]]), (W,), 1),
    ("r_", lambda m, a: m.r_[a, 0:3, [4.0, 5.0], 2.5], (W,), 1),
    ("r_linspace", lambda m, a: m.r_[-1:1:5j, a], (W,), 1),
    ("r_axis", lambda m, a: m.r_["1", a, a], (M,), 1),
    ("r_ndmin", lambda m, a: m.r_["0,2", a, a], (W,), 1),
    ("c_", lambda m, a, b: m.c_[a, b, a], (W, W[::-1]), 1),
    ("c_2d", lambda m, a: m.c_[a, a[:, :1]], (M,), 1),
    ("select", lambda m, x: m.select([x < -0.5, x > 0.5, x < 0], [x ** 2, -x, 3 * x], 0.25),
     (V,), 2),
    ("select_bcast", lambda m, x: m.select([x > 0], [1.5], default=x), (M,), 1),
    ("piecewise", lambda m, x: m.piecewise(x, [x < 0, x >= 0], [lambda t: t * t, m.sin]),
     (V,), 2),
    ("piecewise_other", lambda m, x: m.piecewise(x, [x < -0.3], [-1.0, lambda t: 2 * t]),
     (M,), 1),
    ("piecewise_scalar", lambda m, x: m.piecewise(x, [x > 0, x <= 0], [lambda t: t ** 3, 0.5]),
     (np.float64(0.7),), 1),
    ("nan_to_num", lambda m, x: m.nan_to_num(x * np.array([np.inf, 1, np.nan, -np.inf, 1, 1])),
     (V,), 0),
    ("nan_to_num_opts", lambda m, x: m.nan_to_num(
        x * np.array([np.inf, 1, np.nan, -np.inf, 1, 1]), nan=1.5, posinf=9.0, neginf=-9.0),
     (V,), 0),
    ("nansum", lambda m, x: [m.nansum(x), m.nansum(x, axis=0), m.nansum(x, 1, keepdims=True)],
     (NANS,), 2),
    ("nanprod", lambda m, x: [m.nanprod(x), m.nanprod(x, axis=-1)], (NANS,), 2),
    ("nanmean", lambda m, x: [m.nanmean(x), m.nanmean(x, axis=0), m.nanmean(x, 1, keepdims=True)],
     (NANS,), 2),
    ("nanvar", lambda m, x: [m.nanvar(x), m.nanvar(x, axis=0, ddof=1), m.nanstd(x, axis=1)],
     (NANS,), 2),
    ("nanmax", lambda m, x: [m.nanmax(x), m.nanmax(x, axis=0), m.nanmin(x, 1, keepdims=True)],
     (NANS,), 1),
    ("nanmax_allnan", lambda m, x: [m.nanmax(x, axis=1), m.nanmin(x, axis=1)],
     (np.array([[np.nan, np.nan], [1.0, np.nan]]),), 0),
    ("nanarg", lambda m, x: [m.nanargmax(x), m.nanargmin(x, axis=0), m.nanargmax(x, -1)],
     (NANS,), 0),
    ("nancum", lambda m, x: [m.nancumsum(x), m.nancumprod(x, axis=1), m.nancumsum(x, 0)],
     (NANS,), 2),
    ("nan_int", lambda m, x: [m.nansum(x), m.nanmean(x), m.nanmax(x), m.nanvar(x, axis=0)],
     (np.arange(6).reshape(2, 3),), 0),
    ("isclose", lambda m, x: [m.isclose(x, x + 1e-9), m.isclose(x, 1.0, atol=0.6),
                              m.isclose(x * np.nan, x * np.nan, equal_nan=True),
                              m.isclose(x * np.inf, np.inf)], (V,), 0),
    ("complex_parts", lambda m, x: [m.real(x), m.imag(x), m.angle(x), m.angle(x, deg=True),
                                    m.real_if_close(x)],
     (np.array([1.5, -2.0, 0.0, -0.0, np.nan]),), 0),
    ("imag_int", lambda m, x: [m.imag(x), m.angle(x)], (np.arange(-2, 3),), 0),
    # 0-d, size 0 and size 1 where NumPy allows them
    ("edge_empty", lambda m, e: [m.diff(e), m.cumulative_sum(e, include_initial=True),
                                 m.interp(e, XP, FP), m.kron(e, W), m.append(e, 1.0),
                                 m.insert(e, 0, 2.0), m.delete(e, []), m.trapezoid(e),
                                 m.polyval(W, e), m.nansum(e), m.cross(e.reshape(0, 3), W),
                                 m.einsum("i...->...", e.reshape(0, 2))], (np.zeros(0),), 0),
    ("edge_0d", lambda m, z: [m.cumulative_sum(z), m.nansum(z), m.nanmax(z), m.angle(z),
                              m.imag(z), m.select([z > 0], [z]), m.nan_to_num(z),
                              m.einsum("...,...", z, z), m.isclose(z, 1.0), m.atleast_3d(z)],
     (np.float64(1.5),), 1),
    ("edge_size1", lambda m, x: [m.cumulative_sum(x), m.convolve(x, x), m.correlate(x, W),
                                 m.interp(x, XP[:1], FP[:1]), m.kron(x, x), m.gradient(W)],
     (V[:1],), 1),
    ("einsum_ell", lambda m, a, b: m.einsum("...ij,jk->...ik", a, b), (A3, B3), 2),
    ("einsum_ell_implicit", lambda m, a: m.einsum("i...", a), (A3,), 1),
    ("einsum_ell_bcast", lambda m, a, b: m.einsum("...i,...i->...", a, b), (A3, M[:1]), 2),
    ("einsum_ell_mid", lambda m, a: m.einsum("a...b->...", a), (A3,), 1),
    ("einsum_ell_diag", lambda m, a: m.einsum("...ii->...i", a), (A3[:, :3, :3],), 1),
    ("einsum_sublist", lambda m, a, b: m.einsum(a, [0, 1, 2], b, [2, 1], [0]), (A3, B3), 2),
    ("einsum_sublist_ell", lambda m, a, b: m.einsum(a, [Ellipsis, 0], b, [0, 1],
                                                    [Ellipsis, 1]), (A3, B3), 2),
]


def _flat(out):
    return list(out) if isinstance(out, (list, tuple)) else [out]


def _ids(cases):
    return [c[0] for c in cases]


@pytest.mark.parametrize("name, fn, args, order", CASES, ids=_ids(CASES))
def test_values_like_numpy(name, fn, args, order):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        expected = _flat(fn(np, *args))
        eager = _flat(fn(tnp, *args))
        ir = checked_ir(lambda *a: fn(tnp, *a), *args)
        traced = _flat(eval_ir(ir, list(args)))
    assert len(eager) == len(expected) == len(traced)
    for e, got, tr in zip(expected, eager, traced):
        assert_like_numpy(got, e)
        assert_like_numpy(tr, e)


FLOAT32 = [c for c in CASES if c[3] and c[0] in (
    "diff", "gradient_2d", "cross3", "kron", "convolve", "correlate_same", "polyval",
    "trapezoid", "trapezoid_x", "dstack", "insert_seq", "delete_seq", "rot90", "block",
    "select", "piecewise", "nansum", "nanmean", "nanvar", "nanmax", "nancum", "einsum_ell",
    "cumulative_sum", "gradient_coords", "r_", "einsum_sublist")]


@pytest.mark.parametrize("name, fn, args, order", FLOAT32, ids=_ids(FLOAT32))
def test_float32_kept(name, fn, args, order):
    args32 = tuple(np.asarray(a, np.float32) for a in args)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        expected = _flat(fn(np, *args32))
        got = _flat(fn(tnp, *args32))
    for e, g in zip(expected, got):
        assert_like_numpy(g, e, rtol=2e-5)


def _loss(fn, args):
    """sum(sin(out) * w) over the float outputs, with NaNs (the nan* inputs) kept away."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        outs = _flat(fn(np, *args))
    weights = [np.cos(np.arange(np.size(o)) + 0.5).reshape(np.shape(o)) for o in outs]

    def f(*a):
        total = 0.0
        for o, w in zip(_flat(fn(tnp, *a)), weights):
            total = total + tnp.sum(tnp.sin(o) * w)
        return total
    return f


GRAD_CASES = [c for c in CASES if c[3]]


@pytest.mark.parametrize("name, fn, args, order", GRAD_CASES, ids=_ids(GRAD_CASES))
def test_gradients(name, fn, args, order):
    # Finite differences need points away from kinks: the nan* inputs keep their NaNs
    # fixed (a closed-over mask) and the differentiated entries finite.
    if np.isnan(args[0]).any():
        mask = np.isnan(args[0])
        base = np.where(mask, 0.0, args[0])

        def g(m, x, *rest):
            return fn(m, m.where(mask, np.nan, x), *rest)
        f = _loss(g, (base,) + args[1:])
        args = (base,) + args[1:]
    else:
        f = _loss(fn, args)
    check_grads(f, args, order=order)


def test_interp_gradient_wrt_xp():
    check_grads(lambda xp: tnp.sum(tnp.interp(XQ + 0.05, xp, FP) ** 2), (XP,), order=1)


def test_errors():
    with pytest.raises(ValueError, match="at least one dimensional"):
        tnp.diff(np.float64(1.0))
    with pytest.raises(ValueError, match="non-negative"):
        tnp.diff(V, n=-1)
    with pytest.raises(ValueError, match="too small"):
        tnp.gradient(V[:1])
    with pytest.raises(ValueError, match="incompatible dimensions"):
        tnp.cross(V[:4], W)
    with pytest.raises(ValueError, match="cannot be empty"):
        tnp.convolve(V, V[:0])
    with pytest.raises(ValueError, match="mode"):
        tnp.correlate(V, W, mode="bad")
    with pytest.raises(ValueError, match="same length"):
        tnp.interp(XQ, XP, FP[:3])
    with pytest.raises(ValueError, match="same length as list"):
        tnp.select([V > 0], [V, V])
    with pytest.raises(TypeError, match="boolean"):
        tnp.select([V], [V])
    with pytest.raises(ValueError, match="1 or more"):
        tnp.hsplit(np.float64(1.0), 1)
    with pytest.raises(ValueError, match="3 or more"):
        tnp.dsplit(M, 2)
    with pytest.raises(IndexError, match="out of bounds"):
        tnp.insert(V, 9, 1.0)
    with pytest.raises(IndexError, match="out of bounds"):
        tnp.delete(V, [7])
    with pytest.raises(ValueError, match="different"):
        tnp.rot90(M, axes=(0, 0))
    with pytest.raises(ValueError, match="depths are mismatched"):
        tnp.block([[M], M])
    with pytest.raises(TypeError, match="tuple"):
        tnp.block((M, M))
    with pytest.raises(ValueError, match="All-NaN"):
        tnp.nanargmax(np.array([np.nan, np.nan]))
    with pytest.raises(ValueError, match="axis"):
        tnp.cumulative_sum(M)
    with pytest.raises(TypeError, match="concrete"):
        tj.make_ir(lambda x, i: tnp.delete(x, i))(V, np.int64(1))
    with pytest.raises(ValueError, match="ellipsis"):
        tnp.einsum("..i.,i", M, W)
    assert tnp.allclose(V, V + 1e-10) is True
    assert tnp.allclose(V, V + 1.0) is False


def test_jit_program():
    """Many of these functions in one compiled program and its gradient."""
    def f(x, y, p):
        out = {
            "diff": tnp.diff(x, prepend=0.0),
            "grad": tnp.gradient(x, 0.5),
            "cross": tnp.cross(y[:, :3], y[:, 1:]),
            "kron": tnp.kron(p, y),
            "conv": tnp.convolve(x, p, "same"),
            "corr": tnp.correlate(x, p),
            "interp": tnp.interp(x, XP, FP),
            "poly": tnp.polyval(p, x),
            "trap": tnp.trapezoid(y, axis=0),
            "csum": tnp.cumulative_sum(x, include_initial=True),
            "ins": tnp.insert(x, [1, 3], p[:2]),
            "del": tnp.delete(y, 1, axis=1),
            "rot": tnp.rot90(y, 3),
            "block": tnp.block([[y, y], [y, y]]),
            "r": tnp.r_[x, p],
            "sel": tnp.select([x < 0, x > 1], [x * x, tnp.sin(x)], 0.5),
            "pw": tnp.piecewise(x, [x < 0], [lambda t: -t, lambda t: t ** 2]),
            "nan": tnp.nanmean(tnp.where(x > 1.2, tnp.nan, x)),
            "nmax": tnp.nanmax(tnp.where(y > 1.2, tnp.nan, y), axis=0),
            "ein": tnp.einsum("...i,i->...", y, y[0]),
            "close": tnp.isclose(x, 0.0, atol=0.5),
        }
        return out

    x = rng.standard_normal(6)
    y = rng.standard_normal((3, 4))
    p = rng.standard_normal(3)
    expect = f(x, y, p)
    got = tj.jit(f)(x, y, p)
    for k in expect:
        np.testing.assert_allclose(got[k], expect[k], rtol=1e-12, atol=1e-12, err_msg=k)

    def loss(x, y, p):
        out = f(x, y, p)
        return sum(tnp.sum(tnp.sin(v) * (i + 1.0)) for i, v in enumerate(out.values())
                   if v.dtype != np.bool_)

    g = tj.jit(tj.grad(loss, argnums=(0, 1, 2)))(x, y, p)
    g_ref = tj.grad(loss, argnums=(0, 1, 2))(x, y, p)
    for a, b in zip(g, g_ref):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    check_grads(loss, (x, y, p), order=1, modes=("rev",))
