"""scipy.linalg.qr(pivoting=True): LAPACK's column-pivoted QR (geqp3), eager and compiled,
against SciPy for every dtype, shape and mode; derivatives of Q and R (the QR of a[:, P]
with P held) against finite differences; the permutation's zero derivative; bad input.

Matrices are Gaussian with columns scaled apart, so no two column norms tie (a tie may
legitimately pivot either way, and finite differences must not cross one). Compiled code
is a few programs shared between tests (one per dtype, covering every shape and mode)."""

import numpy as np
import pytest
import scipy.linalg as sl

import tracejit as tj
import tracejit.numpy as tnp
import tracejit.scipy.linalg as tsl
from tracejit.testing import check_grads

RNG = np.random.default_rng(20261207)
DTYPES = [np.float64, np.float32, np.complex128, np.complex64]
SHAPES = {"tall": (6, 4), "wide": (3, 5), "square": (4, 4), "stack": (2, 5, 3)}
MODES = ("full", "economic", "r")


def _mat(shape, dtype=np.float64):
    a = RNG.standard_normal(shape)
    if np.dtype(dtype).kind == "c":
        a = a + 1j * RNG.standard_normal(shape)
    return (a * RNG.permutation(np.linspace(1.0, 3.0, shape[-1]))).astype(dtype)


INPUTS = {dt: {name: _mat(shape, dt) for name, shape in SHAPES.items()} for dt in DTYPES}


def _tol(dtype):
    return 1e-5 if np.dtype(dtype) in (np.float32, np.complex64) else 1e-13


def _all_modes(a):
    return {mode: tsl.qr(a, mode=mode, pivoting=True) for mode in MODES}


def _all_inputs(mats):
    return {name: _all_modes(a) for name, a in mats.items()}


def _loss(a, c):
    q, r, _ = tsl.qr(a, mode="economic", pivoting=True)
    return tnp.real(tnp.sum(c * q)) + tnp.sum(tnp.sin(tnp.real(r)) + tnp.imag(r) ** 2)


GRAD_DTYPES = [np.float64, np.complex64]  # compiled gradients: one real, one complex


def _program(mats, c):
    """Every value test_compiled_* checks, one compiled program per dtype."""
    grad = mats["tall"].dtype in GRAD_DTYPES
    return _all_inputs(mats), tj.grad(_loss)(mats["tall"], c) if grad else None


_program_jit = tj.jit(_program)
C = {dt: _mat(SHAPES["tall"][:1] + (min(SHAPES["tall"]),), dt) for dt in DTYPES}


def _compare(got, a, dtype):
    """got (one of _all_modes' results) against SciPy on the same matrix."""
    for mode in MODES:
        ref = sl.qr(a, mode=mode, pivoting=True)
        out = got[mode]
        assert len(out) == len(ref) == (2 if mode == "r" else 3)
        for x, y in zip(out, ref):
            x = np.asarray(x)
            assert x.shape == y.shape and x.dtype == y.dtype, (mode, x.shape, x.dtype, y.dtype)
        np.testing.assert_array_equal(out[-1], ref[-1])  # the permutation, exactly
        assert out[-1].dtype == np.int32
        scale = np.max(np.abs(a))
        for x, y in zip(out[:-1], ref[:-1]):
            np.testing.assert_allclose(x, y, rtol=0, atol=_tol(dtype) * max(scale, 1.0))


