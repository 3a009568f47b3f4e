"""Gradient clipping by global norm, and the optimizers. All work in place.

An optimizer object has step(params, grads), which updates params in place on
their device with no host sync, and state_dict() / load_state_dict(d), a flat
dict of plain host arrays (and 0-d integer arrays), so a checkpoint can hold it
without pickle and a resumed run continues bit for bit.
"""
import math

import numpy as np

from .backend import array_module, backend_of
from .config import DEFAULT_LR, OPTIMIZERS


def grad_norm(grads):
    """Global L2 norm of all gradients, as a float64 0-d device array (no host sync).

    The squares are summed in float64: in float32 a sum of squares overflows once
    the norm passes 1.8e19, and clipping would then zero the gradient.
    """
    g = list(grads.values())
    xp = array_module(g[0])
    if xp.__name__ == "numpy":  # einsum widens in small buffered chunks: no float64 copy of each array
        return xp.sqrt(sum(xp.einsum("i,i->", a.ravel(), a.ravel(), dtype=xp.float64) for a in g))
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


def sgd(params, grads, lr, scratch=None):
    """params[k] -= lr * grads[k], in place. scratch: a Scratch, so that no
    temporary is allocated (one is made per call if None)."""
    scratch = Scratch() if scratch is None else scratch
    for k, p in params.items():
        xp, s = array_module(p), scratch.like(p)
        xp.multiply(grads[k], lr, out=s)
        p -= s


class Scratch:
    """One preallocated work array per parameter shape and dtype, reused by every
    update, so that a step allocates nothing (large temporaries cost page faults)."""

    def __init__(self):
        self.arrays = {}

    def like(self, p):
        key = (p.shape, str(p.dtype), array_module(p).__name__)
        a = self.arrays.get(key)
        if a is None:
            a = self.arrays[key] = array_module(p).empty_like(p)
        return a


class SGD:
    """Stochastic gradient descent, the book's:  θ ← θ - lr·g.

    Robbins & Monro (1951); d2l.ai, "Minibatch Stochastic Gradient Descent". No state.
    """

    def __init__(self, lr):
        self.lr = _check_lr(lr)
        self.scratch = Scratch()

    def step(self, params, grads):
        sgd(params, grads, self.lr, self.scratch)

    def state_dict(self):
        return {}

    def load_state_dict(self, d):
        _check_keys(self, d, set())


class _Stateful:
    """Per-parameter state arrays ("slots"), named "<slot>.<param>", made as zeros
    like the parameter on first use, and moved to its device and dtype on first use
    after load_state_dict."""

    SLOTS = ()

    def __init__(self, lr, params=None):
        self.lr = _check_lr(lr)
        self.t = 0  # steps taken: a host int, so bias corrections need no sync
        self.state = {}
        self.scratch = Scratch()  # work arrays: not state, never saved
        if params is not None:
            for k, p in params.items():
                for slot in self.SLOTS:
                    self._slot(slot, k, p)

    def _slot(self, slot, k, p):
        key = f"{slot}.{k}"
        a = self.state.get(key)
        xp = array_module(p)
        if a is None:
            a = self.state[key] = xp.zeros_like(p)
        elif array_module(a) is not xp or a.dtype != p.dtype:
            a = self.state[key] = xp.asarray(a, dtype=p.dtype)
        if a.shape != p.shape:
            raise ValueError(f"optimizer state {key} has shape {a.shape}, but the parameter has shape {p.shape}")
        return a

    def state_dict(self):
        d = {key: backend_of(a).to_numpy(a).copy() for key, a in self.state.items()}  # deliberate host sync: saving
        d["t"] = np.array(self.t, dtype=np.int64)
        return d

    def load_state_dict(self, d):
        _check_keys(self, d, {"t"} | {k for k in d if k.split(".", 1)[0] in self.SLOTS})
        if "t" not in d:
            raise ValueError(f"{type(self).__name__} state needs its step count 't'")
        self.t = int(d["t"])
        self.state = {k: np.array(v) for k, v in d.items() if k != "t"}


