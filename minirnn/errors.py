"""The errors minirnn raises for bad input; each message names the problem and the fix."""


class MinirnnError(Exception):
    """Base class. The command-line scripts print its message on one line and exit 1."""

    exit_code = 1


class UsageError(MinirnnError, ValueError):
    """A bad option or argument: exit 2, like argparse."""

    exit_code = 2


class DataError(MinirnnError):
    """A text that cannot be trained on."""


class CheckpointError(MinirnnError):
    """A checkpoint that cannot be loaded: missing, damaged, inconsistent or unsafe."""


class OutputError(MinirnnError):
    """An output file (checkpoint, log, plot) that cannot be written."""


class DivergedError(MinirnnError):
    """The loss or a gradient became non-finite."""


def plural(n, noun, plural_form=None):
    """'1 token', '2 tokens': a count with its noun, for messages."""
    return f"{n} {noun if n == 1 else plural_form or noun + 's'}"
