"""Vector math for generated loops: libm calls that LLVM's loop vectorizer can widen.

Numba lowers `math.sin(x)` in a loop to one scalar libm call per element, so elementwise
kernels full of transcendentals are compute-bound. glibc ships vector versions of those
functions in libmvec (`_ZGVdN4v_sin`: four doubles in a ymm register). LLVM's loop vectorizer
calls them when the scalar function's declaration carries the `vector-function-abi-variant`
attribute listing them and is marked `readonly nounwind`; llvmlite cannot select a vector
library, so we declare that attribute ourselves from a Numba intrinsic.

This module is a renderer detail (DESIGN.md, principle 8): it spells calls and produces the
source text that defines them. Generated modules stay standalone, so the intrinsics are not
imported from here: `preamble(used)` returns Python source, pasted into the generated module,
that loads libmvec and defines `vm_<fn>_<f64|f32>`; `call(fn, dtype, args)` spells one call.
The preamble names the exact vector variants offered, so the math mode and the CPU's vector
ISA are part of the module's source text and hence of its cache key.

Where libmvec is missing (not x86-64 Linux with glibc, no libmvec) or lacks a function, the
functions `portable_math` implements (sin, cos, exp, expm1, tanh, log, log1p) are spelled as
calls of its pure-arithmetic helpers `pm_<fn>_<f64|f32>`, which LLVM vectorizes on any CPU;
everything else gets the scalar spelling the elementwise table uses (`math.sin(x)`).
`TRACEJIT_VECTOR_MATH=0` forces scalar spellings, `TRACEJIT_VECTOR_MATH=portable` the
portable helpers without libmvec; `python -m tracejit.compiler.vecmath` prints the detected
mode. docs/vector-math.md has the measurements and their commands.
"""

from __future__ import annotations

import ctypes
import functools
import os
import platform as _platform
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from . import portable_math

__all__ = ["FUNCTIONS", "SCALAR", "MathRenderer", "Platform", "call", "covers", "describe",
           "detect", "intrinsic_name", "mode", "preamble", "target", "target_features"]

LIBMVEC = "libmvec.so.1"
ENV_VAR = "TRACEJIT_VECTOR_MATH"

# fn: (libm name of the float64 version, arity, scalar spelling). The scalar spellings are
# the elementwise table's, so the scalar mode generates exactly what it did before.
_TABLE: dict[str, tuple[str, int, str]] = {
    "sin": ("sin", 1, "math.sin({0})"),
    "cos": ("cos", 1, "math.cos({0})"),
    "tan": ("tan", 1, "math.tan({0})"),
    "exp": ("exp", 1, "math.exp({0})"),
    "exp2": ("exp2", 1, "math.pow({two}, {0})"),
    "expm1": ("expm1", 1, "math.expm1({0})"),
    "log": ("log", 1, "math.log({0})"),
    "log2": ("log2", 1, "math.log2({0})"),
    "log10": ("log10", 1, "math.log10({0})"),
    "log1p": ("log1p", 1, "math.log1p({0})"),
    "pow": ("pow", 2, "({0} ** {1})"),
    "tanh": ("tanh", 1, "math.tanh({0})"),
    "sinh": ("sinh", 1, "math.sinh({0})"),
    "cosh": ("cosh", 1, "math.cosh({0})"),
    "asin": ("asin", 1, "math.asin({0})"),
    "acos": ("acos", 1, "math.acos({0})"),
    "atan": ("atan", 1, "math.atan({0})"),
    "atan2": ("atan2", 2, "math.atan2({0}, {1})"),
    "asinh": ("asinh", 1, "math.asinh({0})"),
    "acosh": ("acosh", 1, "math.acosh({0})"),
    "atanh": ("atanh", 1, "math.atanh({0})"),
    "cbrt": ("cbrt", 1, "np.cbrt({0})"),
    "hypot": ("hypot", 2, "math.hypot({0}, {1})"),
    "erf": ("erf", 1, "math.erf({0})"),
}
FUNCTIONS: tuple[str, ...] = tuple(_TABLE)
# NumPy spellings of the primitive names above.
_ALIASES = {"arcsin": "asin", "arccos": "acos", "arctan": "atan", "arctan2": "atan2",
            "arcsinh": "asinh", "arccosh": "acosh", "arctanh": "atanh", "power": "pow"}

