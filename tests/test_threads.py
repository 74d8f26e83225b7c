"""Threads by default: big kernels run their outer loop on all cores (TBB), and a process
that has run them can still fork and be called from several Python threads."""

import multiprocessing
import threading

import numpy as np
import pytest

import tracejit as tj
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
