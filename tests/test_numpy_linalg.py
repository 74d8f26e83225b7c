"""tracejit.numpy.linalg: values against NumPy, derivatives against finite differences (to
second order), compiled gradients against the interpreter's, stacks and vmap."""

import numpy as np
import pytest

import tracejit as tj
import tracejit.numpy as tnp
from tracejit.testing import check_grads

L = tnp.linalg
RNG = np.random.default_rng(0)
A = RNG.standard_normal((4, 4)) + 3 * np.eye(4)
S = A @ A.T + 4 * np.eye(4)  # symmetric positive definite
BV = RNG.standard_normal(4)
BM = RNG.standard_normal((4, 2))
STACK = np.stack([S, 2 * S, S + np.eye(4)])
TALL = RNG.standard_normal((5, 3))
WIDE = RNG.standard_normal((3, 5))
RHS = RNG.standard_normal((5, 2))

CASES = [
    ("solve vector", L.solve, np.linalg.solve, (A, BV)),
    ("solve matrix", L.solve, np.linalg.solve, (A, BM)),
    ("inv", L.inv, np.linalg.inv, (A,)),
    ("det", L.det, np.linalg.det, (A,)),
    ("slogdet", lambda a: L.slogdet(a).logabsdet, lambda a: np.linalg.slogdet(a)[1], (A,)),
    ("cholesky", L.cholesky, np.linalg.cholesky, (S,)),
    ("cholesky upper", lambda a: L.cholesky(a, upper=True),
     lambda a: np.linalg.cholesky(a).T, (S,)),
    ("eigvalsh", L.eigvalsh, np.linalg.eigvalsh, (S,)),
    ("eigh vectors", lambda a: tnp.abs(L.eigh(a).eigenvectors),
     lambda a: np.abs(np.linalg.eigh(a)[1]), (S,)),
    ("matrix_power 3", lambda a: L.matrix_power(a, 3), lambda a: np.linalg.matrix_power(a, 3),
     (A,)),
    ("matrix_power -2", lambda a: L.matrix_power(a, -2),
     lambda a: np.linalg.matrix_power(a, -2), (A,)),
    ("norm fro", L.norm, np.linalg.norm, (A,)),
    ("norm vector 3", lambda x: L.norm(x, 3), lambda x: np.linalg.norm(x, 3), (BV,)),
    ("stacked solve", L.solve, np.linalg.solve, (STACK, BM)),
    ("stacked slogdet", lambda a: L.slogdet(a)[1], lambda a: np.linalg.slogdet(a)[1], (STACK,)),
    # singular vectors only up to a sign per column: products that the sign does not change
    ("svd square", lambda a: (lambda r: (r.U * r.U[:1], r.S, r.Vh * r.Vh[:, :1]))(L.svd(a)),
     lambda a: (lambda u, s, vh: (u * u[:1], s, vh * vh[:, :1]))(*np.linalg.svd(a)), (A,)),
    ("svd tall reduced", lambda a: (lambda r: (r.U * r.U[:1], r.S))(L.svd(a, False)),
     lambda a: (lambda u, s, vh: (u * u[:1], s))(*np.linalg.svd(a, False)), (TALL,)),
    ("svd wide reduced", lambda a: (lambda r: (r.Vh * r.Vh[:, :1], r.S))(L.svd(a, False)),
     lambda a: (lambda u, s, vh: (vh * vh[:, :1], s))(*np.linalg.svd(a, False)), (WIDE,)),
    ("svdvals stack", L.svdvals, np.linalg.svdvals, (np.stack([TALL, 2 * TALL]),)),
    ("qr tall", lambda a: tuple(L.qr(a)), lambda a: tuple(np.linalg.qr(a)), (TALL,)),
    ("qr wide", lambda a: tuple(L.qr(a)), lambda a: tuple(np.linalg.qr(a)), (WIDE,)),
    ("qr r", lambda a: L.qr(a, mode="r"), lambda a: np.linalg.qr(a, mode="r"), (A,)),
    ("pinv tall", L.pinv, np.linalg.pinv, (TALL,)),
    ("pinv wide", L.pinv, np.linalg.pinv, (WIDE,)),
    ("lstsq", lambda a, b: L.lstsq(a, b)[:2], lambda a, b: np.linalg.lstsq(a, b)[:2],
     (TALL, RHS)),
    ("norm 2", lambda a: L.norm(a, 2), lambda a: np.linalg.norm(a, 2), (TALL,)),
    ("norm -2", lambda a: L.norm(a, -2), lambda a: np.linalg.norm(a, -2), (WIDE,)),
    ("norm nuc", lambda a: L.norm(a, "nuc"), lambda a: np.linalg.norm(a, "nuc"), (A,)),
    ("norm 2 over axes", lambda a: L.norm(a, 2, axis=(0, 2)),
     lambda a: np.linalg.norm(a, 2, axis=(0, 2)), (STACK,)),
    ("cond", L.cond, np.linalg.cond, (A,)),
    ("cond inf", lambda a: L.cond(a, np.inf), lambda a: np.linalg.cond(a, np.inf), (A,)),
    ("vector_norm", lambda x: L.vector_norm(x, axis=(0, 1), ord=3),
     lambda x: np.linalg.vector_norm(x, axis=(0, 1), ord=3), (TALL,)),
    ("matrix_norm", lambda x: L.matrix_norm(x, ord="nuc"),
     lambda x: np.linalg.matrix_norm(x, ord="nuc"), (STACK,)),
]


