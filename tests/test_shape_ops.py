"""Shape manipulation, array creation and traced-array attributes of `tracejit.numpy`:
values, shapes and dtypes against NumPy, and derivatives against finite differences."""

import numpy as np
import pytest
from conftest import assert_like_numpy, call_checked, checked_ir

import tracejit as tj
import tracejit.numpy as tnp
from tracejit.core import Tracer, eval_ir
from tracejit.testing import check_grads


def run_all(f, *args):
    """Trace `f`, check its IR, evaluate the IR with NumPy: the list of flat outputs."""
    ir = checked_ir(f, *args)
    return eval_ir(ir, list(args))


def run(f, *args):
    (out,) = run_all(f, *args)
    return out


def _flat(out):
    return list(out) if isinstance(out, (list, tuple)) else [out]


def scalar_loss(op, x):
    """sum(sin(op(x)) * w) with fixed weights w for every output of op."""
    outs = _flat(op(np, x))
    weights = [np.cos(np.arange(np.size(o)) + 0.5).reshape(np.shape(o)) for o in outs]

    def f(x):
        return sum(tnp.sum(tnp.sin(o) * w) for o, w in zip(_flat(op(tnp, x)), weights))
    return f


A = np.arange(1.0, 25.0).reshape(2, 3, 4) / 7.0
M = np.arange(1.0, 13.0).reshape(3, 4) / 5.0 - 1.0
S = np.arange(1.0, 10.0).reshape(3, 3) / 3.0
V = np.array([0.5, -1.0, 2.0, 1.5, -0.25])
Z = np.array(1.75)
E = np.zeros((0, 3))

