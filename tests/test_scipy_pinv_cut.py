"""scipy.linalg.pinv's cut: singular values at most atol + rtol * max(s) are dropped."""

import numpy as np
import pytest
import scipy.linalg as sl

import tracejit as tj
import tracejit.scipy.linalg as tsl
from tracejit.testing import check_grads


def _graded():
    """A 6 x 4 matrix with singular values 10, 1, 1e-2 and 1e-5."""
    rng = np.random.default_rng(3)
    u, _ = np.linalg.qr(rng.standard_normal((6, 4)))
    v, _ = np.linalg.qr(rng.standard_normal((4, 4)))
    return u @ np.diag([10.0, 1.0, 1e-2, 1e-5]) @ v.T


@pytest.mark.parametrize("kw, rank", [({}, 4), ({"atol": 1e-3}, 3), ({"atol": 0.5}, 2),
                                      ({"rtol": 1e-2}, 2), ({"atol": 1e-4, "rtol": 1e-2}, 2),
                                      ({"atol": 1e-6, "rtol": 1e-4}, 3)])
def test_cut_matches_scipy(kw, rank):
    a = _graded()
    p, r = tsl.pinv(a, return_rank=True, **kw)
    p_ref, r_ref = sl.pinv(a, return_rank=True, **kw)
    assert int(r) == int(r_ref) == rank
    np.testing.assert_allclose(p, p_ref, rtol=1e-9, atol=1e-9)


def test_cut_under_jit_and_grad():
    a = _graded()
    compiled = tj.jit(lambda a: tsl.pinv(a, atol=1e-3))(a)
    np.testing.assert_allclose(compiled, sl.pinv(a, atol=1e-3), rtol=1e-9, atol=1e-9)
    # away from the cut the rank is constant, so the pseudo-inverse is differentiable
    b = np.random.default_rng(4).standard_normal((4, 3))
    check_grads(lambda b: tsl.pinv(b, atol=1e-6), (b,), order=1)
    with pytest.raises(ValueError, match="positive"):
        tsl.pinv(a, atol=-1.0)
