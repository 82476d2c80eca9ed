"""What a cell is: the pointwise maths of one time step, forward and backward, and nothing else."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from .._util.typing import Array, State

__all__ = ["Cell", "LateMatmul", "RowStep", "ScalarStep"]


class ScalarStep(NamedTuple):
    """A cell's step for one element ``(b, j)`` of the ``(N, H)`` step, for compiled kernels.

    Plain Python functions of scalars, with no import of a compiler: Numba compiles them
    for the CPU (:mod:`xrnn.backends.numba`) and numba-cuda as CUDA device functions
    (:mod:`xrnn.backends.cuda`). Each cell module builds its pair from the activation
    primitives of a target, ``scalar_step(sigmoid, tanh)``, so the primitives may differ
    per target and the cell's maths may not. The first argument of both is ``one``, 1 in
    the dtype of the arrays (a literal ``1.0`` would turn float32 arithmetic into float64);
    gate pre-activations come in as their input and recurrent parts (biases included), in
    the cell's gate order.

    Attributes
    ----------
    forward : callable
        ``forward(one, *pre_activations, *previous_state) -> (*kept, h[, c])``.
    backward : callable
        ``backward(one, dh[, dc], *kept) -> (*gate_gradients, *direct)``.
    """

    forward: Callable[..., Any]
    backward: Callable[..., Any]


class RowStep(NamedTuple):
    """A cell's step for one row ``b`` of the step, for compiled kernels: the per-row form.

    The contract of a cell whose step reduces over a row (layer normalisation: a mean and
    a variance over the units of one sequence), which no per-element :class:`ScalarStep`
    can express. Plain Python functions over 1-d arrays (one row of each operand) with
    loops over the units, and no import of a compiler: Numba compiles them for the CPU
    and numba-cuda as CUDA device functions, one call per row (:mod:`xrnn.backends`).
    Each cell module builds them from a target's primitives and its compiler,
    ``row_step(sigmoid, tanh, sqrt, compile)``, ``compile`` turning the cell's own
    reductions over a row (sums) into functions of that target, which may add their terms
    in any order (Numba vectorises them). They write their results into the rows they
    are given and return nothing.

    The row's cache ``kept`` ``(K*H + S,)``, or ``(K*H + S + H,)`` for a cell of two
    states, holds the fields of the cell's step cache but the last (the previous state,
    which the loop reads from the step before), in order: those of ``H``-wide blocks at
    the widths :attr:`widths`, then, where :attr:`scalars` ``S`` is not 0, one field of
    ``S`` per-row values (the norms' ``1/std``, of shape ``(N, S)`` in the step cache),
    then, for a cell of two states, the new second state ``c`` ``(H,)``: the compiled loop
    carries ``c`` from there (:meth:`state_at`).

    Attributes
    ----------
    forward : callable
        ``forward(one, eps, gx, gh, v, prev, kept, h)``: ``one`` and ``eps`` are 1 and
        the cell's epsilon in the dtype of the arrays; raw pre-activations ``gx``, ``gh``
        ``(G*H,)`` (the loop adds no bias), the cell's vectors ``v (V,)``, the previous
        last state ``prev (H,)`` (``c_prev``, or ``h_prev`` for a one-state cell);
        writes ``kept`` and ``h (H,)``.
    backward : callable
        ``backward(one, eps, dh, dc, kept, prev, v, dg, dgh, dprev)``: writes ``dg ((G +
        gradient_blocks)*H,)`` (the first result of ``step_backward``), ``dgh (G*H,)``
        and ``dprev (H,)``, the gradient of ``prev`` by paths other than ``W_hh`` (a
        one-state cell ignores ``dc``).
    widths : tuple of int
        ``H``-wide blocks of each ``H``-wide cached field, in the step cache's order.
    cache : type
        The cell's step cache (a ``NamedTuple``), built from those fields and the
        previous state.
    scalars : int
        Per-row values cached after the ``H``-wide fields (0: none, and no such field).
    """

    forward: Callable[..., None]
    backward: Callable[..., None]
    widths: tuple[int, ...]
    cache: type
    scalars: int = 0

    def state_at(self, hidden: int) -> int:
        """Where the cached fields of a row of ``kept`` end: ``c`` starts there (two states)."""
        return sum(self.widths) * hidden + self.scalars

    def fields(self, kept: Array, hidden: int) -> list[Array]:
        """The cached fields of ``kept (..., L)`` as views along its last axis, in the cache's order."""
        found, start = [], 0
        for width in self.widths:
            found.append(kept[..., start : start + width * hidden])
            start += width * hidden
        if self.scalars:
            found.append(kept[..., start : start + self.scalars])
        return found


@dataclass(frozen=True)
class LateMatmul:
    """A second recurrent matmul inside the step, after some of the cell's gates.

    The kernel contract of every ``Ops`` (generic, Numba, CUDA, JAX): the last ``gates``
    blocks of ``W_hh`` (``U_late``, ``(gates*H, H)``) multiply not ``h_prev`` but a vector
    ``m`` that the step's earlier gates make (the reset-before GRU: ``m = r * h_prev``,
    ``U_n m``). Per step, forward::

        gh_early = h_prev @ W_early^T (+ b_h early)        one matmul, the first (G - gates) blocks
        m        = input(gx_t, gh_early, state)           (N, H)
        gh_late  = m @ U_late^T (+ b_h late)              the second matmul
        state, cache_t = cell.step(gx_t, [gh_early, gh_late], state)

    and backward::

        dgx, dgh, direct = cell.step_backward(dstate, cache_t)   (dgh None: equal to dgx)
        dm = dg_late @ U_late                                     the second matmul back
        dgx, dgh, direct = backward(dm, cache_t, (dgx, dgh, direct))
        dh_prev = dg_early @ W_early + direct[0]

    ``cell.step_backward`` alone returns the gate gradients without the path through
    ``m``; :attr:`backward` completes them. The weight gradient of the late blocks is
    ``sum_t dg_late_t^T m_t`` (:attr:`kept` reads ``m_t`` back from a step's cache), that
    of the early ones ``sum_t dg_early_t^T h_prev_t`` as for every cell. A cell with a late
    matmul takes no projection.

    Attributes
    ----------
    gates : int
        How many trailing ``H``-wide blocks of ``W_hh`` act on ``m``.
    input : callable
        ``input(gx_t, gh_early, state, *, xp) -> m`` with ``gx_t (N, G*H)`` (biases
        included), ``gh_early (N, (G - gates)*H)`` and ``m (N, H)``.
    kept : callable
        ``kept(cache_t, *, xp) -> m (N, H)``, the step's ``m`` from its cache.
    backward : callable
        ``backward(dm, cache_t, grads, *, xp) -> grads``: the step's ``(dgx, dgh,
        direct)`` of ``cell.step_backward`` completed with ``dm = dg_late @ U_late``
        ``(N, H)``.
    """

    gates: int
    input: Callable[..., Array]
    kept: Callable[..., Array]
    backward: Callable[..., tuple[Array, Array | None, tuple[Array | None, ...]]]


@dataclass(frozen=True)
class Cell:
    """The pointwise maths of one recurrent cell, forward and backward.

    A cell knows nothing of buffers, devices or loops: the engine
    (:mod:`xrnn.engine`) runs it over a sequence, and a backend may run its own
    compiled form of the same equations (:mod:`xrnn.backends`).

    Attributes
    ----------
    name : str
        Short name (``"lstm"``, ``"gru"``, ``"rnn_tanh"``, ``"rnn_relu"``); backends key
        their kernels by it.
    n_gates : int
        G, the number of ``H``-wide blocks in ``W_ih`` and ``W_hh``.
    n_states : int
        1 for ``(h,)``, 2 for ``(h, c)``; ``h`` always comes first.
    fold_bias : bool
        True when ``b_hh`` enters only as ``gx + gh`` and may be added to the hoisted
        input projection instead of at every step.
    step : callable
        ``step(gx, gh, state, *, xp) -> (new_state, cache_t)`` with ``gx``, ``gh`` of
        shape ``(N, G*H)`` (biases included) and states ``(N, H)``.
    step_backward : callable
        ``step_backward(dstate, cache_t, *, xp) -> (dgx, dgh, direct)``: gradients of the
        input and recurrent pre-activations (``dgh`` None when equal to ``dgx``), and of
        the previous state by paths other than ``W_hh`` (an entry None when there are none).
    output : callable or None
        ``output(cache_t, *, xp) -> h`` of shape ``(N, H)``: the step's ``h`` before any
        projection, read from its cache. Set for the cells that take a projection
        (the LSTM's ``proj_size``, where the state carries ``h @ W_hr^T`` instead);
        None for the others.
    late : LateMatmul or None
        A second recurrent matmul after some gates (:class:`LateMatmul`); None for cells
        whose every gate reads ``h_prev @ W_hh^T``.
    vectors : tuple of (str, int)
        The cell's per-unit parameter vectors beyond the matmuls' weights and biases, as
        ``(key, blocks)``: the layer keeps ``{key}_l{k}`` of shape ``(blocks*H,)`` (the
        peephole LSTM's ``("weight_ch", 3)``). The loops hand them to ``step`` and
        ``step_backward`` as one keyword ``vectors``, their concatenation ``(V,)`` in this
        order; cells without any (the default) are never given the keyword.
    vector_gradient : callable or None
        ``vector_gradient(dgx, steps, *, xp) -> dv (V,)``: the gradient of ``vectors``
        over the steps of one loop, from their gate gradients ``dgx (T, N, W)`` (``W =
        (G + gradient_blocks)*H``; zero
        past each length) and step caches, computed once after the loop as the weight
        gradients are. Set when ``vectors`` is.
    diagonal : bool
        True when the recurrent weight is a per-unit vector ``u`` of shape ``(G*H,)``
        (IndRNN) instead of a matrix: the loops form ``gh = h_prev * u`` elementwise (no
        matmul), backward ``dh_prev = dgh * u + direct``, and the weight gradient is
        ``du = sum_t dgh_t * h_prev_t`` over steps and rows. Such a cell has ``G = 1``.
    gradient_blocks : int
        ``H``-wide blocks that ``step_backward`` appends to ``dgx`` past its ``G*H`` gate
        gradients: per-row values that only :attr:`vector_gradient` reads (a LayerNorm
        cell's gradients of its gains and biases, row by row, which it sums). The loops
        carry ``dgx`` of width ``(G + gradient_blocks)*H``; the weight gradients read its
        first ``G*H`` columns. 0 (the default) for the other cells.
    row_step : callable or None
        ``row_step(sigmoid, tanh, sqrt, compile) -> RowStep``, the per-row form of a cell
        whose step reduces over a row (:class:`RowStep`); None for per-element cells.
    eps : float
        The epsilon the row form takes as ``eps`` (in the arrays' dtype): the variance
        floor of a cell's normalisations; unused by the other cells.
    """

    name: str
    n_gates: int
    n_states: int
    fold_bias: bool
    step: Callable[..., tuple[State, Any]]
    step_backward: Callable[..., tuple[Array, Array | None, tuple[Array | None, ...]]]
    output: Callable[..., Array] | None = None
    # keyword-only: a subclass's own fields (DefinedCell's) keep their positions after ``output``
    late: LateMatmul | None = field(default=None, kw_only=True)
    vectors: tuple[tuple[str, int], ...] = field(default=(), kw_only=True)
    vector_gradient: Callable[..., Array] | None = field(default=None, kw_only=True)
    diagonal: bool = field(default=False, kw_only=True)
    gradient_blocks: int = field(default=0, kw_only=True)
    row_step: Callable[..., RowStep] | None = field(default=None, kw_only=True)
    eps: float = field(default=0.0, kw_only=True)
