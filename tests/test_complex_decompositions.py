"""Decompositions of complex matrices (svd, qr, eig and what is built on them: pinv, lstsq,
matrix norms, cond), and eig of real matrices: values against NumPy and SciPy, eager and
compiled; derivatives against hand derivations and finite differences (check_grads)."""

import numpy as np
import pytest
import scipy.linalg as sl

import tracejit as tj
import tracejit.numpy as tnp
import tracejit.scipy.linalg as tsl
from tracejit.testing import check_grads

RNG = np.random.default_rng(11)


def _z(*shape, dtype=np.complex128):
    return (RNG.standard_normal(shape) + 1j * RNG.standard_normal(shape)).astype(dtype)


SHAPES = [(4, 4), (5, 3), (3, 5)]


def _svd(a):
    return tnp.linalg.svd(a, full_matrices=False)


_svd_jit = tj.jit(_svd)


@pytest.mark.parametrize("shape", SHAPES)
def test_complex_svd_values(shape):
    a = _z(*shape)
    u_ref, s_ref, vh_ref = np.linalg.svd(a, full_matrices=False)
    for u, s, vh in (_svd(a), _svd_jit(a)):
        assert np.asarray(s).dtype == np.float64 and np.asarray(u).dtype == np.complex128
        np.testing.assert_allclose(s, s_ref, rtol=1e-12)
        np.testing.assert_allclose((u * s) @ vh, a, atol=1e-12)
        # the same vectors up to each pair's common phase: u_k vh_k agrees
        np.testing.assert_allclose(np.einsum("ik,kj->kij", u, vh),
                                   np.einsum("ik,kj->kij", u_ref, vh_ref), atol=1e-10)
    s32 = tj.jit(tnp.linalg.svdvals)(a.astype(np.complex64))
    assert s32.dtype == np.float32
    np.testing.assert_allclose(s32, s_ref, rtol=1e-5)


@pytest.mark.parametrize("shape", SHAPES)
def test_complex_svd_derivatives(shape):
    a = _z(*shape)
    da = _z(*shape)
    u, s, vh = np.linalg.svd(a, full_matrices=False)
    # ds_i = re(u_iᴴ dA v_i), by hand
    _, ds = tj.jvp(tnp.linalg.svdvals, (a,), (da,))
    np.testing.assert_allclose(ds, np.real(np.einsum("ji,jk,ik->i", u.conj(), da, vh.conj())),
                               rtol=1e-10, atol=1e-12)
    check_grads(tnp.linalg.svdvals, (a,), order=2)
    # functions of the vectors that do not depend on each pair's phase
    c = _z(shape[0], shape[1])
    pair = lambda a: tnp.real(tnp.sum(c * (_svd(a)[0][:, :1] @ _svd(a)[2][:1, :])))
    check_grads(pair, (a,), order=2)
    check_grads(lambda a: tnp.abs(_svd(a)[0]) ** 2, (a,), order=1)
    check_grads(lambda a: tnp.abs(_svd(a)[2]) ** 2, (a,), order=1)
    np.testing.assert_allclose(tj.jit(tj.grad(pair))(a), tj.grad(pair)(a), rtol=1e-10)


@pytest.mark.parametrize("shape", SHAPES)
def test_complex_qr(shape):
    a = _z(*shape)
    q_ref, r_ref = np.linalg.qr(a)
    for q, r in (tnp.linalg.qr(a), tj.jit(tnp.linalg.qr)(a)):
        np.testing.assert_allclose(q, q_ref, atol=1e-12)
        np.testing.assert_allclose(r, r_ref, atol=1e-12)
    assert np.allclose(np.diag(r_ref).imag, 0)  # LAPACK's R has a real diagonal
    check_grads(lambda a: tnp.linalg.qr(a)[0], (a,), order=2)
    check_grads(lambda a: tnp.linalg.qr(a)[1], (a,), order=2)
    # the derivative keeps Q's columns orthonormal and R's diagonal real
    da = _z(*shape)
    (q, r), (dq, dr) = tj.jvp(tnp.linalg.qr, (a,), (da,))
    qh_dq = np.asarray(q).conj().T @ dq
    np.testing.assert_allclose(qh_dq, -qh_dq.conj().T, atol=1e-12)
    np.testing.assert_allclose(np.diag(dr).imag, 0, atol=1e-12)
    np.testing.assert_allclose(dq @ r + q @ dr, da, atol=1e-12)


