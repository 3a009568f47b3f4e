"""Snapshot ensembles: average the predictions of the last K models a run measured.

Every held-out measurement keeps a snapshot: a host copy of the weights, and the
loss of each held-out token under them, ℓ_k,i = -log p_k(y_i). The ensemble of
the last K snapshots predicts the average of their distributions (a mixture, not
an average of the weights), each member reading the text with its own state:

    p(y_i) = (1/K) Σ_k p_k(y_i)
    perplexity = exp(-(1/N) Σ_i log p(y_i)),  log p(y_i) = logsumexp_k(-ℓ_k,i) - log K

Training itself never sees the ensemble: it costs host memory (one copy of the
weights per member) and, when generating, one forward pass per member.
Huang et al. (2017), "Snapshot Ensembles: Train 1, get M for free".

Shapes: N held-out tokens, K members.
"""
import math
import numbers

import numpy as np

from .backend import backend_of


def mixture_perplexity(losses):
    """losses (K, N): each member's per-token losses in nats. The perplexity of the
    mixture that gives each member weight 1/K (stable: a log-sum-exp over members)."""
    try:
        losses = np.asarray(losses, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError("losses must be a (K, N) array of numbers: K members' losses of the same N tokens") from None
    if losses.ndim != 2 or not losses.shape[0] or not losses.shape[1]:
        raise ValueError(f"losses must have shape (K, N) with K, N >= 1, got {losses.shape}")
    if np.isnan(losses).any() or (losses < 0).any():
        raise ValueError("losses must be numbers >= 0 (-log p, in nats; not the probabilities themselves), "
                         "got NaN or a negative value")
    if np.isinf(losses).all(axis=0).any():  # a token that every member gives probability 0
        return math.inf
    logp = -losses  # (K, N): log p_k(y_i)
    top = logp.max(axis=0)  # (N,): the members' largest log-probability per token
    mixed = top + np.log(np.exp(logp - top).mean(axis=0))  # (N,): log (1/K) Σ_k p_k(y_i)
    mean = -float(mixed.mean())
    return math.exp(mean) if mean < 709 else math.inf


class Snapshots:
    """The last `size` measured models, oldest first.

    epochs  [int]            the epoch after which each was measured
    params  [{name: array}]  host copies of its weights
    losses  [(N,) float64]   its held-out per-token losses

    params and losses are the store's own arrays: read them, never write them, and
    do not keep them past the next add(), which reuses the oldest member's arrays.
    models() and state_dict() hand out arrays that are safe to keep or to write.
    """

    def __init__(self, size):
        if isinstance(size, bool) or not isinstance(size, numbers.Integral) or size < 1:
            raise ValueError(f"an ensemble's size must be an integer >= 1, got {size!r}")
        self.size = int(size)
        self.epochs, self.params, self.losses = [], [], []

    def __len__(self):
        return len(self.epochs)

    def add(self, epoch, params, losses):
        """Keep a host copy of params and their losses; the oldest snapshot goes when full."""
        if not isinstance(params, dict):
            raise TypeError(f"params must be one model's dict of weights, got {type(params).__name__}")
        losses = np.asarray(losses, dtype=np.float64)
        if losses.ndim != 1:
            raise ValueError(f"losses must be one loss per held-out token, shape (N,), got {losses.shape}")
        if self.losses and losses.shape != self.losses[0].shape:
            raise ValueError(f"losses of shape {losses.shape} do not match the earlier snapshots' "
                             f"{self.losses[0].shape}: they must score the same held-out tokens")
        reuse = {}
        if len(self.epochs) == self.size:  # full: the oldest goes, and its arrays take the new copy
            reuse = self.params[0]
            del self.epochs[0], self.params[0], self.losses[0]
        member = {}
        for k, v in params.items():
            host = backend_of(v).to_numpy(v)  # deliberate host sync
            old = reuse.get(k)
            if old is not None and old.shape == host.shape and old.dtype == host.dtype:
                member[k] = old
                np.copyto(old, host)  # no new memory once the ring is full
            else:
                member[k] = np.array(host)  # a copy: training goes on updating params in place
        self.epochs.append(int(epoch))
        self.params.append(member)
        self.losses.append(losses)

    def models(self, backend):
        """The members' weights on the backend's device: a list for generate.predict.

        Copies on every backend (one copy of the weights per member): the caller may
        write them, and a later add() leaves them as they were."""
        return [{k: backend.xp.array(v, copy=True) for k, v in member.items()} for member in self.params]

    def perplexity(self):
        """The held-out perplexity of the ensemble of all snapshots kept."""
        self._check_not_empty()
        return mixture_perplexity(np.stack(self.losses))

    def describe(self):
        """'3 models (epochs 4 to 6)', '1 model (epoch 2)'."""
        self._check_not_empty()
        if len(self) == 1:
            return f"1 model (epoch {self.epochs[0]})"
        return f"{len(self)} models (epochs {self.epochs[0]} to {self.epochs[-1]})"

    def _check_not_empty(self):
        if not self.epochs:
            raise ValueError("the ensemble is empty: add() a measured model first")

    def state_dict(self):
        """Plain arrays: epochs (K,), losses (K, N), and each member's weights as 'i.name'.

        epochs and losses are new arrays; the weights are read-only views of the
        store's own (writing one raises ValueError), valid until the next add():
        save them, or copy them to keep."""
        self._check_not_empty()
        d = {"epochs": np.array(self.epochs, dtype=np.int64), "losses": np.stack(self.losses)}
        for i, p in enumerate(self.params):
            d.update({f"{i}.{k}": _read_only(v) for k, v in p.items()})
        return d

    @classmethod
    def from_state_dict(cls, size, d, names):
        """Rebuild from state_dict(); names: the weights each member must hold. A
        ValueError says what does not fit."""
        epochs, losses = d.get("epochs"), d.get("losses")
        if epochs is None or losses is None or epochs.ndim != 1 or losses.ndim != 2 or len(epochs) != len(losses):
            raise ValueError("its ensemble's epochs and losses are missing or do not match")
        if not 1 <= len(epochs) <= size or epochs.dtype.kind not in "iu" or losses.dtype != np.float64:
            raise ValueError(f"its ensemble holds {len(epochs)} snapshots of types {epochs.dtype}, {losses.dtype}; "
                             f"expected 1 to {size}, integer epochs and float64 losses")
        if not np.isfinite(losses).all() or (losses < 0).any():
            raise ValueError("its ensemble's held-out losses are not all finite numbers >= 0")
        if (np.diff(epochs) <= 0).any() or epochs[0] < 1:
            raise ValueError(f"its ensemble's epochs {epochs.tolist()} are not increasing from 1 or later")
        members = [{k: d.get(f"{i}.{k}") for k in names} for i in range(len(epochs))]
        missing = [f"{i}.{k}" for i, p in enumerate(members) for k, v in p.items() if v is None]
        extra = sorted(set(d) - {"epochs", "losses"} - {f"{i}.{k}" for i in range(len(epochs)) for k in names})
        if missing:
            raise ValueError(f"its ensemble lacks weights of the model: {', '.join(missing[:4])}")
        if extra:
            raise ValueError(f"its ensemble holds weights the model does not have: unexpected {', '.join(extra[:4])}")
        snaps = cls(size)
        snaps.epochs = [int(e) for e in epochs]
        snaps.params = [{k: np.array(v) for k, v in p.items()} for p in members]  # its own: add() writes them
        snaps.losses = [np.array(row) for row in losses]
        return snaps


def _read_only(a):
    """A view of the host array a that raises ValueError when written."""
    view = a.view()
    view.flags.writeable = False
    return view
