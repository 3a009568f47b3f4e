"""`python -m minirnn COMMAND [options]`: the same as the `minirnn` command."""
import os
import sys

if getattr(sys.modules.get(__package__), "__file__", None) is None:  # a folder named minirnn, not the package
    clone = os.path.relpath(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    print(f"error: python -m minirnn found the folder {clone}, a minirnn clone, instead of the package inside it; "
          f"run it from inside the clone (cd {clone})", file=sys.stderr)
    sys.exit(1)

from .commands import main  # noqa: E402

sys.exit(main(prog="python -m minirnn"))
