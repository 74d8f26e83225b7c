"""Big BLAS and LAPACK calls in compiled code run on every core, then BLAS returns to one
thread; small ones never switch; TRACEJIT_BLAS_THREADS fixes the count."""

import numba
import numpy as np
import pytest

import tracejit as tj
import tracejit.numpy as tnp
from tracejit.compiler import codegen

RNG = np.random.default_rng(5)
BIG = RNG.standard_normal((700, 700))  # 2 * 700**3 = 6.9e8 operations >= BLAS_THREAD_FLOPS
SMALL = RNG.standard_normal((30, 30))
FACTOR = RNG.standard_normal((1000, 1000))  # cholesky: 1000**3 / 3 = 3.3e8 operations


def _source(fn, *args):
    return tj.jit(fn).lower(*args).source


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="one core: nothing to switch")
def test_big_products_and_factorizations_switch_threads_and_stay_right(monkeypatch):
    monkeypatch.delenv("TRACEJIT_BLAS_THREADS", raising=False)
    assert 2 * 700 ** 3 >= codegen.BLAS_THREAD_FLOPS > 2 * 30 ** 3
    spd = FACTOR @ FACTOR.T + 1000 * np.eye(1000)
    f = lambda a, s: tnp.sum(a @ a) + tnp.sum(tnp.linalg.cholesky(s))  # noqa: E731
    src = _source(f, BIG, spd)
    threads = numba.config.NUMBA_NUM_THREADS
    assert src.count(f"_blas_threads({threads})") == 2 and src.count("_blas_threads(1)") == 2
    got = tj.jit(f)(BIG, spd)
    want = np.sum(BIG @ BIG) + np.sum(np.linalg.cholesky(spd))
    np.testing.assert_allclose(got, want, rtol=1e-10)
    assert "_blas_threads(" not in _source(lambda a: a @ a, SMALL)
    np.testing.assert_allclose(tj.jit(lambda a: a @ a)(SMALL), SMALL @ SMALL, rtol=1e-12)


def test_a_fixed_thread_count_turns_switching_off(monkeypatch):
    monkeypatch.setenv("TRACEJIT_BLAS_THREADS", "1")
    assert "_blas_threads(" not in _source(lambda a: a @ a, BIG)
