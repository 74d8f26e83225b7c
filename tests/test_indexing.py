"""Indexing traced arrays (`t[...]`, take, take_along_axis): values against NumPy, errors,
and derivatives against finite differences and hand derivations.

Every function is traced (its IR checked) and the IR evaluated, so the traced code path,
not NumPy's own indexing, produces the values compared with NumPy.
"""

import numpy as np
import pytest
from conftest import checked_ir

import tracejit as tj
import tracejit.numpy as tnp
from tracejit import nn
from tracejit.core import eval_ir
from tracejit.testing import check_grads


def traced_call(f, *args):
    """Trace `f` at `args` (checking the IR), evaluate the IR on `args`, return the output
    and the output type the IR declares."""
    ir = checked_ir(f, *args)
    (out,) = eval_ir(ir, list(args))
    return np.asarray(out), ir.out_avals[0]


def assert_same_as_numpy(f, *args, expected):
    out, aval = traced_call(f, *args)
    expected = np.asarray(expected)
    assert aval.shape == expected.shape
    assert aval.dtype == expected.dtype
    assert out.shape == expected.shape
    assert out.dtype == expected.dtype
    np.testing.assert_array_equal(out, expected)


def check_derivatives(f, x, *rest):
    """check_grads (order 2) of `f(x, *rest)`, plus the IR checker on its JVP, VJP and
    grad IRs (w.r.t. `x`; `rest` are integer arguments, traced too)."""
    check_grads(f, (x,) + rest, order=2)
    out = np.asarray(f(x, *rest))  # NumPy's own evaluation: only the shape is used
    t = np.linspace(-1.0, 1.0, x.size).reshape(x.shape)
    ct = np.linspace(1.0, 2.0, out.size).reshape(out.shape)
    checked_ir(lambda x, *r: tj.jvp(lambda x: f(x, *r), (x,), (t,))[1], x, *rest)
    checked_ir(lambda x, *r: tj.vjp(lambda x: f(x, *r), x)[1](ct), x, *rest)
    checked_ir(lambda x, *r: tj.grad(lambda x: tnp.sum(tnp.sin(f(x, *r))))(x), x, *rest)


X_SHAPE = (3, 4, 5)

# Keys that NumPy applies to an array of shape X_SHAPE.
BASIC_KEYS = {
    "int": 1,
    "negative int": -1,
    "two ints": (1, -2),
    "three ints (0-d result)": (2, -1, 0),
    "slice": slice(1, 3),
    "slice with step": (slice(None), slice(0, 4, 2)),
    "negative step": slice(None, None, -1),
    "negative step with bounds": (slice(None), slice(3, 0, -2)),
    "negative step, out-of-range bounds": (slice(5, -10, -2),),
    "out-of-range start with negative step": (slice(10, None, -1),),
    "out-of-range bounds": (slice(-100, 100, 3),),
    "empty slice": (slice(2, 1),),
    "empty slice, negative step": (slice(0, 2, -1),),
    "steps on every axis": (slice(None, None, -1), slice(None, None, -2), slice(-2, None)),
    "None": None,
    "np.newaxis in the middle": (slice(None), np.newaxis, 0),
    "Ellipsis": Ellipsis,
    "Ellipsis then int": (Ellipsis, 1),
    "int, Ellipsis, int": (0, Ellipsis, 1),
    "Ellipsis then None": (Ellipsis, None),
    "slice, None, Ellipsis, int": (slice(-100, 100, 3), None, Ellipsis, 1),
    "numpy integer scalar": (np.int64(2), np.int32(-1)),
    "0-d integer array": (np.array(1),),
    "empty tuple": (),
}

