"""tracejit in one screen: trace a loss, print its IR and its gradient IR, evaluate the
gradient and check it against central finite differences."""

import numpy as np

import tracejit as tj
import tracejit.numpy as tnp


def loss(w, x, y):
    return tnp.mean((tnp.tanh(x @ w) - y) ** 2)


rng = np.random.default_rng(0)
x = rng.standard_normal((50, 3))
y = rng.standard_normal(50)
w = rng.standard_normal(3)

print("The traced IR of the loss:")
print(tj.make_ir(loss)(w, x, y))
print()
print("The gradient IR (primal part + transposed linear part, simplified):")
print(tj.make_ir(tj.grad(loss))(w, x, y))
print()

value, g = tj.value_and_grad(loss)(w, x, y)
print(f"loss = {value:.6f}")
print(f"grad = {g}")

# Independent check: central finite differences, one coordinate at a time.
eps = 1e-6
fd = np.array([(loss(w + eps * e, x, y) - loss(w - eps * e, x, y)) / (2 * eps)
               for e in np.eye(3)])
err = np.max(np.abs(g - fd))
print(f"finite differences = {fd}")
print(f"max |grad - finite differences| = {err:.2e}")
assert err < 1e-7, "gradient disagrees with finite differences"
print("OK")
