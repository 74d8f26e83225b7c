"""Gradients over Dask arrays on a real local cluster of worker processes.

Every result is checked against `tj.value_and_grad` (or `tj.jvp`) on the same data as NumPy
arrays, to 1e-10 relative. One cluster (two worker processes, one thread each) serves the
module; the kill tests restart workers, so they run last.
"""

import os
import subprocess
import sys

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")
cloudpickle = pytest.importorskip("cloudpickle")

import dask  # noqa: E402

import tracejit as tj  # noqa: E402
import tracejit.dask as tjd  # noqa: E402
import tracejit.numpy as tnp  # noqa: E402

# The workers cannot import this file (tests/ is not on their path): send its functions by value.
cloudpickle.register_pickle_by_value(sys.modules[__name__])

RNG = np.random.default_rng(20261206)
N, D = 10_000, 6
XN = RNG.standard_normal((N, D))
YN = (RNG.random(N) < 0.4).astype(np.float64)
W = RNG.standard_normal(D) * 0.3


def logistic(w, X, y):
    z = X @ w
    return tnp.sum(tnp.logaddexp(0.0, z) - y * z)


def logistic_mean(w, X, y):
    z = X @ w
    return tnp.mean(tnp.logaddexp(0.0, z) - y * z)


def mlp(params, X, y):
    h = tnp.tanh(X @ params["W1"] + params["b1"])
    out = h @ params["w2"]
    r = out - y
    return tnp.sum(r * r), tnp.sum(tnp.abs(r))


@pytest.fixture(scope="module")
def client():
    with dask.config.set({"distributed.scheduler.allowed-failures": 1,
                          "distributed.worker.daemon": False}):
        cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                           dashboard_address=None, silence_logs=50)
        c = distributed.Client(cluster)
        yield c
        c.close()
        cluster.close()


def _data(chunk=3_000):
    """X, y on the workers, in row blocks of `chunk` (the last one shorter). Fresh key
    names each time: keys equal to an earlier test's could be released under this one when
    the garbage collector frees that test's futures."""
    X = da.from_array(XN, chunks=(chunk, D), name=False)
    y = da.from_array(YN, chunks=chunk, name=False)
    return dask.persist(X, y)


def assert_close(got, want, rtol=1e-10):
    g, w = np.asarray(got), np.asarray(want)
    assert g.shape == w.shape
    np.testing.assert_allclose(g, w, rtol=rtol, atol=rtol * max(1.0, float(np.max(np.abs(w)))))


def test_value_and_grad_sums_blocks_like_one_machine(client):
    X, y = _data()
    v, g = tjd.value_and_grad(logistic)(W, X, y)
    v0, g0 = tj.value_and_grad(logistic)(W, XN, YN)
    assert_close(v, v0)
    assert_close(g, g0)
    # blocks bigger than a piece (1 MiB of rows), pieces of 256 rows: the same sums
    v1, g1 = tjd.value_and_grad(logistic, piece_bytes=256 * 56)(W, X, y)
    assert_close(v1, v0)
    assert_close(g1, g0)
    # one block, and more blocks than one reduction step combines (split_every=2: three
    # levels of partial sums)
    for chunk, split_every in ((N, 8), (1_500, 2)):
        Xc, yc = _data(chunk)
        vc, gc = tjd.value_and_grad(logistic, split_every=split_every)(W, Xc, yc)
        assert_close(vc, v0)
        assert_close(gc, g0)
    assert isinstance(tjd.grad(logistic)(W, X, y), np.ndarray)
    assert_close(tjd.grad(logistic)(W, X, y), g0)


def test_mean_weights_blocks_by_rows_and_misaligned_chunks_are_aligned(client):
    X = da.from_array(XN, chunks=(3_000, D))
    y = da.from_array(YN, chunks=4_000)  # not the same row chunks as X
    v, g = tjd.value_and_grad(logistic_mean, reduce="mean")(W, X, y)
    v0, g0 = tj.value_and_grad(logistic_mean)(W, XN, YN)
    assert_close(v, v0)
    assert_close(g, g0)


