"""Products (dot, matmul, vdot, inner, outer, tensordot, einsum): values against NumPy,
dtype promotion, shape errors, and derivatives w.r.t. both operands against finite
differences and hand derivations.

Every function is traced (its IR checked) and the IR evaluated, so the traced code path
produces the values compared with NumPy.
"""

import numpy as np
import pytest
from conftest import checked_ir

import tracejit as tj
import tracejit.numpy as tnp
from tracejit.core import eval_ir
from tracejit.testing import check_grads


def traced_call(f, *args):
    """Trace `f` at `args` (checking the IR), evaluate the IR on `args`; return the
    output and the output type the IR declares."""
    ir = checked_ir(f, *args)
    (out,) = eval_ir(ir, list(args))
    return np.asarray(out), ir.out_avals[0]


def assert_matches_numpy(f, *args, expected, rtol=1e-12):
    out, aval = traced_call(f, *args)
    expected = np.asarray(expected)
    assert aval.shape == expected.shape
    assert aval.dtype == expected.dtype
    assert out.shape == expected.shape
    assert out.dtype == expected.dtype
    np.testing.assert_allclose(out, expected, rtol=rtol, atol=rtol)


def check_derivatives(f, *args):
    """check_grads (order 2, both modes) w.r.t. every operand, plus the IR checker on the
    JVP, VJP and grad IRs."""
    check_grads(f, args, order=2)
    out = np.asarray(f(*args))  # NumPy's evaluation: only its shape is used
    tangents = tuple(np.linspace(-1.0, 1.0, np.size(a)).reshape(np.shape(a)) for a in args)
    ct = np.linspace(1.0, 2.0, out.size).reshape(out.shape)
    checked_ir(lambda *a: tj.jvp(f, a, tangents)[1], *args)
    checked_ir(lambda *a: tj.vjp(f, *a)[1](ct), *args)
    argnums = tuple(range(len(args)))
    checked_ir(tj.grad(lambda *a: tnp.sum(tnp.sin(f(*a))), argnums=argnums), *args)


def _rand(rng, shapes, dtype=np.float64):
    return tuple(np.asarray(rng.standard_normal(s)).astype(dtype) for s in shapes)


# (name, tracejit function, NumPy function, operand shapes)
PRODUCT_CASES = [
    ("dot 0-d . 0-d", tnp.dot, np.dot, [(), ()]),
    ("dot 0-d . 1-D", tnp.dot, np.dot, [(), (3,)]),
    ("dot 2-D . 0-d", tnp.dot, np.dot, [(3, 2), ()]),
    ("dot 1-D . 1-D", tnp.dot, np.dot, [(3,), (3,)]),
    ("dot 2-D . 2-D", tnp.dot, np.dot, [(2, 3), (3, 4)]),
    ("dot 1-D . 2-D", tnp.dot, np.dot, [(3,), (3, 2)]),
    ("dot N-D . 1-D", tnp.dot, np.dot, [(2, 4, 3), (3,)]),
    ("dot 1-D . N-D", tnp.dot, np.dot, [(3,), (4, 3, 2)]),
    ("dot N-D . M-D", tnp.dot, np.dot, [(2, 4, 3), (5, 3, 2)]),
    ("dot 2-D . 3-D", tnp.dot, np.dot, [(2, 3), (4, 3, 2)]),
    ("matmul 1-D @ 1-D", tnp.matmul, np.matmul, [(3,), (3,)]),
    ("matmul 1-D @ 2-D", tnp.matmul, np.matmul, [(3,), (3, 4)]),
    ("matmul 2-D @ 1-D", tnp.matmul, np.matmul, [(2, 3), (3,)]),
    ("matmul 1-D @ batched", tnp.matmul, np.matmul, [(3,), (2, 3, 4)]),
    ("matmul batched @ 1-D", tnp.matmul, np.matmul, [(2, 5, 3), (3,)]),
    ("matmul 2-D @ 2-D", tnp.matmul, np.matmul, [(2, 3), (3, 4)]),
    ("matmul batched @ batched", tnp.matmul, np.matmul, [(2, 2, 3), (2, 3, 4)]),
    ("matmul broadcast batch dims", tnp.matmul, np.matmul, [(2, 1, 3, 4), (5, 4, 2)]),
    ("matmul 2-D @ batched", tnp.matmul, np.matmul, [(3, 4), (5, 4, 2)]),
    ("matmul batched @ 2-D", tnp.matmul, np.matmul, [(5, 3, 4), (4, 2)]),
    ("vdot 1-D", tnp.vdot, np.vdot, [(4,), (4,)]),
    ("vdot flattens", tnp.vdot, np.vdot, [(2, 3), (3, 2)]),
    ("inner 1-D", tnp.inner, np.inner, [(3,), (3,)]),
    ("inner 2-D", tnp.inner, np.inner, [(2, 3), (4, 3)]),
    ("inner 3-D, 2-D", tnp.inner, np.inner, [(2, 5, 3), (4, 3)]),
    ("inner 0-d", tnp.inner, np.inner, [(), (2, 3)]),
    ("outer 1-D", tnp.outer, np.outer, [(3,), (4,)]),
    ("outer flattens", tnp.outer, np.outer, [(2, 2), (3,)]),
]
PRODUCT_IDS = [c[0] for c in PRODUCT_CASES]


