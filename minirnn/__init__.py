"""minirnn: a character-level RNN with hand-written backpropagation through time."""
from .backend import Backend, BackendError, get_backend
from .loss import softmax_cross_entropy
from .model import PARAM_NAMES, init_params, rnn_backward, rnn_forward
from .optim import clip_grad_norm, grad_norm, sgd

__all__ = [
    "Backend",
    "BackendError",
    "get_backend",
    "init_params",
    "rnn_forward",
    "rnn_backward",
    "softmax_cross_entropy",
    "clip_grad_norm",
    "grad_norm",
    "sgd",
    "PARAM_NAMES",
]
__version__ = "0.1.0"
