"""Every example runs (`--quick`, in a fresh process) and prints a sensible result."""

import re
import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run(script: str, *args: str) -> str:
    proc = subprocess.run([sys.executable, str(EXAMPLES / script), *args],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def number(pattern: str, text: str) -> float:
    m = re.search(pattern, text)
    assert m, f"no match for {pattern!r} in:\n{text}"
    return float(m.group(1))


NUM = r"([-+0-9.eE]+)"


def test_quickstart():
    out = run("quickstart.py")
    assert "kernel 0:" in out and "for i0 in" in out  # the plan and a generated loop
    assert number(r"finite differences: " + NUM, out) < 1e-6
    assert number(r"first call " + NUM + " s", out) > 0


def test_logistic_regression():
    out = run("logistic_regression.py", "--quick")
    assert number(r"final loss " + NUM, out) < 0.6
    assert number(r"training accuracy " + NUM, out) > 0.7
    assert number(r"max relative difference " + NUM, out) < 1e-5


def test_mlp_adam():
    out = run("mlp_adam.py", "--quick")
    losses = [float(x) for x in re.findall(r"step +\d+ +loss " + NUM, out)]
    assert losses[-1] < 0.5 * losses[0]  # the loss fell
    assert number(r"final loss " + NUM, out) < 0.1
    assert number(r"test " + NUM, out) > 0.9


def test_ode_fit():
    out = run("ode_fit.py", "--quick")
    plain = number(r"scan +stored for the backward pass +" + NUM + " MB", out)
    ckpt = number(r"scan \+ checkpoint +stored for the backward pass +" + NUM + " MB", out)
    assert ckpt < plain
    assert number(r"final loss " + NUM, out) < 1e-3


def test_implicit_solver():
    out = run("implicit_solver.py", "--quick")
    errors = re.findall(r"max relative error d/dM " + NUM + ", d/de " + NUM, out)
    assert len(errors) == 3  # three eccentricities
    assert max(float(x) for pair in errors for x in pair) < 1e-10


def test_dask_logistic():
    import pytest
    pytest.importorskip("dask.array")
    pytest.importorskip("distributed")
    out = run("dask_logistic.py", "--quick")
    assert number(r"max relative difference " + NUM, out) < 1e-6  # L-BFGS vs one machine
    gap = number(r"\(gap " + NUM + r"\)", out)
    assert 0 <= gap < 1e-3  # Adam's minibatch fit comes close to the L-BFGS optimum
    first, last = re.findall(r"minibatch loss " + NUM, out)[::3][:2]
    assert float(last) < float(first)
