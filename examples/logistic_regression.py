"""Fit an L2-regularized logistic regression with SciPy's L-BFGS-B, the optimizer asking
tracejit for the loss and its gradient at every step.

Shows: `tj.jit(tj.value_and_grad(loss))` as the `fun` of `scipy.optimize.minimize(...,
jac=True)`, with the data bound by closure (it reaches the compiled code as arguments, not
as text in it), and the fitted coefficients compared with the same fit driven by a
gradient written by hand in NumPy. The data are generated: a known coefficient vector,
labels drawn from the logistic model.

    python examples/logistic_regression.py [--quick] [--n N] [--d D]
"""

import argparse
import time

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit

import tracejit as tj
import tracejit.numpy as tnp

LAM = 1e-2  # L2 penalty on the weights (not on the intercept)


def make_data(n: int, d: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    true_w = rng.standard_normal(d) * (rng.random(d) < 0.5)  # about half the features matter
    y = np.where(rng.random(n) < expit(X @ true_w + 0.3), 1.0, -1.0)
    return X, y


def make_loss(X, y):
    """The loss of the packed parameters theta = (w, b), with X, y bound by closure."""
    def loss(theta):
        w, b = theta[:-1], theta[-1]
        margins = y * (X @ w + b)
        return tnp.mean(tnp.logaddexp(0.0, -margins)) + 0.5 * LAM * tnp.sum(w * w)
    return loss


def numpy_loss_and_grad(theta, X, y):
    """The reference: the same loss and its gradient derived by hand."""
    w, b = theta[:-1], theta[-1]
    margins = y * (X @ w + b)
    value = np.mean(np.logaddexp(0.0, -margins)) + 0.5 * LAM * w @ w
    r = -y * expit(-margins) / len(y)  # d loss / d (X @ w + b)
    return value, np.append(X.T @ r + LAM * w, r.sum())


def fit(fun, d: int):
    """L-BFGS-B from zero; `fun(theta) -> (loss, gradient)`."""
    t = time.perf_counter()
    res = minimize(fun, np.zeros(d + 1), jac=True, method="L-BFGS-B",
                   options={"maxiter": 500, "gtol": 1e-10})
    return res, time.perf_counter() - t


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="a small problem, for CI")
    p.add_argument("--n", type=int, default=None, help="examples (default 500000)")
    p.add_argument("--d", type=int, default=None, help="features (default 50)")
    args = p.parse_args()
    n = args.n or (20_000 if args.quick else 500_000)
    d = args.d or (10 if args.quick else 50)
    X, y = make_data(n, d)

    # value_and_grad returns (loss, gradient): exactly what minimize(..., jac=True) wants.
    fun = tj.jit(tj.value_and_grad(make_loss(X, y)))
    t = time.perf_counter()
    fun(np.zeros(d + 1))
    print(f"X {X.shape}: first call (trace + compile) {time.perf_counter() - t:.2f} s")

    res, seconds = fit(fun, d)
    ref, ref_seconds = fit(lambda theta: numpy_loss_and_grad(theta, X, y), d)

    theta = res.x
    accuracy = np.mean(np.sign(X @ theta[:-1] + theta[-1]) == y)
    diff = np.max(np.abs(theta - ref.x)) / np.max(np.abs(ref.x))
    print(f"tracejit:      {res.nit} iterations, {res.nfev} gradient calls, {seconds:.2f} s "
          f"({seconds / res.nfev * 1e3:.2f} ms per call)")
    print(f"NumPy by hand: {ref.nit} iterations, {ref.nfev} gradient calls, "
          f"{ref_seconds:.2f} s ({ref_seconds / ref.nfev * 1e3:.2f} ms per call)")
    print(f"intercept {theta[-1]:.4f}, first weights {np.round(theta[:4], 4)}")
    print(f"final loss {res.fun:.6f}")
    print(f"training accuracy {accuracy:.4f}")
    print(f"coefficients against the NumPy fit: max relative difference {diff:.1e}")
    assert res.success and diff < 1e-5, res.message


if __name__ == "__main__":
    main()