@pytest.mark.parametrize("dtype", DTYPES)
def test_eager_values_match_scipy(dtype):
    for a in INPUTS[dtype].values():
        _compare(_all_modes(a), a, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_compiled_values_match_scipy(dtype):
    mats = INPUTS[dtype]
    got = _program_jit(mats, C[dtype])[0]
    for name, a in mats.items():
        _compare(got[name], a, dtype)


@pytest.mark.parametrize("dtype", GRAD_DTYPES)
def test_compiled_gradient_is_the_interpreted_one(dtype):
    """Through the permutation's gather and the QR rule's solves, compiled."""
    a, c = INPUTS[dtype]["tall"], C[dtype]
    g = _program_jit(INPUTS[dtype], c)[1]
    assert g.dtype == dtype
    tol = 1e-4 if np.dtype(dtype) in (np.float32, np.complex64) else 1e-12
    np.testing.assert_allclose(g, tj.grad(_loss)(a, c), rtol=tol, atol=tol)


def test_factorization_properties():
    """a[:, P] = Q R, Q unitary, R upper triangular with a real diagonal of non-increasing
    magnitude (LAPACK's convention), for one matrix and a stack."""
    for a in (INPUTS[np.complex128]["wide"], INPUTS[np.float64]["stack"]):
        q, r, p = (np.asarray(x) for x in tsl.qr(a, mode="economic", pivoting=True))
        ap = np.take_along_axis(a, p[..., None, :], axis=-1)
        np.testing.assert_allclose(q @ r, ap, atol=1e-13)
        np.testing.assert_allclose(np.swapaxes(q, -1, -2).conj() @ q,
                                   np.broadcast_to(np.eye(q.shape[-1]), q.shape[:-2]
                                                   + (q.shape[-1],) * 2), atol=1e-13)
        np.testing.assert_array_equal(np.tril(r, -1), 0)
        d = np.diagonal(r, axis1=-2, axis2=-1)
        np.testing.assert_array_equal(d.imag, 0)
        assert np.all(np.diff(np.abs(d), axis=-1) <= 0)


def test_empty_and_integer_matrices_as_scipy():
    for shape in ((0, 3), (3, 0)):
        a = np.zeros(shape)
        for mode in MODES:
            for x, y in zip(tsl.qr(a, mode=mode, pivoting=True),
                            sl.qr(a, mode=mode, pivoting=True)):
                assert np.shape(x) == y.shape and np.asarray(x).dtype == y.dtype
                np.testing.assert_array_equal(x, y)
    ints = np.array([[1, 2, 7], [3, 4, 1], [5, 0, 2]])
    for x, y in zip(tsl.qr(ints, pivoting=True), sl.qr(ints, pivoting=True)):
        assert np.asarray(x).dtype == y.dtype
        np.testing.assert_allclose(x, y, atol=1e-13)


def test_vmap_is_the_stack():
    stack = INPUTS[np.float64]["stack"]
    got = tj.vmap(lambda a: tsl.qr(a, mode="economic", pivoting=True))(stack)
    for x, y in zip(got, sl.qr(stack, mode="economic", pivoting=True)):
        np.testing.assert_allclose(x, y, atol=1e-13)


@pytest.mark.parametrize("name", ["tall", "wide", "square"])
def test_real_derivatives(name):
    a = INPUTS[np.float64][name]
    for mode in MODES:
        if mode == "full" and name == "tall":  # Q's extra columns have no derivative
            continue
        check_grads(lambda a, mode=mode: tsl.qr(a, mode=mode, pivoting=True)[:-1], (a,),
                    order=2)


@pytest.mark.parametrize("name", ["tall", "wide", "square"])
def test_complex_derivatives(name):
    """LAPACK's R has a real diagonal, which fixes Q's phases: Q and R are smooth functions
    of the matrix, as in the unpivoted QR; the derivative keeps Q's columns orthonormal and
    R's diagonal real, and dQ R + Q dR is the permuted dA."""
    a = INPUTS[np.complex128][name]
    check_grads(lambda a: tsl.qr(a, mode="economic", pivoting=True)[:-1], (a,), order=2)
    # a phase-free function of Q alone
    c = _mat((a.shape[0], a.shape[0]), np.complex128)

    def projector(a):  # Q Qᴴ, whatever Q's phases
        q = tsl.qr(a, mode="economic", pivoting=True)[0]
        return tnp.real(tnp.sum(c * (q @ tnp.conjugate(q.T))))
    check_grads(projector, (a,), order=1)
    da = _mat(a.shape, np.complex128)
    (q, r, p), (dq, dr, dp) = tj.jvp(lambda a: tsl.qr(a, mode="economic", pivoting=True),
                                     (a,), (da,))
    q, p = np.asarray(q), np.asarray(p)
    np.testing.assert_array_equal(dp, 0)
    qh_dq = q.conj().T @ dq
    np.testing.assert_allclose(qh_dq, -qh_dq.conj().T, atol=1e-12)
    np.testing.assert_allclose(np.diag(dr).imag, 0, atol=1e-12)
    np.testing.assert_allclose(dq @ np.asarray(r) + q @ dr, da[:, p], atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.complex64])
def test_single_precision_derivatives(dtype):
    a = INPUTS[dtype]["tall"]
    check_grads(lambda a: tsl.qr(a, mode="economic", pivoting=True)[:-1], (a,), order=1)
    _, (dq, dr, _) = tj.jvp(lambda a: tsl.qr(a, mode="economic", pivoting=True), (a,), (a,))
    assert dq.dtype == dr.dtype == dtype


def test_the_permutation_has_no_derivative():
    a = INPUTS[np.float64]["wide"]
    f = lambda a: tnp.sum(tsl.qr(a, mode="r", pivoting=True)[1] * 1.0)
    np.testing.assert_array_equal(tj.grad(f)(a), np.zeros_like(a))
    p, dp = tj.jvp(lambda a: tsl.qr(a, mode="economic", pivoting=True)[2], (a,),
                   (np.ones_like(a),))
    np.testing.assert_array_equal(p, sl.qr(a, pivoting=True)[2])
    np.testing.assert_array_equal(dp, 0)


def test_compiled_code_binds_geqp3_by_name():
    """The module calls geqp3 through a symbol registered at import (cacheable on disk),
    and stays within one factorization: geqp3 and orgqr, no geqrf."""
    src = tj.jit(lambda a: tsl.qr(a, pivoting=True)).lower(INPUTS[np.float64]["tall"]).source
    assert "tracejit_dgeqp3" in src and "_qr_pivoted(" in src
    assert "numba_ez_geqrf" not in src


def test_bad_input_says_so():
    with pytest.raises(ValueError, match="at least two-dimensional"):
        tsl.qr(np.ones(3), pivoting=True)
    with pytest.raises(ValueError, match="mode must be"):
        tsl.qr(np.ones((3, 3)), mode="reduced", pivoting=True)
    with pytest.raises(NotImplementedError, match="raw"):
        tsl.qr(np.ones((3, 3)), mode="raw", pivoting=True)
    with pytest.raises(NotImplementedError, match="complete factorization"):
        tj.grad(lambda a: tnp.sum(tsl.qr(a, pivoting=True)[0]))(INPUTS[np.float64]["tall"])
