#!/usr/bin/env python
"""Check the hand-written BPTT against central differences, in float64.

Also installed as `minirnn gradcheck`; the code is in minirnn/commands/gradcheck.py.
"""
import sys

try:
    import _clone  # noqa: F401  the minirnn package of this clone, installed or not
    from minirnn.commands import launch
except KeyboardInterrupt:  # Ctrl-C while Python loads
    sys.exit(130)

if __name__ == "__main__":
    sys.exit(launch("gradcheck", sys.argv[1:], prog="gradcheck.py"))