# libmvec variants we do not use although libmvec has them: results NumPy users rely on
# would change (measured on glibc 2.36; docs/vector-math.md).
_SCALAR_ONLY: dict[tuple[str, int], str] = {
    ("log10", 64): "log10(1e7) = 7.000000000000001 (libm: 7 for every power of ten)",
    ("cbrt", 64): "perfect cubes exact 53% of the time (libm 61%, so results differ)",
    ("cbrt", 32): "cbrtf(-27) = -2.9999995; perfect cubes exact 31% (libm 100%)",
    ("atan2", 32): "atan2f(y, y) is 1 ulp below pi/4 (libm exact)",
}

# Functions computed from another function's vector variants, because that is faster than
# their own (docs/vector-math.md): float64 tanh from expm1 (`_vm_tanh` in the runtime below),
# 25% faster than libmvec's tanh, within 3.5 ulp against its 1.2. float32 keeps tanhf, which
# is both faster and more accurate than the expm1f route.
_VIA: dict[tuple[str, int], str] = {("tanh", 64): "expm1"}

# x86 vector function ABI ISA letters: (letter, CPU feature it needs, doubles per vector).
# 'c' (AVX without AVX2) is left out: such CPUs get the SSE variants.
_ISAS = (("b", None, 2), ("d", "avx2", 4), ("e", "avx512f", 8))
_ISA_NAMES = {"b": "sse4", "d": "avx2", "e": "avx512"}
_SUFFIX = {64: "f64", 32: "f32"}


@dataclass(frozen=True, eq=False)
class Platform:
    """What the vector math layer may use here: the mode name, the vector ISAs offered,
    per (function, bits) the libmvec symbols of its variants, and the (function, bits)
    pairs computed by `portable_math`'s helpers instead. `reason` says why not more."""

    mode: str
    isas: tuple[str, ...] = ()
    variants: Mapping[tuple[str, int], tuple[str, ...]] = field(default_factory=dict)
    reason: str = ""
    portable: frozenset[tuple[str, int]] = frozenset()

    def symbols(self, fn: str, dtype) -> tuple[str, ...]:
        """The vector variants offered for `fn` on `dtype` (empty: a scalar call)."""
        bits = _bits(dtype)
        return self.variants.get((_canonical(fn), bits), ()) if bits else ()

    def is_portable(self, fn: str, dtype) -> bool:
        """True if `fn` on `dtype` is computed by a portable pure-arithmetic helper."""
        bits = _bits(dtype)
        return bool(bits) and (_canonical(fn), bits) in self.portable


SCALAR = Platform("scalar", reason="scalar calls requested")
_ALL_PORTABLE = frozenset((fn, bits) for fn in portable_math.FUNCTIONS for bits in (64, 32))


def _portable(reason: str) -> Platform:
    """The platform without libmvec: portable helpers where there are some, else scalar."""
    return Platform("portable", reason=reason, portable=_ALL_PORTABLE)


def _canonical(fn: str) -> str:
    fn = _ALIASES.get(fn, fn)
    if fn not in _TABLE:
        raise KeyError(f"vecmath has no function {fn!r}; it covers {', '.join(FUNCTIONS)}")
    return fn


def _bits(dtype) -> int | None:
    """64 or 32 for float64 / float32 (given as a dtype, a type, 'f64'/'f32' or 64/32);
    None for other dtypes, which always get the scalar spelling."""
    if isinstance(dtype, str) and dtype in ("f64", "f32"):
        return int(dtype[1:])
    if isinstance(dtype, int) and dtype in (64, 32):
        return dtype
    dt = np.dtype(dtype)
    return dt.itemsize * 8 if dt in (np.float64, np.float32) else None


def covers(fn: str) -> bool:
    """True if `fn` (a primitive name such as 'asin' or a NumPy name such as 'arcsin') is one
    of the functions whose calls this layer spells."""
    return _ALIASES.get(fn, fn) in _TABLE


def intrinsic_name(fn: str, dtype) -> str:
    """The name `preamble` gives the intrinsic for `fn` on `dtype`: `vm_sin_f64`."""
    bits = _bits(dtype)
    if bits is None:
        raise TypeError(f"vector math covers float64 and float32, not {np.dtype(dtype)}")
    return f"vm_{_canonical(fn)}_{_SUFFIX[bits]}"