# (id, op taking the module (np or tnp) and one array, operand)
CASES = [
    ("reshape", lambda m, x: m.reshape(x, (4, 6)), A),
    ("reshape-1", lambda m, x: m.reshape(x, (3, -1)), A),
    ("reshape-1-first", lambda m, x: m.reshape(x, (-1, 2, 2)), A),
    ("reshape-flat", lambda m, x: m.reshape(x, -1), A),
    ("reshape-0d", lambda m, x: m.reshape(x, (1, 1)), Z),
    ("reshape-to-0d", lambda m, x: m.reshape(x, ()), np.array([2.5])),
    ("reshape-empty", lambda m, x: m.reshape(x, (3, 0, 2)), np.zeros((0, 6))),
    ("reshape-empty-1", lambda m, x: m.reshape(x, (-1, 3)), np.zeros((0, 6))),
    ("ravel", lambda m, x: m.ravel(x), A),
    ("ravel-0d", lambda m, x: m.ravel(x), Z),
    ("transpose", lambda m, x: m.transpose(x), A),
    ("transpose-axes", lambda m, x: m.transpose(x, (1, 0, 2)), A),
    ("transpose-neg-axes", lambda m, x: m.transpose(x, (-1, 0, -2)), A),
    ("transpose-0d", lambda m, x: m.transpose(x), Z),
    ("swapaxes", lambda m, x: m.swapaxes(x, 0, -1), A),
    ("swapaxes-same", lambda m, x: m.swapaxes(x, 1, 1), A),
    ("moveaxis", lambda m, x: m.moveaxis(x, 0, -1), A),
    ("moveaxis-multi", lambda m, x: m.moveaxis(x, [0, 1], [-1, -3]), A),
    ("moveaxis-neg", lambda m, x: m.moveaxis(x, -1, 1), A),
    ("expand_dims", lambda m, x: m.expand_dims(x, 0), M),
    ("expand_dims-neg", lambda m, x: m.expand_dims(x, -1), M),
    ("expand_dims-tuple", lambda m, x: m.expand_dims(x, (0, 3)), M),
    ("expand_dims-0d", lambda m, x: m.expand_dims(x, 0), Z),
    ("squeeze", lambda m, x: m.squeeze(x), A.reshape(1, 6, 1, 4)),
    ("squeeze-axis", lambda m, x: m.squeeze(x, axis=2), A.reshape(1, 6, 1, 4)),
    ("squeeze-neg-tuple", lambda m, x: m.squeeze(x, axis=(0, -2)), A.reshape(1, 6, 1, 4)),
    ("squeeze-to-0d", lambda m, x: m.squeeze(x), np.array([[3.0]])),
    ("broadcast_to", lambda m, x: m.broadcast_to(x, (2, 3, 5)), V),
    ("broadcast_to-middle", lambda m, x: m.broadcast_to(x, (2, 3, 4)), M[:, :1]),
    ("broadcast_to-0d", lambda m, x: m.broadcast_to(x, (2, 2)), Z),
    ("broadcast_to-same", lambda m, x: m.broadcast_to(x, M.shape), M),
    ("broadcast_arrays", lambda m, x: m.broadcast_arrays(x, np.ones((2, 1, 1))), M[:, :1]),
    ("broadcast_arrays-0d", lambda m, x: m.broadcast_arrays(np.ones(3), x), Z),
    ("concatenate", lambda m, x: m.concatenate([x, 2 * x], axis=0), M),
    ("concatenate-axis1", lambda m, x: m.concatenate([x, x[:, :1], x], axis=1), M),
    ("concatenate-neg", lambda m, x: m.concatenate([x, np.ones((2, 3, 1))], axis=-1), A),
    ("concatenate-none", lambda m, x: m.concatenate([x, np.ones(2)], axis=None), M),
    ("concatenate-empty-part", lambda m, x: m.concatenate([np.zeros((0, 4)), x]), M),
    ("concatenate-one", lambda m, x: m.concatenate([x]), M),
    ("stack", lambda m, x: m.stack([x, x[::-1], x]), M),
    ("stack-axis1", lambda m, x: m.stack([x, np.ones((3, 4))], axis=1), M),
    ("stack-neg", lambda m, x: m.stack([x, x * x], axis=-1), M),
    ("stack-0d", lambda m, x: m.stack([x, x]), Z),
    ("hstack-1d", lambda m, x: m.hstack([x, np.ones(2), x]), V),
    ("hstack-2d", lambda m, x: m.hstack([x, x[:, :2]]), M),
    ("hstack-0d", lambda m, x: m.hstack([x, x]), Z),
    ("vstack-1d", lambda m, x: m.vstack([x, 2 * x]), V),
    ("vstack-2d", lambda m, x: m.vstack([x, x[:1]]), M),
    ("split", lambda m, x: m.split(x, 3), M),
    ("split-indices", lambda m, x: m.split(x, [1, 3], axis=1), M),
    ("split-neg-axis", lambda m, x: m.split(x, 2, axis=-1), M),
    ("split-indices-out-of-range", lambda m, x: m.split(x, [2, 10]), V),
    ("flip", lambda m, x: m.flip(x), A),
    ("flip-axis", lambda m, x: m.flip(x, 1), A),
    ("flip-tuple", lambda m, x: m.flip(x, (0, -1)), A),
    ("flip-0d", lambda m, x: m.flip(x), Z),
    ("roll", lambda m, x: m.roll(x, 2), V),
    ("roll-neg", lambda m, x: m.roll(x, -1, axis=1), M),
    ("roll-flat-2d", lambda m, x: m.roll(x, 5), M),
    ("roll-big", lambda m, x: m.roll(x, 13, axis=0), V),
    ("roll-multi", lambda m, x: m.roll(x, (1, -2), axis=(0, 2)), A),
    ("roll-zero", lambda m, x: m.roll(x, 0), V),
    ("tile", lambda m, x: m.tile(x, 2), M),
    ("tile-tuple", lambda m, x: m.tile(x, (2, 1)), M),
    ("tile-more-dims", lambda m, x: m.tile(x, (2, 1, 3)), M),
    ("tile-0d", lambda m, x: m.tile(x, (2, 3)), Z),
    ("repeat", lambda m, x: m.repeat(x, 2), M),
    ("repeat-axis", lambda m, x: m.repeat(x, 3, axis=1), M),
    ("repeat-array", lambda m, x: m.repeat(x, [1, 0, 2], axis=0), M),
    ("repeat-neg-axis", lambda m, x: m.repeat(x, 2, axis=-1), A),
    ("pad", lambda m, x: m.pad(x, 1), M),
    ("pad-widths", lambda m, x: m.pad(x, ((1, 0), (2, 3))), M),
    ("pad-value", lambda m, x: m.pad(x, (2, 1), constant_values=3.5), V),
    ("pad-values-per-side", lambda m, x: m.pad(x, 1, constant_values=((1, 2), (3, 4))), M),
    ("pad-mode", lambda m, x: m.pad(x, [(0, 1), (1, 0), (0, 0)], mode="constant"), A),
    ("diag-1d", lambda m, x: m.diag(x), V),
    ("diag-1d-k", lambda m, x: m.diag(x, 2), V),
    ("diag-1d-neg-k", lambda m, x: m.diag(x, -1), V),
    ("diag-2d", lambda m, x: m.diag(x), S),
    ("diag-2d-k", lambda m, x: m.diag(x, 1), M),
    ("diag-2d-neg-k", lambda m, x: m.diag(x, -2), M),
    ("diag-2d-k-out", lambda m, x: m.diag(x, 5), M),
    ("diag-2d-wide-neg", lambda m, x: m.diag(x.T, -1), M),
    ("trace", lambda m, x: m.trace(x), S),
    ("trace-offset", lambda m, x: m.trace(x, 1), M),
    ("trace-neg-offset", lambda m, x: m.trace(x, -1), M),
    ("trace-3d", lambda m, x: m.trace(x, 0, 0, 2), A),
    ("trace-3d-neg-axes", lambda m, x: m.trace(x, 1, -1, -2), A),
    ("triu", lambda m, x: m.triu(x), M),
    ("triu-k", lambda m, x: m.triu(x, 1), M),
    ("triu-neg-k", lambda m, x: m.triu(x, -1), M),
    ("tril", lambda m, x: m.tril(x), M),
    ("tril-k", lambda m, x: m.tril(x, 2), M),
    ("tril-neg-k", lambda m, x: m.tril(x, -1), S),
    ("tril-batch", lambda m, x: m.tril(x), A),
    ("triu-batch", lambda m, x: m.triu(x, 1), A),
    ("tril-1d", lambda m, x: m.tril(x), V),
    ("triu-1d-k", lambda m, x: m.triu(x, -1), V),
    ("roll-shifts-on-one-axis", lambda m, x: m.roll(x, (1, 2), axis=0), M),
    ("roll-numpy-ints", lambda m, x: m.roll(x, np.int64(2), axis=np.int64(1)), M),
    # empty operands or results
    ("flip-empty", lambda m, x: m.flip(x), E),
    ("roll-empty", lambda m, x: m.roll(x, 1, axis=0), E),
    ("roll-empty-flat", lambda m, x: m.roll(x, 1), E),
    ("transpose-empty", lambda m, x: m.transpose(x), E),
    ("tile-zero-reps", lambda m, x: m.tile(x, (0, 2)), M),
    ("tile-empty", lambda m, x: m.tile(x, 2), E),
    ("repeat-zero", lambda m, x: m.repeat(x, 0, axis=1), M),
    ("repeat-empty", lambda m, x: m.repeat(x, 2), E),
    ("pad-empty", lambda m, x: m.pad(x, 1), E),
    ("pad-zero-width", lambda m, x: m.pad(x, 0), M),
    ("diag-empty-1d", lambda m, x: m.diag(x, 1), np.zeros(0)),
    ("diag-empty-2d", lambda m, x: m.diag(x), E),
    ("trace-empty", lambda m, x: m.trace(x), E),
    ("tril-empty", lambda m, x: m.tril(x), E),
    ("squeeze-empty", lambda m, x: m.squeeze(x), np.zeros((0, 1))),
    ("concatenate-all-empty", lambda m, x: m.concatenate([x, x]), E),
    ("concatenate-empty-axis1", lambda m, x: m.concatenate([x, x], axis=1), E),
    ("stack-empty", lambda m, x: m.stack([x, x], axis=1), E),
    ("split-empty", lambda m, x: m.split(x, 3, axis=1), E),
    ("split-negative-indices", lambda m, x: m.split(x, [-2, -1]), V),
    ("split-decreasing-indices", lambda m, x: m.split(x, [3, 1]), V),
    ("broadcast_to-zero-dim", lambda m, x: m.broadcast_to(x, (0, 5)), V),
    ("broadcast_to-empty", lambda m, x: m.broadcast_to(x, (2, 0, 3)), E),
    ("hstack-empty-part", lambda m, x: m.hstack([x, np.zeros(0)]), V),
]
IDS = [c[0] for c in CASES]


