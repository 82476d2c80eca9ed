"""Scaling of xrnn.distributed.train: a training step on 1 and 2 MPI processes, and the allreduce alone.

::

    python benchmarks/distributed.py --out benchmarks/results-distributed.json --markdown docs/benchmarks.md
    python benchmarks/distributed.py --quick --out /tmp/d.json --markdown /tmp/d.md    # tiny, seconds

Weak scaling: every process keeps ``--batch`` sequences (64), so 2 processes do twice the
work of one; the weak-scaling efficiency is ``t(1 process) / t(2 processes)`` (1.0 is
perfect). The same run times 1 process on the global batch of 2 (``2 * batch``) too, for
the speed-up at fixed global work ``t(1 process, 2 * batch) / t(2 processes)`` (2.0 is
perfect). Each process runs one thread (OpenBLAS, OpenMP, Numba), so 2 processes use 2
cores. The allreduce is timed alone, on the very buffer a step reduces (every gradient,
the weighted loss and the count), and reported as a share of the 2-process step.

The ceiling that the machine itself sets is measured too: two independent 1-process jobs
run at once (both cores busy, nothing exchanged between them), whose step against a
lone 1-process step bounds the efficiency of any data-parallel scheme here.

Each configuration is one ``mpiexec -n K python benchmarks/distributed.py --worker ...``
that times ``--steps`` steps of :func:`xrnn.distributed.train` (rank 0's callback stamps
each step; the Allreduce in every step keeps the ranks in step) after warm-up steps;
configurations alternate round by round and the medians are reported.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import shutil
import statistics
import subprocess
import sys
import time
from typing import Any

ONE_THREAD = {
    v: "1" for v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")
}
BEGIN = "<!-- distributed:begin (written by benchmarks/distributed.py; edit outside these markers) -->"
END = "<!-- distributed:end -->"
TARGET_EFFICIENCY = 1 / 1.15  # a 2-process step costs at most 1.15x a 1-process step


def cases(quick: bool) -> dict[str, dict[str, int]]:
    """The models: the demo's LSTM on the adding problem, and an LSTM with I=H=512 on random data."""
    if quick:
        return {"tiny LSTM": {"I": 2, "H": 4, "T": 5, "O": 1, "task": 0}}
    return {
        "demo LSTM (I=2, H=32, T=50)": {"I": 2, "H": 32, "T": 50, "O": 1, "task": 0},
        "LSTM I=H=512, T=50": {"I": 512, "H": 512, "T": 50, "O": 1, "task": 1},
    }


# --- the worker: run under mpiexec ----------------------------------------------------------


class PoolTask:
    """Random sequences drawn once (drawing 1.6M normals per step would be timed otherwise).

    The regression target is read at the last step, as in the adding problem.
    """

    sequence_axes = (1, 0)

    def __init__(self, T: int, N: int, I: int, O: int) -> None:  # noqa: E741
        import numpy as np

        import xrnn

        rng = np.random.default_rng(0)
        self.x = rng.standard_normal((T, N, I)).astype(np.float32)
        self.target = rng.standard_normal((N, O)).astype(np.float32)
        self.adding = xrnn.AddingTask(T, N)

    def batch(self, rng: Any) -> Any:
        return self.x, self.target

    def loss(self, z: Any, batch: Any) -> Any:
        return self.adding.loss(z, batch)

    def loss_count(self, batch: Any) -> int:
        return int(batch[1].size)


def worker(args: argparse.Namespace) -> None:
    import numpy as np
    from mpi4py import MPI

    import xrnn
    from xrnn.distributed import _mpi, train

    comm = MPI.COMM_WORLD
    c = json.loads(args.case)
    n = args.batch * comm.size
    if c["task"] == 0:
        task: Any = xrnn.AddingTask(c["T"], n)
    else:
        task = PoolTask(c["T"], n, c["I"], c["O"])
    model = xrnn.SequenceModel("lstm", c["I"], c["H"], c["O"], seed=0)
    stamps: list[float] = []
    train(model, task, xrnn.Adam(1e-3), steps=args.warmup, clip=1.0)  # compiles, fills caches
    comm.Barrier()
    stamps.append(time.perf_counter())
    train(
        model,
        task,
        xrnn.Adam(1e-3),
        steps=args.steps,
        clip=1.0,
        callback=lambda s, v: stamps.append(time.perf_counter()),
    )
    steps = [b - a for a, b in zip(stamps[1:-1], stamps[2:])] if comm.rank == 0 else []

    size = sum(int(np.prod(s)) for s in model.param_shapes().values()) + 2
    flat = np.ones(size, dtype=np.float32)
    reduce_times = []
    for _ in range(args.reduce_reps):
        comm.Barrier()
        t0 = time.perf_counter()
        _mpi.allreduce_sum(comm, flat, xp=model.xp)
        reduce_times.append(time.perf_counter() - t0)
    reduce_times = comm.reduce(reduce_times, op=lambda a, b: [max(x, y) for x, y in zip(a, b)], root=0)
    if comm.rank == 0:
        print(json.dumps({"step": statistics.median(steps), "fastest": min(steps),
                          "allreduce": statistics.median(reduce_times), "params": size - 2}))  # fmt: skip


