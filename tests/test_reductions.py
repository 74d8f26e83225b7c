"""Reductions and cumulative functions of `tracejit.numpy`: values, shapes and dtypes against
NumPy (traced and concrete), errors like NumPy's, and derivatives against finite differences
and hand derivations."""

import warnings

import numpy as np
import pytest
from conftest import assert_like_numpy, call_checked, checked_ir

import tracejit as tj
import tracejit.numpy as tnp
from tracejit.core import eval_ir
from tracejit.testing import check_grads


def run(f, *args):
    """Trace `f`, check its IR, evaluate the IR with NumPy (single output)."""
    ir = checked_ir(f, *args)
    (out,) = eval_ir(ir, list(args))
    return out


def grad_checked(f, *args):
    return call_checked(tj.grad(f), *args)


X3 = np.random.default_rng(0).standard_normal((2, 3, 4))

AXES = [None, 0, 1, -1, (0, 2), (-1, 0), (0, 1, 2), ()]
VALUE_REDUCTIONS = ["sum", "mean", "prod", "max", "min", "amax", "amin", "var", "std"]


# -- values, shapes and dtypes ---------------------------------------------------------------

@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("axis", AXES, ids=str)
@pytest.mark.parametrize("name", VALUE_REDUCTIONS)
def test_reduction_values_match_numpy(name, axis, keepdims):
    tfn, nfn = getattr(tnp, name), getattr(np, name)
    expected = nfn(X3, axis=axis, keepdims=keepdims)
    traced = run(lambda x: tfn(x, axis=axis, keepdims=keepdims), X3)
    assert_like_numpy(traced, expected)
    assert_like_numpy(tfn(X3, axis=axis, keepdims=keepdims), expected)  # concrete inputs


@pytest.mark.parametrize("name", VALUE_REDUCTIONS)
def test_reductions_of_0d_arrays(name):
    x = np.array(1.5)
    # NumPy's ufunc reductions accept axis 0 / -1 on 0-d arrays; mean, var and std do not.
    axes = (None, ()) if name in ("mean", "var", "std") else (None, 0, -1, ())
    for axis in axes:
        expected = getattr(np, name)(x, axis=axis)
        assert_like_numpy(run(lambda x, axis=axis: getattr(tnp, name)(x, axis=axis), x),
                          expected)
    assert_like_numpy(run(lambda x: getattr(tnp, name)(x, keepdims=True), x),
                      getattr(np, name)(x, keepdims=True))


@pytest.mark.parametrize("ddof", [0, 1, 2])
@pytest.mark.parametrize("axis", [None, 1, -1, (0, 2)], ids=str)
@pytest.mark.parametrize("name", ["var", "std"])
def test_var_std_ddof(name, axis, ddof):
    expected = getattr(np, name)(X3, axis=axis, ddof=ddof)
    assert_like_numpy(run(lambda x: getattr(tnp, name)(x, axis=axis, ddof=ddof), X3),
                      expected)


