"""Bridges: another library's arrays on a backend's compiled loops, through zero-copy views.

A :class:`Bridge` is the :class:`~xrnn.engine.ops.Ops` of a namespace whose arrays a
compiled backend can read without copying them: torch CPU tensors and JAX CPU arrays
are NumPy arrays to :class:`~xrnn.backends.numba.NumbaOps` (``Tensor.numpy()``, DLPack),
torch CUDA tensors and JAX GPU arrays are CuPy arrays to
:class:`~xrnn.backends.cuda.CudaOps` (CuPy's DLPack import, on the stream the caller's
library names through the DLPack protocol). The bridge views the arrays it is given,
runs the inner ``Ops`` on the views, and hands the results back as arrays of the caller's
library, dtype and device (views of the backend's buffers where the library accepts
them: always for torch, for JAX where the buffer is 64-byte aligned).

Per call the bridge picks a :class:`Route` by where the arrays are (``"cpu"``,
``"cuda"``); the routes themselves come from the registry
(:func:`xrnn.backends.ops_for`), which is the one place that chooses backends. Arrays no
route serves run the fallback ``Ops`` of the namespace unchanged: torch tensors that
autograd records (``requires_grad`` under grad mode), JAX tracers (under ``jax.jit`` or
``jax.grad``), other devices. The hoisted projection (:meth:`~xrnn.engine.ops.Ops.project`)
and the weight gradients with ``dx`` (:meth:`~xrnn.engine.ops.Ops.gradients`: three
products, two sums and the slicing between them, in one call) run on the route too; the
rest of what the engine does around the loop stays in the caller's library.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import ModuleType
from typing import Any

from .._util.typing import Array, State
from ..cells import Cell
from ..engine.ops import Ops
from ..engine.zoneout import Masks
from .views import JaxViews, TorchViews

__all__ = ["Bridge", "BridgedSteps", "JaxViews", "Route", "TorchViews"]


class Route:
    """Arrays of one place on one inner ``Ops``.

    Attributes
    ----------
    views : TorchViews or JaxViews
        How the caller's arrays become the inner library's and back.
    make : callable
        Makes the inner ``Ops`` on first use (None: no backend serves this place here).
    """

    def __init__(self, views: Any, make: Callable[[], Ops | None]) -> None:
        self.views, self.make = views, make

    def __repr__(self) -> str:
        return f"Route({type(self.views).__name__}({self.views.device_type!r}))"

    @functools.cached_property
    def inner(self) -> Ops | None:
        """The inner ``Ops``, made once."""
        return self.make()


class BridgedSteps(Sequence[Any]):
    """An inner ``Ops``'s step caches, shown as the caller's arrays.

    Indexing gives step ``t``'s cache as the cell's ``step`` returns it, in the caller's
    library (so any backward takes it); the bridge's own backward hands ``steps`` to the
    inner ``Ops`` unconverted.

    Parameters
    ----------
    steps : sequence of T step caches
        The inner ``Ops``'s steps.
    route : Route
        The route that made them.
    """

    def __init__(self, steps: Sequence[Any], route: Route) -> None:
        self.steps, self.route = steps, route

    def __len__(self) -> int:
        return len(self.steps)

    def __getitem__(self, t: Any) -> Any:
        if isinstance(t, slice):
            return [self[j] for j in range(*t.indices(len(self)))]
        return _map(self.route.views.back, self.steps[t])


class Bridge(Ops):
    """The ``Ops`` of a namespace whose arrays a compiled backend reads through views.

    Parameters
    ----------
    xp : module
        The caller's namespace (torch's or JAX's).
    routes : mapping of str to Route
        The route for each place (``"cpu"``, ``"cuda"``), from the registry.
    fallback : Ops
        What runs arrays that no route serves.
    """

    name = "bridge"

    def __init__(self, xp: ModuleType, routes: Mapping[str, Route], fallback: Ops) -> None:
        super().__init__(xp)
        self.routes, self.fallback = dict(routes), fallback

    def __repr__(self) -> str:
        return f"Bridge({self.xp.__name__}, routes={sorted(self.routes)}, fallback={self.fallback!r})"

    def _route(self, arrays: Iterable[Any], work: int | None = None) -> tuple[Route, Ops] | None:
        """The route of ``arrays`` and its inner ``Ops`` when one serves them all, else None.

        With ``work``, the multiply-adds of a product, also None where the route's BLAS
        would not gain on it (``views.worth``).
        """
        given = [a for a in arrays if a is not None]
        views = next(iter(self.routes.values())).views if self.routes else None
        if views is None or not given:
            return None
        places = {views.place(a) for a in given}
        route = self.routes.get(places.pop()) if len(places) == 1 else None
        inner = None if route is None else route.inner
        if route is None or inner is None or (work is not None and not route.views.worth(work)):
            return None
        return route, inner

    def project(self, x: Array, w_ih: Array) -> Array:
        """The projection on the inner ``Ops`` of the arrays' route (see :meth:`Ops.project`).

        The inner library's BLAS, which runs the loops too (NumPy's OpenBLAS ran these
        products 1.5x faster than torch's MKL here); the fallback's where no route serves
        or where the product is too small to gain (``views.worth``).
        """
        chosen = self._route([x, w_ih], x.shape[0] * x.shape[1] * x.shape[2] * w_ih.shape[0])
        if chosen is None:
            return self.fallback.project(x, w_ih)
        route, inner = chosen
        v = route.views
        with v.context(x):
            return v.back(inner.project(v.view(x), v.view(w_ih)))

    def gradients(
        self,
        cell: Cell,
        dgx: Array,
        dgh: Array | None,
        x: Array,
        h0: Array,
        y: Array,
        w_ih: Array,
        *,
        biases: tuple[bool, bool],
        need_dx: bool = True,
    ) -> tuple[Array, Array, Array | None, Array | None, Array | None]:
        """The weight gradients and ``dx`` on the inner ``Ops`` of the arrays' route, in one call.

        The products, the sums and the slicing between them run on the route's views
        (see :meth:`Ops.gradients`); the fallback's where no route serves or where the
        products are too small to gain (``views.worth``).
        """
        t_steps, n, n_in = x.shape
        products = (2 if need_dx else 1) * n_in + h0.shape[1]
        chosen = self._route([dgx, dgh, x, h0, y, w_ih], t_steps * n * w_ih.shape[0] * products)
        if chosen is None:
            return self.fallback.gradients(cell, dgx, dgh, x, h0, y, w_ih, biases=biases, need_dx=need_dx)
        route, inner = chosen
        v = route.views
        with v.context(x):
            views = (v.view(dgx), _opt(v.view, dgh), v.view(x), v.view(h0), v.view(y), v.view(w_ih))
            got = inner.gradients(cell, *views, biases=biases, need_dx=need_dx)
            dw_ih, dw_hh, db_ih, db_hh, dx = (_opt(v.back, a) for a in got)
            return dw_ih, dw_hh, db_ih, db_hh, dx

    def running(self, x: Array, work: int) -> contextlib.AbstractContextManager[Any]:
        """The route's setting for a whole layer call on ``x`` (see :meth:`Ops.running`)."""
        chosen = self._route([x])
        return self.fallback.running(x, work) if chosen is None else chosen[0].views.running(work)

    def join(self, parts: Iterable[Array], length: int, *, backwards: bool = False) -> Array:
        """The fallback's join (see :meth:`Ops.join`)."""
        return self.fallback.join(parts, length, backwards=backwards)

    def forward(
        self,
        cell: Cell,
        gx: Array,
        w_hh_t: Array,
        biases: tuple[Array | None, Array | None],
        state0: State,
        lengths: Array | None,
        *,
        w_hr: Array | None = None,
        vectors: Array | None = None,
        zoneout: Masks | None = None,
    ) -> tuple[Array, State, Sequence[Any]]:
        """Run ``cell`` forward on the inner ``Ops`` of the arrays' route (see :meth:`Ops.forward`)."""
        chosen = self._route([gx, w_hh_t, *biases, *state0, w_hr, vectors])
        if chosen is None or zoneout is not None:  # zoneout runs on the namespace's own loop
            given = _given(w_hr, vectors) | ({} if zoneout is None else {"zoneout": zoneout})
            return self.fallback.forward(cell, gx, w_hh_t, biases, state0, lengths, **given)
        route, inner = chosen
        v = route.views
        args, given = _viewed(v, gx, w_hh_t, biases, state0, lengths, w_hr, vectors)
        with v.context(gx):
            y, state, steps = inner.forward(cell, *args, **given)
            return v.back(y), tuple(v.back(s) for s in state), BridgedSteps(steps, route)

    def infer(
        self,
        cell: Cell,
        gx: Array,
        w_hh_t: Array,
        biases: tuple[Array | None, Array | None],
        state0: State,
        lengths: Array | None,
        *,
        w_hr: Array | None = None,
        vectors: Array | None = None,
    ) -> tuple[Array, State]:
        """Run ``cell`` for inference on the inner ``Ops`` of the arrays' route (see :meth:`Ops.infer`)."""
        chosen = self._route([gx, w_hh_t, *biases, *state0, w_hr, vectors])
        if chosen is None:
            return self.fallback.infer(cell, gx, w_hh_t, biases, state0, lengths, **_given(w_hr, vectors))
        v = chosen[0].views
        args, given = _viewed(v, gx, w_hh_t, biases, state0, lengths, w_hr, vectors)
        with v.context(gx):
            y, state = chosen[1].infer(cell, *args, **given)
            return v.back(y), tuple(v.back(s) for s in state)

    def backward(
        self,
        cell: Cell,
        steps: Sequence[Any],
        dy: Array | None,
        dstate: State,
        w_hh: Array,
        lengths: Array | None,
        *,
        w_hr: Array | None = None,
        vectors: Array | None = None,
        zoneout: Masks | None = None,
    ) -> tuple[Array, Array | None, State]:
        """Backpropagate on the inner ``Ops`` that ran forward (see :meth:`Ops.backward`).

        Steps of another ``Ops``, or arrays that the route does not serve, take the
        fallback (which reads :class:`BridgedSteps` as the caller's arrays).
        """
        chosen = self._route([dy, *dstate, w_hh, w_hr, vectors])
        if (
            chosen is None
            or zoneout is not None
            or not isinstance(steps, BridgedSteps)
            or chosen[0] is not steps.route
        ):
            given = _given(w_hr, vectors) | ({} if zoneout is None else {"zoneout": zoneout})
            return self.fallback.backward(cell, steps, dy, dstate, w_hh, lengths, **given)
        route, inner = chosen
        v = route.views
        with v.context(w_hh):
            dgx, dgh, d = inner.backward(
                cell,
                steps.steps,
                _opt(v.view, dy),
                tuple(v.view(a) for a in dstate),
                v.view(w_hh),
                _opt(v.view, lengths),
                **_given(_opt(v.view, w_hr), _opt(v.view, vectors)),
            )
            return v.back(dgx), _opt(v.back, dgh), tuple(v.back(a) for a in d)


