"""Training: losses, optimisers, ``train`` on tasks, ``fit`` on arrays, truncated BPTT, sampling.

:mod:`.losses` (softmax cross-entropy, mean squared error), :mod:`.optim` (SGD, Adam,
gradient clipping), :mod:`.loop` (:func:`train`, :func:`local_gradient`,
:func:`gradient_by_step`), :mod:`.fitting` (:func:`fit` and its :class:`History`),
:mod:`.tbptt`, :mod:`.sampling` and :mod:`.plots` (figures of losses and gradients, drawn
with matplotlib when it is installed). May import :mod:`xrnn.nn` and everything below it.
"""

from .fitting import History, fit
from .loop import gradient_by_step, local_gradient, train
from .losses import mse, softmax, softmax_cross_entropy
from .optim import SGD, Adam, clip_grad_norm
from .sampling import sample
from .tbptt import truncated_bptt

__all__ = [
    "SGD",
    "Adam",
    "History",
    "clip_grad_norm",
    "fit",
    "gradient_by_step",
    "local_gradient",
    "mse",
    "sample",
    "softmax",
    "softmax_cross_entropy",
    "train",
    "truncated_bptt",
]
