"""scipy.linalg.eigh's subset_by_index and subset_by_value: values against SciPy (real,
complex Hermitian, generalized), derivatives of an index subset, the traced value subset's
error."""

import numpy as np
import pytest
import scipy.linalg as sl

import tracejit as tj
import tracejit.numpy as tnp
import tracejit.scipy.linalg as tsl
from tracejit.errors import ConcretizationError
from tracejit.testing import check_grads

RNG = np.random.default_rng(5)
M = RNG.standard_normal((5, 5))
SYM = M + M.T
C = RNG.standard_normal((5, 5)) + 1j * RNG.standard_normal((5, 5))
HERM = C + C.conj().T
K = RNG.standard_normal((5, 5))
SPD = K @ K.T + 5 * np.eye(5)


def _same_vectors(v, v_ref):
    """Equal up to each column's phase (sign for real matrices)."""
    v, v_ref = np.asarray(v), np.asarray(v_ref)
    phase = np.sum(v_ref.conj() * v, axis=0)
    np.testing.assert_allclose(v, v_ref * (phase / np.abs(phase)), atol=1e-10)


@pytest.mark.parametrize("a, b", [(SYM, None), (HERM, None), (SYM, SPD)])
def test_subsets_match_scipy(a, b):
    for subset in ((0, 0), (1, 3), (4, 4)):
        w, v = tsl.eigh(a, b, subset_by_index=subset)
        w_ref, v_ref = sl.eigh(a, b, subset_by_index=list(subset))
        np.testing.assert_allclose(w, w_ref, rtol=1e-11, atol=1e-12)
        _same_vectors(v, v_ref)
    w_all = sl.eigh(a, b, eigvals_only=True)
    bounds = ((w_all[1] + w_all[2]) / 2, (w_all[3] + w_all[4]) / 2)  # w[2] and w[3]
    w, v = tsl.eigh(a, b, subset_by_value=bounds)
    w_ref, v_ref = sl.eigh(a, b, subset_by_value=bounds)
    assert len(w) == len(w_ref) == 2
    np.testing.assert_allclose(w, w_ref, rtol=1e-11)
    _same_vectors(v, v_ref)


def test_index_subsets_differentiate_and_compile():
    top = lambda a: tsl.eigh(a, subset_by_index=(3, 4), eigvals_only=True)
    check_grads(top, (SYM,), order=2)
    np.testing.assert_allclose(tj.jit(top)(SYM), sl.eigh(SYM, eigvals_only=True)[3:],
                               rtol=1e-12)
    # d w_i = v_iᵀ dA v_i, by hand, for the largest eigenvalue; only the lower triangle is
    # read, so each entry below the diagonal stands for two
    g = tj.grad(lambda a: tsl.eigh(a, subset_by_index=(4, 4), eigvals_only=True)[0])(SYM)
    v = np.linalg.eigh(SYM)[1][:, 4]
    np.testing.assert_allclose(g, np.tril(2 * np.outer(v, v), -1) + np.diag(v * v),
                               atol=1e-10)


def test_subset_errors_name_the_problem():
    with pytest.raises(ValueError, match="out of range"):
        tsl.eigh(SYM, subset_by_index=(2, 5))
    with pytest.raises(ValueError, match="not both"):
        tsl.eigh(SYM, subset_by_index=(0, 1), subset_by_value=(0.0, 1.0))
    with pytest.raises(ConcretizationError, match="subset_by_index"):
        tj.jit(lambda a: tsl.eigh(a, subset_by_value=(0.0, 1.0), eigvals_only=True))(SYM)
    with pytest.raises(ValueError, match="lo < hi"):
        tsl.eigh(SYM, subset_by_value=(1.0, 0.0))
    assert tnp.shape(tsl.eigh(SYM, subset_by_value=(1e9, 2e9), eigvals_only=True)) == (0,)
