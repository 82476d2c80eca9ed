"""Private helpers shared by every package of xrnn: namespaces, validation, typing, activations.

:mod:`.namespaces` resolves array namespaces, dtypes and devices (``XRNN_BACKEND``,
:func:`~xrnn.use_backend`, conversions and host copies); :mod:`.validation` checks user
input and words its errors; :mod:`.typing` names the array types; :mod:`.activations` holds
the numerically stable ``sigmoid`` and ``softmax`` in the Array API. This package imports
nothing else from xrnn: it sits below everything (see the architecture page of the docs).
"""