@pytest.mark.parametrize("name,fn,ref,args", CASES, ids=[c[0] for c in CASES])
def test_values_and_derivatives(name, fn, ref, args):
    got, want = fn(*args), ref(*args)
    for g, w in zip(*((got, want) if isinstance(want, tuple) else ((got,), (want,)))):
        np.testing.assert_allclose(g, w, rtol=1e-9, atol=1e-11)
    check_grads(fn, args, order=2, eps=1e-5)


def test_cholesky_and_eigh_read_the_lower_triangle_only():
    upper_noise = S + np.triu(np.ones((4, 4)), 1) * 5.0  # NumPy ignores the strict upper part
    np.testing.assert_allclose(L.cholesky(upper_noise), np.linalg.cholesky(upper_noise))
    g = tj.grad(lambda a: tnp.sum(L.eigvalsh(a) ** 2))(upper_noise)
    assert np.all(np.triu(g, 1) == 0.0)


COMPILED = [("solve", L.solve, (A, BV)), ("inv", L.inv, (A,)), ("det", L.det, (A,)),
            ("cholesky", L.cholesky, (S,)), ("eigh", lambda a: L.eigh(a)[0], (S,)),
            ("svd", lambda a: L.svd(a, False).S + L.svd(a, False).U[0] ** 2, (TALL,)),
            ("qr", lambda a: L.qr(a).R, (WIDE,)), ("pinv", L.pinv, (TALL,)),
            ("lstsq", lambda a, b: L.lstsq(a, b).x, (TALL, RHS))]


@pytest.mark.parametrize("name,fn,args", COMPILED, ids=[c[0] for c in COMPILED])
def test_compiled_values_and_gradients(name, fn, args):
    loss = lambda *a: tnp.sum(tnp.sin(fn(*a)))  # noqa: E731
    np.testing.assert_allclose(tj.jit(fn)(*args), fn(*args), rtol=1e-10)
    for g, g0 in zip(tj.jit(tj.grad(loss, argnums=tuple(range(len(args)))))(*args),
                     tj.grad(loss, argnums=tuple(range(len(args))))(*args)):
        np.testing.assert_allclose(g, g0, rtol=1e-9, atol=1e-12)


def test_stacks_vmap_and_float32():
    f = lambda a: tnp.sum(L.slogdet(a)[1]) + tnp.sum(L.cholesky(a))  # noqa: E731
    g = tj.grad(f)(STACK)
    np.testing.assert_allclose(tj.jit(tj.grad(f))(STACK), g, rtol=1e-9)
    np.testing.assert_allclose(tj.vmap(tj.grad(f))(STACK), g, rtol=1e-9)
    solve_each = tj.jit(tj.vmap(L.solve, in_axes=(0, None)))
    np.testing.assert_allclose(solve_each(STACK, BV), np.linalg.solve(STACK, BV), rtol=1e-10)
    a32 = S.astype(np.float32)
    out = tj.jit(L.inv)(a32)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, np.linalg.inv(S), rtol=1e-4)


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match="must be square"):
        L.inv(np.ones((2, 3)))
    with pytest.raises(ValueError, match="at least two-dimensional"):
        L.det(np.ones(3))
    with pytest.raises(ValueError, match="axis -2 of b must be 4"):
        L.solve(A, np.ones(3))
    with pytest.raises(ValueError, match="must be square"):
        L.eig(TALL)
    with pytest.raises(NotImplementedError, match="mode='reduced'"):
        tj.grad(lambda a: tnp.sum(L.qr(a, mode="complete").Q))(TALL)
    with pytest.raises(NotImplementedError, match="mode='raw'"):
        L.qr(TALL, mode="raw")
    with pytest.raises(NotImplementedError, match="full_matrices=False"):
        tj.grad(lambda a: tnp.sum(L.svd(a).U))(TALL)
    with pytest.raises(ValueError, match="incompatible"):
        L.lstsq(TALL, np.ones(4))


