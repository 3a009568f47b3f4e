"""Train a character-level RNN. With no options: the book's run on The Time Machine.

    python scripts/train.py                       # batch 32, 35 steps, 512 hidden, 500 epochs
    python scripts/train.py --sampling reset      # the book's "random sampling" figure
    python scripts/train.py --save tm.npz --log tm.csv --plot tm.png
    python scripts/train.py --resume tm.npz       # continue an interrupted run (and its --log, --plot)
    python scripts/train.py --init-from lstm.npz  # a new run from another model's weights (e.g. imported)
    python scripts/train.py --threads 2           # two BLAS threads (default one)
"""
import argparse
import csv
import io
import json
import math
import os
import sys
import time
import warnings

import numpy as np

from minirnn import checkpoint
from minirnn.atomic import atomic_write, check_named, check_not_input, check_png, check_writable, same_file
from minirnn.backend import get_backend
from minirnn.cli import ArgumentParser, StopFlag, have_matplotlib, invocation
from minirnn.config import (ACTIVATIONS, DEFAULT_LR, DEVICES, DTYPES, MODEL_OPTIONS, OPTIMIZERS, PRESETS,
                            SAMPLINGS, TEXT_MODES, Config, cell_option, flag_name, preset)
from minirnn.cells import is_cell_path
from minirnn.data import default_text_mode, load_corpus, preprocess
from minirnn.textmodes import text_prefix
from minirnn.errors import CheckpointError, DataError, DivergedError, MinirnnError, UsageError, plural
from minirnn.generate import predict, snapshot_models
from minirnn.model import Spec
from minirnn.optim import make_optimizer
from minirnn.threads import TRAIN_THREADS, blas_threads
from minirnn.train import (bpc, check_corpus, check_same_text, check_snapshots, duration, evaluate, fit, measurements,
                           memory_estimate, new_state, scored_tokens, selected, state_from_dict, state_to_dict,
                           summary_line)

D = Config()
BOOK_PREFIX = "time traveller"
SMALLER = "lower --num-hiddens, --num-layers, --batch-size or --num-steps (with --no-detach, also --max-tokens)"
OUT_OF_MEMORY = (f"{SMALLER}; a resumed run keeps them, so resume with --device cpu or on a machine with more "
                 f"memory")


def parse(argv, prog="train.py"):
    p = ArgumentParser(prog=prog, description=__doc__.splitlines()[0], argument_default=argparse.SUPPRESS,
                       epilog="Options given beside --preset override it. All defaults live in minirnn/config.py.")
    model = p.add_argument_group("model")
    model.add_argument("--cell", type=cell_option, help=f"recurrent cell: rnn, gru, lstm, or the path of a cell file "
                                                        f"(docs/own-cell.md) (default {D.cell})")
    model.add_argument("--num-hiddens", type=int, help=f"hidden units, H (default {D.num_hiddens})")
    model.add_argument("--num-layers", type=int, help=f"stacked recurrent layers, L (default {D.num_layers})")
    model.add_argument("--embed-size", type=int, help="learnable embedding of this size, E, instead of one-hot "
                                                      f"input; 0 means one-hot (default {D.embed_size})")
    model.add_argument("--activation", choices=tuple(ACTIVATIONS), help=f"the rnn cell's activation (default {D.activation})")
    model.add_argument("--dropout", type=float, metavar="P", help="dropout on the non-recurrent connections, "
                                                                  f"training only (default {D.dropout:g})")
    model.add_argument("--dtype", choices=DTYPES, help=f"training precision (default {D.dtype})")
    data = p.add_argument_group("data")
    data.add_argument("--data", help="a UTF-8 text file to train on (default: The Time Machine)")
    data.add_argument("--text-mode", choices=TEXT_MODES,
                      help="letters: the book's ASCII preprocessing (A-Z only, lowercased; other letters dropped, "
                           "lines joined with no space); words: every letter of any script, lowercased, each run of "
                           "other characters (line breaks too) one space; raw: every character as it is "
                           f"(default: {default_text_mode(None)} for the book, {default_text_mode('file')} for --data)")
    data.add_argument("--max-tokens", type=int, help="train on the first N tokens and hold out the next N; "
                                                     f"0: the whole text, its last 10%% held out (default {D.max_tokens})")
    data.add_argument("--heldout-tokens", type=int, metavar="N",
                      help="hold out N tokens: those after the first --max-tokens, or the text's last N with "
                           "--max-tokens 0 (default 0: as --max-tokens says)")
    data.add_argument("--batch-size", type=int, help=f"sequences per minibatch, B (default {D.batch_size})")
    data.add_argument("--num-steps", type=int, help=f"steps per window, T (default {D.num_steps})")
    data.add_argument("--sampling", choices=SAMPLINGS, help=f"minibatch order and state handling (default {D.sampling})")
    train = p.add_argument_group("training")
    train.add_argument("--preset", choices=tuple(PRESETS), help="a named set of defaults: heldout is the recipe "
                                                                "for the lowest held-out perplexity on the book")
    train.add_argument("--epochs", type=int, help=f"epochs (default {D.epochs})")
    train.add_argument("--optimizer", choices=OPTIMIZERS, help=f"sgd, adagrad or adam (default {D.optimizer})")
    train.add_argument("--lr", type=float, help="learning rate (default: "
                                                + ", ".join(f"{v:g} for {k}" for k, v in DEFAULT_LR.items()) + ")")
    train.add_argument("--clip", type=float, help=f"clip gradients to this global norm; 0 turns clipping off (default {D.clip:g})")
    train.add_argument("--lr-decay", type=float, metavar="GAMMA", help="multiply the learning rate by GAMMA whenever "
                                                                       f"the held-out perplexity does not improve (default {D.lr_decay:g}: off)")
    train.add_argument("--eval-every", type=int, metavar="N", help="measure the held-out perplexity every N epochs "
                                                                   "(default 0: at every progress line)")
    train.add_argument("--eval-tokens", type=int, metavar="N",
                       help="during training, measure on the first N held-out tokens only; the last epoch and "
                            "--save-best's model are scored on all of them (default 0: all, always)")
    train.add_argument("--patience", type=int, metavar="K", help="stop after K held-out measurements without "
                                                                 f"improvement (default {D.patience}: never)")
    train.add_argument("--ensemble", type=int, metavar="K",
                       help="keep the last K measured models and select and report the average of their predictions "
                            f"(a snapshot ensemble; costs K host copies of the weights) (default {D.ensemble}: off)")
    train.add_argument("--no-detach", dest="detach", action="store_false",
                       help="backpropagate through every earlier window of the epoch (slow; sequential only)")
    train.add_argument("--seed", type=int, help=f"seed for the weights, minibatch order and dropout (default {D.seed})")
    train.add_argument("--device", choices=DEVICES, help="cpu, gpu (CuPy) or auto (default: $MINIRNN_DEVICE, else cpu)")
    train.add_argument("--threads", type=int, metavar="N",
                       help=f"BLAS threads, set before NumPy loads (default {TRAIN_THREADS}, or $OPENBLAS_NUM_THREADS; "
                            f"more can help on an idle machine, see docs/training.md)")
    out = p.add_argument_group("output")
    out.add_argument("--print-every", type=int, metavar="N", help=f"progress line every N epochs (default {D.print_every})")
    out.add_argument("--progress-seconds", type=float, metavar="S",
                     help=f"inside a long epoch, a progress line every S seconds; 0 turns it off (default {D.progress_seconds:g})")
    out.add_argument("--sample-prefix", metavar="TEXT", help="prefix of the samples shown (default: 'time traveller' "
                                                             "on the book, else the start of the training text)")
    out.add_argument("--sample-temperature", type=float, metavar="TAU",
                     help="sample with temperature TAU (q ∝ p^(1/TAU)) instead of greedily (default: greedy)")
    out.add_argument("--save", metavar="PATH", help="write a checkpoint (.npz) here at the end and on Ctrl-C")
    out.add_argument("--save-every", type=int, metavar="N", help="also write the checkpoint every N epochs (default 0: only at the end and on Ctrl-C)")
    out.add_argument("--save-best", metavar="PATH", help="keep the model with the lowest held-out perplexity here")
    out.add_argument("--log", metavar="PATH", help="write one CSV row per epoch here")
    out.add_argument("--plot", metavar="PATH", help="draw the perplexity curve as a PNG here (needs matplotlib)")
    out.add_argument("--resume", metavar="PATH", help="continue from this checkpoint, with its config and outputs")
    out.add_argument("--init-from", metavar="PATH",
                     help="start a new run from this checkpoint's weights (its cell, sizes, activation, and by "
                          "default its text and dtype); the optimizer and epochs start afresh")
    out.add_argument("--debug", action="store_true", help="show tracebacks")
    return vars(p.parse_args(argv))


