"""The fused step kernels: each cell's elementwise work per step, as CUDA C.

Experimental: these kernels have not yet run on a GPU, and nothing in minirnn calls
them; the CuPy path (the cells' NumPy-style step functions) stays the one in use.
Their arithmetic is checked on the CPU, where the same sources compile with the host
C compiler (tests/test_kernels.py), and every source is checked to compile with NVRTC
(docs/gpu-kernels.md says what a machine with a GPU should run first).

A kernel source is the prelude (prelude.h: the float type, tanh, σ, the loop over
elements) followed by the cell's file (rnn.cu, gru.cu, lstm.cu), for float32 or float64.
Every kernel takes the element count n = B·H (and H, where it reads a side-by-side
(B,kH) row) as 64-bit integers, and walks its elements with a grid-stride loop, so any
launch shape covers them all.
"""
import pathlib

import numpy as np

HERE = pathlib.Path(__file__).parent

# The kernels of each cell's file, forward then backward.
KERNELS = {
    "rnn": ("rnn_step_forward", "rnn_step_backward"),
    "gru": ("gru_step_forward_gates", "gru_step_forward_state", "gru_step_backward_state",
            "gru_step_backward_gates"),
    "lstm": ("lstm_step_forward", "lstm_step_backward"),
}
REAL = {"float32": "float", "float64": "double"}


def _read(name):
    return (HERE / name).read_text(encoding="utf-8")


def real_type(dtype):
    """The C type of a NumPy float dtype: float or double; anything else is refused."""
    name = np.dtype(dtype).name
    if name not in REAL:
        raise ValueError(f"the step kernels exist for float32 and float64, not {name}")
    return REAL[name]


def source(cell, dtype, host=False):
    """The complete source of a cell's kernels (a str) for dtype: CUDA C for NVRTC, or,
    with host=True, C for the host compiler (each kernel a plain loop)."""
    if cell not in KERNELS:
        raise ValueError(f"no step kernels for cell {cell!r}: choose one of {', '.join(KERNELS)}")
    head = f"#define MINIRNN_REAL {real_type(dtype)}\n" + ("#define MINIRNN_HOST 1\n" if host else "")
    return head + _read("prelude.h") + "\n" + _read(f"{cell}.cu")


def parameters(cell):
    """{kernel name: [(kind, parameter name), ...]} read from the cell's source, in order;
    kind is "in" (const real *: an array the kernel only reads, or NULL where the text
    says so), "out" (real *: an array it writes, and may read), "int64" (long long) or
    "int32" (int). A launcher converts its arguments by these."""
    import re

    kinds = {"real *": "out", "const real *": "in", "long long ": "int64", "int ": "int32"}
    found = {}
    for name, params in re.findall(r"KERNEL (\w+)\(([^)]*)\)", _read(f"{cell}.cu")):
        out = []
        for p in params.split(","):
            p = " ".join(p.split())
            kind = next((k for t, k in kinds.items() if p.startswith(t)), None)
            if kind is None:
                raise ValueError(f"{cell}.cu: kernel {name} has a parameter of unknown type: {p!r}")
            out.append((kind, p.rsplit(" ", 1)[-1].lstrip("*")))
        found[name] = out
    return found
