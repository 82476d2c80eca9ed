"""Peak memory and time of an LSTM training step on long sequences, with and without ``checkpoint``.

Each measurement runs in a process of its own, since the peak resident memory
(``ru_maxrss``) is a property of the whole process and compiled code allocates outside
Python's tracing::

    python benchmarks/long_sequences.py --markdown docs/benchmarks.md
    python benchmarks/long_sequences.py --steps 1000 10000        # a subset

Memory is reported above what the process held once the inputs ``x`` and ``dy`` existed
and the kernels were compiled (a warm-up call at T=16); ``outputs`` is the size of ``y`` and
``dx``, which any method must return (below the resolution of ``ru_maxrss``, the memory beyond
the outputs shows as 0). Times are the fastest of three training steps (one at T=100,000).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from pathlib import Path

N, IN, H = 16, 128, 128
START, END = "<!-- long-sequences:start -->", "<!-- long-sequences:end -->"


def child(t_steps: int, checkpoint: str) -> None:
    import resource
    import time

    import numpy as np

    import xrnn

    def rss_kib() -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024

    option = None if checkpoint == "none" else ("sqrt" if checkpoint == "sqrt" else int(checkpoint))
    layer = xrnn.LSTM(IN, H, seed=0)
    rng = np.random.default_rng(0)
    small = rng.standard_normal((16, N, IN)).astype(np.float32)
    _, _, cache = layer.forward(small, checkpoint=option)
    layer.backward(cache, np.ones((16, N, H), np.float32))
    del cache
    xrnn.backends.numba.release()
    x = rng.standard_normal((t_steps, N, IN)).astype(np.float32)
    dy = rng.standard_normal((t_steps, N, H)).astype(np.float32)
    before = rss_kib()
    seconds = float("inf")
    for _ in range(3 if t_steps <= 10000 else 1):  # the fastest of a few: the machine may be shared
        start = time.perf_counter()
        y, _, cache = layer.forward(x, checkpoint=option)
        dx, _, grads = layer.backward(cache, dy)
        seconds = min(seconds, time.perf_counter() - start)
        outputs = (y.nbytes + dx.nbytes) / 2**20
        del y, dx, cache, grads  # before the next run, which would hold them twice
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    print(json.dumps({"peak_mib": (peak - before) / 1024, "seconds": seconds, "outputs_mib": outputs}))


def measure(t_steps: int, checkpoint: str) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, __file__, "--child", str(t_steps), checkpoint],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def table(rows: list[tuple[int, dict[str, float], dict[str, float]]]) -> str:
    lines = [
        f"LSTM, N={N}, I=H={H}, float32, one training step (forward + backward), NumPy "
        f"{'with Numba' if _numba() else 'generic path'}; peak resident memory above the inputs, "
        "each run in its own process.",
        "",
        "| T | outputs y, dx (MiB) | peak, None (MiB) | peak, sqrt (MiB) | sqrt / None | "
        "beyond outputs, sqrt (MiB) | time, None (s) | time, sqrt (s) | time ratio |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for t_steps, full, sqrt in rows:
        ratio = f"{sqrt['peak_mib'] / full['peak_mib']:.2f}" if full else "-"
        t_ratio = f"{sqrt['seconds'] / full['seconds']:.2f}" if full else "-"
        full_peak = f"{full['peak_mib']:.0f}" if full else "not run"
        full_time = f"{full['seconds']:.2f}" if full else "-"
        lines.append(
            f"| {t_steps:,} | {sqrt['outputs_mib']:.0f} | {full_peak} | {sqrt['peak_mib']:.0f} | {ratio} | "
            f"{max(0.0, sqrt['peak_mib'] - sqrt['outputs_mib']):.0f} | {full_time} | {sqrt['seconds']:.2f} "
            f"| {t_ratio} |"
        )
    return "\n".join(lines)


def _numba() -> bool:
    try:
        import numba  # noqa: F401
    except ImportError:
        return False
    return os.environ.get("XRNN_NUMBA") != "0"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, nargs="+", default=[1000, 10000, 100000])
    parser.add_argument(
        "--skip-full-above", type=int, default=10000, help="largest T run with checkpoint=None"
    )
    parser.add_argument("--markdown", type=Path, help="file whose long-sequences section is rewritten")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(int(args.child[0]), args.child[1])
        return
    rows = []
    for t_steps in args.steps:
        full = measure(t_steps, "none") if t_steps <= args.skip_full_above else {}
        rows.append((t_steps, full, measure(t_steps, "sqrt")))
        print(table(rows[-1:]).splitlines()[-1], flush=True)
    text = table(rows)
    print(text)
    if args.markdown:
        page = args.markdown.read_text()
        section = f"{START}\n{text}\n{END}"
        if START in page:
            page = re.sub(re.escape(START) + ".*?" + re.escape(END), lambda _: section, page, flags=re.S)
        else:
            page = page.rstrip() + "\n\n## Long sequences\n\n" + section + "\n"
        args.markdown.write_text(page)


if __name__ == "__main__":
    main()
