"""Differentiate through an iterative solver: Newton's method on Kepler's equation
E - e sin(E) = M, run by `tj.while_loop` until it has converged, then reverse mode through
the iterations, checked against the implicit-function theorem.

Kepler's equation gives the eccentric anomaly E of a body on an elliptic orbit
(eccentricity e, semi-major axis 1) at mean anomaly M (time, as an angle); its distance to
the focus is r = 1 - e cos(E). The loss is the mean of r over many times in one period,
which for uniformly spaced M tends to 1 + e^2/2, so d loss / d e tends to e.

Shows: `tj.while_loop` with a data-dependent trip count, differentiated in reverse mode
(the compiled forward loop records each step on a tape that the backward loop replays;
`max_iterations=N` instead turns it into a bounded loop), and why the result is right: the
solution E(M, e) is defined implicitly by F(E, M, e) = E - e sin E - M = 0, so
dE/dM = 1 / (1 - e cos E) and dE/de = sin E / (1 - e cos E), formulas that never look
at the iterations.

    python examples/implicit_solver.py [--quick] [--n N]
"""

import argparse
import time

import numpy as np

import tracejit as tj
import tracejit.numpy as tnp


def eccentric_anomaly(M, e):
    """Newton's method from E = M until every residual is below 1e-13 (at most 50 steps)."""
    def residual(E):
        return E - e * tnp.sin(E) - M

    def not_done(state):
        E, steps = state
        return (tnp.max(tnp.abs(residual(E))) > 1e-13) & (steps < 50)

    def newton(state):
        E, steps = state
        return E - residual(E) / (1 - e * tnp.cos(E)), steps + 1

    E, steps = tj.while_loop(not_done, newton, (M, 0))
    return E, steps


def mean_radius(M, e):
    E, _ = eccentric_anomaly(M, e)
    return tnp.mean(1 - e * tnp.cos(E))


def implicit_gradient(M, e):
    """d mean_radius / d (M, e) from the implicit-function theorem, in NumPy."""
    E, _ = eccentric_anomaly(M, e)  # tracejit.numpy on plain arrays runs NumPy
    dE_dM = 1 / (1 - e * np.cos(E))
    dE_de = np.sin(E) * dE_dM
    dr_dE = e * np.sin(E)  # r = 1 - e cos E
    return dr_dE * dE_dM / M.size, np.mean(-np.cos(E) + dr_dE * dE_de)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="a small problem, for CI")
    p.add_argument("--n", type=int, default=None, help="times in one period (default 200000)")
    args = p.parse_args()
    n = args.n or (2000 if args.quick else 200_000)
    M = np.linspace(0.0, 2 * np.pi, n, endpoint=False)

    grad = tj.jit(tj.value_and_grad(mean_radius, argnums=(0, 1)))
    print(f"{n} mean anomalies; loss = mean orbital radius, gradient w.r.t. (M, e)")
    for e in (0.1, 0.6, 0.9):
        t = time.perf_counter()
        value, (g_M, g_e) = grad(M, e)
        seconds = time.perf_counter() - t
        _, steps = eccentric_anomaly(M, e)
        ift_M, ift_e = implicit_gradient(M, e)
        err_M = np.max(np.abs(g_M - ift_M)) / np.max(np.abs(ift_M))
        err_e = abs(g_e - ift_e) / abs(ift_e)
        print(f"e = {e}: {int(steps)} Newton steps; loss {value:.6f} (1 + e^2/2 = "
              f"{1 + e * e / 2:.6f}); d/de {g_e:.6f} (e = {e}); {seconds * 1e3:.1f} ms"
              + (" (first call: compiles)" if e == 0.1 else ""))
        print(f"         against the implicit-function theorem: max relative error "
              f"d/dM {err_M:.1e}, d/de {err_e:.1e}")


if __name__ == "__main__":
    main()