@pytest.mark.parametrize("name,op,x", CASES, ids=IDS)
def test_values_match_numpy(name, op, x):
    expected = _flat(op(np, x))
    traced = run_all(lambda x: op(tnp, x), x)
    assert len(traced) == len(expected)
    for t, e in zip(traced, expected):
        assert_like_numpy(t, e)
    for c, e in zip(_flat(op(tnp, x)), expected):  # concrete inputs
        assert_like_numpy(c, e)


@pytest.mark.parametrize("name,op,x", [c for c in CASES if c[2].size], ids=[
    c[0] for c in CASES if c[2].size])
def test_grads(name, op, x):
    f = scalar_loss(op, x)
    checked_ir(tj.grad(f), x)
    check_grads(f, (x,), order=2)


VECTOR_CASES = ["reshape-1", "transpose-axes", "moveaxis-multi", "concatenate-axis1",
                "split-indices", "roll-multi", "tile-tuple", "repeat-array", "pad-value",
                "diag-1d-k", "diag-2d-k", "trace-3d", "triu-neg-k", "broadcast_arrays"]


@pytest.mark.parametrize("name", VECTOR_CASES)
def test_vector_valued_grads(name):
    _, op, x = CASES[IDS.index(name)]
    check_grads(lambda x: op(tnp, x), (x,), order=2)


