#!/usr/bin/env python
"""Time the training step against the bare matrix-product floor, in one run.

    python scripts/bench.py                      # book, large and long configs, all cores
    python scripts/bench.py --threads 1 --json   # one JSON object per config
    python scripts/bench.py --profile            # time per phase of the step
"""
import json
import os
import sys


def _threads_from_argv(argv):
    """--threads N, read before anything imports NumPy (BLAS reads its thread count once)."""
    for i, a in enumerate(argv):
        if a == "--threads" and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith("--threads="):
            return a.split("=", 1)[1]
    return str(os.cpu_count())


THREADS = _threads_from_argv(sys.argv[1:])
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = THREADS


def parse(argv):
    from minirnn.cli import ArgumentParser
    from minirnn.bench import CONFIGS

    p = ArgumentParser(prog="bench.py", description=__doc__.splitlines()[0])
    p.add_argument("--device", choices=("cpu", "gpu"), default="cpu")
    p.add_argument("--threads", type=int, default=os.cpu_count(),
                   help=f"BLAS threads, set before NumPy loads (default: all {os.cpu_count()} cores)")
    p.add_argument("--configs", nargs="+", choices=sorted(CONFIGS), default=list(CONFIGS))
    p.add_argument("--repeats", type=int, default=10, help="timed repeats; the median is reported (default 10)")
    p.add_argument("--warmup", type=int, default=3, help="untimed calls first (default 3)")
    p.add_argument("--json", action="store_true", help="one JSON object per config, one per line")
    p.add_argument("--profile", action="store_true", help="also print the time per phase of the step")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    return p.parse_args(argv)


def main(argv):
    args = parse(argv)
    from minirnn.errors import UsageError

    if args.threads < 1 or args.repeats < 1 or args.warmup < 0:
        raise UsageError("--threads and --repeats must be >= 1, --warmup >= 0")
    if str(args.threads) != THREADS:
        raise UsageError(f"--threads {args.threads} was not set before NumPy loaded; run bench.py as a script")

    from minirnn.backend import get_backend
    from minirnn.bench import CONFIGS, bench_config, profile_step

    backend = get_backend(args.device)
    if not args.json:
        print(f"device {backend.name}, {args.threads} BLAS thread{'' if args.threads == 1 else 's'}, float32, "
              f"median of {args.repeats} after {args.warmup} warm-up steps")
        print(f"{'config':<7} {'B/T/H/V':<16} {'step ms':>9} {'floor ms':>9} {'tokens/s':>10} "
              f"{'floor tok/s':>11} {'step/floor':>10}")
    for name in args.configs:
        r = bench_config(name, backend, args.threads, warmup=args.warmup, repeats=args.repeats)
        if args.json:
            print(json.dumps(r), flush=True)
        else:
            shape = f"{r['batch_size']}/{r['num_steps']}/{r['num_hiddens']}/{r['vocab_size']}"
            print(f"{name:<7} {shape:<16} {r['step_ms']:9.2f} {r['floor_ms']:9.2f} {r['tokens_per_s']:10.0f} "
                  f"{r['floor_tokens_per_s']:11.0f} {r['ratio']:10.3f}", flush=True)
        if args.profile:
            phases, subnormal = profile_step(*CONFIGS[name], backend, repeats=args.repeats)
            total = sum(phases.values())
            print(f"  profile of {name} (sum of phases {total * 1e3:.2f} ms; subnormal floats in dZ, "
                  f"dlogits, dH0: {subnormal})")
            for phase, t in phases.items():
                print(f"    {phase:<24} {t * 1e3:8.3f} ms {100 * t / total:6.1f}%")
    return 0


if __name__ == "__main__":
    from minirnn.cli import run

    sys.exit(run(main))