def _matched(w, w_ref):
    """w reordered to match w_ref (LAPACK's order may differ between calls)."""
    order = [int(np.argmin(np.abs(w - x))) for x in w_ref]
    return np.asarray(w)[order]


def test_eig_values_of_complex_and_real_matrices():
    a = _z(4, 4)
    w_ref, v_ref = np.linalg.eig(a)
    for w, v in (tnp.linalg.eig(a), tj.jit(tnp.linalg.eig)(a)):
        np.testing.assert_allclose(_matched(w, w_ref), w_ref, rtol=1e-12)
        np.testing.assert_allclose(a @ v, v * w, atol=1e-12)
        np.testing.assert_allclose(np.linalg.norm(v, axis=0), 1.0, rtol=1e-12)
    # a real matrix with complex eigenvalues (a rotation): complex results, eager and compiled
    rot = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 2.0]])
    for w in (tnp.linalg.eigvals(rot), tj.jit(tnp.linalg.eigvals)(rot)):
        assert np.asarray(w).dtype == np.complex128
        want = np.array([-1j, 1j, 2])
        np.testing.assert_allclose(_matched(w, want), want, atol=1e-14)
    assert tj.jit(tnp.linalg.eigvals)(rot.astype(np.float32)).dtype == np.complex64
    # real matrices go to LAPACK's real solver, as in NumPy: the same values and vectors
    # (real ones stay real), complex conjugate pairs included
    x = RNG.standard_normal((6, 6))
    w_ref, v_ref = np.linalg.eig(x)
    assert np.iscomplexobj(w_ref) and (np.asarray(w_ref).imag == 0).any()
    for w, v in (tnp.linalg.eig(x), tj.jit(tnp.linalg.eig)(x)):
        assert np.asarray(w).dtype == np.complex128
        np.testing.assert_allclose(w, w_ref, rtol=1e-12)
        np.testing.assert_allclose(v, v_ref, atol=1e-12)
    w32, v32 = tj.jit(tnp.linalg.eig)(x.astype(np.float32))
    assert v32.dtype == np.complex64
    np.testing.assert_allclose(x @ v32, v32 * w32, atol=1e-4)
    batch = _z(3, 4, 4)
    wb = tj.jit(tnp.linalg.eigvals)(batch)
    for i in range(3):
        np.testing.assert_allclose(_matched(wb[i], np.linalg.eigvals(batch[i])),
                                   np.linalg.eigvals(batch[i]), rtol=1e-12)


def test_eig_derivatives_by_hand_and_finite_differences():
    a, da = _z(4, 4), _z(4, 4)
    w_ref, vl, vr = sl.eig(a, left=True, right=True)
    # dλ_i = y_iᴴ dA x_i / (y_iᴴ x_i), with y_i the left eigenvectors
    want = np.einsum("ji,jk,ki->i", vl.conj(), da, vr) / np.einsum("ji,ji->i", vl.conj(), vr)
    w, dw = tj.jvp(tnp.linalg.eigvals, (a,), (da,))
    order = [int(np.argmin(np.abs(w - x))) for x in w_ref]
    np.testing.assert_allclose(np.asarray(dw)[order], want, rtol=1e-10)
    check_grads(tnp.linalg.eigvals, (a,), order=2)
    check_grads(lambda a: tnp.abs(tnp.linalg.eig(a)[1]) ** 2, (a,), order=1)
    # real matrices: sum λ = tr A and sum λ² = tr A², so the gradients are I and 2Aᵀ
    x = RNG.standard_normal((5, 5))
    check_grads(tnp.linalg.eigvals, (x,), order=2)
    check_grads(lambda x: tnp.abs(tnp.linalg.eig(x)[1]) ** 2, (x,), order=1)
    g1 = tj.jit(tj.grad(lambda x: tnp.real(tnp.sum(tnp.linalg.eigvals(x)))))(x)
    np.testing.assert_allclose(g1, np.eye(5), atol=1e-12)
    g2 = tj.grad(lambda x: tnp.real(tnp.sum(tnp.linalg.eigvals(x) ** 2)))(x)
    np.testing.assert_allclose(g2, 2 * x.T, atol=1e-10)


