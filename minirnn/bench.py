"""Benchmark: the engine's training step against the bare matrix-product floor.

The floor of one minibatch is the time of its matrix products alone, on
preallocated buffers and with the same shapes as the engine's:
    forward   T × (B,H)·(H,H)           the recurrence
              (T·B,H)·(H,V)             the output layer
    backward  (T·B,V)·(V,H)             dL/dH from the outputs
              T × (B,H)·(H,H)           the recurrence, with a contiguous W_hhᵀ
              (H,T·B)·(T·B,H)           dW_hh
              (H,T·B)·(T·B,V)           dW_hq
              (V,T·B)·(T·B,H)           dW_xh, as the one-hot product
Everything else (tanh, bias, softmax, clipping, SGD, the lookup) is the engine's
overhead; the ratio step time / floor time says how much of it there is.
"""
import time

import numpy as np

from .config import Config
from .loss import softmax_cross_entropy
from .model import (PARAM_NAMES, Workspace, init_params, input_forward, output_backward,
                    output_forward, recurrence_backward, recurrence_forward, weight_backward)
from .optim import clip_grad_norm, sgd
from .train import train_step

CONFIGS = {  # name: (batch_size, num_steps, num_hiddens, vocab_size)
    "book": (32, 35, 512, 28),
    "large": (128, 64, 1024, 28),
    "long": (32, 256, 512, 28),
}


def interleaved_times(fns, backend, warmup, repeats):
    """Median wall time of each function, timed in turn within every repeat.

    Alternating the functions exposes them to the same drift of a noisy machine,
    so their ratio is steadier than that of two separate runs. Syncs the device.
    """
    for _ in range(warmup):
        for fn in fns:
            fn()
    times = [[] for _ in fns]
    for _ in range(repeats):
        for fn, ts in zip(fns, times):
            backend.synchronize()
            start = time.perf_counter()
            fn()
            backend.synchronize()  # deliberate sync: time the work, not its queueing
            ts.append(time.perf_counter() - start)
    return [float(np.median(ts)) for ts in times]


def _batch(B, T, V, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, V, (B, T)).astype(np.uint8), rng.integers(0, V, (B, T)).astype(np.uint8)


def floor_products(B, T, H, V, backend, dtype="float32"):
    """A function that runs exactly the step's matrix products on preallocated buffers."""
    xp = backend.xp
    rng = np.random.default_rng(1)

    def arr(*shape):
        return backend.asarray(rng.normal(0, 0.1, shape).astype(dtype))

    W_hh, W_hhT, W_hq = arr(H, H), arr(H, H), arr(H, V)
    H_t, out_t = arr(B, H), arr(B, H)
    H_all, dZ_all, dlogits, logits = arr(T * B, H), arr(T * B, H), arr(T * B, V), arr(T * B, V)
    dW_hh, dW_hq, dW_xh = arr(H, H), arr(H, V), arr(V, H)
    onehot = backend.asarray(np.eye(V, dtype=dtype)[rng.integers(0, V, T * B)])

    def products():
        for _ in range(T):
            xp.matmul(H_t, W_hh, out=out_t)
        xp.matmul(H_all, W_hq, out=logits)
        xp.matmul(dlogits, W_hq.T, out=dZ_all)
        for _ in range(T):
            xp.matmul(H_t, W_hhT, out=out_t)
        xp.matmul(H_all.T, dZ_all, out=dW_hh)
        xp.matmul(H_all.T, dlogits, out=dW_hq)
        xp.matmul(onehot.T, dZ_all, out=dW_xh)

    return products


def engine_step(B, T, H, V, backend, dtype="float32"):
    """A function that runs one full training step (forward, loss, backward, clip, SGD),
    with the state carried between calls as in sequential training."""
    cfg = Config(batch_size=B, num_steps=T, num_hiddens=H, dtype=dtype)
    params = init_params(V, H, backend=backend, seed=0, dtype=dtype)
    X, Y = _batch(B, T, V)
    workspace = Workspace()
    state = {"H": None}

    def step():
        state["H"] = train_step(params, X, Y, state["H"], cfg, backend, workspace=workspace)[2]

    return step


