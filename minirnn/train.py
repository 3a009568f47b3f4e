"""Training: truncated BPTT over minibatches, epochs, perplexity, throughput.

One minibatch (train_step):
    forward -> loss (mean over T·B) -> backward -> clip by global norm -> SGD.
State between minibatches, by sampling mode:
    sequential  H_T of one window starts the next; the backward stops at the window
                start (dH0 is dropped): truncated BPTT.
    reset       the sequential windows, but H starts at zero every minibatch (the
                book's published "random sampling" run does this).
    random      the book's random iterator, H at zero every minibatch.
With detach off (sequential only), each window's gradient also flows back
through every earlier window of the epoch, with the activations and the W_hh
that window actually used.

Host syncs: one per epoch (the perplexity check) plus whatever the caller's
progress line asks for; none inside the minibatch loop.
"""
import dataclasses
import hashlib
import math
import time

import numpy as np

from .data import check_fits, seq_random, seq_sequential
from .errors import CheckpointError, DataError, DivergedError
from .loss import softmax_cross_entropy
from .model import Workspace, init_params, rnn_backward, rnn_forward
from .optim import clip_grad_norm, sgd

ITERATORS = {"sequential": seq_sequential, "reset": seq_sequential, "random": seq_random}


@dataclasses.dataclass
class TrainState:
    """Everything a run needs to continue exactly where it stopped.

    epoch        epochs completed
    batch        minibatches completed in the current epoch (0 at an epoch boundary)
    rng_state    the Generator's state at the start of the current epoch
    H            the carried state after `batch` minibatches (sequential), else None
    loss_sum, norm_sum, tokens: the current epoch's running sums
    history      one dict per completed epoch
    train_time, total_tokens: seconds and tokens of all training steps so far
    epoch_time   seconds of the current epoch's steps
    corpus_sha1  fingerprint of the training and held-out ids, so a resumed run
                 cannot continue on a different text unnoticed
    """

    params: dict
    rng_state: dict
    epoch: int = 0
    batch: int = 0
    H: object = None
    loss_sum: float = 0.0
    norm_sum: float = 0.0
    tokens: int = 0
    history: list = dataclasses.field(default_factory=list)
    train_time: float = 0.0
    epoch_time: float = 0.0
    total_tokens: int = 0
    corpus_sha1: str = ""


def new_state(cfg, vocab_size, backend):
    params = init_params(vocab_size, cfg.num_hiddens, cell=cfg.cell, num_layers=cfg.num_layers,
                         embed_size=cfg.embed_size or None, backend=backend, seed=cfg.seed, dtype=cfg.dtype)
    # A seed fixes the parameters and, through this Generator, every minibatch order.
    rng = np.random.default_rng(np.random.SeedSequence([cfg.seed, 1]))
    return TrainState(params=params, rng_state=rng.bit_generator.state)


def train_step(params, X, Y, H, cfg, backend, earlier=None, workspace=None):
    """One minibatch. X, Y (B,T) host ids; H (B,H) or None.

    earlier: the caches of this epoch's earlier windows when detach is off; this
    window's cache is appended to it. workspace: a Workspace reused across steps;
    ignored when earlier is given, since every kept window needs its own buffers.
    Returns (loss, norm, H_T, grads): device arrays; norm is the gradient norm
    before clipping, grads after it.
    """
    if earlier is not None:
        workspace = None
    y = backend.asarray(Y.T.reshape(-1))  # time-major targets, as the logits
    logits, H_T, cache = rnn_forward(params, X, H, activation=cfg.activation, workspace=workspace)  # X checked on the host
    loss, dlogits = softmax_cross_entropy(logits, y, out=logits)  # the logits are not needed again
    grads, dH0 = rnn_backward(dlogits, cache)  # truncated BPTT: dH0 is dropped ...
    if earlier is not None:  # ... unless detach is off: carry it through every earlier window
        for old in reversed(earlier):
            # Through small weights the carried gradient shrinks geometrically; once it
            # has underflowed, earlier windows would only add subnormal floats (which
            # slow BLAS on many CPUs) and zeros, so the chain stops there.
            if all(backend.underflowed(d) for d in (dH0 if isinstance(dH0, tuple) else (dH0,))):
                break
            old_grads, dH0 = rnn_backward(None, old, dH0)
            for k in grads:
                grads[k] += old_grads[k]
        earlier.append(cache)
    norm = clip_grad_norm(grads, cfg.clip if cfg.clip > 0 else None)
    sgd(params, grads, cfg.lr)
    return loss, norm, H_T, grads


def train_epoch(state, ids, cfg, backend, should_stop=None, workspace=None):
    """Run (the rest of) one epoch over ids, updating state in place.

    Returns True when the epoch completed, False when should_stop() asked to stop
    after a minibatch (state then holds the position to resume from). workspace:
    a Workspace kept across epochs (fresh buffers each epoch cost page faults);
    unused with detach off, where every window keeps its own buffers.
    """
    rng = np.random.default_rng()
    rng.bit_generator.state = state.rng_state
    batches = ITERATORS[cfg.sampling](ids, cfg.batch_size, cfg.num_steps, rng)
    earlier = None if cfg.detach else []
    workspace = Workspace() if workspace is None else workspace
    carry = cfg.sampling == "sequential"
    if state.batch > len(batches) or (state.batch and carry and state.H is None):
        raise CheckpointError(f"the saved position (minibatch {state.batch} of {len(batches)}"
                              f"{', without its hidden state' if state.H is None else ''}) does not fit this run")
    xp = backend.xp
    loss_sum, norm_sum = xp.asarray(state.loss_sum), xp.asarray(state.norm_sum)
    H = state.H if carry else None
    start = time.perf_counter()
    for i in range(state.batch, len(batches)):
        X, Y = batches[i]
        loss, norm, H_T, _ = train_step(state.params, X, Y, H, cfg, backend, earlier, workspace)
        loss_sum = loss_sum + loss.astype(np.float64) * X.size
        norm_sum = norm_sum + norm.astype(np.float64)
        state.tokens += X.size
        state.total_tokens += X.size
        H = H_T if carry else None  # detached: only its value crosses the window boundary
        state.batch = i + 1
        if should_stop is not None and should_stop() and state.batch < len(batches) and cfg.detach:
            break
    state.loss_sum = float(loss_sum)  # deliberate host sync, once per epoch: also waits for the device
    state.norm_sum = float(norm_sum)
    elapsed = time.perf_counter() - start
    state.train_time += elapsed
    state.epoch_time += elapsed
    state.H = H
    mean_loss, norm = _check_finite(state)
    if state.batch < len(batches):
        return False
    _finish_epoch(state, mean_loss, norm)
    state.rng_state = rng.bit_generator.state
    return True


