import os
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent


def gpu_usable():
    """Whether get_backend("gpu") works here (CuPy and a device)."""
    from minirnn.backend import BackendError, get_backend
    try:
        get_backend("gpu")
        return True
    except BackendError:
        return False


def run_script(name, *args, timeout=300, env=None, **kwargs):
    """Run scripts/<name> as a user would; returns the CompletedProcess. env: variables to add."""
    base = {**os.environ, "PYTHONUNBUFFERED": "1"}
    base.pop("MINIRNN_DEVICE", None)
    env = {**base, **(env or {})}
    return subprocess.run([sys.executable, str(ROOT / "scripts" / name), *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, env=env, **kwargs)
