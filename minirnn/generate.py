"""Text generation: warm up over a prefix, then predict one character at a time.

As the book's predict_ch8: the state runs over the prefix (warm-up), and from its
last character each step feeds the previous prediction back in. Greedy by
default; with a temperature τ, the next character is drawn from q ∝ p^(1/τ).

Sampling uses the Gumbel-max trick, argmax(logits/τ + G) with G Gumbel noise
drawn on the host by a seeded Generator, so a seed gives the same text on the
CPU and the GPU, and the chosen ids never leave the device until the end: there
is one host sync per call, not one per character.

`<unk>` is never generated, greedy or sampled: it is never a training target, so
its probability is only leftover mass; its logit is set to -inf.

An ensemble (a list of models, ensemble.py) predicts the average of its members'
distributions, log((1/K) Σ_k softmax(logits_k)), each member running its own state.
"""
import warnings

import numpy as np

from .backend import backend_of
from .data import UNK, preprocess
from .ensemble import Snapshots
from .errors import UsageError
from .model import Workspace, forward_ids, model_spec, prepare, rnn_forward, split_state

NOISE_CHUNK = 4096  # characters of sampling noise drawn and moved at a time


def encode_prefix(prefix, vocab, text_mode="letters"):
    """Prefix -> ids, through the training text's preprocessing.

    Characters outside the vocabulary map to <unk> (id 0), with one warning
    that names them.
    """
    return read_prefix(prefix, vocab, text_mode)[1]


def read_prefix(prefix, vocab, text_mode="letters"):
    """Prefix -> (text, ids): the preprocessed prefix, as the generated text shows it
    (a character outside the vocabulary as typed), and its ids (that character as <unk>)."""
    if not isinstance(prefix, str) or not prefix:
        raise UsageError("the prefix is empty; give at least one character, e.g. --prefix 'time traveller'")
    try:
        prefix.encode("utf-8")
    except UnicodeEncodeError:
        raise UsageError(f"the prefix {prefix!r} is not valid text (bytes that are not UTF-8); retype it") from None
    text = preprocess(prefix, text_mode)
    if not text:
        keeps = "the letters A-Z" if text_mode == "letters" else "letters"
        raise UsageError(f"the prefix {prefix!r} is empty after '{text_mode}' preprocessing, which keeps only {keeps}; give some of them")
    unknown = vocab.unknown_chars(text)
    if unknown:
        warnings.warn(f"prefix characters not in the vocabulary, read as <unk> (the text shows them as typed): "
                      f"{''.join(unknown)!r}", stacklevel=4)
    return text, vocab.encode(text)


def predict(prefix, num_preds, params, vocab, *, activation="tanh", text_mode="letters",
            temperature=None, seed=0, cell=None):
    """Return the (preprocessed) prefix followed by num_preds generated characters; a
    prefix character outside the vocabulary is read as <unk> and shown as typed.
    Works for every model that params describe (cell, layers, embedding); params may
    also be a list of such models, an ensemble, on one device. cell: as for rnn_forward
    (a cell file's path or module; None reads a built-in cell off the keys)."""
    num_preds = int(num_preds)
    if num_preds < 0:
        raise ValueError(f"the number of characters to generate must be >= 0, got {num_preds}")
    if temperature is not None and not 0 < temperature < np.inf:
        raise ValueError(f"temperature must be > 0 and finite, got {temperature}")
    text, ids = read_prefix(prefix, vocab, text_mode)
    members = params.params if isinstance(params, Snapshots) else [params] if isinstance(params, dict) else params
    if not isinstance(members, (list, tuple)) or not all(isinstance(m, dict) for m in members):
        raise TypeError(f"params must be one model (a dict of weights), a list of them or a Snapshots, "
                        f"got {type(params).__name__}")
    if not members:
        raise ValueError("an ensemble needs at least one model, got an empty list")
    backend = backend_of(members[0]["W_hq"])
    xp = backend.xp
    if len(vocab) < 2:
        raise ValueError(f"the vocabulary holds only {UNK}; there is nothing to generate")
    models = [_Member(p, ids, vocab, activation, cell) for p in members]
    if len({(m.spec.vocab_size, backend_of(m.prep["b_q"]).name) for m in models}) > 1:
        raise ValueError("the models of an ensemble must share one vocabulary and one device")
    out = xp.empty(num_preds, dtype=np.int64)  # generated ids, kept on the device
    token = backend.asarray(ids[-1:].astype(np.int64))  # (1,)
    rng = np.random.default_rng(seed)
    for start in range(0, num_preds, NOISE_CHUNK):
        count = min(NOISE_CHUNK, num_preds - start)
        if temperature is not None:  # Gumbel noise for the next `count` characters, in float64
            noise = backend.asarray(rng.gumbel(size=(count, len(vocab))))
        for i in range(count):
            logits = _mixed([m.step(token) for m in models], xp)  # (V,)
            if temperature is not None:  # argmax of log p / τ + Gumbel noise samples q ∝ p^(1/τ)
                with np.errstate(over="ignore"):  # a tiny τ sends all but the top logit to -inf: greedy
                    logits = (logits - logits.max()).astype(np.float64) / temperature + noise[i]
            token = xp.argmax(logits[None, :], axis=1)  # (1,): stays on the device
            out[start + i:start + i + 1] = token
    generated = backend.to_numpy(out)  # deliberate host sync, once per call
    return text + vocab.decode(generated)  # the prefix as read, unknown characters as typed


def snapshot_models(snapshots, backend):
    """An ensemble's members for predict, which only reads them: on the CPU the
    Snapshots itself (no copy of every member's weights), else their copies on the device."""
    return snapshots if backend.name == "cpu" else snapshots.models(backend)


class _Member:
    """One model of a generation: its prepared weights and state, warmed up on the prefix."""

    def __init__(self, params, ids, vocab, activation, cell=None):
        self.spec, self.activation = model_spec(params, cell), activation
        self.state = None
        if len(ids) > 1:  # warm-up: run the state over all but the last prefix character
            _, self.state, _ = rnn_forward(params, ids[None, :-1].astype(np.int64), None, activation=activation,
                                           cell=self.spec.cell)
        self.ws = Workspace()
        self.prep = prepare(params, self.ws, self.spec)  # the weights, side by side, once for all characters
        self.prep["b_q"] = params["b_q"].copy()
        self.prep["b_q"][vocab.idx_to_token.index(UNK)] = -np.inf  # never generate <unk>

    def step(self, token):
        """token (1,) on the device -> the next character's logits (V,)."""
        logits, self.state, _ = forward_ids(self.prep, token, 1, 1, split_state(self.state, self.spec, 1),
                                            self.activation, self.ws)
        return logits[0]


def _mixed(logits, xp):
    """One model's logits as they are; several models' as the log of their average softmax."""
    if len(logits) == 1:
        return logits[0]
    probs = 0
    for o in logits:  # (V,) each
        e = xp.exp(o - o.max())  # shifted, so that every exp is at most 1
        probs = probs + e / e.sum()
    with np.errstate(divide="ignore"):  # <unk> has probability 0 in every member: log 0 = -inf
        return xp.log(probs / len(logits))
