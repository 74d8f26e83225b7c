"""Compiled gradients over Dask arrays: each row block runs on its worker, partials add up.

A loss written for one block of rows (`loss(w, X, y)` with NumPy arrays) is applied to every
row block of Dask arrays chunked along axis 0, and the values and gradients are combined by a
tree reduction:

    vg = tracejit.dask.value_and_grad(loss, reduce="sum")
    v, g = vg(w, X, y)        # NumPy results; the blocks never leave the workers

What one call sends: the graph holds the parameters once (one
key every block task depends on, so each worker fetches them once), the user's function once
(pickled by Dask; a worker keeps the compiled program by the function's token, so a worker
compiles a program once per process and reuses tracejit's disk cache after a restart), and
one small task per block and per reduction step. Block data is never serialized by tracejit:
blocks are computed or read where they live.

Inside a block the program runs on pieces of about 1 MiB of row data (`piece_bytes`), a
power of two rows each and a shorter last piece, so a program that reads `X` twice (a
matrix-vector product forward, its transpose backward) reads it from memory once and from
the core's cache the second time. Distinct piece shapes compile one program each: with
Dask's regular chunks (`chunks=(250_000, -1)`) that is the piece, the remainder of a block,
and the remainder of the last block, at most three. Padding to one shape with a mask was
not chosen: a mask changes the meaning of the user's loss (a mean, a max, a normalization
over the block) and would need a masked form of every loss.

`reduce="sum"` adds the blocks' values and gradients (a loss that is a sum over rows);
`reduce="mean"` weights each block by its rows (a loss that is a mean over rows), so the
result is the mean over all rows. The loss must be a sum or mean of per-row terms for the
combined value to be the loss of the whole data set; a loss with a term that does not depend
on the rows (a regularizer) should add it outside, once.

Dask is imported only when these functions are called: `import tracejit` never imports it.
"""

from __future__ import annotations

import hashlib
import sys
import threading
from collections.abc import Callable, Sequence

import numpy as np

from . import api
from .jit import jit
from .tree_util import tree_flatten, tree_leaves, tree_map, tree_unflatten

_REDUCE = ("sum", "mean")


def _dask():
    try:
        import dask
        import dask.array as da
    except ImportError as e:  # pragma: no cover - exercised when Dask is absent
        raise ImportError("tracejit.dask needs Dask: pip install 'tracejit[dask]' "
                          "(dask[array] and distributed)") from e
    return dask, da


def _is_dask_array(x) -> bool:
    mod = type(x).__module__
    return mod.startswith("dask.array") and hasattr(x, "chunks")


# -- the worker side ----------------------------------------------------------------------------

_programs: dict = {}  # (token, kind, argnums, has_aux) -> jitted program, per process
_programs_lock = threading.Lock()


def _program(token: str, fun: Callable, kind: str, argnums, has_aux: bool):
    """The compiled program of `fun` for this process: built once, then reused by every task
    (a worker runs many blocks; each `jit` compiles once per block shape and hits the disk
    cache in a new process)."""
    key = (token, kind, argnums, has_aux)
    with _programs_lock:
        prog = _programs.get(key)
        if prog is None:
            if kind == "value_and_grad":
                prog = jit(api.value_and_grad(fun, argnums=argnums, has_aux=has_aux))
            elif kind == "jvp":  # argnums holds the layout of parameters and blocks
                layout = argnums

                def prog_fn(params, tangents, blocks):
                    def of_params(*p):
                        return fun(*_assemble(layout, p, blocks))
                    return api.jvp(of_params, params, tangents)
                prog = jit(prog_fn)
            else:  # pragma: no cover - the callers pass one of the above
                raise ValueError(kind)
            _programs[key] = prog
    return prog


PIECE_BYTES = 1 << 20  # row data per call of the compiled program inside a block