def _libm_name(fn: str, bits: int) -> str:
    base = _TABLE[fn][0]
    return base if bits == 64 else base + "f"


def _vector_symbol(fn: str, bits: int, isa: str, lanes64: int) -> str:
    lanes = lanes64 if bits == 64 else 2 * lanes64
    return f"_ZGV{isa}N{lanes}{'v' * _TABLE[fn][1]}_{_libm_name(fn, bits)}"


def target_features() -> set[str]:
    """CPU features of the machine code Numba generates (honours NUMBA_CPU_FEATURES,
    NUMBA_CPU_NAME and NUMBA_ENABLE_AVX=0, as Numba's own code generator does). Read from
    the environment and llvmlite, so that planning a program does not import Numba."""
    import llvmlite.binding as llb

    feats = os.environ.get("NUMBA_CPU_FEATURES")
    if feats is None:
        if os.environ.get("NUMBA_CPU_NAME"):
            feats = ""  # a named CPU without features: Numba's generic code
        else:
            try:
                feats = llb.get_host_cpu_features().flatten()
            except RuntimeError:
                feats = ""
    have = {f[1:] for f in feats.split(",") if f.startswith("+")}
    if os.environ.get("NUMBA_ENABLE_AVX", "").strip() == "0":
        have -= {f for f in have if f.startswith("avx")}
    return have


def _llvmlite_ok() -> bool:
    """The intrinsics need opaque pointers and `vector-function-abi-variant` (LLVM >= 15)."""
    import llvmlite.binding as llb
    from llvmlite import ir
    try:
        return llb.llvm_version_info >= (15,) and ir.PointerType().is_opaque
    except TypeError:  # typed-pointer llvmlite: PointerType needs a pointee
        return False


def detect(environ: Mapping[str, str] | None = None, features: Iterable[str] | None = None,
           library: str = LIBMVEC) -> Platform:
    """Find what this process can use: x86-64 Linux with glibc, libmvec loadable (it is
    loaded RTLD_GLOBAL here), the CPU's vector ISAs and the symbols libmvec exports.
    Anything missing gives the portable platform with the reason (pure-arithmetic helpers
    for the functions `portable_math` has, scalar calls for the rest); functions libmvec
    lacks get the portable helpers too. `features` overrides the target's CPU features (for
    tests and for describing other machines)."""
    env = os.environ if environ is None else environ
    choice = env.get(ENV_VAR, "").strip().lower()
    if choice in ("0", "false", "no", "off", "scalar"):
        return Platform("scalar", reason=f"{ENV_VAR}={env[ENV_VAR]}")
    if choice == "portable":
        return _portable(f"{ENV_VAR}={env[ENV_VAR]}")
    machine = _platform.machine().lower()
    if not sys.platform.startswith("linux") or machine not in ("x86_64", "amd64"):
        return _portable(f"libmvec variants are wired for x86-64 Linux only "
                         f"(this is {sys.platform} {machine})")
    libc, version = _platform.libc_ver()
    if libc != "glibc":
        return _portable("no glibc (libmvec is part of glibc)")
    if not _llvmlite_ok():
        return _portable("llvmlite too old for libmvec (needs opaque pointers, LLVM 15+)")
    try:
        lib = ctypes.CDLL(library, mode=os.RTLD_GLOBAL)
    except OSError as e:
        return _portable(f"cannot load {library}: {e}")
    have = target_features() if features is None else set(features)
    isas = tuple(isa for isa, feat, _ in _ISAS if feat is None or feat in have)
    variants: dict[tuple[str, int], tuple[str, ...]] = {}
    missing = []
    for fn in FUNCTIONS:
        for bits in (64, 32):
            if (fn, bits) in _SCALAR_ONLY:
                continue
            syms = tuple(s for isa, _, lanes in _ISAS if isa in isas
                         for s in [_vector_symbol(fn, bits, isa, lanes)] if hasattr(lib, s))
            if syms:
                variants[fn, bits] = syms
            else:
                missing.append((fn, bits))
    for (fn, bits), via in _VIA.items():
        if (via, bits) in variants:
            variants[fn, bits] = variants[via, bits]
    if not variants:
        return _portable(f"{library} (glibc {version}) exports no variants")
    name = "libmvec-" + _ISA_NAMES[isas[-1]]
    chosen = ", ".join(f"{fn}_{_SUFFIX[bits]}" for fn, bits in _SCALAR_ONLY)
    portable = _ALL_PORTABLE - set(variants)
    scalar = ", ".join(f"{fn}_{_SUFFIX[bits]}" for fn, bits in missing
                       if (fn, bits) not in portable)
    reason = f"scalar by choice: {chosen}" + (f"; no variant: {scalar}" if scalar else "")
    return Platform(name, isas, variants, reason, frozenset(portable))