@pytest.mark.parametrize("dtype", [np.int32, np.bool_, np.float32])
def test_shape_ops_keep_dtype(dtype):
    x = (np.arange(12).reshape(3, 4) % 3).astype(dtype)
    for name in ["reshape-1", "transpose", "flip-axis", "roll-neg", "tile-tuple",
                 "repeat-axis", "pad-widths", "diag-2d-k", "tril", "split-indices",
                 "concatenate-axis1", "stack"]:
        _, op, _ = CASES[IDS.index(name)]
        expected = _flat(op(np, x))
        for t, e in zip(run_all(lambda x, op=op: op(tnp, x), x), expected):
            assert_like_numpy(t, e)


NON_FLOAT_CASES = [
    ("diag-bool", lambda m, x: m.diag(x > 2), V),
    ("diag-2d-bool", lambda m, x: m.diag(x > 2, -1), M),
    ("pad-bool", lambda m, x: m.pad(x > 2, 1), V),
    ("pad-bool-value", lambda m, x: m.pad(x > 2, 1, constant_values=True), V),
    ("pad-int-float-value", lambda m, x: m.pad(x.astype(np.int32), 1, constant_values=2.7), V),
    ("tril-bool", lambda m, x: m.tril(x > 2), M),
    ("repeat-bool", lambda m, x: m.repeat(x > 2, [1, 2, 0, 1, 1]), V),
    ("trace-int8", lambda m, x: m.trace(x.astype(np.int8)), M),
    ("trace-uint8", lambda m, x: m.trace(x.astype(np.uint8)), M),
    ("trace-bool", lambda m, x: m.trace(x > 2), M),
    ("trace-float32", lambda m, x: m.trace(x.astype(np.float32)), M),
    ("trace-dtype", lambda m, x: m.trace(x, dtype=np.int32), M * 3),
    ("stack-int-bool", lambda m, x: m.stack([x.astype(np.int16), x > 0]), V),
]


@pytest.mark.parametrize("name,op,x", NON_FLOAT_CASES, ids=[c[0] for c in NON_FLOAT_CASES])
def test_non_float_values_match_numpy(name, op, x):
    assert_like_numpy(run(lambda x: op(tnp, x), x), op(np, x))


def test_float32_grads():
    x = M.astype(np.float32)
    for name in ["roll-neg", "pad-value", "tril", "diag-2d-k", "tile-tuple", "split"]:
        _, op, _ = CASES[IDS.index(name)]
        f = lambda x, op=op: tnp.sum(tnp.sin(_flat(op(tnp, x))[0]))
        check_grads(f, (x,), order=2)
        assert call_checked(tj.grad(f), x).dtype == np.float32


def test_concatenate_promotes_dtypes_like_numpy():
    cases = [(np.ones(2, np.int32), np.ones(3, np.float32)),
             (np.ones(2, np.int32), np.ones(3, np.int64)),
             (np.ones(2, np.bool_), np.ones(3, np.int8)),
             (np.ones(2, np.float32), np.ones(3, np.float32))]
    for a, b in cases:
        assert_like_numpy(run(lambda a, b: tnp.concatenate([a, b]), a, b),
                          np.concatenate([a, b]))
        assert_like_numpy(run(lambda a, b: tnp.stack([a[:1], b[:1]]), a, b),
                          np.stack([a[:1], b[:1]]))
    a, b = np.ones(2, np.int32), np.ones(3, np.int32)
    assert_like_numpy(run(lambda a, b: tnp.concatenate([a, b], dtype=np.float32), a, b),
                      np.concatenate([a, b], dtype=np.float32))


