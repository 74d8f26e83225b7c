"""Generated loops vectorize: transcendentals call vector math, reductions keep partial sums.

The floating-point policy: elementwise math keeps IEEE order (vector math functions are
within 4 ulp, docs/vector-math.md); float sums and products into a scalar or a row
accumulator may be reassociated, so LLVM keeps vector partial sums. That is faster than one
running sum and more accurate: the tests bound the error against an exact sum and against
NumPy's pairwise sum.
"""

import math
import re

import numpy as np
import pytest

import tracejit as tj
import tracejit.nn as nn
import tracejit.numpy as tnp
from tracejit.compiler import vecmath

RNG = np.random.default_rng(20261204)


def _w1(x):
    return tnp.sum(tnp.tanh(x) * tnp.sin(x) + tnp.exp(-0.5 * x * x))


W1_GRAD = tj.jit(tj.grad(_w1))


def _w1_grad_hand(x):
    x = x.astype(np.float64)
    t = np.tanh(x)
    return (1 - t * t) * np.sin(x) + t * np.cos(x) - x * np.exp(-0.5 * x * x)


@pytest.mark.skipif(not vecmath.target().variants, reason=f"no libmvec here: "
                    f"{vecmath.describe()}")
def test_w1_gradient_calls_vector_math():
    x = np.linspace(-4, 4, 4096)
    asm = W1_GRAD.lower(x).asm()
    called = set(re.findall(r"_ZGV\w+_(sin|cos|exp|tanh|expm1)\b", asm))
    # float64 tanh goes through expm1's vector variants (vecmath._VIA)
    assert called == {"sin", "cos", "exp", "expm1"}, called


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_w1_gradient_is_accurate(dtype):
    x = np.linspace(-4, 4, 4099).astype(dtype)  # odd length: vector body and scalar tail
    got = W1_GRAD(x)
    assert got.dtype == dtype
    tol = 4 * np.finfo(dtype).eps * 8  # a few ulp of each of ~8 terms of size <= 1
    np.testing.assert_allclose(got, _w1_grad_hand(x), rtol=0, atol=tol)


SUMS = tj.jit(lambda x, y: {"sum": tnp.sum(x), "dot_like": tnp.sum(x * y),
                            "rows": tnp.sum(x.reshape(64, -1), axis=1),
                            "prod": tnp.prod(1.0 + x[:64] * 1e-3),
                            "lse": nn.logsumexp(x.reshape(64, -1), axis=1)})


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_reassociated_sums_are_as_accurate_as_numpy(dtype):
    x = RNG.uniform(0.0, 1.0, 64 * 1000).astype(dtype)  # all positive: no cancellation
    y = RNG.uniform(0.0, 1.0, x.size).astype(dtype)
    got = SUMS(x, y)
    exact = math.fsum(x.astype(np.float64))
    exact_dot = math.fsum(x.astype(np.float64) * y.astype(np.float64))
    eps = np.finfo(dtype).eps
    numpy_err = abs(float(np.sum(x)) - exact) / exact
    our_err = abs(float(got["sum"]) - exact) / exact
    # Partial sums: far better than one running sum's bound n*eps, close to pairwise.
    assert our_err <= max(4 * numpy_err, 64 * eps), (our_err, numpy_err)
    assert abs(float(got["dot_like"]) - exact_dot) / exact_dot <= 64 * eps
    rows_exact = np.array([math.fsum(r) for r in x.astype(np.float64).reshape(64, -1)])
    np.testing.assert_allclose(got["rows"], rows_exact, rtol=64 * eps)
    np.testing.assert_allclose(got["prod"], np.prod(1.0 + x[:64].astype(np.float64) * 1e-3),
                               rtol=64 * eps)
    assert got["sum"].dtype == dtype and got["rows"].dtype == dtype


def test_reductions_vectorize():
    x = RNG.standard_normal(64 * 1000)
    llvm = SUMS.lower(x, x).llvm()
    assert re.search(r"fadd reassoc <\d+ x double>", llvm)


def test_vector_and_scalar_math_agree(monkeypatch):
    """The same program with vector math forced off gives results within the documented
    ulps (and identical special values)."""
    x = np.concatenate([np.linspace(-30, 30, 997), [0.0, -0.0, np.inf, -np.inf, np.nan]])

    def f(x):
        return {"exp": tnp.exp(x), "tanh": tnp.tanh(x), "sin": tnp.sin(x),
                "log1p": tnp.log1p(tnp.abs(x)), "sigmoid": nn.sigmoid(x),
                "lae": tnp.logaddexp(x, 0.5 * x)}

    vector = tj.jit(f)(x)
    monkeypatch.setattr(vecmath, "target", lambda platform=None: vecmath.SCALAR)
    scalar_low = tj.jit(f).lower(x)
    assert "_vm(" not in scalar_low.source
    scalar = tj.jit(f)(x)
    for k in vector:
        v, s = vector[k], scalar[k]
        np.testing.assert_array_equal(np.isnan(v), np.isnan(s), err_msg=k)
        finite = np.isfinite(s)
        np.testing.assert_array_equal(v[~finite & ~np.isnan(s)], s[~finite & ~np.isnan(s)])
        ulp = np.abs(v[finite] - s[finite]) / np.spacing(np.abs(s[finite]))
        assert ulp.max(initial=0) <= 8, (k, ulp.max())
