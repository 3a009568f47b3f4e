"""Check the hand-written BPTT against central differences, in float64.

    python scripts/gradcheck.py [--batch-size 3 --num-steps 5 --vocab-size 8 --num-hiddens 6
                                 --activation tanh --seed 0]

Prints one row per parameter (and the initial state H0) and exits 1 if any
relative error exceeds the tolerance.
"""
import numpy as np

from minirnn.backend import get_backend
from minirnn.cli import ArgumentParser
from minirnn.config import ACTIVATIONS, DEVICES
from minirnn.errors import UsageError
from minirnn.gradcheck import ATOL, STEP, TOLERANCE, check_gradients, random_params


def main(argv, prog="gradcheck.py"):
    p = ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    p.add_argument("--batch-size", type=int, default=3, help="B (default 3)")
    p.add_argument("--num-steps", type=int, default=5, help="T (default 5)")
    p.add_argument("--vocab-size", type=int, default=8, help="V (default 8)")
    p.add_argument("--num-hiddens", type=int, default=6, help="H (default 6)")
    p.add_argument("--activation", choices=tuple(ACTIVATIONS), default="tanh")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--scale", type=float, default=0.5,
                   help="std of the random weights, state and final-state gradient (default 0.5)")
    p.add_argument("--tol", type=float, default=TOLERANCE, help=f"largest relative error that passes (default {TOLERANCE:g})")
    p.add_argument("--device", choices=DEVICES, default=None,
                   help="default: the MINIRNN_DEVICE environment variable, else cpu")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    a = p.parse_args(argv)
    for name in ("batch_size", "num_steps", "vocab_size", "num_hiddens"):
        if getattr(a, name) < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(a, name)}")
    if not a.scale > 0 or not a.tol > 0:
        raise UsageError("--scale and --tol must be > 0")

    backend = get_backend(a.device)
    rng = np.random.default_rng(a.seed)
    B, T, V, H = a.batch_size, a.num_steps, a.vocab_size, a.num_hiddens
    params = random_params(V, H, rng, scale=a.scale, backend=backend)
    X = rng.integers(0, V, (B, T))
    Y = rng.integers(0, V, (B, T))
    H0 = backend.asarray(rng.normal(0.0, a.scale, (B, H)))
    dH_T = backend.asarray(rng.normal(0.0, a.scale, (B, H)))
    rows = check_gradients(params, X, Y, H0, dH_T=dH_T, activation=a.activation, tol=a.tol)

    print(f"gradient check: B={B} T={T} V={V} H={H}, {a.activation}, seed {a.seed}, float64, "
          f"central differences (h={STEP:g}), tolerance {a.tol:g} relative (or {ATOL:g} absolute)")
    print(f"{'array':<6} {'shape':<10} {'max rel error':>14} {'max abs error':>14}  {'skipped':>7}  result")
    ok = True
    for r in rows:
        ok &= r["passed"]
        print(f"{r['name']:<6} {str(r['shape']):<10} {r['rel_error']:>14.3e} {r['abs_error']:>14.3e}  "
              f"{r['skipped']:>7}  {'pass' if r['passed'] else 'FAIL'}")
    print("all gradients match" if ok else "GRADIENT CHECK FAILED")
    return 0 if ok else 1

