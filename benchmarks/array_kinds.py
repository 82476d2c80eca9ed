"""Every array kind on xrnn's compiled kernels: one LSTM training step per kind, against torch and JAX.

::

    python benchmarks/array_kinds.py --threads 1 --markdown docs/benchmarks.md \
        --out benchmarks/results-array-kinds-threads1.json
    python benchmarks/array_kinds.py --quick      # both thread counts, 3 rounds: under 3 minutes
    python benchmarks/array_kinds.py --tiny       # tiny shapes, seconds: checks that it runs

A float32 LSTM training step (forward, then the gradients of ``sum(y * dy)`` with respect to
the parameters and ``x``) at T=100, N=64, I=H=256 and at T=50, N=64, I=32, H=64, run by:

* ``torch.nn.LSTM``: torch's module and autograd (the reference of the torch rows);
* ``xrnn NumPy``: ``layer.forward`` / ``layer.backward`` on NumPy arrays (the Numba loops; the
  reference of the eager rows);
* ``xrnn torch eager``: the same calls on torch CPU tensors (the bridge to the Numba loops);
* ``xrnn.torch.LSTM``: the torch module under autograd (``loss.backward()``);
* ``xrnn JAX eager``: ``layer.forward`` / ``layer.backward`` on JAX CPU arrays (the bridge);
* ``xrnn JAX jit``: ``jax.jit(jax.grad(...))`` of ``layer.apply`` (a ``custom_vjp`` over
  ``lax.scan``);
* ``xrnn JAX jit, callback``: a prototype (not in the library) of the same ``custom_vjp`` whose
  forward and backward are ``jax.pure_callback`` calls of the NumPy layer (the compiled loops);
* ``lax.scan + jax.grad``: a plain JAX LSTM under ``jax.jit`` (the reference of the jit rows);
* ``NumPy matmuls alone``: the step's matrix products and nothing else, in NumPy (the floor of
  every kind that runs its products on NumPy's BLAS): the projection, ``T`` products of the
  step's shape forward and ``T`` backward, and the products of ``dW_ih``, ``dW_hh`` and ``dx``.

The kinds alternate round by round in one process, and the table gives medians; each sample
repeats its call for at least 0.05 s after a pause of 0.25 s in which the thread pools of the
kind before go idle (``benchmarks/settle.py``).
``--threads`` sets the threads of NumPy's BLAS, Numba, torch and (at 1) XLA. ``--quick`` runs
the real shapes with 3 rounds at 1 and then at 2 threads, each in a process of its own (XLA
reads its thread count once, at start), and prints (or, with ``--markdown``, writes) the
tables of both: the command to re-measure on a quiet machine.
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
# isort: off
from interop import THREADS, lax_scan_lstm  # noqa: E402  (sets the thread variables first)

# isort: on

import json  # noqa: E402
import platform  # noqa: E402
import subprocess  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from settle import alternate, replace_tables  # noqa: E402

import xrnn  # noqa: E402
import xrnn.torch  # noqa: E402

SECTION = "## Every array kind on the compiled kernels"
REFERENCE = {
    "torch.nn.LSTM": "torch.nn.LSTM",
    "xrnn.torch.LSTM (autograd)": "torch.nn.LSTM",
    "xrnn NumPy": "xrnn NumPy",
    "xrnn torch eager": "xrnn NumPy",
    "xrnn JAX eager": "xrnn NumPy",
    "lax.scan + jax.grad (jit)": "lax.scan + jax.grad (jit)",
    "xrnn JAX jit (lax.scan)": "lax.scan + jax.grad (jit)",
    "xrnn JAX jit (callback prototype)": "lax.scan + jax.grad (jit)",
    "NumPy matmuls alone": "torch.nn.LSTM",
}


def callback_apply(layer: Any) -> Callable[..., Any]:
    """``apply`` as a ``custom_vjp`` over ``jax.pure_callback`` calls of the NumPy layer (a prototype).

    The forward callback keeps the NumPy cache in a dictionary, the backward callback takes
    it out: enough to time the compiled loops inside a jitted program.
    """
    kept: dict[int, Any] = {}

    def forward_host(params: Any, x: Any) -> Any:
        y, _, cache = layer._forward(
            {k: np.asarray(v) for k, v in params.items()}, np.asarray(x), None, None, checkpoint=None
        )
        kept[0] = cache
        return np.asarray(y)

    def backward_host(dy: Any, y: Any) -> Any:  # y: only so that the forward callback runs first
        dx, _, grads = layer._backward(kept.pop(0), np.asarray(dy), None)
        return {k: np.asarray(v) for k, v in grads.items()}, np.asarray(dx)

    @jax.custom_vjp
    def run(params: Any, x: Any) -> Any:
        return run_fwd(params, x)[0]

    def run_fwd(params: Any, x: Any) -> Any:
        t, n, _ = x.shape
        shape = jax.ShapeDtypeStruct((t, n, layer.hidden_size), x.dtype)
        y = jax.pure_callback(forward_host, shape, params, x)
        return y, (params, x, y)

    def run_bwd(res: Any, dy: Any) -> Any:
        params, x, y = res
        shapes = ({k: jax.ShapeDtypeStruct(v.shape, v.dtype) for k, v in params.items()},)
        shapes += (jax.ShapeDtypeStruct(x.shape, x.dtype),)
        return jax.pure_callback(backward_host, shapes, dy, y)

    run.defvjp(run_fwd, run_bwd)
    return run


def kinds(t: int, n: int, i: int, h: int) -> tuple[dict[str, Callable[[], Any]], dict[str, Any]]:
    """Each kind as a function of one training step returning the gradients of the parameters."""
    layer = xrnn.LSTM(i, h, xp="numpy", seed=0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((t, n, i)).astype(np.float32)
    dy = rng.standard_normal((t, n, h)).astype(np.float32)

    def eager(layer: Any, x: Any, dy: Any) -> Callable[[], Any]:
        def step() -> Any:
            _, _, cache = layer.forward(x)
            return layer.backward(cache, dy)[2]

        return step

    torch_layer = xrnn.LSTM(i, h, xp="torch", seed=0)
    jax_layer = xrnn.LSTM(i, h, xp="jax", seed=0)
    x_t, dy_t = torch.tensor(x, requires_grad=True), torch.tensor(dy)
    reference = torch.nn.LSTM(i, h)
    reference.load_state_dict({k: torch.tensor(v) for k, v in layer.params.items()})
    module = xrnn.torch.LSTM(i, h)
    module.load_state_dict(reference.state_dict())

    def autograd(m: torch.nn.Module) -> Callable[[], Any]:
        def step() -> Any:
            m.zero_grad()
            x_t.grad = None
            torch.sum(m(x_t)[0] * dy_t).backward()
            return {k: p.grad for k, p in m.named_parameters()}

        return step

    params_j = {k: jnp.asarray(v) for k, v in layer.params.items()}
    x_j, dy_j = jnp.asarray(x), jnp.asarray(dy)
    through_apply = jax.jit(jax.grad(lambda p, x: jnp.sum(layer.apply(p, x)[0] * dy_j), argnums=(0, 1)))
    scan = jax.jit(jax.grad(lambda p, x: jnp.sum(lax_scan_lstm(p, x) * dy_j), argnums=(0, 1)))
    by_callback = callback_apply(layer)
    callback = jax.jit(jax.grad(lambda p, x: jnp.sum(by_callback(p, x) * dy_j), argnums=(0, 1)))
    w_ih, w_hh = (np.asarray(layer.params[k]) for k in ("weight_ih_l0", "weight_hh_l0"))
    w_ih_t, w_hh_t, flat = np.ascontiguousarray(w_ih.T), np.ascontiguousarray(w_hh.T), x.reshape(t * n, i)
    gates, states = np.empty((t * n, 4 * h), np.float32), rng.standard_normal((t * n, h)).astype(np.float32)
    step, d_state = np.empty((n, 4 * h), np.float32), np.empty((n, h), np.float32)
    dw_ih, dw_hh, dx = np.empty((4 * h, i), np.float32), np.empty((4 * h, h), np.float32), np.empty_like(flat)

    def floor() -> None:
        np.matmul(flat, w_ih_t, out=gates)
        for k in range(t):
            np.matmul(states[k * n : (k + 1) * n], w_hh_t, out=step)
        for k in range(t):
            np.matmul(gates[k * n : (k + 1) * n], w_hh, out=d_state)
        np.matmul(gates.T, flat, out=dw_ih)
        np.matmul(gates.T, states, out=dw_hh)
        np.matmul(gates, w_ih, out=dx)

    runs = {
        "torch.nn.LSTM": autograd(reference),
        "xrnn.torch.LSTM (autograd)": autograd(module),
        "xrnn NumPy": eager(layer, x, dy),
        "xrnn torch eager": eager(torch_layer, torch.tensor(x), torch.tensor(dy)),
        "xrnn JAX eager": eager(jax_layer, x_j, dy_j),
        "lax.scan + jax.grad (jit)": lambda: jax.block_until_ready(scan(params_j, x_j))[0],
        "xrnn JAX jit (lax.scan)": lambda: jax.block_until_ready(through_apply(params_j, x_j))[0],
        "xrnn JAX jit (callback prototype)": lambda: jax.block_until_ready(callback(params_j, x_j))[0],
        "NumPy matmuls alone": floor,
    }
    return runs, eager(layer, x, dy)()


def measure(t: int, n: int, i: int, h: int, rounds: int) -> dict[str, Any]:
    """Median seconds of each kind, alternating round by round, and their agreement with NumPy."""
    runs, expected = kinds(t, n, i, h)
    return {"shape": {"T": t, "N": n, "I": i, "H": h}, **alternate(runs, expected, rounds)}


def markers(threads: int) -> tuple[str, str]:
    """The lines around the generated tables of a run with ``threads`` threads."""
    return f"<!-- array-kinds:start threads={threads} -->", f"<!-- array-kinds:end threads={threads} -->"


def markdown(results: list[dict[str, Any]], machine: dict[str, Any], rounds: int) -> str:
    """The tables of one run (one per shape), between its markers."""
    start, end = markers(machine["threads"])
    lines = [
        start,
        f"Threads: {machine['threads']}; median of {rounds} alternating rounds (each sample at least "
        f"0.05 s of calls, after a 0.25 s pause: benchmarks/settle.py) on {machine['cpu']} "
        f"(JAX {machine['jax']}, torch {machine['torch']}, NumPy {machine['numpy']}); load average "
        f"before the run {machine['load_before']}, after {machine['load_after']}. Provisional: the "
        "machine is shared with other jobs.",
    ]
    for result in results:
        s, med = result["shape"], result["median_seconds"]
        lines += [
            "",
            f"LSTM float32 training step, T={s['T']}, N={s['N']}, I={s['I']}, H={s['H']}:",
            "",
            "| kind | ms | ratio | against | max rel. error vs xrnn NumPy |",
            "|---|---:|---:|---|---:|",
        ]
        for name, sec in med.items():
            against = REFERENCE[name]
            err = result["agreement_max_rel_err"][name]
            shown = "—" if err != err else f"{err:.1e}"  # NaN: the floor computes no gradients
            lines.append(f"| {name} | {sec * 1e3:.2f} | {sec / med[against]:.2f}x | {against} | {shown} |")
    lines.append(end)
    return "\n".join(lines)


def load() -> str:
    """The 1, 5 and 15 minute load averages."""
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 and 2 threads, 3 rounds each")
    parser.add_argument("--tiny", action="store_true", help="tiny shapes, two rounds")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--threads", type=int, default=THREADS)
    parser.add_argument("--out", type=Path, help="JSON results (with --quick: one file per thread count)")
    parser.add_argument("--markdown", type=Path, help="replace this run's tables in this file")
    args = parser.parse_args()
    if args.quick:
        quick(args.out, args.markdown)
        return
    torch.set_num_threads(args.threads)
    rounds = 2 if args.tiny else args.rounds
    shapes = [(4, 3, 5, 6)] if args.tiny else [(100, 64, 256, 256), (50, 64, 32, 64)]
    machine = {"cpu": platform.processor() or platform.machine(), "threads": args.threads}
    machine["load_before"] = load()
    results = [measure(*shape, rounds) for shape in shapes]
    machine |= {"load_after": load(), "jax": jax.__version__, "torch": torch.__version__}
    machine["numpy"] = np.__version__
    text = markdown(results, machine, rounds)
    print(text)
    if args.out:
        doc = {"machine": machine, "rounds": rounds, "cases": results}
        args.out.write_text(json.dumps(doc, indent=1) + "\n")
    if args.markdown:
        replace_tables(args.markdown, SECTION, markers(args.threads), text)


def quick(out: Path | None, md: Path | None) -> None:
    """Both thread counts, 3 rounds each, one process each (XLA's threads are fixed at its start)."""
    for threads in (1, 2):
        cmd = [sys.executable, __file__, "--threads", str(threads), "--rounds", "3"]
        if out is not None:
            cmd += ["--out", str(out.with_name(f"{out.stem}-threads{threads}{out.suffix}"))]
        if md is not None:
            cmd += ["--markdown", str(md)]
        subprocess.run(cmd, check=True)


if __name__ == "__main__":
    main()
