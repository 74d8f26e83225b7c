"""Fit a logistic regression whose data live on a Dask cluster, two ways: SciPy's L-BFGS-B
over the whole data set, and Adam over minibatches of row blocks.

Shows: `tracejit.dask.value_and_grad(loss, reduce="mean")`, where `loss` is written for one
block of rows with NumPy semantics; every block's loss and gradient are computed by a compiled
program on the worker that holds the block, and only the partial sums (d + 2 numbers a block)
come back. The L2 penalty does not depend on the rows, so it is added once, on the client.
The fit is checked against the same fit on one machine with `tj.jit(tj.value_and_grad)`.

    python examples/dask_logistic.py [--quick] [--rows N] [--workers K]

Needs `pip install -e ".[dask]"`.
"""

import argparse
import time

import numpy as np
from scipy.optimize import minimize

import tracejit as tj
import tracejit.numpy as tnp

LAM = 1e-3  # L2 penalty on the weights, added on the client


def block_loss(params, X, y):
    """Mean logistic loss of one block of rows; `y` holds labels in {0, 1}."""
    w, b = params
    z = X @ w + b
    return tnp.mean(tnp.logaddexp(0.0, z) - y * z)


def penalized(value, grad, params):
    """The loss over all rows plus the penalty, and its gradient."""
    w, b = params
    return value + 0.5 * LAM * float(w @ w), (grad[0] + LAM * w, grad[1])


def make_data(da, rows: int, d: int, chunk: int):
    rs = da.random.RandomState(7)
    X = rs.standard_normal((rows, d), chunks=(chunk, d))
    true_w = np.linspace(-2.0, 2.0, d)
    y = (rs.uniform(size=rows, chunks=chunk) < 1 / (1 + da.exp(-(X @ true_w) - 0.5)))
    return X, y.astype(np.float64), true_w


def fit_lbfgs(vg, X, y, d: int):
    """L-BFGS-B on the packed vector theta = (w, b)."""
    def fun(theta):
        params = (theta[:-1], theta[-1])
        value, grad = penalized(*vg(params, X, y), params)
        return value, np.append(grad[0], grad[1])

    res = minimize(fun, np.zeros(d + 1), jac=True, method="L-BFGS-B",
                   options={"gtol": 1e-9, "maxiter": 200})
    return res


def fit_adam(vg, X, y, d: int, steps: int, blocks_per_step: int, lr: float = 0.05):
    """Adam over minibatches: each step takes `blocks_per_step` row blocks drawn at random
    (without replacement within an epoch) and follows their mean gradient."""
    rng = np.random.default_rng(0)
    params = (np.zeros(d), np.float64(0.0))
    m = tj.tree_util.tree_map(np.zeros_like, params)
    v = tj.tree_util.tree_map(np.zeros_like, params)
    b1, b2, eps = 0.9, 0.999, 1e-8
    order, losses = [], []
    for t in range(1, steps + 1):
        if len(order) < blocks_per_step:
            order = list(rng.permutation(X.numblocks[0]))
        pick = sorted(order.pop() for _ in range(blocks_per_step))
        value, grad = penalized(*vg(params, X.blocks[pick], y.blocks[pick]), params)
        losses.append(value)
        m = tj.tree_util.tree_map(lambda mi, gi: b1 * mi + (1 - b1) * gi, m, grad)
        v = tj.tree_util.tree_map(lambda vi, gi: b2 * vi + (1 - b2) * gi * gi, v, grad)
        c1, c2 = 1 - b1 ** t, 1 - b2 ** t  # bias corrections
        params = tj.tree_util.tree_map(
            lambda p, mi, vi, c1=c1, c2=c2: p - lr * (mi / c1) / (np.sqrt(vi / c2) + eps),
            params, m, v)
    return params, losses


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="a small problem, for CI")
    p.add_argument("--rows", type=int, default=None, help="rows (default 1,000,000)")
    p.add_argument("--workers", type=int, default=2)
    args = p.parse_args()
    rows = args.rows or (40_000 if args.quick else 1_000_000)
    d, chunk = 10, (4_000 if args.quick else 50_000)

    import dask
    import dask.array as da
    from dask.distributed import Client, LocalCluster

    import tracejit.dask as tjd

    with LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                      dashboard_address=None, silence_logs=40) as cluster, Client(cluster):
        X, y, true_w = make_data(da, rows, d, chunk)
        X, y = dask.persist(X, y)
        print(f"X {X.shape} in {X.numblocks[0]} blocks of {chunk} rows on {args.workers} "
              "worker processes")
        vg = tjd.value_and_grad(block_loss, reduce="mean")

        t = time.perf_counter()
        res = fit_lbfgs(vg, X, y, d)
        seconds = time.perf_counter() - t
        print(f"L-BFGS-B: {res.nit} iterations, {res.nfev} gradient calls, {seconds:.2f} s "
              f"({seconds / res.nfev * 1e3:.1f} ms per call, including the first compile)")
        print(f"L-BFGS-B final loss {res.fun:.6f}")

        # The same fit on one machine: the blocks gathered, one compiled program.
        XN, yN = dask.compute(X, y)
        ref = fit_lbfgs(tj.jit(tj.value_and_grad(block_loss)), XN, yN, d)
        diff = float(np.max(np.abs(res.x - ref.x)) / np.max(np.abs(ref.x)))
        print(f"coefficients against the one-machine fit: max relative difference {diff:.1e}")

        steps = 150 if args.quick else 600
        t = time.perf_counter()
        params, losses = fit_adam(vg, X, y, d, steps=steps, blocks_per_step=2)
        seconds = time.perf_counter() - t
        for k in (0, steps // 4, steps // 2, steps - 1):
            print(f"adam step {k:4d} minibatch loss {losses[k]:.4f}")
        full, _ = penalized(*vg(params, X, y), params)
        print(f"Adam: {steps} steps of 2 blocks ({2 * chunk} rows), {seconds:.2f} s; "
              f"full loss {full:.6f} against L-BFGS-B's {res.fun:.6f} "
              f"(gap {full - res.fun:.1e})")
        print(f"intercept {res.x[-1]:.3f} (true 0.5), weights vs truth: max abs difference "
              f"{np.max(np.abs(res.x[:-1] - true_w)):.3f}")
        assert res.success and diff < 1e-6, (res.message, diff)


if __name__ == "__main__":
    main()