def _viewed(
    v: Any,
    gx: Array,
    w_hh_t: Array,
    biases: tuple[Array | None, Array | None],
    state0: State,
    lengths: Array | None,
    w_hr: Array | None,
    vectors: Array | None,
) -> tuple[tuple[Any, ...], dict[str, Array]]:
    """A forward loop's arguments as views of the inner library (``views`` ``v``): positional, keyword."""
    args = (
        v.view(gx),
        v.view(w_hh_t),
        (_opt(v.view, biases[0]), _opt(v.view, biases[1])),
        tuple(v.view(s) for s in state0),
        _opt(v.view, lengths),
    )
    return args, _given(_opt(v.view, w_hr), _opt(v.view, vectors))


def _opt(f: Callable[[Array], Array], a: Array | None) -> Array | None:
    return None if a is None else f(a)


def _map(f: Callable[[Array], Array], cache: Any) -> Any:
    """``f`` on every array of a step cache (an array, a tuple or a NamedTuple of arrays)."""
    if isinstance(cache, tuple):
        fields: list[Any] = [None if a is None else _map(f, a) for a in cache]
        return type(cache)(*fields) if hasattr(cache, "_fields") else tuple(fields)
    return f(cache)


def _given(w_hr: Array | None, vectors: Array | None = None) -> dict[str, Array]:
    """``{"w_hr": w_hr}`` when there is a projection, ``vectors`` for a cell's vectors, else nothing."""
    given = {} if w_hr is None else {"w_hr": w_hr}
    return given if vectors is None else {**given, "vectors": vectors}
