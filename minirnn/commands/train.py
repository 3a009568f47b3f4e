"""Train a character-level RNN. With no options: the book's run on The Time Machine.

    python scripts/train.py                       # batch 32, 35 steps, 512 hidden, 500 epochs
    python scripts/train.py --sampling reset      # the book's "random sampling" figure
    python scripts/train.py --save tm.npz --log tm.csv --plot tm.png
    python scripts/train.py --resume tm.npz       # continue an interrupted run
"""
import argparse
import csv
import io
import os
import sys

import numpy as np

from minirnn import checkpoint
from minirnn.atomic import atomic_write, check_writable
from minirnn.backend import get_backend
from minirnn.cli import ArgumentParser, StopFlag, invocation
from minirnn.config import ACTIVATIONS, CELL_NAMES, DEVICES, DTYPES, SAMPLINGS, TEXT_MODES, Config, flag_name
from minirnn.data import load_corpus
from minirnn.errors import CheckpointError, DataError, DivergedError, MinirnnError, UsageError
from minirnn.generate import predict
from minirnn.train import check_corpus, fit, new_state, state_from_dict, state_to_dict, summary_line

D = Config()
SAMPLE_PREFIX = "time traveller"


def parse(argv, prog="train.py"):
    p = ArgumentParser(prog=prog, description=__doc__.splitlines()[0],
                       argument_default=argparse.SUPPRESS)
    a = p.add_argument
    a("--batch-size", type=int, help=f"sequences per minibatch, B (default {D.batch_size})")
    a("--num-steps", type=int, help=f"steps per window, T (default {D.num_steps})")
    a("--num-hiddens", type=int, help=f"hidden units, H (default {D.num_hiddens})")
    a("--lr", type=float, help=f"SGD learning rate (default {D.lr})")
    a("--clip", type=float, help=f"clip gradients to this global norm; 0 turns clipping off (default {D.clip})")
    a("--epochs", type=int, help=f"epochs (default {D.epochs})")
    a("--sampling", choices=SAMPLINGS, help=f"minibatch order and state handling (default {D.sampling})")
    a("--max-tokens", type=int, help=f"train on the first N tokens, 0 = all (default {D.max_tokens})")
    a("--seed", type=int, help=f"seed for the weights and minibatch order (default {D.seed})")
    a("--device", choices=DEVICES, help="cpu, gpu (CuPy) or auto (default: $MINIRNN_DEVICE, else cpu)")
    a("--data", help="a UTF-8 text file to train on (default: The Time Machine)")
    a("--text-mode", choices=TEXT_MODES, help=f"letters: the book's preprocessing; raw: every character (default {D.text_mode})")
    a("--cell", choices=CELL_NAMES, help=f"recurrent cell: rnn, gru or lstm (default {D.cell})")
    a("--num-layers", type=int, help=f"stacked recurrent layers, L (default {D.num_layers})")
    a("--embed-size", type=int, help="learnable embedding of this size, E, instead of one-hot input; "
                                     f"0 means one-hot (default {D.embed_size})")
    a("--activation", choices=tuple(ACTIVATIONS), help=f"the rnn cell's activation (default {D.activation})")
    a("--no-detach", dest="detach", action="store_false",
      help="backpropagate through every earlier window of the epoch (slow; sequential only)")
    a("--dtype", choices=DTYPES, help=f"training precision (default {D.dtype})")
    a("--print-every", type=int, help=f"progress line every N epochs (default {D.print_every})")
    a("--save", metavar="PATH", help="write a checkpoint (.npz) here at the end and on Ctrl-C")
    a("--save-every", type=int, metavar="N", help="also write the checkpoint every N epochs")
    a("--log", metavar="PATH", help="write one CSV row per epoch here")
    a("--plot", metavar="PATH", help="draw the perplexity curve as a PNG here (needs matplotlib)")
    a("--resume", metavar="PATH", help="continue from this checkpoint, with its config")
    a("--debug", action="store_true", help="show tracebacks")
    return vars(p.parse_args(argv))