# --- the driver -----------------------------------------------------------------------------


def mpiexec() -> str:
    found = pathlib.Path(sys.executable).parent / "mpiexec"
    path = str(found) if found.exists() else shutil.which("mpiexec")
    if path is None:
        raise SystemExit("no mpiexec: pip install 'xrnn[distributed]'")
    return path


def run_config(
    case: dict[str, int], processes: int, batch: int, args: argparse.Namespace, *, side_by_side: bool = False
) -> dict[str, float]:
    """One ``mpiexec -n processes`` run; ``side_by_side``: two 1-process jobs at once (their mean)."""
    cmd = [mpiexec(), "-n", str(processes), sys.executable, __file__, "--worker", "--case", json.dumps(case)]
    cmd += ["--batch", str(batch), "--steps", str(args.steps), "--warmup", str(args.warmup)]
    cmd += ["--reduce-reps", str(args.reduce_reps)]
    env = os.environ | ONE_THREAD
    jobs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)]
    if side_by_side:
        jobs.append(subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env))
    results = []
    for job in jobs:
        stdout, stderr = job.communicate()
        if job.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed:\n{stderr[-3000:]}")
        results.append(json.loads(stdout.strip().splitlines()[-1]))
    return {k: statistics.mean(r[k] for r in results) for k in results[0]}


