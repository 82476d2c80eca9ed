"""Console lines and the Markdown results section of ``docs/benchmarks.md`` from the suite's results."""

from __future__ import annotations

from pathlib import Path
from typing import Any

BEGIN = "<!-- results:begin (written by benchmarks/run.py; edit outside these markers) -->"
END = "<!-- results:end -->"
HEADER = """# Benchmarks

Written by `python benchmarks/run.py --out benchmarks/results.json --markdown docs/benchmarks.md`;
the section between the markers below is regenerated on every run.

"""


def _us(x: float) -> str:
    return f"{x:,.0f}" if x >= 100 else f"{x:.1f}"


def one_line(name: str, res: dict[str, Any]) -> str:
    m = res["methods"]
    parts = [f"{name:18s} train µs/step: xrnn {_us(m['xrnn']['train']['us_per_step'])}"]
    parts.append(f"generic {_us(m['xrnn_generic']['train']['us_per_step'])}")
    if "torch" in m:
        parts.append(
            f"torch {_us(m['torch']['train']['us_per_step'])} (xrnn/torch {res['train_ratio_torch']:.2f})"
        )
    parts.append(f"straightforward/xrnn {res['train_speedup_straightforward']:.2f}")
    if res.get("matmul_fraction") is not None:
        parts.append(f"matmuls/xrnn {res['matmul_fraction']:.2f}")
    return ", ".join(parts)


def target_line(t: dict[str, Any]) -> str:
    if t["value"] is None:
        return f"target {t['name']}: not run"
    verdict = "met" if t["met"] else f"MISSED by {t['miss']:.0%}"
    sign = "<=" if t["kind"] == "max" else ">="
    return f"target {t['name']}: {t['value']:.3f} (limit {sign} {t['limit']}) {verdict}"


