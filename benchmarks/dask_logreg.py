"""W14 dask-logreg: logistic regression over a Dask array on a local cluster.

    python -m benchmarks.dask_logreg                 # X (2e6, 20), chunks of 250,000 rows
    python -m benchmarks.dask_logreg --rows 400000 --chunk 50000 --repeats 5
    python -m benchmarks.dask_logreg --workers 1

Times one gradient evaluation (loss and gradient together, as an optimizer asks for them) and
a full L-BFGS fit to the same tolerance, for `tracejit.dask.value_and_grad` driven by
`scipy.optimize.minimize(jac=True, method="L-BFGS-B")` and for dask-glm (`lbfgs` with
`normalize=False`, so both fit the same objective, and the loss/gradient pair its `lbfgs`
computes at every step). Both run on one `LocalCluster` of worker processes, one thread each,
with `X` and `y` persisted on the workers. For tracejit, the loop kernels of the compiled
plan that read `X` are counted (tracejit runs one task per block).

Skipped with one line when Dask, distributed or dask-glm is not installed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

# The client's BLAS on one thread, for both methods: after each call OpenBLAS's threads spin
# for a while, and on a machine where the client, the scheduler and the workers share two
# cores they took the workers' cores. L-BFGS's own BLAS calls in the client made later
# gradient calls of a fit 60 to 80 ms against 50 ms. (Dask's nannies already give the
# workers one BLAS thread each.)
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402


def _have(*mods) -> list[str]:
    missing = []
    for m in mods:
        try:
            __import__(m)
        except ImportError:
            missing.append(m)
    return missing


def loss(w, X, y):
    """Logistic loss of one row block, summed (dask-glm's `Logistic.loglike`)."""
    import tracejit.numpy as tnp
    z = X @ w
    return tnp.sum(tnp.logaddexp(0.0, z) - y * z)


def _median_time(fn, repeats: int) -> tuple[float, list[float]]:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), times


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=2_000_000)
    ap.add_argument("--cols", type=int, default=20)
    ap.add_argument("--chunk", type=int, default=250_000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--tol", type=float, default=1e-4)
    args = ap.parse_args(argv)

    missing = _have("dask", "distributed", "dask_glm")
    if missing:
        print(f"W14 dask-logreg skipped: {', '.join(missing)} not installed "
              "(pip install -e '.[dask]' dask-glm)")
        return 0

    import dask
    import dask.array as da
    from dask.distributed import Client, LocalCluster
    from dask_glm.algorithms import lbfgs
    from dask_glm.families import Logistic
    from dask_glm.utils import scatter_array
    from scipy.optimize import minimize

    import tracejit as tj
    import tracejit.dask as tjd

    cluster = LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                           dashboard_address=None)
    client = Client(cluster)
    n, d = args.rows, args.cols
    rs = da.random.RandomState(20261206)
    X = rs.standard_normal((n, d), chunks=(args.chunk, d))
    beta_true = np.linspace(-1.0, 1.0, d)
    y = (rs.uniform(size=n, chunks=args.chunk) <
         1.0 / (1.0 + da.exp(-(X @ beta_true)))).astype(np.float64)
    client.wait_for_workers(args.workers)
    X, y = dask.persist(X, y)
    dask.compute(X.sum(), y.sum())
    # persist leaves blocks where they were computed, often 3 on one worker and 5 on the
    # other; both methods run faster on balanced data, so it is balanced once, for both
    client.rebalance()
    print(f"W14 dask-logreg: X {X.shape} in {X.numblocks[0]} row blocks of {args.chunk}, "
          f"{args.workers} worker processes x 1 thread; {args.repeats} repeats, medians")

    w = np.full(d, 0.01)
    vg = tjd.value_and_grad(loss)
    t = time.perf_counter()
    v_tj, g_tj = vg(w, X, y)
    first = time.perf_counter() - t

    def glm_value_and_grad(beta):
        sb = scatter_array(beta, client)
        lo, gr = dask.compute(Logistic.pointwise_loss(sb, X, y),
                              Logistic.pointwise_gradient(sb, X, y))
        return float(lo), np.asarray(gr)

    v_glm, g_glm = glm_value_and_grad(w)
    agree = max(abs(v_tj - v_glm) / abs(v_glm),
                float(np.max(np.abs(g_tj - g_glm)) / np.max(np.abs(g_glm))))
    # A new parameter vector every call, as in a fit: Dask keeps the result of a graph it has
    # just computed, so repeating the same call would time a cache hit (about 5 ms).
    steps = iter(w + 1e-4 * k for k in range(1, 4 * args.repeats))
    t_tj, _ = _median_time(lambda: vg(next(steps), X, y), args.repeats)
    t_glm, _ = _median_time(lambda: glm_value_and_grad(next(steps)), args.repeats)

    block = X.blocks[0].compute()
    plan = tj.jit(tj.value_and_grad(loss)).lower(w, block, y.blocks[0].compute()).plan
    kernels_reading_x = _kernels_reading(plan, 1)

    print(f"  gradient, first call (workers compile or load from disk): {first:.3f} s")
    print(f"  gradient: tracejit {t_tj * 1e3:.1f} ms, dask-glm {t_glm * 1e3:.1f} ms, "
          f"ratio {t_tj / t_glm:.3f}x  (values agree to {agree:.1e})")
    print(f"  tracejit: one task per block, {kernels_reading_x} plan kernel(s) reading X "
          "(each over ~1 MiB pieces, so X comes from memory once)")

    def fit_tracejit():
        res = minimize(vg, np.zeros(d), args=(X, y), jac=True, method="L-BFGS-B",
                       options={"gtol": args.tol, "maxiter": 100})
        return res.x, res.nit

    def fit_glm():
        return lbfgs(X, y, normalize=False, tol=args.tol, max_iter=100)

    fits = max(3, args.repeats // 5)
    t_fit_tj, _ = _median_time(fit_tracejit, fits)
    t_fit_glm, _ = _median_time(fit_glm, fits)
    beta_tj, nit = fit_tracejit()
    beta_glm = np.asarray(fit_glm())
    diff = float(np.max(np.abs(beta_tj - beta_glm)))
    print(f"  L-BFGS fit (gtol {args.tol:g}, {fits} fits): tracejit {t_fit_tj:.3f} s "
          f"({nit} iterations), dask-glm {t_fit_glm:.3f} s, ratio {t_fit_tj / t_fit_glm:.3f}x; "
          f"coefficients differ by {diff:.1e}")
    client.close()
    cluster.close()
    return 0


def _kernels_reading(plan, position: int) -> int:
    """Kernels of `plan` that read the program's input at `position` from memory."""
    from tracejit.compiler.draw import kernel_reads
    x = plan.ir.invars[position]
    return sum(x in reads for reads in kernel_reads(plan))


if __name__ == "__main__":
    sys.exit(main())