@pytest.mark.parametrize("name, f, npf, shapes", PRODUCT_CASES, ids=PRODUCT_IDS)
def test_product_matches_numpy(name, f, npf, shapes, rng):
    a, b = _rand(rng, shapes)
    expected = npf(a, b)
    assert_matches_numpy(lambda a, b: f(a, b), a, b, expected=expected)
    # NumPy's own function dispatches to tracejit on tracers
    assert_matches_numpy(lambda a, b: npf(a, b), a, b, expected=expected)
    # one operand a constant of the trace
    assert_matches_numpy(lambda a: f(a, b), a, expected=expected)
    assert_matches_numpy(lambda b: f(a, b), b, expected=expected)


@pytest.mark.parametrize("name, f, npf, shapes", PRODUCT_CASES, ids=PRODUCT_IDS)
def test_product_derivatives(name, f, npf, shapes, rng):
    a, b = _rand(rng, shapes)
    check_derivatives(lambda a, b: f(a, b), a, b)
    # and w.r.t. one operand with the other a constant
    check_grads(lambda a: f(a, b), (a,), order=2)
    check_grads(lambda b: f(a, b), (b,), order=2)


@pytest.mark.parametrize("shapes", [[(2, 3), (3, 4)], [(3,), (3,)], [(2, 1, 3, 4), (5, 4, 2)],
                                    [(3,), (2, 3, 4)], [(2, 5, 3), (3,)]])
def test_matmul_operator_and_method(shapes, rng):
    a, b = _rand(rng, shapes)
    assert_matches_numpy(lambda a, b: a @ b, a, b, expected=a @ b)
    assert_matches_numpy(lambda b: a @ b, b, expected=a @ b)  # __rmatmul__
    assert_matches_numpy(lambda a, b: a.dot(b), a, b, expected=a.dot(b))


TENSORDOT_CASES = [
    ([(2, 3, 4), (3, 4, 5)], 2),
    ([(2, 3, 4), (4, 5)], 1),
    ([(2, 3), (4, 5)], 0),
    ([(2, 3, 4), (4, 3, 5)], ([1, 2], [1, 0])),
    ([(2, 3, 4), (4, 3, 5)], ([-1], [0])),
    ([(2, 3), (3, 2)], (0, 1)),
    ([(2, 3, 4), (3, 4, 5)], ((1, 2), (0, 1))),
]


@pytest.mark.parametrize("shapes, axes", TENSORDOT_CASES)
def test_tensordot_matches_numpy(shapes, axes, rng):
    a, b = _rand(rng, shapes)
    expected = np.tensordot(a, b, axes)
    assert_matches_numpy(lambda a, b: tnp.tensordot(a, b, axes), a, b, expected=expected)
    assert_matches_numpy(lambda a, b: np.tensordot(a, b, axes=axes), a, b, expected=expected)


@pytest.mark.parametrize("shapes, axes", TENSORDOT_CASES)
def test_tensordot_derivatives(shapes, axes, rng):
    a, b = _rand(rng, shapes)
    check_derivatives(lambda a, b: tnp.tensordot(a, b, axes), a, b)


