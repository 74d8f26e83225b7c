"""The call path of compiled programs: pytrees of arrays and Python numbers go straight to
the kernel once a signature has been seen; anything else takes the general path, never a
wrong kernel."""

import time

import numpy as np

import tracejit as tj
import tracejit.numpy as tnp

RNG = np.random.default_rng(20261205)


def mlp_loss(p, X, Y, scale):
    h = tnp.tanh(X @ p["W1"] + p["b1"])
    return scale * tnp.mean((h @ p["W2"] + p["b2"] - Y) ** 2)


PARAMS = {"W1": RNG.standard_normal((8, 16)) * 0.3, "b1": np.zeros(16),
          "W2": RNG.standard_normal((16, 3)) * 0.3, "b2": np.zeros(3)}
X, Y = RNG.standard_normal((4, 8)), RNG.standard_normal((4, 3))
STEP = tj.jit(tj.value_and_grad(mlp_loss))


def _check(got, want):
    assert type(got[0]) is np.float64
    np.testing.assert_allclose(got[0], want[0], rtol=1e-12)
    assert set(got[1]) == set(PARAMS)
    for k in PARAMS:
        np.testing.assert_allclose(got[1][k], want[1][k], rtol=1e-11, atol=1e-15)


def test_pytree_and_number_arguments_take_the_fast_path_with_right_results():
    want = tj.value_and_grad(mlp_loss)(PARAMS, X, Y, 2.0)
    first = STEP(PARAMS, X, Y, 2.0)
    assert len(STEP._fast) == 1  # the signature is now served without the general path
    _check(first, want)
    _check(STEP(PARAMS, X, Y, 2.0), want)
    # A different number: the same kernel, the value passed through.
    _check(STEP(PARAMS, X, Y, 3.0), tj.value_and_grad(mlp_loss)(PARAMS, X, Y, 3.0))


def test_other_layouts_dtypes_and_kinds_of_leaves_are_still_right():
    want = tj.value_and_grad(mlp_loss)(PARAMS, X, Y, 2.0)
    strided = {**PARAMS, "W1": np.asfortranarray(PARAMS["W1"])}
    _check(STEP(strided, X, Y, 2.0), want)
    _check(STEP(PARAMS, X, Y, np.float64(2.0)), want)
    _check(STEP(PARAMS, [list(r) for r in X], Y, 2.0), want)
    got32 = STEP({k: v.astype(np.float32) for k, v in PARAMS.items()},
                 X.astype(np.float32), Y.astype(np.float32), 2.0)
    assert got32[1]["W1"].dtype == np.float32
    np.testing.assert_allclose(got32[1]["W1"], want[1]["W1"], rtol=2e-4, atol=1e-6)


def test_small_step_overhead_is_small():
    STEP(PARAMS, X, Y, 2.0)
    n = 2000
    t0 = time.perf_counter()
    for _ in range(n):
        STEP(PARAMS, X, Y, 2.0)
    per_call = (time.perf_counter() - t0) / n
    assert per_call < 500e-6, per_call  # a generous bound: tens of microseconds here
