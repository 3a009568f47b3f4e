"""minirnn's own cuBLAS handle: the row-major to column-major GEMM arguments (checked
on the CPU against a NumPy model of cuBLAS's GEMM, reading the same memory), argument
errors, the library lookup's clear errors, and on a GPU (MINIRNN_DEVICE=gpu) the GEMMs
themselves against cupy.matmul."""
import builtins
import types

import numpy as np
import pytest
from hypothesis import given, strategies as st

from minirnn import cublas
from minirnn.backend import BackendError, get_backend
from minirnn.cublas import CublasError, gemm_arguments

from conftest import _gpu_or_skip

seeds = st.integers(0, 2**32 - 1)


class HostArray:
    """A NumPy array dressed as a device array: .data.ptr is its host address."""

    def __init__(self, a):
        self.a, self.shape, self.dtype, self.strides = a, a.shape, a.dtype, a.strides
        self.data = types.SimpleNamespace(ptr=a.ctypes.data)


def blas_gemm(memory, args):
    """What cuBLAS's column-major GEMM does with args, on the host memory `memory`
    (a flat NumPy array holding every operand): C = α·op(A)·op(B) + β·C, where a
    column-major (r, c) matrix at address p with leading dimension ld has element
    (i, j) at p + (i + j·ld) elements."""
    opa, opb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc = args
    item = memory.itemsize

    def matrix(ptr, rows, cols, ld):
        assert ld >= max(1, rows), "a leading dimension cuBLAS would refuse"
        offset = (ptr - memory.ctypes.data) // item
        assert 0 <= offset and offset + (cols - 1) * ld + rows <= memory.size, "outside the operand's memory"
        return np.lib.stride_tricks.as_strided(memory[offset:], (rows, cols), (item, ld * item))

    A = matrix(a, *((m, k) if opa == cublas.OP_N else (k, m)), lda)
    B = matrix(b, *((k, n) if opb == cublas.OP_N else (n, k)), ldb)
    op_A = A if opa == cublas.OP_N else A.T
    op_B = B if opb == cublas.OP_N else B.T
    C = matrix(c, m, n, ldc)
    C[...] = alpha * (op_A @ op_B) + beta * C


def operand(memory, at, rows, cols, pad):
    """A row-major (rows, cols) view into memory at element `at`, with `pad` unused
    elements after each row (a slice of whole columns of a wider array)."""
    return memory[at:at + rows * (cols + pad)].reshape(rows, cols + pad)[:, :cols]


@given(st.integers(1, 6), st.integers(1, 6), st.integers(1, 6), st.booleans(), st.booleans(),
       st.sampled_from([0.0, 1.0]), st.integers(0, 3), st.sampled_from(["float32", "float64"]), seeds)
def test_gemm_arguments_compute_the_row_major_product(M, N, K, trans_a, trans_b, beta, pad, dtype, seed):
    rng = np.random.default_rng(seed)
    shape_a, shape_b = (K, M) if trans_a else (M, K), (N, K) if trans_b else (K, N)
    sizes = [r * (c + pad) for r, c in (shape_a, shape_b, (M, N))]
    memory = rng.normal(0, 1, sum(sizes)).astype(dtype)
    A = operand(memory, 0, *shape_a, pad)
    B = operand(memory, sizes[0], *shape_b, pad)
    C = operand(memory, sizes[0] + sizes[1], M, N, pad)
    want = (A.T if trans_a else A) @ (B.T if trans_b else B) + beta * C
    blas_gemm(memory, gemm_arguments(HostArray(A), HostArray(B), HostArray(C), trans_a, trans_b, beta))
    np.testing.assert_allclose(C, want, rtol=1e-5 if dtype == "float32" else 1e-12, atol=1e-6)


def test_gemm_arguments_refuse_what_cublas_cannot_do():
    a = HostArray(np.zeros((3, 4)))
    with pytest.raises(ValueError, match=r"^op\(A\) 3x4 times op\(B\) 3x4 cannot give C 3x4$"):
        gemm_arguments(a, a, a)
    with pytest.raises(ValueError, match=r"must all be float32 or all float64, not \['float32', 'float64'\]"):
        gemm_arguments(a, HostArray(np.zeros((4, 4), np.float32)), HostArray(np.zeros((3, 4))))
    with pytest.raises(ValueError, match=r"not \['int64'\]"):
        gemm_arguments(*[HostArray(np.zeros((2, 2), np.int64))] * 3)
    with pytest.raises(ValueError, match=r"^B must be row-major with contiguous rows \(strides \(8, 32\) for shape "
                                         r"\(4, 3\)\): pass a contiguous array or a slice of whole columns$"):
        gemm_arguments(a, HostArray(np.zeros((3, 4)).T), HostArray(np.zeros((3, 3))))  # a transpose: use the op flag
    with pytest.raises(ValueError, match=r"^C must be a 2-d array, not of shape \(3,\)$"):
        gemm_arguments(a, HostArray(np.zeros((4, 1))), HostArray(np.zeros(3)))


