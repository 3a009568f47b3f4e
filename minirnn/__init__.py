"""minirnn: a character-level RNN with hand-written backpropagation through time.

The public names load on first use, so that `minirnn train --threads N` and
`minirnn bench --threads N` can set the BLAS threads before NumPy loads.
"""
import importlib

__version__ = "0.1.0"

_PUBLIC = {
    "Backend": "backend",
    "BackendError": "backend",
    "get_backend": "backend",
    "init_params": "model",
    "rnn_forward": "model",
    "rnn_backward": "model",
    "softmax_cross_entropy": "loss",
    "clip_grad_norm": "optim",
    "grad_norm": "optim",
    "sgd": "optim",
    "PARAM_NAMES": "model",
}
__all__ = list(_PUBLIC)


def __getattr__(name):
    if name in _PUBLIC:
        value = getattr(importlib.import_module(f".{_PUBLIC[name]}", __name__), name)
        globals()[name] = value  # later look-ups skip this function
        return value
    raise AttributeError(f"module 'minirnn' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_PUBLIC))
