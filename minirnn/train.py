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

Divergence: an epoch whose mean loss exceeds log V + log 1000 (a perplexity over
1000·V, a thousand times worse than guessing uniformly among the V tokens), or whose
loss or gradient norm is not finite, stops training with DivergedError.

Host syncs: one per epoch (the perplexity check) plus whatever the caller's
progress line asks for; none inside the minibatch loop.
"""
import dataclasses
import hashlib
import math
import time

import numpy as np

from .cells import get_cell
from .data import check_fits, min_tokens, seq_random, seq_sequential
from .errors import CheckpointError, DataError, DivergedError
from .ensemble import Snapshots
from .loss import softmax_cross_entropy, token_losses
from .model import Spec, Workspace, init_params, model_spec, param_shapes, rnn_backward, rnn_forward
from .dropout import dropout_masks
from .optim import CLASSES as OPTIMIZER_CLASSES, clip_grad_norm, make_optimizer, sgd

ITERATORS = {"sequential": seq_sequential, "reset": seq_sequential, "random": seq_random}
DIVERGED_FACTOR = 1000  # diverged: perplexity above this many times the vocabulary size


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
    lr           the learning rate now (--lr-decay lowers it)
    best_heldout, best_epoch: the lowest held-out perplexity so far and its epoch
    evals_since_best: held-out measurements since then (--patience)
    stopped_early  True once --patience has stopped the run
    optimizer    the optimizer (its state is saved as arrays, not in the JSON)
    snapshots    with --ensemble K > 1, the last K measured models (ensemble.Snapshots,
                 saved as arrays); model selection then uses their ensemble
    changes      options changed on resuming: one dict per resume that changed any,
                 {"epoch": E, "batch": N, "changes": {name: [old, new]}}, E and N the
                 position it resumed from
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
    lr: float = None
    best_heldout: float = None
    best_epoch: int = 0
    evals_since_best: int = 0
    stopped_early: bool = False
    optimizer: object = None
    snapshots: object = None
    changes: list = dataclasses.field(default_factory=list)


def new_state(cfg, vocab_size, backend, params=None):
    """The state of a new run: the book's init, or params (host arrays of the config's
    model, as another run left them: --init-from), moved to the device in cfg.dtype."""
    if params is None:
        params = init_params(vocab_size, cfg.num_hiddens, cell=cfg.cell, num_layers=cfg.num_layers,
                             embed_size=cfg.embed_size or None, backend=backend, seed=cfg.seed, dtype=cfg.dtype)
    else:
        params = {k: backend.asarray(np.array(v, dtype=cfg.dtype)) for k, v in params.items()}  # its own copy
    # A seed fixes the parameters and, through this Generator, every minibatch order.
    rng = np.random.default_rng(np.random.SeedSequence([cfg.seed, 1]))
    return TrainState(params=params, rng_state=rng.bit_generator.state, lr=cfg.lr,
                      optimizer=make_optimizer(cfg.optimizer, cfg.lr, params), snapshots=new_snapshots(cfg))


def new_snapshots(cfg):
    """An empty snapshot ensemble for --ensemble K > 1, else None."""
    return Snapshots(cfg.ensemble) if cfg.ensemble > 1 else None


def train_step(params, X, Y, H, cfg, backend, earlier=None, workspace=None, optimizer=None, masks=None):
    """One minibatch. X, Y (B,T) host ids; H the state or None.

    earlier: the caches of this epoch's earlier windows when detach is off; this
    window's cache is appended to it. workspace: a Workspace reused across steps;
    ignored when earlier is given, since every kept window needs its own buffers.
    optimizer: an optimizer from optim.py (None: SGD with cfg.lr). masks: dropout
    masks for this minibatch (dropout.dropout_masks), or None.
    Returns (loss, norm, H_T, grads): device arrays; norm is the gradient norm
    before clipping, grads after it. With a workspace the grads are its buffers,
    rewritten by the next step (see model.Workspace): copy them to keep them.
    """
    if earlier is not None:
        workspace = None
    y = backend.asarray(Y.T.reshape(-1))  # time-major targets, as the logits
    logits, H_T, cache = rnn_forward(params, X, H, activation=cfg.activation, workspace=workspace,
                                     masks=masks, cell=cfg.cell)  # X checked on the host
    loss, dlogits = softmax_cross_entropy(logits, y, out=logits)  # the logits are not needed again
    grads, dH0 = rnn_backward(dlogits, cache, keep_cache=earlier is not None)  # truncated BPTT: dH0 is dropped ...
    if earlier is not None:  # ... unless detach is off: carry it through every earlier window
        for old in reversed(earlier):
            # Through small weights the carried gradient shrinks geometrically; once it
            # has underflowed, earlier windows would only add subnormal floats (which
            # slow BLAS on many CPUs) and zeros, so the chain stops there.
            if all(backend.underflowed(d) for d in (dH0 if isinstance(dH0, tuple) else (dH0,))):
                break
            old_grads, dH0 = rnn_backward(None, old, dH0, keep_cache=True)  # later windows pass here again
            for k in grads:
                grads[k] += old_grads[k]
        earlier.append(cache)
    norm = clip_grad_norm(grads, cfg.clip if cfg.clip > 0 else None)
    if optimizer is None:
        sgd(params, grads, cfg.lr)
    else:
        optimizer.step(params, grads)
    return loss, norm, H_T, grads


def train_epoch(state, ids, cfg, backend, should_stop=None, workspace=None, tick=None):
    """Run (the rest of) one epoch over ids, updating state in place.

    Returns True when the epoch completed, False when should_stop() asked to stop
    after a minibatch (state then holds the position to resume from). workspace:
    a Workspace kept across epochs (fresh buffers each epoch cost page faults);
    unused with detach off, where every window keeps its own buffers.
    tick(state, num_batches) runs after each minibatch (progress inside an epoch);
    it must not read device arrays.
    """
    rng = np.random.default_rng()
    rng.bit_generator.state = state.rng_state
    batches = ITERATORS[cfg.sampling](ids, cfg.batch_size, cfg.num_steps, rng)
    earlier = None if cfg.detach else []
    workspace = Workspace() if workspace is None else workspace
    carry = cfg.sampling == "sequential"
    if state.batch > len(batches) or (state.batch and carry and state.H is None):
        raise CheckpointError(f"the saved position (minibatch {state.batch} of {len(batches)}"
                              f"{', without its hidden state' if state.H is None else ''}) does not fit this run: the checkpoint "
                              f"is damaged; use an earlier one, or start a new run without --resume")
    xp = backend.xp
    loss_sum, norm_sum = xp.asarray(state.loss_sum), xp.asarray(state.norm_sum)
    H = state.H if carry else None
    spec = model_spec(state.params, cfg.cell) if cfg.dropout else None
    start = time.perf_counter()
    for i in range(state.batch, len(batches)):
        X, Y = batches[i]
        masks = None
        if cfg.dropout:  # from a Generator of its own per minibatch, so a resumed run draws the same masks
            masks = dropout_masks(spec, cfg.num_steps, cfg.batch_size, cfg.dropout,
                                  np.random.default_rng([cfg.seed, 2, state.epoch, i]), state.params["W_hq"])
        loss, norm, H_T, _ = train_step(state.params, X, Y, H, cfg, backend, earlier, workspace, state.optimizer, masks)
        loss_sum = loss_sum + loss.astype(np.float64) * X.size
        norm_sum = norm_sum + norm.astype(np.float64)
        state.tokens += X.size
        state.total_tokens += X.size
        H = H_T if carry else None  # detached: only its value crosses the window boundary
        state.batch = i + 1
        if tick is not None:
            tick(state, len(batches))
        if should_stop is not None and should_stop() and state.batch < len(batches) and cfg.detach:
            break
    state.loss_sum = float(loss_sum)  # deliberate host sync, once per epoch: also waits for the device
    state.norm_sum = float(norm_sum)
    elapsed = time.perf_counter() - start
    state.train_time += elapsed
    state.epoch_time += elapsed
    state.H = H
    mean_loss, norm = _check_diverged(state, cfg)
    if state.batch < len(batches):
        return False
    _finish_epoch(state, mean_loss, norm)
    state.rng_state = rng.bit_generator.state
    return True


def perplexity(mean_loss):
    """exp of the token-weighted mean loss (inf rather than an OverflowError)."""
    return math.exp(mean_loss) if mean_loss < 709 else math.inf


def diverged(mean_loss, norm, vocab_size):
    """The divergence rule: a non-finite loss or gradient norm, or a mean loss above
    log V + log DIVERGED_FACTOR (perplexity over DIVERGED_FACTOR · V)."""
    finite = math.isfinite(perplexity(mean_loss)) and math.isfinite(norm)  # past 709 nats exp() overflows
    return not finite or mean_loss > math.log(vocab_size) + math.log(DIVERGED_FACTOR)


def _check_diverged(state, cfg):
    """Stop with DivergedError if this epoch's loss or gradient norm so far has diverged."""
    mean_loss = state.loss_sum / state.tokens if state.tokens else 0.0
    norm = state.norm_sum / max(state.batch, 1)
    V = state.params["b_q"].shape[0]
    if diverged(mean_loss, norm, V):
        fix = ("use --clip 1 (clipping is off), or lower --lr" if not cfg.clip > 0 else
               f"lower --lr (now {cfg.lr:g}; try {min(cfg.lr / 10, 1):g})")
        raise DivergedError(
            f"training diverged in epoch {state.epoch + 1}: mean loss {mean_loss:.4g} "
            f"(perplexity {perplexity(mean_loss):.3g}, uniform guessing: {V}), gradient norm {norm:.3g}; {fix}"
        )
    return mean_loss, norm