def perplexity(mean_loss):
    """exp of the token-weighted mean loss (inf rather than an OverflowError)."""
    return math.exp(mean_loss) if mean_loss < 709 else math.inf


def _check_finite(state):
    """Stop with DivergedError if this epoch's loss or gradient norm so far is not finite."""
    mean_loss = state.loss_sum / state.tokens if state.tokens else 0.0
    norm = state.norm_sum / max(state.batch, 1)
    if not (math.isfinite(perplexity(mean_loss)) and math.isfinite(norm)):  # past 709 nats exp() overflows
        raise DivergedError(
            f"training diverged in epoch {state.epoch + 1}: the loss or gradient became "
            f"non-finite (mean loss {mean_loss:.4g}, gradient norm {norm:.4g}); lower --lr or use --clip 1"
        )
    return mean_loss, norm


def _finish_epoch(state, mean_loss, norm):
    state.history.append({
        "epoch": state.epoch + 1,
        "train_ppl": perplexity(mean_loss),
        "heldout_ppl": None,
        "tokens_per_s": state.tokens / max(state.epoch_time, 1e-9),
        "grad_norm": norm,
    })
    state.epoch += 1
    state.batch, state.H = 0, None
    state.loss_sum = state.norm_sum = state.epoch_time = 0.0
    state.tokens = 0


def evaluate(params, ids, cfg, backend, workspace=None):
    """Held-out perplexity: sequential windows from offset 0, state carried, no backward."""
    total, count, H = 0.0, 0, None
    for X, Y in seq_sequential(ids, cfg.batch_size, cfg.num_steps, rng=None, offset=0):
        logits, H, _ = rnn_forward(params, X, H, activation=cfg.activation, workspace=workspace)
        loss, _ = softmax_cross_entropy(logits, backend.asarray(Y.T.reshape(-1)), out=logits)
        total = total + loss.astype(np.float64) * X.size
        count += X.size
    return perplexity(float(total) / count)  # deliberate host sync


def check_corpus(corpus, cfg):
    check_fits(len(corpus.train), cfg.batch_size, cfg.num_steps, "training text")
    check_fits(len(corpus.heldout), cfg.batch_size, cfg.num_steps, "held-out text")


def fit(cfg, corpus, backend, state, *, report=None, on_epoch=None, should_stop=None, sample=None):
    """Train until cfg.epochs, or until should_stop() (then return False).

    Every cfg.print_every epochs and at the last one, the held-out perplexity is
    measured and report(line) gets a progress line; sample(params) gives its text.
    on_epoch(state) runs after every completed epoch (logs, periodic saves).
    """
    check_corpus(corpus, cfg)
    fingerprint = corpus_fingerprint(corpus)
    if state.corpus_sha1 and state.corpus_sha1 != fingerprint:
        raise DataError("this text is not the one the run was trained on (its token ids differ); "
                        "resume with the original --data, --text-mode and --max-tokens")
    state.corpus_sha1 = fingerprint
    workspace = Workspace()
    while state.epoch < cfg.epochs:
        if not train_epoch(state, corpus.train, cfg, backend, should_stop, workspace):
            return False
        row = state.history[-1]
        if state.epoch % cfg.print_every == 0 or state.epoch == cfg.epochs:
            row["heldout_ppl"] = evaluate(state.params, corpus.heldout, cfg, backend, workspace)
            if report is not None:
                report(progress_line(row, sample(state.params) if sample else None))
        if on_epoch is not None:
            on_epoch(state)
        if should_stop is not None and should_stop() and state.epoch < cfg.epochs:
            return False
    return True


def corpus_fingerprint(corpus):
    digest = hashlib.sha1(np.ascontiguousarray(corpus.train).tobytes())
    digest.update(np.ascontiguousarray(corpus.heldout).tobytes())
    return digest.hexdigest()


def progress_line(row, text=None):
    line = (f"epoch {row['epoch']:4d}  ppl {row['train_ppl']:7.3f}  held-out {row['heldout_ppl']:7.3f}  "
            f"{row['tokens_per_s']:9.1f} tokens/s  |grad| {row['grad_norm']:6.3f}")
    return line if text is None else f"{line}  {text!r}"


def summary_line(state, device):
    """The book's closing line: the last epoch's perplexity and the whole run's tokens/s."""
    ppl = state.history[-1]["train_ppl"]
    return f"perplexity {ppl:.1f}, {state.total_tokens / max(state.train_time, 1e-9):.1f} tokens/sec on {device}"


def state_to_dict(state):
    """The JSON-able part of a TrainState (params and H are saved as arrays)."""
    d = dataclasses.asdict(dataclasses.replace(state, params=None, H=None))
    del d["params"], d["H"]
    return d


def state_from_dict(d, params, H=None):
    return TrainState(params=params, H=H, **d)
