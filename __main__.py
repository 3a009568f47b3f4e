"""Run when `python -m minirnn` finds this clone's folder instead of the package inside it.

From the folder that holds a clone named minirnn, Python takes the clone for the
package (a namespace package without code) and runs this file, which says so in one
line. Inside the clone, or with minirnn installed, the package's own __main__ runs.
`python CLONE COMMAND ...` runs the commands, the clone being first on the path.
"""
import os
import shlex
import sys

CLONE = os.path.dirname(os.path.abspath(__file__))

if not __package__:  # python CLONE: sys.path[0] is the clone, so the real package imports
    from minirnn.commands import main

    sys.exit(main(prog=f"python {sys.argv[0]}"))
name = os.path.relpath(CLONE)
words = sys.argv[1:]
script = os.path.join(name, "scripts", f"{words[0] if words else 'train'}.py")
rest = words[1:] if os.path.isfile(script) else words  # scripts/COMMAND.py takes the command's options
if not os.path.isfile(script):
    script = os.path.join(name, "scripts", "train.py")
print(f"error: python -m minirnn found the folder {name}, a minirnn clone, instead of the package inside it; "
      f"use python {name} {shlex.join(words) or 'COMMAND ...'} (the clone runs as the command), "
      f"or python {shlex.join([script, *rest])}",
      file=sys.stderr)
sys.exit(1)
