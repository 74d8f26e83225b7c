"""How tracejit.dask's gradient time grows with rows and workers, and what one call sends.

    python -m benchmarks.dask_scaling                       # 1 and 2 workers, 0.5e6..2e6 rows
    python -m benchmarks.dask_scaling --workers 1,2 --rows 500000,2000000 --repeats 7

For each worker count a fresh `LocalCluster` (worker processes, one thread each) holds W14's
data (`X (rows, 20)` in blocks of `--chunk` rows, persisted); the median time of one
`value_and_grad` call is printed per row count. Then, on the same cluster, the fixed cost of a
task: calls over many tiny blocks (64 rows, no work to speak of), whose time grows with the
number of blocks by the scheduler's and workers' cost per task. Last, the bytes one call
sends: the pickled graph the client submits (parameters, function, block tasks) and the size
of one block's partial result, which is what moves between workers during the reduction.
These three numbers predict a larger cluster: see docs/dask.md.
"""

from __future__ import annotations

import argparse
import pickle
import statistics
import sys
import time

import numpy as np

from benchmarks.dask_logreg import _have, loss


def _ints(text: str) -> list[int]:
    return [int(float(t)) for t in text.split(",") if t]


def _median(fn, repeats: int, w, *args) -> float:
    """Median time of `fn(w', *args)`, a new `w'` each call (Dask keeps a result it has just
    computed, so the same call again would time a cache hit)."""
    times = []
    for k in range(repeats):
        t = time.perf_counter()
        fn(w + 1e-4 * (k + 1), *args)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def _data(da, rows: int, cols: int, chunk: int, seed: int = 20261206):
    import dask
    rs = da.random.RandomState(seed)
    X = rs.standard_normal((rows, cols), chunks=(chunk, cols))
    beta = np.linspace(-1.0, 1.0, cols)
    y = (rs.uniform(size=rows, chunks=chunk) < 1.0 / (1.0 + da.exp(-(X @ beta)))).astype(float)
    X, y = dask.persist(X, y)
    dask.compute(X.sum(), y.sum())
    return X, y


def graph_bytes(delayed_result, data) -> int:
    """Pickled size of the tasks of `delayed_result`'s graph that are not the data's own
    (persisted data appears in the graph as references to results already on the workers)."""
    import cloudpickle
    graph = dict(delayed_result.__dask_graph__())
    data_keys = set()
    for a in data:
        data_keys |= set(dict(a.__dask_graph__()))
    own = {k: v for k, v in graph.items() if k not in data_keys}
    return len(cloudpickle.dumps(own, protocol=pickle.HIGHEST_PROTOCOL))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("--rows", default="500000,1000000,2000000")
    ap.add_argument("--cols", type=int, default=20)
    ap.add_argument("--chunk", type=int, default=250_000)
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--tiny-blocks", default="16,256", help="block counts for the task cost")
    args = ap.parse_args(argv)

    missing = _have("dask", "distributed", "cloudpickle")
    if missing:
        print(f"dask scaling skipped: {', '.join(missing)} not installed "
              "(pip install -e '.[dask]')")
        return 0
    import dask.array as da
    from dask.distributed import Client, LocalCluster

    import tracejit.dask as tjd

    rows_list, workers_list, tiny = _ints(args.rows), _ints(args.workers), _ints(args.tiny_blocks)
    d = args.cols
    w = np.full(d, 0.01)
    vg = tjd.value_and_grad(loss)
    print(f"tracejit.dask value_and_grad of W14's loss, X (rows, {d}) in blocks of "
          f"{args.chunk} rows; medians of {args.repeats} calls")
    table = {}
    for nw in workers_list:
        with LocalCluster(n_workers=nw, threads_per_worker=1, processes=True,
                          dashboard_address=None) as cluster, Client(cluster) as client:
            client.wait_for_workers(nw)
            for rows in rows_list:
                X, y = _data(da, rows, d, args.chunk)
                vg(w, X, y)  # compile (or load from disk) on every worker
                vg(w, X, y)
                table[nw, rows] = _median(vg, args.repeats, w, X, y)
                print(f"  {nw} worker(s), {rows:>9,} rows ({X.numblocks[0]} blocks): "
                      f"{table[nw, rows] * 1e3:8.1f} ms")
            costs = []
            for nblocks in tiny:
                Xs, ys = _data(da, nblocks * 64, d, 64)
                vg(w, Xs, ys)
                vg(w, Xs, ys)
                costs.append((nblocks, _median(vg, args.repeats, w, Xs, ys)))
            (b0, t0), (b1, t1) = costs[0], costs[-1]
            per_task = (t1 - t0) / (b1 - b0)
            print(f"  {nw} worker(s), tiny blocks: {b0} blocks {t0 * 1e3:.1f} ms, {b1} blocks "
                  f"{t1 * 1e3:.1f} ms -> {per_task * 1e6:.0f} us per block (its task and its "
                  f"share of the reduction), {t0 * 1e3:.1f} ms fixed per call")
            table[nw, "task"] = per_task
    for rows in rows_list:
        if (1, rows) in table and (2, rows) in table:
            print(f"  {rows:>9,} rows: 2 workers take {table[2, rows] / table[1, rows]:.2f}x "
                  "the time of 1")

    with dask_local() as _:
        X, y = _data(da, rows_list[-1], d, args.chunk)
        lazy = tjd.value_and_grad(loss, compute=False)(w, X, y)
        nbytes = graph_bytes(lazy, (X, y))
        block = X.blocks[0].compute(), y.blocks[0].compute()
        part = pickle.dumps(tjd._block_value_and_grad(
            (tjd._token(loss), loss, 0, False, "sum", (("p", 0), ("b", 0), ("b", 1)),
             tjd.PIECE_BYTES), (w,), rows_list[-1], len(block), *block),
            protocol=pickle.HIGHEST_PROTOCOL)
        print(f"  one call at {rows_list[-1]:,} rows ({X.numblocks[0]} blocks): the client "
              f"submits {nbytes:,} bytes of graph (parameters {w.nbytes} bytes, once); each "
              f"block's partial result is {len(part)} bytes")
    return 0


def dask_local():
    """The synchronous scheduler, enough to build and measure a graph."""
    import dask
    return dask.config.set(scheduler="synchronous")


if __name__ == "__main__":
    sys.exit(main())