EINSUM_CASES = [
    ("ij,jk->ik", [(2, 3), (3, 4)]),
    ("bij,bjk->bik", [(2, 2, 3), (2, 3, 4)]),
    ("ij,ij->", [(2, 3), (2, 3)]),
    ("i,j->ij", [(3,), (4,)]),
    ("ij->ji", [(2, 3)]),
    ("ii->i", [(3, 3)]),
    ("ii->", [(3, 3)]),
    ("ij->", [(2, 3)]),
    ("ij,jk", [(2, 3), (3, 4)]),  # implicit output: 'ik'
    ("ij,kj", [(2, 3), (4, 3)]),  # implicit output: 'ik'
    ("ji", [(2, 3)]),  # implicit output: 'ij', a transpose
    ("i,i", [(3,), (3,)]),
    ("ij,j->i", [(2, 3), (3,)]),
    ("ij,ij->ij", [(2, 3), (2, 3)]),
    ("ij,jk->ki", [(2, 3), (3, 4)]),
    ("ibj,jbk->bki", [(2, 3, 4), (4, 3, 5)]),
    ("iij,jk->ik", [(2, 2, 3), (3, 2)]),
    ("ij,jk,kl->il", [(2, 3), (3, 4), (4, 2)]),
    ("ab,cb,ca->", [(2, 3), (4, 3), (4, 2)]),
]


@pytest.mark.parametrize("spec, shapes", EINSUM_CASES, ids=[c[0] for c in EINSUM_CASES])
def test_einsum_matches_numpy(spec, shapes, rng):
    ops = _rand(rng, shapes)
    expected = np.einsum(spec, *ops)
    assert_matches_numpy(lambda *o: tnp.einsum(spec, *o), *ops, expected=expected)
    assert_matches_numpy(lambda *o: np.einsum(spec, *o), *ops, expected=expected)


@pytest.mark.parametrize("spec, shapes", EINSUM_CASES, ids=[c[0] for c in EINSUM_CASES])
def test_einsum_derivatives(spec, shapes, rng):
    ops = _rand(rng, shapes)
    check_derivatives(lambda *o: tnp.einsum(spec, *o), *ops)


# -- hand derivations ----------------------------------------------------------------------

def test_grad_of_matmul_sum_by_hand(rng):
    # f(A, B) = sum(A @ B): df/dA = 1 B^T, df/dB = A^T 1.
    a, b = _rand(rng, [(2, 3), (3, 4)])
    ga, gb = tj.grad(lambda a, b: tnp.sum(a @ b), argnums=(0, 1))(a, b)
    np.testing.assert_allclose(ga, np.ones((2, 4)) @ b.T, rtol=1e-12)
    np.testing.assert_allclose(gb, a.T @ np.ones((2, 4)), rtol=1e-12)


def test_grad_of_trace_of_product_by_hand(rng):
    # f(A, B) = tr(A B) = einsum('ij,ji->'): df/dA = B^T, df/dB = A^T.
    a, b = _rand(rng, [(2, 3), (3, 2)])
    ga, gb = tj.grad(lambda a, b: tnp.einsum("ij,ji->", a, b), argnums=(0, 1))(a, b)
    np.testing.assert_allclose(ga, b.T, rtol=1e-12)
    np.testing.assert_allclose(gb, a.T, rtol=1e-12)


def test_grad_of_einsum_trace_is_the_identity():
    x = np.arange(9.0).reshape(3, 3)
    np.testing.assert_array_equal(tj.grad(lambda x: tnp.einsum("ii->", x))(x), np.eye(3))
    _, f_vjp = tj.vjp(lambda x: tnp.einsum("ii->i", x), x)
    (g,) = f_vjp(np.array([1.0, 2.0, 3.0]))
    np.testing.assert_array_equal(g, np.diag([1.0, 2.0, 3.0]))