def main(argv, prog="train.py"):
    args = parse(argv, prog)
    args.pop("debug", None)
    typed_prefix = args.get("sample_prefix")
    save, log, plot, resume, threads, save_best = (args.pop(k, None) for k in
                                                   ("save", "log", "plot", "resume", "threads", "save_best"))
    check_named({"--save": save, "--log": log, "--plot": plot, "--save-best": save_best, "--resume": resume,
                 "--data": args.get("data"), "--init-from": args.get("init_from")})
    if resume and "init_from" in args:
        raise UsageError(f"--init-from cannot be combined with --resume: a resumed run keeps its own weights; "
                         f"drop --init-from to resume {resume}, or --resume to start a new run from "
                         f"{args['init_from']}")
    if plot:
        check_png(plot, "--plot")
    if "preset" in args:
        if resume:
            raise UsageError(f"--preset {args['preset']} cannot be combined with --resume: the checkpoint holds "
                             f"its whole config; drop --preset to resume")
        args = preset(args.pop("preset"), args)
    if threads is not None:
        _check_threads(threads)
    elif (blas_threads() or "").isdigit():  # the default, set by the launcher
        threads = int(blas_threads())
    init = _init_from(args) if "init_from" in args else None  # fills in the options its weights fix
    if "data" in args:
        args["data"] = os.path.abspath(args["data"])
    ckpt = checkpoint.load(resume) if resume else None
    changes = {}  # options a resumed run changes: {name: [old, new]}
    kept_best = ckpt.outputs.get("save_best") if ckpt else None  # where the resumed run kept its best model
    if ckpt and not save and kept_best and same_file(resume, kept_best):
        raise UsageError(f"{resume} is the best model its run kept (--save-best): resuming it would overwrite it "
                         f"with later weights; give --save PATH for the continued run (the best stays in {resume})")
    save = save or resume  # a resumed run keeps saving where it came from ...
    if save and save == resume:
        check_writable(save, "--resume", fix="give --save PATH to write the checkpoint elsewhere")
    elif save:
        check_writable(save, "--save")
    plot_given = bool(plot)
    named = {"log": log, "plot": plot, "save_best": save_best}  # outputs named now, not taken from the checkpoint
    log, plot, save_best, outputs = _outputs(log, plot, save_best, ckpt)  # ... and continues its outputs
    if save:
        outputs["save"] = os.path.abspath(save)  # so that a copy of the checkpoint knows it is one
    _distinct(checkpoint=save, log=log, plot=plot, best=save_best)
    # A checkpoint replaces its source by design, and so does the best that the resumed run kept there.
    new_best = None if kept_best and save_best and same_file(save_best, kept_best) else save_best
    check_not_input({"--log": log, "--plot": plot, "--save-best": new_best}, {"--resume": resume})
    data = args.get("data") or (ckpt.config.data if ckpt else None)
    check_not_input({"--save": save, "--log": log, "--plot": plot, "--save-best": save_best}, {"--data": data})
    check_not_input({"--save": save, "--log": log, "--plot": plot, "--save-best": save_best},
                    {"--init-from": args.get("init_from")})
    plot = _plotting(plot, given=plot_given)  # after the usage errors

    if ckpt and (ckpt.cell is not None or is_cell_path(args.get("cell"))):  # a cell file: --cell PATH again
        ckpt.config = ckpt.config.replace(cell=checkpoint.check_cell(ckpt, args.pop("cell", None), resume))
    cfg = _resume_config(ckpt.config, args) if ckpt else Config.from_dict(args)
    if ckpt and cfg.data and not os.path.exists(cfg.data):
        raise DataError(f"the checkpoint trains on --data {cfg.data}, which no longer exists; "
                        f"put the text back there to resume, or start a new run without --resume")
    if args.get("save_every") and not save:
        raise UsageError("--save-every needs --save PATH")
    if cfg.lr == 0:
        warnings.warn("--lr 0 leaves the weights as they are: this run measures the model, it does not train it")
    backend = get_backend(cfg.device)
    corpus = _load(cfg)
    if ckpt:
        if not ckpt.state:
            raise CheckpointError(f"checkpoint {resume} holds a model but no training state, so it cannot be resumed; "
                                  f"start a new run from its weights with --init-from {resume} instead of --resume")
        if corpus.vocab != ckpt.vocab:
            raise DataError(f"the text of {cfg.data or 'the book'} no longer gives the checkpoint's vocabulary "
                            f"(was the file changed?); resume with the text the run started on, "
                            f"or start a new run without --resume")
        params = {k: backend.asarray(v) for k, v in ckpt.params.items()}
        H = None if ckpt.H is None else (tuple(backend.asarray(h) for h in ckpt.H) if isinstance(ckpt.H, tuple)
                                         else backend.asarray(ckpt.H))
        state = state_from_dict(ckpt.state, params, H, snapshots=ckpt.snapshots)
        state.lr = cfg.lr if state.lr is None else state.lr  # a checkpoint of minirnn 0.1 has no lr of its own
        state.optimizer = make_optimizer(cfg.optimizer, state.lr, params)
        try:
            state.optimizer.load_state_dict({k: backend.asarray(v) for k, v in ckpt.optimizer_state.items()})
        except ValueError as e:
            raise CheckpointError(f"checkpoint {resume}: its {cfg.optimizer} state does not fit the model ({e}); "
                                  f"start a new run without --resume") from None
        check_same_text(corpus, state, cfg.data or "the book")  # before the sizes: a changed text is the cause
        check_snapshots(state, corpus.heldout, cfg)
        changes = _changes(ckpt.config, args, state)
        if "lr" in changes:  # the rate in effect, after any --lr-decay, is the one replaced
            state.lr = state.optimizer.lr = cfg.lr
        if changes:
            state.changes.append({"epoch": state.epoch, "batch": state.batch, "changes": changes})
    else:
        if init and corpus.vocab != init.vocab:
            raise DataError(f"the text of {cfg.data or 'the book'} ({cfg.text_mode}) gives another vocabulary "
                            f"({plural(len(corpus.vocab), 'token')}) than the --init-from model's "
                            f"({plural(len(init.vocab), 'token')}); train on the text and --text-mode that model "
                            f"was trained on")
        _check_memory(cfg, corpus, backend)
        state = new_state(cfg, len(corpus.vocab), backend, params=init and init.params)
    check_corpus(corpus, cfg)
    if ckpt:
        _check_continued(resume, state, {"log": log, "plot": plot, "save_best": save_best}, named)
        _check_origin(resume, ckpt.outputs, named)
    if cfg.max_tokens >= corpus.num_tokens and not ckpt and not cfg.heldout_tokens:  # said once, when the run starts
        given = f"--max-tokens {cfg.max_tokens} is" if "max_tokens" in args else \
            f"the default --max-tokens {cfg.max_tokens} is"
        warnings.warn(f"{given} not below the text's {corpus.num_tokens} tokens, so the "
                      f"whole text is used, its last 10% held out (as with --max-tokens 0); give a smaller value "
                      f"to train on the first N tokens and hold out the next N")
    if cfg.ensemble > measurements(cfg) and not ckpt:
        n = measurements(cfg)
        more = "more --epochs" if (cfg.eval_every or cfg.print_every) == 1 else "--eval-every 1 or more --epochs"
        warnings.warn(f"--ensemble {cfg.ensemble} is more than the {plural(n, 'held-out measurement')} this run "
                      f"makes, so the ensemble holds at most {plural(n, 'model')}; give {more}, "
                      f"or a smaller --ensemble")
    vocab = corpus.vocab
    prefix = cfg.sample_prefix or (BOOK_PREFIX if cfg.data is None else default_prefix(corpus))
    cfg = cfg.replace(sample_prefix=prefix)  # saved with the model: generate's default prefix

    def sample(params, prefix=prefix, n=50):  # params: one model, or a list of them (an ensemble)
        return predict(prefix, n, params, vocab, activation=cfg.activation, text_mode=cfg.text_mode, cell=cfg.cell,
                       temperature=cfg.sample_temperature, seed=cfg.seed)

    sample(state.params, n=0)  # a prefix that cannot be read fails now, not after training
    shown = preprocess(prefix, cfg.text_mode)
    if prefix == typed_prefix and shown and shown != prefix:  # said once, as generate says it
        print(f"note: the sample prefix {prefix!r} became {shown!r} after the '{cfg.text_mode}' preprocessing",
              file=sys.stderr)

    def save_to(path, H=None):
        checkpoint.save(path, state.params, vocab, cfg, state_to_dict(state), H, outputs=outputs,
                        optimizer_state=state.optimizer.state_dict(), snapshots=state.snapshots)

    def write_outputs():  # at the end, and on Ctrl-C
        if save:
            save_to(save, state.H)
        if log:
            _write_log(log, state.history, state.changes)
        if plot and state.history:
            _write_plot(plot, state.history, cfg, len(vocab))

    def on_epoch(state):  # the last epoch is written by write_outputs
        if state.epoch == cfg.epochs:
            return
        if save and cfg.save_every and state.epoch % cfg.save_every == 0:
            save_to(save)
        if log and state.epoch % cfg.print_every == 0:
            _write_log(log, state.history, state.changes)

    # Whether save_best holds the best model so far: a new run's is written at its
    # first measurement; a resumed run's best so far is the file its run kept, copied
    # if --save-best now names another path.
    best_kept = False
    if ckpt and save_best and state.best_heldout is not None and kept_best and _holds_best(kept_best, state):
        if same_file(save_best, kept_best):
            best_kept = True
        else:
            with open(kept_best, "rb") as source:
                best = source.read()
            atomic_write(save_best, lambda f: f.write(best))
            print(f"copied the best model so far (epoch {state.best_epoch}) from {kept_best} to {save_best}")
            best_kept = True

    def on_best(state):  # a new lowest held-out perplexity
        nonlocal best_kept
        if save_best:
            save_to(save_best)
            best_kept = True
            row = state.history[-1]
            if not row.get("heldout_all", True):  # measured on a part: the kept model is scored on all
                ppl = evaluate(state.params, corpus.heldout, cfg, backend)
                print(f"  kept epoch {state.epoch} in {save_best}: on all {scored_tokens(corpus.heldout, cfg):,} "
                      f"held-out tokens, perplexity {ppl:.3f}, {bpc(ppl):.3f} bpc", flush=True)

    if state.stopped_early:
        print(f"nothing to do: --patience stopped this run at epoch {state.epoch} (best epoch {state.best_epoch}, "
              f"held-out perplexity {state.best_heldout:.3f}{' (ensemble)' if cfg.ensemble > 1 else ''}); "
              f"start a new run to train on")
        return 0
    if state.epoch >= cfg.epochs:
        print(f"nothing to do: the checkpoint is at epoch {state.epoch} and --epochs is {cfg.epochs}; "
              f"raise --epochs to train on")
        return 0
    print(f"training on {backend.name}: {len(corpus.train)} tokens (held out: {len(corpus.heldout)}), "
          f"vocab {len(vocab)}, {Spec(cfg.cell, cfg.num_layers, len(vocab), cfg.num_hiddens, cfg.embed_size).describe()}, B={cfg.batch_size} T={cfg.num_steps} H={cfg.num_hiddens}, "
          f"{cfg.optimizer} lr {state.lr:g}, clip {cfg.clip or 'off'}, {cfg.sampling}"
          + (f", dropout {cfg.dropout:g}" if cfg.dropout else "")
          + (f", ensemble of {cfg.ensemble}" if cfg.ensemble > 1 else "")
          + (f", {cfg.activation}" if cfg.activation != "tanh" else "") + (f", {cfg.dtype}" if cfg.dtype != "float32" else "")
          + (f", {threads} BLAS thread{'s' if threads > 1 else ''}" if threads else "")
          + (f", resuming at epoch {state.epoch + 1}" if ckpt else "")
          + (f", starting from the weights of {cfg.init_from}" if cfg.init_from and not ckpt else ""), flush=True)
    if cfg.data is not None:
        print(text_line(cfg, corpus), flush=True)
    if ckpt and changes:
        print(f"changed on resuming: {_changed_words(changes)} (recorded in the checkpoint"
              f"{' and the log' if log else ''})", flush=True)
    if ckpt and (log or plot):
        print(f"continuing {_where(log=log, plot=plot)}", flush=True)
    report = lambda line: print(line, flush=True)  # noqa: E731
    tick = EpochProgress(cfg.progress_seconds, cfg.epochs, report) if cfg.progress_seconds else None
    finishing = "the current minibatch" if cfg.detach else "the current epoch (--no-detach)"
    with StopFlag(finishing) as stop, np.errstate(over="ignore", invalid="ignore"):  # divergence is checked each epoch
        try:
            finished = fit(cfg, corpus, backend, state, report=report,
                           on_epoch=on_epoch, should_stop=stop, sample=sample, tick=tick, on_best=on_best)
        except DivergedError:
            if log:
                _write_log(log, state.history, state.changes)
            if plot and state.history:
                _write_plot(plot, state.history, cfg, len(vocab))
            kept = ("" if not save else f"; the checkpoint {save} is left as it was" if os.path.exists(save) else
                    f"; no checkpoint was written to {save} (--save-every N saves one every N epochs)")
            if log or plot:
                print(f"wrote {_where(log=log, plot=plot)} up to epoch {state.epoch}{kept}", file=sys.stderr)
            raise  # the last good checkpoint stays as it was
    write_outputs()
    written = _where(checkpoint=save, log=log, plot=plot if state.history else None,
                     best=save_best if best_kept else None)
    if not finished:
        where = f"epoch {state.epoch + 1}, after minibatch {state.batch}" if state.batch else f"after epoch {state.epoch}"
        how = f"resume with: {invocation(prog)} --resume {save}" if save else "nothing saved (give --save PATH to keep progress)"
        if written:
            print(f"wrote {written}", file=sys.stderr)
        print(f"stopped {where}; {how}", file=sys.stderr)
        return 130
    if state.best_heldout is not None:
        best_row = state.history[state.best_epoch - 1] if 0 < state.best_epoch <= len(state.history) else {}
        part = "" if best_row.get("heldout_all", True) else f" on the first {best_row['heldout_tokens']:,} tokens"
        print(f"best held-out perplexity {state.best_heldout:.3f} ({bpc(state.best_heldout):.3f} bpc){part} "
              f"at epoch {state.best_epoch}"
              + _ensemble_words(cfg, state)
              + (f" (kept in {save_best})" if best_kept else
                 f" (not kept in {save_best}: it was found before this run wrote there)" if save_best else ""))
    if written:
        print(f"wrote {written}")
    if save and not save_best and state.best_heldout is not None:
        _warn_last_worse(save, state)
    print(summary_line(state, backend.name))
    model = state.params
    if state.snapshots is not None and len(state.snapshots):
        print(f"continued by the ensemble of {state.snapshots.describe()}:")  # the last ones, not the best
        model = snapshot_models(state.snapshots, backend)
    print(sample(model))
    if prefix == BOOK_PREFIX:
        print(sample(model, "traveller"))
    return 0


