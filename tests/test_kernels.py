"""The fused step kernels' arithmetic, on the CPU: each CUDA source compiles with the
host C compiler as a plain loop per kernel, and its results match the NumPy step
functions (the reference) in float64, one step and a whole sequence each way."""
import ctypes
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, strategies as st

from minirnn.cells import gru, lstm, rnn
from minirnn.kernels import KERNELS, parameters, real_type, source
from minirnn.model import Workspace

from conftest import _gpu_or_skip

seeds = st.integers(0, 2**32 - 1)
CC = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
# Kernels and NumPy round tanh each their own way (a few ulps); every other operation is
# the same one in the same order (on a GPU too: the test builds there without fused
# multiply-adds).
RTOL, ATOL = 1e-12, 1e-14
GPU_OPTIONS = ("--fmad=false",)


class HostKernels:
    """A cell's kernels built for the host; kernels(name, *args) takes NumPy arrays
    (C-contiguous, of the build's dtype), None for a NULL pointer, and ints."""

    def __init__(self, path, cell, dtype):
        self.lib, self.dtype = ctypes.CDLL(str(path)), np.dtype(dtype)
        self.params = parameters(cell)

    def __call__(self, name, *args):
        params = self.params[name]
        assert len(args) == len(params), f"{name} takes {[p for _, p in params]}"
        ctypes_args = []
        for (kind, pname), a in zip(params, args):
            if kind in ("in", "out"):
                if a is not None:
                    assert a.dtype == self.dtype and a.flags.c_contiguous, (name, pname)
                ctypes_args.append(None if a is None else ctypes.c_void_p(a.ctypes.data))
            else:
                ctypes_args.append((ctypes.c_longlong if kind == "int64" else ctypes.c_int)(a))
        getattr(self.lib, name).restype = None
        getattr(self.lib, name)(*ctypes_args)


class DeviceKernels:
    """The same kernels compiled by NVRTC and launched on the GPU; the same call as
    HostKernels: each NumPy array goes to the device, and every array the kernel
    writes comes back into it."""

    def __init__(self, cupy, cell, dtype):
        self.cupy, self.dtype = cupy, np.dtype(dtype)
        self.module = cupy.RawModule(code=source(cell, dtype), options=GPU_OPTIONS)
        self.params = parameters(cell)

    def __call__(self, name, *args):
        cp, params = self.cupy, self.params[name]
        assert len(args) == len(params), f"{name} takes {[p for _, p in params]}"
        dev_args, back = [], []
        for (kind, pname), a in zip(params, args):
            if kind in ("in", "out"):
                if a is None:
                    dev_args.append(np.uint64(0))  # NULL
                    continue
                assert a.dtype == self.dtype and a.flags.c_contiguous, (name, pname)
                d = cp.asarray(a)
                dev_args.append(d)
                if kind == "out":
                    back.append((a, d))
            else:
                dev_args.append(np.int64(a) if kind == "int64" else np.int32(a))
        n = int(args[[p for _, p in params].index("n")])
        self.module.get_function(name)(((n + 127) // 128,), (128,), tuple(dev_args))
        for a, d in back:
            a[...] = cp.asnumpy(d)


@pytest.fixture(scope="module", params=["host", "gpu"])
def built(request, tmp_path_factory):
    """{(cell, dtype): kernels}, every cell in float32 and float64: built by the host C
    compiler, or (with MINIRNN_DEVICE=gpu) by NVRTC and run on the GPU."""
    if request.param == "gpu":
        cupy = _gpu_or_skip().xp
        return {(cell, dtype): DeviceKernels(cupy, cell, dtype) for cell in KERNELS for dtype in ("float32", "float64")}
    if CC is None:
        pytest.skip("no host C compiler (cc or gcc, or $CC) to build the kernels with")
    where = tmp_path_factory.mktemp("kernels")
    kernels = {}
    for cell in KERNELS:
        for dtype in ("float32", "float64"):
            src, lib = where / f"{cell}_{dtype}.c", where / f"{cell}_{dtype}.so"
            src.write_text(source(cell, dtype, host=True), encoding="utf-8")
            r = subprocess.run([CC, "-std=c99", "-O2", "-ffp-contract=off", "-Wall", "-Werror", "-fPIC", "-shared",
                                "-o", str(lib), str(src), "-lm"], capture_output=True, text=True, timeout=120)
            assert r.returncode == 0, f"{cell} {dtype} does not compile on the host:\n{r.stderr}"
            kernels[cell, dtype] = HostKernels(lib, cell, dtype)
    return kernels


def close(a, b, rtol=RTOL, atol=ATOL):
    np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)


def test_sources_name_their_kernels_and_types():
    for cell, names in KERNELS.items():
        assert tuple(parameters(cell)) == names
        for dtype, c in (("float32", "float"), ("float64", "double")):
            s = source(cell, dtype)
            assert s.startswith(f"#define MINIRNN_REAL {c}\n") and "#define MINIRNN_HOST" not in s
            assert source(cell, dtype, host=True).startswith(f"#define MINIRNN_REAL {c}\n#define MINIRNN_HOST 1\n")
    assert real_type(np.float32) == "float"
    with pytest.raises(ValueError, match="float32 and float64, not float16"):
        source("rnn", "float16")
    with pytest.raises(ValueError, match="no step kernels for cell 'lru': choose one of rnn, gru, lstm"):
        source("lru", "float64")


def test_a_regular_install_ships_the_kernel_sources(tmp_path, installed):
    """`pip install .` (not editable) carries the .cu files and the prelude as package data."""
    target, _ = installed
    code = ("import minirnn.kernels as k; print(k.__file__); "
            "print(sum(len(k.source(c, 'float32')) for c in k.KERNELS))")
    check = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                           env={"PYTHONPATH": str(target)}, timeout=120)
    assert check.returncode == 0, check.stderr
    where, size = check.stdout.split()
    assert where.startswith(str(target))  # the installed copy, not this checkout
    assert int(size) == sum(len(source(c, "float32")) for c in KERNELS)