def _finish_epoch(state, mean_loss, norm):
    state.history.append({
        "epoch": state.epoch + 1,
        "train_ppl": perplexity(mean_loss),
        "heldout_ppl": None,
        "tokens_per_s": state.tokens / max(state.epoch_time, 1e-9),
        "grad_norm": norm,
        "lr": state.lr,
    })
    state.epoch += 1
    state.batch, state.H = 0, None
    state.loss_sum = state.norm_sum = state.epoch_time = 0.0
    state.tokens = 0


def eval_streams(num_tokens, batch_size):
    """The held-out protocol's streams: (starts, lengths), each (B,) int64 on the host.

    The N - 1 tokens after the first are the targets; B streams read them as B
    contiguous pieces of the text, the first (N - 1) % B of them one token longer
    than the rest, (N - 1) // B. Stream b reads ids[starts[b]] ... and predicts
    each next token, its state starting at zero.
    """
    M = num_tokens - 1  # targets: every token but the first
    if batch_size < 1 or M < batch_size:
        raise ValueError(f"{num_tokens} tokens are too few to evaluate with B={batch_size} streams: each stream "
                         f"needs a token to read and one to predict ({batch_size + 1} tokens in all); "
                         f"give more text, or a smaller batch_size")
    L, r = divmod(M, batch_size)
    lengths = np.full(batch_size, L, dtype=np.int64)
    lengths[:r] += 1
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    return starts, lengths


