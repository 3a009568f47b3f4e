"""What the commands share: one-line errors, exit codes, --debug, --version, Ctrl-C."""
import argparse
import difflib
import os
import signal
import sys
import traceback
import warnings

from . import __version__
from .errors import MinirnnError


class ArgumentParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr (exit 2), and --version is there."""

    def __init__(self, *args, **kwargs):
        # No abbreviations: the launcher reads --threads and --preset before NumPy loads,
        # and an abbreviated --thread would be taken by argparse but missed there.
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)
        self.add_argument("--version", action="version", version=f"minirnn {__version__}",
                          help="print the version and exit")

    def error(self, message):
        print(f"{self.prog}: error: {message}{self._suggestion(message)} (see --help)", file=sys.stderr)
        sys.exit(2)

    def _suggestion(self, message):
        """'; did you mean --epochs?' for each unrecognized option close to a real one."""
        if not message.startswith("unrecognized arguments: "):
            return ""
        known = [o[2:] for action in self._actions for o in action.option_strings if o.startswith("--")]
        hints = []
        for word in message.split(": ", 1)[1].split():
            name = word.split("=")[0][2:] if word.startswith("--") else None
            close = difflib.get_close_matches(name, known, n=1, cutoff=0.75) if name else []
            hints += [f"--{close[0]} for --{name}"] if close else []
        return f"; did you mean {', '.join(hints)}?" if hints else ""


def invocation(prog):
    """How the user ran a command, for advice to run it again from where they are:
    `python scripts/train.py` (the script's path as typed) for a script (prog
    "train.py"), else prog itself (`minirnn train`)."""
    if not prog.endswith(".py"):
        return prog
    typed = sys.argv[0] if sys.argv and sys.argv[0].endswith(prog) else f"scripts/{prog}"
    return f"python {typed}"


OUT_OF_MEMORY = "lower --num-hiddens, --batch-size or --num-steps"


def run(main, argv=None, out_of_memory=OUT_OF_MEMORY):
    """Call main(argv); turn minirnn's errors into one line on stderr and an exit code.

    Usage errors exit 2, the others 1; --debug shows the traceback too.
    out_of_memory: the command's advice when memory runs out.
    """
    argv = sys.argv[1:] if argv is None else argv
    debug = "--debug" in argv
    warnings.showwarning = lambda message, *args, **kwargs: print(f"warning: {message}", file=sys.stderr)
    try:
        return main(argv)
    except MinirnnError as e:
        if debug:
            traceback.print_exc()
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    except MemoryError:  # NumPy's, and CuPy's OutOfMemoryError, which subclasses it
        if debug:
            traceback.print_exc()
        print(f"error: out of memory; {out_of_memory}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # the reader went away (`| head`): stop quietly, as other tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 141
    except KeyboardInterrupt:  # a second Ctrl-C, or one outside the training loop
        if debug:
            traceback.print_exc()
        print("interrupted", file=sys.stderr)
        return 130


class StopFlag:
    """Ctrl-C sets a flag that the training loop reads after each minibatch;
    a second Ctrl-C interrupts at once."""

    def __init__(self, finishing="the current minibatch"):
        self.raised = False
        self.finishing = finishing

    def __call__(self):
        return self.raised

    def _handle(self, signum, frame):
        self.raised = True
        print(f"\ninterrupt: finishing {self.finishing} (Ctrl-C again to abort now)", file=sys.stderr, flush=True)
        signal.signal(signal.SIGINT, signal.default_int_handler)

    def __enter__(self):
        self._old = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc):
        signal.signal(signal.SIGINT, self._old)
        return False


def have_matplotlib():
    """Whether the optional plotting library (the `plot` extra) is installed."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def need_matplotlib(option="--plot"):
    if not have_matplotlib():
        raise MinirnnError(f"{option} needs matplotlib: pip install matplotlib (or drop {option})")