# ----------------------------------------------------------------------------- one step
@given(st.integers(1, 5), st.integers(1, 9), st.sampled_from(["tanh", "relu"]), st.booleans(), seeds)
def test_rnn_step_matches_numpy(built, B, H, activation, accumulated, seed):
    rng = np.random.default_rng(seed)
    k, relu = built["rnn", "float64"], int(activation == "relu")
    A, H_prev, W_hh = rng.normal(0, 1, (B, H)), rng.normal(0, 1, (B, H)), rng.normal(0, 0.5, (H, H))
    H_ref = rnn.rnn_step_forward(A.copy(), H_prev, W_hh, activation, np.empty((B, H)))
    P = H_prev @ W_hh
    Z = A + P if accumulated else A.copy()  # the product added beforehand (β = 1), or by the kernel
    k("rnn_step_forward", Z, None if accumulated else P, B * H, relu)
    close(Z, H_ref)

    dHs_t, dH = rng.normal(0, 1, (B, H)), rng.normal(0, 1, (B, H))
    dphi = np.empty((B, H))
    rnn.ACTIVATIONS[activation][1](H_ref, out=dphi)
    dZ_ref, dH_prev_ref = rnn.rnn_step_backward(dHs_t + dH, dphi, np.ascontiguousarray(W_hh.T), np.empty((B, H)))
    k("rnn_step_backward", dHs_t, dH, H_ref, B * H, relu)
    close(dHs_t, dZ_ref)
    close(dHs_t @ W_hh.T, dH_prev_ref)


def _gru_forward(k, A_t, H_prev, W_hzr, W_hh, G, RH, H_t, accumulated):
    """One GRU step with the kernels, the products in NumPy."""
    H = H_prev.shape[1]
    B = H_prev.shape[0]
    P2 = H_prev @ W_hzr
    if accumulated:
        A_t[:, :2 * H] += P2
    k("gru_step_forward_gates", A_t, None if accumulated else P2, H_prev, G, RH, B * H, H)
    G[2] = RH @ W_hh
    k("gru_step_forward_state", A_t, H_prev, G, H_t, B * H, H)


