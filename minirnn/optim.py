"""Gradient clipping by global norm, and plain SGD. Both work in place."""
from .backend import array_module


def grad_norm(grads):
    """Global L2 norm of all gradients, as a float64 0-d device array (no host sync).

    The squares are summed in float64: in float32 a sum of squares overflows once
    the norm passes 1.8e19, and clipping would then zero the gradient.
    """
    g = list(grads.values())
    xp = array_module(g[0])
    wide = [a.ravel().astype(xp.float64, copy=False) for a in g]  # a copy only for narrower floats
    return xp.sqrt(sum(xp.vdot(a, a) for a in wide))


def clip_grad_norm(grads, theta):
    """Scale all gradients by min(1, theta / (norm + 1e-6)) in place.

    Afterwards the global norm is <= theta and the direction is unchanged; below
    theta it is a no-op. theta None disables clipping. Returns the norm before
    clipping as a 0-d device array: the scale is computed on the device, so
    clipping needs no host sync.
    """
    norm = grad_norm(grads)
    if theta is None:
        return norm
    if not theta > 0:
        raise ValueError(f"clip threshold theta must be > 0 or None, got {theta}")
    xp = array_module(norm)
    if xp.__name__ == "numpy":  # on the host, reading the norm costs nothing: skip the no-op
        if norm <= theta:
            return norm
    scale = xp.minimum(1.0, theta / (norm + 1e-6))  # on the device: no sync
    for g in grads.values():
        g *= scale.astype(g.dtype)
    return norm


def sgd(params, grads, lr):
    """params[k] -= lr * grads[k], in place."""
    for k, p in params.items():
        p -= lr * grads[k]
