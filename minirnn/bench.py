"""Benchmark: the engine's training step against the bare matrix-product floor.

The floor of one minibatch is the time of the model's matrix products alone, on
preallocated buffers and with the same shapes as the engine's (step_products
lists them for any cell, depth and input). For the book's RNN they are:
    forward   T × (B,H)·(H,H)           the recurrence
              (T·B,H)·(H,V)             the output layer
    backward  (T·B,V)·(V,H)             dL/dH from the outputs
              T × (B,H)·(H,H)           the recurrence, with a contiguous W_hhᵀ
              (H,T·B)·(T·B,H)           dW_hh
              (H,T·B)·(T·B,V)           dW_hq
              (V,T·B)·(T·B,H)           dW_xh, as the one-hot product
A gated cell has k blocks side by side (GRU 3, LSTM 4), so its products are k
times wider; upper layers and an embedding add their input products.
Everything else (the gate arithmetic, bias, softmax, clipping, SGD, the lookup)
is the engine's overhead; the ratio step time / floor time says how much.

A cell file (--cell PATH) is measured against the floor its recurrent matrices
would have in a built-in cell's layout: one product H_{t-1}·[its (H,H) matrices
side by side] per step (and its mirror), dW_h once over all rows; so step/floor
shows what its per-step allocations and separate products cost.
"""
import time

import numpy as np

from .cells import get_cell, recurrent_params
from .config import Config
from .loss import softmax_cross_entropy
from .model import (Spec, Workspace, init_params, input_forward, layer_backward, layer_input_forward,
                    output_backward, output_forward, param_shapes, prepare, split_state)
from .optim import SGD, Scratch, clip_grad_norm, sgd
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


def step_products(spec, B, T):
    """The matrix products of one training step: (count, (m, k), (k, n), transposed)
    where transposed says the left operand is read transposed (a weight gradient,
    Xᵀ·dA). The one-hot lookups are no products; their gradients are (onehot)ᵀ·rows."""
    H, V, E, N = spec.num_hiddens, spec.vocab_size, spec.embed_size, T * B
    k = len(get_cell(spec.cell).GATES)
    if isinstance(spec.cell, str):
        recurrent = [(B, H, 2 * H), (B, H, H)] if spec.cell == "gru" else [(B, H, k * H)]
    else:  # a cell file: its (H,H) matrices as one product, as the built-in cells fuse theirs
        square = sum(1 for s in recurrent_params(spec.cell, H).values() if tuple(s) == (H, H))
        recurrent = [(B, H, square * H)] if square else []
    products = [(1, (N, H), (H, V), False), (1, (N, V), (V, H), False), (1, (H, N), (N, V), True)]
    if E:
        products.append((1, (V, N), (N, E), True))  # dW_emb
    for layer in range(spec.num_layers):
        I = (E or V) if layer == 0 else H
        for m, kk, n in recurrent:  # forward H_{t-1}·W_h, backward dA_t·W_hᵀ, and dW_h
            products += [(T, (m, kk), (kk, n), False), (T, (m, n), (n, kk), False), (1, (kk, N), (N, n), True)]
        products.append((1, (I, N), (N, k * H), True))  # dW_x (one-hot: the product with onehotᵀ)
        if layer or E:
            products += [(1, (N, I), (I, k * H), False), (1, (N, k * H), (k * H, I), False)]  # X·W_x, dA·W_xᵀ
    return products


def floor_products(spec, B, T, backend, dtype="float32"):
    """A function that runs exactly the step's matrix products on preallocated buffers."""
    xp = backend.xp
    rng = np.random.default_rng(1)

    def arr(*shape):
        return backend.asarray(rng.normal(0, 0.1, shape).astype(dtype))

    jobs = []
    for count, (m, k), (k2, n), transposed in step_products(spec, B, T):
        left = arr(k, m).T if transposed else arr(m, k)
        jobs.append((count, left, arr(k2, n), arr(m, n)))

    def products():
        for count, a, b, out in jobs:
            for _ in range(count):
                xp.matmul(a, b, out=out)

    return products


def engine_step(spec, B, T, backend, dtype="float32"):
    """A function that runs one full training step (forward, loss, backward, clip, SGD),
    with the state carried between calls as in sequential training."""
    cell = spec.cell if isinstance(spec.cell, str) else spec.cell.path
    cfg = Config(batch_size=B, num_steps=T, num_hiddens=spec.num_hiddens, dtype=dtype, cell=cell,
                 num_layers=spec.num_layers, embed_size=spec.embed_size)
    params = init_params(spec.vocab_size, spec.num_hiddens, cell=spec.cell, num_layers=spec.num_layers,
                         embed_size=spec.embed_size or None, backend=backend, seed=0, dtype=dtype)
    X, Y = _batch(B, T, spec.vocab_size)
    workspace, optimizer = Workspace(), SGD(cfg.lr)  # as in training: the update's scratch is kept
    state = {"H": None}

    def step():
        state["H"] = train_step(params, X, Y, state["H"], cfg, backend, workspace=workspace, optimizer=optimizer)[2]

    return step


