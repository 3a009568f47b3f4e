"""Check the hand-written BPTT against central differences, in float64.

    python scripts/gradcheck.py [--cell rnn|gru|lstm|PATH --step --num-layers 1 --embed-size 0
                                 --batch-size 3 --num-steps 5 --vocab-size 8 --num-hiddens 6
                                 --activation tanh --seed 0 --scale 0.5 --h 1e-4 --tol 1e-6]

Prints one row per parameter, under its own name, and for the initial state (H0,
and C0 for the LSTM): the relative and absolute error, the estimated error of the
differences, the elements skipped and a verdict (pass, FAIL, or unresolved with
its reason).

Method: central differences at h, h/2 and h/4, Richardson-extrapolated; their
spread estimates their own error, so an array FAILs only when the backward is off
by more than the tolerance and that error, and is "unresolved" when the
differences cannot resolve it (see minirnn/gradcheck.py).

--step checks one step alone: the cell's step backward against central
differences of its step forward, on random A_t, state and weights, one row per
gradient it returns (dA_t, dH_prev, ..., dW_h*); a wrong line in a step backward
shows as the one array it corrupts. --cell PATH checks a cell file (see
docs/own-cell.md).
"""
import argparse
import math
import sys
import time

import numpy as np

from minirnn.backend import get_backend
from minirnn.cli import ArgumentParser
from minirnn.cells import get_cell
from minirnn.cells.steps import FastSteps
from minirnn.config import ACTIVATIONS, DEVICES, cell_option
from minirnn.dropout import dropout_masks
from minirnn.errors import UsageError
from minirnn.gradcheck import STEP, TOLERANCE, check_gradients, check_step, random_params
from minirnn.model import model_spec, rnn_forward

PASSES_PER_ENTRY = 6  # f at ±h, ±h/2, ±h/4 (minirnn.gradcheck.differences)
LONG_CHECK_SECONDS = 60  # a check expected to take longer says so before it starts

_DESCRIPTION = __doc__.split("\n\n")[0] + "\n\n" + __doc__.split("\n\n")[-1].strip()
EPILOG = """exit status:
  0  every array passed
  1  some array FAILED (or an error stopped the check)
  2  a bad option
  3  nothing failed, but some array could not be checked (unresolved)"""


def build_parser(prog="gradcheck.py"):
    p = ArgumentParser(prog=prog, description=_DESCRIPTION, epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cell", type=cell_option, default="rnn",
                   help="recurrent cell: rnn, gru, lstm, or the path of a cell file (default rnn)")
    p.add_argument("--step", nargs="?", const=True, default=None, type=_step_or_h, metavar="",
                   help="check one step's backward alone, against differences of its forward "
                        "(--step H, with a number, is the older spelling of --h H)")
    p.add_argument("--num-layers", type=int, default=1, help="L, stacked layers (default 1)")
    p.add_argument("--embed-size", type=int, default=0, help="E, a learnable embedding; 0 means one-hot input (default 0)")
    p.add_argument("--dropout", type=float, default=0.0,
                   help="dropout probability, its masks held fixed during the check (default 0)")
    p.add_argument("--batch-size", type=int, default=3, help="B, the number of sequences (default 3)")
    p.add_argument("--num-steps", type=int, default=5, help="T, the steps of the window (default 5)")
    p.add_argument("--vocab-size", type=int, default=8, help="V, the vocabulary size (default 8)")
    p.add_argument("--num-hiddens", type=int, default=6, help="H, the hidden units (default 6)")
    p.add_argument("--activation", choices=tuple(ACTIVATIONS), default="tanh", help="the rnn cell's φ (default tanh)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random weights, tokens and states (default 0)")
    p.add_argument("--scale", type=float, default=0.5,
                   help="std of the random weights, initial state and final-state gradient (default 0.5)")
    p.add_argument("--h", type=float, default=STEP, help=f"h, the largest difference step (default {STEP:g})")
    p.add_argument("--tol", type=float, default=TOLERANCE, help=f"largest relative error that passes (default {TOLERANCE:g})")
    p.add_argument("--device", choices=DEVICES, default=None,
                   help="cpu, gpu or auto (default: the MINIRNN_DEVICE environment variable, else cpu)")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    return p


def _step_or_h(text):
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--step takes no value (or a number, the older spelling of --h), "
                                         f"got {text!r}") from None