def test_pytree_parameters_aux_and_argnums(client):
    X, y = _data(2_500)
    y3 = y * 0.5
    params = {"W1": RNG.standard_normal((D, 4)) * 0.5, "b1": np.zeros(4),
              "w2": RNG.standard_normal(4)}
    (v, aux), g = tjd.value_and_grad(mlp, has_aux=True)(params, X, y3)
    (v0, aux0), g0 = tj.value_and_grad(mlp, has_aux=True)(params, XN, YN * 0.5)
    assert_close(v, v0)
    assert_close(aux, aux0)
    assert set(g) == {"W1", "b1", "w2"}
    for k in g:
        assert_close(g[k], g0[k])


def test_jvp_over_blocks(client):
    X, y = _data()
    t = RNG.standard_normal(D)
    v, tv = tjd.jvp(logistic, (W, X, y), (t,))
    v0, tv0 = tj.jvp(lambda w: logistic(w, XN, YN), (W,), (t,))
    assert_close(v, v0)
    assert_close(tv, tv0)
    # the tangent is the gradient's projection, an independent check of both
    assert_close(tv, tj.grad(logistic)(W, XN, YN) @ t)


def test_errors_name_the_problem(client):
    X, y = _data()
    with pytest.raises(TypeError, match="no argument is a Dask array"):
        tjd.value_and_grad(logistic)(W, XN, YN)
    with pytest.raises(TypeError, match="argument 1 is a Dask array"):
        tjd.value_and_grad(logistic, argnums=1)(W, X, y)
    with pytest.raises(ValueError, match="same number of rows"):
        tjd.value_and_grad(logistic)(W, X, y[:-1])
    with pytest.raises(ValueError, match="reduce must be one of"):
        tjd.value_and_grad(logistic, reduce="max")
    with pytest.raises(ValueError, match="1 parameter primals .* but 2 tangents"):
        tjd.jvp(logistic, (W, X, y), (W, W))


def _block_tasks(graph):
    return {k: v for k, v in graph.items()
            if "_block_value_and_grad" in repr(v) and "_add" not in repr(v)}


def _block_refs(task, X):
    """The row blocks of `X` a block task reads."""
    return sorted(r[1] for r in _flat(task) if isinstance(r, tuple) and r[:1] == (X.name,))


def _flat(x, depth=0):
    if depth > 6:
        return []
    out = [x]
    for attr in ("args", "value", "key"):
        v = getattr(x, attr, None)
        if v is not None and v is not x and not callable(v):
            out += _flat(v, depth + 1)
    if isinstance(x, (tuple, list)):
        for y in x:
            out += _flat(y, depth + 1)
    return out


def test_blocks_in_memory_run_as_one_task_per_worker_thread_with_the_parameters(client):
    """Persisted blocks: each worker gets one task holding all the blocks it has, and the
    parameters travel inside that task (so once per worker), as pickled bytes."""
    X, y = _data()
    distributed.wait([X, y])
    graph = dict(tjd.value_and_grad(logistic, compute=False)(W, X, y).__dask_graph__())
    tasks = _block_tasks(graph)
    assert len(tasks) == sum(client.nthreads().values()) == 2
    who = client.who_has(distributed.futures_of(X))
    seen = []
    for task in tasks.values():
        blocks = _block_refs(task, X)
        holders = {w for i in blocks for w in who[(X.name, i, 0)]}
        assert len(holders) == 1, (blocks, holders)  # all on the worker that runs it
        seen += blocks
        inline = [b for b in _flat(task) if isinstance(b, bytes)]
        assert len(inline) == 1 and cloudpickle.loads(inline[0])[0] is not W
        np.testing.assert_array_equal(cloudpickle.loads(inline[0])[0], W)
    assert sorted(seen) == list(range(X.numblocks[0]))
    assert not [k for k, v in graph.items() if _holds(v, W)]  # no key holds W itself