def test_quadratic_form_hessian_by_hand(rng):
    # f(x) = x^T A x: grad = (A + A^T) x, Hessian = A + A^T.
    (a,) = _rand(rng, [(3, 3)])
    x = np.array([0.5, -1.0, 2.0])
    f = lambda x: tnp.dot(x, tnp.matmul(a, x))
    np.testing.assert_allclose(tj.grad(f)(x), (a + a.T) @ x, rtol=1e-12)
    np.testing.assert_allclose(tj.hessian(f)(x), a + a.T, rtol=1e-12)


def test_batched_matmul_with_broadcast_batch_grad_by_hand(rng):
    # C[i, j] = A[i, 0] @ B[j] with A (2,1,3,4), B (5,4,2). sum(C): the broadcast batch
    # axis of A collects every B: dA[i, 0] = 1 (sum_j B[j])^T; dB[j] = (sum_i A[i, 0])^T 1.
    a, b = _rand(rng, [(2, 1, 3, 4), (5, 4, 2)])
    ga, gb = tj.grad(lambda a, b: tnp.sum(a @ b), argnums=(0, 1))(a, b)
    ones = np.ones((3, 2))
    np.testing.assert_allclose(ga, np.broadcast_to(ones @ b.sum(0).T, a.shape), rtol=1e-12)
    np.testing.assert_allclose(gb, np.broadcast_to(a.sum((0, 1)).T @ ones, b.shape),
                               rtol=1e-12)


def test_outer_jvp_by_hand():
    a, b = np.array([1.0, 2.0]), np.array([3.0, 4.0, 5.0])
    ta, tb = np.array([1.0, -1.0]), np.array([0.0, 1.0, 2.0])
    _, t = tj.jvp(tnp.outer, (a, b), (ta, tb))
    np.testing.assert_allclose(t, np.outer(ta, b) + np.outer(a, tb))


# -- dtypes --------------------------------------------------------------------------------

DTYPE_CASES = [
    ("dot", lambda a, b: tnp.dot(a, b), [(2, 3), (3, 4)], np.dot),
    ("matmul", lambda a, b: a @ b, [(2, 1, 2, 3), (4, 3, 2)], np.matmul),
    ("vdot", lambda a, b: tnp.vdot(a, b), [(2, 3), (6,)], np.vdot),
    ("inner", lambda a, b: tnp.inner(a, b), [(2, 3), (4, 3)], np.inner),
    ("outer", lambda a, b: tnp.outer(a, b), [(2,), (3,)], np.outer),
    ("tensordot", lambda a, b: tnp.tensordot(a, b, 1), [(2, 3), (3, 4)],
     lambda a, b: np.tensordot(a, b, 1)),
    ("einsum", lambda a, b: tnp.einsum("ij,kj->ki", a, b), [(2, 3), (4, 3)],
     lambda a, b: np.einsum("ij,kj->ki", a, b)),
]
DTYPE_IDS = [c[0] for c in DTYPE_CASES]


@pytest.mark.parametrize("name, f, shapes, npf", DTYPE_CASES, ids=DTYPE_IDS)
def test_float32_stays_float32(name, f, shapes, npf, rng):
    a, b = _rand(rng, shapes, np.float32)
    out, aval = traced_call(f, a, b)
    assert aval.dtype == np.float32 and out.dtype == np.float32
    np.testing.assert_allclose(out, npf(a, b), rtol=1e-5, atol=1e-6)
    ga, gb = tj.grad(lambda a, b: tnp.sum(f(a, b)), argnums=(0, 1))(a, b)
    assert ga.dtype == np.float32 and gb.dtype == np.float32
    check_grads(f, (a, b), order=2)


@pytest.mark.parametrize("name, f, shapes, npf", DTYPE_CASES, ids=DTYPE_IDS)
def test_int_and_float_promote(name, f, shapes, npf, rng):
    a = np.arange(int(np.prod(shapes[0]))).reshape(shapes[0]) - 2
    (b,) = _rand(rng, shapes[1:])
    expected = npf(a, b)
    assert expected.dtype == np.float64
    assert_matches_numpy(f, a, b, expected=expected)  # both traced
    assert_matches_numpy(lambda a: f(a, b), a, expected=expected)  # float operand constant
    assert_matches_numpy(lambda b: f(a, b), b, expected=expected)  # int operand constant
    # the float operand's gradient still flows through the int operand's values
    gb = tj.grad(lambda b: tnp.sum(f(a, b)), argnums=0)(b)
    eps = 1e-6
    e0 = np.zeros_like(b)
    e0.flat[0] = 1.0
    fd = (np.sum(npf(a, b + eps * e0)) - np.sum(npf(a, b - eps * e0))) / (2 * eps)
    np.testing.assert_allclose(gb.flat[0], fd, rtol=1e-6)


