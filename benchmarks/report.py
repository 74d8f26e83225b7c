"""Markdown tables from the runner's results (one table per workload case).

`python -m benchmarks.report --plot benchmarks/results/<run>.json` draws a saved run's
figures (`plot.py`) and rewrites its report to embed them."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from .workloads import SYSTEMS, WORKLOADS

# memory columns (RSS after imports, +data, peak, per call) shown for these workloads
MEMORY_WORKLOADS = ("W1", "W5", "W7", "W10")


def _num(x, digits=3) -> str:
    return "" if x is None else f"{x:.{digits}g}"


def _err(r: dict) -> str:
    errs = [e for e in (r.get("max_rel_err"), r.get("value_rel_err")) if e is not None]
    text = f"{max(errs):.2g}" if errs else "n/a"
    dtype_notes = [p for p in r.get("problems", []) if " is " in p and "inputs are" in p]
    if not r.get("correct"):
        text = f"**WRONG** {text}"
        others = [p for p in r.get("problems", []) if p not in dtype_notes]
        if others:
            text += " (" + "; ".join(others) + ")"
    if dtype_notes:
        text += " (" + "; ".join(dtype_notes) + ")"
    return text


def _warm(r: dict) -> str:
    w = r.get("warm")
    if w is None:
        return "n/a"
    if w.get("status") != "ok":
        return f"{w.get('status')}"
    text = _num(w["first_call_s"])
    return text if w.get("correct") else f"{text} ({_err(w)})"


def _threads_summary(results: list) -> list[str]:
    lines = []
    numba_threads = {r["threads"].get("numba_num_threads") for r in results
                     if r.get("threads", {}).get("numba_num_threads") is not None}
    if numba_threads:
        lines.append(f"NUMBA_NUM_THREADS (as numba saw it): {sorted(numba_threads)}")
    layers = {r["threads"].get("numba_threading_layer") for r in results
              if r["system"].endswith("parallel") and r.get("threads")}
    if layers:
        lines.append(f"numba threading layer in parallel rows: {sorted(map(str, layers))}")
    blas = {str(r["threads"].get("blas")) for r in results if r.get("threads")}
    if blas:
        lines.append("BLAS threads (threadpoolctl): " + "; ".join(sorted(blas)))
    return lines


def header(meta: dict, results: list) -> list[str]:
    m = meta["machine"]
    v = m["versions"]
    load0, load1 = meta["loadavg_start"], meta["loadavg_end"]
    out = [f"# tracejit gradient benchmarks ({meta['mode']} run, {meta['started']})", "",
           f"- Machine: {m['nproc']} CPUs (affinity {m['affinity']}), {m['cpu']}; load "
           f"average {load0[0]:.2f} / {load0[1]:.2f} / {load0[2]:.2f} at start, "
           f"{load1[0]:.2f} / {load1[1]:.2f} / {load1[2]:.2f} at end.",
           "- Software: " + ", ".join(f"{k} {val}" for k, val in v.items() if val) + ".",
           "- Threads in every worker: OPENBLAS_NUM_THREADS=1, MKL_NUM_THREADS=1, "
           "OMP_NUM_THREADS=1 (unset for `*-parallel` rows); OPENBLAS_CORETYPE and "
           "OPENBLAS_L2_SIZE unset."]
    out += [f"- {line}." for line in _threads_summary(results)]
    t = meta["timing"]
    out += [f"- Steady state: median over >= {t['min_reps']} samples and >= "
            f"{t['min_time_s']} s (at most {t['max_time_s']} s); calls shorter than "
            f"{t['batch_below_s'] * 1e3:g} ms are timed in batches of k (`reps x k`)."]
    out += [f"- {n}" for n in meta["notes"]]
    out += ["",
            "Columns: *median* steady-state time per call; *x numba-hand* / *x numpy-hand*: "
            "median over that system's median (lower is faster); *first call*: build + "
            "trace + compile + first run in a fresh process (after imports); *warm first "
            "call*: the same in a second fresh process reusing the first one's disk cache; "
            "*import*: importing numpy and the system; *max rel err*: max over the loss "
            "value and each gradient of max|g - ref| / max|ref|, against numpy-hand in "
            "float64 (WRONG above 1e-8 for float64, 1e-4 for float32); *cpu/wall*: cores "
            "this worker kept busy during the steady loop; *other*: cores other processes "
            "kept busy meanwhile (noise: with 2 cores, other >= 1 leaves a `*-parallel` row "
            "one core). Memory (W1, W5, W7, W10): RSS after imports, after making the "
            "inputs, and the worker's peak RSS (VmHWM, including compilation) before the "
            "check; *call MB*: peak RSS during the steady calls minus the RSS before them "
            "(VmHWM reset after the first call), i.e. what one call needs on top of what "
            "the process holds between calls.", ""]
    return out


def _did_not_finish(r: dict) -> str:
    stage = f", {r['stage']} not done" if r.get("stage") else ""
    return f"did not finish (killed after {r.get('timeout_s', 0):.0f} s{stage})"


def _lower_note(r: dict) -> str | None:
    """tracejit's lower() time and generated source size, from the row's `lower` process."""
    low = r.get("lower")
    if low is None:
        return None
    if low.get("status") == "timeout":
        return f"- {r['system']} lower(): {_did_not_finish(low)}."
    if low.get("status") != "ok":
        msg = (low.get("error") or "").splitlines()[0] if low.get("error") else ""
        return f"- {r['system']} lower(): {low.get('status')}: {msg}"
    modules = low.get("source_modules")
    where = f" in {modules} modules" if modules and modules > 1 else ""
    consts = low.get("lowered_consts")
    consts = f", {consts} constant arrays passed as arguments" if consts else ""
    return (f"- {r['system']} generated source: {low['source_chars']:,} characters{where}"
            f"{consts}; lower() (trace, optimize, generate; no Numba) {low['lower_s']:.3g} s.")


def table(wl, case_label: str, rows: list) -> list[str]:
    unit, scale = ("us", 1e6) if wl.unit == "us" else ("ms", 1e3)
    by_system = {r["system"]: r for r in rows}
    base = {name: by_system.get(name) for name in ("numba-hand", "numpy-hand")}
    base_t = {k: r["median_s"] for k, r in base.items()
              if r and r.get("status") == "ok" and r.get("correct")}
    memory = wl.id in MEMORY_WORKLOADS
    loads = [r["loadavg_start"][0] for r in rows if r.get("loadavg_start")]
    load = f"; load average {min(loads):.1f}-{max(loads):.1f} during the runs" if loads else ""
    out = [f"### {wl.id} {wl.title}", "",
           f"{case_label}, {wl.dtype}, `{wl.computes}` w.r.t. {wl.wrt}{load}.", ""]
    cols = ["system", f"median {unit}", "x numba-hand", "x numpy-hand", "first call s",
            "warm first call s", "import s", "max rel err", "cpu/wall", "other",
            "reps x k"]
    # compile_first: first call, then steady time (the rest of the columns as usual)
    order = [0, 4, 5, 1, 2, 3, 6, 7, 8, 9, 10] if wl.compile_first else list(range(11))
    if memory:
        cols += ["RSS imports MB", "RSS +data MB", "peak RSS MB", "call MB"]
    order += list(range(11, len(cols)))
    out += ["| " + " | ".join(cols[i] for i in order) + " |",
            "|" + "|".join(["---"] + ["---:"] * (len(cols) - 1)) + "|"]
    notes = []
    for r in rows:
        lower_note = _lower_note(r)
        if lower_note:
            notes.append(lower_note)
        if r.get("status") == "timeout":
            cells = [r["system"], _did_not_finish(r)] + [""] * (len(cols) - 2)
            out.append("| " + " | ".join(cells) + " |")
            if r.get("stage") == "steady state" and r.get("first_call_s") is not None:
                notes.append(f"- {r['system']}: first call {r['first_call_s']:.3g} s, then "
                             f"killed during the steady-state loop.")
            continue
        if r.get("status") != "ok":
            msg = r.get("error", "").splitlines()[0] if r.get("error") else ""
            stage = f" in {r['stage']}" if r.get("stage") else ""
            cells = [r["system"], f"{r['status'].upper()}{stage}"] + [""] * (len(cols) - 2)
            out.append("| " + " | ".join(cells) + " |")
            notes.append(f"- {r['system']}: {r['status']}{stage}: {msg}")
            continue
        med = r["median_s"]
        ok = r.get("correct")
        ratios = [_num(med / base_t[k], 3) if ok and k in base_t else "—"
                  for k in ("numba-hand", "numpy-hand")]
        shown = _num(med * scale, 4) if ok else f"({_num(med * scale, 4)})"
        name = r["system"] if ok else f"{r['system']} **WRONG**"
        cells = [name, shown, *ratios, _num(r["first_call_s"]),
                 _warm(r), _num(r.get("import_s"), 2), _err(r),
                 _num(r.get("cpu_per_wall"), 2), _num(r.get("other_cores_busy"), 2),
                 f"{r['reps']} x{r['batch']}"]
        if memory:
            cells += [_num(r.get("rss_imports_mb"), 3), _num(r.get("rss_data_mb"), 3),
                      _num(r.get("peak_rss_mb"), 3), _num(r.get("call_mb"), 3)]
        out.append("| " + " | ".join(cells[i] for i in order) + " |")
        if r["system"] == "tracejit-parallel":
            used = r.get("generated_prange")
            notes.append("- tracejit-parallel is `tj.jit(..., parallel=True)`; the generated "
                         "code " + {True: "uses `numba.prange`.", False:
                                    "does NOT use prange (the option had no effect).",
                                    None: "could not be inspected."}[used])
    ck = by_system.get("tracejit-checkpoint")  # against the same scan without checkpoint
    plain = by_system.get("tracejit-scan" if "scan" in wl.variants else "tracejit")
    if ck and plain and ck.get("status") == "ok" and plain.get("status") == "ok":
        def mb(r, key):
            return "n/a" if r.get(key) is None else f"{r[key]:.1f} MB"
        notes.append(f"- `checkpoint` on the scan body ({plain['system']} -> "
                     f"tracejit-checkpoint): {plain['median_s'] * scale:.4g} -> "
                     f"{ck['median_s'] * scale:.4g} {unit} "
                     f"({ck['median_s'] / plain['median_s']:.2f}x time); call memory "
                     f"{mb(plain, 'call_mb')} -> {mb(ck, 'call_mb')}; process peak RSS "
                     f"{mb(plain, 'peak_rss_mb')} -> {mb(ck, 'peak_rss_mb')}.")
    jx = by_system.get("jax")
    if wl.compile_first and jx and jx.get("status") == "ok":
        firsts = [f"{r['system']} {r['first_call_s'] / jx['first_call_s']:.3g}x"
                  for r in rows if r["system"].startswith("tracejit")
                  and r.get("status") == "ok"]
        if firsts:
            notes.append(f"- first call against jax's ({jx['first_call_s']:.3g} s): "
                         + ", ".join(firsts) + ".")
    if wl.note:
        notes.append(f"- {wl.note}")
    tj, nb = by_system.get("tracejit"), base.get("numba-hand")
    if wl.latency and tj and "numba-hand" in base_t and tj.get("status") == "ok":
        notes.append(f"- tracejit per call against the bare numba-hand call: "
                     f"{(tj['median_s'] - nb['median_s']) * 1e6:+.2f} us "
                     f"({tj['median_s'] / nb['median_s']:.2f}x).")
    return out + ([""] + notes if notes else []) + [""]


def render(meta: dict, results: list, figures: list | None = None) -> str:
    """The Markdown report; `figures` (paths relative to the report, summary first) are
    embedded: the summary under the header, each case's figure above its table."""
    lines = header(meta, results)
    figures = list(figures or [])
    if figures:
        lines += [f"![time per gradient call over numba-hand's, every case]({figures[0]})",
                  ""]
    by_slug = {Path(f).stem: f for f in figures[1:]}
    order = list(SYSTEMS)
    groups: dict = {}
    for r in results:
        groups.setdefault((r["workload"], r["case"]), []).append(r)
    for (wid, case_label), rows in groups.items():
        rows.sort(key=lambda r: order.index(r["system"]))
        rows_md = table(WORKLOADS[wid], case_label, rows)
        fig = next((f for stem, f in by_slug.items()
                    if stem.endswith(figure_suffix(wid, case_label))), None)
        if fig:
            rows_md[2:2] = [f"![{wid} {case_label}]({fig})", ""]
        lines += rows_md
    return "\n".join(lines)