def test_the_library_lookup_says_what_to_install(monkeypatch):
    monkeypatch.setattr(cublas, "_LIBRARY", [])
    real_import = builtins.__import__

    def no_pathfinder(name, globals=None, locals=None, fromlist=(), level=0):
        if name == "cuda" and "pathfinder" in (fromlist or ()):
            raise ImportError("No module named 'cuda.pathfinder'")
        return real_import(name, globals, locals, fromlist, level)

    monkeypatch.setattr(builtins, "__import__", no_pathfinder)
    expected = (r"^finding cuBLAS needs cuda.pathfinder, which is not installed "
                r"\(No module named 'cuda.pathfinder'\): pip install \"cupy-cuda12x\[ctk\]\"$")
    with pytest.raises(CublasError, match=expected):
        cublas.library()
    monkeypatch.setattr(builtins, "__import__", real_import)
    pathfinder = pytest.importorskip("cuda.pathfinder", reason="cuda.pathfinder is not installed (comes with cupy 14)")

    def not_found(name):
        raise pathfinder.DynamicLibNotFoundError(f"Failure finding lib{name}.so:\n  No such file\n")

    monkeypatch.setattr(pathfinder, "load_nvidia_dynamic_lib", not_found)
    with pytest.raises(CublasError, match=r"^cuBLAS's library was not found \(DynamicLibNotFoundError: Failure finding "
                                          r"libcublas.so: No such file\): pip install \"cupy-cuda12x\[ctk\]\"$"):
        cublas.library()
    assert isinstance(CublasError("x"), BackendError)  # the commands print it on one line


def _library_or_skip():
    try:
        return cublas.library()
    except CublasError as e:
        pytest.skip(f"no cuBLAS library here: {e}")


def test_the_library_loads_and_answers_without_a_gpu():
    _library_or_skip()
    assert 110000 <= cublas.version() < 1000000  # 11.x.y or later, as 10000·major + 100·minor + patch


def test_a_handle_without_a_gpu_is_a_clear_error():
    _library_or_skip()
    try:
        get_backend("gpu")
        pytest.skip("a GPU is usable here")
    except BackendError:
        pass
    with pytest.raises(CublasError, match=r"^cublasCreate_v2 failed with CUBLAS_STATUS_NOT_INITIALIZED: "
                                          r"is a CUDA device usable\? \(nvidia-smi\)$"):
        cublas.Handle()


def test_a_workspace_is_required():
    handle = object.__new__(cublas.Handle)  # no handle is created: the check comes first
    with pytest.raises(ValueError, match="a cuBLAS workspace needs a device buffer and its size in bytes"):
        handle.set_stream(0, 0, 0)


@given(st.integers(1, 40), st.integers(1, 40), st.integers(1, 40), st.booleans(), st.booleans(),
       st.sampled_from([0.0, 1.0]), st.sampled_from(["float32", "float64"]), seeds)
def test_gemms_through_the_handle_match_cupy(gpu_handle, M, N, K, trans_a, trans_b, beta, dtype, seed):
    cp, handle = gpu_handle
    rng = np.random.default_rng(seed)
    A = cp.asarray(rng.normal(0, 1, (K, M) if trans_a else (M, K)).astype(dtype))
    B = cp.asarray(rng.normal(0, 1, (N, K) if trans_b else (K, N)).astype(dtype))
    C = cp.asarray(rng.normal(0, 1, (M, N + 3)).astype(dtype))[:, :N]  # a slice of whole columns
    want = cp.matmul(A.T if trans_a else A, B.T if trans_b else B) + beta * C
    cublas.matmul(handle, A, B, C, trans_a, trans_b, beta)
    cp.cuda.get_current_stream().synchronize()
    np.testing.assert_allclose(cp.asnumpy(C), cp.asnumpy(want), rtol=1e-4 if dtype == "float32" else 1e-12,
                               atol=1e-4 if dtype == "float32" else 1e-12)


@pytest.fixture(scope="module")
def gpu_handle():
    """(cupy, a Handle on the current stream with a 32 MiB workspace), on a GPU only."""
    cp = _gpu_or_skip().xp
    workspace = cp.empty(32 << 20, dtype=cp.uint8)
    with cublas.Handle() as handle:
        handle.set_stream(cp.cuda.get_current_stream().ptr, workspace.data.ptr, workspace.nbytes)
        yield cp, handle
