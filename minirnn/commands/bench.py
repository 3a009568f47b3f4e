"""Time the training step against the bare matrix-product floor, in one run.

    python scripts/bench.py                      # book, large and long configs, one BLAS thread
    python scripts/bench.py --threads 2 --json   # two threads; one JSON object per config
    python scripts/bench.py --profile            # time per phase of the step

The floor is the time of the step's matrix products alone, with the same shapes, on
preallocated buffers; step/floor says how much the rest of the engine (the gate
arithmetic, the loss, clipping, the update) adds. See docs/performance.md.
"""
import argparse
import json
import os

from minirnn.threads import TRAIN_THREADS, blas_threads, default_threads

OUT_OF_MEMORY = "lower --num-hiddens, --batch-size or --num-steps, or run fewer --configs (large needs the most), or on --device cpu if it ran on the GPU"


def parse(argv, prog="bench.py"):
    from minirnn.cli import ArgumentParser
    from minirnn.bench import CONFIGS

    p = ArgumentParser(prog=prog, description=__doc__.strip(),
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", choices=("cpu", "gpu", "auto"), default=None,
                   help="cpu, gpu (CuPy) or auto (default: $MINIRNN_DEVICE, else cpu)")
    p.add_argument("--threads", type=int, default=int(default_threads(TRAIN_THREADS)),
                   help=f"BLAS threads, set before NumPy loads (default {TRAIN_THREADS}, as for train, or "
                        f"$OPENBLAS_NUM_THREADS; this machine has {os.cpu_count()} cores)")
    shapes = "; ".join(f"{name}: B {B}, T {T}, H {H}, V {V}" for name, (B, T, H, V) in CONFIGS.items())
    p.add_argument("--configs", nargs="+", choices=sorted(CONFIGS), default=list(CONFIGS),
                   help=f"which shapes to time (default all): {shapes}")
    from minirnn.config import cell_option

    p.add_argument("--cell", type=cell_option, default="rnn",
                   help="recurrent cell: rnn, gru, lstm, or the path of a cell file (default rnn)")
    p.add_argument("--num-layers", type=int, default=1, help="stacked layers, L (default 1)")
    p.add_argument("--embed-size", type=int, default=0, help="embedding size E; 0 means one-hot input (default 0)")
    p.add_argument("--num-hiddens", type=int, help="hidden units H, overriding each config's own")
    p.add_argument("--batch-size", type=int, help="sequences per minibatch B, overriding each config's own")
    p.add_argument("--num-steps", type=int, help="steps per window T, overriding each config's own")
    p.add_argument("--repeats", type=int, default=10, help="timed repeats; the median is reported (default 10)")
    p.add_argument("--warmup", type=int, default=3, help="untimed calls first (default 3)")
    p.add_argument("--json", action="store_true", help="one JSON object per config, one per line")
    p.add_argument("--profile", action="store_true", help="also print the time per phase of the step")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    return p.parse_args(argv)


def main(argv, prog="bench.py"):
    args = parse(argv, prog)
    from minirnn.errors import UsageError

    for flag, value, low in (("--threads", args.threads, 1), ("--repeats", args.repeats, 1), ("--warmup", args.warmup, 0)):
        if value < low:
            raise UsageError(f"{flag} must be an integer >= {low}, got {value}")
    for flag, value, low in (("--num-layers", args.num_layers, 1), ("--embed-size", args.embed_size, 0),
                             ("--num-hiddens", args.num_hiddens, 1), ("--batch-size", args.batch_size, 1),
                             ("--num-steps", args.num_steps, 1)):
        if value is not None and value < low:
            raise UsageError(f"{flag} must be an integer >= {low}, got {value}")
    if str(args.threads) != blas_threads():
        raise UsageError(f"--threads {args.threads} was not set before NumPy loaded; "
                         f"run it as a command (minirnn bench, or python scripts/bench.py)")

    from minirnn.backend import get_backend
    from minirnn.bench import CONFIGS, bench_config, profile_step
    from minirnn.model import Spec

    backend = get_backend(args.device)
    if not args.json:
        model = (Spec(args.cell, args.num_layers, 0, args.num_hiddens or 0, args.embed_size).describe()
                 + "".join(f", {k}={v}" for k, v in (("B", args.batch_size), ("T", args.num_steps),
                                                      ("H", args.num_hiddens)) if v))
        print(f"{model}; device {backend.name}, {args.threads} BLAS thread{'' if args.threads == 1 else 's'}, float32, "
              f"median of {args.repeats} after {args.warmup} warm-up steps")
        print(f"{'config':<7} {'B/T/H/V':<16} {'step ms':>9} {'floor ms':>9} {'tokens/s':>10} "
              f"{'floor tok/s':>11} {'step/floor':>10}")
    for name in args.configs:
        r = bench_config(name, backend, args.threads, warmup=args.warmup, repeats=args.repeats, cell=args.cell,
                         num_layers=args.num_layers, embed_size=args.embed_size, num_hiddens=args.num_hiddens,
                         batch_size=args.batch_size, num_steps=args.num_steps)
        if args.json:
            print(json.dumps(r), flush=True)
        else:
            shape = f"{r['batch_size']}/{r['num_steps']}/{r['num_hiddens']}/{r['vocab_size']}"
            print(f"{name:<7} {shape:<16} {r['step_ms']:9.2f} {r['floor_ms']:9.2f} {r['tokens_per_s']:10.0f} "
                  f"{r['floor_tokens_per_s']:11.0f} {r['ratio']:10.3f}", flush=True)
        if args.profile:
            B, T, H, V = CONFIGS[name]
            B, T = args.batch_size or B, args.num_steps or T
            spec = Spec(args.cell, args.num_layers, V, args.num_hiddens or H, args.embed_size)
            phases, subnormal = profile_step(spec, B, T, backend, repeats=args.repeats)
            total = sum(phases.values())
            print(f"  profile of {name} (sum of phases {total * 1e3:.2f} ms; subnormal floats in dlogits "
                  f"and the pre-activation gradients: {subnormal})")
            for phase, t in phases.items():
                print(f"    {phase:<32} {t * 1e3:8.3f} ms {100 * t / total:6.1f}%")
    return 0

