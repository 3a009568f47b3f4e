"""BLAS threads. OpenBLAS and MKL read their thread count once, when NumPy loads,
so a --threads option is read from the command line and set before that."""
import os
import sys

VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")

# train's default. Measured on 2 cores (docs/training.md, "Threads"): on an idle machine two
# threads ran the book's run 1.2x faster than one; with other processes busy, two
# threads fell to about a tenth of one thread's speed. One is the safe choice.
TRAIN_THREADS = 1

# A preset's own default (config.PRESETS), for a run that has the machine to itself:
# --preset heldout is measured against 15 minutes on 2 idle cores, and two threads
# ran its training steps about 1.5x as fast as one (docs/training.md, "Threads").
PRESET_THREADS = {"heldout": 2}


def option_from_argv(argv, flag):
    """The value of `flag VALUE` (or `flag=VALUE`) in argv, as text; None when absent.
    Read before argparse runs, since it must be known before NumPy loads."""
    for i, a in enumerate(argv):
        if a == flag and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith(flag + "="):
            return a.split("=", 1)[1]
    return None


def threads_from_argv(argv):
    """The N of --threads N in argv, as text; None when absent."""
    return option_from_argv(argv, "--threads")


def preset_from_argv(argv):
    """The NAME of --preset NAME in argv; None when absent."""
    return option_from_argv(argv, "--preset")


def set_blas_threads(value):
    """Set the BLAS thread count; False (and nothing set) when NumPy has already loaded."""
    if "numpy" in sys.modules:
        return False
    for var in VARS:
        os.environ[var] = str(value)
    return True


def default_threads(fallback):
    """The thread count the environment asks for (OPENBLAS_NUM_THREADS, ...), else fallback."""
    for var in VARS:
        if os.environ.get(var, "").strip():
            return os.environ[var].strip()
    return str(fallback)


def blas_threads():
    """The thread count set for OpenBLAS, as text, or None."""
    return os.environ.get(VARS[0])