def _pieces(blocks, piece_bytes: int) -> list[tuple]:
    """A block's rows cut into pieces whose row data fits in a core's L2 cache (a power of
    two rows, the last piece shorter): a program that reads `X` twice (a BLAS matrix-vector
    product forward, its transpose backward) then reads it once from memory. Measured on a
    (250000, 20) block: 8.2 ms in one call, 3.8 ms in pieces of 4096 rows."""
    n = _rows(blocks)
    row_bytes = sum(b.nbytes // max(b.shape[0], 1) for b in blocks)
    if piece_bytes <= 0 or n * row_bytes <= piece_bytes:
        return [tuple(blocks)]
    step = 1 << max(0, (piece_bytes // max(row_bytes, 1)).bit_length() - 1)
    return [tuple(b[s:s + step] for b in blocks) for s in range(0, n, step)]


def _over_pieces(run, scale, row_blocks, piece_bytes: int, rows_total: int, reduce: str):
    """`run(piece)` on each piece of each row block, added up; for `reduce="mean"` each result
    is weighted as `scale(out, share)` would, share being the piece's part of all rows. The
    sums are kept as flat leaves: a block has dozens of pieces, and a pytree walk per piece
    cost as much as the compiled program on a 4096-row piece."""
    acc = weights = tree = None
    for blocks in row_blocks:
        for piece in _pieces(blocks, piece_bytes):
            leaves, tree = tree_flatten(run(piece))
            if acc is None:
                # which leaves `scale` multiplies: those it turns from one into zero
                probe = tree_leaves(scale(tree_unflatten(tree, [1.0] * len(leaves)), 0.0))
                weights = [reduce == "mean" and p == 0.0 for p in probe]
                acc = [np.zeros(np.shape(x), np.result_type(x)) for x in leaves]
            share = _rows(piece) / rows_total
            for i, x in enumerate(leaves):
                acc[i] = acc[i] + (x * share if weights[i] else x)
    return tree_unflatten(tree, [np.asarray(x) for x in acc])


def _row_blocks(narrays: int, refs) -> list[tuple]:
    """A task's block arguments, `narrays` per row block in order, as one tuple per row block."""
    return [tuple(refs[j:j + narrays]) for j in range(0, len(refs), narrays)]


def _scaled(tree, share):
    return tree_map(lambda t: t * share, tree)


def _block_value_and_grad(spec, params, rows_total, narrays, *blocks):
    """The (value, grad) of one task's row blocks, the sum over their pieces (aux outputs
    are not scaled)."""
    token, fun, argnums, has_aux, reduce, layout, piece_bytes = spec
    prog = _program(token, fun, "value_and_grad", argnums, has_aux)

    def scale(out, share):
        value, g = out
        value = (value[0] * share, value[1]) if has_aux else value * share
        return value, _scaled(g, share)
    return _over_pieces(lambda piece: prog(*_assemble(layout, params, piece)), scale,
                        _row_blocks(narrays, blocks), piece_bytes, rows_total, reduce)


def _block_jvp(spec, params_and_tangents, rows_total, narrays, *blocks):
    """The (value, tangent) of one task's row blocks; the block data is held fixed."""
    token, fun, reduce, layout, piece_bytes = spec
    params, tangents = params_and_tangents
    prog = _program(token, fun, "jvp", layout, False)
    return _over_pieces(lambda piece: prog(tuple(params), tuple(tangents), tuple(piece)),
                        _scaled, _row_blocks(narrays, blocks), piece_bytes, rows_total, reduce)


def _rows(blocks) -> int:
    return int(blocks[0].shape[0])


def _assemble(layout, params, blocks) -> list:
    """The user's argument list: `layout[i]` is ("p", k) for the k-th parameter or
    ("b", k) for the k-th blocked array."""
    return [params[k] if kind == "p" else blocks[k] for kind, k in layout]


def _add(*parts):
    """Sum of partial results (pytrees of equal structure); aux outputs are kept per block
    as a list."""
    first = parts[0]
    return tree_map(lambda *xs: _sum_arrays(xs), first, *parts[1:])


def _sum_arrays(xs):
    total = np.array(xs[0], copy=True)
    for x in xs[1:]:
        total = total + x
    return total


# -- the client side ----------------------------------------------------------------------------

def _token(fun: Callable) -> str:
    """A name for `fun` that is equal in every process: the module, the qualified name and the
    code object's bytes and constants (so two different lambdas in one file differ)."""
    code = getattr(fun, "__code__", None)
    parts = [getattr(fun, "__module__", ""), getattr(fun, "__qualname__", repr(fun))]
    if code is not None:
        parts += [code.co_code.hex(), repr(code.co_consts), repr(code.co_names)]
    return hashlib.sha256("\0".join(map(str, parts)).encode()).hexdigest()[:24]


def _split_args(args: Sequence, fname: str):
    """(layout, params, dask arrays) of a call; the Dask arrays are aligned on one row
    chunking and hold each block's other axes whole."""
    _, da = _dask()
    layout, params, arrays = [], [], []
    for a in args:
        if _is_dask_array(a):
            layout.append(("b", len(arrays)))
            arrays.append(a)
        else:
            layout.append(("p", len(params)))
            params.append(a)
    if not arrays:
        raise TypeError(f"{fname}: no argument is a Dask array; use tracejit.{fname} for "
                        "NumPy arguments")
    for a in arrays:
        if a.ndim == 0:
            raise ValueError(f"{fname}: a 0-d Dask array has no rows to split; pass it as a "
                             "NumPy value")
    n = arrays[0].shape[0]
    for a in arrays[1:]:
        if a.shape[0] != n:
            raise ValueError(f"{fname}: the Dask arguments must have the same number of rows "
                             f"(axis 0), got shapes {[x.shape for x in arrays]}")
    if any(np.isnan(a.shape[0]) for a in arrays):
        raise ValueError(f"{fname}: Dask arrays with unknown row counts (nan chunks): call "
                         "compute_chunk_sizes() first")
    rows = arrays[0].chunks[0]
    aligned = []
    for a in arrays:
        want = (rows,) + tuple((s,) for s in a.shape[1:])
        aligned.append(a if a.chunks == want else a.rechunk(want))
    return layout, params, aligned, int(n)


INLINE_BYTES = 1 << 16  # pickled parameters up to this size ride inside each worker's task


def _client():
    """The distributed client `dask.compute` will use, or None (a local scheduler)."""
    if "distributed" not in sys.modules:
        return None
    import dask
    if dask.config.get("scheduler", None) not in (None, "dask.distributed", "distributed"):
        return None
    from distributed import default_client
    try:
        return default_client()
    except ValueError:
        return None


def _block_bytes(a, i: int) -> int:
    return int(a.chunks[0][i] * int(np.prod(a.shape[1:])) * a.dtype.itemsize)


def _placement(client, arrays) -> tuple[list[list[int]], bool]:
    """The row blocks grouped into tasks, and whether every block is held in memory by a
    worker. A block held by a worker goes to that worker (the one holding most of its bytes
    over all the arrays), and a worker's blocks are dealt into one task per thread: a task
    costs the scheduler about a millisecond, so on 2 workers 8 blocks in 2 tasks took 39
    against 57 ms a call. A block not in memory anywhere (an array still to be computed or
    read) is a task of its own, so the scheduler can run it beside the task that makes it."""
    nblocks = arrays[0].numblocks[0]
    if client is None:
        return [[i] for i in range(nblocks)], False
    import time
    key = (client.id, tuple(a.name for a in arrays))
    hit = _PLACED.get(key)
    if hit is not None and time.monotonic() - hit[0] < PLACEMENT_SECONDS:
        return hit[1], True
    groups, placed = _lookup_placement(client, arrays, nblocks)
    if placed:
        if len(_PLACED) >= 64:
            _PLACED.pop(next(iter(_PLACED)))
        _PLACED[key] = (time.monotonic(), groups)
    return groups, placed


# Where blocks are changes only when workers come, go or rebalance, and a stale answer only
# costs speed (the scheduler still runs each task where its data is, moving what it must).
# Asking costs more than its own round trip: one synchronous scheduler call before
# submitting made a call 54-57 ms against 46-49 ms (2 workers, 8 blocks). So the answer is
# kept for a few seconds per client and set of arrays.
PLACEMENT_SECONDS = 5.0
_PLACED: dict = {}


def _lookup_placement(client, arrays, nblocks: int):
    from distributed import futures_of
    futures = futures_of(arrays)
    who = client.who_has(futures) if futures else {}
    holders, alone = [], []
    for i in range(nblocks):
        score = {}
        for a in arrays:
            for w in who.get((a.name, i) + (0,) * (a.ndim - 1), ()):
                score[w] = score.get(w, 0) + _block_bytes(a, i)
        if score:
            best = max(score.values())
            holders.append((i, sorted(w for w, s in score.items() if s == best)))
        else:
            alone.append([i])
    # a block held by several workers (a replica) goes to the least loaded of them; blocks
    # held by one worker are placed first, so the replicas even out the load
    load, by_worker = {}, {}
    for i, ws in sorted(holders, key=lambda h: len(h[1])):
        w = min(ws, key=lambda w: load.get(w, 0))
        load[w] = load.get(w, 0) + sum(_block_bytes(a, i) for a in arrays)
        by_worker.setdefault(w, []).append(i)
    threads = client.nthreads() if by_worker else {}
    groups = []
    for w in sorted(by_worker):
        blocks = sorted(by_worker[w])
        t = max(1, min(threads.get(w, 1), len(blocks)))
        groups += [blocks[k::t] for k in range(t)]
    return groups + alone, not alone


class _Inline:
    """A value carried inside tasks as pickled bytes: Dask does not look into bytes (a tuple
    or list of parameters would otherwise be scanned for tasks and keys)."""

    def __init__(self, value):
        import cloudpickle
        self.payload = cloudpickle.dumps(value)

    def __dask_tokenize__(self):
        return hashlib.sha256(self.payload).hexdigest()


def _unpickled(payload):
    import pickle
    return pickle.loads(payload)


class _SharedSpec:
    """The function and its settings, made a result on the cluster once per client and kept
    there, so a call sends only a reference to it (each worker fetches it once, on its first
    task). It is computed, not scattered: the scheduler keeps how to make it, so if every
    worker holding it dies it is made again and the call is retried; scattered data would
    be lost with them and the call cancelled. Without a distributed client it is one graph
    key of each call."""

    def __init__(self):
        self._on = {}  # spec -> (client id, future)

    def ref(self, dask, client, spec):
        if client is None:
            return dask.delayed(spec, pure=True, traverse=False)
        from dask.delayed import Delayed
        future = self.future(dask, client, spec)
        return Delayed(future.key, {future.key: future})

    def future(self, dask, client, spec):
        held = self._on.get(spec)
        if held is None or held[0] != client.id or held[1].status in ("cancelled", "lost"):
            made = dask.delayed(spec, pure=True, traverse=False)
            held = self._on[spec] = (client.id, client.compute(made))
        return held[1]


_JVP_SPECS = _SharedSpec()  # tracejit.dask.jvp is called per use, not built once


def _params_ref(dask, params, inline: bool):
    """The parameters of one call: inside each task when every worker gets one task per
    thread and they are small (so a worker receives them once, with its task); else one
    graph key every task reads (a worker fetches it once). The key costs a round trip
    through the scheduler before any block starts: 7 to 11 ms a call on two workers."""
    if inline:
        boxed = _Inline(params)
        if len(boxed.payload) <= INLINE_BYTES:
            return boxed
    return dask.delayed(params, pure=True, traverse=False)


def _reduced_graph(block_fn, consts, rows_total: int, arrays, groups, split_every: int,
                   prefix: str, top: int = 1) -> list:
    """Delayed objects (at most `top`) whose sum is the sum of `block_fn(*consts,
    rows_total, narrays, *blocks)` over the groups of row blocks, partial sums added on the
    cluster `split_every` at a time. A const is a Delayed (the task names its key) or an
    `_Inline` value. The graph is written out as a dict of plain tasks: building it costs a
    few microseconds per block, where one `dask.delayed` call per block cost about 0.5 ms on
    the client (tokenizing every argument)."""
    from dask.base import tokenize
    from dask.delayed import Delayed
    from dask.highlevelgraph import HighLevelGraph
    keyed = [c for c in consts if not isinstance(c, _Inline)]
    refs_of = [c.key if not isinstance(c, _Inline) else (_unpickled, c.payload)
               for c in consts]
    const_tokens = [c if isinstance(c, _Inline) else c.key for c in consts]
    name = f"{prefix}-{tokenize(const_tokens, rows_total, [a.name for a in arrays], groups)}"
    layer, keys = {}, []
    for j, group in enumerate(groups):
        refs = [(a.name, i) + (0,) * (a.ndim - 1) for i in group for a in arrays]
        keys.append((name, 0, j))
        layer[keys[-1]] = (block_fn, *refs_of, rows_total, len(arrays), *refs)
    level = 0
    while len(keys) > top:
        level += 1
        parts = [keys[j:j + split_every] for j in range(0, len(keys), split_every)]
        keys = [part[0] if len(part) == 1 else (name, level, j)
                for j, part in enumerate(parts)]
        for key, part in zip(keys, parts):
            if len(part) > 1:
                layer[key] = (_add, *part)
    graph = HighLevelGraph.from_collections(name, layer, dependencies=[*arrays, *keyed])
    return [Delayed(key, graph, layer=name) for key in keys]


def _sum_on_client(dask, parts: list):
    """The sum of the last partial sums, added where they arrive: one task fewer on the
    critical path than a final reduction task (a scheduler round trip, 3 to 5 ms here)."""
    return _add(*dask.compute(*parts))


def _run_blocks(dask, client, shared, spec, block_fn, params, rows_total: int, arrays,
                split_every: int, prefix: str, compute: bool = True):
    """The sum of `block_fn` over all row blocks: submitted as futures when every block is
    in memory on a worker and the parameters are small, else as a graph (`_reduced_graph`).
    Submitting skips the collection machinery of `dask.compute` (building and optimizing
    a graph of collections): 44 to 47 against 50 to 55 ms a call on 2 workers."""
    groups, placed = _placement(client, arrays)
    boxed = _params_ref(dask, params, placed)
    if compute and placed and isinstance(boxed, _Inline):
        return _submitted(client, block_fn, shared.future(dask, client, spec), boxed.payload,
                          rows_total, arrays, groups, split_every)
    parts = _reduced_graph(block_fn, (shared.ref(dask, client, spec), boxed), rows_total,
                           arrays, groups, split_every, prefix,
                           top=split_every if compute else 1)
    return _sum_on_client(dask, parts) if compute else parts[0]


def _with_payload(block_fn, spec, payload, rows_total, narrays, *blocks):
    return block_fn(spec, _unpickled(payload), rows_total, narrays, *blocks)


def _submitted(client, block_fn, spec_future, payload: bytes, rows_total: int, arrays, groups,
               split_every: int):
    """`_reduced_graph`'s sum, as futures: one per group of blocks (the blocks' own futures
    as its arguments), partial sums `split_every` at a time, the last added here."""
    from distributed import futures_of
    held = {f.key: f for f in futures_of(arrays)}
    futures = []
    for group in groups:
        refs = [held[(a.name, i) + (0,) * (a.ndim - 1)] for i in group for a in arrays]
        futures.append(client.submit(_with_payload, block_fn, spec_future, payload,
                                     rows_total, len(arrays), *refs, pure=False))
    while len(futures) > split_every:
        futures = [part[0] if len(part) == 1 else client.submit(_add, *part, pure=False)
                   for part in (futures[j:j + split_every]
                                for j in range(0, len(futures), split_every))]
    return _add(*client.gather(futures))


def _check_reduce(reduce: str, fname: str):
    if reduce not in _REDUCE:
        raise ValueError(f"{fname}: reduce must be one of {_REDUCE}, got {reduce!r}")


def _check_argnums(argnums, layout, fname):
    nums = (argnums,) if isinstance(argnums, int) else tuple(argnums)
    for k in nums:
        if not -len(layout) <= k < len(layout):
            raise ValueError(f"{fname}: argnums {k} is out of range for {len(layout)} "
                             "arguments")
        if layout[k][0] == "b":
            raise TypeError(f"{fname}: argument {k} is a Dask array; differentiate with "
                            "respect to parameters (NumPy values) only: a gradient with "
                            "respect to the data would be as big as the data")
    return argnums


def value_and_grad(fun: Callable, argnums: int | Sequence[int] = 0, *, reduce: str = "sum",
                   has_aux: bool = False, split_every: int = 8, compute: bool = True,
                   piece_bytes: int = PIECE_BYTES):
    """`fun`'s value and gradient over all row blocks of its Dask arguments.

    `fun(*args)` is a scalar loss of NumPy blocks; arguments that are Dask arrays are split by
    row blocks (aligned on the first one's row chunks), all others are parameters sent once
    per call. With `compute=False` the result is a `dask.delayed` object. With `has_aux`,
    `fun` returns `(loss, aux)` and the result's aux is summed over blocks like the value.
    Inside a block the program runs on pieces of about `piece_bytes` of row data (0: the
    whole block in one call), so what it reads twice is read once from memory.
    """
    _check_reduce(reduce, "value_and_grad")
    token = _token(fun)
    shared = _SharedSpec()

    def vg(*args):
        dask, _ = _dask()
        layout, params, arrays, n = _split_args(args, "value_and_grad")
        nums = _check_argnums(argnums, layout, "value_and_grad")
        nums = tuple(nums) if not isinstance(nums, int) else nums
        return _run_blocks(dask, _client(), shared,
                           (token, fun, nums, has_aux, reduce, tuple(layout), piece_bytes),
                           _block_value_and_grad, tuple(params), n, arrays, split_every,
                           "tracejit-value-and-grad", compute)

    vg.__name__ = f"value_and_grad_{getattr(fun, '__name__', 'fun')}_over_blocks"
    return vg


def grad(fun: Callable, argnums: int | Sequence[int] = 0, *, reduce: str = "sum",
         has_aux: bool = False, split_every: int = 8, piece_bytes: int = PIECE_BYTES):
    """The gradient part of `value_and_grad` (with `has_aux`: `(grad, aux)`)."""
    vg = value_and_grad(fun, argnums, reduce=reduce, has_aux=has_aux, split_every=split_every,
                        piece_bytes=piece_bytes)

    def g(*args):
        out = vg(*args)
        return (out[1], out[0][1]) if has_aux else out[1]

    g.__name__ = f"grad_{getattr(fun, '__name__', 'fun')}_over_blocks"
    return g


def jvp(fun: Callable, primals: Sequence, tangents: Sequence, *, reduce: str = "sum",
        split_every: int = 8, piece_bytes: int = PIECE_BYTES):
    """`(fun(*primals), J tangents)` summed (or row-weighted averaged) over row blocks.

    Tangents are given for the parameters only (one per non-Dask primal, in order); the data
    is held fixed (its tangent is zero)."""
    _check_reduce(reduce, "jvp")
    dask, _ = _dask()
    layout, params, arrays, n = _split_args(tuple(primals), "jvp")
    tangents = tuple(tangents)
    if len(tangents) != len(params):
        raise ValueError(f"jvp: {len(params)} parameter primals (non-Dask arguments) but "
                         f"{len(tangents)} tangents")
    return _run_blocks(dask, _client(), _JVP_SPECS,
                       (_token(fun), fun, reduce, tuple(layout), piece_bytes), _block_jvp,
                       (tuple(params), tangents), n, arrays, split_every, "tracejit-jvp")
