"""Turn raw samples into medians and ratios, a markdown report and a plot."""

import math
from statistics import median, quantiles

#: Tick marks of the plot's log-scaled ratio axis.
TICKS = (1 / 8, 1 / 6, 1 / 4, 1 / 3, 1 / 2, 2 / 3, 1, 1.5, 2, 3, 4, 6, 8)

TIME_KEYS = ("cpu", "wall")

#: nursery.compat's targets, as ratios to stock asyncio (asyncio ÷ impl), on
#: the workloads of COMPAT_WORKLOADS: stock asyncio code on compat's loop, and
#: the same code with ``asyncio`` bound to the compat module.
COMPAT_TARGETS = {"compat-loop": 0.9, "compat": 1.0}
COMPAT_WORKLOADS = ("spawn", "switch", "pingpong", "lock", "timeouts", "gather")

#: The I/O targets (issue 6): stock asyncio networking code on compat's loop
#: (and, for streams, with ``asyncio`` bound to the compat module) at least
#: as fast as on stock asyncio.  The aiohttp target is on requests per
#: second, so its ratio is taken from wall time (HTTP_WORKLOAD).
COMPAT_IO_TARGETS = {"compat-loop": 1.0, "compat": 1.0}
COMPAT_IO_WORKLOADS = ("echo_tcp", "echo_bulk", "echo_proto", "aiohttp")

#: The workload measured in requests per second: size / median wall time.
HTTP_WORKLOAD = "aiohttp"


def summarize(data):
    """Add medians, nursery's ratios to each peer and everyone's ratio to asyncio.

    Ratios are "how many times faster (or smaller) than": peer / nursery for
    nursery's ratios, asyncio / impl for the ratios to asyncio, so >1 is
    better for the implementation named second.
    """
    for workload, cells in data["results"].items():
        key = "kib" if workload == "memory" else "cpu"
        for cell in cells.values():
            if cell["status"] == "ok":
                for k in ("kib",) if workload == "memory" else TIME_KEYS:
                    cell[f"median_{k}"] = median(cell[k])
        headline = {impl: cell[f"median_{key}"] for impl, cell in cells.items() if cell["status"] == "ok"}
        data.setdefault("ratios", {})[workload] = _ratios(headline, "nursery", to_base=False)
        data.setdefault("vs_asyncio", {})[workload] = _ratios(headline, "asyncio", to_base=True)
        if workload == HTTP_WORKLOAD:
            size = data["sizes"][workload]
            data["rps"] = {impl: size / c["median_wall"] for impl, c in cells.items() if c["status"] == "ok"}
            data["rps_vs_asyncio"] = _ratios({impl: 1 / r for impl, r in data["rps"].items()}, "asyncio", to_base=True)
    return data


def _ratios(values, base, to_base):
    if not values.get(base):
        return {}
    return {
        impl: (values[base] / v if to_base else v / values[base])
        for impl, v in values.items()
        if impl != base and v > 0
    }