def _init_from(args):
    """Load the --init-from checkpoint; its weights fix the model options (one given
    otherwise is a usage error), and its text, text mode and dtype are the defaults."""
    path = args["init_from"]
    init = checkpoint.load(path)
    saved = init.config
    for key in MODEL_OPTIONS:
        if key in args and args[key] != getattr(saved, key):
            raise UsageError(f"{flag_name(key)} {args[key]} conflicts with --init-from {path}, whose weights are "
                             f"for {flag_name(key)} {getattr(saved, key)}; drop {flag_name(key)}")
        args[key] = getattr(saved, key)
    for key in ("data", "text_mode", "dtype"):
        args.setdefault(key, getattr(saved, key))
    if args["data"] is None:
        del args["data"]
    args["init_from"] = os.path.abspath(path)
    return init


def _ensemble_words(cfg, state):
    """', by the ensemble of the last 3 measured models': the members behind the best figure."""
    if cfg.ensemble < 2:
        return ""
    n = min(cfg.ensemble, sum(row["heldout_ppl"] is not None for row in state.history[:state.best_epoch]))
    return f", by the ensemble of the last {n} measured models" if n > 1 else ", by the ensemble, which held this one model then"


def _holds_best(path, state):
    """Whether the checkpoint at path is this run's best model (another run may have
    written the same path since)."""
    try:
        kept = checkpoint.load(path).state
    except MinirnnError:
        return False
    return kept.get("epoch") == state.best_epoch and kept.get("best_heldout") == state.best_heldout