ADVANCED_KEYS = {
    "list": ([0, 2],),
    "repeated list": ([0, 0, 1, 0],),
    "numpy array": (np.array([2, 1]),),
    "2-D array": (np.array([[0, -1], [1, 2]]),),
    "negative entries": ([-1, -3, 0],),
    "empty list": ([],),
    "list on axis 1": (slice(None), [0, 1, 3]),
    "list after Ellipsis": (Ellipsis, [0, -1]),
    "adjacent arrays": (slice(None), [0, -1], [1, 2]),
    "adjacent arrays, broadcast": (slice(None), [[0], [3]], [1, 2, 4]),
    "separated by a slice": ([0, 1], slice(None), [1, 2]),
    "int and array adjacent": (1, [0, 2]),
    "array and int adjacent": ([0, 2], 1),
    "int and array separated": (0, slice(None), [1, 2]),
    "array, int, array": ([0, 1], 1, [1, 2]),
    "separated by None": ([0, 1], None, [1, 2]),
    "None before adjacent arrays": (slice(None), None, [1, 2], [[0], [1]]),
    "slice, array, None": (slice(1, 3), [[0, 1]], None),
    "negative-step slice and array": (slice(None, None, -2), [2, 0, 2]),
    "broadcast row and column": ([[0], [0]], [[1, 1, 2]]),
}

MASK_KEYS = {
    "1-D mask": (np.array([True, False, True]),),
    "mask as a list": ([True, False, True],),
    "mask on axis 1": (1, np.array([True, False, True, True])),
    "2-D mask": (np.arange(12).reshape(3, 4) % 3 == 0,),
    "mask and integer array": ([True, False, True], [0, 1]),
    "all-false mask": (np.zeros(3, bool),),
}

ALL_KEYS = {**BASIC_KEYS, **ADVANCED_KEYS, **MASK_KEYS}


@pytest.mark.parametrize("key", list(ALL_KEYS.values()), ids=list(ALL_KEYS))
def test_getitem_matches_numpy(key):
    x = np.arange(60.0).reshape(X_SHAPE)
    assert_same_as_numpy(lambda x: x[key], x, expected=x[key])


@pytest.mark.parametrize("key", list(ALL_KEYS.values()), ids=list(ALL_KEYS))
def test_getitem_derivatives(key, rng):
    x = rng.standard_normal(X_SHAPE)
    # The square makes the second derivative nonzero (and repeated indices matter twice).
    check_derivatives(lambda x: x[key] * x[key], x)


@pytest.mark.parametrize("dtype", [np.float32, np.int32, np.int64, np.bool_])
def test_getitem_keeps_dtype(dtype):
    x = (np.arange(24).reshape(2, 3, 4) % 5).astype(dtype)
    key = (slice(None, None, -1), [0, 2, 2], 1)
    assert_same_as_numpy(lambda x: x[key], x, expected=x[key])


def test_getitem_of_a_0d_traced_array():
    x = np.float64(3.0)
    for key in [(), None, Ellipsis, (None, Ellipsis)]:
        out, aval = traced_call(lambda x, key=key: x[key], x)
        assert aval.shape == np.asarray(x)[key].shape
        np.testing.assert_array_equal(out, np.asarray(x)[key])


# -- NumPy's placement rule for advanced indices, with the shapes written out by hand ------

@pytest.mark.parametrize("key, shape", [
    # adjacent advanced indices: their broadcast shape replaces them in place
    ((slice(None), [0, 1], [1, 2], slice(None)), (3, 2, 6)),
    ((slice(None), slice(None), [[0], [1]], [1, 2, 3]), (3, 4, 2, 3)),
    ((slice(None), 0, [1, 2]), (3, 2, 6)),  # an int counts as an advanced index
    ((Ellipsis, [0, 1], [1, 2]), (3, 4, 2)),
    # separated advanced indices: their broadcast shape goes first
    (([0, 1], slice(None), [1, 2]), (2, 4, 6)),
    ((slice(None), [0, 1], slice(None), [1, 2]), (2, 3, 5)),
    ((slice(None), 0, slice(None), [1, 2]), (2, 3, 5)),
    (([0, 1], None, [1, 2]), (2, 1, 5, 6)),  # None separates too
])
def test_advanced_index_placement(key, shape):
    x = np.arange(3 * 4 * 5 * 6.0).reshape(3, 4, 5, 6)
    assert x[key].shape == shape  # the hand-written shape is NumPy's
    assert_same_as_numpy(lambda x: x[key], x, expected=x[key])


