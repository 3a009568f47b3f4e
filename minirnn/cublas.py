"""minirnn's own cuBLAS handle, reached with ctypes, for GEMMs inside a CUDA graph.

Experimental: not yet run on a GPU, and nothing in training calls it; the CuPy path
(cupy.matmul) stays the one in use. CuPy's own cuBLAS wrappers refuse to run while a
stream is capturing a graph; cuBLAS itself captures fine when its handle is set to the
capturing stream and given a workspace of its own (`Handle.set_stream`).

Arrays are row-major, as NumPy and CuPy keep them: `matmul(handle, A, B, C)` computes
C = op(A)·op(B) + β·C, with op the transpose where asked (an op flag, no copy) and
β = 1 accumulating into C. cuBLAS is column-major: a row-major (r, c) array with row
stride ld is the column-major (c, r) array with leading dimension ld, so
C = op(A)·op(B) is computed as Cᵀ = op(B)ᵀ·op(A)ᵀ, B first (`gemm_arguments`).

An array here is anything with .shape, .dtype, .strides (bytes) and .data.ptr (a
device address), as a CuPy array has: this module never imports CuPy. The library is
found by cuda.pathfinder (installed with CuPy 14; the library itself with
cupy-cuda12x[ctk] or a CUDA toolkit).
"""
import ctypes

import numpy as np

from .backend import BackendError

OP_N, OP_T = 0, 1  # cublasOperation_t
STATUS = {0: "CUBLAS_STATUS_SUCCESS", 1: "CUBLAS_STATUS_NOT_INITIALIZED", 3: "CUBLAS_STATUS_ALLOC_FAILED",
          7: "CUBLAS_STATUS_INVALID_VALUE", 8: "CUBLAS_STATUS_ARCH_MISMATCH", 11: "CUBLAS_STATUS_MAPPING_ERROR",
          13: "CUBLAS_STATUS_EXECUTION_FAILED", 14: "CUBLAS_STATUS_INTERNAL_ERROR",
          15: "CUBLAS_STATUS_NOT_SUPPORTED", 16: "CUBLAS_STATUS_LICENSE_ERROR"}
INSTALL_HINT = 'pip install "cupy-cuda12x[ctk]"'
_LIBRARY = []  # the loaded library, once


class CublasError(BackendError):
    """cuBLAS cannot be found or refused a call; the message names the call and its status."""


def library():
    """The cuBLAS library (a ctypes.CDLL), found by cuda.pathfinder; a CublasError says
    what is missing and how to install it."""
    if _LIBRARY:
        return _LIBRARY[0]
    try:
        from cuda import pathfinder
    except ImportError as e:
        raise CublasError(f"finding cuBLAS needs cuda.pathfinder, which is not installed ({e}): "
                          f"{INSTALL_HINT}") from None
    try:
        path = pathfinder.load_nvidia_dynamic_lib("cublas").abs_path
        lib = ctypes.CDLL(path)
    except Exception as e:  # DynamicLibNotFoundError and friends, or an OSError from dlopen
        why = " ".join(str(e).split())  # one line: pathfinder's messages may span several
        raise CublasError(f"cuBLAS's library was not found ({type(e).__name__}: {why}): {INSTALL_HINT}") from None
    _declare(lib)
    _LIBRARY.append(lib)
    return lib


def _declare(lib):
    """The C signatures of the calls used here, so that ctypes passes 64-bit values."""
    p, i, size = ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t
    for name, args in (("cublasCreate_v2", [p]), ("cublasDestroy_v2", [p]), ("cublasSetStream_v2", [p, p]),
                       ("cublasSetWorkspace_v2", [p, p, size]), ("cublasGetVersion_v2", [p, p]),
                       ("cublasSgemm_v2", [p, i, i, i, i, i, p, p, i, p, i, p, p, i]),
                       ("cublasDgemm_v2", [p, i, i, i, i, i, p, p, i, p, i, p, p, i])):
        fn = getattr(lib, name)
        fn.argtypes, fn.restype = args, ctypes.c_int


def check(status, call):
    """Raise a CublasError naming the call and its status, unless it succeeded."""
    if status != 0:
        raise CublasError(f"{call} failed with {STATUS.get(status, f'status {status}')}"
                          + (": is a CUDA device usable? (nvidia-smi)" if status == 1 else ""))


def version():
    """cuBLAS's version number (e.g. 120902 for 12.9.2); needs no GPU."""
    v = ctypes.c_int()
    check(library().cublasGetVersion_v2(None, ctypes.byref(v)), "cublasGetVersion_v2")
    return v.value


