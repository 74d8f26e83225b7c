"""NumPy's lexicographic order of complex values: comparisons, extrema, sorting, median and
clip against NumPy, eager and compiled; derivatives against finite differences (away from
ties, where the order is locally constant) and by hand."""

import numpy as np
import pytest

import tracejit as tj
import tracejit.numpy as tnp
from tracejit.testing import check_grads

# Ties in the real part (1 + 2j, 1 - 1j, 1 + 2j; -3, -3 + 1j) exercise the imaginary key.
Z = np.array([1 + 2j, 1 - 1j, -3 + 0j, 1 + 2j, 2 - 5j, -3 + 1j])
W = np.array([1 + 3j, 0 + 0j, -3 - 1j, 1 + 2j, 2 + 5j, 4j])
M = np.stack([Z, W, W[::-1]])

CASES = {
    "less": (lambda z, w: tnp.less(z, w), np.less),
    "less_equal": (lambda z, w: tnp.less_equal(z, w), np.less_equal),
    "greater": (lambda z, w: z > w, np.greater),
    "greater_equal": (lambda z, w: z >= w, np.greater_equal),
    "maximum": (tnp.maximum, np.maximum), "minimum": (tnp.minimum, np.minimum),
    "fmax": (tnp.fmax, np.fmax), "fmin": (tnp.fmin, np.fmin),
    "max": (lambda z, w: tnp.max(tnp.stack([z, w]), axis=0),
            lambda z, w: np.max(np.stack([z, w]), axis=0)),
    "min_all": (lambda z, w: tnp.min(z), lambda z, w: np.min(z)),
    "argmax": (lambda z, w: tnp.argmax(tnp.stack([z, w, w[::-1]]), axis=1),
               lambda z, w: np.argmax(np.stack([z, w, w[::-1]]), axis=1)),
    "argmin": (lambda z, w: tnp.argmin(z), lambda z, w: np.argmin(z)),
    "sort": (lambda z, w: tnp.sort(tnp.stack([z, w]), axis=1),
             lambda z, w: np.sort(np.stack([z, w]), axis=1)),
    "argsort": (lambda z, w: tnp.argsort(z), lambda z, w: np.argsort(z, kind="stable")),
    "median": (lambda z, w: tnp.median(z), lambda z, w: np.median(z)),
    "ptp": (lambda z, w: tnp.ptp(w), lambda z, w: np.ptp(w)),
    "clip": (lambda z, w: tnp.clip(z, -1 + 0j, 1 + 1j), lambda z, w: np.clip(z, -1 + 0j, 1 + 1j)),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_values_match_numpy(name):
    ours, theirs = CASES[name]
    want = theirs(Z, W)
    np.testing.assert_array_equal(ours(Z, W), want)
    np.testing.assert_array_equal(tj.jit(ours)(Z, W), want)
    got32 = tj.jit(ours)(Z.astype(np.complex64), W.astype(np.complex64))
    np.testing.assert_array_equal(got32, theirs(Z.astype(np.complex64), W.astype(np.complex64)))


def test_derivatives_follow_the_chosen_elements():
    rng = np.random.default_rng(3)
    z = rng.standard_normal(7) + 1j * rng.standard_normal(7)  # no ties
    weights = np.arange(1.0, 8.0)
    check_grads(lambda z: tnp.real(tnp.sort(z) * (1 - 0.5j)) * weights, (z,), order=2)
    check_grads(lambda z: tnp.max(z) * (2 + 1j), (z,), order=1)
    check_grads(lambda z: tnp.median(z[:6]), (z,), order=1)
    check_grads(lambda z: tnp.maximum(z, z[::-1] * 0.5), (z,), order=1)
    # by hand: re(max z) picks one element, whose gradient is 1 (and 0 elsewhere)
    g = tj.jit(tj.grad(lambda z: tnp.real(tnp.max(z))))(z)
    want = np.zeros(7, complex)
    want[np.argmax(z)] = 1.0
    np.testing.assert_array_equal(g, want)
