#!/usr/bin/env python
"""Export a checkpoint's weights as safetensors, in PyTorch's or Keras' layout.

Also installed as `minirnn export`; the code is in minirnn/commands/export.py.
"""
import sys

try:
    import _clone  # noqa: F401  the minirnn package of this clone, installed or not
    from minirnn.commands import launch
except KeyboardInterrupt:  # Ctrl-C while Python loads
    sys.exit(130)

if __name__ == "__main__":
    sys.exit(launch("export", sys.argv[1:], prog="export.py"))