@pytest.mark.parametrize("ddof", [3, 4])
def test_var_with_ddof_at_least_n_divides_by_zero_like_numpy(ddof):
    x = np.array([1.0, 2.0, 4.0])
    c = np.array([[2.0, 2.0, 2.0], [1.0, 2.0, 4.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        assert np.isinf(np.var(x, ddof=ddof))  # NumPy divides by max(n - ddof, 0)
        for name in ("var", "std"):
            fn = getattr(tnp, name)
            assert_like_numpy(run(lambda x, fn=fn: fn(x, ddof=ddof), x),
                              getattr(np, name)(x, ddof=ddof))
            # 0 / 0 for constant rows
            assert_like_numpy(run(lambda c, fn=fn: fn(c, axis=1, ddof=ddof), c),
                              getattr(np, name)(c, axis=1, ddof=ddof))


DTYPE_CASES = [
    # (function, input dtype, kwargs)
    ("sum", np.int32, {}), ("sum", np.bool_, {}), ("sum", np.int8, {}), ("sum", np.uint8, {}),
    ("sum", np.float32, {}), ("sum", np.int32, {"dtype": np.float32}),
    ("sum", np.float64, {"dtype": np.float32}),
    ("prod", np.int32, {}), ("prod", np.bool_, {}), ("prod", np.float32, {}),
    ("mean", np.int32, {}), ("mean", np.bool_, {}), ("mean", np.float32, {}),
    ("mean", np.int64, {"dtype": np.float32}),
    ("var", np.int32, {}), ("var", np.float32, {}), ("std", np.int64, {}),
    ("std", np.float32, {}),
    ("max", np.int32, {}), ("max", np.bool_, {}), ("min", np.float32, {}),
    ("min", np.uint8, {}),
    ("cumsum", np.int32, {}), ("cumsum", np.bool_, {}), ("cumsum", np.float32, {}),
    ("cumsum", np.int32, {"dtype": np.float64}),
    ("cumprod", np.int32, {}), ("cumprod", np.float32, {}),
    ("argmax", np.float32, {}), ("argmin", np.int32, {}),
]


@pytest.mark.parametrize("name,dtype,kwargs", DTYPE_CASES,
                         ids=[f"{n}-{np.dtype(d).name}-{k}" for n, d, k in DTYPE_CASES])
@pytest.mark.parametrize("axis", [None, 1])
def test_reduction_dtypes_match_numpy(name, dtype, kwargs, axis):
    x = (np.arange(12).reshape(3, 4) % 5).astype(dtype)
    expected = getattr(np, name)(x, axis=axis, **kwargs)
    traced = run(lambda x: getattr(tnp, name)(x, axis=axis, **kwargs), x)
    assert_like_numpy(traced, expected, rtol=1e-6 if np.dtype(dtype) == np.float32 else 1e-12)
    concrete = getattr(tnp, name)(x, axis=axis, **kwargs)
    assert np.asarray(concrete).dtype == np.asarray(expected).dtype


def test_sum_int32_records_a_convert_to_int64():
    ir = checked_ir(lambda x: tnp.sum(x), np.ones(3, np.int32))
    assert "convert[new_dtype=i64]" in str(ir)
    assert ir.out_avals[0].dtype == np.int64


@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("axis", [None, 0, 1, -1, -3], ids=str)
@pytest.mark.parametrize("name", ["argmax", "argmin"])
def test_argmax_argmin_match_numpy(name, axis, keepdims):
    expected = getattr(np, name)(X3, axis=axis, keepdims=keepdims)
    assert_like_numpy(run(lambda x: getattr(tnp, name)(x, axis=axis, keepdims=keepdims), X3),
                      expected)


@pytest.mark.parametrize("name", ["argmax", "argmin"])
def test_argmax_argmin_ties_pick_the_first(name):
    x = np.array([[1.0, 3.0, 3.0, 1.0], [2.0, 2.0, 2.0, 2.0]])
    for axis in (None, 0, 1):
        assert_like_numpy(run(lambda x, axis=axis: getattr(tnp, name)(x, axis=axis), x),
                          getattr(np, name)(x, axis=axis))


def test_argmax_of_0d():
    x = np.array(2.0)
    assert_like_numpy(run(lambda x: tnp.argmax(x), x), np.argmax(x))
    assert_like_numpy(run(lambda x: tnp.argmin(x, axis=0), x), np.argmin(x, axis=0))


@pytest.mark.parametrize("axis", [None, 0, 1, -1, -2], ids=str)
@pytest.mark.parametrize("name", ["cumsum", "cumprod"])
def test_cumulative_match_numpy(name, axis):
    x = X3[:, :, :3] + 1.0
    expected = getattr(np, name)(x, axis=axis)
    assert_like_numpy(run(lambda x: getattr(tnp, name)(x, axis=axis), x), expected)
    assert_like_numpy(getattr(tnp, name)(x, axis=axis), expected)


@pytest.mark.parametrize("name", ["cumsum", "cumprod"])
def test_cumulative_of_0d_and_empty(name):
    x0 = np.array(2.5)
    assert_like_numpy(run(lambda x: getattr(tnp, name)(x), x0), getattr(np, name)(x0))
    e = np.zeros((2, 0))
    for axis in (None, 0, 1):
        assert_like_numpy(run(lambda x, axis=axis: getattr(tnp, name)(x, axis=axis), e),
                          getattr(np, name)(e, axis=axis))


# -- empty reductions ------------------------------------------------------------------------

def test_empty_sum_prod_are_identities():
    e = np.zeros((0, 3))
    for axis in (None, 0, 1):
        for name in ("sum", "prod"):
            assert_like_numpy(run(lambda x, n=name, a=axis: getattr(tnp, n)(x, axis=a), e),
                              getattr(np, name)(e, axis=axis))
    ei = np.zeros((0,), np.int32)
    assert_like_numpy(run(lambda x: tnp.sum(x), ei), np.sum(ei))


@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("name", ["any", "all"])
def test_empty_any_all_keep_dims_like_numpy(name, keepdims):
    e = np.zeros((0, 2))
    for axis in (None, 0, 1, (-2, 1)):
        f = lambda x, a=axis: getattr(tnp, name)(x, axis=a, keepdims=keepdims)
        expected = getattr(np, name)(e, axis=axis, keepdims=keepdims)
        assert_like_numpy(run(f, e), expected)
        assert_like_numpy(f(e), expected)


def test_empty_mean_and_var_are_nan_like_numpy():
    e = np.zeros((0, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        cases = [("mean", None), ("mean", 0), ("var", None), ("var", 0), ("std", 0)]
        for name, axis in cases:
            expected = getattr(np, name)(e, axis=axis)
            assert_like_numpy(run(lambda x, n=name, a=axis: getattr(tnp, n)(x, axis=a), e),
                              expected)
        # Reducing the non-empty axis of an empty array gives an empty result.
        assert_like_numpy(run(lambda x: tnp.mean(x, axis=1), e), np.mean(e, axis=1))


@pytest.mark.parametrize("name", ["max", "min", "amax", "amin"])
def test_max_min_of_empty_raise_value_error_like_numpy(name):
    e = np.zeros((0, 3))
    for axis in (None, 0, (0, 1)):
        with pytest.raises(ValueError):
            getattr(np, name)(e, axis=axis)
        with pytest.raises(ValueError, match="zero-size"):
            tj.make_ir(lambda x, a=axis: getattr(tnp, name)(x, axis=a))(e)
        with pytest.raises(ValueError, match="zero-size"):
            getattr(tnp, name)(e, axis=axis)
    # Along the non-empty axis it is fine (an empty result), as in NumPy.
    assert_like_numpy(run(lambda x: getattr(tnp, name)(x, axis=1), e),
                      getattr(np, name)(e, axis=1))
    # With `initial` there is an identity.
    assert_like_numpy(run(lambda x: getattr(tnp, name)(x, initial=5.0), e),
                      getattr(np, name)(e, initial=5.0))


def test_initial_is_cast_to_the_operand_dtype_like_numpy():
    xi = np.array([[1, 7], [2, 3]], np.int32)
    ei = np.zeros((0, 2), np.int32)
    cases = [
        (lambda m, x: m.max(x, initial=5.0), xi),
        (lambda m, x: m.max(x, axis=1, initial=5), xi),
        (lambda m, x: m.min(x, axis=0, initial=3), ei),
        (lambda m, x: m.min(x, axis=0, initial=3, keepdims=True), ei),
        (lambda m, x: m.max(x, initial=-1.5), np.zeros((2, 0))),
        (lambda m, x: m.sum(x, initial=5), xi),
        (lambda m, x: m.prod(x, axis=0, initial=2), xi),
    ]
    for fn, x in cases:
        assert_like_numpy(run(lambda x, fn=fn: fn(tnp, x), x), fn(np, x))


@pytest.mark.parametrize("name", ["argmax", "argmin"])
def test_argmax_argmin_of_empty_raise_value_error(name):
    e = np.zeros((0, 3))
    for axis in (None, 0):
        with pytest.raises(ValueError):
            getattr(np, name)(e, axis=axis)
        with pytest.raises(ValueError):
            tj.make_ir(lambda x, a=axis: getattr(tnp, name)(x, axis=a))(e)
    assert_like_numpy(run(lambda x: getattr(tnp, name)(x, axis=1), e),
                      getattr(np, name)(e, axis=1))


def test_bad_axes_raise_like_numpy():
    x = np.ones((2, 3))
    with pytest.raises(np.exceptions.AxisError):
        tj.make_ir(lambda x: tnp.sum(x, axis=2))(x)
    with pytest.raises(np.exceptions.AxisError):
        tj.make_ir(lambda x: tnp.max(x, axis=-3))(x)
    with pytest.raises(ValueError):
        tj.make_ir(lambda x: tnp.sum(x, axis=(0, -2)))(x)
    with pytest.raises(np.exceptions.AxisError):
        tj.make_ir(lambda x: tnp.cumsum(x, axis=2))(x)


# -- tracer methods and NumPy dispatch -------------------------------------------------------

def test_tracer_reduction_methods():
    x = X3
    assert_like_numpy(run(lambda x: x.sum(axis=0), x), x.sum(axis=0))
    assert_like_numpy(run(lambda x: x.sum(), x), x.sum())
    assert_like_numpy(run(lambda x: x.mean(axis=(0, 2), keepdims=True), x),
                      x.mean(axis=(0, 2), keepdims=True))
    assert_like_numpy(run(lambda x: x.max(axis=1), x), x.max(axis=1))
    assert_like_numpy(run(lambda x: x.min(-1, keepdims=True), x), x.min(-1, keepdims=True))
    assert_like_numpy(run(lambda x: x.prod(0), x), x.prod(0))
    assert_like_numpy(run(lambda x: x.var(ddof=1), x), x.var(ddof=1))
    assert_like_numpy(run(lambda x: x.argmax(axis=2), x), x.argmax(axis=2))


@pytest.mark.parametrize("kwargs", [{"axis": 0}, {}, {"axis": (0, 2), "keepdims": True}],
                         ids=str)
@pytest.mark.parametrize("name", ["sum", "mean", "max", "min", "prod", "var", "std",
                                  "cumsum", "argmax"])
def test_numpy_functions_record_the_same_ir(name, kwargs):
    if name in ("cumsum", "argmax") and "keepdims" in kwargs:
        kwargs = {"axis": 1}
    via_numpy = checked_ir(lambda x: getattr(np, name)(x, **kwargs), X3)
    via_tnp = checked_ir(lambda x: getattr(tnp, name)(x, **kwargs), X3)
    assert str(via_numpy) == str(via_tnp)
    assert via_tnp.eqns


def test_numpy_sum_axis0_ir_listing_matches_tnp_sum():
    a = checked_ir(lambda x: np.sum(x, axis=0), X3)
    b = checked_ir(lambda x: tnp.sum(x, axis=0), X3)
    assert str(a) == str(b)
    assert "reduce_sum[axes=(0,)]" in str(a)


# -- derivatives: finite differences ---------------------------------------------------------

RNG = np.random.default_rng(42)
XG = RNG.standard_normal((2, 3)) + 0.5


@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("axis", [None, 0, -1, (0, 1)], ids=str)
@pytest.mark.parametrize("name", ["sum", "mean", "prod", "max", "min", "amax", "amin", "var",
                                  "std"])
def test_reduction_grads(name, axis, keepdims):
    fn = getattr(tnp, name)
    w = np.asarray(np.cos(np.arange(np.asarray(np.sum(XG, axis=axis,
                                                      keepdims=keepdims)).size) + 1.0))
    out_shape = np.shape(np.sum(XG, axis=axis, keepdims=keepdims))

    def f(x):
        return tnp.sum(tnp.sin(fn(x, axis=axis, keepdims=keepdims)) * w.reshape(out_shape))
    checked_ir(f, XG)
    checked_ir(tj.grad(f), XG)
    check_grads(f, (XG,), order=2)
    # vector-valued (non-scalar) output too
    check_grads(lambda x: fn(x, axis=axis, keepdims=keepdims), (XG,), order=2)


@pytest.mark.parametrize("ddof", [0, 1])
@pytest.mark.parametrize("name", ["var", "std"])
def test_var_std_grads_with_ddof(name, ddof):
    check_grads(lambda x: getattr(tnp, name)(x, axis=1, ddof=ddof), (XG,), order=2)


@pytest.mark.parametrize("axis", [None, 0, -1], ids=str)
@pytest.mark.parametrize("name", ["cumsum", "cumprod"])
def test_cumulative_grads(name, axis):
    fn = getattr(tnp, name)
    check_grads(lambda x: fn(x, axis=axis), (XG,), order=2)
    f = lambda x: tnp.sum(tnp.sin(fn(x, axis=axis)))
    checked_ir(tj.grad(f), XG)
    check_grads(f, (XG,), order=2)


def test_prod_and_cumprod_grads_with_zeros_against_finite_differences():
    x = np.array([[1.5, 0.0, -2.0], [0.0, 0.0, 3.0]])
    check_grads(lambda x: tnp.prod(x, axis=1), (x,), order=2)
    check_grads(lambda x: tnp.prod(x), (x,), order=2)
    check_grads(lambda x: tnp.cumprod(x, axis=1), (x,), order=2)
    check_grads(lambda x: tnp.cumprod(x), (x,), order=2)


def test_float32_reduction_grads():
    x = XG.astype(np.float32)
    for name in ("sum", "mean", "prod", "max", "var", "std"):
        f = lambda x, n=name: getattr(tnp, n)(x, axis=0)
        assert run(f, x).dtype == np.float32
        check_grads(f, (x,), order=2)
        g = grad_checked(lambda x, n=name: tnp.sum(getattr(tnp, n)(x, axis=0)), x)
        assert g.dtype == np.float32


def test_argmax_output_has_no_derivative():
    x = np.array([[0.3, 1.2, -0.5], [2.0, -1.0, 0.1]])
    # argmax is piecewise constant: the derivative of x * argmax(x) is argmax(x).
    f = lambda x: tnp.sum(x * tnp.argmax(x, axis=1, keepdims=True))
    check_grads(f, (x,), order=2)
    np.testing.assert_array_equal(grad_checked(f, x),
                                  np.broadcast_to(np.argmax(x, axis=1)[:, None], x.shape))


# -- derivatives: hand derivations -----------------------------------------------------------

def _prod_of_others(x):
    return np.array([np.prod(np.delete(x, i)) for i in range(x.size)])


@pytest.mark.parametrize("x", [
    [1.5, -2.0, 3.0, 0.5],
    [1.5, 0.0, 3.0, 0.5],
    [0.0, 2.0, 0.0, 0.5],
    [0.0, 0.0, 0.0, 0.0],
    [4.0],
    [0.0],
], ids=str)
def test_prod_grad_is_exactly_the_product_of_the_others(x):
    x = np.array(x)
    g = grad_checked(lambda x: tnp.prod(x), x)
    np.testing.assert_array_equal(g, _prod_of_others(x))


def test_prod_grad_along_an_axis_with_zeros():
    x = np.array([[2.0, 0.0, 3.0], [0.0, 0.0, 5.0], [1.0, -1.0, 4.0]])
    g = grad_checked(lambda x: tnp.sum(tnp.prod(x, axis=1)), x)
    np.testing.assert_array_equal(g, np.stack([_prod_of_others(r) for r in x]))
    g0 = grad_checked(lambda x: tnp.sum(tnp.prod(x, axis=0)), x)
    np.testing.assert_array_equal(g0, np.stack([_prod_of_others(c) for c in x.T]).T)


def test_prod_hessian_with_a_zero_is_exact():
    x = np.array([1.0, 0.0, 2.0, 3.0])
    h = call_checked(tj.hessian(lambda x: tnp.prod(x)), x)
    expected = np.zeros((4, 4))
    for i in range(4):
        for j in range(4):
            if i != j:
                expected[i, j] = np.prod(np.delete(x, [i, j]))
    np.testing.assert_array_equal(h, expected)


def test_prod_of_empty_has_empty_gradient():
    e = np.zeros((0,))
    g = grad_checked(lambda x: tnp.prod(x), e)
    assert g.shape == (0,)


@pytest.mark.parametrize("reverse", [False, True])
def test_cumulative_primitives_differentiate_along_an_empty_axis(reverse):
    """The primitives take an empty scan axis (the front end never binds them so; direct
    binds and transforms may): derivatives are empty, not a slice error."""
    from tracejit.primitives import reductions as rd
    x, a = np.ones((5, 0)), np.full((5, 0), 0.5)
    _, t = call_checked(lambda x, t: tj.jvp(lambda x: rd.cumprod(x, 1, reverse), (x,), (t,)),
                        x, x)
    assert t.shape == (5, 0)
    g = grad_checked(lambda x: tnp.sum(rd.cumlinrec(a, x, 1, reverse)), x)
    assert g.shape == (5, 0)
    _, t = call_checked(lambda a, t: tj.jvp(lambda a: rd.cumlinrec(a, x, 1, reverse), (a,),
                                            (t,)), a, a)
    assert t.shape == (5, 0)


@pytest.mark.parametrize("x", [[1.0, 0.0, 2.0, 3.0], [0.0, 2.0, 0.0, -1.5],
                               [2.0, -1.0, 0.5, 4.0]], ids=str)
def test_cumprod_grad_with_zeros_matches_hand_derivation(x):
    x = np.array(x)
    n = x.size
    # sum_k cumprod(x)_k = sum_k prod_{j<=k} x_j  =>  d/dx_i = sum_{k>=i} prod_{j<=k, j!=i} x_j
    expected = np.array([sum(np.prod(np.delete(x[:k + 1], i)) for k in range(i, n))
                         for i in range(n)])
    g = grad_checked(lambda x: tnp.sum(tnp.cumprod(x)), x)
    np.testing.assert_allclose(g, expected, rtol=0, atol=0)
    # With weights, along an axis of a 2-d array.
    w = np.array([1.0, -2.0, 0.5, 3.0])
    X = np.stack([x, x[::-1]])
    gw = grad_checked(lambda X: tnp.sum(tnp.cumprod(X, axis=1) * w), X)
    for r in range(2):
        row = X[r]
        exp_r = [sum(w[k] * np.prod(np.delete(row[:k + 1], i)) for k in range(i, n))
                 for i in range(n)]
        np.testing.assert_allclose(gw[r], exp_r, rtol=1e-15, atol=0)


def test_cumprod_jacobian_with_a_zero_matches_hand_derivation():
    x = np.array([2.0, 0.0, 3.0, -1.5])
    n = x.size
    # J[i, j] = d cumprod(x)_i / dx_j = prod_{k <= i, k != j} x_k for j <= i, else 0
    expected = np.array([[np.prod(np.delete(x[:i + 1], j)) if j <= i else 0.0
                          for j in range(n)] for i in range(n)])
    np.testing.assert_array_equal(call_checked(tj.jacrev(lambda x: tnp.cumprod(x)), x), expected)
    np.testing.assert_array_equal(call_checked(tj.jacfwd(lambda x: tnp.cumprod(x)), x), expected)


def test_max_hessian_is_zero_even_with_ties():
    for x in ([1.0, 3.0, 3.0], [2.0, -1.0, 0.5]):
        h = call_checked(tj.hessian(lambda x: tnp.max(x)), np.array(x))
        np.testing.assert_array_equal(h, np.zeros((3, 3)))


def test_reduction_grads_of_0d_and_empty():
    z = np.array(1.5)
    for name in ("sum", "prod", "max", "min", "mean", "cumsum", "cumprod"):
        f = lambda x, n=name: tnp.sum(getattr(tnp, n)(x))
        assert grad_checked(f, z) == 1.0
        check_grads(lambda x, n=name: getattr(tnp, n)(x, axis=0), (z,), order=2)
    assert grad_checked(lambda x: tnp.var(x), z) == 0.0
    e = np.zeros((0, 3))
    for name in ("sum", "prod", "mean", "cumsum", "cumprod"):
        g = grad_checked(lambda x, n=name: tnp.sum(getattr(tnp, n)(x, axis=0)), e)
        assert g.shape == (0, 3) and g.dtype == np.float64
    for name in ("max", "min", "var"):
        g = grad_checked(lambda x, n=name: tnp.sum(getattr(tnp, n)(x, axis=1)), e)
        assert g.shape == (0, 3)


def test_max_grad_with_initial_and_sum_where():
    x = np.array([[1.0, -2.0, 3.0], [0.5, 1.0, -1.0]])
    # max(row, 2.0): the first row's maximum is x[0, 2]; the second row's is the initial.
    g = grad_checked(lambda x: tnp.sum(tnp.max(x, axis=1, initial=2.0)), x)
    np.testing.assert_array_equal(g, [[0.0, 0.0, 1.0], [0.0, 0.0, 0.0]])
    g = grad_checked(lambda x: tnp.sum(x * x, where=x > 0), x)
    np.testing.assert_array_equal(g, np.where(x > 0, 2 * x, 0.0))
    check_grads(lambda x: tnp.mean(tnp.sin(x), axis=1, where=x > 0), (x,), order=2)


def test_cumsum_grad_matches_hand_derivation():
    w = np.array([1.0, 2.0, -1.0, 0.5])
    x = np.array([0.3, -0.2, 1.0, 2.0])
    # d/dx_i sum_k w_k sum_{j<=k} x_j = sum_{k>=i} w_k
    expected = np.cumsum(w[::-1])[::-1]
    np.testing.assert_allclose(grad_checked(lambda x: tnp.sum(tnp.cumsum(x) * w), x), expected,
                               rtol=1e-15)


@pytest.mark.parametrize("name,x,expected", [
    ("max", [1.0, 3.0, 2.0, 3.0], [0.0, 0.5, 0.0, 0.5]),
    ("max", [5.0, 5.0, 5.0, 5.0], [0.25, 0.25, 0.25, 0.25]),
    ("max", [1.0, 4.0, 2.0, 3.0], [0.0, 1.0, 0.0, 0.0]),
    ("min", [1.0, 3.0, 1.0, 1.0], [1 / 3, 0.0, 1 / 3, 1 / 3]),
    ("amin", [-2.0, 3.0, -2.0, 0.0], [0.5, 0.0, 0.5, 0.0]),
    ("amax", [7.0], [1.0]),
])
def test_max_min_grads_split_ties_evenly(name, x, expected):
    g = grad_checked(lambda x: getattr(tnp, name)(x), np.array(x))
    np.testing.assert_allclose(g, expected, rtol=1e-15)


def test_max_min_grads_with_ties_along_an_axis():
    x = np.array([[1.0, 2.0, 2.0], [3.0, 3.0, 3.0], [0.0, -1.0, -1.0]])
    w = np.array([1.0, 2.0, 3.0])
    g = grad_checked(lambda x: tnp.sum(tnp.max(x, axis=1) * w), x)
    np.testing.assert_allclose(g, [[0, 0.5, 0.5], [2 / 3, 2 / 3, 2 / 3], [3, 0, 0]], rtol=1e-15)
    g = grad_checked(lambda x: tnp.sum(tnp.min(x, axis=0, keepdims=True)), x)
    np.testing.assert_allclose(g, [[0, 0, 0], [0, 0, 0], [1, 1, 1]], rtol=1e-15)
    g = grad_checked(lambda x: tnp.max(x, axis=(0, 1)), x)
    np.testing.assert_allclose(g, [[0, 0, 0], [1 / 3, 1 / 3, 1 / 3], [0, 0, 0]], rtol=1e-15)


def test_max_jvp_with_ties_is_the_mean_of_tied_tangents():
    x = np.array([2.0, 1.0, 2.0])
    t = np.array([4.0, 100.0, -1.0])
    checked_ir(lambda x, t: tj.jvp(lambda x: tnp.max(x), (x,), (t,)), x, t)
    _, dy = tj.jvp(lambda x: tnp.max(x), (x,), (t,))
    assert dy == pytest.approx(1.5, abs=0, rel=1e-15)


@pytest.mark.parametrize("ddof", [0, 1, 2])
def test_var_std_mean_grads_match_hand_derivation(ddof):
    x = np.array([0.5, -1.0, 2.0, 3.5, 0.0])
    n = x.size
    centered = x - x.mean()
    g_var = grad_checked(lambda x: tnp.var(x, ddof=ddof), x)
    np.testing.assert_allclose(g_var, 2 * centered / (n - ddof), rtol=1e-13)
    g_std = grad_checked(lambda x: tnp.std(x, ddof=ddof), x)
    np.testing.assert_allclose(g_std, centered / (n - ddof) / np.std(x, ddof=ddof), rtol=1e-13)
    g_mean = grad_checked(lambda x: tnp.mean(x), x)
    np.testing.assert_allclose(g_mean, np.full(n, 1 / n), rtol=1e-15)


def test_sum_grad_of_0d_and_keepdims():
    x0 = np.array(1.25)
    assert grad_checked(lambda x: tnp.sum(x), x0) == 1.0
    g = grad_checked(lambda x: tnp.sum(tnp.sum(x, axis=0, keepdims=True) ** 2), XG)
    np.testing.assert_allclose(g, np.broadcast_to(2 * XG.sum(axis=0), XG.shape), rtol=1e-14)