def test_pad_with_traced_constant_value_has_its_gradient():
    x = np.array([1.0, 2.0])
    f = lambda x, c: tnp.sum(tnp.pad(x, (1, 2), constant_values=c) * np.arange(1.0, 6.0))
    assert run(lambda x, c: tnp.pad(x, (1, 2), constant_values=c), x, np.array(9.0)).tolist() \
        == [9.0, 1.0, 2.0, 9.0, 9.0]
    gx, gc = call_checked(tj.grad(f, argnums=(0, 1)), x, np.array(9.0))
    np.testing.assert_array_equal(gx, [2.0, 3.0])
    assert gc == 1.0 + 4.0 + 5.0
    check_grads(f, (x, np.array(9.0)), order=2)


def test_diag_roundtrip_grad_is_hand_derivation():
    # sum(diag(diag(v, k)) * w) = sum(v * w): gradient w
    v = np.array([1.0, -2.0, 3.0])
    w = np.array([0.5, 2.0, -1.0])
    for k in (0, 1, -2):
        g = call_checked(tj.grad(lambda v, k=k: tnp.sum(tnp.diag(tnp.diag(v, k), k) * w)), v)
        np.testing.assert_array_equal(g, w)
    # d trace(X) / dX = I (offset: shifted identity)
    np.testing.assert_array_equal(call_checked(tj.grad(lambda x: tnp.trace(x, 1)), M),
                                  np.eye(3, 4, 1))


# -- errors like NumPy -----------------------------------------------------------------------

@pytest.mark.parametrize("op,x", [
    (lambda m, x: m.reshape(x, (5, -1)), A),
    (lambda m, x: m.reshape(x, (-1, -1)), A),
    (lambda m, x: m.reshape(x, (7,)), A),
    (lambda m, x: m.squeeze(x, axis=0), M),
    (lambda m, x: m.split(x, 2), V),
    (lambda m, x: m.concatenate([x, np.ones((3, 3))], axis=0), M),
    (lambda m, x: m.concatenate([x, x[0]]), M),
    (lambda m, x: m.concatenate([x, x]), Z),
    (lambda m, x: m.stack([x, x[:2]]), M),
    (lambda m, x: m.broadcast_to(x, (3,)), M),
    (lambda m, x: m.transpose(x, (0, 0, 1)), A),
    (lambda m, x: m.diag(x), A),
    (lambda m, x: m.reshape(x, (0, -1)), np.zeros((0, 6))),
    (lambda m, x: m.pad(x, -1), V),
    (lambda m, x: m.repeat(x, -1), V),
    (lambda m, x: m.expand_dims(x, (0, 0)), V),
], ids=lambda v: "" if callable(v) else str(np.shape(v)))
def test_errors_like_numpy(op, x):
    with pytest.raises(ValueError):
        op(np, x)
    with pytest.raises(ValueError):
        tj.make_ir(lambda x: op(tnp, x))(x)


def test_axis_errors_like_numpy():
    for op in (lambda m, x: m.swapaxes(x, 0, 2), lambda m, x: m.flip(x, 2),
               lambda m, x: m.moveaxis(x, 3, 0), lambda m, x: m.expand_dims(x, 3),
               lambda m, x: m.squeeze(x, axis=-3)):
        with pytest.raises(np.exceptions.AxisError):
            op(np, M)
        with pytest.raises(np.exceptions.AxisError):
            tj.make_ir(lambda x, op=op: op(tnp, x))(M)


# -- creation --------------------------------------------------------------------------------

