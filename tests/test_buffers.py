"""The buffer pool that big arrays of compiled programs come from (compiler/buffers.py): a
buffer is reused only once nothing refers to it, results stay right while held (directly or
through views), and the pool stays within its limit."""

import threading

import numpy as np
import pytest

import tracejit as tj
import tracejit.numpy as tnp
from tracejit.compiler import buffers
from tracejit.compiler.buffers import MIN_BYTES, POOL, BufferPool

BIG = MIN_BYTES // 8 + 1000  # float64 elements: just over the size the pool serves


def _address(a) -> int:
    return a.__array_interface__["data"][0]


# -- the pool itself ------------------------------------------------------------------------

def test_a_buffer_comes_back_only_after_its_holder_lets_go():
    pool = BufferPool(1 << 20)
    (a,) = pool.take([(100, np.float64)])
    (b,) = pool.take([(100, np.float64)])
    assert a is not b  # `a` is still held
    a_address = _address(a)
    del a
    (c,) = pool.take([(100, np.float64)])
    assert _address(c) == a_address


def test_a_view_keeps_its_buffer():
    pool = BufferPool(1 << 20)
    (a,) = pool.take([(100, np.float64)])
    view = a[::2]
    address = _address(a)
    del a
    (b,) = pool.take([(100, np.float64)])
    assert _address(b) != address
    b_address = _address(b)
    del view, b
    (c, d) = pool.take([(100, np.float64)] * 2)  # the most recently used first
    assert (_address(c), _address(d)) == (b_address, address)
    assert pool.held_bytes() == (2 * 800, 0)


def test_one_take_never_hands_out_one_buffer_twice():
    pool = BufferPool(1 << 20)
    first = pool.take([(10, np.float32)] * 3)
    assert len({_address(b) for b in first}) == 3
    del first
    again = pool.take([(10, np.float32)] * 3)
    assert len({_address(b) for b in again}) == 3
    assert pool.held_bytes() == (120, 0)


def test_dtype_and_length_must_match():
    pool = BufferPool(1 << 20)
    (a,) = pool.take([(100, np.float64)])
    del a
    (b,) = pool.take([(100, np.float32)])
    (c,) = pool.take([(50, np.float64)])
    assert b.dtype == np.float32 and b.size == 100 and c.dtype == np.float64 and c.size == 50
    assert pool.held_bytes() == (800 + 400 + 400, 800)


def test_the_limit_forgets_free_buffers_first_then_the_oldest():
    pool = BufferPool(3 * 800)
    held = pool.take([(100, np.float64)] * 3)
    assert pool.held_bytes() == (3 * 800, 0)
    (free,) = pool.take([(100, np.float32)])  # no buffer is free: the oldest is forgotten
    assert pool.held_bytes() == (2 * 800 + 400, 0)
    del free
    more = pool.take([(100, np.float64)])  # the free float32 one goes before any in use
    assert pool.held_bytes() == (3 * 800, 0)
    held[0][:] = 1.0  # a forgotten buffer stays its holder's array
    assert held[0].sum() == 100.0 and more[0].size == 100


def test_a_request_over_the_limit_is_not_kept():
    pool = BufferPool(100)
    (a,) = pool.take([(1000, np.uint8)])
    assert a.size == 1000 and pool.held_bytes() == (0, 0)


def test_release_drops_only_what_nothing_holds():
    pool = BufferPool(1 << 20)
    kept, dropped = pool.take([(100, np.float64), (100, np.float64)])
    del dropped
    assert pool.release() == 800
    assert pool.held_bytes() == (800, 0)
    del kept
    assert pool.release() == 800 and pool.held_bytes() == (0, 0)


def test_threads_never_share_a_buffer():
    pool = BufferPool(1 << 24)
    errors = []

    def work(k):
        for i in range(300):
            (b,) = pool.take([(64, np.int64)])
            b[:] = k * 1000 + i
            if not (b == k * 1000 + i).all():
                errors.append((k, i))
            del b

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert pool.held_bytes()[0] <= 4 * 64 * 8