# -- integer index arrays that are traced (function arguments) -----------------------------

TRACED_INDEX_CASES = {
    "x[i]": (lambda x, i: x[i], np.array([2, -1, 0, 2])),
    "x[:, i]": (lambda x, i: x[:, i], np.array([3, -4, 1])),
    "x[i, :, i] (separated)": (lambda x, i: x[i, :, i], np.array([0, 2, -1])),
    "x[:, i, i] (adjacent)": (lambda x, i: x[:, i, i], np.array([0, 2, -1])),
    "x[i, 1:, None]": (lambda x, i: x[i, 1:, None], np.array([1, 1, -3])),
    "x[::-1, i]": (lambda x, i: x[::-1, i], np.array([[0, 1], [-1, 0]])),
    "x[i] with 0-d i": (lambda x, i: x[i], np.int64(-2)),
    "x[..., i] with int32 i": (lambda x, i: x[..., i], np.array([4, 0, -5], np.int32)),
    "x[[i[0], i[1]]] (list of traced ints)": (lambda x, i: x[[i[0], i[1]]], np.array([2, 0])),
    "x[i, [0, 1]] (traced and concrete)": (lambda x, i: x[i, [0, 1]], np.array([[2], [0]])),
}


@pytest.mark.parametrize("case_id", list(TRACED_INDEX_CASES))
def test_traced_integer_index_matches_numpy(case_id):
    f, i = TRACED_INDEX_CASES[case_id]
    x = np.arange(60.0).reshape(X_SHAPE)
    ir = checked_ir(f, x, i)
    assert len(ir.invars) == 2  # the index is an input of the IR, not a constant
    assert "gather" in str(ir)
    # on concrete arguments the same lambda is NumPy's own indexing
    assert_same_as_numpy(f, x, i, expected=f(x, i))


@pytest.mark.parametrize("case_id", list(TRACED_INDEX_CASES))
def test_traced_integer_index_derivatives(case_id, rng):
    f, i = TRACED_INDEX_CASES[case_id]
    x = rng.standard_normal(X_SHAPE)
    check_derivatives(lambda x, i: f(x, i) ** 2, x, i)


# -- gather's transpose is a scatter-add: repeated indices accumulate ----------------------

def test_grad_with_repeated_indices_accumulates_by_hand():
    # f(x) = w0 x0 + w1 x0 + w2 x1, so df/dx = [w0 + w1, w2, 0, 0].
    x = np.array([0.5, -1.0, 2.0, 3.0])
    w = np.array([1.0, 2.0, 4.0])
    expected = np.array([3.0, 4.0, 0.0, 0.0])
    g = tj.grad(lambda x: tnp.sum(x[[0, 0, 1]] * w))(x)
    np.testing.assert_array_equal(g, expected)
    # with the indices traced (an argument), and through vjp directly
    g = tj.grad(lambda x, i: tnp.sum(x[i] * w))(x, np.array([0, -4, 1]))
    np.testing.assert_array_equal(g, expected)
    _, f_vjp = tj.vjp(lambda x: x[[0, 0, 1]], x)
    (ct,) = f_vjp(w)
    np.testing.assert_array_equal(ct, expected)
    checked_ir(tj.grad(lambda x, i: tnp.sum(x[i] * w)), x, np.array([0, 0, 1]))


def test_grad_with_repeated_index_pairs_in_2d_by_hand():
    # f(x) = sum_k w_k x[r_k, c_k] with the pair (1, 2) used three times.
    x = np.arange(12.0).reshape(3, 4)
    r, c = np.array([1, 0, 1, -2]), np.array([2, 3, -2, 2])
    w = np.array([1.0, 10.0, 100.0, 1000.0])
    expected = np.zeros((3, 4))
    expected[1, 2] = 1.0 + 100.0 + 1000.0
    expected[0, 3] = 10.0
    g = tj.grad(lambda x, r, c: tnp.sum(x[r, c] * w))(x, r, c)
    np.testing.assert_array_equal(g, expected)


