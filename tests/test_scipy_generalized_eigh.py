"""scipy.linalg.eigh with b=: the generalized symmetric-definite problem, types 1 to 3."""

import numpy as np
import pytest
import scipy.linalg as sl

import tracejit as tj
import tracejit.numpy as tnp
import tracejit.scipy.linalg as tsl
from tracejit.testing import check_grads

RNG = np.random.default_rng(11)
N = 4
_M = RNG.standard_normal((N, N))
A = _M + _M.T
_K = RNG.standard_normal((N, N))
B = _K @ _K.T + N * np.eye(N)


@pytest.mark.parametrize("kind", [1, 2, 3])
@pytest.mark.parametrize("lower", [True, False])
def test_values_match_scipy(kind, lower):
    # only the chosen triangle is read, as in SciPy: garbage in the other one
    a, b = A.copy(), B.copy()
    junk = np.triu(np.full((N, N), 7.0), 1)
    a, b = (a + junk, b + junk) if lower else (a + junk.T, b + junk.T)
    w, v = tsl.eigh(a, b, type=kind, lower=lower)
    w_ref, v_ref = sl.eigh(a, b, type=kind, lower=lower)
    np.testing.assert_allclose(w, w_ref, rtol=1e-12, atol=1e-12)
    signs = np.sign(v[0]) * np.sign(v_ref[0])
    np.testing.assert_allclose(v * signs, v_ref, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(tsl.eigvalsh(a, b, type=kind, lower=lower), w_ref, rtol=1e-12,
                               atol=1e-12)


def test_eigenvalue_derivative_by_hand_and_finite_differences():
    # type 1 with v^T b v = I: dw_i = v_i^T (da - w_i db) v_i
    w, v = sl.eigh(A, B)
    da, db = RNG.standard_normal((N, N)), RNG.standard_normal((N, N))
    da, db = da + da.T, db + db.T
    _, dw = tj.jvp(lambda a, b: tsl.eigh(a, b, eigvals_only=True), (A, B), (da, db))
    by_hand = np.array([v[:, i] @ (da - w[i] * db) @ v[:, i] for i in range(N)])
    np.testing.assert_allclose(dw, by_hand, rtol=1e-9, atol=1e-10)
    sym = lambda x: (x + x.T) / 2
    check_grads(lambda a, b: tsl.eigh(sym(a), sym(b), eigvals_only=True), (A, B), order=2)
    # a gauge-invariant function of the eigenvectors (the sign of each column cancels)
    check_grads(lambda a, b: tnp.sum(tsl.eigh(sym(a), sym(b), type=2)[1] ** 2, axis=0),
                (A, B), order=1)


def test_compiled_and_errors():
    f = tj.jit(lambda a, b: tsl.eigh(a, b, type=3))
    w, v = f(A, B)
    w_ref, v_ref = sl.eigh(A, B, type=3)
    np.testing.assert_allclose(w, w_ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(np.abs(v), np.abs(v_ref), rtol=1e-10, atol=1e-12)
    with pytest.raises(ValueError, match="type"):
        tsl.eigh(A, B, type=4)
    with pytest.raises(ValueError, match="one shape"):
        tsl.eigh(A, B[:3, :3])
