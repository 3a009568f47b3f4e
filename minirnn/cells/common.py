"""What every cell shares: the nonlinearities, in place, with their derivatives taken
from the outputs, and the gradient that arrives at the final state.

Each derivative reads the cached output y = f(z), never z:
    tanh     f'(z) = 1 - y²
    relu     f'(z) = 1 if y > 0 else 0          (y > 0 exactly when z > 0)
    sigmoid  f'(z) = y (1 - y)
"""
from ..backend import array_module


def tanh(Z, out):
    xp = array_module(Z)
    return xp.tanh(Z, out=out)


def tanh_grad(Y, out):
    xp = array_module(Y)
    xp.multiply(Y, Y, out=out)
    return xp.subtract(1, out, out=out)


def relu(Z, out):
    xp = array_module(Z)
    return xp.maximum(Z, 0, out=out)


def relu_grad(Y, out):
    xp = array_module(Y)
    return xp.greater(Y, 0, out=out)


def sigmoid(Z, out):
    """σ(z) = (1 + tanh(z/2)) / 2: the same function as 1 / (1 + e^-z), but it never
    overflows, whatever the sign of z."""
    xp = array_module(Z)
    xp.multiply(Z, 0.5, out=out)
    xp.tanh(out, out=out)
    out *= 0.5
    out += 0.5
    return out


def gate_major(M, k):
    """The k blocks of M (B,kH), side by side, seen gate-major as (k,B,H): a strided
    view, no copy. Copying between it and a contiguous (k,B,H) array reorders the
    blocks in one op."""
    B, kH = M.shape
    return M.reshape(B, k, kH // k).transpose(1, 0, 2)


ACTIVATIONS = {"tanh": (tanh, tanh_grad), "relu": (relu, relu_grad)}  # for the plain RNN cell


def final_gradient(dstate_T, i, shape, dtype, xp):
    """A fresh (B,H) array for the gradient at the final state: dstate_T[i], or zeros.
    The cell's backward accumulates into it in place, step by step."""
    g = None if dstate_T is None else dstate_T[i]
    return xp.zeros(shape, dtype=dtype) if g is None else xp.array(g, dtype=dtype)
