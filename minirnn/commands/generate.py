"""Continue text from a saved model.

    python scripts/generate.py --checkpoint tm.npz --prefix 'time traveller' -n 100 [--temperature 0.8 | --alpha 1.25]
"""
import math
import sys

from minirnn import checkpoint
from minirnn.backend import get_backend
from minirnn.cli import ArgumentParser
from minirnn.config import DEVICES
from minirnn.data import preprocess
from minirnn.errors import UsageError
from minirnn.generate import predict

OUT_OF_MEMORY = "ask for a smaller -n, or use a machine with more memory (or --device cpu, if it ran on the GPU)"


def main(argv, prog="generate.py"):
    p = ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", required=True, metavar="PATH", help="a checkpoint written by train.py --save")
    p.add_argument("--prefix", default=None, help="text to warm the state up on (default: the model's sample prefix, "
                                                  "'time traveller' for the book)")
    p.add_argument("-n", "--num-chars", type=int, default=100, help="characters to generate (default 100)")
    sampling = p.add_mutually_exclusive_group()
    sampling.add_argument("--temperature", type=float, default=None, metavar="TAU",
                          help="sample from p^(1/TAU), renormalised, instead of taking the most likely character")
    sampling.add_argument("--alpha", type=float, default=None,
                          help="the same as --temperature 1/ALPHA: sample from p^ALPHA, as the book's exercise writes it")
    p.add_argument("--seed", type=int, default=0, help="seed for sampling (default 0)")
    p.add_argument("--no-ensemble", dest="ensemble", action="store_false",
                   help="a checkpoint of a run with --ensemble K holds K models and generates with their average; "
                        "this uses its own weights alone")
    p.add_argument("--device", choices=DEVICES, default=None,
                   help="default: the MINIRNN_DEVICE environment variable, else cpu")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    args = p.parse_args(argv)
    if args.num_chars < 0:
        raise UsageError(f"-n must be >= 0, got {args.num_chars}")
    if args.seed < 0:
        raise UsageError(f"--seed must be an integer >= 0, got {args.seed}")
    if args.temperature is not None and not 0 < args.temperature < math.inf:
        raise UsageError(f"--temperature must be > 0 and finite, got {args.temperature}; "
                         f"leave it out to take the most likely character")
    if args.alpha is not None:
        if not 0 < args.alpha < math.inf:
            raise UsageError(f"--alpha must be > 0 and finite, got {args.alpha}; "
                             "leave it out to take the most likely character")
        args.temperature = 1 / args.alpha  # q ∝ p^α is q ∝ p^(1/τ) with τ = 1/α
    if args.prefix is not None and not args.prefix:
        raise UsageError("--prefix is empty; give at least one character, e.g. --prefix 'time traveller'")
    ckpt = checkpoint.load(args.checkpoint)
    if args.prefix is None:
        args.prefix = ckpt.config.sample_prefix or "time traveller"
    text = preprocess(args.prefix, ckpt.config.text_mode)
    if text and text != args.prefix:  # said once, so that the echoed prefix is no surprise
        print(f"note: the prefix {args.prefix!r} became {text!r} after the model's "
              f"'{ckpt.config.text_mode}' preprocessing", file=sys.stderr)
    if not args.ensemble and ckpt.snapshots is None:
        print("note: the checkpoint holds no ensemble, so --no-ensemble changes nothing", file=sys.stderr)
    backend = get_backend(args.device)
    model = {k: backend.asarray(v) for k, v in ckpt.params.items()}
    if args.ensemble and ckpt.snapshots is not None:
        print(f"generating with the ensemble of {ckpt.snapshots.describe()} (--no-ensemble: the model of epoch "
              f"{ckpt.state.get('epoch', '?')} alone)", file=sys.stderr)
        model = [{k: backend.asarray(v) for k, v in member.items()} for member in ckpt.snapshots.params]
    print(predict(args.prefix, args.num_chars, model, ckpt.vocab, activation=ckpt.config.activation,
                  text_mode=ckpt.config.text_mode, temperature=args.temperature, seed=args.seed))
    return 0