def _load(cfg):
    """The run's corpus; a large file reports its reading every --progress-seconds."""
    report = None
    size = os.path.getsize(cfg.data) if cfg.data is not None and os.path.isfile(cfg.data) else 0  # else load's error
    if cfg.progress_seconds and size > 2 ** 26:
        started, last = time.perf_counter(), [time.perf_counter()]
        shown = os.path.relpath(cfg.data) if cfg.data.startswith(os.getcwd() + os.sep) else cfg.data  # as typed, mostly

        def report(done, total):
            now = time.perf_counter()
            if now - last[0] >= cfg.progress_seconds and done < total:
                last[0] = now
                print(f"  reading {shown}: {done / 2**20:,.0f} of {total / 2**20:,.0f} MiB, "
                      f"{duration(now - started)}", flush=True)
        print(f"reading {shown} ({size / 2**20:,.0f} MiB)", flush=True)
    return load_corpus(cfg.data, text_mode=cfg.text_mode, max_tokens=cfg.max_tokens,
                       heldout_tokens=cfg.heldout_tokens, on_chunk=report)


def text_line(cfg, corpus):
    """What became of the file: tokens trained on, held out and unused, what the
    text mode dropped, and the option that changes each."""
    n, s = corpus.num_tokens, corpus.stats
    parts = [f"text: {s.get('characters', n):,} characters in {cfg.text_mode} mode -> {n:,} tokens; "
             f"training on {len(corpus.train):,}, holding out {len(corpus.heldout):,}"]
    if corpus.unused and corpus.unused < 0.01 * n:  # a remainder: --max-tokens 0 would add little, and may fail
        parts.append(f"{corpus.unused:,} unused")
    elif corpus.unused:
        share = corpus.unused / n
        parts.append(f"{corpus.unused:,} ({share:.0%}) unused: --max-tokens {cfg.max_tokens} takes only the text's "
                     f"start; --max-tokens 0 trains on all of it"
                     + (" but the held-out part" if cfg.heldout_tokens else ", its last 10% held out"))
    if cfg.eval_tokens and cfg.eval_tokens < len(corpus.heldout):
        parts.append(f"held-out figures score the first {cfg.eval_tokens:,} of them until the last epoch")
    if s.get("dropped_letters"):
        parts.append(f"letters mode dropped {s['dropped_letters']:,} letters outside A-Z "
                     f"({s['dropped_examples']} ...)")
    if s.get("glued_lines"):
        parts.append(f"letters mode joined {s['glued_lines']:,} lines to the next with no space, "
                     f"gluing their words")
    if s.get("dropped_letters") or s.get("glued_lines"):
        parts.append("--text-mode words keeps every letter and puts a space between lines")
    return "; ".join(parts)