def test_eig_repeated_eigenvalues_give_nan_vector_derivatives():
    a = np.diag([1.0, 1.0, 3.0]).astype(np.complex128)
    g = tj.grad(lambda a: tnp.sum(tnp.abs(tnp.linalg.eig(a)[1][:, 0]) ** 2 * tnp.arange(3.0)))(a)
    assert np.isnan(g).any()
    gw = tj.grad(lambda a: tnp.real(tnp.sum(tnp.linalg.eigvals(a))))(a)
    np.testing.assert_allclose(gw, np.eye(3), atol=1e-14)


@pytest.mark.parametrize("shape", [(5, 3), (3, 5)])
def test_complex_pinv_lstsq_rank_norms_cond(shape):
    a = _z(*shape)
    np.testing.assert_allclose(tnp.linalg.pinv(a), np.linalg.pinv(a), atol=1e-12)
    np.testing.assert_allclose(tj.jit(tnp.linalg.pinv)(a), np.linalg.pinv(a), atol=1e-12)
    check_grads(tnp.linalg.pinv, (a,), order=1)
    b = _z(shape[0], 2)
    x, res, rank, s = tnp.linalg.lstsq(a, b)
    x_ref, res_ref, rank_ref, s_ref = np.linalg.lstsq(a, b)
    np.testing.assert_allclose(x, x_ref, atol=1e-12)
    np.testing.assert_allclose(s, s_ref, rtol=1e-12)
    assert int(rank) == rank_ref
    if shape[0] > shape[1]:
        assert np.asarray(res).dtype == np.float64
        np.testing.assert_allclose(res, res_ref, rtol=1e-10)
    check_grads(lambda a, b: tnp.linalg.lstsq(a, b)[0], (a, b), order=1)
    for ord in (2, -2, "nuc", "fro", 1, np.inf):
        np.testing.assert_allclose(tnp.linalg.norm(a, ord), np.linalg.norm(a, ord),
                                   rtol=1e-12)
    np.testing.assert_allclose(tj.jit(lambda a: tnp.linalg.norm(a, "nuc"))(a),
                               np.linalg.norm(a, "nuc"), rtol=1e-12)
    check_grads(lambda a: tnp.linalg.norm(a, 2), (a,), order=2)
    check_grads(lambda a: tnp.linalg.norm(a, "nuc"), (a,), order=2)
    np.testing.assert_allclose(tnp.linalg.cond(a), np.linalg.cond(a), rtol=1e-12)
    assert int(tnp.linalg.matrix_rank(a)) == np.linalg.matrix_rank(a)


def test_complex_spectral_norm_gradient_by_hand():
    # d s_max = re(u₁ᴴ dA v₁), so the gradient in the convention df/dx − i df/dy is conj(u₁ v₁ᴴ)
    a = _z(4, 3)
    u, s, vh = np.linalg.svd(a)
    g = tj.jit(tj.grad(lambda a: tnp.linalg.norm(a, 2)))(a)
    np.testing.assert_allclose(g, np.conj(np.outer(u[:, 0], vh[0])), atol=1e-10)


