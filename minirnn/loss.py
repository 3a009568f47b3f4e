"""Softmax cross-entropy: the loss and its gradient together, by one stable formula.

Reduction: the mean over all T·B rows (time steps × sequences), as the book does,
so the perplexity of a minibatch is exp(loss).
"""
import numpy as np

from .backend import array_module


def softmax_cross_entropy(logits, y, out=None):
    """logits (N, V), y (N,) integer targets in [0, V). Returns (loss, dlogits).

    y may be any array-like of ids (a list too). The range of a host (NumPy) y is
    checked on the host, and y is then moved to the logits' device; a y already
    on the device is not checked, as that would cost a host sync (CuPy would not
    raise on a bad index: it wraps it).

    loss is a 0-d array on the logits' device (no host sync); dlogits (N, V) is
    dL/dlogits = (softmax(logits) - onehot(y)) / N. Subtracting each row's max
    first keeps exp() in [0, 1], so logits of ±1e4 neither overflow nor give NaN.
    out: an (N, V) buffer for dlogits; it may be logits itself, which is then overwritten.
    """
    xp = array_module(logits)
    N, V = logits.shape
    y = xp.asarray(_check_targets(y, N, V))
    rows = xp.arange(N)
    P = xp.subtract(logits, logits.max(axis=1, keepdims=True), out=out)  # shifted: every entry <= 0
    shifted_y = P[rows, y]
    top = P.argmax(axis=1)  # a column where the shifted logit is exactly 0
    xp.exp(P, out=P)
    P[rows, top] = 0
    rest = P.sum(axis=1)  # Σ exp(shifted) - 1, summed without the 1, so no cancellation
    P[rows, top] = 1
    # -log softmax(logits)[y] = log Σ exp(shifted) - shifted[y] = log1p(rest) - shifted[y]:
    # exact even when the model is sure, where log(1 + rest) would round rest away
    loss = (xp.log1p(rest) - shifted_y).mean()
    P *= (1.0 / (N * (1 + rest)))[:, None]  # softmax, divided by N for the mean over rows
    P[rows, y] -= 1.0 / N  # minus onehot(y) / N
    return loss, P


def token_losses(logits, y):
    """-log softmax(logits)[y] of each row, (N,) in float64, on the logits' device:
    the per-token losses that the mean above averages (evaluation only, no gradient).
    y as for softmax_cross_entropy."""
    xp = array_module(logits)
    N, V = logits.shape
    y = xp.asarray(_check_targets(y, N, V))
    shifted = logits.astype(np.float64)  # (N, V): the one float64 copy
    shifted -= shifted.max(axis=1, keepdims=True)  # every entry <= 0, one of them 0
    picked = shifted[xp.arange(N), y]  # (N,): a new array, kept from the exp below
    return xp.log(xp.exp(shifted, out=shifted).sum(axis=1)) - picked  # log Σ exp - shifted[y] >= 0


def _check_targets(y, N, V):
    """Shape, dtype and, on the host, range of the targets (see softmax_cross_entropy)."""
    if not hasattr(y, "dtype"):
        y = np.asarray(y)  # a list or other array-like of ids
    if tuple(y.shape) != (N,):
        raise ValueError(f"targets y must have shape ({N},) to match logits, got {tuple(y.shape)}")
    if y.dtype.kind not in "iu":
        raise TypeError(f"targets y must be integer class ids, got dtype {y.dtype}")
    if isinstance(y, np.ndarray) and N:
        lo, hi = int(y.min()), int(y.max())
        if lo < 0 or hi >= V:
            raise ValueError(f"targets y must lie in [0, {V}), got values in [{lo}, {hi}]")
    return y
