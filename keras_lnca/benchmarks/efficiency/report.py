"""Reports of a benchmark result: text or markdown tables, JSON, and a log-log plot."""

import json
import math
import platform

from keras_lnca.benchmarks.efficiency.models import BASELINE
from keras_lnca.benchmarks.efficiency.models import MODELS
from keras_lnca.data.io import atomic_write


def _label(model):
    return MODELS.get(model, (model,))[0]


def _num(value, digits=1):
    if value is None:
        return "-"
    if isinstance(value, float) and math.isnan(value):
        return "-"
    return f"{value:,.{digits}f}"


def _table(headers, rows, markdown):
    rows = [[str(c) for c in row] for row in rows]
    if markdown:
        lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        return "\n".join(lines)
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip()
    out = [line, "  ".join("-" * w for w in widths)]
    last = len(headers) - 1  # the first and last columns are text, the others numbers

    def cell(i, text, width):
        return text.ljust(width) if i in (0, last) else text.rjust(width)

    out += ["  ".join(cell(i, c, w) for i, (c, w) in enumerate(zip(row, widths))).rstrip()
            for row in rows]
    return "\n".join(out)


def _backend_sections(result, markdown):
    config = result["config"]
    sections = []
    keyed = []  # (model, size, row)
    for p in result["points"]:
        keyed.append((p["model"], p["size"], [
            f"{p['params']:,}", _num(p["flops"] / 1e9, 2), _num(p["latency_ms"]),
            _num(p["peak_memory_mb"]), _num(p.get("run_memory_mb")),
            ("over budget" if p.get("over_budget") else p.get("note", "")),
        ]))
    for s in result["skipped"]:
        keyed.append((s["model"], s["size"], ["", "", "", "", "", s["reason"]]))
    for f in result["failed"]:
        if not f.get("train_step"):
            keyed.append((f["model"], f["size"], ["", "", "", "", "", f"failed: {f.get('error')}"]))
    order = {m: i for i, m in enumerate(config["models"])}
    keyed.sort(key=lambda item: (order.get(item[0], len(order)), item[1]))
    rows = [[_label(model), f"{size}x{size}"] + row for model, size, row in keyed]
    sections.append(
        f"Inference: batch {config['batch']}, {config['steps']} NCA steps, "
        f"memory source {result.get('memory_source')}\n"
        + _table(["model", "input", "params", "GFLOPs", "latency ms", "peak MB", "run MB", "note"],
                 rows, markdown)
    )
    if result["train_step"] or any(f.get("train_step") for f in result["failed"]):
        rows = [
            [_label(m), _num(s["latency_ms"]), _num(s["peak_memory_mb"]), _num(s.get("run_memory_mb"))]
            for m, s in result["train_step"].items()
        ]
        rows += [[_label(f["model"]), "-", "-", f"failed: {f.get('error')}"]
                 for f in result["failed"] if f.get("train_step")]
        sections.append(
            f"Training step (phase nca): {config['train_size']}x{config['train_size']}, batch "
            f"{config['train_batch']}, {config['train_steps']} NCA steps, through Model.fit\n"
            + _table(["model", "latency ms", "peak MB", "run MB"], rows, markdown)
        )
    if result["max_side_details"]:
        rows = []
        for model, details in result["max_side_details"].items():
            side = result["max_side"].get(model)
            how = details.get("fit", "")
            if details.get("bisection"):
                how += f"; bisection {details['bisection']}"
            rows.append([_label(model), "-" if side is None else f"{side}x{side}", details["method"], how])
        sections.append(
            f"Largest square input within {config['memory_budget_gb']:g} GB\n"
            + _table(["model", "max input", "method", "how"], rows, markdown)
        )
    if result["ratios"]:
        rows, overall = [], []
        for name, entry in result["ratios"].items():
            model = name.split("_vs_")[0]
            for size, r in entry["by_size"].items():
                rows.append([
                    _label(model), f"{size}x{size}", _num(r["latency"], 3),
                    _num(r.get("latency_reduction_pct")), _num(r["memory"], 3),
                    _num(r.get("memory_reduction_pct")), _num(r.get("run_memory"), 3),
                    _num(r["flops"], 3),
                ])
            overall.append([
                _label(model), _num(entry.get("max_side"), 2), _num(entry.get("max_pixels"), 1),
                _num(entry.get("train_step_latency"), 3), _num(entry.get("train_step_memory"), 3),
            ])
        sections.append(
            f"Ratios against {_label(BASELINE)} (LNCA / {_label(BASELINE)}; < 1: LNCA needs less)\n"
            + _table(["model", "input", "latency", "latency -%", "peak memory", "memory -%",
                      "run memory", "FLOPs"], rows, markdown)
        )
        sections.append(
            f"Ratios against {_label(BASELINE)}: largest input (> 1: LNCA restores larger "
            "inputs) and training step\n"
            + _table(["model", "max side", "max pixels", "train latency", "train memory"],
                     overall, markdown)
        )
    return sections


