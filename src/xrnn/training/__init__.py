"""Training: losses, optimisers, ``train`` on tasks, ``fit`` on arrays, truncated BPTT, sampling.

:mod:`.losses` (softmax cross-entropy, mean squared error), :mod:`.optim` (SGD, Adam,
AdamW, gradient clipping), :mod:`.loop` (:func:`train`, :func:`local_gradient`,
:func:`gradient_by_step`), :mod:`.fitting` (:func:`fit` and its :class:`History`, with
:mod:`.fit_data`, :mod:`.metrics`, :mod:`.schedules` and :mod:`.fit_report`),
:mod:`.tbptt`, :mod:`.sampling` and :mod:`.plots` (figures of losses and gradients, drawn
with matplotlib when it is installed). May import :mod:`xrnn.nn` and everything below it.
"""

from .fitting import History, fit
from .loop import gradient_by_step, local_gradient, train
from .losses import mse, softmax, softmax_cross_entropy
from .optim import SGD, Adam, AdamW, clip_grad_norm
from .sampling import sample
from .schedules import CosineDecay, StepDecay
from .tbptt import truncated_bptt

__all__ = [
    "SGD",
    "Adam",
    "AdamW",
    "CosineDecay",
    "History",
    "StepDecay",
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