def test_blocks_still_to_be_made_are_a_task_each_and_the_parameters_one_key(client):
    """Blocks not in memory (to be computed or read as part of the call): one task per block,
    so each runs beside the task that makes it; the parameters are one key they all read."""
    X = da.from_array(XN, chunks=(3_000, D)) * 1.0
    y = da.from_array(YN, chunks=3_000)
    graph = dict(tjd.value_and_grad(logistic, compute=False)(W, X, y).__dask_graph__())
    holding_w = [k for k, v in graph.items() if _holds(v, W)]
    assert len(holding_w) == 1, holding_w
    tasks = _block_tasks(graph)
    assert len(tasks) == X.numblocks[0]
    for task in tasks.values():  # each block task names the parameters' key, not the values
        assert not _holds(task, W)
        assert not [b for b in _flat(task) if isinstance(b, bytes)]


def _holds(task, arr) -> bool:
    """Whether `task` (a graph value) carries `arr` itself."""
    seen = []

    def walk(x, depth=0):
        if depth > 6:
            return
        if isinstance(x, np.ndarray):
            seen.append(x is arr or (x.shape == arr.shape and np.array_equal(x, arr)))
            return
        for attr in ("args", "value", "kwargs"):
            v = getattr(x, attr, None)
            if v is not None and v is not x:
                walk(v, depth + 1)
        if isinstance(x, (tuple, list)):
            for y in x:
                walk(y, depth + 1)
        if isinstance(x, dict):
            for y in x.values():
                walk(y, depth + 1)
    walk(task)
    return any(seen)


def test_import_tracejit_does_not_import_dask():
    code = "import sys, tracejit, tracejit.numpy; print('dask' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={**os.environ, "PYTHONPATH": os.getcwd()})
    assert out.stdout.strip() == "False"


def _exit_now():
    os._exit(1)


def test_a_worker_lost_between_calls_leaves_a_stale_placement_that_still_sums_right(client):
    """Where blocks are is remembered for a few seconds; after a worker dies the remembered
    grouping names blocks that must be recomputed elsewhere, and the sum is still right."""
    X, y = _data()
    distributed.wait([X, y])
    vg = tjd.value_and_grad(logistic)
    vg(W, X, y)
    holders = client.who_has(distributed.futures_of(X))
    victim = holders[(X.name, 0, 0)][0]
    try:
        client.run(_exit_now, workers=[victim])
    except Exception:  # the worker dies before it can answer
        pass
    w = W + 0.1
    v, g = vg(w, X, y)
    v0, g0 = tj.value_and_grad(logistic)(w, XN, YN)
    assert_close(v, v0)
    assert_close(g, g0)
    client.wait_for_workers(2)


def _kill_worker_once(block, marker):
    """The first time any worker computes this block, it dies (the marker says it did). Dask
    calls the function on an empty array in the client to learn its type: that one lives."""
    if block.size and not os.path.exists(marker):
        open(marker, "w").close()
        os._exit(1)
    return block


def _kill_worker_always(block):
    if block.size:
        os._exit(1)
    return block


def test_a_worker_killed_mid_call_gives_the_retried_result(client, tmp_path):
    marker = str(tmp_path / "killed")
    X = da.from_array(XN, chunks=(3_000, D)).map_blocks(_kill_worker_once, marker,
                                                        dtype=XN.dtype)
    y = da.from_array(YN, chunks=3_000)
    v, g = tjd.value_and_grad(logistic)(W, X, y)
    assert os.path.exists(marker)  # a worker did die
    v0, g0 = tj.value_and_grad(logistic)(W, XN, YN)
    assert_close(v, v0)
    assert_close(g, g0)


def test_a_block_that_always_kills_its_worker_is_an_error_not_a_sum(client):
    X = da.from_array(XN, chunks=(3_000, D)).map_blocks(_kill_worker_always, dtype=XN.dtype)
    y = da.from_array(YN, chunks=3_000)
    with pytest.raises(distributed.scheduler.KilledWorker):
        tjd.value_and_grad(logistic)(W, X, y)
