#!/usr/bin/env python
"""Train a character-level RNN. With no options: the book's run on The Time Machine.

Also installed as `minirnn train`; the code is in minirnn/commands/train.py.
"""
import sys

try:
    import _clone  # noqa: F401  the minirnn package of this clone, installed or not
    from minirnn.commands import launch
except KeyboardInterrupt:  # Ctrl-C while Python loads
    sys.exit(130)

if __name__ == "__main__":
    sys.exit(launch("train", sys.argv[1:], prog="train.py"))