def main(argv, prog="train.py"):
    args = parse(argv, prog)
    args.pop("debug", None)
    save, log, plot, resume = (args.pop(k, None) for k in ("save", "log", "plot", "resume"))
    if "data" in args:
        args["data"] = os.path.abspath(args["data"])
    save = save or resume  # a resumed run keeps saving where it came from
    for option, path in (("--save", save), ("--log", log), ("--plot", plot)):
        if path:
            check_writable(path, option)
    if plot:
        _need_matplotlib()

    ckpt = checkpoint.load(resume) if resume else None
    cfg = _resume_config(ckpt.config, args) if ckpt else Config.from_dict(args)
    if args.get("save_every") and not save:
        raise UsageError("--save-every needs --save PATH")
    backend = get_backend(cfg.device)
    corpus = load_corpus(cfg.data, text_mode=cfg.text_mode, max_tokens=cfg.max_tokens)
    check_corpus(corpus, cfg)
    if ckpt:
        if corpus.vocab != ckpt.vocab:
            raise DataError(f"the text of {cfg.data or 'the book'} no longer gives the checkpoint's vocabulary; "
                            f"resume with the text the run started on")
        params = {k: backend.asarray(v) for k, v in ckpt.params.items()}
        H = None if ckpt.H is None else (tuple(backend.asarray(h) for h in ckpt.H) if isinstance(ckpt.H, tuple)
                                         else backend.asarray(ckpt.H))
        if not ckpt.state:
            raise CheckpointError(f"checkpoint {resume} holds a model but no training state, so it cannot be resumed")
        state = state_from_dict(ckpt.state, params, H)
    else:
        state = new_state(cfg, len(corpus.vocab), backend)
    vocab = corpus.vocab

    def sample(params, prefix=SAMPLE_PREFIX, n=50):
        return predict(prefix, n, params, vocab, activation=cfg.activation, text_mode=cfg.text_mode)

    def write_outputs():  # at the end, and on Ctrl-C
        if save:
            checkpoint.save(save, state.params, vocab, cfg, state_to_dict(state), state.H)
        if log:
            _write_log(log, state.history)
        if plot and state.history:
            _write_plot(plot, state.history)

    def on_epoch(state):  # the last epoch is written by write_outputs
        if state.epoch == cfg.epochs:
            return
        if save and cfg.save_every and state.epoch % cfg.save_every == 0:
            checkpoint.save(save, state.params, vocab, cfg, state_to_dict(state))
        if log and state.epoch % cfg.print_every == 0:
            _write_log(log, state.history)

    if state.epoch >= cfg.epochs:
        print(f"nothing to do: the checkpoint is at epoch {state.epoch} and --epochs is {cfg.epochs}; "
              f"raise --epochs to train on")
        return 0
    print(f"training on {backend.name}: {len(corpus.train)} tokens (held out: {len(corpus.heldout)}), "
          f"vocab {len(vocab)}, {model_name(cfg)}, B={cfg.batch_size} T={cfg.num_steps} H={cfg.num_hiddens}, "
          f"lr {cfg.lr}, clip {cfg.clip or 'off'}, {cfg.sampling}"
          + (f", resuming at epoch {state.epoch + 1}" if ckpt else ""), flush=True)
    finishing = "the current minibatch" if cfg.detach else "the current epoch (--no-detach)"
    with StopFlag(finishing) as stop, np.errstate(over="ignore", invalid="ignore"):  # divergence is checked each epoch
        try:
            finished = fit(cfg, corpus, backend, state, report=lambda line: print(line, flush=True),
                           on_epoch=on_epoch, should_stop=stop, sample=sample)
        except DivergedError:
            if log:
                _write_log(log, state.history)
            raise  # the last good checkpoint stays as it was
    write_outputs()
    if not finished:
        where = f"epoch {state.epoch + 1}, after minibatch {state.batch}" if state.batch else f"after epoch {state.epoch}"
        how = f"resume with: {invocation(prog)} --resume {save}" if save else "nothing saved (give --save PATH to keep progress)"
        print(f"stopped {where}; {how}", file=sys.stderr)
        return 130
    print(summary_line(state, backend.name))
    print(sample(state.params))
    print(sample(state.params, "traveller"))
    return 0


def model_name(cfg):
    """'rnn', '2-layer lstm, embedding 32', ..."""
    return ((f"{cfg.num_layers}-layer " if cfg.num_layers > 1 else "") + cfg.cell
            + (f", embedding {cfg.embed_size}" if cfg.embed_size else ""))


def _resume_config(saved, given):
    """The checkpoint's config; an option given now must agree with it, except a few."""
    for key, value in given.items():
        if key not in Config.RESUMABLE_CHANGES and getattr(saved, key) != value:
            raise UsageError(f"{flag_name(key)} {value} conflicts with the checkpoint's {getattr(saved, key)}; "
                             f"drop it to resume, or start a new run without --resume")
    return saved.replace(**{k: v for k, v in given.items() if k in Config.RESUMABLE_CHANGES})


def _write_log(path, history):
    fields = ("epoch", "train_ppl", "heldout_ppl", "tokens_per_s", "grad_norm")
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=fields, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    w.writerows({k: ("" if row[k] is None else row[k]) for k in fields} for row in history)
    atomic_write(path, lambda f: f.write(buf.getvalue()), mode="w")


def _need_matplotlib():
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise MinirnnError('--plot needs matplotlib: pip install -e ".[plot]" (or drop --plot)') from None


def _write_plot(path, history):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot([r["epoch"] for r in history], [r["train_ppl"] for r in history], label="train")
    held = [(r["epoch"], r["heldout_ppl"]) for r in history if r["heldout_ppl"] is not None]
    if held:
        ax.plot(*zip(*held), "o-", markersize=3, label="held-out")
    ax.set_xlabel("epoch")
    ax.set_ylabel("perplexity")
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(matplotlib.ticker.LogFormatter(labelOnlyBase=False))
    ax.yaxis.set_minor_formatter(matplotlib.ticker.LogFormatter(labelOnlyBase=False, minor_thresholds=(2, 0.5)))
    ax.set_title("perplexity (log scale)")
    ax.legend()
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=100))
    plt.close(fig)

