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
]


@pytest.mark.parametrize("name,fn,ref,args", CASES, ids=[c[0] for c in CASES])
def test_values_and_derivatives(name, fn, ref, args):
    np.testing.assert_allclose(fn(*args), ref(*args), rtol=1e-10, atol=1e-12)
    check_grads(fn, args, order=2, eps=1e-5)


def test_cholesky_and_eigh_read_the_lower_triangle_only():
    upper_noise = S + np.triu(np.ones((4, 4)), 1) * 5.0  # NumPy ignores the strict upper part
    np.testing.assert_allclose(L.cholesky(upper_noise), np.linalg.cholesky(upper_noise))
    g = tj.grad(lambda a: tnp.sum(L.eigvalsh(a) ** 2))(upper_noise)
    assert np.all(np.triu(g, 1) == 0.0)


COMPILED = [("solve", L.solve, (A, BV)), ("inv", L.inv, (A,)), ("det", L.det, (A,)),
            ("cholesky", L.cholesky, (S,)), ("eigh", lambda a: L.eigh(a)[0], (S,))]


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
    with pytest.raises(NotImplementedError, match="svd"):
        L.svd(A)
    with pytest.raises(NotImplementedError, match="needs an SVD"):
        L.norm(A, 2)