def test_matrix_rank_and_lstsq_rank():
    deficient = TALL @ np.diag([1.0, 1.0, 0.0]) @ TALL[:3].T  # 5x3 of rank 2
    assert int(L.matrix_rank(deficient)) == np.linalg.matrix_rank(deficient) == 2
    assert int(L.matrix_rank(TALL)) == 3
    assert int(L.lstsq(deficient, RHS).rank) == 2
    np.testing.assert_array_equal(L.matrix_rank(np.stack([TALL, deficient])), [3, 2])
    np.testing.assert_allclose(L.lstsq(deficient, RHS).x, np.linalg.lstsq(deficient, RHS)[0],
                               rtol=1e-8, atol=1e-10)


def test_pinv_differentiates_where_singular_values_repeat():
    """The identity has one singular value three times: the SVD's vector derivatives are
    undefined there, pinv's own rule is not."""
    check_grads(L.pinv, (np.eye(3),), order=1, eps=1e-6)


def test_vector_derivatives_at_repeated_values_are_nan_not_large():
    """eigh/svd vectors at a repeated value have no derivative: nan, where 1/(w_j - w_i) of
    rounding-level gaps would give a huge finite number."""
    sym = np.diag([2.0, 2.0, 5.0])
    g = tj.grad(lambda a: tnp.sum(L.eigh(a).eigenvectors[:, 0] ** 3))(sym)
    assert np.isnan(g).any()
    g = tj.grad(lambda a: tnp.sum(L.svd(a).U[:, 0] ** 3))(sym)
    assert np.isnan(g).any()
    # the values themselves are differentiable there
    np.testing.assert_allclose(tj.grad(lambda a: tnp.sum(L.eigvalsh(a)))(sym), np.eye(3))
    np.testing.assert_allclose(tj.grad(lambda a: L.norm(a, "nuc"))(sym), np.eye(3))


EMPTY = [("slogdet 0x0", lambda a: tuple(L.slogdet(a)), lambda a: tuple(np.linalg.slogdet(a)),
          (np.zeros((0, 0)),)),
         ("det 0x0", L.det, np.linalg.det, (np.zeros((0, 0)),)),
         ("svd no rows", lambda a: tuple(L.svd(a)), lambda a: tuple(np.linalg.svd(a)),
          (np.zeros((0, 3)),)),
         ("qr no rows", lambda a: tuple(L.qr(a)), lambda a: tuple(np.linalg.qr(a)),
          (np.zeros((0, 3)),)),
         ("pinv no rows", L.pinv, np.linalg.pinv, (np.zeros((0, 3)),)),
         ("inv stack of 0x0", L.inv, np.linalg.inv, (np.zeros((2, 0, 0)),)),
         ("solve without right-hand sides", L.solve, np.linalg.solve,
          (np.eye(3), np.zeros((3, 0)))),
         ("cholesky 0x0", L.cholesky, np.linalg.cholesky, (np.zeros((0, 0)),)),
         ("svdvals empty stack", L.svdvals, np.linalg.svdvals, (np.zeros((0, 3, 3)),))]


@pytest.mark.parametrize("name,fn,ref,args", EMPTY, ids=[c[0] for c in EMPTY])
def test_empty_matrices_give_numpys_results_interpreted_and_compiled(name, fn, ref, args):
    want = ref(*args)
    for got in (fn(*args), tj.jit(fn)(*args)):
        for g, w in zip(*((got, want) if isinstance(want, tuple) else ((got,), (want,)))):
            assert np.shape(g) == np.shape(w)
            np.testing.assert_array_equal(g, w)
