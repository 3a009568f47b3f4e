"""The one place where NumPy or CuPy is chosen.

Every other module writes its array code against an array module `xp`, found
from its arrays by `array_module` (or a `Backend`'s `.xp`), so the same lines run
on the CPU (NumPy) and on a GPU (CuPy). CuPy is imported here only, and only
when the GPU backend is asked for.
"""
import os
import sys

import numpy as np

from .errors import MinirnnError

DEVICES = ("cpu", "gpu", "auto")
ENV_VAR = "MINIRNN_DEVICE"
GPU_INSTALL_HINT = 'pip install -e ".[gpu]"  (or: pip install cupy-cuda12x)'


class BackendError(MinirnnError, RuntimeError):
    """The requested device cannot be used; the message says why and what to do."""


class DeviceNameError(BackendError, ValueError):
    """A device name that is none of cpu, gpu, auto: a usage error (exit 2)."""

    exit_code = 2


class Backend:
    """An array module plus the few host/device helpers the engine needs.

    xp         : numpy or cupy
    name       : "cpu" or "gpu"
    asarray    : host -> device
    to_numpy   : device -> host (a sync on the GPU)
    On the CPU both return the array itself when it is already a NumPy array of
    that dtype (no copy), where the GPU's always copy: copy the result (np.array)
    before writing it or keeping it past the next change of the original.
    synchronize: wait for queued device work (a no-op on the CPU)
    """

    def __init__(self, name, xp):
        self.name = name
        self.xp = xp

    def asarray(self, a, dtype=None):
        return self.xp.asarray(a, dtype=dtype)

    def to_numpy(self, a):
        if self.xp is np:
            return np.asarray(a)
        return self.xp.asnumpy(a)  # deliberate device -> host sync

    def synchronize(self):
        if self.xp is not np:
            self.xp.cuda.get_current_stream().synchronize()  # deliberate sync

    def index_add(self, ids, rows, num_rows):
        """out[v] = sum of rows[i] over i with ids[i] == v; out has shape (num_rows, H).

        This is the gradient of the row lookup `W[ids]`. For a small vocabulary it
        is fastest as the one-hot product onehot(ids)ᵀ · rows, one GEMM (measured on
        the book's shapes: 0.33 ms against 5.0 ms for np.add.at and 1.6 ms for a
        sort + reduceat). For a large vocabulary the one-hot matrix would cost
        N·V·H flops, so an unbuffered scatter-add takes over (on the GPU it uses
        atomic adds, so its float sums are not bit-reproducible from run to run).
        """
        xp = self.xp
        if num_rows <= 512:
            onehot = xp.zeros((ids.shape[0], num_rows), dtype=rows.dtype)
            onehot[xp.arange(ids.shape[0]), ids] = 1
            return onehot.T @ rows
        out = xp.zeros((num_rows, rows.shape[1]), dtype=rows.dtype)
        if xp is np:
            np.add.at(out, ids, rows)
        else:
            self._cupyx.scatter_add(out, ids, rows)
        return out

    def underflowed(self, a):
        """True when every element of a is below the smallest normal float.

        Only the CPU checks: subnormal floats slow CPU arithmetic, and reading a
        host array costs nothing. A GPU computes with them at full speed, so it
        answers False rather than sync with the host.
        """
        if self.xp is not np:
            return False
        return bool(np.abs(a).max() < np.finfo(a.dtype).tiny)

    def __repr__(self):
        return f"Backend({self.name!r})"


_CPU = Backend("cpu", np)
_GPU = []  # the GPU Backend, made once on first use


def array_module(a):
    """numpy for host arrays, cupy for device arrays (cupy is never imported here)."""
    if isinstance(a, (np.ndarray, np.generic)):
        return np
    return sys.modules["cupy"]


def backend_of(a):
    """The Backend that owns array a."""
    return _CPU if array_module(a) is np else _load_cupy()


def _load_cupy():
    """Import cupy and touch the device; raise BackendError naming what is missing."""
    if _GPU:
        return _GPU[0]
    try:
        import cupy
        import cupyx
    except ImportError as e:
        raise BackendError(
            f"device 'gpu' needs CuPy, which is not installed ({e}). "
            f"Install it with: {GPU_INSTALL_HINT}, or use --device cpu."
        ) from None
    try:
        count = cupy.cuda.runtime.getDeviceCount()
        if count < 1:
            raise RuntimeError("no CUDA device found")
        cupy.zeros(1)  # a real allocation: CuPy imports fine without a GPU
    except Exception as e:  # CUDARuntimeError and friends
        raise BackendError(
            f"device 'gpu' needs a working CUDA device, and none is usable "
            f"({type(e).__name__}: {e}). Check `nvidia-smi` and the driver, or use --device cpu."
        ) from None
    backend = Backend("gpu", cupy)
    backend._cupyx = cupyx
    _GPU.append(backend)
    return backend


def env_device():
    """The device named by MINIRNN_DEVICE, lowercased; "" when unset."""
    return os.environ.get(ENV_VAR, "").strip().lower()


def get_backend(device=None):
    """Return the Backend for "cpu", "gpu" or "auto".

    device None reads the MINIRNN_DEVICE environment variable, else "cpu".
    "auto" uses the GPU when CuPy and a CUDA device work, else falls back to
    the CPU and says so on stderr. A Backend passes through unchanged.
    """
    if isinstance(device, Backend):
        return device
    from_env = device is None
    if from_env:
        device = env_device() or "cpu"
    device = str(device).lower()
    if device not in DEVICES:
        if from_env:
            raise DeviceNameError(f"{ENV_VAR}={device!r} is not a device: set it to one of cpu, gpu, auto, "
                                  f"or unset it (or give --device)")
        raise DeviceNameError(f"unknown device {device!r}: choose one of cpu, gpu, auto")
    if device == "cpu":
        return _CPU
    if device == "gpu":
        return _load_cupy()
    try:
        return _load_cupy()
    except BackendError as e:
        print(f"minirnn: device 'auto' falls back to cpu: {e}", file=sys.stderr)
        return _CPU
