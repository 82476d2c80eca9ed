"""xrnn inside JAX and PyTorch programs: a training step's forward + backward through ``layer.apply``.

::

    python benchmarks/interop.py --threads 1 --markdown docs/benchmarks.md \
        --out benchmarks/results-interop-threads1.json
    python benchmarks/interop.py --quick          # tiny shapes, seconds; prints the table

An LSTM at T=100, N=32, I=H=128, float32, gradient of ``sum(y * dy)`` with respect to the
parameters and ``x``, five ways:

* ``xrnn JAX``: ``jax.jit(jax.value_and_grad(...))`` of ``layer.apply``: one XLA program,
  the forward a ``lax.scan`` and the backward xrnn's own (``jax.custom_vjp``);
* ``lax.scan + jax.grad``: the plain JAX way, an LSTM step written in ``jax.numpy``, run by
  ``lax.scan`` and differentiated by ``jax.grad``, jitted as one program;
* ``xrnn NumPy``: ``layer.forward`` and ``layer.backward`` on NumPy (the Numba fast path);
* ``xrnn torch``: ``layer.apply`` on tensors, then ``loss.backward()`` (xrnn's backward in a
  ``torch.autograd.Function``);
* ``torch.nn.LSTM``: the same step with torch's own module and autograd.

The cases alternate round by round in one process and the table gives medians: the machine
is shared, and this spreads its noise over all of them alike. ``--threads`` sets the threads
of NumPy's BLAS, Numba and torch (and, at 1, of XLA's CPU pool). Every case is compiled and
run once before timing, and its gradients are checked against xrnn NumPy's first.
"""

from __future__ import annotations

import argparse
import os
import sys


def _threads_from_argv(argv: list[str]) -> int:
    for j, arg in enumerate(argv):
        if arg == "--threads" and j + 1 < len(argv):
            return int(argv[j + 1])
    return os.cpu_count() or 1


THREADS = _threads_from_argv(sys.argv)
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[_var] = str(THREADS)
if THREADS == 1:  # XLA's CPU thread pool too, before JAX starts
    os.environ["XLA_FLAGS"] = (
        os.environ.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
    )

import json  # noqa: E402
import platform  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from settle import alternate, replace_tables  # noqa: E402

import xrnn  # noqa: E402

SECTION = "## Inside JAX and PyTorch programs"


def markers(threads: int) -> tuple[str, str]:
    """The lines around the generated table of a run with ``threads`` threads."""
    return f"<!-- interop:start threads={threads} -->", f"<!-- interop:end threads={threads} -->"


def lax_scan_lstm(params: dict[str, Any], x: Any) -> Any:
    """A plain JAX LSTM (torch's gate order), the loop a ``lax.scan``: ``y (T, N, H)``."""
    w_ih, w_hh = params["weight_ih_l0"], params["weight_hh_l0"]
    b = params["bias_ih_l0"] + params["bias_hh_l0"]
    hidden = w_hh.shape[1]
    gx = x @ w_ih.T + b  # (T, N, 4H)

    def step(carry: Any, gx_t: Any) -> Any:
        h, c = carry
        z = gx_t + h @ w_hh.T
        i, f = jax.nn.sigmoid(z[:, :hidden]), jax.nn.sigmoid(z[:, hidden : 2 * hidden])
        g, o = jnp.tanh(z[:, 2 * hidden : 3 * hidden]), jax.nn.sigmoid(z[:, 3 * hidden :])
        c = f * c + i * g
        h = o * jnp.tanh(c)
        return (h, c), h

    zeros = jnp.zeros((x.shape[1], hidden), x.dtype)
    _, y = jax.lax.scan(step, (zeros, zeros), gx)
    return y


