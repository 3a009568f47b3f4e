"""`python -m minirnn.gpu_probe`: what a launch costs on this GPU, and whether GEMMs can
be captured in a CUDA graph through minirnn's own cuBLAS handle (minirnn/cublas.py).

Experimental: written before it ever ran on a GPU. It measures, in a few seconds:
  - the host cost per call of a ufunc, an ElementwiseKernel, a RawKernel, cupy.matmul
    and a GEMM through minirnn's cuBLAS handle (host µs in the loop, and wall µs per
    call once the queue has drained);
  - 35 small kernels launched one by one against the same 35 replayed as one graph;
  - the handle's GEMMs against cupy.matmul (op flags, β = 1), in float32 and float64;
  - the book's RNN forward (35 steps, B 32, H 512, float32: a GEMM with β = 1 and the
    fused rnn_step_forward kernel per step) captured as one graph, against CuPy eager;
  - whether cupy.matmul itself can run while a stream captures.
Without a usable GPU it stops with one line saying why.
"""
import sys
import time

import numpy as np

from . import cublas
from .backend import BackendError, get_backend
from .cli import ArgumentParser, run
from .kernels import source

TANH = r"""extern "C" __global__ void probe_tanh(float *x, long long n)
{
    long long step = (long long)blockDim.x * gridDim.x;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += step)
        x[i] = tanhf(x[i]);
}
"""
ADD = r"""extern "C" __global__ void probe_add(const float *a, const float *b, float *c, long long n)
{
    long long step = (long long)blockDim.x * gridDim.x;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += step)
        c[i] = a[i] + b[i];
}
"""
B, H, T = 32, 512, 35  # the book's run
BLOCK = 256


def timed(fn, calls, sync):
    """(host µs per call, wall µs per call): fn called `calls` times after one warm-up
    call; the host time stops before the final sync, the wall time after it."""
    fn()
    sync()
    t0 = time.perf_counter()
    for _ in range(calls):
        fn()
    t1 = time.perf_counter()
    sync()
    t2 = time.perf_counter()
    return (t1 - t0) / calls * 1e6, (t2 - t0) / calls * 1e6


def fmt(pair):
    return f"{pair[0]:.1f} ({pair[1]:.1f})"


def capture(stream, work):
    """work() captured on stream as one graph: (graph, None), or (None, "Error: why")."""
    with stream:
        stream.begin_capture()
        try:
            work()
        except Exception as e:
            try:
                stream.end_capture()
            except Exception:
                pass
            return None, f"{type(e).__name__}: {e}"
        try:
            return stream.end_capture(), None
        except Exception as e:
            return None, f"{type(e).__name__}: {e}"