@given(st.integers(1, 5), st.integers(1, 9), st.booleans(), st.booleans(), seeds)
def test_gru_step_matches_numpy(built, B, H, accumulated, pending, seed):
    rng = np.random.default_rng(seed)
    k = built["gru", "float64"]
    A, H_prev = rng.normal(0, 1, (B, 3 * H)), rng.normal(0, 1, (B, H))
    W_hzr, W_hh = rng.normal(0, 0.5, (H, 2 * H)), rng.normal(0, 0.5, (H, H))
    G_ref, RH_ref, H_ref = np.empty((3, B, H)), np.empty((B, H)), np.empty((B, H))
    gru.gru_step_forward(A, H_prev, W_hzr, W_hh, G_ref, RH_ref, H_ref, np.empty((B, 2 * H)))
    G, RH, H_t = np.empty((3, B, H)), np.empty((B, H)), np.empty((B, H))
    _gru_forward(k, A.copy(), H_prev, W_hzr, W_hh, G, RH, H_t, accumulated)
    close(G, G_ref)
    close(RH, RH_ref)
    close(H_t, H_ref)

    dHs_t, dH, P = rng.normal(0, 1, (B, H)), rng.normal(0, 1, (B, H)), rng.normal(0, 1, (B, H))
    W_hzrT, W_hhT = np.ascontiguousarray(W_hzr.T), np.ascontiguousarray(W_hh.T)
    total = dHs_t + ((dH + P) if pending else dH)  # the NumPy sequence adds the pending product first
    dA_ref, dH_ref = np.empty((B, 3 * H)), np.empty((B, H))
    gru.gru_step_backward(total.copy(), G_ref, H_ref, RH_ref, W_hzrT, W_hhT, dA_ref, dH_ref,
                          np.empty((3, B, H)), np.empty((B, H)))
    dG = np.empty((3, B, H))
    dA = G.reshape(B, 3 * H)  # dA_t in the gates' own memory, as the NumPy sequence has it
    k("gru_step_backward_state", dHs_t, dH, P if pending else None, G, H_t, dG, B * H)
    close(dHs_t, total)
    Q = dG[2] @ W_hhT
    k("gru_step_backward_gates", Q, RH, dG, dH, dA, B * H, H)
    dH += dA[:, :2 * H] @ W_hzrT
    close(dA, dA_ref)
    close(dH, dH_ref)


@given(st.integers(1, 5), st.integers(1, 9), st.booleans(), seeds)
def test_lstm_step_matches_numpy(built, B, H, accumulated, seed):
    rng = np.random.default_rng(seed)
    k = built["lstm", "float64"]
    A, H_prev, C_prev = rng.normal(0, 1, (B, 4 * H)), rng.normal(0, 1, (B, H)), rng.normal(0, 1, (B, H))
    W_h = rng.normal(0, 0.5, (H, 4 * H))
    G_ref, H_ref, C_ref, tC_ref = (np.empty(s) for s in ((4, B, H), (B, H), (B, H), (B, H)))
    lstm.lstm_step_forward(A, H_prev, C_prev, W_h, G_ref, H_ref, C_ref, tC_ref, np.empty((B, 4 * H)))
    G, H_t, C_t, tC = (np.empty(s) for s in ((4, B, H), (B, H), (B, H), (B, H)))
    P4 = H_prev @ W_h
    A_t = A + P4 if accumulated else A.copy()
    k("lstm_step_forward", A_t, None if accumulated else P4, C_prev, G, H_t, C_t, tC, B * H, H)
    for got, want in ((G, G_ref), (H_t, H_ref), (C_t, C_ref), (tC, tC_ref)):
        close(got, want)

    dHs_t, dH, dC = rng.normal(0, 1, (B, H)), rng.normal(0, 1, (B, H)), rng.normal(0, 1, (B, H))
    W_hT = np.ascontiguousarray(W_h.T)
    dC_ref, dA_ref, dH_ref = dC.copy(), np.empty((B, 4 * H)), np.empty((B, H))
    lstm.lstm_step_backward(dHs_t + dH, dC_ref, G_ref, C_prev, tC_ref, W_hT, dA_ref, dH_ref,
                            np.empty((4, B, H)), np.empty((4, B, H)), np.empty((B, H)))
    dA = np.empty((B, 4 * H))
    k("lstm_step_backward", dHs_t, dH, dC, G, C_prev, tC, dA, B * H, H)
    close(dA, dA_ref)
    close(dC, dC_ref)
    close(dA @ W_hT, dH_ref)


# ----------------------------------------------------------------------------- a sequence
def _apart(a, b):
    """A launch has no order between its threads: an output in another layout than an
    input must not share its memory (the kernels' sources say which)."""
    assert not np.shares_memory(a, b)


