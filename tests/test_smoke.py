import numpy as np

import tracejit as tj
import tracejit.numpy as tnp
from tracejit.testing import check_grads


def test_grad_of_sum_sin_times_x_matches_hand_derivation():
    x = np.linspace(-1.0, 2.0, 7)
    g = tj.grad(lambda x: tnp.sum(tnp.sin(x) * x))(x)
    np.testing.assert_allclose(g, np.sin(x) + x * np.cos(x), rtol=1e-14)


def test_check_grads_on_a_small_loss():
    rng = np.random.default_rng(1)
    w, x, y = rng.standard_normal(3), rng.standard_normal((4, 3)), rng.standard_normal(4)
    check_grads(lambda w, x, y: tnp.mean((tnp.tanh(x @ w) - y) ** 2), (w, x, y), order=2)