CREATION = [
    ("zeros", lambda m: m.zeros((2, 3))),
    ("zeros-int", lambda m: m.zeros(4, dtype=np.int32)),
    ("zeros-0d", lambda m: m.zeros(())),
    ("zeros-empty", lambda m: m.zeros((0, 2), bool)),
    ("ones", lambda m: m.ones((3,), np.float32)),
    ("ones-int", lambda m: m.ones([2, 2], dtype="int64")),
    ("full-float", lambda m: m.full((2, 2), 1.5)),
    ("full-int", lambda m: m.full(3, 7)),
    ("full-bool", lambda m: m.full((2,), True)),
    ("full-dtype", lambda m: m.full((2, 1), 3, dtype=np.float32)),
    ("empty-shape", lambda m: m.empty((2, 3)).shape),
    ("empty-dtype", lambda m: m.empty(3, np.int32).dtype),
    ("zeros_like", lambda m: m.zeros_like(np.ones((2, 3), np.int32))),
    ("ones_like", lambda m: m.ones_like(np.ones((2,), np.float32))),
    ("ones_like-dtype", lambda m: m.ones_like(np.ones((2,)), dtype=np.int8)),
    ("full_like", lambda m: m.full_like(np.ones((2, 2), np.int32), 4.7)),
    ("full_like-dtype", lambda m: m.full_like(np.ones(3), 2, dtype=np.float32)),
    ("empty_like", lambda m: m.empty_like(np.ones((2, 2), np.int32)).shape),
    ("arange", lambda m: m.arange(5)),
    ("arange-start-stop", lambda m: m.arange(2, 7)),
    ("arange-float-step", lambda m: m.arange(0.0, 1.0, 0.25)),
    ("arange-neg-step", lambda m: m.arange(5, 0, -2)),
    ("arange-dtype", lambda m: m.arange(4, dtype=np.float32)),
    ("arange-empty", lambda m: m.arange(3, 3)),
    ("linspace", lambda m: m.linspace(0.0, 1.0, 5)),
    ("linspace-no-endpoint", lambda m: m.linspace(-1, 1, 4, endpoint=False)),
    ("linspace-dtype", lambda m: m.linspace(0, 10, 6, dtype=np.float32)),
    ("linspace-one", lambda m: m.linspace(2.0, 3.0, 1)),
    ("linspace-retstep", lambda m: m.linspace(0.0, 2.0, 5, retstep=True)),
    ("eye", lambda m: m.eye(3)),
    ("eye-rect-k", lambda m: m.eye(2, 4, k=1)),
    ("eye-neg-k-dtype", lambda m: m.eye(3, k=-1, dtype=np.int32)),
    ("asarray-list", lambda m: m.asarray([[1, 2], [3, 4]])),
    ("asarray-float-list", lambda m: m.asarray([1.0, 2.5])),
    ("asarray-dtype", lambda m: m.asarray([1, 2], dtype=np.float32)),
    ("asarray-scalar", lambda m: m.asarray(3.0)),
    ("array", lambda m: m.array([[1.0, 2.0]])),
    ("array-ndmin", lambda m: m.array([1, 2], ndmin=3)),
    ("array-dtype", lambda m: m.array([0, 1, 2], dtype=bool)),
    ("astype", lambda m: m.astype(np.arange(3), np.float32)),
    ("astype-bool", lambda m: m.astype(np.array([0.0, 2.0]), bool)),
]


@pytest.mark.parametrize("name,make", CREATION, ids=[c[0] for c in CREATION])
def test_creation_matches_numpy(name, make):
    expected = make(np)
    actual = make(tnp)
    if isinstance(expected, tuple) and name.endswith("retstep"):
        assert_like_numpy(actual[0], expected[0])
        assert actual[1] == expected[1]
    elif isinstance(expected, (tuple, np.dtype)):
        assert actual == expected
    else:
        assert_like_numpy(actual, expected)


def test_empty_is_zero_filled():
    np.testing.assert_array_equal(tnp.empty((2, 2)), np.zeros((2, 2)))


def test_like_functions_of_traced_values():
    x = np.ones((2, 3), np.float32)
    seen = {}

    def f(x):
        seen["zeros"] = tnp.zeros_like(x)
        seen["ones"] = tnp.ones_like(x, dtype=np.int32)
        seen["empty"] = tnp.empty_like(x)
        seen["full"] = tnp.full_like(x, 2)
        seen["shape"] = tnp.zeros_like(x, shape=(4,))
        return x + seen["zeros"] + seen["full"]

    out = run(f, x)
    assert_like_numpy(out, np.full((2, 3), 3.0, np.float32))
    assert_like_numpy(seen["zeros"], np.zeros((2, 3), np.float32))
    assert_like_numpy(seen["ones"], np.ones((2, 3), np.int32))
    assert_like_numpy(seen["empty"], np.zeros((2, 3), np.float32))
    assert_like_numpy(seen["full"], np.full((2, 3), 2, np.float32))
    assert_like_numpy(seen["shape"], np.zeros(4, np.float32))


