"""Compiled FFTs against NumPy's.

    python -m benchmarks.fft                  # 2^16 complex fft, 512 x 512 fft2, rfft, grads
    python -m benchmarks.fft --repeats 50

For each case: the median time of `numpy.fft`, of `tj.jit` of the same `tnp.fft` call, and
of a Numba function calling `np.fft` directly (rocket-fft, the library tracejit's compiled
code calls), after one warm-up call each; then the ratio tracejit / NumPy. The gradient rows
time `tj.jit(tj.grad(...))` of a real loss, against NumPy's hand-written gradient.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np


def _median(fn, args, repeats: int) -> float:
    fn(*args)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn(*args)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main(argv=None) -> None:
    import numba

    import tracejit as tj
    import tracejit.numpy as tnp

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    opts = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    z16 = rng.standard_normal(1 << 16) + 1j * rng.standard_normal(1 << 16)
    x16 = rng.standard_normal(1 << 16)
    z512 = rng.standard_normal((512, 512)) + 1j * rng.standard_normal((512, 512))
    x512 = rng.standard_normal((512, 512))

    cases = [
        ("fft, 2^16 complex128", np.fft.fft, tnp.fft.fft, numba.njit(lambda a: np.fft.fft(a)),
         z16),
        ("fft2, 512 x 512 complex128", np.fft.fft2, tnp.fft.fft2,
         numba.njit(lambda a: np.fft.fft2(a)), z512),
        ("rfft, 2^16 float64", np.fft.rfft, tnp.fft.rfft, numba.njit(lambda a: np.fft.rfft(a)),
         x16),
        ("rfft2, 512 x 512 float64", np.fft.rfft2, tnp.fft.rfft2,
         numba.njit(lambda a: np.fft.rfft2(a)), x512),
    ]
    print(f"{'case':32} {'numpy':>10} {'tracejit':>10} {'numba+rocket':>13} {'tj/np':>7}")
    for name, np_fn, tnp_fn, nb_fn, arg in cases:
        t_np = _median(np_fn, (arg,), opts.repeats)
        t_tj = _median(tj.jit(tnp_fn), (arg,), opts.repeats)
        t_nb = _median(nb_fn, (arg,), opts.repeats)
        print(f"{name:32} {t_np * 1e3:8.3f}ms {t_tj * 1e3:8.3f}ms {t_nb * 1e3:11.3f}ms "
              f"{t_tj / t_np:7.2f}")

    # sum |fft2(x)|^2 over a real image: gradient 2 n Re(ifft2 ...) = 2 N x by Parseval, but
    # computed through the transforms; NumPy's by hand: 2 Re(conj-free transpose) = 2 N x.
    def loss(x):
        return tnp.sum(tnp.abs(tnp.fft.rfft2(x)) ** 2)

    def np_grad(x):  # the same computation by hand: rfft2, then its transpose
        y = np.fft.rfft2(x)
        w = np.full(y.shape[-1], 0.5)
        w[0] = 1.0
        if x.shape[-1] % 2 == 0:
            w[-1] = 1.0
        g = np.fft.irfft2(2 * np.conj(y) * w, s=x.shape) * x.size
        return np.roll(g[::-1, ::-1], 1, axis=(0, 1))

    g = tj.jit(tj.grad(loss))
    assert np.allclose(g(x512), np_grad(x512))
    t_np = _median(np_grad, (x512,), opts.repeats)
    t_tj = _median(g, (x512,), opts.repeats)
    print(f"{'grad sum|rfft2|^2, 512 x 512':32} {t_np * 1e3:8.3f}ms {t_tj * 1e3:8.3f}ms "
          f"{'':>13} {t_tj / t_np:7.2f}")


if __name__ == "__main__":
    main()
