"""`python -m minirnn COMMAND [options]`: the same as the `minirnn` command."""
import sys

from .commands import main

sys.exit(main(prog="python -m minirnn"))
