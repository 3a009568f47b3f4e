"""Lets scripts/*.py run from a clone without installing.

The clone's root, the folder that holds minirnn/ beside scripts/, goes first on the
import path, so a script runs the package of its own clone. A script copied away
from its clone uses an installed minirnn, or stops with one line saying what to do.
"""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))

if os.path.isfile(os.path.join(ROOT, "minirnn", "__init__.py")):
    sys.path.insert(0, ROOT)
try:
    import minirnn
except ImportError:
    minirnn = None
if getattr(minirnn, "__file__", None) is None:  # not found, or a folder named minirnn that is not the package
    script = os.path.basename(sys.argv[0])
    print(f"error: cannot find the minirnn package beside {script}: run the {script} in a minirnn clone "
          f"(CLONE/scripts/{script}), or install minirnn (pip install -e CLONE)", file=sys.stderr)
    sys.exit(1)