def _cross_backend_sections(result, markdown):
    table = result["cross_backend"]
    backends = result["backends_run"]
    rows = []
    for model, sizes in table["inference"].items():
        for size in sorted(sizes, key=int):
            cell = sizes[size]
            rows.append([_label(model), f"{size}x{size}"]
                        + [_num(cell.get(b, {}).get("latency_ms")) for b in backends]
                        + [_num(cell.get(b, {}).get("peak_memory_mb")) for b in backends])
    for model, cell in table["train_step"].items():
        rows.append([_label(model), "train step"]
                    + [_num(cell.get(b, {}).get("latency_ms")) for b in backends]
                    + [_num(cell.get(b, {}).get("peak_memory_mb")) for b in backends])
    for model, cell in table["max_side"].items():
        rows.append([_label(model), "max side"] + [str(cell.get(b, "-")) for b in backends]
                    + ["" for _ in backends])
    headers = ["model", "input"] + [f"{b} ms" for b in backends] + [f"{b} MB" for b in backends]
    return ["Cross-backend (latency ms, peak MB)\n" + _table(headers, rows, markdown)]


def _header(result, markdown):
    machine = result["machine"]
    cpu = machine.get("cpu", platform.processor() or "cpu")
    cores = machine.get("cpus_available", machine.get("cpu_count"))
    packages = ", ".join(f"{k} {v}" for k, v in machine.get("packages", {}).items())
    lines = [
        f"Machine: {cpu}, {cores} cores, {machine.get('memory_gb', '?')} GB RAM, "
        f"device {machine.get('device')}; {packages}",
    ]
    if result.get("command"):
        lines.insert(0, f"Command: `{result['command']}`" if markdown else f"Command: {result['command']}")
    lines.append(f"FLOPs: {result['methods']['flops']}")
    lines.append(f"Memory: {result['methods']['memory']}")
    if result.get("memory_isolation"):
        lines.append(f"Memory isolation: {result['memory_isolation']}")
    return ("\n\n" if markdown else "\n").join(lines)


def format_report(result, markdown=False):
    """The benchmark as text tables (or markdown with `markdown=True`).

    Args:
        result: the dict returned by `run`.
        markdown: bool, GitHub-flavoured markdown tables (for BENCHMARKS.md).

    Returns:
        str.
    """
    gap = "\n\n"
    title = "## Efficiency benchmark (`lnca benchmark efficiency`)" if markdown else "Efficiency benchmark"
    parts = [title, _header(result, markdown)]
    per_backend = result.get("backends") or {result["backend"]: result}
    for backend, backend_result in per_backend.items():
        merged = dict(result, **{k: backend_result[k] for k in (
            "points", "skipped", "failed", "train_step", "max_side", "max_side_details", "ratios",
            "memory_source") if k in backend_result})
        heading = f"### Backend: {backend}" if markdown else f"== backend: {backend} =="
        device = backend_result.get("device") or result["machine"].get("device")
        parts.append(f"{heading} (device {device})")
        for section in _backend_sections(merged, markdown):
            parts.append(_bold_first_line(section) if markdown else section)
    if result.get("cross_backend"):
        heading = "### Cross-backend" if markdown else "== cross-backend =="
        parts.append(heading)
        parts += _cross_backend_sections(result, markdown)
    return gap.join(parts) + "\n"


