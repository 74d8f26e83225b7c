"""PNG figures of a benchmark run (matplotlib, the `plot` extra): one per workload case,
time per gradient call of every system on a log axis with its ratio to numba-hand on the
bar, and one summary figure of every case's ratios."""

from __future__ import annotations

from pathlib import Path

from .workloads import SYSTEMS, WORKLOADS

BASELINE = "numba-hand"


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise SystemExit("plots need matplotlib: pip install -e '.[plot]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _color(system: str) -> str:
    if system.startswith("tracejit"):
        return "#c8501e"
    if system.startswith("numba"):
        return "#1f5fbf"
    if system.startswith("numpy"):
        return "#3b7d3b"
    return "#777777"


def _groups(results: list) -> dict:
    """(workload, case) -> {system: median seconds} for correct, finished rows."""
    order = list(SYSTEMS)
    groups: dict = {}
    for r in results:
        if r.get("status") == "ok" and r.get("correct") and r.get("median_s"):
            groups.setdefault((r["workload"], r["case"]), {})[r["system"]] = r["median_s"]
    return {k: dict(sorted(v.items(), key=lambda kv: order.index(kv[0])
                           if kv[0] in order else len(order)))
            for k, v in groups.items()}


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text).strip("-").lower()


def _subtitle(meta: dict) -> str:
    m = meta["machine"]
    return (f"{meta['mode']} run {meta['started'][:16].replace('T', ' ')} UTC · "
            f"{m['nproc']} CPUs, {m['cpu']}")


def plot_run(meta: dict, results: list, out_dir, stem: str) -> list[Path]:
    """Write `<stem>-<workload>-<case>.png` per case and `<stem>-summary.png`; return the
    paths (summary first)."""
    plt = _pyplot()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    groups = _groups(results)
    paths = [out_dir / f"{stem}-summary.png"]
    _summary(plt, meta, groups, paths[0])
    for (wid, case), times in groups.items():
        path = out_dir / f"{stem}-{_slug(wid)}-{_slug(case)}.png"
        _workload(plt, meta, wid, case, times, path)
        paths.append(path)
    return paths


def _workload(plt, meta, wid, case, times: dict, path: Path) -> None:
    wl = WORKLOADS.get(wid)
    scale, unit = (1e6, "µs") if wl is not None and wl.unit == "us" else (1e3, "ms")
    names = list(times)
    values = [times[n] * scale for n in names]
    base = times.get(BASELINE)
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(names) + 1.6), layout="constrained")
    y = range(len(names))
    ax.barh(y, values, color=[_color(n) for n in names])
    ax.set_xscale("log")
    ax.set_yticks(list(y), names)
    ax.invert_yaxis()
    ax.set_xlabel(f"time per gradient call ({unit}, log scale; lower is faster)")
    title = f"{wid} {wl.title if wl else ''}"
    ax.set_title(f"{title[:90]}\n{case} · {_subtitle(meta)}", fontsize=9, loc="left")
    lo, hi = min(values), max(values)
    ax.set_xlim(lo / 2, hi * 8)
    for i, (n, v) in enumerate(zip(names, values)):
        label = f"{v:.3g} {unit}"
        if base:
            label += f"  ({times[n] / base:.2f}x {BASELINE})"
        ax.text(v * 1.08, i, label, va="center", fontsize=8)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _summary(plt, meta, groups: dict, path: Path) -> None:
    """Every case's time over numba-hand's, one group of bars per case."""
    cases = [(k, v) for k, v in groups.items() if BASELINE in v]
    systems = [s for s in SYSTEMS if s != BASELINE and any(s in v for _, v in cases)]
    systems += sorted({s for _, v in cases for s in v} - set(systems) - {BASELINE})
    fig, ax = plt.subplots(figsize=(max(8, 1.1 * len(cases) + 3), 4.8), layout="constrained")
    width = 0.8 / max(len(systems), 1)
    cmap = plt.get_cmap("tab10")
    for j, s in enumerate(systems):
        xs = [i + (j - (len(systems) - 1) / 2) * width for i, (_, v) in enumerate(cases)
              if s in v]
        ys = [v[s] / v[BASELINE] for _, v in cases if s in v]
        ax.bar(xs, ys, width, label=s, color=cmap(j % 10))
        for x, r in zip(xs, ys):
            ax.text(x, r * 1.05, f"{r:.2g}", ha="center", va="bottom", fontsize=6,
                    rotation=90)
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_yscale("log")
    ax.set_xticks(range(len(cases)), [f"{w}\n{c}" for (w, c), _ in cases], fontsize=7)
    ax.set_ylabel(f"time / {BASELINE} time (log; 1 = {BASELINE}, lower is faster)")
    ax.set_title(f"tracejit gradient benchmarks · {_subtitle(meta)}", fontsize=9, loc="left")
    ax.legend(fontsize=7, ncols=min(len(systems), 4), loc="upper left")
    top = max((v[s] / v[BASELINE] for _, v in cases for s in v), default=1.0)
    ax.set_ylim(top=top * 6)
    fig.savefig(path, dpi=110)
    plt.close(fig)