def probe(calls, replays):
    try:
        cp = get_backend("gpu").xp
    except BackendError as e:  # one line, without the advice to train on the CPU instead
        raise BackendError(f"the GPU probe needs a GPU: {str(e).replace(', or use --device cpu.', '.')}") from None
    rng = np.random.default_rng(0)
    stream = cp.cuda.Stream(non_blocking=True)
    sync = stream.synchronize
    props = cp.cuda.runtime.getDeviceProperties(cp.cuda.Device().id)
    name = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
    print(f"device: {name} (sm_{props['major']}{props['minor']}), CuPy {cp.__version__}, "
          f"CUDA runtime {cp.cuda.runtime.runtimeGetVersion()}, cuBLAS {cublas.version()}")

    with stream:
        a, b, c = (cp.asarray(rng.normal(0, 1, (B, H)), dtype=cp.float32) for _ in range(3))
        W = cp.asarray(rng.normal(0, H ** -0.5, (H, H)), dtype=cp.float32)
        n = np.int64(B * H)
        grid = ((B * H + BLOCK - 1) // BLOCK,)
        add_raw = cp.RawKernel(ADD, "probe_add")
        tanh_raw = cp.RawKernel(TANH, "probe_tanh")
        add_ew = cp.ElementwiseKernel("T a, T b", "T c", "c = a + b", "minirnn_probe_add")
        workspace = cp.empty(32 << 20, dtype=cp.uint8)  # 32 MiB: enough for every GPU's GEMMs
        handle = cublas.Handle()
        handle.set_stream(stream.ptr, workspace.data.ptr, workspace.nbytes)
        gemm_args = cublas.gemm_arguments(a, W, c)

        costs = {"ufunc add": timed(lambda: cp.add(a, b, out=c), calls, sync),
                 "ElementwiseKernel": timed(lambda: add_ew(a, b, c), calls, sync),
                 "RawKernel": timed(lambda: add_raw(grid, (BLOCK,), (a, b, c, n)), calls, sync),
                 "cupy.matmul (32x512 @ 512x512)": timed(lambda: cp.matmul(a, W, out=c), calls, sync),
                 "cuBLAS handle GEMM (same)": timed(lambda: handle.gemm(cp.float32, gemm_args), calls, sync)}
        print("host µs per call (wall µs per call): " + ", ".join(f"{k} {fmt(v)}" for k, v in costs.items()))

        def small_kernels():
            for _ in range(T):
                tanh_raw(grid, (BLOCK,), (c, n))

        eager = timed(small_kernels, max(1, calls // T), sync)
        graph, why = capture(stream, small_kernels)
        if graph is None:
            print(f"{T} small kernels: eager {fmt(eager)} µs per {T}; graph capture failed ({why})")
        else:
            replay = timed(lambda: graph.launch(stream), replays, sync)
            print(f"{T} small kernels, host µs (wall µs) per {T}: eager {fmt(eager)}, one graph {fmt(replay)}")

        errors = []  # the handle's GEMMs against cupy.matmul: op flags, β = 1, both dtypes
        flags = ((False, False, 0.0), (True, False, 1.0), (False, True, 1.0), (True, True, 0.0))
        for dtype in (cp.float32, cp.float64):
            for trans_a, trans_b, beta in flags:
                A = cp.asarray(rng.normal(0, 1, (40, 24) if trans_a else (24, 40)), dtype=dtype)
                Bm = cp.asarray(rng.normal(0, 1, (56, 40) if trans_b else (40, 56)), dtype=dtype)
                C = cp.asarray(rng.normal(0, 1, (24, 60)), dtype=dtype)[:, :56]
                want = cp.matmul(A.T if trans_a else A, Bm.T if trans_b else Bm) + beta * C
                cublas.matmul(handle, A, Bm, C, trans_a, trans_b, beta)
                sync()
                errors.append(float(cp.abs(C - want).max() / cp.abs(want).max()))
        print(f"cuBLAS handle GEMMs against cupy.matmul (op flags, beta 0 and 1): max relative error float32 "
              f"{max(errors[:4]):.1e}, float64 {max(errors[4:]):.1e}")

        rnn_forward = cp.RawModule(code=source("rnn", "float32")).get_function("rnn_step_forward")
        X = cp.asarray(rng.normal(0, 1, (T, B, H)), dtype=cp.float32)
        Hs = cp.zeros((T + 1, B, H), dtype=cp.float32)
        step_args = [cublas.gemm_arguments(Hs[t - 1], W, Hs[t], beta=1.0) for t in range(1, T + 1)]
        null, relu = np.uint64(0), np.int32(0)

        def fused_forward():  # per step: Z_t += H_{t-1}·W_hh (β = 1), then H_t = tanh(Z_t) in one kernel
            cp.copyto(Hs[1:], X)
            for t in range(1, T + 1):
                handle.gemm(cp.float32, step_args[t - 1])
                rnn_forward(grid, (BLOCK,), (Hs[t], null, n, relu))

        Hc, tmp = cp.zeros((T + 1, B, H), dtype=cp.float32), cp.empty((B, H), dtype=cp.float32)

        def cupy_forward():  # the CuPy path's step: matmul into a scratch, add, tanh
            cp.copyto(Hc[1:], X)
            for t in range(1, T + 1):
                cp.matmul(Hc[t - 1], W, out=tmp)
                Hc[t] += tmp
                cp.tanh(Hc[t], out=Hc[t])

        per = max(1, calls // (4 * T))
        eager_cupy = timed(cupy_forward, per, sync)
        eager_fused = timed(fused_forward, per, sync)
        fused_error = float(cp.abs(Hs - Hc).max())
        Hs.fill(0)
        graph, why = capture(stream, fused_forward)
        if graph is None:
            print(f"RNN forward ({T} steps, B {B}, H {H}): GEMM capture through the handle FAILED ({why}); "
                  f"eager host µs (wall µs): CuPy {fmt(eager_cupy)}, handle + fused kernel {fmt(eager_fused)}")
        else:
            graph.launch(stream)
            sync()
            graph_error = float(cp.abs(Hs - Hc).max())
            replay = timed(lambda: graph.launch(stream), replays, sync)
            print(f"RNN forward ({T} steps, B {B}, H {H}), GEMM capture through the handle works: host µs (wall µs) "
                  f"CuPy eager {fmt(eager_cupy)}, handle + fused kernel eager {fmt(eager_fused)}, one graph "
                  f"{fmt(replay)}; max |difference| from CuPy eager {fused_error:.1e} eager, {graph_error:.1e} graph")
        handle.close()

    other = cp.cuda.Stream(non_blocking=True)  # a fresh stream: a failed capture may spoil its stream
    with other:
        x, y = cp.ones((B, H), dtype=cp.float32), cp.empty((B, H), dtype=cp.float32)
        cp.matmul(x, W, out=y)
        other.synchronize()
        graph, why = capture(other, lambda: cp.matmul(x, W, out=y))
    print("cupy.matmul inside a capture: " + ("captured" if graph is not None else f"refused ({why})"))


def main(argv=None, prog="python -m minirnn.gpu_probe"):
    parser = ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=2000, help="calls per host-cost figure (default 2000)")
    parser.add_argument("--replays", type=int, default=200, help="replays per graph figure (default 200)")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
    args = parser.parse_args(argv)
    if args.calls < 1 or args.replays < 1:
        parser.error("--calls and --replays must be at least 1")
    probe(args.calls, args.replays)
    return 0


if __name__ == "__main__":
    sys.exit(run(main))