def markdown(data):
    impls = list(data["impls"])
    peers = [impl for impl in impls if impl != "nursery"]
    workloads = list(data["results"])
    timed = [w for w in workloads if w != "memory"]
    memory = [w for w in workloads if w == "memory"]
    versions = ", ".join(f"{impl} {p.get('version', p['status'])}" for impl, p in data["impls"].items())
    machine = data["machine"]
    lines = [
        "# nursery benchmark results",
        "",
        f"- date: {data['date']}",
        f"- machine: {machine['platform']}, {machine['cpu_count']} CPUs, {machine['processor']}",
        f"- python: {data['python'].split()[0]} ({data['python_implementation']})",
        f"- command: `{data['command']}` at commit {data.get('commit') or 'unknown'}",
        f"- versions: {versions}",
        (
            f"- method: {data['rounds']} round(s) of fresh processes, each running {data['reps']} timed "
            "repetition(s) after a warm-up; medians over all samples"
        ),
        "",
    ]

    def value(key, scale, fmt):
        def column(w, impl):
            cell = data["results"][w][impl]
            return fmt.format(cell[key] * scale) if cell["status"] == "ok" else cell["status"]

        return column

    def spread(w, impl):
        cell = data["results"][w][impl]
        if cell["status"] != "ok":
            return cell["status"]
        r = _spread_of(cell)
        return "–" if r is None else f"{r:.0%}"

    def ratio(table):
        def column(w, impl):
            r = data[table][w].get(impl)
            return "–" if r is None else f"{r:.2f}×"

        return column

    # (Without nursery in the run, e.g. a compat-only run, there is nothing to divide by.)
    vs_nursery = [(f"{p} ÷ nursery", p, ratio("ratios")) for p in peers] if "nursery" in impls else []
    if timed:
        cpu_ms = value("median_cpu", 1000, "{:.1f}")
        lines += _table(
            "Time: median CPU ms per run (lower is better)"
            + (", and nursery's ratios (peer ÷ nursery, >1: nursery is faster)" if vs_nursery else ""),
            data,
            timed,
            [(impl, impl, cpu_ms) for impl in impls] + vs_nursery,
        )
    if memory:
        kib = value("median_kib", 1, "{:,.0f}")
        lines += _table(
            "Memory: peak RSS growth in KiB (lower is better)"
            + (", and nursery's ratios (peer ÷ nursery, >1: nursery is smaller)" if vs_nursery else ""),
            data,
            memory,
            [(impl, impl, kib) for impl in impls] + vs_nursery,
        )
    lines += _table(
        "Relative to asyncio (asyncio ÷ implementation, >1: faster or smaller than asyncio)",
        data,
        workloads,
        [(impl, impl, ratio("vs_asyncio")) for impl in impls if impl != "asyncio"],
    )
    compat = [impl for impl in COMPAT_TARGETS if impl in impls]
    if compat and "asyncio" in impls:
        coordination = [w for w in COMPAT_WORKLOADS if w in workloads]
        if coordination:
            lines += _compat_table(
                "nursery.compat relative to stock asyncio (asyncio ÷ implementation)",
                data,
                coordination,
                COMPAT_TARGETS,
                compat,
            )
        io = [w for w in COMPAT_IO_WORKLOADS if w in workloads]
        if io:
            lines += _compat_table(
                "nursery.compat on asyncio networking code, relative to stock asyncio "
                f"(asyncio ÷ implementation; {HTTP_WORKLOAD}: requests per second ÷ asyncio's)",
                data,
                io,
                COMPAT_IO_TARGETS,
                compat,
                reference=[impl for impl in ("uvloop", "rloop") if impl in impls],
            )
    if data.get("rps"):
        lines += _rps_table(data, impls)
    if timed:
        lines += _table(
            "Noise: interquartile range of the CPU samples, as % of their median",
            data,
            timed,
            [(impl, impl, spread) for impl in impls],
        )
        wall_ms = value("median_wall", 1000, "{:.1f}")
        lines += _table(
            "Wall time: median ms per run (noisier than CPU time)",
            data,
            timed,
            [(impl, impl, wall_ms) for impl in impls],
        )
    problems = [
        f"- {impl}: {probe['status']}: {probe.get('error') or probe.get('reason')}"
        for impl, probe in data["impls"].items()
        if probe["status"] != "ok"
    ] + [
        f"- {impl} / {w}: {cell['status']}: {cell.get('error') or cell.get('reason')}"
        for w, cells in data["results"].items()
        for impl, cell in cells.items()
        if cell["status"] != "ok" and data["impls"][impl]["status"] == "ok"
    ]
    if problems:
        lines += ["## Not measured", "", *problems, ""]
    return "\n".join(lines)