def default_prefix(corpus, length=20):
    """The start of the training text, after preprocessing: a prefix it surely contains."""
    return text_prefix(corpus.vocab.decode(corpus.train[:3 * length]), length)


def _outputs(log, plot, save_best, ckpt):
    """The log, plot and best-model paths, as given or else the checkpoint's, checked
    writable; and their absolute paths, saved with the checkpoint so that a resumed
    run continues them."""
    saved = ckpt.outputs if ckpt else {}
    paths = {}
    for name, given in (("log", log), ("plot", plot), ("save_best", save_best)):
        flag = "--" + name.replace("_", "-")
        if given:
            check_writable(given, flag)
            paths[name] = given
        elif saved.get(name):
            check_writable(saved[name], f"the checkpoint's {flag}", fix=f"give {flag} PATH to write it elsewhere")
            paths[name] = saved[name]
    keep = {k: os.path.abspath(v) for k, v in paths.items()}
    return paths.get("log"), paths.get("plot"), paths.get("save_best"), keep


def _plotting(plot, given):
    """The plot path, if matplotlib can draw it: a plot asked for now needs it; the
    checkpoint's own plot is skipped, with a warning, when it is missing."""
    if plot and not have_matplotlib():
        if given:
            raise MinirnnError("--plot needs matplotlib: pip install matplotlib (or drop --plot)")
        warnings.warn(f"the checkpoint's --plot {plot} needs matplotlib, which is not installed: "
                      f"no plot this time (pip install matplotlib)")
        return None
    return plot


