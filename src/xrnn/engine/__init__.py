"""The engine: the time loop once (:mod:`.scan`) and the generic :class:`~.ops.Ops` seam.

:func:`~.scan.scan` and :func:`~.scan.scan_backward` run one direction of one layer over a
sequence: the hoisted input projection, reversal within lengths, recomputation by segments,
the weight gradients and ``dx``, around an :class:`~.ops.Ops` that runs the loop over the
steps. The engine is given its ``Ops`` and never asks which one; it imports the cells and
the private helpers only, never NumPy and never a backend (those choose in
:mod:`xrnn.backends`).
"""
