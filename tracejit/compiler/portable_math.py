"""Portable vector math: exp, expm1, tanh, log and log1p as pure arithmetic, as module text.

Where glibc's libmvec is missing (macOS, Windows, musl, aarch64) a loop calling libm's `exp`
runs one scalar call per element: LLVM's loop vectorizer cannot widen a call without a vector
variant. These helpers compute the functions from additions, multiplications, one division
and integer bit operations on the float's representation, with special values chosen by
comparisons instead of branches, so that LLVM inlines them and vectorizes the loop around
them on any CPU (SSE, AVX, NEON). `vecmath` spells a call as `pm_<fn>_<f64|f32>(x)` when the
platform has no libmvec variant for it and this module has the function; the generated
module then pastes `preamble(used)` after its imports, like the other helper families.

Methods (after fdlibm's, with our own coefficients from scripts/fit_math_polynomials.py):
- exp/expm1: x = k ln2 + r with |r| <= ln2/2 (ln2 in two parts, the first with 11 trailing
  zero bits so k * LN2_HI is exact), exp(r) = 1 + r + r^2 E(r) with E of degree 10, scaled by
  2^k built from its bits (in two factors, so subnormal results round once and nothing
  overflows before the last multiplication). expm1 returns 2^k expm1(r) + (2^k - 1), exact
  in its leading part for small x.
- tanh(x) = copysign(-e / (e + 2), x), e = expm1(-2|x|) (as libmvec-backed tanh does).
- log: x = 2^k m with m in [sqrt(1/2), sqrt(2)) from the bits (subnormals scaled by 2^54
  first); log(m) = f - (f^2/2 - s (f^2/2 + z L(z))), f = m - 1, s = f / (2 + f), z = s^2.
  log1p adds the rounding error of 1 + x back as c / (1 + x).
- float32 versions widen to float64 and round the result once: within one float32 ulp.

Accuracy against NumPy (tests/test_vecmath.py, docs/vector-math.md): within 2 ulp in float64
and 1 ulp in float32 over the documented ranges, special values (+-0, +-inf, nan, subnormal
inputs and results, overflow edges) exactly NumPy's. Each public helper compiles once per
module with fastmath off, whatever the kernel's flags, and LLVM inlines it at every call.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["FUNCTIONS", "helper_name", "preamble"]

# Functions with a portable implementation (vecmath's names), for float64 and float32.
FUNCTIONS: tuple[str, ...] = ("sin", "cos", "exp", "expm1", "tanh", "log", "log1p")
_SUFFIX = {64: "f64", 32: "f32"}

# name -> (source, helpers it needs)
_HELPERS: dict[str, tuple[str, tuple[str, ...]]] = {}


def _helper(name: str, needs: tuple[str, ...] = ()) -> None:
    def register(source: str) -> str:
        _HELPERS[name] = (source, needs)
        return source
    return register


# The pieces of a function are inlined at Numba's IR level into its public helper, which
# `_pm_inline` compiles once as a subroutine (fastmath off, NumPy's error model) and LLVM
# inlines at each call.
_DECO = "@numba.njit(inline='always')"

_helper("_pm_runtime")('''\
from llvmlite import ir as _pm_ir
from numba.core import compiler as _pm_compiler
from numba.core import types as _pm_types
from numba.extending import intrinsic as _pm_intrinsic

# Output of scripts/fit_math_polynomials.py.
_PM_LN2_HI = 0.6931471805598903
_PM_LN2_LO = 5.497923018708371e-14
_PM_LOG2E = 1.4426950408889634
_PM_EXP = (0.5, 0.1666666666666667, 0.04166666666666668, 0.008333333333326141,
           0.0013888888888879082, 0.00019841269874802366, 2.4801587336422883e-05,
           2.75572554236363e-06, 2.755726329996515e-07, 2.5105207166024697e-08,
           2.0918129965596993e-09)
_PM_LOG = (0.6666666666666666, 0.4000000000000088, 0.28571428570801116, 0.22222222392222987,
           0.18181795590673483, 0.1538624216915454, 0.13268712160697557, 0.13087218376140589)
_PM_SIN = (-0.16666666666666666, 0.008333333333333331, -0.00019841269841265065,
           2.7557319219339963e-06, -2.5052106232697e-08, 1.6058531654927023e-10,
           -7.586699059819304e-13)
_PM_COS = (0.041666666666666664, -0.0013888888888888887, 2.480158730158465e-05,
           -2.755731922140322e-07, 2.087675579120521e-09, -1.1470460905591153e-11,
           4.745872873683335e-14)
_PM_PIO2_HI = 1.5707963267948966
_PM_PIO2_LO = 6.123233995736766e-17
_PM_2OPI_BITS = 1216  # 2/pi = 0x0.<hex digits below>
_PM_2OPI_HEX = (
    "a2f9836e4e441529fc2757d1f534ddc0db6295993c439041fe5163abdebbc561b7246e3a424d"
    "d2e006492eea09d1921cfe1deb1cb129a73ee88235f52ebb4484e99c7026b45f7e413991d639"
    "835339f49c845f8bbdf9283b1ff897ffde05980fef2f118b5a0a6d1f6d367ecf27cb09b74f46"
    "3f669e5fea2d7527bac7ebe5f17b3d0739f78a5292ea6bfb5fb11f8d5d0856033046fc7b6bab"
)
_PM_ROUND = 6755399441055744.0  # 1.5 * 2**52: (v + it) - it rounds v to an integer
_PM_SQRT2 = 1.4142135623730951
_PM_TWO54 = 18014398509481984.0
_PM_TINY = 2.2250738585072014e-308  # the smallest normal float64
_PM_EXP_HI = 709.782712893384  # exp overflows above (ln of the largest float64)
_PM_EXP_LO = -745.1332191019412  # exp is below half the smallest subnormal under this


def _pm_inline(impl):
    """A float64 -> float64 intrinsic calling `impl`, compiled once as a subroutine with its
    own flags (fastmath off whatever the kernel's: reassociation would undo its rounding
    steps; NumPy's error model) and inlined by LLVM at every call (`alwaysinline` on the
    call): LLVM's inliner leaves a call of a function this large in the loop, and a call
    blocks vectorization. The compiled subroutine is kept here, per module: Numba's own
    cache of subroutines is keyed by code objects, which compare equal across modules with
    the same helper text, and a kernel linked with another module's subroutine could not be
    loaded from the disk cache without that module."""
    f64 = _pm_types.float64
    compiled = {}

    def codegen(context, builder, sig, args):
        cres = compiled.get(sig)
        if cres is None:
            flags = _pm_compiler.Flags()
            flags.error_model = "numpy"
            plain = context.subtarget(fastmath=False)  # else the kernel's flags carry over
            cres = compiled[sig] = plain.compile_subroutine(builder, impl, sig, flags=flags,
                                                            caching=False)
        else:
            context.active_code_library.add_linking_library(cres.library)
        block, start = builder.block, len(builder.block.instructions)
        result = context.call_internal(builder, cres.fndesc, sig, args)
        for instr in block.instructions[start:]:
            if isinstance(instr, _pm_ir.CallInstr):
                instr.attributes.add("alwaysinline")
        return result

    def typer(typingctx, x):
        return (f64(f64), codegen) if isinstance(x, (_pm_types.Float, _pm_types.Integer)) \
            else None

    typer.__name__ = impl.__name__.lstrip("_")
    return _pm_intrinsic(typer)


@_pm_intrinsic
def _pm_bits(typingctx, x):
    """The IEEE bits of a float64 as an int64 (a bitcast, which vectorizes)."""
    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], _pm_ir.IntType(64))
    return (_pm_types.int64(_pm_types.float64), codegen) \\
        if isinstance(x, _pm_types.Float) and x.bitwidth == 64 else None


@_pm_intrinsic
def _pm_fma(typingctx, a, b, c):
    """a * b + c rounded once (llvm.fma: the CPU's FMA instruction, which vectorizes; a
    libm call on CPUs without one)."""
    def codegen(context, builder, sig, args):
        d = _pm_ir.DoubleType()
        fma = builder.module.declare_intrinsic("llvm.fma", [d], _pm_ir.FunctionType(d, [d] * 3))
        return builder.call(fma, args)
    f64 = _pm_types.float64
    ok = all(isinstance(v, _pm_types.Float) and v.bitwidth == 64 for v in (a, b, c))
    return (f64(f64, f64, f64), codegen) if ok else None


@_pm_intrinsic
def _pm_float(typingctx, i):
    """The float64 whose IEEE bits are the int64 `i`."""
    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], _pm_ir.DoubleType())
    return (_pm_types.float64(_pm_types.int64), codegen) \\
        if isinstance(i, _pm_types.Integer) else None
''')

_helper("_pm_pow2", ("_pm_runtime",))(f'''\
{_DECO}
def _pm_pow2(k):
    """2.0 ** k for an integer k in [-1022, 1023], from its bits."""
    return _pm_float((k + 1023) << 52)
''')

_helper("_pm_exp_core", ("_pm_runtime",))(f'''\
{_DECO}
def _pm_exp_core(x):
    """(k, r, expm1(r)) with x = k ln2 + r, |r| <= ln2/2, for x in [-746, 710]."""
    k = (x * _PM_LOG2E + _PM_ROUND) - _PM_ROUND
    r = (x - k * _PM_LN2_HI) - k * _PM_LN2_LO
    c = _PM_EXP
    r2 = r * r
    r4 = r2 * r2
    p = ((c[0] + r * c[1]) + r2 * (c[2] + r * c[3])) + r4 * (
        (c[4] + r * c[5]) + r2 * (c[6] + r * c[7])) + (r4 * r4) * (
        (c[8] + r * c[9]) + r2 * c[10])
    return np.int64(k), r, r + r2 * p
''')

_helper("pm_exp_f64", ("_pm_exp_core", "_pm_pow2"))('''\
def _pm_exp_f64(x):
    xc = x if x > -746.0 else -746.0  # a nan becomes -746: its result is chosen below
    xc = xc if xc < 710.0 else 710.0
    k, r, em = _pm_exp_core(xc)
    k1 = k >> 1
    y = ((em + 1.0) * _pm_pow2(k1)) * _pm_pow2(k - k1)
    y = np.inf if x > _PM_EXP_HI else y
    y = 0.0 if x < _PM_EXP_LO else y
    return x if x != x else y


pm_exp_f64 = _pm_inline(_pm_exp_f64)
''')

_helper("pm_expm1_f64", ("_pm_exp_core", "_pm_pow2"))('''\
def _pm_expm1_f64(x):
    xc = x if x > -40.0 else -40.0
    xc = xc if xc < 710.0 else 710.0
    k, r, em = _pm_exp_core(xc)
    kc = k if k < 1000 else 1000
    s = _pm_pow2(kc)
    # s - 1 is exact for k >= -53, so near 0 the result is em itself; further down,
    # exp(x) - 1 rounds once
    y = s * em + (s - 1.0) if k > -2 else s * (em + 1.0) - 1.0
    k1 = k >> 1
    big = ((em + 1.0) * _pm_pow2(k1)) * _pm_pow2(k - k1)  # k > 1000: the -1 is negligible
    y = big if k > 1000 else y
    y = np.inf if x > _PM_EXP_HI else y
    y = -1.0 if x < -40.0 else y
    y = x if x == 0.0 else y  # keeps the sign of zero
    return x if x != x else y


pm_expm1_f64 = _pm_inline(_pm_expm1_f64)
''')

_helper("pm_tanh_f64", ("pm_expm1_f64",))('''\
def _pm_tanh_f64(x):
    e = pm_expm1_f64(-2.0 * abs(x))  # in [-1, 0]: nothing overflows
    return math.copysign(-e / (e + 2.0), x)


pm_tanh_f64 = _pm_inline(_pm_tanh_f64)
''')

_helper("_pm_log_parts", ("_pm_runtime",))(f'''\
{_DECO}
def _pm_log_parts(x):
    """(k, f) with x = 2^k (1 + f), 1 + f in [sqrt(1/2), sqrt(2)), for positive normal x."""
    b = _pm_bits(x)
    k = (b >> 52) - 1023
    m = _pm_float((b & 0xFFFFFFFFFFFFF) | 0x3FF0000000000000)  # in [1, 2)
    up = m > _PM_SQRT2
    m = m * 0.5 if up else m
    k = k + 1 if up else k
    return k, m - 1.0
''')

_helper("_pm_log1p_f", ("_pm_runtime",))(f'''\
{_DECO}
def _pm_log1p_f(f, dk, c):
    """dk ln2 + log(1 + f) + c for 1 + f in [sqrt(1/2), sqrt(2)), c a small correction."""
    s = f / (2.0 + f)
    z = s * s
    q = _PM_LOG
    z2 = z * z
    ell = ((q[0] + z * q[1]) + z2 * (q[2] + z * q[3])) + (z2 * z2) * (
        (q[4] + z * q[5]) + z2 * (q[6] + z * q[7]))
    hfsq = 0.5 * f * f
    return dk * _PM_LN2_HI - ((hfsq - (s * (hfsq + z * ell) + (dk * _PM_LN2_LO + c))) - f)
''')

_helper("pm_log_f64", ("_pm_log_parts", "_pm_log1p_f"))('''\
def _pm_log_f64(x):
    sub = x < _PM_TINY
    xs = x * _PM_TWO54 if sub else x
    xs = 1.0 if not xs > 0.0 else xs  # zero, negative or nan: chosen below
    xs = 1.0 if xs == np.inf else xs
    k, f = _pm_log_parts(xs)
    k = k - 54 if sub else k
    y = _pm_log1p_f(f, np.float64(k), 0.0)
    y = x if x == np.inf else y
    y = -np.inf if x == 0.0 else y
    y = np.nan if x < 0.0 else y
    return x if x != x else y


pm_log_f64 = _pm_inline(_pm_log_f64)
''')

_helper("pm_log1p_f64", ("_pm_log_parts", "_pm_log1p_f"))('''\
def _pm_log1p_f64(x):
    u = 1.0 + x
    uc = 1.0 if not (u > 0.0 and u < np.inf) else u  # nan, <= -1 and inf: chosen below
    k, f = _pm_log_parts(uc)
    # c = (1 + x) - u, the rounding error of u (exact), and log(1 + x) = log(u) + c / u
    c = (1.0 - (u - x)) if k > 0 else (x - (u - 1.0))
    c = 0.0 if k > 53 else c / uc
    y = _pm_log1p_f(f, np.float64(k), c)
    y = x if x == np.inf else y
    y = -np.inf if x == -1.0 else y
    y = np.nan if x < -1.0 else y
    y = x if x == 0.0 else y
    return x if x != x else y


pm_log1p_f64 = _pm_inline(_pm_log1p_f64)
''')

_helper("_pm_trig_table", ("_pm_runtime",))(f'''\
def _pm_trig_table():
    """Row i holds 2/pi's bits i+1 ... i+212 as four 53-bit chunks, chunk j (bits
    i+53j+1 ... i+53j+53) scaled by 2**i: for |x| >= 2**(i+54), x * 2**-i times row i summed
    is x * 2/pi less a multiple of 4, because the bits above i contribute multiples of 4."""
    bits = int("".join(_PM_2OPI_HEX), 16)
    rows = np.empty((970, 4))
    for i in range(970):
        for j in range(4):
            top = i + 53 * (j + 1)
            rows[i, j] = math.ldexp((bits >> (_PM_2OPI_BITS - top)) & ((1 << 53) - 1),
                                    -53 * (j + 1))
    return rows


_PM_TRIG = _pm_trig_table()


{_DECO}
def _pm_two_sum(a, b):
    """(s, e) with s = a + b rounded and s + e = a + b exactly."""
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


{_DECO}
def _pm_trig_row(a, bias):
    """(i, a * 2**-i): the row of _PM_TRIG that a's biased exponent selects (its bits above
    the row give multiples of 4), and a scaled to it, exactly."""
    e = (_pm_bits(a) >> 52) - bias
    i = 0 if e < 0 else e
    i = 969 if i > 969 else i
    return i, a * _pm_float((1023 - i) << 52)


{_DECO}
def _pm_trig_reduce(a):
    """(n, y0, y1) with a = (4m + n) pi/2 + y0 + y1, |y0 + y1| <= pi/4 (a little more after
    rounding), for finite a >= 0: Payne and Hanek's reduction, with 2/pi's bits from the
    row of _PM_TRIG that a's exponent selects and exact products from FMA, in double-double
    arithmetic ordered so that the integer part cancels before the small terms are added.
    Below pi/4 it is (0, a, 0)."""
    i, x = _pm_trig_row(a, 1077)  # x below 2**55
    p0 = x * _PM_TRIG[i, 0]
    e0 = _pm_fma(x, _PM_TRIG[i, 0], -p0)
    p1 = x * _PM_TRIG[i, 1]
    e1 = _pm_fma(x, _PM_TRIG[i, 1], -p1)
    p2 = x * _PM_TRIG[i, 2]
    e2 = _pm_fma(x, _PM_TRIG[i, 2], -p2)
    p3 = x * _PM_TRIG[i, 3]
    s0 = p0 - 4.0 * np.rint(p0 * 0.25)  # exact, in [-2, 2]
    h, l1 = _pm_two_sum(s0, e0)
    h, l2 = _pm_two_sum(h, p1)
    q = np.rint(h)
    fh = h - q  # exact, in [-1/2, 1/2]; the rest is below 2**-49
    t, u = _pm_two_sum(e1, p2)
    tl = u + (e2 + p3)
    t, u = _pm_two_sum(t, l1)
    tl = tl + u
    t, u = _pm_two_sum(t, l2)
    tl = tl + u
    g, u = _pm_two_sum(fh, t)
    gl = u + tl
    rh = g * _PM_PIO2_HI
    rl = _pm_fma(g, _PM_PIO2_HI, -rh) + (g * _PM_PIO2_LO + gl * _PM_PIO2_HI)
    y0 = rh + rl
    y1 = rl - (y0 - rh)
    small = a < 0.7853981633974483
    n = 0 if small else np.int64(q) & 3
    return n, (a if small else y0), (0.0 if small else y1)


{_DECO}
def _pm_trig_reduce32(a):
    """_pm_trig_reduce for a float32 value a (24 significant bits): two of the row's chunks
    suffice, since x * 2**-i is below 2**26 and float32's hardest arguments are about
    2**-29 from a multiple of pi/2, so the reduced argument (good to about 2**-80) is a
    plain float64. Half the work of the float64 reduction."""
    i, x = _pm_trig_row(a, 1048)  # x below 2**26
    p0 = x * _PM_TRIG[i, 0]
    e0 = _pm_fma(x, _PM_TRIG[i, 0], -p0)
    s0 = p0 - 4.0 * np.rint(p0 * 0.25)  # exact, in [-2, 2]
    q = np.rint(s0)
    f = (s0 - q) + (e0 + x * _PM_TRIG[i, 1])
    small = a < 0.7853981633974483
    n = 0 if small else np.int64(q) & 3
    return n, (a if small else f * _PM_PIO2_HI), 0.0


{_DECO}
def _pm_sin_cos_kernels(y0, y1):
    """(sin, cos) of y0 + y1 for |y0 + y1| <= pi/4 and |y1| <= ulp(y0) / 2."""
    z = y0 * y0
    c = _PM_SIN
    z2 = z * z
    ps = ((c[0] + z * c[1]) + z2 * (c[2] + z * c[3])) + (z2 * z2) * (
        (c[4] + z * c[5]) + z2 * c[6])
    s = y0 + ((z * y0) * ps + y1 * (1.0 - 0.5 * z))
    c = _PM_COS
    pc = ((c[0] + z * c[1]) + z2 * (c[2] + z * c[3])) + (z2 * z2) * (
        (c[4] + z * c[5]) + z2 * c[6])
    hz = 0.5 * z
    w = 1.0 - hz
    co = w + (((1.0 - w) - hz) + (z2 * pc - y0 * y1))
    return s, co
''')

# sin and cos of a float64 (`_pm_trig_reduce`) and of a float32 value held in a float64
# (`_pm_trig_reduce32`), one helper per function: the reduction and both kernels, then the
# quadrant's choice of kernel and sign.
_TRIG = '''\
def _pm_{fn}_{tag}(x):
    a = abs(x)
    fin = a < np.inf
    n, y0, y1 = {reduce}(a if fin else 0.0)
    s, c = _pm_sin_cos_kernels(y0, y1)
{quadrant}
    return v if fin else np.nan


pm_{fn}_{tag} = _pm_inline(_pm_{fn}_{tag})
'''
_QUADRANT = {
    "sin": """    v = c if n & 1 else s
    v = -v if n & 2 else v
    v = -v if x < 0.0 else v
    v = x if x == 0.0 else v""",
    "cos": """    v = s if n & 1 else c
    v = -v if (n + 1) & 2 else v""",
}
for _tag, _reduce in (("f64", "_pm_trig_reduce"), ("f32w", "_pm_trig_reduce32")):
    for _fn, _quadrant in _QUADRANT.items():
        _helper(f"pm_{_fn}_{_tag}", ("_pm_trig_table",))(_TRIG.format(
            fn=_fn, tag=_tag, reduce=_reduce, quadrant=_quadrant))


for _fn in FUNCTIONS:
    # float32 through float64; sin and cos through their float32 reduction ("f32w": a float32
    # value widened)
    _wide = f"pm_{_fn}_f32w" if _fn in ("sin", "cos") else f"pm_{_fn}_f64"
    _helper(f"pm_{_fn}_f32", (_wide,))(f'''\
{_DECO}
def pm_{_fn}_f32(x):
    return np.float32({_wide}(np.float64(x)))
''')


def helper_name(fn: str, bits: int) -> str:
    """The helper that computes `fn` on `bits`-bit floats: `pm_exp_f64`."""
    if fn not in FUNCTIONS or bits not in _SUFFIX:
        raise KeyError(f"no portable {fn!r} for float{bits}; there are {', '.join(FUNCTIONS)}")
    return f"pm_{fn}_{_SUFFIX[bits]}"


def preamble(used: Iterable[tuple[str, int]]) -> str:
    """Source defining the helpers for the `(fn, bits)` pairs in `used` and those they call,
    callees first ('' for none)."""
    order: list[str] = []

    def visit(name: str) -> None:
        if name not in order:
            for dep in _HELPERS[name][1]:
                visit(dep)
            order.append(name)

    for fn, bits in sorted(used):
        visit(helper_name(fn, bits))
    if not order:
        return ""
    head = ["# Portable vector math (compiler/portable_math.py): pure-arithmetic helpers that",
            "# LLVM inlines and vectorizes where no vector library is available.", ""]
    return "\n".join(head + [_HELPERS[n][0] for n in order]) + "\n"