def test_second_derivative_with_repeated_indices_by_hand():
    # f(x) = x0^3 + x0^3 + x1^3: grad = [6 x0^2, 3 x1^2, 0], Hessian = diag(12 x0, 6 x1, 0).
    x = np.array([0.5, -2.0, 3.0])
    f = lambda x: tnp.sum(x[[0, 0, 1]] ** 3)
    np.testing.assert_allclose(tj.grad(f)(x), [1.5, 12.0, 0.0], rtol=1e-14)
    np.testing.assert_allclose(tj.hessian(f)(x), np.diag([6.0, -12.0, 0.0]), rtol=1e-14)


def test_jvp_of_gather_by_hand():
    x = np.array([1.0, 2.0, 3.0])
    t = np.array([10.0, 20.0, 30.0])
    y, ty = tj.jvp(lambda x: x[[2, 2, -3]] * x[0], (x,), (t,))
    np.testing.assert_allclose(y, [3.0, 3.0, 1.0])
    # d(x_k x_0) = t_k x_0 + x_k t_0
    np.testing.assert_allclose(ty, [30.0 + 30.0, 30.0 + 30.0, 10.0 + 10.0])


def test_grad_through_slices_and_none_by_hand():
    # f(x) = sum(x[::-2, None] * w): x[4], x[2], x[0] weighted by w0, w1, w2.
    x = np.arange(5.0)
    w = np.array([[1.0], [2.0], [3.0]])
    g = tj.grad(lambda x: tnp.sum(x[::-2, None] * w))(x)
    np.testing.assert_array_equal(g, [3.0, 0.0, 2.0, 0.0, 1.0])


# -- errors ----------------------------------------------------------------------------------

@pytest.mark.parametrize("make_mask", [
    lambda x, m: x > 0,
    lambda x, m: m,
    lambda x, m: tnp.logical_not(m)[0],
], ids=["comparison", "argument", "derived from argument"])
def test_traced_boolean_mask_raises(make_mask):
    x = np.arange(12.0).reshape(3, 4) - 5
    m = np.arange(12).reshape(3, 4) % 2 == 0
    with pytest.raises(IndexError, match=r"shape would depend on traced values"):
        tj.make_ir(lambda x, m: x[make_mask(x, m)])(x, m)


@pytest.mark.parametrize("f", [
    lambda x: tnp.nonzero(x > 0),
    lambda x: np.nonzero(x),
    lambda x: x.nonzero(),
    lambda x: tnp.where(x > 0),
], ids=["tnp.nonzero", "np.nonzero", "method", "one-argument where"])
def test_nonzero_of_a_traced_array_raises(f):
    with pytest.raises(ValueError, match=r"shape would depend on traced values"):
        tj.make_ir(f)(np.arange(4.0) - 1)


def test_traced_boolean_mask_error_names_the_user_line():
    x = np.arange(4.0)
    with pytest.raises(IndexError, match="test_indexing.py"):
        tj.grad(lambda x: tnp.sum(x[x > 1.0]))(x)


@pytest.mark.parametrize("key", [
    3, -4, (0, 4), (Ellipsis, -5), ([0, 3],), ([0, -4],), (slice(None), [1, 4]),
    (np.array([[0], [7]]),),
], ids=["int", "negative int", "second axis", "after Ellipsis", "array", "negative array",
        "array on axis 1", "2-D array"])
def test_out_of_bounds_concrete_index_raises_index_error(key):
    x = np.zeros((3, 4))
    with pytest.raises(IndexError):
        x[key]  # NumPy agrees
    with pytest.raises(IndexError, match="out of bounds"):
        tj.make_ir(lambda x: x[key])(x)


@pytest.mark.parametrize("key", [1.0, (np.array([1.0]),), (0, 0, 0), (Ellipsis, 0, Ellipsis)],
                         ids=["float", "float array", "too many", "two ellipses"])
