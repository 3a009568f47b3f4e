#!/usr/bin/env python
"""Import PyTorch or Keras weights from a safetensors file as a minirnn checkpoint.

Also installed as `minirnn import`; the code is in minirnn/commands/import_.py.
"""
import sys

try:
    import _clone  # noqa: F401  the minirnn package of this clone, installed or not
    from minirnn.commands import launch
except KeyboardInterrupt:  # Ctrl-C while Python loads
    sys.exit(130)

if __name__ == "__main__":
    sys.exit(launch("import", sys.argv[1:], prog="import.py"))