@pytest.mark.parametrize("text, mb", [("", 1024), ("0", 0), ("256", 256), ("0.5", 0.5)])
def test_limit_from_environment(text, mb):
    assert buffers._limit_from_env({"TRACEJIT_BUFFER_POOL_MB": text}) == int(mb * (1 << 20))


@pytest.mark.parametrize("text", ["lots", "-1", "nan", "inf"])
def test_bad_limit_is_refused_with_its_name(text):
    with pytest.raises(ValueError, match="TRACEJIT_BUFFER_POOL_MB"):
        buffers._limit_from_env({"TRACEJIT_BUFFER_POOL_MB": text})
    with pytest.raises(ValueError, match="TRACEJIT_BUFFER_POOL_MIN_BYTES"):
        buffers._min_bytes_from_env({"TRACEJIT_BUFFER_POOL_MIN_BYTES": text})


def test_smallest_pooled_size_from_environment():
    assert buffers._min_bytes_from_env({}) == 32 << 20
    assert buffers._min_bytes_from_env({"TRACEJIT_BUFFER_POOL_MIN_BYTES": "0"}) == 0


# -- compiled programs -----------------------------------------------------------------------

@pytest.fixture(scope="module")
def two_cumsums():
    return tj.jit(lambda x: tnp.cumsum(x) + tnp.cumsum(x[::-1]))


def _want(x):
    return np.cumsum(x) + np.cumsum(x[::-1])


def test_big_results_are_buffer_parameters(two_cumsums):
    x = np.ones(BIG)
    low = two_cumsums.lower(x)
    assert low.generated.pooled == [(BIG, np.dtype(np.float64))]
    assert "def kernel(a, _pool0):" in low.source
    # the two cumulative sums stay the kernel's own: allocated when they are made and
    # freed after their last use, not held for the whole call
    kernel = low.source.split("def kernel")[1].split("def run")[0]
    assert kernel.count("np.empty(") == 2
    # the module stands alone: its `run` makes the buffers itself
    np.testing.assert_allclose(low.module.run(x), _want(x))


def test_small_arrays_are_not(two_cumsums):
    x = np.ones(1000)
    assert two_cumsums.lower(x).generated.pooled == []


def test_held_results_keep_their_values(two_cumsums):
    rng = np.random.default_rng(0)
    xs = [rng.standard_normal(BIG) for _ in range(3)]
    results = [two_cumsums(x) for x in xs]
    views = [two_cumsums(x)[::3] for x in xs]
    for _ in range(3):  # further calls take only the buffers nothing holds
        two_cumsums(xs[0])
    assert len({_address(r) for r in results}) == 3
    for x, r, v in zip(xs, results, views):
        np.testing.assert_allclose(r, _want(x), rtol=1e-12, atol=1e-9)
        np.testing.assert_allclose(v, _want(x)[::3], rtol=1e-12, atol=1e-9)


def test_dropped_results_are_written_again(two_cumsums):
    x = np.random.default_rng(1).standard_normal(BIG)
    two_cumsums(x)
    held = POOL.held_bytes()[0]
    addresses = set()
    for k in range(5):
        r = two_cumsums(x * k)
        np.testing.assert_allclose(r, _want(x * k), rtol=1e-12, atol=1e-9)
        addresses.add(_address(r))
        del r
    assert POOL.held_bytes()[0] == held  # no new buffer: each call took freed ones
    assert len(addresses) == 1  # the most recently freed buffer each time