def profile_step(spec, B, T, backend, repeats=10, dtype="float32"):
    """Seconds per phase of one training step (medians), plus the subnormal floats
    found in dlogits and the gradients at the pre-activations. The phases are
    rnn_forward's and rnn_backward's own functions, called in their order."""
    xp = backend.xp
    cell, H, V, L = get_cell(spec.cell), spec.num_hiddens, spec.vocab_size, spec.num_layers
    params = init_params(V, H, cell=spec.cell, num_layers=L, embed_size=spec.embed_size or None,
                         backend=backend, seed=0, dtype=dtype)
    X, Y = _batch(B, T, V)
    ids, y = backend.asarray(X.T.reshape(-1)), backend.asarray(Y.T.reshape(-1))
    ws = Workspace()
    dtype = params["W_hq"].dtype
    held = {"states": split_state(None, spec, B), "layers": [None] * L, "dA": [None] * L, "grads": {}}

    def weights():
        held["prep"] = prepare(params, ws, spec)

    def lookup():
        held["X_in"] = [input_forward(held["prep"], ids, ws, T, B)[0]] + [None] * L

    def layer_fwd(layer):
        def run():
            A = layer_input_forward(held["prep"], layer, held["X_in"][layer], ids, ws, T, B)
            Hs, _, c = cell.sequence_forward(A, held["states"][layer], held["prep"]["layers"][layer]["recurrent"],
                                             ws, f"l{layer}.", "tanh")
            held["layers"][layer], held["X_in"][layer + 1] = c, Hs[1:].reshape(T * B, H)
        return run

    def out_fwd():
        held["logits"] = output_forward(held["X_in"][L], params["W_hq"], params["b_q"],
                                        out=ws.get("logits", (T * B, V), dtype, xp))

    def loss():
        held["dlogits"] = softmax_cross_entropy(held["logits"], y)[1]

    def out_bwd():
        held["dHs"] = ws.get(f"l{L - 1}.dHs", (T, B, H), dtype, xp)
        held["grads"]["W_hq"] = ws.get("dW_hq", (H, V), dtype, xp)
        held["grads"]["b_q"] = output_backward(held["dlogits"], held["X_in"][L], params["W_hq"], held["grads"]["W_hq"],
                                               held["dHs"].reshape(T * B, H))

    def layer_bwd(layer):
        def run():
            dA, _, dW_h = cell.sequence_backward(held["dHs"], held["layers"][layer], None)
            held["dA"][layer] = dA.reshape(T * B, dA.shape[2])
            held["grads"].update({f"W_h{g}_{layer}": d for g, d in zip(cell.GATES, dW_h)})
        return run

    def layer_weights(layer):
        def run():
            X_in = held["X_in"][layer]
            dX = ws.get(f"l{layer - 1}.dHs" if layer else "dE", X_in.shape, dtype, xp) if X_in is not None else None
            dW_x, db = layer_backward(held["prep"], layer, held["dA"][layer], X_in, ids, ws, dX)
            held["grads"].update({f"W_x_{layer}": dW_x, f"b_{layer}": db})
            if layer:
                held["dHs"] = dX.reshape(T, B, H)
            elif spec.embed_size:
                held["grads"]["W_emb"] = backend.index_add(ids, dX, V)
        return run

    def clip():
        clip_grad_norm(held["grads"], 1.0)

    zero_grads = {name: xp.zeros(shape, dtype) for name, shape in param_shapes(spec).items()}
    scratch = Scratch()  # kept, as SGD keeps it in training

    def update():
        sgd(params, zero_grads, 0.0, scratch)  # lr 0: the same work, and the model stays put

    phases = [("weight copies", weights), ("input lookup", lookup)]
    phases += [(f"layer {layer} forward", layer_fwd(layer)) for layer in range(L)]
    phases += [("output layer", out_fwd), ("loss", loss), ("output backward", out_bwd)]
    for layer in range(L - 1, -1, -1):
        phases += [(f"layer {layer} recurrence backward", layer_bwd(layer)),
                   (f"layer {layer} weight gradients", layer_weights(layer))]
    phases += [("clip", clip), ("sgd", update)]
    times = {name: [] for name, _ in phases}
    for r in range(repeats + 1):
        for name, fn in phases:
            backend.synchronize()
            start = time.perf_counter()
            fn()
            backend.synchronize()  # deliberate sync: per-phase timing
            if r:  # the first round warms up
                times[name].append(time.perf_counter() - start)
    tiny = np.finfo(dtype).tiny
    subnormal = sum(int(((a != 0) & (abs(a) < tiny)).sum()) for a in
                    [backend.to_numpy(held["dlogits"])] + [backend.to_numpy(d) for d in held["dA"]])
    return {name: float(np.median(t)) for name, t in times.items()}, subnormal


def bench_config(name, backend, threads, warmup=3, repeats=10, *, cell="rnn", num_layers=1, embed_size=0,
                 num_hiddens=None, batch_size=None, num_steps=None):
    """Time config `name`'s step and floor; num_hiddens, batch_size, num_steps override its own."""
    B, T, H, V = CONFIGS[name]
    B, T = batch_size or B, num_steps or T
    spec = Spec(cell, num_layers, V, num_hiddens or H, embed_size)
    floor, step = interleaved_times([floor_products(spec, B, T, backend), engine_step(spec, B, T, backend)],
                                    backend, warmup, repeats)
    return {
        "config": name, "cell": cell, "num_layers": num_layers, "embed_size": embed_size,
        "batch_size": B, "num_steps": T, "num_hiddens": spec.num_hiddens, "vocab_size": V,
        "device": backend.name, "threads": threads, "dtype": "float32",
        "step_ms": step * 1e3, "floor_ms": floor * 1e3,
        "tokens_per_s": B * T / step, "floor_tokens_per_s": B * T / floor, "ratio": step / floor,
    }