def test_invalid_index_raises_index_error(key):
    with pytest.raises(IndexError):
        tj.make_ir(lambda x: x[key])(np.zeros((3, 4)))


def test_traced_float_index_array_raises_index_error():
    with pytest.raises(IndexError, match="integer"):
        tj.make_ir(lambda x, i: x[i])(np.zeros(3), np.array([0.0, 1.0]))


@pytest.mark.parametrize("key", [0, (slice(None), 1), ([0, 1],), Ellipsis])
def test_item_assignment_on_a_tracer_raises_type_error(key):
    def f(x):
        x[key] = 1.0
        return x

    with pytest.raises(TypeError, match="immutable"):
        tj.make_ir(f)(np.zeros((3, 4)))
    with pytest.raises(TypeError):
        tj.grad(lambda x: tnp.sum(f(x)))(np.zeros((3, 4)))


# -- take --------------------------------------------------------------------------------

TAKE_CASES = {
    "axis None": (np.array([5, -1, 0, 5]), None),
    "axis None, 2-D indices": (np.array([[59, 1], [-60, 7]]), None),
    "axis 0": (np.array([2, 0, -1]), 0),
    "axis 1": (np.array([3, -1, 0, 3]), 1),
    "axis -1": (np.array([[4, 1], [0, 0]]), -1),
    "scalar index": (2, 1),
    "list index": ([1, 0, 1], 2),
}


@pytest.mark.parametrize("case", list(TAKE_CASES))
def test_take_matches_numpy(case):
    idx, axis = TAKE_CASES[case]
    x = np.arange(60.0).reshape(X_SHAPE)
    expected = np.take(x, idx, axis=axis)
    assert_same_as_numpy(lambda x: tnp.take(x, idx, axis=axis), x, expected=expected)
    # NumPy's function and the method dispatch to the same code on a tracer
    assert_same_as_numpy(lambda x: np.take(x, idx, axis=axis), x, expected=expected)
    assert_same_as_numpy(lambda x: x.take(idx, axis=axis), x, expected=expected)
    if not isinstance(idx, (int, list)):  # the indices traced too
        assert_same_as_numpy(lambda x, i: tnp.take(x, i, axis=axis), x, idx,
                             expected=expected)


@pytest.mark.parametrize("case", list(TAKE_CASES))
def test_take_derivatives(case, rng):
    idx, axis = TAKE_CASES[case]
    x = rng.standard_normal(X_SHAPE)
    check_derivatives(lambda x: tnp.take(x, idx, axis=axis) ** 2, x)
    if not isinstance(idx, (int, list)):
        check_derivatives(lambda x, i: tnp.take(x, i, axis=axis) ** 2, x, idx)


def test_take_of_a_concrete_array_with_traced_indices():
    table = np.arange(12.0).reshape(4, 3)
    i = np.array([3, -1, 0])
    assert_same_as_numpy(lambda i: tnp.take(table, i, axis=0), i, expected=table[i])


def test_take_grad_accumulates_by_hand():
    x = np.arange(6.0).reshape(2, 3)
    w = np.array([1.0, 2.0, 4.0, 8.0])
    g = tj.grad(lambda x, i: tnp.sum(tnp.take(x, i) * w))(x, np.array([4, 4, -2, 0]))
    np.testing.assert_array_equal(g, [[8.0, 0.0, 0.0], [0.0, 7.0, 0.0]])


def test_take_out_of_bounds_raises():
    with pytest.raises(IndexError, match="out of bounds"):
        tj.make_ir(lambda x: tnp.take(x, [12]))(np.zeros((3, 4)))
    with pytest.raises(IndexError, match="out of bounds"):
        tj.make_ir(lambda x: tnp.take(x, [0, -4], axis=0))(np.zeros((3, 4)))


# -- take_along_axis -----------------------------------------------------------------------

