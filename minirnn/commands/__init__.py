"""The command-line tools: `minirnn train|generate|gradcheck|bench|gradflow|export|import`, also
`python -m minirnn ...` and `python scripts/<command>.py ...`.

Nothing here imports NumPy, so that --threads can be set before it loads.
"""
import importlib
import sys

from .. import __version__
from ..threads import PRESET_THREADS, TRAIN_THREADS, default_threads, preset_from_argv, set_blas_threads, threads_from_argv

COMMANDS = {
    "train": "train a character-level RNN (default: the book's run on The Time Machine)",
    "generate": "continue text from a saved model",
    "gradcheck": "check the hand-written BPTT against central differences",
    "bench": "time the training step against its matrix products",
    "gradflow": "show how the gradient flows back through time, per step",
    "export": "write a checkpoint's weights as safetensors for PyTorch or Keras",
    "import": "read PyTorch or Keras weights from safetensors into a checkpoint",
}
MODULES = {"import": "import_"}  # `import` is a Python keyword


def launch(name, argv, prog):
    """Run one command on argv; prog is how the user called it (for messages)."""
    threads = threads_from_argv(argv)
    if name in ("train", "bench"):  # one thread unless told, or a preset's own (see threads.py)
        fallback = PRESET_THREADS.get(preset_from_argv(argv), TRAIN_THREADS) if name == "train" else TRAIN_THREADS
        set_blas_threads(threads or default_threads(fallback))
    from ..cli import OUT_OF_MEMORY, run

    try:
        module = importlib.import_module(f".{MODULES.get(name, name)}", __name__)  # NumPy loads here
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except ModuleNotFoundError as e:
        if e.name != "numpy":
            raise
        print("error: minirnn needs NumPy, which is not installed: pip install numpy "
              "(or pip install -e . in the clone, which installs it)", file=sys.stderr)
        return 1
    return run(lambda args: module.main(args, prog=prog), argv, getattr(module, "OUT_OF_MEMORY", OUT_OF_MEMORY))


def main(argv=None, prog="minirnn"):
    """`minirnn COMMAND [options]`."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["--version"]:
        print(f"minirnn {__version__}")
        return 0
    if not argv or argv[0] in ("-h", "--help"):
        print(f"usage: {prog} {{{','.join(COMMANDS)}}} [options]   ({prog} COMMAND --help for its options)\n")
        print("\n".join(f"  {name:<10} {text}" for name, text in COMMANDS.items()))
        print(f"\n  --version  print the version ({__version__})")
        return 0 if argv else 2
    if argv[0] not in COMMANDS:
        print(f"{prog}: error: unknown command {argv[0]!r}; choose one of {', '.join(COMMANDS)} (see --help)",
              file=sys.stderr)
        return 2
    return launch(argv[0], argv[1:], prog=f"{prog} {argv[0]}")