def _bold_first_line(section):
    first, _, rest = section.partition("\n")
    return f"**{first}**\n\n{rest}"


def write_json(path, result):
    """Writes the result as JSON (atomically).

    Layout (DESIGN.md): `{"machine", "backend", "points": [{"model", "size",
    "batch", "params", "flops", "latency_ms", "peak_memory_mb",
    "memory_source", ...}], "max_side": {model: px}, "ratios": {...}}`, plus
    `train_step`, `skipped`, `failed`, `max_side_details`, `methods`,
    `config`, `command`, and with several backends `backends` (each
    backend's full result) and `cross_backend`; the top-level figures are
    the first backend's.
    """
    text = json.dumps(result, indent=2) + "\n"
    atomic_write(path, lambda f: f.write(text.encode("utf-8")))


def write_markdown(path, result):
    """Writes `format_report(result, markdown=True)` (atomically)."""
    text = format_report(result, markdown=True)
    atomic_write(path, lambda f: f.write(text.encode("utf-8")))


def plot(path, result):
    """Writes a PNG: latency and peak memory against input size, log-log.

    One line per model (and line style per backend); the memory budget is a
    dashed horizontal line.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    per_backend = result.get("backends") or {result["backend"]: result}
    styles = ["-", "--", ":", "-."]
    colors = {model: f"C{i}" for i, model in enumerate(MODELS)}
    fig, (ax_time, ax_mem) = plt.subplots(1, 2, figsize=(12, 4.8))
    sizes_plotted = set()
    for b_index, (backend, backend_result) in enumerate(per_backend.items()):
        for model in result["config"]["models"]:
            points = sorted((p for p in backend_result["points"] if p["model"] == model),
                            key=lambda p: p["size"])
            if not points:
                continue
            sizes = [p["size"] for p in points]
            sizes_plotted.update(sizes)
            label = _label(model) + (f" ({backend})" if len(per_backend) > 1 else "")
            style = dict(color=colors.get(model), linestyle=styles[b_index % len(styles)], marker="o")
            ax_time.plot(sizes, [p["latency_ms"] / 1000.0 for p in points], label=label, **style)
            memory = [(p["size"], p["peak_memory_mb"]) for p in points
                      if p["peak_memory_mb"] is not None and p["peak_memory_mb"] > 0]
            if memory:
                ax_mem.plot(*zip(*memory), label=label, **style)
    budget = result["config"]["memory_budget_gb"] * 1024.0
    ax_mem.axhline(budget, color="gray", linestyle="--", linewidth=1,
                   label=f"budget {result['config']['memory_budget_gb']:g} GB")
    steps = result["config"]["steps"]
    for ax, ylabel, title in (
        (ax_time, "latency (s)", f"Inference latency ({steps} steps, batch {result['config']['batch']})"),
        (ax_mem, "peak memory (MB)", "Peak inference memory"),
    ):
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        if sizes_plotted:
            ax.set_xticks(sorted(sizes_plotted), [str(size) for size in sorted(sizes_plotted)])
            ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_xlabel("input side (pixels)")
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    backends = ", ".join(result.get("backends_run") or [result["backend"]])
    fig.suptitle(f"lnca benchmark efficiency: {backends}, device {result['machine'].get('device')}")
    fig.tight_layout()
    try:
        atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=110))
    finally:
        plt.close(fig)