TAL_X = np.array([[3.0, 9.0, 1.0, 4.0], [7.0, 2.0, 8.0, 0.0], [5.0, 6.0, 5.0, 1.0]])
TAL_CASES = {
    "argmax, axis 1": (np.argmax(TAL_X, axis=1)[:, None], 1),
    "argmin, axis 0": (np.argmin(TAL_X, axis=0)[None, :], 0),
    "argsort, axis 1": (np.argsort(TAL_X, axis=1), 1),
    "broadcast along axis 0": (np.array([[0, 2, 1, 2]]), 0),
    "negative indices, axis -1": (np.array([[-1], [0], [-4]]), -1),
    "axis None": (np.array([0, 11, 1, -1]), None),
}


@pytest.mark.parametrize("case", list(TAL_CASES))
def test_take_along_axis_matches_numpy(case):
    idx, axis = TAL_CASES[case]
    x = TAL_X
    expected = np.take_along_axis(x, idx, axis=axis)
    assert_same_as_numpy(lambda x: tnp.take_along_axis(x, idx, axis=axis), x,
                         expected=expected)
    assert_same_as_numpy(lambda x, i: tnp.take_along_axis(x, i, axis=axis), x, idx,
                         expected=expected)
    assert_same_as_numpy(lambda x: np.take_along_axis(x, idx, axis=axis), x,
                         expected=expected)


@pytest.mark.parametrize("case", list(TAL_CASES))
def test_take_along_axis_derivatives(case, rng):
    idx, axis = TAL_CASES[case]
    x = rng.standard_normal(TAL_X.shape)
    check_derivatives(lambda x, i: tnp.take_along_axis(x, i, axis=axis) ** 2, x, idx)


def test_take_along_axis_with_traced_argmax_is_the_max():
    x = np.array([[3.0, 9.0, 1.0], [7.0, 2.0, 8.0], [5.0, 6.0, 4.0], [0.0, -1.0, -2.0]])
    f = lambda x: tnp.take_along_axis(x, tnp.argmax(x, axis=1, keepdims=True), axis=1)
    assert_same_as_numpy(f, x, expected=np.max(x, axis=1, keepdims=True))
    # d/dx of sum(max_j x_ij ** 2): 2 x at each row's argmax, 0 elsewhere
    g = tj.grad(lambda x: tnp.sum(f(x) ** 2))(x)
    expected = np.zeros_like(x)
    expected[np.arange(4), np.argmax(x, axis=1)] = 2 * np.max(x, axis=1)
    np.testing.assert_array_equal(g, expected)
    check_derivatives(lambda x: f(x) ** 3, x)


def _softmax_cross_entropy(logits, labels):
    lse = nn.logsumexp(logits, axis=1, keepdims=True)
    picked = tnp.take_along_axis(logits, labels[:, None], axis=1)
    return tnp.mean(lse - picked)


def test_softmax_cross_entropy_value_and_grad_by_hand(rng):
    logits = rng.standard_normal((5, 4))
    labels = np.array([3, 0, 0, 2, 3])
    n = logits.shape[0]
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    onehot = np.eye(4)[labels]
    value, g = tj.value_and_grad(_softmax_cross_entropy)(logits, labels)
    np.testing.assert_allclose(value, -np.mean(np.log(p[np.arange(n), labels])), rtol=1e-12)
    np.testing.assert_allclose(g, (p - onehot) / n, rtol=1e-10, atol=1e-14)
    checked_ir(tj.grad(_softmax_cross_entropy), logits, labels)


def test_softmax_cross_entropy_derivatives(rng):
    logits = rng.standard_normal((5, 4))
    labels = np.array([3, 0, 0, 2, 3])
    check_derivatives(_softmax_cross_entropy, logits, labels)


def test_take_along_axis_errors():
    x = np.zeros((3, 4))
    with pytest.raises(ValueError, match="same number of dimensions"):
        tj.make_ir(lambda x: tnp.take_along_axis(x, np.array([0, 1]), axis=1))(x)
    with pytest.raises(IndexError, match="out of bounds"):
        tj.make_ir(lambda x: tnp.take_along_axis(x, np.array([[4]]), axis=1))(x)