def _kernel_sequence(k, cell, A, state0, W_h, dHs, dstate_T, activation):
    """Forward and back through T steps as a GPU sequence would run them: the kernels,
    the products in NumPy, and the GRU's layout of one spare block (G_t one block ahead
    of A_t going forward, dA_t in G_t's memory going back) for the LSTM too, where dA_t
    takes the memory of G_{t+1}, which step t+1 has read. Returns (Hs, state_T, dA, dstate_0)."""
    T, B, kH = A.shape
    H = kH // len(cell.GATES)
    n = B * H
    Hs = np.empty((T + 1, B, H), A.dtype)
    Hs[0] = state0[0]
    dH = dstate_T[0].copy()
    if cell is rnn:
        relu, W_hh = int(activation == "relu"), W_h[0]
        Hs[1:] = A
        for t in range(1, T + 1):
            k("rnn_step_forward", Hs[t], Hs[t - 1] @ W_hh, n, relu)
        dZ = dHs.copy()
        for t in range(T, 0, -1):
            k("rnn_step_backward", dZ[t - 1], dH, Hs[t], n, relu)
            dH = dZ[t - 1] @ W_hh.T  # into H_{t-1}
        return Hs, (Hs[T],), dZ, (dH,)
    buf = np.empty((T + 1, B, kH), A.dtype)
    buf[1:] = A
    G = buf[:T].reshape(T, -1, B, H)  # step t's gates in the block step t-1 has read
    dHs = dHs.copy()
    if cell is gru:
        W_hzr, W_hh = np.concatenate(W_h[:2], axis=1), W_h[2]
        RH = np.empty((T, B, H), A.dtype)
        for t in range(T):
            _apart(G[t], buf[t + 1])
            _gru_forward(k, buf[t + 1], Hs[t], W_hzr, W_hh, G[t], RH[t], Hs[t + 1], accumulated=False)
        dA, dG, P = buf[:T].reshape(T, B, kH), np.empty((3, B, H), A.dtype), None  # dA_t in G_t's own memory
        for t in range(T, 0, -1):
            k("gru_step_backward_state", dHs[t - 1], dH, P, G[t - 1], Hs[t], dG, n)
            _apart(dG, G[t - 1])
            k("gru_step_backward_gates", dG[2] @ W_hh.T, RH[t - 1], dG, dH, dA[t - 1], n, H)
            P = dA[t - 1][:, :2 * H] @ W_hzr.T  # the last product, added by the next step's kernel
        return Hs, (Hs[T],), dA, (dH + P,)
    W_cat = np.concatenate(W_h, axis=1)
    Cs, tCs = np.empty((T + 1, B, H), A.dtype), np.empty((T, B, H), A.dtype)
    Cs[0] = state0[1]
    for t in range(T):
        _apart(G[t], buf[t + 1])
        k("lstm_step_forward", buf[t + 1], Hs[t] @ W_cat, Cs[t], G[t], Hs[t + 1], Cs[t + 1], tCs[t], n, H)
    dA, dC = buf[1:], dstate_T[1].copy()  # dA_t in G_{t+1}'s memory
    for t in range(T, 0, -1):
        _apart(dA[t - 1], G[t - 1])
        k("lstm_step_backward", dHs[t - 1], dH, dC, G[t - 1], Cs[t - 1], tCs[t - 1], dA[t - 1], n, H)
        dH = dA[t - 1] @ W_cat.T
    return Hs, (Hs[T], Cs[T]), dA, (dH, dC)


@given(st.sampled_from([rnn, gru, lstm]), st.integers(1, 6), st.integers(1, 4), st.integers(1, 7),
       st.sampled_from(["tanh", "relu"]), st.sampled_from(["float64", "float32"]), seeds)
def test_a_sequence_of_kernel_steps_matches_the_numpy_sequence(built, cell, T, B, H, activation, dtype, seed):
    """float64 to the rounding of tanh; float32 to a few float32 ulps."""
    rng = np.random.default_rng(seed)
    k = built[cell.__name__.rsplit(".", 1)[-1], dtype]
    kH = len(cell.GATES) * H

    def draw(shape, scale=1.0):
        return rng.normal(0, scale, shape).astype(dtype)

    A, W_h = draw((T, B, kH)), [draw((H, H), 0.5) for _ in cell.GATES]
    state0 = tuple(draw((B, H)) for _ in cell.STATES)
    dHs, dstate_T = draw((T, B, H)), tuple(draw((B, H)) for _ in cell.STATES)
    tol = {"rtol": RTOL, "atol": ATOL} if dtype == "float64" else {"rtol": 1e-4, "atol": 1e-5}

    ws = Workspace()
    A_ref = cell.input_buffer(ws, "x/", T, B, H, np.dtype(dtype), np)
    A_ref[...] = A
    Hs_ref, state_ref, cache = cell.sequence_forward(A_ref, state0, cell.prepare(W_h, ws, "x/"), ws, "x/", activation)
    dA_ref, dstate0_ref, _ = cell.sequence_backward(dHs.copy(), cache, dstate_T)

    Hs, state_T, dA, dstate0 = _kernel_sequence(k, cell, A, state0, W_h, dHs, dstate_T, activation)
    close(Hs, Hs_ref, **tol)
    for got, want in zip(state_T + dstate0, state_ref + dstate0_ref):
        assert got.dtype == want.dtype == np.dtype(dtype)
        close(got, want, **tol)
    close(dA, dA_ref, **tol)
