#!/usr/bin/env python
"""Continue text from a saved model.

Also installed as `minirnn generate`; the code is in minirnn/commands/generate.py.
"""
import sys

try:
    import _clone  # noqa: F401  the minirnn package of this clone, installed or not
    from minirnn.commands import launch
except KeyboardInterrupt:  # Ctrl-C while Python loads
    sys.exit(130)

if __name__ == "__main__":
    sys.exit(launch("generate", sys.argv[1:], prog="generate.py"))