def figure_suffix(wid: str, case_label: str) -> str:
    from .plot import _slug
    return f"-{_slug(wid)}-{_slug(case_label)}"


def write_plots(json_path, out_dir=None, rewrite_report: bool = True) -> list:
    """Figures of a saved run (`<run>.json`) into `out_dir` (default: beside it, in
    `<run>-plots/`), and (`rewrite_report`) the run's Markdown report rewritten to embed
    them."""
    from .plot import plot_run
    json_path = Path(json_path)
    data = json.loads(json_path.read_text())
    stem = json_path.stem
    out_dir = Path(out_dir) if out_dir else json_path.with_name(stem + "-plots")
    paths = plot_run(data["meta"], data["results"], out_dir, stem)
    if rewrite_report:
        md = json_path.with_suffix(".md")
        rel = [os.path.relpath(p, md.parent) for p in paths]
        md.write_text(render(data["meta"], data["results"], rel))
    return paths


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.report", description=(
        "Rewrite the Markdown report of a saved run; with --plot, also draw its figures."))
    p.add_argument("results", nargs="+", help="results JSON files (benchmarks/results/...)")
    p.add_argument("--plot", action="store_true", help="write PNG figures (matplotlib)")
    p.add_argument("--out", default=None, help="directory for the figures (default: "
                   "<run>-plots/ beside the JSON)")
    p.add_argument("--figures-only", action="store_true",
                   help="with --plot: leave the run's Markdown report as it is")
    opts = p.parse_args(argv)
    for path in opts.results:
        if opts.plot:
            for fig in write_plots(path, opts.out, not opts.figures_only):
                print(f"wrote {fig}")
            if opts.figures_only:
                continue
        else:
            data = json.loads(Path(path).read_text())
            Path(path).with_suffix(".md").write_text(render(data["meta"], data["results"]))
        print(f"wrote {Path(path).with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