def profile_step(B, T, H, V, backend, repeats=10, dtype="float32"):
    """Seconds per phase of one training step (medians), plus the subnormal floats found."""
    xp = backend.xp
    params = init_params(V, H, backend=backend, seed=0, dtype=dtype)
    X, Y = _batch(B, T, V)
    W_xh, W_hh, b_h, W_hq, b_q = (params[k] for k in PARAM_NAMES)
    ids, y = backend.asarray(X.T.reshape(-1)), backend.asarray(Y.T.reshape(-1))
    ws = Workspace()
    Hs = ws.get("Hs", (T + 1, B, H), W_hh.dtype, xp)
    Hs[0] = 0
    H_all, H_prev_all = Hs[1:].reshape(T * B, H), Hs[:-1].reshape(T * B, H)
    bufs = {name: ws.get(name, shape, W_hh.dtype, xp) for name, shape in
            [("step", (B, H)), ("logits", (T * B, V)), ("W_hhT", (H, H)), ("dZ", (T, B, H)),
             ("dphi", (T, B, H)), ("dW_hq", (H, V)), ("dW_hh", (H, H))]}
    held = {}

    def lookup():
        input_forward(W_xh, b_h, ids, out=H_all)

    def rec_fwd():
        recurrence_forward(Hs, W_hh, "tanh", bufs["step"])
        bufs["W_hhT"][...] = W_hh.T

    def out_fwd():
        output_forward(H_all, W_hq, b_q, out=bufs["logits"])

    def loss():
        held["dlogits"] = softmax_cross_entropy(bufs["logits"], y)[1]

    def out_bwd():
        held["db_q"] = output_backward(held["dlogits"], H_all, W_hq, bufs["dW_hq"], bufs["dZ"].reshape(T * B, H))

    def rec_bwd():
        held["dH0"] = recurrence_backward(bufs["dZ"], Hs, bufs["W_hhT"], "tanh", bufs["dphi"], xp.zeros((B, H), W_hh.dtype))

    def weights():
        held["dW_xh"], held["db_h"] = weight_backward(bufs["dZ"].reshape(T * B, H), H_prev_all, ids, V, bufs["dW_hh"])

    def grads():
        return {"W_xh": held["dW_xh"], "W_hh": bufs["dW_hh"], "b_h": held["db_h"], "W_hq": bufs["dW_hq"],
                "b_q": held["db_q"]}

    def clip():
        clip_grad_norm(grads(), 1.0)

    def update():
        sgd(params, grads(), 0.0)  # lr 0: the same work, and the model stays put

    phases = [("lookup (X·W_xh + b_h)", lookup), ("recurrence forward", rec_fwd), ("output layer", out_fwd),
              ("loss", loss), ("output backward", out_bwd), ("recurrence backward", rec_bwd),
              ("weight gradients", weights), ("clip", clip), ("sgd", update)]
    times = {name: [] for name, _ in phases}
    for r in range(repeats + 1):
        for name, fn in phases:
            backend.synchronize()
            start = time.perf_counter()
            fn()
            backend.synchronize()  # deliberate sync: per-phase timing
            if r:  # the first round warms up
                times[name].append(time.perf_counter() - start)
    tiny = np.finfo(W_hh.dtype).tiny
    subnormal = sum(int(((a != 0) & (abs(a) < tiny)).sum()) for a in
                    [backend.to_numpy(bufs["dZ"]), backend.to_numpy(held["dlogits"]), backend.to_numpy(held["dH0"])])
    return {name: float(np.median(t)) for name, t in times.items()}, subnormal


def bench_config(name, backend, threads, warmup=3, repeats=10):
    B, T, H, V = CONFIGS[name]
    floor, step = interleaved_times([floor_products(B, T, H, V, backend), engine_step(B, T, H, V, backend)],
                                    backend, warmup, repeats)
    return {
        "config": name, "batch_size": B, "num_steps": T, "num_hiddens": H, "vocab_size": V,
        "device": backend.name, "threads": threads, "dtype": "float32",
        "step_ms": step * 1e3, "floor_ms": floor * 1e3,
        "tokens_per_s": B * T / step, "floor_tokens_per_s": B * T / floor, "ratio": step / floor,
    }

