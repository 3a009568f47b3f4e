#!/usr/bin/env python
"""Check the hand-written BPTT against central differences, in float64.

    python scripts/gradcheck.py [--batch-size 3 --num-steps 5 --vocab-size 8 --num-hiddens 6
                                 --activation tanh --seed 0 --scale 0.5 --step 1e-4 --tol 1e-6]

Prints one row per parameter and for the initial state H0: the relative and
absolute error, the estimated error of the differences, the elements skipped and
a verdict (pass, FAIL, or unresolved with its reason).

Method: central differences at h, h/2 and h/4, Richardson-extrapolated; their
spread estimates their own error, so an array FAILs only when the backward is off
by more than the tolerance and that error, and is "unresolved" when the
differences cannot resolve it (see minirnn/gradcheck.py).
"""
import argparse
import math
import sys

import numpy as np

from minirnn.backend import get_backend
from minirnn.cli import ArgumentParser, run
from minirnn.config import ACTIVATIONS, DEVICES
from minirnn.errors import UsageError
from minirnn.gradcheck import STEP, TOLERANCE, check_gradients, random_params

_DESCRIPTION = __doc__.split("\n\n")[0] + "\n\n" + __doc__.split("\n\n")[-1].strip()
EPILOG = """exit status:
  0  every array passed
  1  some array FAILED (or an error stopped the check)
  2  a bad option
  3  nothing failed, but some array could not be checked (unresolved)"""


def build_parser():
    p = ArgumentParser(prog="gradcheck.py", description=_DESCRIPTION, epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch-size", type=int, default=3, help="B, the number of sequences (default 3)")
    p.add_argument("--num-steps", type=int, default=5, help="T, the steps of the window (default 5)")
    p.add_argument("--vocab-size", type=int, default=8, help="V, the vocabulary size (default 8)")
    p.add_argument("--num-hiddens", type=int, default=6, help="H, the hidden units (default 6)")
    p.add_argument("--activation", choices=tuple(ACTIVATIONS), default="tanh", help="φ (default tanh)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random weights, tokens and states (default 0)")
    p.add_argument("--scale", type=float, default=0.5,
                   help="std of the random weights, initial state and final-state gradient (default 0.5)")
    p.add_argument("--step", type=float, default=STEP, help=f"h, the largest difference step (default {STEP:g})")
    p.add_argument("--tol", type=float, default=TOLERANCE, help=f"largest relative error that passes (default {TOLERANCE:g})")
    p.add_argument("--device", choices=DEVICES, default=None,
                   help="cpu, gpu or auto (default: the MINIRNN_DEVICE environment variable, else cpu)")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    return p


def main(argv):
    a = build_parser().parse_args(argv)
    for name in ("batch_size", "num_steps", "vocab_size", "num_hiddens"):
        if getattr(a, name) < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be an integer >= 1, got {getattr(a, name)}")
    if a.seed < 0:
        raise UsageError(f"--seed must be an integer >= 0, got {a.seed}")
    for name in ("scale", "step", "tol"):
        if not (math.isfinite(getattr(a, name)) and getattr(a, name) > 0):
            raise UsageError(f"--{name} must be a finite number > 0, got {getattr(a, name)}")

    backend = get_backend(a.device)
    rng = np.random.default_rng(a.seed)
    B, T, V, H = a.batch_size, a.num_steps, a.vocab_size, a.num_hiddens
    params = random_params(V, H, rng, scale=a.scale, backend=backend)
    X = rng.integers(0, V, (B, T))
    Y = rng.integers(0, V, (B, T))
    H0 = backend.asarray(rng.normal(0.0, a.scale, (B, H)))
    G = backend.asarray(rng.normal(0.0, a.scale, (B, H)))
    rows = check_gradients(params, X, Y, H0, dstate_T=G, activation=a.activation, h=a.step, tol=a.tol)

    print(f"gradient check: B={B} T={T} V={V} H={H}, {a.activation}, seed {a.seed}, float64; central differences "
          f"at h={a.step:g}, h/2, h/4, extrapolated; tolerance {a.tol:g} relative")
    print(f"{'array':<6} {'shape':<8} {'rel error':>10} {'abs error':>10} {'est. error':>11} {'skipped':>8}  verdict")
    for r in rows:
        print(f"{r['name']:<6} {str(r['shape']):<8} {r['rel_error']:>10.2e} {r['abs_error']:>10.2e} "
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


if __name__ == "__main__":
    sys.exit(run(main))
