"""JAX: each direction's time loop one ``jax.lax.scan``, and layers as differentiable functions.

================  =====================================================================
:mod:`.ops`       :class:`JaxOps`, the backend's ``Ops`` (``lax.scan`` over the cell's
                  ``step`` and ``step_backward``)
:mod:`.apply`     a layer's pure function under ``jax.custom_vjp``: ``jax.grad`` of it
                  runs xrnn's own backward
================  =====================================================================

Chosen by :func:`xrnn.engine.ops.ops_for` for JAX arrays; imported only then.
"""

from .ops import JaxOps, StackedSteps

__all__ = ["JaxOps", "StackedSteps"]