def cases(t: int, n: int, size: int) -> tuple[dict[str, Callable[[], Any]], dict[str, Any]]:
    """Each case as a function running one forward + backward and returning the gradients."""
    layer = xrnn.LSTM(size, size, xp="numpy", seed=0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((t, n, size)).astype(np.float32)
    dy = rng.standard_normal((t, n, size)).astype(np.float32)

    def xrnn_numpy() -> Any:
        _, _, cache = layer.forward(x)
        _, _, grads = layer.backward(cache, dy)
        return grads

    params_j = {k: jnp.asarray(v) for k, v in layer.params.items()}
    x_j, dy_j = jnp.asarray(x), jnp.asarray(dy)
    xrnn_grad = jax.jit(jax.grad(lambda p, x: jnp.sum(layer.apply(p, x)[0] * dy_j), argnums=(0, 1)))
    scan_grad = jax.jit(jax.grad(lambda p, x: jnp.sum(lax_scan_lstm(p, x) * dy_j), argnums=(0, 1)))

    params_t = {k: torch.tensor(v, requires_grad=True) for k, v in layer.params.items()}
    x_t, dy_t = torch.tensor(x, requires_grad=True), torch.tensor(dy)

    def xrnn_torch() -> Any:
        for p in (*params_t.values(), x_t):
            p.grad = None
        y, _ = layer.apply(params_t, x_t)
        torch.sum(y * dy_t).backward()
        return {k: p.grad for k, p in params_t.items()}

    module = torch.nn.LSTM(size, size)
    module.load_state_dict({k: torch.tensor(v) for k, v in layer.params.items()})

    def torch_nn() -> Any:
        module.zero_grad()
        x_t.grad = None
        y, _ = module(x_t)
        torch.sum(y * dy_t).backward()
        return {k: p.grad for k, p in module.named_parameters()}

    runs = {
        "xrnn JAX (jit, custom_vjp)": lambda: jax.block_until_ready(xrnn_grad(params_j, x_j))[0],
        "lax.scan + jax.grad (jit)": lambda: jax.block_until_ready(scan_grad(params_j, x_j))[0],
        "xrnn NumPy (Numba)": xrnn_numpy,
        "xrnn torch (autograd.Function)": xrnn_torch,
        "torch.nn.LSTM (autograd)": torch_nn,
    }
    return runs, xrnn_numpy()


def measure(t: int, n: int, size: int, rounds: int) -> dict[str, Any]:
    """Median seconds of each case, alternating them round by round, and their agreement."""
    runs, reference = cases(t, n, size)
    return {"shape": {"T": t, "N": n, "I": size, "H": size}, **alternate(runs, reference, rounds)}


def markdown(result: dict[str, Any]) -> str:
    """The section of ``docs/benchmarks.md`` for ``result``."""
    s, med = result["shape"], result["median_seconds"]
    jax_x, scan, numpy_x = (med[k] for k in list(med)[:3])
    torch_x, torch_nn = med["xrnn torch (autograd.Function)"], med["torch.nn.LSTM (autograd)"]
    ref = {
        "xrnn JAX (jit, custom_vjp)": ("xrnn NumPy", numpy_x),
        "lax.scan + jax.grad (jit)": ("xrnn NumPy", numpy_x),
        "xrnn NumPy (Numba)": ("xrnn NumPy", numpy_x),
        "xrnn torch (autograd.Function)": ("torch.nn.LSTM", torch_nn),
        "torch.nn.LSTM (autograd)": ("torch.nn.LSTM", torch_nn),
    }
    m = result["machine"]
    start, end = markers(m["threads"])
    lines = [
        start,
        f"LSTM training step (forward + backward, gradients of the parameters and x), T={s['T']}, "
        f"N={s['N']}, I=H={s['I']}, float32; median of {result['rounds']} alternating rounds on "
        f"{m['cpu']} (threads: {m['threads']}; JAX {m['jax']}, torch {m['torch']}, NumPy {m['numpy']}). "
        "The machine is shared with other jobs: ratios between cases of one run are steadier than "
        "the milliseconds.",
        "",
        "| case | ms | ratio | max rel. error of the gradients vs xrnn NumPy |",
        "|---|---:|---:|---:|",
    ]
    for name, seconds in med.items():
        against, base = ref[name]
        err = result["agreement_max_rel_err"][name]
        lines.append(f"| {name} | {seconds * 1e3:.1f} | {seconds / base:.2f}x {against} | {err:.1e} |")
    holds = {
        "xrnn JAX within 2x of xrnn NumPy": jax_x <= 2 * numpy_x,
        "xrnn JAX no slower than lax.scan + jax.grad": jax_x <= scan,
    }
    lines += ["", "Targets:", ""]
    lines += [f"- {k}: {'holds' if v else 'does not hold'}" for k, v in holds.items()]
    lines += [
        f"- (not a target) xrnn torch / torch.nn.LSTM: {torch_x / torch_nn:.2f}x",
        f"- (not a target) xrnn JAX / lax.scan + jax.grad: {jax_x / scan:.2f}x",
        end,
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny shapes, two rounds")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--threads", type=int, default=THREADS)
    parser.add_argument("--out", type=Path, help="JSON results")
    parser.add_argument("--markdown", type=Path, help="replace the interop section of this file")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    t, n, size = (6, 3, 5) if args.quick else (100, 32, 128)
    result = measure(t, n, size, 2 if args.quick else args.rounds)
    result["rounds"] = 2 if args.quick else args.rounds
    result["machine"] = {
        "cpu": platform.processor() or platform.machine(),
        "threads": args.threads,
        "jax": jax.__version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
    }
    text = markdown(result)
    print(text)
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n")
    if args.markdown:
        replace_tables(args.markdown, SECTION, markers(args.threads), text)


if __name__ == "__main__":
    main()