def _compat_table(title, data, workloads, targets, impls, reference=()):
    """nursery.compat's ratios to stock asyncio, against the targets; reference columns (uvloop) for scale."""
    header = ["workload", *(f"{impl} (target ≥ {targets[impl]:.1f}×)" for impl in impls), *reference]
    lines = [f"## {title}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for w in workloads:
        row = [f"{w} ({data['sizes'][w]:,})"]
        for impl in (*impls, *reference):
            r = _vs_asyncio(data, w, impl)
            cell = data["results"][w][impl]
            if r is None:
                row.append("–" if cell["status"] == "ok" else cell["status"])
            elif impl in targets and r < targets[impl]:
                # Rounded down, so that 0.998 reads 0.99× (below), not 1.00× (below).
                row.append(f"{math.floor(r * 100) / 100:.2f}× (below)")
            else:
                row.append(f"{r:.2f}×")
        lines.append("| " + " | ".join(row) + " |")
    return lines + [""]


def _spread_of(cell, key="cpu"):
    """The samples' interquartile range over their median (None for fewer than 4 samples)."""
    samples = cell.get(key, [])
    if len(samples) < 4:
        return None
    q1, _, q3 = quantiles(samples, n=4)
    return (q3 - q1) / median(samples)


def _vs_asyncio(data, workload, impl):
    """impl's ratio to asyncio on workload: requests per second for the HTTP one, CPU time otherwise."""
    if workload == HTTP_WORKLOAD:
        return data.get("rps_vs_asyncio", {}).get(impl)
    return data["vs_asyncio"][workload].get(impl)


def _rps_table(data, impls):
    """The HTTP workload in its own units: requests per second and server CPU per request."""
    cells = data["results"][HTTP_WORKLOAD]
    size = data["sizes"][HTTP_WORKLOAD]
    lines = [
        f"## {HTTP_WORKLOAD}: requests per second (median wall time for {size:,} requests) "
        f"and server CPU per request; load: {data.get('loadgen') or 'unknown'}",
        "",
        "| implementation | requests/s | ÷ asyncio | wall IQR | server CPU µs/request | CPU ÷ asyncio |",
        "|---|---|---|---|---|---|",
    ]
    for impl in impls:
        cell = cells[impl]
        if cell["status"] != "ok":
            lines.append(f"| {impl} | {cell['status']} | – | – | – | – |")
            continue
        rps = data["rps"][impl]
        r = data["rps_vs_asyncio"].get(impl)
        c = data["vs_asyncio"][HTTP_WORKLOAD].get(impl)
        iqr = _spread_of(cell, "wall")
        lines.append(
            f"| {impl} | {rps:,.0f} | {'–' if r is None else f'{r:.2f}×'} | {'–' if iqr is None else f'{iqr:.0%}'} | "
            f"{cell['median_cpu'] / size * 1e6:.1f} | {'–' if c is None else f'{c:.2f}×'} |"
        )
    return lines + [""]


def _table(title, data, workloads, columns):
    """A markdown table: a row per workload, a column per (header, impl, column(w, impl))."""
    header = ["workload", *(name for name, _, _ in columns)]
    lines = [f"## {title}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for w in workloads:
        row = [f"{w} ({data['sizes'][w]:,})", *(column(w, impl) for _, impl, column in columns)]
        lines.append("| " + " | ".join(row) + " |")
    return lines + [""]


def plot(data, path):
    """Grouped bars of each implementation's ratio to asyncio; False without matplotlib."""
    try:
        import matplotlib
    except ImportError:
        return False
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    workloads = list(data["results"])
    impls = [impl for impl in data["impls"] if impl != "asyncio"]
    width = 0.8 / max(len(impls), 1)
    fig, ax = plt.subplots(figsize=(9, 4.5), dpi=100)
    ratios = []
    for i, impl in enumerate(impls):
        xs, ys = [], []
        for j, w in enumerate(workloads):
            ratio = data["vs_asyncio"][w].get(impl)
            if ratio is not None:
                xs.append(j + (i - (len(impls) - 1) / 2) * width)
                ys.append(ratio)
        ratios += ys
        # Bars grow from 1.0, up for better than asyncio and down for worse.
        label = impl if ys else f"{impl} (not measured)"
        bars = ax.bar(xs, [y - 1 for y in ys], width, bottom=1, label=label, color=f"C{i}")
        ax.bar_label(bars, labels=[f"{y:.2f}" for y in ys], fontsize=7, padding=1)
    ax.axhline(1.0, color="black", linewidth=1)
    # A log scale shows 2x faster and 2x slower as bars of the same length.
    ax.set_yscale("log")
    span = max([abs(math.log(r)) for r in ratios] + [math.log(1.5)]) * 1.15
    ax.set_ylim(math.exp(-span), math.exp(span))
    ticks = [t for t in TICKS if math.exp(-span) <= t <= math.exp(span)]
    ax.yaxis.set_major_locator(matplotlib.ticker.FixedLocator(ticks))
    ax.yaxis.set_major_formatter(matplotlib.ticker.FixedFormatter([f"{t:.2g}" for t in ticks]))
    ax.yaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    ax.set_xticks(range(len(workloads)), workloads)
    ax.set_ylabel("asyncio ÷ implementation\n(>1: faster, or less memory, than asyncio)")
    ax.set_title(f"nursery benchmarks, {data['date'][:10]}, Python {data['python'].split()[0]}, median CPU time")
    ax.legend(ncols=len(impls), fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.08), frameon=False)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return True
