"""Continue text from a saved model.

    python scripts/generate.py --checkpoint tm.npz --prefix 'time traveller' -n 100 [--temperature 0.8 | --alpha 1.25]
    python scripts/generate.py --checkpoint tm.npz --temperature 0.8 --num-samples 5 --output samples.txt
"""
import math
import sys

from minirnn import checkpoint
from minirnn.atomic import atomic_write, check_named, check_not_input, check_writable
from minirnn.backend import get_backend
from minirnn.cli import ArgumentParser
from minirnn.config import DEVICES
from minirnn.data import preprocess
from minirnn.errors import UsageError, plural
from minirnn.generate import predict, snapshot_models

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
    p.add_argument("--seed", type=int, default=0, help="seed for sampling (default 0); sample k of "
                                                       "--num-samples uses seed + k - 1")
    p.add_argument("--num-samples", type=int, default=1, metavar="N",
                   help="N samples, one seed each, separated by a blank line (needs --temperature or --alpha: "
                        "greedy text is the same every time) (default 1)")
    p.add_argument("--output", metavar="FILE", help="write the text to FILE (replaced atomically) instead of "
                                                    "printing it")
    p.add_argument("--cell", metavar="PATH", default=None,
                   help="for a model trained with a cell file: that file again (a checkpoint never runs code)")
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
        if args.temperature == math.inf:  # 1/α overflows: α is below the smallest normal float
            raise UsageError(f"--alpha {args.alpha} is too small to sample with (1/alpha overflows); "
                             f"give a value of at least 1e-300")
    if args.num_samples < 1:
        raise UsageError(f"--num-samples must be an integer >= 1, got {args.num_samples}")
    if args.num_samples > 1 and args.temperature is None:
        raise UsageError(f"--num-samples {args.num_samples} needs --temperature or --alpha: greedy text is the same "
                         f"every time")
    if args.output is not None:
        check_named({"--output": args.output})
        check_not_input({"--output": args.output}, {"--checkpoint": args.checkpoint})
        check_writable(args.output, "--output")
    if args.prefix is not None and not args.prefix:
        raise UsageError("--prefix is empty; give at least one character, e.g. --prefix 'time traveller'")
    ckpt = checkpoint.load(args.checkpoint)
    cell = checkpoint.check_cell(ckpt, args.cell, args.checkpoint)
    if args.prefix is None:
        args.prefix = ckpt.config.sample_prefix or "time traveller"
    text = preprocess(args.prefix, ckpt.config.text_mode)
    if text and text != args.prefix:  # said once, so that the echoed prefix is no surprise
        print(f"note: the prefix {args.prefix!r} became {text!r} after the model's "
              f"'{ckpt.config.text_mode}' preprocessing", file=sys.stderr)
    if not args.ensemble and ckpt.snapshots is None:
        held = "no ensemble snapshots yet" if ckpt.config.ensemble > 1 else "no ensemble"
        print(f"note: the checkpoint holds {held}, so --no-ensemble changes nothing", file=sys.stderr)
    backend = get_backend(args.device)
    model = {k: backend.asarray(v) for k, v in ckpt.params.items()}
    ensemble = args.ensemble and ckpt.snapshots is not None
    if ensemble:
        model = snapshot_models(ckpt.snapshots, backend)
    texts = [predict(args.prefix, args.num_chars, model, ckpt.vocab, activation=ckpt.config.activation,
                     text_mode=ckpt.config.text_mode, temperature=args.temperature, seed=args.seed + k, cell=cell)
             for k in range(args.num_samples)]
    if ensemble:
        print(f"generated by the ensemble of {ckpt.snapshots.describe()} (--no-ensemble: {_own_weights(ckpt.state)} "
              f"alone)", file=sys.stderr)
    text = "\n\n".join(texts)
    if args.output is None:
        print(text)
        return 0
    atomic_write(args.output, lambda f: f.write((text + "\n").encode("utf-8")))  # UTF-8, whatever the locale
    print(f"wrote {plural(args.num_samples, 'sample')} of {args.num_chars} characters to {args.output}",
          file=sys.stderr)
    return 0


def _own_weights(state):
    """Which weights a checkpoint holds besides its snapshots: 'the model of epoch 4', or,
    saved mid-epoch, 'the weights saved in epoch 5, after minibatch 123'."""
    if state.get("batch"):
        return f"the weights saved in epoch {state['epoch'] + 1}, after minibatch {state['batch']}"
    return f"the model of epoch {state.get('epoch', '?')}"

