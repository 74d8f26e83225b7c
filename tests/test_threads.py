"""Threads by default: big kernels run their outer loop on all cores (TBB), and a process
that has run them can still fork and be called from several Python threads."""

import multiprocessing
import threading

import numpy as np
import pytest

import tracejit as tj
import tracejit.nn as tnn
import tracejit.numpy as tnp
from tracejit.compiler import threads

pytestmark = pytest.mark.skipif(not threads.auto_parallel(),
                                reason="no fork-safe threading layer (TBB) here")

N = 1 << 16  # above the size where threads pay


def _loss(x):
    return tnp.sum(tnp.tanh(x) * tnp.sin(x) + tnp.exp(-0.5 * x * x))


GRAD = tj.jit(tj.grad(_loss))
X = np.linspace(-4, 4, N)


def _hand(x):
    t = np.tanh(x)
    return (1 - t * t) * np.sin(x) + t * np.cos(x) - x * np.exp(-0.5 * x * x)


def test_default_uses_threads_for_big_kernels_only():
    assert "numba.prange" in GRAD.lower(X).source
    assert "numba.prange" not in GRAD.lower(X[:1000]).source
    assert "numba.prange" not in tj.jit(tj.grad(_loss), parallel=False).lower(X).source
    np.testing.assert_allclose(GRAD(X), _hand(X), rtol=0, atol=1e-13)
    assert threads.layer() == "tbb"


def _child(queue):
    queue.put(float(np.abs(GRAD(X) - _hand(X)).max()))


def test_fork_after_a_threaded_call_computes_right_results():
    GRAD(X)  # threads started in this process
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(queue,))
    proc.start()
    proc.join(120)
    assert proc.exitcode == 0
    assert queue.get(timeout=5) < 1e-13


def test_calls_from_several_python_threads():
    results = [None] * 4

    def work(i):
        results[i] = GRAD(X * (1 + i / 10))

    workers = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    for i, r in enumerate(results):
        np.testing.assert_allclose(r, _hand(X * (1 + i / 10)), rtol=0, atol=1e-13)


def _xent(logits, labels):
    rows = tnp.arange(logits.shape[0])
    return tnp.mean(tnn.logsumexp(logits, axis=1) - logits[rows, labels])


def test_threaded_loops_read_their_index_as_a_signed_integer():
    """A prange index is unsigned to Numba; an iota read from it (a gather row index, an
    arange in arithmetic) must still type as int64, not as the float64 that uint64 and int64
    unify to."""
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((512, 128))
    labels = rng.integers(0, 128, 512)
    vg = tj.jit(tj.value_and_grad(_xent))
    assert "numba.prange" in vg.lower(logits, labels).source
    v, g = vg(logits, labels)
    m = logits.max(axis=1, keepdims=True)
    e = np.exp(logits - m)
    s = e.sum(axis=1, keepdims=True)
    want = e / s
    want[np.arange(512), labels] -= 1.0
    want /= 512
    np.testing.assert_allclose(g, want, rtol=0, atol=1e-15)
    np.testing.assert_allclose(
        v, np.mean(np.log(s[:, 0]) + m[:, 0] - logits[np.arange(512), labels]), rtol=1e-13)

    def shifted(x):
        return tnp.sum(x * (tnp.arange(x.shape[0]) + 1)[:, None])

    x = rng.standard_normal((512, 128))
    np.testing.assert_allclose(tj.jit(tj.grad(shifted))(x),
                               np.broadcast_to(np.arange(1, 513.0)[:, None], x.shape))