def _table(rows: list[list[str]], header: list[str]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def _phase_table(doc: dict[str, Any], phase: str) -> str:
    rows = []
    for res in doc["cases"].values():
        m = res["methods"]
        x = m["xrnn"][phase]
        torch = m.get("torch", {}).get(phase)
        mm = m.get("matmuls", {}).get(phase)
        peak, step = res["square_ceiling_gflops"], res.get("step_ceiling_gflops")
        rows.append(
            [
                res["label"],
                res["case"]["dtype"],
                _us(x["us_per_step"]),
                _us(m["xrnn_generic"][phase]["us_per_step"]),
                _us(torch["us_per_step"]) if torch else "—",
                _us(m["straightforward"][phase]["us_per_step"]),
                f"{res[f'{phase}_ratio_torch']:.2f}" if torch else "—",
                f"{res[f'{phase}_ratio_torch_generic']:.2f}" if torch else "—",
                f"{res[f'{phase}_speedup_straightforward']:.2f}",
                f"{x['gflops']:.1f}",
                f"{x['gflops'] / peak:.0%}",
                f"{x['gflops'] / step:.0%}" if step else "—",
                f"{mm['seconds'] / x['seconds']:.2f}" if mm else "—",
            ]
        )
    header = [
        "case",
        "dtype",
        "xrnn µs/step",
        "xrnn generic µs/step",
        "torch µs/step",
        "straightforward µs/step",
        "xrnn / torch",
        "generic / torch",
        "straightforward / xrnn",
        "xrnn GFLOP/s",
        "of square-matmul peak",
        "of step-shape matmul",
        "matmuls alone / xrnn",
    ]
    return _table(rows, header)


def section(doc: dict[str, Any]) -> str:
    info = doc["machine"]
    ceil = doc["square_ceiling_gflops"]
    load0 = ", ".join(f"{x:.2f}" for x in info["load_average_start"])
    load1 = ", ".join(f"{x:.2f}" for x in info["load_average_end"])
    flags = ", ".join(info.get("cpu_flags", []))
    out = []
    if doc["quick"]:
        out.append("**Quick mode (tiny shapes): these numbers say nothing about speed.**\n")
    out.append("### Machine and settings\n")
    out.append(
        "\n".join(
            [
                f"- CPU: {info['cpu']}, {info['logical_cpus']} logical CPUs "
                f"({info.get('physical_cores') or '?'} physical cores), {flags}; "
                f"{info.get('memory_gib', '?')} GiB memory; {info['platform']}, Python {info['python']}",
                f"- NumPy {info['numpy']} ({info['numpy_blas']}); torch {info['torch']} "
                f"(oneDNN available: {info['torch_mkldnn']}); numba {info['numba'] or 'not installed'}; "
                f"xrnn at {info.get('xrnn_commit') or '?'}, fast path active: {info['xrnn_fast_path']}",
                f"- Threads: {info['threads']} for NumPy/OpenBLAS, Numba and torch ({info['thread_env']}, "
                f"`torch.get_num_threads()` = {info['torch_threads']})",
                f"- Load average (1, 5, 15 min) at start: {load0}; at end: {load1}; "
                f"the suite ran {info['wall_seconds']} s, "
                f"{doc['rounds']} alternating rounds per method, medians",
                f"- Ceilings: {doc['square_size']}x{doc['square_size']} matmul "
                f"{ceil['float32']:.0f} GFLOP/s (float32), {ceil['float64']:.0f} GFLOP/s (float64); "
                "the recurrent step's own matmul `(N, H) @ (H, G*H)` per case in the tables",
            ]
        )
    )
    out.append("\n### Targets\n")
    rows = []
    for t in doc["targets"]:
        if t["value"] is None:
            rows.append([t["name"], "not run", "", ""])
            continue
        sign = "≤" if t["kind"] == "max" else "≥"
        verdict = "met" if t["met"] else f"**missed by {t['miss']:.0%}**"
        rows.append([t["name"], f"{t['value']:.3f}", f"{sign} {t['limit']}", verdict])
    out.append(_table(rows, ["target", "measured", "limit", "result"]))
    out.append(
        "\n\nRatios are xrnn's time over the other's (below 1: xrnn is faster); "
        "*straightforward / xrnn* is a speed-up. Spreads are `max/min - 1` of the per-step values; "
        "a miss on a spread is in points."
    )
    out.append("\n### Training step (forward + backward)\n")
    out.append(_phase_table(doc, "train"))
    out.append("\n\n### Forward (keeping what backward needs: xrnn's cache, torch's autograd graph)\n")
    out.append(_phase_table(doc, "fwd"))
    sc = doc.get("scaling")
    if sc:
        s = sc["shape"]
        out.append(
            f"\n\n### Growth with T: LSTM training step, N={s['N']}, I={s['I']}, H={s['H']}, float32\n"
        )
        rows = [
            [
                f"{r['T']:,}",
                _us(r["xrnn"]["us_per_step"]),
                f"{r['xrnn']['cache_bytes_per_step']:,.0f}",
                _us(r["xrnn_generic"]["us_per_step"]),
                f"{r['xrnn_generic']['cache_bytes_per_step']:,.0f}",
            ]
            for r in sc["rows"]
        ]
        header = ["T", "µs/step", "cache bytes/step", "generic µs/step", "generic cache bytes/step"]
        out.append(_table(rows, header))
        out.append(
            f"\n\nSpread over T: time {sc['time_spread']:.1%}, cache {sc['cache_spread']:.1%} "
            f"(generic path: {sc['time_spread_generic']:.1%}, {sc['cache_spread_generic']:.1%})."
        )
    out.append("\n\n### Agreement checked before timing\n")
    rows = [
        [res["label"]]
        + [f"{res['agreement_max_rel_err'][k]:.1e}" for k in ("xrnn", "xrnn_generic", "straightforward")]
        for res in doc["cases"].values()
    ]
    out.append(_table(rows, ["case", "xrnn", "xrnn generic", "straightforward"]))
    out.append(
        "\n\nLargest relative error of outputs and gradients against torch's autograd "
        "(the classic case: against the straightforward implementation)."
    )
    return "\n".join(out) + "\n"


def write_markdown(path: Path, doc: dict[str, Any]) -> None:
    """Replace the results section of ``path`` (the whole file if it has no markers)."""
    body = f"{BEGIN}\n\n{section(doc)}\n{END}"
    text = path.read_text() if path.exists() else HEADER + f"{BEGIN}\n{END}\n"
    if BEGIN in text and END in text:
        text = text[: text.index(BEGIN)] + body + text[text.index(END) + len(END) :]
    else:
        text = text.rstrip() + "\n\n" + body + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