def measure(args: argparse.Namespace) -> dict[str, Any]:
    configs = {
        "1 process": (1, args.batch),
        "1 process, 2x batch": (1, 2 * args.batch),
        "2 processes": (2, args.batch),
        "2 separate 1-process jobs": (1, args.batch),  # the ceiling: both cores busy, no MPI between them
    }
    out: dict[str, Any] = {}
    for name, case in cases(args.quick).items():
        steps = args.steps if case["H"] < 512 else max(3, args.steps // 20)
        sub = argparse.Namespace(**{**vars(args), "steps": steps})
        runs: dict[str, list[dict[str, float]]] = {k: [] for k in configs}
        for _ in range(args.rounds):
            for label, (k, b) in configs.items():
                runs[label].append(run_config(case, k, b, sub, side_by_side=label.startswith("2 separate")))
        med = {label: statistics.median(r["step"] for r in rs) for label, rs in runs.items()}
        fastest = {label: min(r["fastest"] for r in rs) for label, rs in runs.items()}
        reduce = statistics.median(r["allreduce"] for r in runs["2 processes"])
        out[name] = {
            "params": runs["1 process"][0]["params"],
            "steps_timed": steps,
            "rounds": {label: [r["step"] for r in rs] for label, rs in runs.items()},
            "step_1": med["1 process"],
            "step_1_double": med["1 process, 2x batch"],
            "step_2": med["2 processes"],
            "step_1_beside_another": med["2 separate 1-process jobs"],
            "ceiling": med["1 process"] / med["2 separate 1-process jobs"],
            "allreduce_2": reduce,
            "fastest_1": fastest["1 process"],
            "fastest_2": fastest["2 processes"],
            "weak_efficiency": med["1 process"] / med["2 processes"],
            "weak_efficiency_fastest": fastest["1 process"] / fastest["2 processes"],
            "speedup_fixed_work": med["1 process, 2x batch"] / med["2 processes"],
            "allreduce_share": reduce / med["2 processes"],
        }
    return out


def markdown(doc: dict[str, Any]) -> str:
    m = doc["machine"]
    lines = [
        "## Results: several processes (MPI)",
        "",
        f"`python benchmarks/distributed.py`: {m['cpus']} CPUs ({m['processor']}), {m['mpi']}, "
        f"one thread per process, batch {doc['batch']} per process, float32, Adam, clipping; "
        f"{doc['rounds']} alternating rounds; load average {m['load_before']} before, "
        f"{m['load_after']} after. Times per training step: medians, and in brackets the fastest "
        "step of all rounds (the least disturbed by other work). The ceiling is the efficiency of two "
        "independent 1-process jobs run at once (each core busy, nothing exchanged): what the machine "
        "allows any data-parallel scheme.",
        "",
        "| model | parameters | 1 process | 2 processes | weak-scaling efficiency "
        "| two 1-process jobs at once | ceiling | 1 process, 2x batch | speed-up at fixed work "
        "| allreduce alone | allreduce share |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in doc["cases"].items():
        cells = [
            name,
            f"{r['params']:,}",
            f"{r['step_1'] * 1e3:.2f} ms ({r['fastest_1'] * 1e3:.2f})",
            f"{r['step_2'] * 1e3:.2f} ms ({r['fastest_2'] * 1e3:.2f})",
            f"{r['weak_efficiency']:.2f} ({r['weak_efficiency_fastest']:.2f})",
            f"{r['step_1_beside_another'] * 1e3:.2f} ms",
            f"{r['ceiling']:.2f}",
            f"{r['step_1_double'] * 1e3:.2f} ms",
            f"{r['speedup_fixed_work']:.2f}",
            f"{r['allreduce_2'] * 1e3:.3f} ms",
            f"{r['allreduce_share']:.1%}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Target: a 2-process step at most 1.15x a 1-process step (efficiency >= 0.87):", ""]
    for name, r in doc["cases"].items():
        held = {k: r[k] >= TARGET_EFFICIENCY for k in ("weak_efficiency", "weak_efficiency_fastest")}
        verdict = {(True, True): "met", (False, True): "met by the fastest steps, not by the medians"}.get(
            (held["weak_efficiency"], held["weak_efficiency_fastest"]), "not met"
        )
        lines.append(
            f"- {name}: {r['step_2'] / r['step_1']:.3f}x (medians), efficiency {r['weak_efficiency']:.2f} "
            f"against the machine's ceiling {r['ceiling']:.2f}: {verdict}"
        )
    return "\n".join(lines) + "\n"


def write_markdown(path: pathlib.Path, doc: dict[str, Any]) -> None:
    """Replace the section between this script's markers in ``path`` (append it if absent)."""
    body = f"{BEGIN}\n\n{markdown(doc)}\n{END}"
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    if BEGIN in text and END in text:
        text = text[: text.index(BEGIN)] + body + text[text.index(END) + len(END) :]
    else:
        text = text.rstrip() + "\n\n" + body + "\n"
    path.write_text(text)


def main(argv: list[str] | None = None) -> dict[str, Any] | None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=pathlib.Path, help="JSON results")
    p.add_argument(
        "--markdown", type=pathlib.Path, help="markdown file whose distributed section is replaced"
    )
    p.add_argument("--quick", action="store_true", help="tiny model, one round: a smoke test")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--steps", type=int, default=100, help="timed steps (a twentieth for H=512)")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--batch", type=int, default=64, help="sequences per process")
    p.add_argument("--reduce-reps", type=int, default=50)
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--case", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        worker(args)
        return None
    if args.quick:
        args.rounds, args.steps, args.warmup, args.reduce_reps = 1, 3, 1, 3
    from mpi4py import MPI

    load_before = os.getloadavg()[0]
    results = measure(args)
    doc = {
        "quick": args.quick,
        "batch": args.batch,
        "rounds": args.rounds,
        "machine": {
            "cpus": os.cpu_count(),
            "processor": platform.processor() or platform.machine(),
            "mpi": " ".join(MPI.Get_library_version().splitlines()[0].split()),
            "load_before": round(load_before, 2),
            "load_after": round(os.getloadavg()[0], 2),
        },
        "cases": results,
    }
    if args.out:
        args.out.write_text(json.dumps(doc, indent=1) + "\n")
    if args.markdown:
        write_markdown(args.markdown, doc)
    print(markdown(doc))
    return doc


if __name__ == "__main__":
    main()
