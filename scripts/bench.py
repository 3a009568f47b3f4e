#!/usr/bin/env python
"""Time the training step against the bare matrix-product floor, in one run.

Also installed as `minirnn bench`; the code is in minirnn/commands/bench.py.
"""
import sys

try:
    import _clone  # noqa: F401  the minirnn package of this clone, installed or not
    from minirnn.commands import launch
except KeyboardInterrupt:  # Ctrl-C while Python loads
    sys.exit(130)

if __name__ == "__main__":
    sys.exit(launch("bench", sys.argv[1:], prog="bench.py"))