def _check_memory(cfg, corpus, backend):
    """Refuse, with advice, a run that cannot fit in the host's memory: past it the
    operating system would kill the process without a word."""
    available = _available_memory()
    if backend.name != "cpu" or available is None:
        return
    windows = max(len(corpus.train) // (cfg.batch_size * cfg.num_steps), 1)
    need = memory_estimate(cfg, len(corpus.vocab), windows)
    if need > available:
        raise MinirnnError(f"out of memory: this run needs about {need / 2**30:.3g} GB, more than the "
                           f"{available / 2**30:.3g} GB available; "
                           + ("a smaller --ensemble (each snapshot is a copy of the weights), or " if cfg.ensemble > 1
                              else "") + SMALLER)


def _available_memory():
    """MemAvailable from /proc/meminfo, in bytes; None where there is none (not Linux)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _distinct(**paths):
    """Two outputs written to one file would destroy each other: a usage error."""
    seen = {}
    for what, path in paths.items():
        if path:
            key = os.path.realpath(path)
            if key in seen:
                raise UsageError(f"the {seen[key]} and the {what} would both be written to {path}; "
                                 f"give them different paths")
            seen[key] = what


def _where(**paths):
    """'checkpoint tm.npz, log tm.csv' for the paths given."""
    return ", ".join(f"{what} {path}" for what, path in paths.items() if path)


def _check_threads(threads):
    if threads < 1:
        raise UsageError(f"--threads must be >= 1, got {threads}")
    if str(threads) != blas_threads():
        raise UsageError(f"--threads {threads} was not set before NumPy loaded; "
                         f"run it as a command (minirnn train, or python scripts/train.py)")


class EpochProgress:
    """Inside an epoch, a line about every `seconds`: minibatches done, tokens/s and
    the time left. It reads only the clock and host counters (no device sync); on a
    GPU the rate is that of queueing work, which the device's queue keeps honest."""

    def __init__(self, seconds, epochs, report, clock=time.perf_counter):
        self.seconds, self.epochs, self.report, self.clock = seconds, epochs, report, clock
        self.epoch = None

    def __call__(self, state, num_batches):
        now = self.clock()
        if state.epoch != self.epoch:  # the epoch's first minibatch (or the first after a resume)
            self.epoch, self.start, self.last = state.epoch, now, now
            self.batch0, self.tokens0 = state.batch, state.tokens
            return
        if now - self.last < self.seconds or state.batch >= num_batches:
            return
        self.last = now
        elapsed = now - self.start
        per_batch = elapsed / (state.batch - self.batch0)
        epoch_left = (num_batches - state.batch) * per_batch
        run_left = epoch_left + (self.epochs - state.epoch - 1) * num_batches * per_batch
        self.report(f"  epoch {state.epoch + 1}: minibatch {state.batch}/{num_batches}, "
                    f"{(state.tokens - self.tokens0) / elapsed:.0f} tokens/s, epoch ends in {duration(epoch_left)}"
                    + (f", run in {duration(run_left)}" if self.epochs > state.epoch + 1 else ""))


def _shown(key, value):
    """A saved option as the user would name it: --data None is the book."""
    if key == "ensemble" and value == 1:
        return "1 (no ensemble)"
    if isinstance(value, float):
        return f"{value:g}"
    return "training text (the book)" if key == "data" and value is None else "unset" if value is None else value


def _resume_config(saved, given):
    """The checkpoint's config; an option given now must agree with it, except a few."""
    for key, value in given.items():
        if key not in Config.RESUMABLE_CHANGES and getattr(saved, key) != value:
            if key == "detach":  # the flag --no-detach sets detach False; a checkpoint can only have been detached
                raise UsageError("--no-detach conflicts with the checkpoint, which was trained with detaching "
                                 "(truncated BPTT); drop --no-detach to resume, or start a new run without --resume")
            Config.from_dict({key: value})  # a value that is wrong in itself is named as such
            raise UsageError(f"{flag_name(key)} {value} conflicts with the checkpoint's {_shown(key, getattr(saved, key))}; "
                             f"drop it to resume, or start a new run without --resume")
    return saved.replace(**{k: v for k, v in given.items() if k in Config.RESUMABLE_CHANGES})


def _changes(saved, given, state):
    """The options a resumed run changes, {name: [old, new]}; the old --lr is the rate in
    effect (--lr-decay may have lowered it)."""
    old = {**saved.to_dict(), "lr": state.lr}
    return {k: [old[k], v] for k, v in given.items() if k in Config.RESUMABLE_CHANGES and old[k] != v}


def _changed_words(changes):
    """'--lr 1 -> 0.5, --epochs 30 -> 40'."""
    return ", ".join(f"{flag_name(k)} {_shown(k, old)} -> {_shown(k, new)}" for k, (old, new) in changes.items())


def _change_notes(changes):
    """{epoch: text}: the log's note on the first epoch each resume's changes apply to."""
    notes = {}
    for c in changes:
        text = _changed_words(c["changes"]) + (f" (from minibatch {c['batch'] + 1})" if c["batch"] else "")
        notes[c["epoch"] + 1] = f"{notes[c['epoch'] + 1]}; {text}" if c["epoch"] + 1 in notes else text
    return notes


def _check_origin(resume, saved, named):
    """A checkpoint resumed from another path than the one its run saves to, while that
    file is still there (a copy, or the run's --save-best file), would take over the
    run's log, plot and best model: refuse, unless each is named anew."""
    origin = saved.get("save")
    taken = {k: saved[k] for k in ("log", "plot", "save_best")
             if saved.get(k) and not named[k] and not same_file(saved[k], resume)}  # a best file goes on as itself
    if origin and taken and os.path.exists(origin) and not same_file(origin, resume):
        flags = " and ".join(flag_name(k) + " PATH" for k in taken)
        raise UsageError(f"{resume} comes from the run that saves to {origin}, which is still there; resuming it "
                         f"would continue that run's {', '.join(taken.values())}: give {flags} for this run's own, "
                         f"or resume {origin}")


def _check_continued(resume, state, outputs, named):
    """A resumed run rewrites its log and plot from the checkpoint's history, and its best
    model at the next best epoch. Refuse to do so, for the outputs taken from the
    checkpoint, when that would destroy what another run wrote: a log with rows this
    checkpoint does not hold (a copy of it was resumed and went on, or the run went on
    past its last save), a plot drawn to such an epoch, or a best model from after the
    checkpoint's epoch. An output named on the command line is the user's choice, as for
    a new run: a note says what it replaces."""
    log, plot, best = outputs["log"], outputs["plot"], outputs["save_best"]
    hit = {}
    if log and not _log_is_prefix(log, state.history):
        end = _log_end(log)
        hit["log"] = f"the log {log} ({f'it goes on to epoch {end}' if (end or 0) > state.epoch else 'its rows differ'})"
    drawn = _png_run(plot) if plot else None
    if drawn and not _row_matches(state.history, drawn.get("epoch"), drawn.get("train_ppl")):
        hit["plot"] = f"the plot {plot} (drawn to epoch {drawn.get('epoch')})"
    best_epoch = _best_epoch(best) if best and not same_file(best, resume) else None
    if best_epoch is not None and best_epoch > state.epoch:
        hit["save_best"] = f"the best model {best} (of epoch {best_epoch})"
    refused = {k: v for k, v in hit.items() if not named[k]}
    if refused:
        flags = " and ".join(flag_name(k) + " PATH" for k in refused)
        raise UsageError(f"resuming {resume} (at epoch {state.epoch + 1}) would overwrite {' and '.join(refused.values())}, "
                         f"which a run from after this checkpoint wrote; give {flags} for this run's own "
                         f"(naming the same path replaces it)")
    for text in hit.values():
        print(f"note: replacing {text} with this run's, which goes on from epoch {state.epoch + 1}", file=sys.stderr)


def _log_rows(path):
    """A log's rows as (epoch, train_ppl), None for a row that is not a number; [] for no file."""
    try:
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError, csv.Error):
        return [None]
    out = []
    for row in rows:
        try:
            out.append((int(row["epoch"]), float(row["train_ppl"])))
        except (KeyError, TypeError, ValueError):
            out.append(None)
    return out