def test_a_big_matrix_result_reshapes_its_buffer():
    f = tj.jit(lambda x: (tnp.sin(x) * 2.0).reshape(BIG // 8, 8))
    x = np.linspace(-3.0, 3.0, BIG // 8 * 8)
    assert "_pool0.reshape(" in f.lower(x).source
    a = f(x)
    b = f(x + 1.0)
    np.testing.assert_allclose(a, (2.0 * np.sin(x)).reshape(-1, 8), rtol=1e-14)
    np.testing.assert_allclose(b, (2.0 * np.sin(x + 1.0)).reshape(-1, 8), rtol=1e-14)


def test_gradient_of_a_big_elementwise_loss_against_its_derivation():
    def loss(x):
        return tnp.sum(tnp.tanh(x) * tnp.sin(x) + tnp.exp(-0.5 * x * x))

    g = tj.jit(tj.grad(loss))
    rng = np.random.default_rng(2)
    xs = [rng.standard_normal(BIG) for _ in range(2)]
    grads = [g(x) for x in xs]
    for x, got in zip(xs, grads):
        t = np.tanh(x)
        want = (1.0 - t * t) * np.sin(x) + t * np.cos(x) - x * np.exp(-0.5 * x * x)
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)


def test_calls_from_several_threads(two_cumsums):
    rng = np.random.default_rng(3)
    xs = [rng.standard_normal(BIG) for _ in range(3)]
    wants = [_want(x) for x in xs]
    two_cumsums(xs[0])
    bad = []

    def work(k):
        for _ in range(3):
            r = two_cumsums(xs[k])
            if not np.allclose(r, wants[k], rtol=1e-12, atol=1e-9):
                bad.append(k)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not bad


def test_release_buffers_is_public(two_cumsums):
    x = np.ones(BIG)
    two_cumsums(x)  # its buffer is free once the result is dropped
    assert tj.release_buffers() >= BIG * 8
    assert POOL.held_bytes()[1] == 0


def test_a_forked_child_takes_buffers_while_the_parent_held_the_lock():
    import multiprocessing
    import os
    if not hasattr(os, "fork"):
        pytest.skip("no fork() on this platform")
    pool_lock = POOL._lock
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    with pool_lock:  # as if another thread were inside POOL.take at fork()
        child = ctx.Process(target=_take_in_child, args=(queue,))
        child.start()
    child.join(60)
    if child.is_alive():
        child.kill()
    assert child.exitcode == 0 and queue.get(timeout=5) == 3


def _take_in_child(queue):
    queue.put(len(POOL.take([(8, np.float64)] * 3)))


def test_a_take_re_entered_on_its_thread_gets_new_arrays():
    """As when the garbage collector runs a finalizer calling a compiled program in the
    middle of a take: no deadlock on the pool's own lock, and no buffer handed out twice."""
    inner = []

    class Reentrant(BufferPool):
        def _take(self, size, dtype):
            if not inner:
                inner.append(self.take([(size, dtype)])[0])
            return super()._take(size, dtype)

    pool = Reentrant(1 << 20)
    (outer,) = pool.take([(100, np.float64)])
    assert _address(inner[0]) != _address(outer) and pool.held_bytes() == (800, 0)


def test_forget_after_a_failed_call():
    pool = BufferPool(1 << 20)
    a, b = pool.take([(100, np.float64), (50, np.float64)])
    pool.forget([a])
    assert pool.held_bytes() == (400, 0)


def test_a_result_object_is_the_callers_alone(two_cumsums):
    """Each call returns a new array object on the buffer: a weak reference to a dropped
    result dies, and a dropped result's new shape or flags do not reach later calls."""
    import weakref
    x = np.random.default_rng(4).standard_normal(BIG)
    r = two_cumsums(x)
    ref = weakref.ref(r)
    r.shape = (BIG // 8, 8)
    r.flags.writeable = False
    del r
    assert ref() is None
    again = two_cumsums(x)
    assert again.shape == (BIG,) and again.flags.writeable
    np.testing.assert_allclose(again, _want(x), rtol=1e-12, atol=1e-9)


def test_programs_that_can_raise_allocate_their_own_results():
    """A raising Numba function never drops its locals' references, which would pin a
    buffer taken up front; such programs allocate results when they get to them."""
    import numba

    @numba.njit
    def positive(a):
        if a[0] < 0:
            raise ValueError("negative")
        return a * 1.0

    f = tj.jit(lambda a: tj.numba_call(positive, a, out=tj.ShapeDtype((BIG,), np.float64)))
    x = np.ones(BIG)
    assert f.lower(x).generated.pooled == []
    np.testing.assert_array_equal(f(x), x)
    with pytest.raises(ValueError, match="negative"):
        f(-x)
    g = tj.jit(lambda m: tnp.linalg.cholesky(m) * 2.0)
    m = np.eye(2100)
    assert g.lower(m).generated.pooled == []
    np.testing.assert_array_equal(g(m), 2.0 * m)