@functools.cache
def _detected() -> Platform:
    return detect()


def target(platform: Platform | None = None) -> Platform:
    """`platform`, or the one detected at first use (cached for the process)."""
    return _detected() if platform is None else platform


def mode(platform: Platform | None = None) -> str:
    """Short name of the math mode: 'libmvec-avx2', 'libmvec-avx512', 'libmvec-sse4',
    'portable' or 'scalar'; for cache keys, dumps and docs."""
    return target(platform).mode


def describe(platform: Platform | None = None) -> str:
    """One line saying what the mode uses and, if anything is scalar, why."""
    p = target(platform)
    names = ", ".join(f"{fn}_{_SUFFIX[bits]}" for fn, bits in sorted(p.portable))
    if not p.variants:
        if p.portable:
            return (f"portable pure-arithmetic helpers for {names}, scalar libm calls for the "
                    f"rest ({p.reason})")
        return f"scalar libm calls ({p.reason})"
    isas = ", ".join(f"{i} ({_ISA_NAMES[i]})" for i in p.isas)
    text = (f"glibc libmvec vector variants, ISAs {isas}, for {len(p.variants)} of "
            f"{2 * len(FUNCTIONS)} function/dtype pairs")
    text += f"; portable helpers for {names}" if names else ""
    return text + (f"; {p.reason}" if p.reason else "")


def call(fn: str, dtype, args: Sequence[str], platform: Platform | None = None) -> str:
    """The loop-body expression for `fn` applied to the expressions `args` on `dtype`
    elements: `vm_sin_f64(x)` if the platform has vector variants for it, `pm_exp_f64(x)`
    if it computes it with a portable helper, else the scalar `math.sin(x)` (always for
    dtypes other than float64 and float32). The caller must include `(fn, dtype)` in
    `preamble`'s `used`."""
    fn = _canonical(fn)
    if len(args) != _TABLE[fn][1]:
        raise TypeError(f"{fn} takes {_TABLE[fn][1]} argument(s), got {len(args)}")
    p = target(platform)
    if p.symbols(fn, dtype):
        return f"{intrinsic_name(fn, dtype)}({', '.join(args)})"
    if p.is_portable(fn, dtype):
        return f"{portable_math.helper_name(fn, _bits(dtype))}({', '.join(args)})"
    two = "2.0" if _bits(dtype) != 32 else "np.float32(2.0)"
    return _TABLE[fn][2].format(*args, two=two)


