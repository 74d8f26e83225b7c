"""Fit the stiffness k and damping c of a pendulum to noisy observed trajectories, by
differentiating through the simulation: 2000 semi-implicit Euler steps of many pendula
(released from different angles) as one `tj.scan`.

Shows: reverse mode through `tj.scan` (the backward pass is a second loop, run backwards
over what the forward loop stored) and `tj.checkpoint` on the scan body, which stores only
each step's carry and recomputes the rest of the step in the backward loop: less memory
for a little more arithmetic. The script reports, for both versions, the size of the
per-step arrays the forward loop stores for the backward loop (read from the gradient
program's IR), the peak memory one gradient call adds (Linux: the process's peak RSS,
reset before the call) and the time per call; then fits (k, c) with L-BFGS-B.

    python examples/ode_fit.py [--quick] [--pendula B] [--steps T]
"""

import argparse
import time

import numpy as np
from scipy.optimize import minimize

import tracejit as tj
import tracejit.numpy as tnp

DT = 1e-3
TRUE_KC = np.array([9.81, 0.3])


def make_loss(theta0, observed, checkpoint: bool):
    """Mean squared difference between simulated and observed angles, as a function of
    p = (k, c); the initial angles and the observations are bound by closure."""
    def loss(p):
        k, c = p[0], p[1]

        def step(carry, obs_t):
            theta, omega = carry
            omega = omega + DT * (-k * tnp.sin(theta) - c * omega)
            theta = theta + DT * omega
            return (theta, omega), tnp.sum((theta - obs_t) ** 2)

        if checkpoint:
            step = tj.checkpoint(step)
        _, errors = tj.scan(step, (theta0, tnp.zeros_like(theta0)), observed)
        return tnp.sum(errors) / observed.size
    return loss


def simulate(p, theta0, steps: int) -> np.ndarray:
    """The same integrator in plain NumPy: the angles at every step, (steps, pendula)."""
    theta, omega, out = theta0.copy(), np.zeros_like(theta0), []
    for _ in range(steps):
        omega = omega + DT * (-p[0] * np.sin(theta) - p[1] * omega)
        theta = theta + DT * omega
        out.append(theta)
    return np.array(out)


def stored_bytes(low) -> int:
    """Bytes of the per-step arrays a forward scan stacks for the backward scan: stacked
    outputs (after the carries) of a scan that another scan reads."""
    scans = [e for e in low.ir.eqns if e.prim.name == "scan"]
    read_by_scan = {v for e in scans for v in e.inputs}
    return sum(v.aval.size * v.aval.dtype.itemsize for e in scans
               for v in e.outs[e.params["num_carry"]:] if v in read_by_scan)


def peak_rss_delta(fn) -> float | None:
    """MB of resident memory `fn()` adds at its peak (Linux only: VmHWM after a reset)."""
    def status(key):
        with open("/proc/self/status") as f:
            return next(int(ln.split()[1]) for ln in f if ln.startswith(key)) / 1024
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # reset the peak (VmHWM) to the current RSS
        before = status("VmRSS")
        fn()
        return status("VmHWM") - before
    except OSError:
        return None


def median_time(fn, repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="a small problem, for CI")
    p.add_argument("--pendula", type=int, default=None, help="default 1000")
    p.add_argument("--steps", type=int, default=None, help="default 2000")
    args = p.parse_args()
    B = args.pendula or (50 if args.quick else 1000)
    T = args.steps or (500 if args.quick else 2000)

    rng = np.random.default_rng(0)
    theta0 = rng.uniform(0.2, 2.5, B)
    observed = simulate(TRUE_KC, theta0, T) + 0.02 * rng.standard_normal((T, B))
    p0 = np.array([7.0, 1.0])
    print(f"{B} pendula, {T} steps; observations {observed.shape}, "
          f"{observed.nbytes / 2**20:.1f} MB")

    fns = {}
    for checkpoint in (False, True):
        fn = tj.jit(tj.value_and_grad(make_loss(theta0, observed, checkpoint)))
        t = time.perf_counter()
        fn(p0)
        first = time.perf_counter() - t
        peak = peak_rss_delta(lambda fn=fn: fn(p0))
        name = "scan + checkpoint" if checkpoint else "scan"
        peak_text = "n/a" if peak is None else f"{peak:.1f} MB"
        print(f"{name:<18} stored for the backward pass {stored_bytes(fn.lower(p0)) / 2**20:6.1f}"
              f" MB, peak added by a call {peak_text}, "
              f"{median_time(lambda fn=fn: fn(p0)) * 1e3:.1f} ms per call "
              f"(first call {first:.1f} s)")
        fns[checkpoint] = fn

    v0, g0 = fns[False](p0)
    v1, g1 = fns[True](p0)
    assert abs(v0 - v1) <= 1e-12 * abs(v0) and np.allclose(g0, g1, rtol=1e-10, atol=0)

    t = time.perf_counter()
    res = minimize(fns[True], p0, jac=True, method="L-BFGS-B")
    seconds = time.perf_counter() - t
    err = np.max(np.abs(res.x - TRUE_KC) / TRUE_KC)
    print(f"fit from (k, c) = {tuple(p0.tolist())}: {res.nit} iterations, "
          f"{res.nfev} gradient calls, {seconds:.2f} s")
    print(f"fitted (k, c) = ({res.x[0]:.4f}, {res.x[1]:.4f}); true ({TRUE_KC[0]}, "
          f"{TRUE_KC[1]})")
    print(f"final loss {res.fun:.3e} (observation noise variance {0.02 ** 2:.1e})")
    print(f"max relative error of the fitted parameters {err:.1e}")


if __name__ == "__main__":
    main()