class Adagrad(_Stateful):
    """Adagrad, as min-char-rnn uses it (Karpathy, 2015):

        G ← G + g²
        θ ← θ - lr·g / √(G + eps)

    Duchi, Hazan & Singer (2011), "Adaptive Subgradient Methods for Online Learning
    and Stochastic Optimization", JMLR 12. (PyTorch puts eps outside the root.)
    """

    SLOTS = ("G",)

    def __init__(self, lr, eps=1e-8, params=None):
        self.eps = float(eps)
        super().__init__(lr, params)

    def step(self, params, grads):
        self.t += 1
        for k, p in params.items():
            xp, g = array_module(p), grads[k]
            G, s = self._slot("G", k, p), self.scratch.like(p)
            xp.multiply(g, g, out=s)
            G += s  # G ← G + g²
            xp.add(G, self.eps, out=s)
            xp.sqrt(s, out=s)
            xp.divide(g, s, out=s)
            s *= self.lr
            p -= s  # θ ← θ - lr·g / √(G + eps)


class Adam(_Stateful):
    """Adam, with bias correction (Kingma & Ba, 2015, "Adam: A Method for Stochastic
    Optimization", ICLR, Algorithm 1). At step t = 1, 2, ...:

        m ← β1·m + (1 - β1)·g          v ← β2·v + (1 - β2)·g²
        m̂ = m / (1 - β1^t)             v̂ = v / (1 - β2^t)
        θ ← θ - lr·m̂ / (√v̂ + eps)

    The first step moves every parameter by lr·g/(|g| + eps), about lr. The update
    is computed in the paper's equivalent order (its section 2), which saves a pass:
    θ ← θ - (lr·√(1 - β2^t) / (1 - β1^t))·m / (√v + eps·√(1 - β2^t)).
    """

    SLOTS = ("m", "v")

    def __init__(self, lr, betas=(0.9, 0.999), eps=1e-8, params=None):
        b1, b2 = (float(b) for b in betas)
        if not (0 <= b1 < 1 and 0 <= b2 < 1):
            raise ValueError(f"Adam betas must lie in [0, 1), got {betas}")
        self.betas, self.eps = (b1, b2), float(eps)
        super().__init__(lr, params)

    def step(self, params, grads):
        self.t += 1
        b1, b2 = self.betas
        c1, c2 = 1 - b1 ** self.t, 1 - b2 ** self.t  # host floats: no sync
        for k, p in params.items():
            xp, g = array_module(p), grads[k]
            m, v, s = self._slot("m", k, p), self._slot("v", k, p), self.scratch.like(p)
            xp.multiply(g, 1 - b1, out=s)
            m *= b1
            m += s  # m ← β1·m + (1 - β1)·g
            xp.multiply(g, g, out=s)
            s *= 1 - b2
            v *= b2
            v += s  # v ← β2·v + (1 - β2)·g²
            xp.sqrt(v, out=s)
            s += self.eps * math.sqrt(c2)  # √v̂ + eps, times √(1 - β2^t)
            xp.divide(m, s, out=s)
            s *= self.lr * math.sqrt(c2) / c1
            p -= s  # θ ← θ - lr·m̂ / (√v̂ + eps)


CLASSES = {"sgd": SGD, "adagrad": Adagrad, "adam": Adam}  # by the names in OPTIMIZERS


def make_optimizer(name, lr=None, params=None):
    """The optimizer called name (one of OPTIMIZERS); lr None takes DEFAULT_LR[name].
    With params, the state arrays are made at once, as zeros like them."""
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}: choose one of {', '.join(OPTIMIZERS)}")
    lr = DEFAULT_LR[name] if lr is None else lr
    if name == "sgd":
        return SGD(lr)
    return CLASSES[name](lr, params=params)


def _check_lr(lr):
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not math.isfinite(lr) or lr < 0:
        raise ValueError(f"learning rate lr must be a finite number >= 0, got {lr!r}")
    return float(lr)


def _check_keys(opt, d, allowed):
    unknown = sorted(set(d) - allowed)
    if unknown:
        raise ValueError(f"{type(opt).__name__} state: unknown {'entry' if len(unknown) == 1 else 'entries'} "
                         f"{', '.join(unknown)}")
