"""Data is not code: arrays a program closes over are arguments of the compiled kernel.

Compile time, source size and the module cache key depend on shapes and dtypes only; two
closures over different data of one shape share one compiled module; nothing a user passes
or closes over is written to the cache directory; constants that are patterns (`arange`,
`ones`) become `iota`/fills the loops compute.
"""

import importlib.util
import os
import sys
import time

import numpy as np
from numba.core import event

import tracejit as tj
import tracejit.nn as nn
import tracejit.numpy as tnp
from tracejit.compiler.build import cache_dir

RNG = np.random.default_rng(20261202)
N, D = 20000, 100  # X is 16 MB
X = RNG.standard_normal((N, D))
Y = RNG.standard_normal(N)
W0 = np.linspace(-1.0, 1.0, D)


def least_squares_grad(X, y):
    """A gradient closing over `X` and `y` (the usual way a loss reaches an optimizer)."""
    return tj.jit(tj.grad(lambda w: tnp.mean((X @ w - y) ** 2)))


def _hand_grad(X, y, w):
    return 2.0 * X.T @ (X @ w - y) / len(y)


def _numba_compiles(fn):
    """Run `fn`, counting the Numba compilations it starts."""
    with event.install_recorder("numba:compile") as rec:
        out = fn()
    return out, sum(1 for ev in rec.buffer if ev[1].is_start)


def test_closed_over_arrays_are_arguments_not_source_text():
    g = least_squares_grad(X, Y)
    t0 = time.perf_counter()
    low = g.lower(W0)
    elapsed = time.perf_counter() - t0
    assert len(low.source) < 20_000, len(low.source)
    assert elapsed < 2.0, elapsed  # independent of the data's size (was minutes)
    assert repr(float(X[0, 0]))[:10] not in low.source
    np.testing.assert_allclose(g(W0), _hand_grad(X, Y, W0), rtol=1e-10)


def test_new_data_of_the_same_shape_compiles_nothing():
    g1 = least_squares_grad(X, Y)
    g1(W0)
    X2, Y2 = RNG.standard_normal((N, D)), RNG.standard_normal(N)
    g2 = least_squares_grad(X2, Y2)
    got, compiles = _numba_compiles(lambda: g2(W0))
    assert compiles == 0
    assert g2.lower(W0).module is g1.lower(W0).module
    np.testing.assert_allclose(got, _hand_grad(X2, Y2, W0), rtol=1e-10)


def _cache_files():
    root = cache_dir()
    return {os.path.join(d, f) for d, _, files in os.walk(root) for f in files}


def test_nothing_closed_over_reaches_the_cache_directory():
    secret = RNG.standard_normal((300, 7)) + 12345.678  # distinctive bytes and text
    labels = RNG.integers(0, 7, 300)
    before = _cache_files()

    def loss(W):
        logits = secret @ W
        return tnp.mean(nn.logsumexp(logits, axis=1) - logits[tnp.arange(300), labels])

    tj.jit(tj.value_and_grad(loss))(np.ones((7, 7)))
    new = _cache_files() - before
    needles = [secret[:4].tobytes(), labels[:16].tobytes(), repr(float(secret[0, 0]))[:9].encode()]
    for path in new:
        with open(path, "rb") as f:
            data = f.read()
        assert not any(n in data for n in needles), path


def test_arange_index_is_an_iota_not_a_constant():
    labels = RNG.integers(0, 10, 5000)

    def loss(logits):
        return tnp.sum(logits[tnp.arange(5000), labels] ** 2)

    low = tj.jit(tj.grad(loss)).lower(np.ones((5000, 10)))
    assert "iota" in str(low.ir)
    assert [c.shape for c in low.consts] == [(5000,)]  # only the labels
    logits = RNG.standard_normal((5000, 10))
    want = np.zeros((5000, 10))
    want[np.arange(5000), labels] = 2 * logits[np.arange(5000), labels]
    np.testing.assert_allclose(tj.jit(tj.grad(loss))(logits), want, rtol=1e-12)


def test_fills_and_counts_made_while_tracing_become_equations():
    def f(x):
        return x * np.ones(6) + np.arange(6) * 2 + np.full(6, 0.5)

    ir = tj.make_ir(f)(np.zeros(6))
    assert not ir.constvars
    x = RNG.standard_normal(6)
    np.testing.assert_array_equal(tj.jit(f)(x), f(x))


def test_closure_inside_control_flow_bodies():
    A = RNG.standard_normal((64, 64)) / 8.0
    b = RNG.standard_normal(64)

    def loss(x0):
        def step(x, _):
            return tnp.tanh(A @ x + b), None
        x, _ = tj.scan(step, x0, None, length=5)
        return tnp.sum(x ** 2)

    g = tj.jit(tj.grad(loss))
    low = g.lower(np.ones(64))
    assert len(low.source) < 20_000
    assert repr(float(A[0, 0]))[:10] not in low.source
    x0 = RNG.standard_normal(64)
    np.testing.assert_allclose(g(x0), tj.grad(loss)(x0), rtol=1e-10)


def test_dumped_module_runs_standalone_with_its_constants(tmp_path, monkeypatch):
    monkeypatch.setenv("TRACEJIT_DUMP_DIR", str(tmp_path))
    Xs, ys = X[:50, :3].copy(), Y[:50].copy()
    g = least_squares_grad(Xs, ys)
    w = np.array([0.5, -1.0, 2.0])
    want = g(w)
    (py,) = [p for p in os.listdir(tmp_path) if p.endswith(".py")]
    assert os.path.exists(tmp_path / (py[:-3] + ".npz"))
    spec = importlib.util.spec_from_file_location("dumped_program", tmp_path / py)
    module = importlib.util.module_from_spec(spec)
    sys.modules["dumped_program"] = module
    try:
        spec.loader.exec_module(module)
        np.testing.assert_array_equal(module.run(w), want)
    finally:
        del sys.modules["dumped_program"]