def eval_windows(num_tokens, batch_size, num_steps):
    """The windows of the held-out protocol: a list of (rows, t0, width): the first
    `rows` streams (B, or fewer at the very end), steps t0 .. t0 + width - 1.

    Every stream is read in windows of T steps, the last one shorter when T does not
    divide its length; the streams one token longer than the rest then take one more
    step as a narrower batch. Together the windows score each of the N - 1 targets once.
    """
    _, lengths = eval_streams(num_tokens, batch_size)
    L, r = int(lengths[-1]), int((lengths > lengths[-1]).sum())
    windows = [(batch_size, t0, min(num_steps, L - t0)) for t0 in range(0, L, num_steps)]
    if r:
        windows.append((r, L, 1))
    return windows


def evaluate(params, ids, cfg, backend, workspace=None, per_token=False):
    """Held-out perplexity over every token of ids but the first, each predicted once
    from all the earlier tokens of its stream; no backward.

    Protocol (eval_streams, eval_windows): B = cfg.batch_size streams, contiguous
    pieces of ids, read side by side in windows of up to T = cfg.num_steps steps,
    one batched forward per window, the state carried from window to window. Each
    stream starts from a zero state; its first token is read without context. The
    forward runs in the weights' dtype, the losses and their mean in float64, on the
    device; the only host sync is the final figure.

    per_token: return (perplexity, losses) instead, losses (N - 1,) float64 on the
    host: losses[j] = -log p(ids[j + 1]), in nats, in the order of the text.
    """
    ids = np.asarray(ids)
    starts, _ = eval_streams(len(ids), cfg.batch_size)
    xp = backend.xp
    H, rows, positions = None, [], []
    tail = Workspace()  # the shorter last window and the narrower batch: buffers of their own
    for B, t0, width in eval_windows(len(ids), cfg.batch_size, cfg.num_steps):
        if B < cfg.batch_size:  # only the longer streams go on: their rows of the state
            H = first_rows(H, B)
        at = starts[:B, None] + t0 + np.arange(width)  # (B, T) positions of the window's inputs
        full = B == cfg.batch_size and width == cfg.num_steps
        logits, H, _ = rnn_forward(params, ids[at], H, activation=cfg.activation,
                                   workspace=workspace if full else tail, cell=cfg.cell)
        target = at.T.reshape(-1) + 1  # (T·B,) time-major, as the logits
        rows.append(token_losses(logits, backend.asarray(ids[target])))
        positions.append(target - 1)
    losses = xp.empty(len(ids) - 1, dtype=np.float64)
    losses[backend.asarray(np.concatenate(positions))] = xp.concatenate(rows)  # into the order of the text
    if not per_token:
        return perplexity(float(losses.mean()))  # deliberate host sync
    losses = backend.to_numpy(losses)  # deliberate host sync
    return perplexity(float(losses.mean())), losses


