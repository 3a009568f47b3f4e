#!/usr/bin/env python
"""Gradient flow through time: the norm of the gradient at each earlier state, per step.

Also installed as `minirnn gradflow`; the code is in minirnn/commands/gradflow.py.
"""
import sys

try:
    import _clone  # noqa: F401  the minirnn package of this clone, installed or not
    from minirnn.commands import launch
except KeyboardInterrupt:  # Ctrl-C while Python loads
    sys.exit(130)

if __name__ == "__main__":
    sys.exit(launch("gradflow", sys.argv[1:], prog="gradflow.py"))
