"""Train a small multilayer perceptron with Adam written by hand over pytrees.

Shows: parameters as a dict of arrays, `tj.jit(tj.value_and_grad(loss))` returning a
gradient dict of the same shape, and an Adam update in a few lines of
`tj.tree_util.tree_map`. The dataset is generated here (three interleaved spirals in the
plane): tracejit downloads nothing and scikit-learn is not one of its dependencies.

    python examples/mlp_adam.py [--quick] [--steps N]
"""

import argparse
import time

import numpy as np

import tracejit as tj
import tracejit.nn as tnn
import tracejit.numpy as tnp
from tracejit.tree_util import tree_map


def spirals(n_per_class: int, classes: int = 3, seed: int = 0):
    """Points on `classes` noisy spiral arms; the label is the arm."""
    rng = np.random.default_rng(seed)
    r = np.tile(np.linspace(0.05, 1.0, n_per_class), classes)
    label = np.repeat(np.arange(classes), n_per_class)
    angle = 4.0 * r + label * 2 * np.pi / classes + 0.3 * rng.standard_normal(r.size)
    X = np.stack([r * np.cos(angle), r * np.sin(angle)], axis=1)
    return X, label


def init(sizes, seed: int = 1) -> dict:
    rng = np.random.default_rng(seed)
    params = {}
    for i, (m, n) in enumerate(zip(sizes[:-1], sizes[1:])):
        params[f"W{i}"] = rng.standard_normal((m, n)) / np.sqrt(m)
        params[f"b{i}"] = np.zeros(n)
    return params


def logits(params, X):
    h = X
    layers = len(params) // 2
    for i in range(layers):
        h = h @ params[f"W{i}"] + params[f"b{i}"]
        if i < layers - 1:
            h = tnp.tanh(h)
    return h


def loss(params, X, labels):
    """Mean softmax cross-entropy (tnn.log_softmax is the numerically stable one)."""
    logp = tnn.log_softmax(logits(params, X), axis=1)
    return -tnp.mean(logp[tnp.arange(X.shape[0]), labels])


def adam(grad_fn, params, batches, lr=1e-2, b1=0.9, b2=0.999, eps=1e-8, report=None):
    """Adam (Kingma & Ba) on a pytree of parameters; `report(step, loss)` now and then."""
    m = tree_map(np.zeros_like, params)
    v = tree_map(np.zeros_like, params)
    for t, (X, y) in enumerate(batches, start=1):
        value, g = grad_fn(params, X, y)
        m = tree_map(lambda m, g: b1 * m + (1 - b1) * g, m, g)
        v = tree_map(lambda v, g: b2 * v + (1 - b2) * g * g, v, g)
        scale = lr * np.sqrt(1 - b2 ** t) / (1 - b1 ** t)  # bias corrections folded in
        params = tree_map(lambda p, m, v, s=scale: p - s * m / (np.sqrt(v) + eps), params, m, v)
        if report:
            report(t, value)
    return params


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="fewer steps, for CI")
    p.add_argument("--steps", type=int, default=None, help="Adam steps (default 2000)")
    args = p.parse_args()
    steps = args.steps or (400 if args.quick else 2000)
    batch = 256

    X, y = spirals(1000)
    X_test, y_test = spirals(1000, seed=1)  # fresh points from the same distribution
    params = init([2, 64, 64, 3])
    print("parameters: " + ", ".join(f"{k} {v.shape}" for k, v in params.items()))
    grad_fn = tj.jit(tj.value_and_grad(loss))

    rng = np.random.default_rng(2)
    # Fixed-size minibatches: one signature, so one compiled program for the whole run.
    batches = ((X[i], y[i]) for i in (rng.choice(len(y), batch, replace=False)
                                      for _ in range(steps)))
    every = max(steps // 8, 1)
    recent = []

    def report(step, value):
        recent.append(float(value))
        if step == 1 or step % every == 0:
            print(f"step {step:5d}  loss {np.mean(recent):.4f}")
            recent.clear()

    t = time.perf_counter()
    params = adam(grad_fn, params, batches, report=report)
    seconds = time.perf_counter() - t

    # tracejit.numpy on plain arrays runs NumPy: the same functions evaluate the model.
    final = loss(params, X, y)
    train_acc = np.mean(np.argmax(logits(params, X), axis=1) == y)
    test_acc = np.mean(np.argmax(logits(params, X_test), axis=1) == y_test)
    print(f"{steps} steps in {seconds:.2f} s (the first includes compiling)")
    print(f"final loss {final:.4f} on all {len(y)} training points")
    print(f"accuracy: training {train_acc:.3f}, test {test_acc:.3f}")


if __name__ == "__main__":
    main()