def test_full_and_full_like_with_a_traced_fill_value():
    c = np.array(2.5)
    assert_like_numpy(run(lambda c: tnp.full((2, 3), c), c), np.full((2, 3), 2.5))
    assert_like_numpy(run(lambda c: tnp.full((2,), c, dtype=np.float32), c),
                      np.full((2,), 2.5, np.float32))
    assert_like_numpy(run(lambda c: tnp.full_like(np.ones((3, 1), np.int32), c), c),
                      np.full((3, 1), 2, np.int32))
    assert_like_numpy(run(lambda c: tnp.full((2, 3), c), np.array([1.0, 2.0, 3.0])),
                      np.full((2, 3), [1.0, 2.0, 3.0]))
    # d/dc sum(full(shape, c) * w) = sum(w)
    w = np.arange(6.0).reshape(2, 3)
    assert call_checked(tj.grad(lambda c: tnp.sum(tnp.full((2, 3), c) * w)), c) == w.sum()
    check_grads(lambda c: tnp.sin(tnp.full_like(w, c)), (c,), order=2)


def test_linspace_with_traced_bounds():
    a, b = np.array(-1.0), np.array(3.0)
    for kwargs in ({"num": 5}, {"num": 4, "endpoint": False}, {"num": 1}, {"num": 2}):
        expected = np.linspace(-1.0, 3.0, **kwargs)
        assert_like_numpy(run(lambda a, b, kw=kwargs: tnp.linspace(a, b, **kw), a, b),
                          expected, rtol=1e-15)
        check_grads(lambda a, b, kw=kwargs: tnp.linspace(a, b, **kw) ** 2, (a, b), order=2)
    # the endpoint is exactly `stop`
    out = run(lambda a, b: tnp.linspace(a, b, 7), np.array(0.1), np.array(0.7))
    assert out[-1] == 0.7
    # d/da linspace(a, b, 5)_i = 1 - i/4
    ga, gb = call_checked(tj.grad(lambda a, b: tnp.sum(tnp.linspace(a, b, 5) * np.arange(5.0)),
                                  argnums=(0, 1)), a, b)
    i = np.arange(5.0)
    assert ga == pytest.approx(np.sum(i * (1 - i / 4)), rel=1e-14)
    assert gb == pytest.approx(np.sum(i * i / 4), rel=1e-14)


def test_asarray_and_array_of_traced_values():
    x = np.array([1.0, 2.0])
    ir = checked_ir(lambda x: tnp.asarray(x), x)
    assert not ir.eqns  # the traced value itself
    ir = checked_ir(lambda x: tnp.asarray(x, dtype=np.float32), x)
    assert "convert[new_dtype=f32]" in str(ir)
    assert_like_numpy(run(lambda x: tnp.asarray(x, dtype=np.float32), x),
                      x.astype(np.float32))
    assert_like_numpy(run(lambda x: tnp.array(x, ndmin=3), x), np.array(x, ndmin=3))
    assert_like_numpy(run(lambda x: tnp.array([x, 2 * x]), x), np.array([x, 2 * x]))
    assert_like_numpy(run(lambda x: tnp.asarray([[x[0], 1.0], [3.0, x[1]]]), x),
                      np.array([[1.0, 1.0], [3.0, 2.0]]))
    g = call_checked(tj.grad(lambda x: tnp.sum(tnp.array([x, 2 * x]) ** 2)), x)
    np.testing.assert_allclose(g, 2 * x + 8 * x, rtol=1e-15)


def test_astype_records_a_convert():
    x = np.array([1.5, -2.5, 3.0])
    ir = checked_ir(lambda x: tnp.astype(x, np.int32), x)
    assert [e.prim.name for e in ir.eqns] == ["convert"]
    assert ir.out_avals[0].dtype == np.int32
    assert_like_numpy(run(lambda x: tnp.astype(x, np.int32), x), x.astype(np.int32))
    ir = checked_ir(lambda x: x.astype(np.float32), x)
    assert "convert[new_dtype=f32]" in str(ir)
    assert_like_numpy(run(lambda x: x.astype(bool), x), x.astype(bool))
    assert not checked_ir(lambda x: x.astype(np.float64), x).eqns