def _log_is_prefix(path, history):
    """Whether the log's rows are the first rows of history (rewriting it then loses nothing)."""
    rows = _log_rows(path)
    return len(rows) <= len(history) and all(r is not None and _row_matches(history, *r) for r in rows)


def _log_end(path):
    epochs = [r[0] for r in _log_rows(path) if r is not None]
    return max(epochs) if epochs else None


def _row_matches(history, epoch, train_ppl):
    """Whether history's row of that epoch has that training perplexity (the log keeps it exactly)."""
    return isinstance(epoch, int) and 1 <= epoch <= len(history) and history[epoch - 1]["train_ppl"] == train_ppl


def _best_epoch(path):
    """The epoch of the model kept at path, or None (no file, or not a checkpoint)."""
    if not os.path.exists(path):
        return None
    try:
        return checkpoint.load(path).state.get("epoch")
    except MinirnnError:
        return None


def _warn_last_worse(save, state):
    """--save keeps the last model: say so when it is clearly worse than the best."""
    row = state.history[-1]
    last = selected(row) if row.get("heldout_ppl") is not None else None
    if last is not None and last > LAST_WORSE * state.best_heldout:
        warnings.warn(f"{save} holds the last model (epoch {row['epoch']}, held-out perplexity {last:.3f}), not the "
                      f"best ({state.best_heldout:.3f} at epoch {state.best_epoch}), which was not kept; give "
                      f"--save-best PATH to keep the best model too")


