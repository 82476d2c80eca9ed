"""The classic step-by-step API: column vectors, features first, parameter dicts, per-step caches.

Layout: ``x`` is ``(n_x, m, T_x)``, ``xt = x[:, :, t]`` is ``(n_x, m)``, states are
``(n_a, m)`` and stacked ``(n_a, m, T_x)``.

RNN, parameters ``Wax (n_a, n_x)``, ``Waa (n_a, n_a)``, ``Wya (n_y, n_a)``, ``ba (n_a, 1)``,
``by (n_y, 1)``::

    a_next  = tanh(Waa a_prev + Wax xt + ba)
    yt_pred = softmax(Wya a_next + by)

LSTM, parameters ``Wf, Wi, Wc, Wo (n_a, n_a + n_x)`` acting on ``concat = [a_prev; xt]``,
biases ``bf, bi, bc, bo (n_a, 1)``, ``Wy (n_y, n_a)``, ``by (n_y, 1)``::

    ft = sigmoid(Wf concat + bf)   it = sigmoid(Wi concat + bi)   ot = sigmoid(Wo concat + bo)
    cct = tanh(Wc concat + bc)     c_next = ft * c_prev + it * cct
    a_next = ot * tanh(c_next)     yt_pred = softmax(Wy a_next + by)

Backward functions take ``da``, the gradient of the loss with respect to every hidden
state (the output layer is not back-propagated), and return gradients summed over
the batch. ``da`` may cover fewer steps than the forward pass: it is then the gradient
of a loss on the first ``da.shape[2]`` steps.

Everything here is an adapter over the engine (:mod:`xrnn.engine` with the cells of
:mod:`xrnn.cells`): transposes of layout and a regrouping of the
per-gate blocks, not a second implementation of the maths.
"""

from ._common import sigmoid, softmax
from .lstm import lstm_backward, lstm_cell_backward, lstm_cell_forward, lstm_forward
from .rnn import rnn_backward, rnn_cell_backward, rnn_cell_forward, rnn_forward

__all__ = [
    "lstm_backward",
    "lstm_cell_backward",
    "lstm_cell_forward",
    "lstm_forward",
    "rnn_backward",
    "rnn_cell_backward",
    "rnn_cell_forward",
    "rnn_forward",
    "sigmoid",
    "softmax",
]