@pytest.mark.parametrize("name, f, shapes, npf", DTYPE_CASES, ids=DTYPE_IDS)
def test_float32_and_float64_promote_to_float64(name, f, shapes, npf, rng):
    (a,) = _rand(rng, shapes[:1], np.float32)
    (b,) = _rand(rng, shapes[1:])
    assert_matches_numpy(f, a, b, expected=npf(a, b))


@pytest.mark.parametrize("name, f, shapes, npf", DTYPE_CASES, ids=DTYPE_IDS)
def test_int_times_int_stays_int(name, f, shapes, npf):
    a = np.arange(int(np.prod(shapes[0]))).reshape(shapes[0]) - 2
    b = np.arange(int(np.prod(shapes[1]))).reshape(shapes[1]) % 3
    expected = npf(a, b)
    assert expected.dtype == np.int64
    assert_matches_numpy(f, a, b, expected=expected, rtol=0)


def test_einsum_dtype_argument():
    a = np.arange(6).reshape(2, 3)
    out, aval = traced_call(lambda a: tnp.einsum("ij,kj", a, a, dtype=np.float32), a)
    assert aval.dtype == np.float32
    np.testing.assert_array_equal(out, np.einsum("ij,kj", a, a).astype(np.float32))


# -- shape errors ----------------------------------------------------------------------------

SHAPE_ERROR_CASES = [
    ("dot", lambda a, b: tnp.dot(a, b), (2, 3), (4, 5)),
    ("dot 1-D", lambda a, b: tnp.dot(a, b), (3,), (4,)),
    ("dot N-D", lambda a, b: tnp.dot(a, b), (2, 3), (2, 4, 5)),
    ("matmul", lambda a, b: tnp.matmul(a, b), (2, 3), (4, 5)),
    ("matmul operator", lambda a, b: a @ b, (2, 3), (4, 5)),
    ("matmul 1-D", lambda a, b: a @ b, (3,), (4,)),
    ("matmul 1-D @ N-D", lambda a, b: a @ b, (3,), (2, 4, 5)),
    ("matmul batched inner dims", lambda a, b: a @ b, (2, 2, 3), (2, 2, 4)),
    ("matmul batch dims do not broadcast", lambda a, b: a @ b, (2, 2, 3), (3, 3, 4)),
    ("np.matmul", lambda a, b: np.matmul(a, b), (2, 3), (4, 5)),
    ("vdot", lambda a, b: tnp.vdot(a, b), (2, 3), (4,)),
    ("inner", lambda a, b: tnp.inner(a, b), (2, 3), (2, 4)),
    ("tensordot int axes", lambda a, b: tnp.tensordot(a, b, 1), (2, 3), (4, 5)),
    ("tensordot axis lists", lambda a, b: tnp.tensordot(a, b, ([0], [1])), (2, 3), (4, 5)),
    ("einsum", lambda a, b: tnp.einsum("ij,jk->ik", a, b), (2, 3), (4, 5)),
]


@pytest.mark.parametrize("name, f, sa, sb", SHAPE_ERROR_CASES,
                         ids=[c[0] for c in SHAPE_ERROR_CASES])
def test_shape_mismatch_error_names_both_shapes(name, f, sa, sb):
    a, b = np.zeros(sa), np.zeros(sb)
    with pytest.raises(ValueError) as info:
        tj.make_ir(f)(a, b)
    message = str(info.value)
    assert str(sa) in message and str(sb) in message, message
    assert "test_linalg.py" in message  # and it names the user's line
    with pytest.raises(ValueError):  # with one operand a constant too
        tj.make_ir(lambda a: f(a, b))(a)


def test_matmul_of_a_0d_operand_raises():
    with pytest.raises(ValueError, match="dimensions"):
        tj.make_ir(lambda a: a @ 2.0)(np.zeros((2, 3)))
