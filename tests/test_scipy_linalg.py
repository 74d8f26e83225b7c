"""tracejit.scipy.linalg against scipy.linalg: values, derivatives against finite differences
to second order, a compiled gradient, a stack of matrices."""

import numpy as np
import pytest
import scipy.linalg as sl

import tracejit as tj
import tracejit.numpy as tnp
import tracejit.scipy.linalg as tsl
from tracejit.testing import check_grads

RNG = np.random.default_rng(3)
A = RNG.standard_normal((4, 4)) + 3 * np.eye(4)
S = A @ A.T + np.eye(4)
B = RNG.standard_normal(4)
BM = RNG.standard_normal((4, 2))
TALL = A[:, :3]


def _cases():
    yield "solve_triangular upper", tsl.solve_triangular, sl.solve_triangular, (np.triu(A), B)
    yield ("solve_triangular lower trans", lambda a, b: tsl.solve_triangular(
        a, b, trans="T", lower=True), lambda a, b: sl.solve_triangular(
        a, b, trans="T", lower=True), (A, BM))
    yield ("solve_triangular unit diagonal", lambda a, b: tsl.solve_triangular(
        a, b, lower=True, unit_diagonal=True), lambda a, b: sl.solve_triangular(
        a, b, lower=True, unit_diagonal=True), (A, BM))
    yield "cholesky upper", tsl.cholesky, sl.cholesky, (S,)
    yield ("cholesky lower", lambda a: tsl.cholesky(a, lower=True),
           lambda a: sl.cholesky(a, lower=True), (S,))
    for low in (False, True):
        yield (f"cho_solve lower={low}",
               lambda a, b, low=low: tsl.cho_solve(tsl.cho_factor(a, lower=low), b),
               lambda a, b, low=low: sl.cho_solve(sl.cho_factor(a, lower=low), b), (S, BM))
    for kind in (None, "sym", "pos"):
        yield (f"solve assume_a={kind}", lambda a, b, k=kind: tsl.solve(a, b, assume_a=k),
               lambda a, b, k=kind: sl.solve(a, b, assume_a=k), (S, B))
    yield ("solve diagonal", lambda a, b: tsl.solve(a, b, assume_a="diagonal"),
           lambda a, b: sl.solve(a, b, assume_a="diagonal"), (np.diag(np.diag(S)), BM))
    yield ("solve transposed", lambda a, b: tsl.solve(a, b, transposed=True),
           lambda a, b: sl.solve(a, b, transposed=True), (A, BM))
    yield ("eigh values", lambda a: tsl.eigh(a, eigvals_only=True),
           lambda a: sl.eigh(a, eigvals_only=True), (S,))
    yield "svd values", lambda a: tsl.svd(a)[1], lambda a: sl.svd(a)[1], (A,)
    yield ("qr economic", lambda a: tsl.qr(a, mode="economic")[1],
           lambda a: sl.qr(a, mode="economic")[1], (TALL,))
    yield "pinv", tsl.pinv, sl.pinv, (TALL,)
    yield "lstsq", lambda a, b: tsl.lstsq(a, b)[0], lambda a, b: sl.lstsq(a, b)[0], (TALL, B)
    yield "det", tsl.det, sl.det, (A,)
    yield "inv", tsl.inv, sl.inv, (A,)


CASES = list(_cases())


@pytest.mark.parametrize("name,fn,ref,args", CASES, ids=[c[0] for c in CASES])
def test_values_and_derivatives(name, fn, ref, args):
    np.testing.assert_allclose(fn(*args), ref(*args), rtol=1e-9, atol=1e-11)
    check_grads(fn, args, order=2, eps=1e-5)


def test_compiled_gradient_of_a_cholesky_solve_and_stacks():
    f = lambda a, b: tnp.sum(tsl.cho_solve(tsl.cho_factor(a), b) ** 2)  # noqa: E731
    g = tj.grad(f, argnums=(0, 1))
    for x, y in zip(tj.jit(g)(S, BM), g(S, BM)):
        np.testing.assert_allclose(x, y, rtol=1e-9, atol=1e-12)
    stack = np.stack([S, 2 * S])
    np.testing.assert_allclose(tsl.cho_solve(tsl.cho_factor(stack, lower=True), BM),
                               np.linalg.solve(stack, BM), rtol=1e-9)


def test_only_the_named_triangle_is_read():
    noisy = np.triu(A) + np.tril(np.ones((4, 4)), -1) * 7.0
    np.testing.assert_allclose(tsl.solve_triangular(noisy, B), sl.solve_triangular(noisy, B))
    g = tj.grad(lambda a: tnp.sum(tsl.solve_triangular(a, B)))(noisy)
    assert np.all(np.tril(g, -1) == 0.0)


def test_what_is_not_offered_says_so():
    with pytest.raises(NotImplementedError, match="raw"):
        tsl.qr(A, mode="raw", pivoting=True)
    with pytest.raises(ValueError, match="trans must be"):
        tsl.solve_triangular(A, B, trans=3)
    with pytest.raises(ValueError, match="incompatible"):
        tsl.solve_triangular(A, np.ones(3))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_compiled_triangular_solves_call_blas_for_every_layout(dtype):
    """Compiled triangular solves (BLAS trsm on C-ordered arrays): both triangles, both
    transposes, many right-hand sides, a stack, one-element and empty systems."""
    n, k = 40, 33
    a = (RNG.standard_normal((n, n)) + 4 * np.sqrt(n) * np.eye(n)).astype(dtype)
    b = RNG.standard_normal((n, k)).astype(dtype)
    tol = 1e-10 if dtype == np.float64 else 2e-5
    for lower in (False, True):
        for trans in (0, 1):
            f = tj.jit(lambda a, b, lower=lower, trans=trans: tsl.solve_triangular(
                a, b, lower=lower, trans=trans))
            got = f(a, b)
            assert got.dtype == dtype
            np.testing.assert_allclose(got, sl.solve_triangular(a, b, lower=lower,
                                                                trans=trans),
                                       rtol=tol, atol=tol)
    stack = np.stack([a, 2 * a])
    got = tj.jit(lambda s, b: tsl.solve_triangular(s, b, lower=True))(stack, b)
    np.testing.assert_allclose(got[1], sl.solve_triangular(2 * a, b, lower=True),
                               rtol=tol, atol=tol)
    one = tj.jit(lambda a, b: tsl.solve_triangular(a, b))(a[:1, :1], b[:1])
    np.testing.assert_allclose(one, b[:1] / a[0, 0], rtol=tol)
    empty = tj.jit(lambda a, b: tsl.solve_triangular(a, b))(a, b[:, :0])
    assert empty.shape == (n, 0)