def first_rows(state, B):
    """The state of the first B streams: the public form (see model.py) cut to B rows."""
    if state is None:
        return None
    if isinstance(state, tuple):
        return tuple(first_rows(part, B) for part in state)
    return state[:B] if state.ndim == 2 else state[:, :B]  # (B,H), or (L,B,H)


def memory_estimate(cfg, vocab_size, num_windows=1):
    """Bytes a run needs, roughly: the parameters with their gradients, copies and
    optimizer state, and one window's activations and scratch buffers per layer
    (every window of the epoch with --no-detach). Used to refuse a run that cannot
    fit before the operating system kills it."""
    spec = Spec(cfg.cell, cfg.num_layers, vocab_size, cfg.num_hiddens, cfg.embed_size)
    k = len(get_cell(cfg.cell).GATES)
    itemsize = np.dtype(cfg.dtype).itemsize
    slots = len(getattr(OPTIMIZER_CLASSES[cfg.optimizer], "SLOTS", ()))
    params = sum(int(np.prod(shape)) for shape in param_shapes(spec).values())
    rows = cfg.batch_size * cfg.num_steps
    window = (cfg.num_layers * rows * cfg.num_hiddens * (2 * k + 6)
              + rows * (3 * vocab_size + cfg.embed_size * 2))
    windows = 1 if cfg.detach else num_windows
    snapshots = min(cfg.ensemble, measurements(cfg)) if cfg.ensemble > 1 else 0  # host copies of the weights
    return itemsize * (params * (4 + slots + snapshots) + window * windows)


def measurements(cfg):
    """How many held-out measurements a run of cfg.epochs makes (fit's rule, below)."""
    n, p, q = cfg.epochs, cfg.print_every, cfg.eval_every or cfg.print_every
    both = p * q // math.gcd(p, q)  # epochs that are multiples of both count once
    return n // p + n // q - n // both + (n % p != 0 and n % q != 0)  # and the last epoch, measured anyway