# The runtime part of the preamble, pasted verbatim into generated modules: it must need
# nothing but llvmlite and Numba. It decides again, at import, which variants the running
# host has, so a module copied to another machine degrades to scalar calls, never to an
# illegal instruction or a missing symbol; and it loads libmvec at import, before any
# machine code that calls it (freshly compiled or from Numba's cache) is linked.
_RUNTIME = '''\
import llvmlite.binding as _llb
from llvmlite import ir as _ir
from numba.core import codegen as _nb_codegen
from numba.core import config as _nb_config
from numba.core import types as _nb_types
from numba.extending import intrinsic as _intrinsic


def _vm_isas():
    """Vector ISA letters usable here: libmvec loads and Numba targets the CPU feature."""
    try:
        _llb.load_library_permanently("libmvec.so.1")
    except RuntimeError:
        return ""
    feats = _nb_config.CPU_FEATURES
    feats = (_nb_codegen.get_host_cpu_features() if feats is None else feats).split(",")
    return "b" + "d" * ("+avx2" in feats) + "e" * ("+avx512f" in feats)


_VM_ISAS = _vm_isas()


def _vm_keep(mod, fns):
    """Add `fns` to @llvm.compiler.used: uncalled declarations are dropped before the
    vectorizer looks for them."""
    used = mod.globals.get("llvm.compiler.used")
    if used is None:
        used = _ir.GlobalVariable(mod, _ir.ArrayType(_ir.PointerType(), 0), "llvm.compiler.used")
        used.linkage, used.section = "appending", "llvm.metadata"
        fns = list(fns)
    else:
        fns = list(used.initializer.constant) + list(fns)
    used.value_type = _ir.ArrayType(_ir.PointerType(), len(fns))
    used.initializer = _ir.Constant(used.value_type, fns)


def _prefer_512(function):
    """Let the loop vectorizer use 512-bit vectors in `function` (LLVM prefers 256 bits on
    AVX-512 CPUs by default), so it calls the 8-wide (16 for float32) libmvec variants: W1's
    gradient loop took 3.9 against 5.6 ms per 1e6 elements, exp+sin+cos+tanh 3.8 against
    4.8 ms; each vector call costs about as much as the arithmetic between calls, so fewer,
    wider calls win."""
    attr = '"prefer-vector-width"="512"'
    if attr not in function.attributes:
        set.add(function.attributes, attr)  # llvmlite admits only known names


class _VmNoFlags(set):
    """Fast-math flags that Numba's fastmath pass cannot add to: with them LLVM turns a
    log() call into llvm.log, which has no vector variants."""

    def add(self, flag):
        pass


def _vm_usable(variants):
    """(lanes, symbol) of the `variants` this host has."""
    return [(int(s.split("_")[1][5:].rstrip("v")), s) for s in variants
            if s[4] in _VM_ISAS and _llb.address_of_symbol(s)]


def _vm_declare(builder, name, fty, nargs, usable):
    """libm's `name` declared in the builder's module with its `usable` vector variants,
    for LLVM's loop vectorizer to call instead."""
    mod = builder.module
    key = '"vector-function-abi-variant"'
    fn = mod.globals.get(name) or _ir.Function(mod, _ir.FunctionType(fty, [fty] * nargs), name)
    fn.attributes.add("nounwind")
    fn.attributes.add("readonly")  # else LLVM assumes errno writes: no vectorization
    if any(s[4] == "e" for _, s in usable):
        _prefer_512(builder.function)
    if usable and not any(a.startswith(key) for a in fn.attributes):
        decls = [mod.globals.get(s) or _ir.Function(mod, _ir.FunctionType(
            _ir.VectorType(fty, n), [_ir.VectorType(fty, n)] * nargs), s) for n, s in usable]
        abi = ",".join(f"_ZGV_LLVM_N{n}{'v' * nargs}_{name}({s})" for n, s in usable)
        set.add(fn.attributes, f'{key}="{abi}"')  # llvmlite admits only known names
        _vm_keep(mod, decls)
    return fn


def _vm_call(builder, fn, args):
    call = builder.call(fn, args)
    call.fastmath = _VmNoFlags()
    return call


def _vm_tanh(bits, *variants):
    """tanh(x) = copysign(-e / (e + 2), x) with e = expm1(-2|x|), through expm1's vector
    `variants`: a third of the cost of libmvec's tanh (docs/vector-math.md). e lies in
    [-1, 0], so nothing overflows; tanh(+-inf) = +-1 and zeros keep their sign."""
    fty = _ir.DoubleType() if bits == 64 else _ir.FloatType()
    nty = _nb_types.float64 if bits == 64 else _nb_types.float32
    usable = _vm_usable(variants)

    def codegen(context, builder, sig, args):
        mod = builder.module
        fabs = mod.declare_intrinsic("llvm.fabs", [fty])
        copysign = mod.declare_intrinsic("llvm.copysign", [fty],
                                         _ir.FunctionType(fty, [fty, fty]))
        x = args[0]
        m = builder.fmul(builder.call(fabs, [x]), _ir.Constant(fty, -2.0))
        expm1 = _vm_declare(builder, "expm1" if bits == 64 else "expm1f", fty, 1, usable)
        e = _vm_call(builder, expm1, [m])
        t = builder.fdiv(builder.fneg(e), builder.fadd(e, _ir.Constant(fty, 2.0)))
        return builder.call(copysign, [t, x])

    def vm_tanh(typingctx, x):
        return (nty(nty), codegen) if isinstance(x, (_nb_types.Float, _nb_types.Integer)) \
            else None

    return _intrinsic(vm_tanh)


def _vm(name, bits, *variants):
    """An intrinsic calling libm `name` on `bits`-bit floats, declared with its libmvec
    vector `variants` that this host has, for LLVM's loop vectorizer to call instead."""
    fty = _ir.DoubleType() if bits == 64 else _ir.FloatType()
    nty = _nb_types.float64 if bits == 64 else _nb_types.float32
    nargs = variants[0].split("_")[1].count("v")
    usable = _vm_usable(variants)

    def codegen(context, builder, sig, args):
        return _vm_call(builder, _vm_declare(builder, name, fty, nargs, usable), args)

    real = (_nb_types.Float, _nb_types.Integer)

    def unary(typingctx, x):
        return (nty(nty), codegen) if isinstance(x, real) else None

    def binary(typingctx, x, y):
        ok = isinstance(x, real) and isinstance(y, real)
        return (nty(nty, nty), codegen) if ok else None

    typer = unary if nargs == 1 else binary
    typer.__name__ = "vm_" + name
    return _intrinsic(typer)
'''


