"""tracejit in one screen: compile the gradient of a logistic-regression loss on 2 million
numbers, look at the loops it became, check it against finite differences and time it
against the same gradient written by hand in NumPy.

    python examples/quickstart.py
"""

import time

import numpy as np
from scipy.special import expit

import tracejit as tj
import tracejit.numpy as tnp

LAM = 1e-3  # L2 penalty


def loss(w, X, y):
    """Mean logistic loss of labels y in {-1, +1}, plus an L2 penalty."""
    margins = y * (X @ w)
    return tnp.mean(tnp.logaddexp(0.0, -margins)) + 0.5 * LAM * tnp.sum(w * w)


def grad_by_hand(w, X, y):
    """The same gradient, derived on paper and written in NumPy."""
    s = expit(-y * (X @ w))
    return X.T @ (-y * s) / len(y) + LAM * w


rng = np.random.default_rng(0)
n, d = 200_000, 10
X = rng.standard_normal((n, d))
y = np.sign(X @ rng.standard_normal(d) + 0.5 * rng.standard_normal(n))
w = 0.1 * rng.standard_normal(d)

grad = tj.jit(tj.grad(loss))  # forward and backward, fused into loops, compiled by Numba
t0 = time.perf_counter()
g = grad(w, X, y)  # the first call traces, plans, generates code and compiles it
first_call = time.perf_counter() - t0

low = grad.lower(w, X, y)
print("The loop plan: BLAS calls for the matmuls, one fused loop for everything else")
print(low.plan)

# The generated module is plain Python + Numba; print the loop of the first loop kernel.
lines = low.source.splitlines()
start = next(i for i, ln in enumerate(lines) if ln.strip().startswith("# kernel")
             and ": loop over" in ln)
stop = next((i for i in range(start + 1, len(lines))
             if lines[i].strip().startswith(("# kernel", "return"))), len(lines))
print(f"\nThe generated loop ({len(lines)} lines in all: low.source):")
print("\n".join(lines[start:stop]))

# Independent check: central finite differences of the loss, one coordinate at a time.
eps = 1e-5
fd = np.array([(loss(w + eps * e, X, y) - loss(w - eps * e, X, y)) / (2 * eps)
               for e in np.eye(d)])
err = np.max(np.abs(g - fd)) / np.max(np.abs(fd))
print(f"\nmax relative error against finite differences: {err:.1e}")
assert err < 1e-6, "gradient disagrees with finite differences"
assert np.allclose(g, grad_by_hand(w, X, y), rtol=1e-10, atol=1e-14)


def best_of(f, repeats=20):
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        f(w, X, y)
        times.append(time.perf_counter() - t)
    return min(times)


t_tj, t_np = best_of(grad), best_of(grad_by_hand)
print(f"gradient of X {X.shape}: tracejit {t_tj * 1e3:.2f} ms, NumPy by hand "
      f"{t_np * 1e3:.2f} ms ({t_np / t_tj:.1f}x); first call {first_call:.2f} s "
      "(trace + compile)")
