"""`jit`: trace once per signature, optimize, plan loops, generate Numba code, cache it.

`jit(f)(*args)` looks the argument signature up in an in-memory table; a hit is one call of
the compiled kernel. A miss traces `f`, optimizes the IR, plans loop kernels, generates a
module, and loads it through the on-disk cache (`compiler.build`). Called on traced values
(inside `grad`, another `jit`, ...), a jitted function is transparent: it records its IR
into the enclosing trace.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import time
from collections.abc import Callable, Sequence

import numpy as np

from . import api
from .core import Tracer, eval_ir
from .ir import IR
from .optimize import optimize
from .tree_util import tree_flatten, tree_unflatten

_disabled = [os.environ.get("TRACEJIT_DISABLE_JIT", "") not in ("", "0")]

# `TRACEJIT_LOG=1`: one INFO line per program whose compilation took longer than
# `SLOW_COMPILE_SECONDS` (logger "tracejit"; silent otherwise).
log = logging.getLogger("tracejit")
SLOW_COMPILE_SECONDS = 3.0
if os.environ.get("TRACEJIT_LOG", "") not in ("", "0") and not log.handlers:
    log.addHandler(logging.StreamHandler())
    log.setLevel(logging.INFO)


@contextlib.contextmanager
def disable_jit():
    """Run jitted functions with the NumPy interpreter inside this block."""
    _disabled.append(True)
    try:
        yield
    finally:
        _disabled.pop()


def _jit_disabled() -> bool:
    return _disabled[-1]


def _for_compiler(ir: IR) -> IR:
    """The optimized IR the compiler plans: custom-rule calls become their bodies here and
    not in `optimize`, which also runs on IRs that transforms still differentiate."""
    from .custom_derivatives import inline_custom
    return optimize(inline_custom(ir))


def _refuse_float16(ir: IR) -> None:
    """Numba has no float16 type: name the value instead of failing inside Numba."""
    def bad(v):
        return np.dtype(v.aval.dtype) == np.float16
    for v in ir.invars + ir.constvars:
        if bad(v):
            raise TypeError("tracejit.jit cannot compile float16 values (Numba has no "
                            "float16): an input or closed-over array is float16; cast it "
                            "to float32")
    for e in ir.eqns:
        if any(bad(v) for v in e.outs):
            where = f" at {e.source}" if e.source else ""
            raise TypeError(f"tracejit.jit cannot compile float16 values (Numba has no "
                            f"float16): `{e.prim}`{where} gives float16 (NumPy's type for "
                            f"small integer operands too); cast its operands to float32")
        for val in e.params.values():
            subs = val if isinstance(val, (tuple, list)) else (val,)
            for sub in subs:
                if isinstance(sub, IR):
                    _refuse_float16(sub)


class Lowered:
    """Every stage of one compiled program, printable: `.ir`, `.plan`, `.source`,
    `.llvm()`, `.asm()`."""

    def __init__(self, ir: IR, out_tree, fastmath, name: str, parallel=False):
        from .compiler.codegen import generate
        from .compiler.matvec import matvec_as_loops
        from .compiler.plan import make_plan
        _refuse_float16(ir)
        if parallel:  # threaded loops beat single-thread gemv, and fuse (compiler/matvec.py)
            ir = matvec_as_loops(ir)
        self.ir = ir
        self.out_tree = out_tree
        self.plan = make_plan(ir)
        self.generated = generate(self.plan, fastmath, parallel)
        self.const_names = [name for name, _ in self.generated.consts]
        self.consts = [value for _, value in self.generated.consts]
        self.name = name
        self._module = None

    @property
    def source(self) -> str:
        """The generated code: the program's module (for a program split into several
        compiled functions, its driver followed by their modules)."""
        return self.generated.full_source

    @property
    def module(self):
        if self._module is None:
            from .compiler.build import build
            for _, text in self.generated.segments:  # the driver imports these
                build(text)
            self._module = build(self.generated.source)
            _dump(self)
        return self._module

    @property
    def path(self) -> str:
        return self.module.__file__

    def compile(self) -> Compiled:
        return Compiled(self)

    def _functions(self) -> list:
        """The Numba dispatchers of the program (one per distinct compiled function)."""
        if not self.generated.segments:
            return [self.module.kernel]
        from .compiler.build import load_module, module_path
        return [load_module(module_path(text)).kernel for _, text in self.generated.segments]

    def llvm(self) -> str:
        """The LLVM IR Numba produced (compiles first if needed)."""
        self.compile()._ensure_compiled()
        return "\n".join(text for fn in self._functions()
                         for text in _inspectable(fn).inspect_llvm().values())

    def asm(self) -> str:
        """The machine code Numba produced (compiles first if needed)."""
        self.compile()._ensure_compiled()
        return "\n".join(text for fn in self._functions()
                         for text in _inspectable(fn).inspect_asm().values())

    def save(self, directory: str, name: str | None = None) -> str:
        """Write the program's modules (and its constants, `.npz`) to `directory`, where they
        run without tracejit; returns the path of the module whose `run` to call (`name`.py,
        by default the cached module's name)."""
        os.makedirs(directory, exist_ok=True)
        stem = os.path.join(directory, name or os.path.basename(self.module.__file__)[:-3])
        for name, text in self.generated.segments:
            with open(os.path.join(directory, name + ".py"), "w", encoding="utf-8") as f:
                f.write(text)
        with open(stem + ".py", "w", encoding="utf-8") as f:
            f.write(self.generated.source)
        if self.consts:  # the module's `run` loads its constants from here
            np.savez(stem + ".npz", **dict(zip(self.const_names, self.consts)))
        return stem + ".py"


def _inspectable(fn):
    """`fn`, or, if its machine code came from Numba's disk cache (which keeps no LLVM IR or
    assembly), the same function compiled again for its signatures, without the cache."""
    if not sum(fn.stats.cache_hits.values()):
        return fn
    import numba
    options = {k: v for k, v in fn.targetoptions.items() if k not in ("cache", "nopython")}
    fresh = numba.njit(**options)(fn.py_func)
    for sig in fn.signatures:
        fresh.compile(sig)
    return fresh


def _dump(low: Lowered) -> None:
    directory = os.environ.get("TRACEJIT_DUMP_DIR")
    if not directory:
        return
    name = f"{low.name}_{os.path.basename(low.module.__file__)[3:11]}"
    stem = low.save(directory, name)[:-3]
    for suffix, text in ((".ir.txt", str(low.ir)), (".plan.txt", str(low.plan)),
                         (".plan.svg", low.plan.to_svg())):
        with open(stem + suffix, "w", encoding="utf-8") as f:
            f.write(text)


class Compiled:
    """A compiled program: flat inputs in, flat outputs out."""

    def __init__(self, low: Lowered):
        self.low = low
        if "numba.prange(" in low.source:
            from .compiler.threads import configure
            configure()
        self.kernel = low.module.kernel
        if "'numba_xxgemm'" in low.source or '"tracejit_dtrsm"' in low.source:  # BLAS used
            from .compiler.blas import configure_once
            configure_once()
        self.consts = tuple(_kernel_array(c) for c in low.consts)
        self.in_avals = low.ir.in_avals
        self.n_out = len(low.ir.outs)
        self.out_avals = low.ir.out_avals
        # (length, dtype) of the big arrays the kernel takes from the buffer pool
        self.pooled = tuple(low.generated.pooled)
        self._checked = False

    def _run(self, args):
        """The kernel's call, with buffers from the pool for its big results."""
        if not self.pooled:
            return self.kernel(*args, *self.consts)
        from .compiler.buffers import POOL
        buffers = POOL.take(self.pooled)
        try:
            return self.kernel(*args, *self.consts, *buffers)
        except BaseException:
            POOL.forget(buffers)
            raise

    def _convert_inputs(self, leaves):
        out = []
        for x, aval in zip(leaves, self.in_avals):
            if aval.shape == ():
                out.append(aval.dtype.type(x))
            else:
                a = np.asarray(x)
                if a.dtype != aval.dtype:
                    a = a.astype(aval.dtype)
                out.append(np.ascontiguousarray(a))
        return out

    def _ensure_compiled(self, args=None):
        if self._checked:
            return
        if args is None:
            args = [np.zeros(a.shape, a.dtype) if a.shape else a.dtype.type(0)
                    for a in self.in_avals]
        self._call_checked(args)

    def _call_checked(self, args):
        try:
            result = self._run(args)
        except Exception as e:
            from numba.core.errors import NumbaError
            if isinstance(e, NumbaError):
                from .compiler.build import CompileError
                raise CompileError(
                    "Numba could not compile the code tracejit generated (a tracejit bug). "
                    f"Generated module: {self.low.module.__file__}\n{type(e).__name__}: {e}"
                ) from None
            raise
        self._checked = True
        return result

    def fast_caller(self, out_tree):
        """A minimal-overhead call for flat arguments that are already what the kernel
        takes (contiguous arrays of the right dtypes, Python numbers): the dispatch fast
        path. Outputs are rebuilt into `out_tree`; 0-d outputs become NumPy scalars."""
        kernel, consts = self.kernel, self.consts
        if self.pooled:
            run = self._run  # with the pool's buffers for the big results
        elif consts:
            def run(args):
                return kernel(*args, *consts)
        else:
            def run(args):
                return kernel(*args)
        if self.n_out == 1 and self.out_avals[0].shape and out_tree.node_type is None:
            return run
        scalars = [(i, a.dtype.type) for i, a in enumerate(self.out_avals) if not a.shape]
        single = self.n_out == 1

        def call(args):
            result = run(args)
            outs = [result] if single else list(result)
            for i, to_scalar in scalars:
                outs[i] = to_scalar(outs[i])
            return tree_unflatten(out_tree, outs)
        return call

    def __call__(self, leaves: Sequence) -> list:
        args = self._convert_inputs(leaves)
        result = self._run(args) if self._checked else self._call_checked(args)
        outs = [result] if self.n_out == 1 else list(result)
        return [o if isinstance(o, np.ndarray) else a.dtype.type(o)
                for o, a in zip(outs, self.out_avals)]


class Jitted:
    """The callable `jit` returns."""

    def __init__(self, fun: Callable, static_argnums=(), static_argnames=(),
                 parallel=None, fastmath=False):
        functools.update_wrapper(self, fun)
        self.fun = fun
        self.static_argnums = tuple(static_argnums) if isinstance(
            static_argnums, (tuple, list)) else (static_argnums,)
        self.static_argnames = tuple(static_argnames) if isinstance(
            static_argnames, (tuple, list)) else (static_argnames,)
        self.parallel = parallel
        self.fastmath = fastmath
        self._compiled: dict = {}
        # Fast path: positional C-contiguous arrays only -> a caller of the kernel.
        self._fast: dict | None = {} if not (self.static_argnums or self.static_argnames) \
            else None

    def _parallel(self) -> bool:
        """`parallel=None`: threads where the threading layer is safe (compiler/threads.py)."""
        if self.parallel is None:
            from .compiler.threads import auto_parallel
            return auto_parallel()
        return bool(self.parallel)

    def _split(self, args, kwargs):
        statics = [i % len(args) for i in self.static_argnums if len(args)]
        static_kw = {k: kwargs[k] for k in self.static_argnames if k in kwargs}
        dyn_kwargs = {k: v for k, v in kwargs.items() if k not in static_kw}
        return statics, static_kw, dyn_kwargs

    def _trace(self, args, kwargs):
        statics, static_kw, dyn_kwargs = self._split(args, kwargs)
        return api.trace(self.fun, args, dyn_kwargs, statics, static_kwargs=static_kw)

    def lower(self, *args, **kwargs) -> Lowered:
        """All stages of the program compiled for these arguments (without running it)."""
        traced, _ = self._trace(args, kwargs)
        if traced.captured:
            raise TypeError("lower() needs concrete arguments, not traced values")
        return Lowered(_for_compiler(traced.ir), traced.out_tree, self.fastmath,
                       _name(self.fun), self._parallel())

    def __call__(self, *args, **kwargs):
        fast = self._fast
        if fast is not None and not kwargs and not _disabled[-1]:
            sig = _fast_signature(args)  # positional arrays: no flattening at all
            if sig is not None:
                hit = fast.get(sig)
                if hit is not None:
                    return hit(args)
            else:  # pytrees of arrays and numbers
                flat, tree = tree_flatten(args)
                sig = _fast_signature(flat, numbers=True)
                hit = fast.get((tree, sig)) if sig is not None else None
                if hit is not None:
                    return hit(flat)
        leaves, _ = tree_flatten((args, kwargs))
        if _jit_disabled() or any(isinstance(x, Tracer) for x in leaves):
            traced, dyn_leaves = self._trace(args, kwargs)
            outs = eval_ir(optimize(traced.ir) if not traced.captured else traced.ir,
                           list(dyn_leaves) + list(traced.captured))
            return tree_unflatten(traced.out_tree, [api._as_output(o) for o in outs])
        key = self._key(args, kwargs)
        entry = self._compiled.get(key)
        if entry is None:
            start = time.perf_counter()
            traced, dyn_leaves = self._trace(args, kwargs)
            low = Lowered(_for_compiler(traced.ir), traced.out_tree, self.fastmath,
                          _name(self.fun), self._parallel())
            entry = (low.compile(), traced.out_tree)
            self._compiled[key] = entry
        else:
            start = None
            statics, static_kw, dyn_kwargs = self._split(args, kwargs)
            dyn_args = [a for i, a in enumerate(args) if i not in statics]
            dyn_leaves, _ = tree_flatten((dyn_args, dyn_kwargs))
        compiled, out_tree = entry
        result = tree_unflatten(out_tree, compiled(dyn_leaves))
        if start is not None:  # the first call compiled (Numba compiles on first call)
            _log_slow_compile(compiled.low, time.perf_counter() - start)
        if fast is not None and not kwargs:
            sig = _fast_signature(args)
            if sig is not None:
                fast[sig] = compiled.fast_caller(out_tree)
            else:
                flat, tree = tree_flatten(args)
                sig = _fast_signature(flat, numbers=True)
                if sig is not None and _numbers_match(flat, compiled.in_avals):
                    fast[(tree, sig)] = compiled.fast_caller(out_tree)
        return result

    def _key(self, args, kwargs):
        statics, static_kw, dyn_kwargs = self._split(args, kwargs)
        dyn = [a for i, a in enumerate(args) if i not in statics]
        leaves, tree = tree_flatten((dyn, dyn_kwargs))
        sig = tuple(_leaf_signature(x) for x in leaves)
        static_vals = tuple(args[i] for i in statics) + tuple(sorted(static_kw.items()))
        key = (tree, sig, static_vals)
        try:
            hash(key)
        except TypeError:
            raise TypeError(f"static arguments of {_name(self.fun)} must be hashable, got "
                            f"{static_vals!r}") from None
        return key


def _log_slow_compile(low: Lowered, seconds: float) -> None:
    if seconds > SLOW_COMPILE_SECONDS:
        log.info("tracejit: compiling %s (%d equations, %d kernels, %d compiled functions) "
                 "took %.1f s", low.name, len(low.ir.eqns), len(low.plan.kernels),
                 len(low.plan.segments), seconds)


def _kernel_array(value) -> np.ndarray:
    """A constant as the kernel takes it: C-contiguous and writeable (Numba types read-only
    arrays differently, which would mean one more compile); copied only when needed."""
    arr = np.ascontiguousarray(value)
    return arr if arr.flags.writeable else arr.copy()


def _fast_signature(args, numbers: bool = False):
    """(shape, dtype) per argument when every argument is a C-contiguous array of ndim >= 1
    (or, with `numbers`, a Python float, int or bool), which the kernel takes as it is;
    else None."""
    sig = []
    for a in args:
        t = type(a)
        if t is np.ndarray:
            if not a.ndim or not a.flags.c_contiguous:
                return None
            sig.append((a.shape, a.dtype))
        elif numbers and t in (float, int, bool):
            sig.append(t)
        else:
            return None
    return tuple(sig)


def _numbers_match(flat, in_avals) -> bool:
    """Python numbers reach the kernel unconverted only where Numba types them as the
    program expects (float64, int64, bool)."""
    expected = {float: np.float64, int: np.int64, bool: np.bool_, complex: np.complex128}
    return all(type(x) not in expected or aval.dtype == expected[type(x)]
               for x, aval in zip(flat, in_avals))


def _leaf_signature(x):
    if isinstance(x, np.ndarray) and x.dtype != object and x.dtype.kind not in "USV":
        return (x.shape, x.dtype.str)
    if isinstance(x, (bool, int, float, complex)) and not isinstance(x, np.generic):
        return type(x)
    a = np.asarray(x)
    if a.dtype == object or a.dtype.kind in "USV":
        raise TypeError(f"jit does not support arguments of type {type(x).__name__} "
                        f"(dtype {a.dtype}): pass float, integer or bool arrays, or mark the "
                        "argument static")
    return (a.shape, a.dtype.str)


def _name(fun) -> str:
    name = getattr(fun, "__name__", "f")
    return name if name.isidentifier() else "f"


def jit(fun: Callable | None = None, *, static_argnums: int | Sequence[int] = (),
        static_argnames: str | Sequence[str] = (), parallel=None, fastmath=False):
    """Compile `fun` to Numba loops, once per signature of its arguments.

    Works on any function of arrays, including `grad(f)`, `value_and_grad(f)`, `jvp`/`vjp`
    wrappers and `hessian(f)`. `static_argnums`/`static_argnames` are hashed into the cache
    key. `parallel`: None (default) runs the outer loop of big kernels on all cores when the
    threading layer is fork- and thread-safe (TBB), False keeps one thread, True asks for
    threads on any layer. `fastmath` is passed to Numba (e.g. `{'reassoc', 'contract'}`).
    """
    if fun is None:
        return functools.partial(jit, static_argnums=static_argnums,
                                 static_argnames=static_argnames, parallel=parallel,
                                 fastmath=fastmath)
    return Jitted(fun, static_argnums, static_argnames, parallel, fastmath)
