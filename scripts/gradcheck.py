#!/usr/bin/env python
"""Check the hand-written BPTT against central differences, in float64.

Also installed as `minirnn gradcheck`; the code is in minirnn/commands/gradcheck.py.
"""
import sys

from minirnn.commands import launch

if __name__ == "__main__":
    sys.exit(launch("gradcheck", sys.argv[1:], prog="gradcheck.py"))
