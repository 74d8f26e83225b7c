"""The first call of a new program from several threads at once: each thread gets the
compiled module whole (it used to find it in sys.modules before its body had run)."""

import subprocess
import sys

SCRIPT = """
import threading
import numpy as np
import tracejit as tj
import tracejit.numpy as tnp

x = np.linspace(-1.0, 1.0, 1000)
h = tj.jit(lambda a, s: tnp.tan(a) * s + 0.375)
errors, results = [], []

def work():
    try:
        results.append(h(x, 2.0))
    except Exception as e:
        errors.append(f"{type(e).__name__}: {e}")

threads = [threading.Thread(target=work) for _ in range(4)]
for t in threads:
    t.start()
for t in threads:
    t.join()
assert not errors, errors
assert len(results) == 4
for r in results:
    np.testing.assert_allclose(r, np.tan(x) * 2.0 + 0.375, rtol=1e-14)
print("ok")
"""


def test_threads_share_the_first_import():
    # twice: with the module just written, and loaded from the disk cache
    for _ in range(2):
        run = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                             timeout=300)
        assert run.returncode == 0 and run.stdout.strip() == "ok", run.stderr[-2000:]