LAST_WORSE = 1.05  # the last model is "clearly worse" at a held-out perplexity 5% above the best


def _write_log(path, history, changes=()):
    fields = ("epoch", "train_ppl", "heldout_ppl", "heldout_bpc", "heldout_tokens", "tokens_per_s", "grad_norm", "lr")
    if any("ensemble_ppl" in row for row in history):
        fields = fields[:5] + ("ensemble_ppl",) + fields[5:]
    notes = _change_notes(changes)
    if notes:  # a column of its own, only in the log of a run that was resumed with changes
        fields += ("changes",)
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=fields, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    rows = ({**row, "heldout_bpc": None if row.get("heldout_ppl") is None else bpc(row["heldout_ppl"])}
            for row in history)
    w.writerows({**{k: ("" if row.get(k) is None else row[k]) for k in fields}, **(
        {"changes": notes.get(row["epoch"], "")} if notes else {})} for row in rows)
    atomic_write(path, lambda f: f.write(buf.getvalue()), mode="w")


def _write_plot(path, history, cfg, vocab_size):
    """The perplexity curves on a log axis, titled with the text and the model. The PNG
    records the run's last epoch and training perplexity (text chunk PLOT_KEY), so a
    resumed run can tell whether the plot is its own."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot([r["epoch"] for r in history], [r["train_ppl"] for r in history], label="train")
    held = [(r["epoch"], r["heldout_ppl"]) for r in history if r["heldout_ppl"] is not None]
    if held:
        ax.plot(*zip(*held), "o-", markersize=3, label="held-out")
    ensemble = [(r["epoch"], r["ensemble_ppl"]) for r in history if r.get("ensemble_ppl") is not None]
    if ensemble:
        ax.plot(*zip(*ensemble), "s-", markersize=3, label="held-out, ensemble")
    ax.set_xlabel("epoch")
    ax.set_ylabel("perplexity (log scale)")
    ax.set_yscale("log")
    values = [v for r in history for k in ("train_ppl", "heldout_ppl", "ensemble_ppl")
              if 0 < (v := r.get(k) or 0) < math.inf]
    low, high = min(values) / 1.05, max(values) * 1.05  # a margin on each side, as matplotlib's own
    ticks = log_ticks(low, high)
    ax.set_ylim(min(ticks[0], low), max(ticks[-1], high))
    ax.yaxis.set_major_locator(matplotlib.ticker.FixedLocator(ticks))
    ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda y, _: f"{y:g}"))
    ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_title(plot_title(cfg, vocab_size), fontsize=9)
    ax.legend()
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    run = json.dumps({"epoch": history[-1]["epoch"], "train_ppl": history[-1]["train_ppl"]})
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=100, metadata={PLOT_KEY: run}))
    plt.close(fig)


PLOT_KEY = "minirnn run"


def plot_title(cfg, vocab_size):
    """'The Time Machine, first 10000 tokens: rnn, H=512, vocab 28': the text and the model."""
    text = "The Time Machine" if cfg.data is None else os.path.basename(cfg.data)
    part = "the whole text" if cfg.max_tokens == 0 else f"first {cfg.max_tokens} tokens"
    model = Spec(cfg.cell, cfg.num_layers, vocab_size, cfg.num_hiddens, cfg.embed_size).describe()
    return f"{text}, {part}: {model}, H={cfg.num_hiddens}, vocab {vocab_size}"


def log_ticks(low, high, most=8):
    """Tick values for a log axis from low to high: the densest of a few sets of round
    mantissas (1, 2, 5; then finer) that gives at most `most` ticks, widened by one tick
    at each end when fewer than 3 fall inside, so that a narrow range still shows
    several labels (the axis is then widened to them)."""
    low, high = min(low, high), max(low, high)
    best = None
    for mantissas in ((1,), (1, 3), (1, 2, 5), (1, 1.5, 2, 3, 5, 7), (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 7, 8, 9)):
        ticks = [m * 10.0 ** e for e in range(math.floor(math.log10(low)) - 1, math.ceil(math.log10(high)) + 1)
                 for m in mantissas]
        inside = [t for t in ticks if low <= t <= high]
        below, above = [t for t in ticks if t < low], [t for t in ticks if t > high]
        few = len(inside) < 3
        chosen = below[-1:] * few + inside + above[:1] * few
        if best is None or len(chosen) <= most:
            best = chosen
    best = best[::math.ceil(len(best) / most)]  # decades apart: every k-th decade
    return [float(f"{t:.6g}") for t in best]


def _png_run(path):
    """The run that drew the PNG at path (its PLOT_KEY text chunk, as a dict), or None."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return None
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        return None
    pos = 8
    while pos + 8 <= len(data):
        size, kind = int.from_bytes(data[pos:pos + 4], "big"), data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + size]
        if kind in (b"tEXt", b"iTXt") and body.startswith(PLOT_KEY.encode() + b"\0"):
            text = body[len(PLOT_KEY) + 1:]
            if kind == b"iTXt":  # compression flag and method, language tag, translated keyword
                if text[:1] != b"\0":
                    return None
                text = text[2:].split(b"\0", 2)[-1]
            try:
                run = json.loads(text.decode("latin-1" if kind == b"tEXt" else "utf-8"))
            except ValueError:
                return None
            return run if isinstance(run, dict) else None
        if kind == b"IEND":
            break
        pos += 12 + size
    return None