def preamble(used: Iterable[tuple[str, object]], platform: Platform | None = None) -> str:
    """Python source defining the intrinsics and portable helpers for the `(fn, dtype)`
    pairs in `used`, to paste into a generated module after its imports (before the
    kernels). Pairs that `call` spells as scalar calls are ignored; the result is '' if
    nothing needs a definition."""
    p = target(platform)
    wanted = {}
    helpers = set()
    for fn, dtype in used:
        if p.symbols(fn, dtype):
            fn, bits = _canonical(fn), _bits(dtype)
            wanted[intrinsic_name(fn, bits)] = (fn, bits)
        elif p.is_portable(fn, dtype):
            helpers.add((_canonical(fn), _bits(dtype)))
    text = portable_math.preamble(helpers)
    if not wanted:
        return text
    lines = [f"# Vector math ({p.mode}): each vm_<fn>_<dtype> calls libm's <fn>; LLVM's loop",
             "# vectorizer may call the glibc libmvec vector variants named beside it instead.",
             "# Variants this host lacks (libmvec, CPU feature, symbol) stay scalar libm calls.",
             _RUNTIME, ""]
    for name in sorted(wanted):
        fn, bits = wanted[name]
        syms = ", ".join(f'"{s}"' for s in p.symbols(fn, bits))
        if (fn, bits) in _VIA:
            lines.append(f'{name} = _vm_{fn}({bits}, {syms})')
        else:
            lines.append(f'{name} = _vm("{_libm_name(fn, bits)}", {bits}, {syms})')
    return "\n".join(lines) + "\n" + ("\n" + text if text else "")


class MathRenderer:
    """Spells math calls for one generated module and remembers which intrinsics and helpers
    its preamble must define (so a code generator needs no bookkeeping of its own)."""

    def __init__(self, platform: Platform | None = None) -> None:
        self.platform = target(platform)
        self.used: set[tuple[str, int]] = set()

    def _spelled(self, fn: str, dtype) -> bool:
        """True (recording the use) if `fn` on `dtype` is not a scalar call here."""
        if self.platform.symbols(fn, dtype) or self.platform.is_portable(fn, dtype):
            self.used.add((_canonical(fn), _bits(dtype)))
            return True
        return False

    def call(self, fn: str, dtype, args: Sequence[str]) -> str:
        """Like `call`, recording the uses that need a definition."""
        self._spelled(fn, dtype)
        return call(fn, dtype, args, self.platform)

    def function(self, fn: str, dtype) -> str | None:
        """The intrinsic's or helper's name if `fn` on `dtype` is not a scalar call here
        (recording the use), else None: for expressions that spell `math.<fn>(...)` inside
        a larger one."""
        if not covers(fn) or not self._spelled(fn, dtype):
            return None
        if self.platform.symbols(fn, dtype):
            return intrinsic_name(fn, dtype)
        return portable_math.helper_name(_canonical(fn), _bits(dtype))

    def preamble(self) -> str:
        """Like `preamble` for every call spelled so far."""
        return preamble(sorted(self.used), self.platform)


if __name__ == "__main__":
    print(f"{mode()}: {describe()}")
