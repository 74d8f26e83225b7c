"""Random programs (tests/program_gen.py) under every transform stack, with a fixed seed.

The fixed run is a handful of programs, each combining many primitives, generated so that
every program prefers the primitives the earlier ones missed: together they must reach every
primitive defined in tracejit/primitives/ and every transform stack, and pass every check.
It is sized for the compile budget (about a minute on two slow cores, Numba compiles
included). Longer runs: `python tests/program_gen.py --programs 2000 --seed 7`.

The checks are themselves checked: a wrong JVP rule, a wrong transpose rule and a wrong
compiled value must each be reported.
"""

import io
import time

import numpy as np
import program_gen as pg
import pytest

from tracejit.primitives import elementwise as ew
from tracejit.primitives import structural as st
from tracejit.transforms import jvp as jvp_mod
from tracejit.transforms import transpose as transpose_mod

SEED = 6
PROGRAMS = 6  # enough for the adaptive run to reach every primitive


@pytest.fixture(scope="module")
def fixed_run():
    """The fixed-seed run, once: failures, primitives reached, stacks checked, log, time."""
    covered, ran, log = set(), set(), io.StringIO()
    start = time.time()
    failures = pg.run(SEED, PROGRAMS, small_share=0.2, record=covered, out=log,
                      reduce=False, adaptive=True, ran=ran)
    return failures, covered, ran, log.getvalue(), time.time() - start


def test_fixed_seed_programs_pass(fixed_run, record_property):
    failures, _, _, log, seconds = fixed_run
    record_property("seconds", round(seconds, 1))
    assert not failures, "\n\n".join(f.report() for f in failures) + "\n\n" + log


def test_every_primitive_is_reached(fixed_run):
    """Every Primitive in tracejit/primitives/ appears in an IR the fixed run made
    (transform-made ones such as while_record, replay and cumlinrec through the transforms
    that make them)."""
    _, covered, _, log, _ = fixed_run
    defined = pg.all_primitives()
    assert len(defined) > 50 and {"while_record", "replay", "cumlinrec", "call"} <= defined
    missing = defined - covered
    assert not missing, f"never reached: {sorted(missing)}\n{log}"


def test_every_transform_stack_is_checked(fixed_run):
    _, _, ran, log, _ = fixed_run
    assert set(pg.STACKS) <= ran, f"not checked: {sorted(set(pg.STACKS) - ran)}\n{log}"


def test_generation_is_deterministic():
    a, b = pg.generate(123), pg.generate(123)
    assert a.source() == b.source() and a.source() != pg.generate(124).source()
    args_a, args_b = a.args(), b.args()
    for x, y in zip(args_a, args_b):
        np.testing.assert_array_equal(x, y)


# -- the checks catch what they are for ------------------------------------------------------

def _program():
    """sin, a 3-d transpose (whose cotangent needs the inverse permutation) and a sum."""
    return pg.program_from([((3,), "float64", -1.0, 1.0), ((2, 3, 4), "float64", -1.0, 1.0)],
                           ["tnp.sin(x0) * x0", "tnp.transpose(x1, (1, 2, 0)) * 2.0",
                            "tnp.sum(tnp.cos(v1)) + tnp.sum(v0)"])


INTERPRETED = ["grad_fd", "jvp_fd", "vjp_jvp"]


def test_checks_pass_on_a_correct_program():
    assert pg.check_program(_program(), INTERPRETED) == []


def test_a_wrong_jvp_rule_is_caught(monkeypatch):
    """sin's derivative off by a sign: both finite-difference checks fail."""
    monkeypatch.setitem(jvp_mod.jvp_rules, ew.sin_p,
                        lambda primals, tangents: (ew.sin(primals[0]),
                                                   ew.mul(tangents[0], ew.neg(ew.cos(primals[0])))))
    stacks = {f.stack for f in pg.check_program(_program(), INTERPRETED)}
    assert {"grad_fd", "jvp_fd"} <= stacks


def test_a_wrong_transpose_rule_is_caught(monkeypatch):
    """transpose's cotangent permuted by the forward permutation instead of its inverse:
    forward mode is right, reverse mode is not (random loss weights see it)."""
    monkeypatch.setitem(transpose_mod.transpose_rules, st.transpose_p,
                        lambda ct, x, *, permutation: [st.transpose(ct, permutation)
                                                       if x.aval.ndim == 3 else ct])
    fails = pg.check_program(_program(), INTERPRETED)
    assert {f.stack for f in fails} >= {"grad_fd", "vjp_jvp"}
    assert "jvp_fd" not in {f.stack for f in fails}
    report = fails[0].report()
    compile(report, "<report>", "exec")  # the report is a runnable snippet


def test_a_wrong_compiled_value_is_caught(monkeypatch):
    """The interpreter's sin off by 1e-9 relative: compiled code disagrees with it."""
    real = st.impl_rules[ew.sin_p]
    monkeypatch.setitem(st.impl_rules, ew.sin_p, lambda x: real(x) * (1 + 1e-9))
    fails = pg.check_program(_program(), ["jit"])
    assert [f.stack for f in fails] == ["jit"] and "jit(f) vs interpreter" in fails[0].message
    assert fails[0].keys == ["v0"] or "v0" in fails[0].keys


def test_reduction_keeps_only_what_fails(monkeypatch):
    monkeypatch.setitem(jvp_mod.jvp_rules, ew.sin_p,
                        lambda primals, tangents: (ew.sin(primals[0]), tangents[0]))
    fails = pg.check_program(_program(), ["jvp_fd"])
    assert fails and fails[0].keys == ["v0", "v2"]  # v2 sums v0
    small = pg.reduce_failure(fails[0])
    assert [v.name for v in small.program.kept_outputs()] == ["v0"]
    assert "transpose" not in small.program.source()