def test_grad_through_astype_float32_to_float64():
    x = np.array([0.5, -1.25, 2.0], np.float32)
    f = lambda x: tnp.sum(tnp.astype(x, np.float64) ** 3)
    g = call_checked(tj.grad(f), x)
    assert g.dtype == np.float32
    np.testing.assert_allclose(g, 3 * x.astype(np.float64) ** 2, rtol=1e-6)
    assert any(e.prim.name == "convert" for e in checked_ir(tj.grad(f), x).eqns)
    check_grads(f, (x,), order=2)
    # and back down: float64 -> float32
    x64 = x.astype(np.float64)
    f32 = lambda x: tnp.sum(tnp.sin(x.astype(np.float32)))
    g64 = call_checked(tj.grad(f32), x64)
    np.testing.assert_allclose(g64, np.cos(x64), rtol=1e-6)
    assert g64.dtype == np.float64


def test_astype_to_int_has_zero_gradient():
    x = np.array([0.5, 1.5])
    g = call_checked(tj.grad(lambda x: tnp.sum(x * tnp.astype(x, np.int32))), x)
    np.testing.assert_array_equal(g, x.astype(np.int32).astype(np.float64))


# -- traced-array attributes and methods -----------------------------------------------------

def test_tracer_attributes():
    x = np.ones((2, 3, 4), np.float32)
    seen = {}

    def f(x):
        assert isinstance(x, Tracer)
        seen.update(shape=x.shape, ndim=x.ndim, size=x.size, dtype=x.dtype, len=len(x),
                    T_shape=x.T.shape, mT_shape=x.mT.shape)
        return x.T

    out = run(f, x)
    assert seen == {"shape": (2, 3, 4), "ndim": 3, "size": 24, "dtype": np.float32, "len": 2,
                    "T_shape": (4, 3, 2), "mT_shape": (2, 4, 3)}
    assert_like_numpy(out, x.T)
    z = run(lambda z: z.T, np.array(2.0))
    assert_like_numpy(z, np.array(2.0))
    assert tnp.shape(np.ones((2, 5))) == (2, 5) and tnp.ndim(Z) == 0 and tnp.size(M) == 12


def test_tracer_methods_match_numpy():
    x = M
    cases = [
        lambda t: t.reshape(2, 6), lambda t: t.reshape((2, 6)), lambda t: t.reshape([-1]),
        lambda t: t.reshape(4, -1), lambda t: t.T, lambda t: t.transpose(),
        lambda t: t.transpose(1, 0), lambda t: t.transpose((1, 0)),
        lambda t: t.sum(), lambda t: t.sum(axis=0), lambda t: t.sum(1, keepdims=True),
        lambda t: t.mean(), lambda t: t.mean(axis=-1), lambda t: t.max(), lambda t: t.max(0),
        lambda t: t.min(axis=1, keepdims=True), lambda t: t.astype(np.float32),
        lambda t: t.astype(np.int64), lambda t: t.ravel(), lambda t: t.flatten(),
        lambda t: t.swapaxes(0, 1), lambda t: t.cumsum(axis=1), lambda t: t.std(ddof=1),
        lambda t: t.squeeze(), lambda t: t.repeat(2, axis=0), lambda t: t.trace(),
        lambda t: t.diagonal(1), lambda t: t.argmin(axis=0),
    ]
    for op in cases:
        assert_like_numpy(run(op, x), op(x))


def test_tracer_method_grads():
    x = M
    f = lambda t: (t.reshape(2, 6).T.sum(axis=1) * t.max(1).mean()).sum() + t.min() ** 2
    checked_ir(tj.grad(f), x)
    check_grads(f, (x,), order=2)


@pytest.mark.parametrize("name,args,kwargs", [
    ("sum", (), {"axis": 0}),
    ("reshape", ((4, 3),), {}),
    ("transpose", (), {}),
    ("concatenate", None, {"axis": 1}),
    ("roll", (1,), {"axis": 0}),
    ("flip", (), {"axis": 1}),
    ("tril", (), {}),
    ("pad", (1,), {}),
    ("expand_dims", (0,), {}),
    ("swapaxes", (0, 1), {}),
    ("tile", ((2, 1),), {}),
])
def test_numpy_functions_on_tracers_record_the_same_ir(name, args, kwargs):
    if args is None:  # sequence first argument
        a = checked_ir(lambda x: getattr(np, name)([x, x], **kwargs), M)
        b = checked_ir(lambda x: getattr(tnp, name)([x, x], **kwargs), M)
    else:
        a = checked_ir(lambda x: getattr(np, name)(x, *args, **kwargs), M)
        b = checked_ir(lambda x: getattr(tnp, name)(x, *args, **kwargs), M)
    assert str(a) == str(b)
    assert b.eqns
