"""W13 gp-nll: a Gaussian-process negative log marginal likelihood and its gradient.

    python -m benchmarks.gp_nll                  # n = 2000, tracejit against JAX
    python -m benchmarks.gp_nll --n 1000 --repeats 5

`0.5 yᵀ K⁻¹ y + Σ log diag(L)` with `K = a·exp(−|xᵢ − xⱼ|² / 2ℓ²) + (σ² + 1e-6) I`, `L` its
Cholesky factor, differentiated with respect to (log a, log ℓ, log σ²). Each system runs in a
fresh process (`jit(value_and_grad)`, float64, JAX with x64 enabled), on the same data; the
first call and the median of the steady calls are printed, then the ratio and how far the
values and gradients agree. JAX is skipped with a line when it is not installed.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

import numpy as np


def _data(n: int):
    rng = np.random.default_rng(20261207)
    X = rng.uniform(0.0, 10.0, (n, 1))
    y = np.sin(X[:, 0]) + 0.1 * rng.standard_normal(n)
    return X, y, np.array([0.0, 0.0, -2.0])


def _nll(theta, X, y, xp, cholesky, solve_lower):
    amp, ls, noise = xp.exp(theta[0]), xp.exp(theta[1]), xp.exp(theta[2])
    d2 = xp.sum((X[:, None, :] - X[None, :, :]) ** 2, axis=-1)
    K = amp * xp.exp(-0.5 * d2 / ls ** 2) + (noise + 1e-6) * xp.eye(X.shape[0])
    L = cholesky(K)
    alpha = solve_lower(L, y)
    return 0.5 * xp.sum(alpha * alpha) + xp.sum(xp.log(xp.diagonal(L)))


def _tracejit():
    import tracejit as tj
    import tracejit.numpy as tnp
    import tracejit.scipy.linalg as tsl

    def nll(theta, X, y):
        return _nll(theta, X, y, tnp, tnp.linalg.cholesky,
                    lambda L, b: tsl.solve_triangular(L, b, lower=True))
    vg = tj.jit(tj.value_and_grad(nll))
    return lambda *a: vg(*a)


def _jax():
    import jax
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    from jax.scipy.linalg import solve_triangular

    def nll(theta, X, y):
        return _nll(theta, X, y, jnp, jnp.linalg.cholesky,
                    lambda L, b: solve_triangular(L, b, lower=True))
    vg = jax.jit(jax.value_and_grad(nll))
    return lambda *a: jax.block_until_ready(vg(*a))


def _worker(system: str, n: int, repeats: int) -> dict:
    X, y, theta = _data(n)
    t = time.perf_counter()
    fn = {"tracejit": _tracejit, "jax": _jax}[system]()
    v, g = fn(theta, X, y)
    first = time.perf_counter() - t
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn(theta, X, y)
        times.append(time.perf_counter() - t)
    return {"first": first, "median": statistics.median(times), "value": float(v),
            "grad": [float(x) for x in np.asarray(g)]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--worker", choices=["tracejit", "jax"], help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        print(json.dumps(_worker(args.worker, args.n, args.repeats)))
        return 0
    systems = ["tracejit"]
    try:
        import jax  # noqa: F401
        systems.append("jax")
    except ImportError:
        print("W13 gp-nll: JAX not installed (pip install jax), tracejit alone")
    results = {}
    for system in systems:
        out = subprocess.run([sys.executable, "-m", "benchmarks.gp_nll", "--worker", system,
                              "--n", str(args.n), "--repeats", str(args.repeats)],
                             capture_output=True, text=True, check=True)
        results[system] = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"W13 gp-nll: n = {args.n}, jit(value_and_grad), float64, medians of "
          f"{args.repeats} calls, each system in its own process")
    for system, r in results.items():
        print(f"  {system:9s} {r['median'] * 1e3:8.1f} ms   (first call {r['first']:.2f} s)")
    if "jax" in results:
        a, b = results["tracejit"], results["jax"]
        agree = max(abs(a["value"] - b["value"]) / abs(b["value"]),
                    max(abs(x - z) for x, z in zip(a["grad"], b["grad"])) /
                    max(abs(z) for z in b["grad"]))
        print(f"  tracejit / JAX: {a['median'] / b['median']:.3f}x; values and gradients "
              f"agree to {agree:.1e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