def test_complex_matrix_power():
    a = _z(3, 3) * 0.5
    for n in (3, -2):
        np.testing.assert_allclose(tnp.linalg.matrix_power(a, n),
                                   np.linalg.matrix_power(a, n), rtol=1e-11)
    check_grads(lambda a: tnp.linalg.matrix_power(a, 3), (a,), order=2)


def test_scipy_complex_conjugate_transposed_and_hermitian_solves():
    m = _z(4, 4)
    h = m @ m.conj().T + 4 * np.eye(4)
    lo = np.linalg.cholesky(h)
    b = _z(4, 2)
    for lower, a in ((True, lo), (False, lo.conj().T)):
        for trans in (0, 1, 2, "C"):
            np.testing.assert_allclose(
                tsl.solve_triangular(a, b, trans=trans, lower=lower),
                sl.solve_triangular(a, b, trans=trans, lower=lower), rtol=1e-11)
    check_grads(lambda a, b: tsl.solve_triangular(a, b, trans="C", lower=True), (lo, b),
                order=1)
    # 'her' and 'pos' read one triangle and mirror it by the conjugate transpose
    noisy_low = h + np.triu(np.full((4, 4), 2 + 1j), 1)
    noisy_up = h + np.tril(np.full((4, 4), 2 + 1j), -1)
    for assume_a in ("her", "pos"):
        np.testing.assert_allclose(tsl.solve(noisy_low, b, assume_a=assume_a, lower=True),
                                   np.linalg.solve(h, b), rtol=1e-10)
        np.testing.assert_allclose(tsl.solve(noisy_up, b, assume_a=assume_a),
                                   np.linalg.solve(h, b), rtol=1e-10)
    sym = m + m.T  # complex symmetric (not Hermitian)
    np.testing.assert_allclose(tsl.solve(np.tril(sym), b, assume_a="sym", lower=True),
                               np.linalg.solve(sym, b), rtol=1e-10)


def test_scipy_complex_generalized_eigh():
    m, k = _z(4, 4), _z(4, 4)
    a = m + m.conj().T
    b = k @ k.conj().T + 4 * np.eye(4)
    for kind in (1, 2, 3):
        w, v = tsl.eigh(a, b, type=kind)
        w_ref = sl.eigh(a, b, type=kind, eigvals_only=True)
        np.testing.assert_allclose(w, w_ref, rtol=1e-11)
        v = np.asarray(v)
        if kind == 1:
            np.testing.assert_allclose(a @ v, b @ v * w, atol=1e-10)
            np.testing.assert_allclose(v.conj().T @ b @ v, np.eye(4), atol=1e-10)
    check_grads(lambda a, b: tsl.eigh(a, b, eigvals_only=True), (a, b), order=1)


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.complex128, np.complex64])
def test_complete_qr_of_tall_matrices_matches_numpy(dtype):
    a = _z(6, 3).astype(dtype) if np.dtype(dtype).kind == "c" else \
        RNG.standard_normal((6, 3)).astype(dtype)
    q_ref, r_ref = np.linalg.qr(a, mode="complete")
    tol = 1e-5 if dtype in (np.float32, np.complex64) else 1e-12
    complete = tj.jit(lambda a: tnp.linalg.qr(a, mode="complete"))
    for q, r in (tnp.linalg.qr(a, mode="complete"), complete(a)):
        assert q.shape == (6, 6) and r.shape == (6, 3) and q.dtype == dtype
        np.testing.assert_allclose(q, q_ref, atol=tol)
        np.testing.assert_allclose(r, r_ref, atol=tol)
    qs, rs = complete(np.stack([a, 2 * a]))
    np.testing.assert_allclose(qs[1] @ rs[1], 2 * a, atol=10 * tol)
    # scipy's mode 'full' is NumPy's 'complete'
    np.testing.assert_allclose(tsl.qr(a)[0], sl.qr(a)[0], atol=tol)