def main(argv, prog="gradcheck.py"):
    a = build_parser(prog).parse_args(argv)
    if a.step is not None and a.step is not True:  # --step H: the difference step, as before --h
        if not (math.isfinite(a.step) and a.step > 0):
            raise UsageError(f"--step must be a finite number > 0, got {a.step}")
        a.h, a.step = a.step, None
    for name in ("batch_size", "num_steps", "vocab_size", "num_hiddens", "num_layers"):
        if getattr(a, name) < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be an integer >= 1, got {getattr(a, name)}")
    for name in ("seed", "embed_size"):
        if getattr(a, name) < 0:
            raise UsageError(f"--{name.replace('_', '-')} must be an integer >= 0, got {getattr(a, name)}")
    for name in ("scale", "h", "tol"):
        if not (math.isfinite(getattr(a, name)) and getattr(a, name) > 0):
            raise UsageError(f"--{name} must be a finite number > 0, got {getattr(a, name)}")
    if not 0 <= a.dropout < 1:
        raise UsageError(f"--dropout must be a probability in [0, 1), got {a.dropout}")
    if a.cell != "rnn" and a.activation != "tanh":
        raise UsageError(f"--activation {a.activation} applies to --cell rnn only; drop it for --cell {a.cell}")

    backend = get_backend(a.device)
    cell = get_cell(a.cell)  # a cell file is loaded and checked here
    if a.step:
        return _step(a, cell, backend)
    rng = np.random.default_rng(a.seed)
    B, T, V, H, L = a.batch_size, a.num_steps, a.vocab_size, a.num_hiddens, a.num_layers
    params = random_params(V, H, rng, scale=a.scale, backend=backend, cell=a.cell, num_layers=L,
                           embed_size=a.embed_size or None)
    X = rng.integers(0, V, (B, T))
    Y = rng.integers(0, V, (B, T))
    shape = (B, H) if L == 1 else (L, B, H)
    members = len(cell.STATES)
    state = tuple(backend.asarray(rng.normal(0.0, a.scale, shape)) for _ in range(members))
    G = tuple(backend.asarray(rng.normal(0.0, a.scale, shape)) for _ in range(members))
    state, G = (state, G) if members > 1 else (state[0], G[0])
    masks = dropout_masks(model_spec(params, a.cell), T, B, a.dropout, rng, params["W_hq"])
    _warn_if_long(params, X, state, a.activation, masks, backend, a.cell)
    rows = check_gradients(params, X, Y, state, dstate_T=G, activation=a.activation, h=a.h, tol=a.tol, masks=masks,
                           cell=a.cell)

    model = model_spec(params, a.cell).describe()
    model += f", dropout {a.dropout:g}" if a.dropout else ""
    print(f"gradient check: {model}, B={B} T={T} V={V} H={H}, {a.activation if a.cell == 'rnn' else 'gates'}, "
          f"seed {a.seed}, float64; central differences at h={a.h:g}, h/2, h/4, extrapolated; "
          f"tolerance {a.tol:g} relative")
    return _report(rows)


def _step(a, cell, backend):
    """gradcheck --step: the step backward alone (gradcheck.check_step)."""
    if isinstance(a.cell, str) and a.cell in ("rnn", "gru", "lstm"):
        cell = FastSteps(a.cell, a.activation)
    B, H = a.batch_size, a.num_hiddens
    rows = check_step(cell, B, H, seed=a.seed, scale=a.scale, h=a.h, tol=a.tol, backend=backend)
    where = cell.path if isinstance(cell, FastSteps) else a.cell  # a cell file as the user named it
    print(f"step check: {cell.NAME} ({where}), B={B} H={H}, seed {a.seed}, float64; "
          f"step_backward against central differences of step_forward at h={a.h:g}, h/2, h/4, extrapolated; "
          f"tolerance {a.tol:g} relative")
    return _report(rows, "gradient")


def _report(rows, first="array"):
    """The table of verdicts and the exit status: 0 pass, 1 FAIL, 3 unresolved."""
    width = max(6, *(len(r["name"]) for r in rows))
    shape_width = max(8, *(len(str(r["shape"])) for r in rows))
    print(f"{first:<{width}} {'shape':<{shape_width}} {'rel error':>10} {'abs error':>10} {'est. error':>11} "
          f"{'skipped':>8}  verdict")
    for r in rows:
        print(f"{r['name']:<{width}} {str(r['shape']):<{shape_width}} {r['rel_error']:>10.2e} {r['abs_error']:>10.2e} "
              f"{r['est_error']:>11.2e} {r['skipped']:>8}  {r['verdict']}" + (f": {r['reason']}" if r["reason"] else ""))
    verdicts = [r["verdict"] for r in rows]
    if "FAIL" in verdicts:
        print(f"GRADIENT CHECK FAILED: {verdicts.count('FAIL')} of {len(rows)} arrays")
        return 1
    if "unresolved" in verdicts:
        print(f"no failure, but {verdicts.count('unresolved')} of {len(rows)} arrays could not be checked")
        return 3
    print(f"all {len(rows)} arrays pass")
    return 0


def _warn_if_long(params, X, state, activation, masks, backend, cell=None):
    """Every entry of every array (and of the initial state) costs PASSES_PER_ENTRY
    forward passes: time one, and say before starting when the whole check will take long."""
    entries = sum(int(np.prod(p.shape)) for p in params.values())
    entries += sum(int(np.prod(s.shape)) for s in (state if isinstance(state, tuple) else (state,)))
    start = time.perf_counter()
    rnn_forward(params, X, state, activation=activation, masks=masks, cell=cell)
    backend.synchronize()  # deliberate sync: time the pass, not its queueing
    seconds = PASSES_PER_ENTRY * entries * (time.perf_counter() - start)
    if seconds > LONG_CHECK_SECONDS:
        print(f"note: {entries:,} entries to check, {PASSES_PER_ENTRY} forward passes each: about "
              f"{seconds / 60:.0f} min at this size; a smaller --num-hiddens, --embed-size, --vocab-size or "
              f"--batch-size checks the same code in seconds", file=sys.stderr, flush=True)