def check_corpus(corpus, cfg):
    """Both slices must give a minibatch; the advice depends on how they were cut."""
    B, T = cfg.batch_size, cfg.num_steps
    need = min_tokens(B, T)
    n = corpus.num_tokens
    if 0 < cfg.eval_tokens < min(need, len(corpus.heldout)):
        raise DataError(f"--eval-tokens {cfg.eval_tokens} is too few for one held-out window of --batch-size {B} x "
                        f"--num-steps {T} (needs {need}); give at least {need}, or 0 to score all held-out tokens")
    capped = 0 < cfg.max_tokens < n and not cfg.heldout_tokens  # train: the first max_tokens; held out: as many next
    shape = ("lower --batch-size or --num-steps" if B > 1 and T > 1 else
             "lower --batch-size" if B > 1 else "lower --num-steps" if T > 1 else "")
    if cfg.heldout_tokens:
        check_fits(len(corpus.train), B, T, "training text", ", or ".join(
            a for a in (f"lower --heldout-tokens (the text has {n} tokens)", shape) if a))
        check_fits(len(corpus.heldout), B, T, f"held-out text (--heldout-tokens {cfg.heldout_tokens})", ", or ".join(
            a for a in (f"raise --heldout-tokens to at least {need}" if n > 2 * need else "", shape,
                        "use a longer --data file") if a))
    elif capped:
        check_fits(len(corpus.train), B, T, "training text",
                   f"raise --max-tokens (the text has {n} tokens) or {shape}" if n >= 2 * need and shape else
                   f"raise --max-tokens (the text has {n} tokens)" if n >= 2 * need else
                   shape or "use a longer --data file")
        check_fits(len(corpus.heldout), B, T, "held-out text (what follows the first --max-tokens tokens)",
                   f"lower --max-tokens to at most {n - need} to leave room for it, or use --max-tokens 0 "
                   f"(the whole text, its last 10% held out)" + (f", or {shape}" if shape else "") if n >= 2 * need
                   else ", or ".join(a for a in (shape, "use a longer --data file") if a))
    else:
        half = f"--max-tokens {n // 2} (train on the first {n // 2} tokens, hold out the rest)"
        for what, ids in (("training text", corpus.train), ("held-out text (the last 10%)", corpus.heldout)):
            check_fits(len(ids), B, T, what, ", or ".join(
                [a for a in (shape, half if n // 2 >= need else "", "use a longer --data file") if a]))


def fit(cfg, corpus, backend, state, *, report=None, on_epoch=None, should_stop=None, sample=None, tick=None,
        on_best=None):
    """Train until cfg.epochs, until --patience stops the run (then state.stopped_early),
    or until should_stop() (then return False).

    The held-out perplexity is measured every cfg.eval_every epochs (0: with every
    progress line), every cfg.print_every epochs and at the last one; with
    cfg.ensemble > 1 each measurement also keeps a snapshot, and the figure is the
    ensemble's (ensemble.py). Each measurement counts for model selection: a new best calls on_best(state), a
    miss multiplies the learning rate by cfg.lr_decay, and cfg.patience misses in a
    row stop the run. report(line) gets a progress line every cfg.print_every
    epochs; sample(params) gives its text. on_epoch(state) runs after every
    completed epoch (logs, periodic saves); tick(state, num_batches) after every minibatch.
    """
    check_same_text(corpus, state)
    check_corpus(corpus, cfg)
    check_snapshots(state, corpus.heldout, cfg)
    state.corpus_sha1 = corpus_fingerprint(corpus)
    state.lr = cfg.lr if state.lr is None else state.lr
    if state.optimizer is None:  # a state built by hand: a fresh optimizer
        state.optimizer = make_optimizer(cfg.optimizer, state.lr, state.params)
    if state.snapshots is None and cfg.ensemble > 1:  # likewise: no snapshots yet
        state.snapshots = new_snapshots(cfg)
    workspace = Workspace()
    eval_every = cfg.eval_every or cfg.print_every
    clock = RunClock(state.epoch, cfg.epochs)
    while state.epoch < cfg.epochs and not state.stopped_early:
        if not train_epoch(state, corpus.train, cfg, backend, should_stop, workspace, tick):
            return False
        row = state.history[-1]
        printing = state.epoch % cfg.print_every == 0 or state.epoch == cfg.epochs
        if printing or state.epoch % eval_every == 0:
            measured = eval_slice(corpus.heldout, cfg, final=state.epoch == cfg.epochs)
            if report is not None and row["tokens_per_s"] and (
                    3 * len(measured) / row["tokens_per_s"] > cfg.progress_seconds > 0):  # a forward pass is ~3x a step
                report(f"  measuring epoch {state.epoch}'s held-out perplexity on {len(measured):,} tokens")
            _measure(state, row, measured, cfg, backend, workspace)
            row["heldout_tokens"] = scored_tokens(measured, cfg)
            row["heldout_all"] = len(measured) == len(corpus.heldout)
            _select(state, cfg, selected(row), on_best)
        if printing and report is not None:
            report(progress_line(row, sample(state.params) if sample else None, clock(state.epoch)))
        if state.stopped_early and report is not None:
            report(f"stopping early: no held-out improvement in {cfg.patience} measurements; "
                   f"best epoch {state.best_epoch}, held-out perplexity {state.best_heldout:.3f}"
                   + (" (ensemble)" if state.snapshots is not None else ""))
            if not row.get("heldout_all", True):  # the bound was for the run's middle: score the last model on all
                ppl = evaluate(state.params, corpus.heldout, cfg, backend, workspace)
                report(f"the last model (epoch {state.epoch}) on all {scored_tokens(corpus.heldout, cfg):,} held-out "
                       f"tokens: perplexity {ppl:.3f}, {bpc(ppl):.3f} bpc")
        if on_epoch is not None:
            on_epoch(state)
        if should_stop is not None and should_stop() and state.epoch < cfg.epochs:
            return False
    return True


def _measure(state, row, heldout, cfg, backend, workspace):
    """The held-out perplexity of the model (row's heldout_ppl) and, with --ensemble,
    a new snapshot and the perplexity of the ensemble it completes (ensemble_ppl)."""
    if state.snapshots is None:
        row["heldout_ppl"] = evaluate(state.params, heldout, cfg, backend, workspace)
        return
    row["heldout_ppl"], losses = evaluate(state.params, heldout, cfg, backend, workspace, per_token=True)
    state.snapshots.add(state.epoch, state.params, losses)
    row["ensemble_ppl"] = state.snapshots.perplexity()


def eval_slice(heldout, cfg, final=False):
    """The held-out ids a measurement scores: the first cfg.eval_tokens during
    training (all when 0), all of them at the run's last epoch."""
    return heldout if final or not cfg.eval_tokens else heldout[:cfg.eval_tokens]


def bpc(ppl):
    """Bits per character (per token): log2 of the perplexity."""
    return math.log2(ppl) if ppl > 0 else math.nan


def scored_tokens(ids, cfg):
    """How many tokens evaluate() scores in ids: every one but the first, by its windows."""
    return sum(B * width for B, _, width in eval_windows(len(ids), cfg.batch_size, cfg.num_steps))


def check_snapshots(state, heldout, cfg):
    """Saved snapshots must score the tokens this run scores (a damaged checkpoint may not)."""
    if state.snapshots is not None and len(state.snapshots):
        saved, scored = len(state.snapshots.losses[0]), scored_tokens(heldout, cfg)
        if saved != scored:
            raise CheckpointError(f"the ensemble's snapshots scored {saved} held-out tokens, but this run scores "
                                  f"{scored}: the checkpoint is damaged, or was saved by an earlier minirnn, which "
                                  f"scored only whole windows; use an earlier one, or start a new run "
                                  f"without --resume")


def selected(row):
    """The held-out figure that model selection uses: the ensemble's, when there is one."""
    return row["ensemble_ppl"] if row.get("ensemble_ppl") is not None else row["heldout_ppl"]


def _select(state, cfg, heldout, on_best):
    """Model selection on one held-out measurement: keep the best, decay, stop."""
    if state.best_heldout is None or heldout < state.best_heldout:
        state.best_heldout, state.best_epoch, state.evals_since_best = heldout, state.epoch, 0
        if on_best is not None:
            on_best(state)
        return
    state.evals_since_best += 1
    if cfg.lr_decay < 1:
        state.lr *= cfg.lr_decay
        state.optimizer.lr = state.lr
    if cfg.patience and state.evals_since_best >= cfg.patience:
        state.stopped_early = True


def check_same_text(corpus, state, name=None):
    """A resumed run must train on the text it started on (checked before its sizes)."""
    if state.corpus_sha1 and state.corpus_sha1 != corpus_fingerprint(corpus):
        raise DataError(f"the text{f' of {name}' if name else ''} is not the one the run was trained on "
                        f"(its token ids differ: was the file changed?); resume with the original text "
                        f"and --text-mode, or start a new run without --resume")


def corpus_fingerprint(corpus):
    """sha1 of the training and held-out ids (read in place: no copy of a large text)."""
    digest = hashlib.sha1(np.ascontiguousarray(corpus.train))
    digest.update(np.ascontiguousarray(corpus.heldout))
    return digest.hexdigest()


def fixed(x, width, decimals=3):
    """x in at most about `width` characters: fixed-point while it fits, else %.3g."""
    text = f"{x:{width}.{decimals}f}"
    return text if len(text) <= width else f"{x:{width}.3g}"


def progress_line(row, text=None, timing=None):
    ensemble = f"  ensemble {fixed(row['ensemble_ppl'], 7)}" if row.get("ensemble_ppl") is not None else ""
    scored = "" if row.get("heldout_all", True) else f" (first {row['heldout_tokens']:,} tokens)"
    line = (f"epoch {row['epoch']:4d}  ppl {fixed(row['train_ppl'], 7)}  held-out {fixed(row['heldout_ppl'], 7)}"
            f" {fixed(bpc(row['heldout_ppl']), 5)} bpc{scored}"
            f"{ensemble}  {fixed(row['tokens_per_s'], 9, 1)} tokens/s  |grad| {fixed(row['grad_norm'], 6)}")
    line = line if timing is None else f"{line}  {timing}"
    return line if text is None else f"{line}  {text!r}"


class RunClock:
    """The progress line's time: wall-clock seconds since this call of fit started, and
    the time left to --epochs at the pace of the epochs it has run (measurements and
    samples included). --patience may end the run sooner."""

    def __init__(self, start_epoch, epochs, clock=time.perf_counter):
        self.start_epoch, self.epochs, self.clock, self.start = start_epoch, epochs, clock, clock()

    def __call__(self, epoch):
        elapsed = self.clock() - self.start
        done = epoch - self.start_epoch
        if epoch >= self.epochs or done < 1:
            return f"{duration(elapsed)} elapsed"
        return f"{duration(elapsed)} elapsed, {duration(elapsed / done * (self.epochs - epoch))} left"


def duration(seconds):
    """42s, 5m07s, 3h05m, 2d04h."""
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def summary_line(state, device):
    """The book's closing line: the last epoch's perplexity and the whole run's tokens/s."""
    ppl = state.history[-1]["train_ppl"]
    return f"perplexity {ppl:.1f}, {state.total_tokens / max(state.train_time, 1e-9):.1f} tokens/sec on {device}"


ARRAY_FIELDS = ("params", "H", "optimizer", "snapshots")  # saved as arrays, not in the JSON


def state_to_dict(state):
    """The JSON-able part of a TrainState (params, H, the optimizer's state and the
    snapshots are saved as arrays)."""
    d = dataclasses.asdict(dataclasses.replace(state, **{k: None for k in ARRAY_FIELDS}))
    for k in ARRAY_FIELDS:
        del d[k]
    return d


def state_from_dict(d, params, H=None, optimizer=None, snapshots=None):
    return TrainState(params=params, H=H, optimizer=optimizer, snapshots=snapshots, **d)