class Handle:
    """A cuBLAS handle of minirnn's own. Use as a context manager, or close() it."""

    def __init__(self):
        self.lib = library()
        self._h = ctypes.c_void_p()
        check(self.lib.cublasCreate_v2(ctypes.byref(self._h)), "cublasCreate_v2")

    def set_stream(self, stream_ptr, workspace_ptr, workspace_bytes):
        """Run on the stream at stream_ptr (0 for the default stream), with the device
        buffer at workspace_ptr of workspace_bytes as the handle's workspace. Setting the
        stream resets the workspace, so the two are set together, stream first."""
        if workspace_bytes <= 0 or not workspace_ptr:
            raise ValueError("a cuBLAS workspace needs a device buffer and its size in bytes (32 MiB covers every GPU)")
        check(self.lib.cublasSetStream_v2(self._h, ctypes.c_void_p(stream_ptr)), "cublasSetStream_v2")
        check(self.lib.cublasSetWorkspace_v2(self._h, ctypes.c_void_p(workspace_ptr), workspace_bytes),
              "cublasSetWorkspace_v2")

    def close(self):
        if self._h.value:
            check(self.lib.cublasDestroy_v2(self._h), "cublasDestroy_v2")
            self._h = ctypes.c_void_p()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def gemm(self, dtype, args):
        """One cublasSgemm_v2/cublasDgemm_v2 call with the arguments of gemm_arguments."""
        (opa, opb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc), real = args, _REAL[np.dtype(dtype).name]
        fn, name = (self.lib.cublasSgemm_v2, "cublasSgemm_v2") if real is ctypes.c_float else \
            (self.lib.cublasDgemm_v2, "cublasDgemm_v2")
        al, be = real(alpha), real(beta)
        check(fn(self._h, opa, opb, m, n, k, ctypes.byref(al), a, lda, b, ldb, ctypes.byref(be), c, ldc), name)


_REAL = {"float32": ctypes.c_float, "float64": ctypes.c_double}


def _rows(M, what):
    """(rows, cols, row stride in elements) of a 2-d row-major array M."""
    if len(M.shape) != 2:
        raise ValueError(f"{what} must be a 2-d array, not of shape {tuple(M.shape)}")
    item = np.dtype(M.dtype).itemsize
    rows, cols = M.shape
    rs, cs = M.strides
    if cols > 1 and cs != item or rs % item or (rows > 1 and rs // item < cols):
        raise ValueError(f"{what} must be row-major with contiguous rows (strides {M.strides} for shape "
                         f"{tuple(M.shape)}): pass a contiguous array or a slice of whole columns")
    return rows, cols, max(rs // item, cols, 1)


def gemm_arguments(A, B, C, trans_a=False, trans_b=False, beta=0.0):
    """The column-major GEMM (opa, opb, m, n, k, α, a, lda, b, ldb, β, c, ldc) that
    computes the row-major C = op(A)·op(B) + β·C; a ValueError names a mismatch."""
    dtypes = {np.dtype(M.dtype).name for M in (A, B, C)}
    if len(dtypes) != 1 or not dtypes <= set(_REAL):
        raise ValueError(f"A, B and C must all be float32 or all float64, not {sorted(dtypes)}")
    ra, ca, lda = _rows(A, "A")
    rb, cb, ldb = _rows(B, "B")
    M, N, ldc = _rows(C, "C")
    (Ma, Ka), (Kb, Nb) = (ca, ra) if trans_a else (ra, ca), (cb, rb) if trans_b else (rb, cb)
    if (Ma, Nb) != (M, N) or Ka != Kb:
        raise ValueError(f"op(A) {Ma}x{Ka} times op(B) {Kb}x{Nb} cannot give C {M}x{N}")
    # Cᵀ (N,M) = op(B)ᵀ (N,K) · op(A)ᵀ (K,M), each operand's storage read as its transpose
    return (OP_T if trans_b else OP_N, OP_T if trans_a else OP_N, N, M, Ka, 1.0, B.data.ptr, ldb,
            A.data.ptr, lda, float(beta), C.data.ptr, ldc)


def matmul(handle, A, B, C, trans_a=False, trans_b=False, beta=0.0):
    """C = op(A)·op(B) + β·C on the handle's stream (row-major device arrays). Returns C."""
    handle.gemm(C.dtype, gemm_arguments(A, B, C, trans_a, trans_b, beta))
    return C
