"""The RNN: parameters, and the forward/backward pass through time, by hand.

Dimension letters, used in every shape below:
    B batch, T steps, V vocabulary, H hidden units.

The model (one-hot inputs X_t, time-major, as in the book):
    A_t = X_t·W_xh + b_h                  input lookup + bias, all steps at once  (T·B, H)
    H_t = φ(A_t + H_{t-1}·W_hh)           the recurrence, one step at a time     (B, H)
    O_t = H_t·W_hq + b_q                  output layer, all steps at once         (T·B, V)

φ is tanh (or ReLU). Only H_{t-1}·W_hh and, going back, dZ_t·W_hhᵀ sit in the time
loop; every other product runs once over all T·B rows.
"""
import numpy as np

from .backend import array_module

PARAM_NAMES = ("W_xh", "W_hh", "b_h", "W_hq", "b_q")


def _tanh(Z, out):
    xp = array_module(Z)
    return xp.tanh(Z, out=out)


def _tanh_grad(H, out):
    # φ'(Z) = 1 - tanh(Z)² = 1 - H², taken from the cached output
    xp = array_module(H)
    xp.multiply(H, H, out=out)
    return xp.subtract(1, out, out=out)


def _relu(Z, out):
    xp = array_module(Z)
    return xp.maximum(Z, 0, out=out)


def _relu_grad(H, out):
    # φ'(Z) = 1 if Z > 0 else 0, and Z > 0 exactly when H = relu(Z) > 0
    xp = array_module(H)
    return xp.greater(H, 0, out=out)


ACTIVATIONS = {"tanh": (_tanh, _tanh_grad), "relu": (_relu, _relu_grad)}


def init_params(vocab_size, num_hiddens, *, backend=None, seed=0, dtype="float32"):
    """Weights ~ normal(0, 0.01), biases zero, as in the book.

    Drawn on the host by a NumPy Generator and then moved, so one seed gives
    the same model on the CPU and the GPU. Returns
    {W_xh (V,H), W_hh (H,H), b_h (H,), W_hq (H,V), b_q (V,)}.
    """
    from .backend import get_backend

    if int(vocab_size) < 1 or int(num_hiddens) < 1:
        raise ValueError(f"vocab_size and num_hiddens must be >= 1, got {vocab_size} and {num_hiddens}")
    backend = get_backend(backend)
    V, H = int(vocab_size), int(num_hiddens)
    rng = np.random.default_rng(seed)
    host = {
        "W_xh": rng.normal(0.0, 0.01, size=(V, H)),
        "W_hh": rng.normal(0.0, 0.01, size=(H, H)),
        "b_h": np.zeros(H),
        "W_hq": rng.normal(0.0, 0.01, size=(H, V)),
        "b_q": np.zeros(V),
    }
    return {k: backend.asarray(v.astype(dtype)) for k, v in host.items()}


def rnn_step_forward(A_t, H_prev, W_hh, activation, out):
    """One step: H_t = φ(A_t + H_{t-1}·W_hh), written into out (B,H) and returned.

    A_t (B,H) already holds X_t·W_xh + b_h; H_prev (B,H); W_hh (H,H).
    """
    phi, _ = ACTIVATIONS[activation]
    xp = array_module(out)
    xp.matmul(H_prev, W_hh, out=out)  # H_{t-1}·W_hh
    out += A_t  # + X_t·W_xh + b_h
    return phi(out, out=out)  # φ(Z_t)


def rnn_step_backward(dH_t, dphi_t, W_hhT, dH_prev):
    """Mirror of rnn_step_forward.

    dH_t (B,H): total gradient at H_t; overwritten with dZ_t = dH_t ⊙ φ'(Z_t).
    dphi_t (B,H): φ'(Z_t), from the cached output.  W_hhT (H,H): contiguous W_hhᵀ.
    dH_prev (B,H): receives dL/dH_{t-1} = dZ_t·W_hhᵀ.  Returns (dZ_t, dH_prev).
    """
    xp = array_module(dH_t)
    dH_t *= dphi_t  # through φ: dZ_t
    xp.matmul(dH_t, W_hhT, out=dH_prev)  # into H_{t-1}
    return dH_t, dH_prev


def rnn_forward(params, X, H, *, activation="tanh"):
    """Run the RNN over a minibatch.

    X (B,T) integer token ids; H (B,H) the initial state (None means zeros).
    Returns (logits, H_T, cache): logits (T·B, V) time-major, so row t·B + b is
    step t of sequence b, as the book's torch.cat(outputs, dim=0); H_T (B,H).
    """
    xp = array_module(params["W_hh"])
    W_xh, W_hh, b_h, W_hq, b_q = (params[k] for k in PARAM_NAMES)
    V, Hn = W_xh.shape
    X = _check_tokens(X, V)
    B, T = X.shape
    if H is None:
        H = xp.zeros((B, Hn), dtype=W_hh.dtype)
    if tuple(H.shape) != (B, Hn):
        raise ValueError(f"state H has shape {tuple(H.shape)}, expected (batch, num_hiddens) = {(B, Hn)}")
    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}: choose one of {', '.join(ACTIVATIONS)}")
    ids = xp.asarray(X.T.reshape(-1))  # (T·B,) time-major token ids

    Hs = xp.empty((T + 1, B, Hn), dtype=W_hh.dtype)  # Hs[0] = H_0, Hs[t+1] = H_t
    Hs[0] = H
    A = xp.take(W_xh, ids, axis=0).reshape(T, B, Hn)  # X_t·W_xh for all t: a row lookup
    A += b_h
    for t in range(T):
        rnn_step_forward(A[t], Hs[t], W_hh, activation, out=Hs[t + 1])
    logits = Hs[1:].reshape(T * B, Hn) @ W_hq + b_q  # O = H·W_hq + b_q over all T·B rows

    cache = {
        "Hs": Hs,
        "ids": ids,
        "W_hhT": xp.ascontiguousarray(W_hh.T),  # the W_hh this window used, as the backward wants it
        "W_hq": W_hq,
        "activation": activation,
    }
    return logits, Hs[T], cache


def rnn_backward(dlogits, cache, dH_T=None):
    """Backpropagation through time: the mirror of rnn_forward.

    dlogits (T·B, V): dL/dO, time-major (None: no output gradient, as when only a
    later window's gradient flows back through this one). dH_T (B,H): gradient
    arriving at the final state (None: zero). Returns (grads, dH0), grads keyed
    like the params, dH0 (B,H) the gradient at the initial state.
    """
    Hs, ids, W_hhT, W_hq = cache["Hs"], cache["ids"], cache["W_hhT"], cache["W_hq"]
    xp = array_module(Hs)
    T, B, Hn = Hs.shape[0] - 1, Hs.shape[1], Hs.shape[2]
    V = W_hq.shape[1]
    H_all = Hs[1:].reshape(T * B, Hn)  # H_1..H_T, (T·B, H)
    H_prev_all = Hs[:-1].reshape(T * B, Hn)  # H_0..H_{T-1}, (T·B, H)

    if dlogits is None:
        dW_hq = xp.zeros_like(W_hq)
        db_q = xp.zeros(V, dtype=W_hq.dtype)
        dZ = xp.zeros((T, B, Hn), dtype=Hs.dtype)
    else:
        dW_hq = H_all.T @ dlogits  # into W_hq
        db_q = dlogits.sum(axis=0)  # into b_q
        dZ = (dlogits @ W_hq.T).reshape(T, B, Hn)  # into each H_t from its output; becomes dZ
    dphi = _activation_grad(cache["activation"], Hs[1:])  # φ'(Z_t) for all t, (T,B,H)
    dH = xp.zeros((B, Hn), dtype=Hs.dtype) if dH_T is None else xp.array(dH_T, dtype=Hs.dtype)
    for t in reversed(range(T)):
        dZ[t] += dH  # total dL/dH_t: its output + the step after it
        rnn_step_backward(dZ[t], dphi[t], W_hhT, dH_prev=dH)  # dZ_t, and dH becomes dL/dH_{t-1}

    dZ_all = dZ.reshape(T * B, Hn)
    grads = {
        "W_xh": _index_add(ids, dZ_all, V),  # into the looked-up rows of W_xh
        "W_hh": H_prev_all.T @ dZ_all,  # into W_hh, summed over all steps in one product
        "b_h": dZ_all.sum(axis=0),  # into b_h
        "W_hq": dW_hq,
        "b_q": db_q,
    }
    return grads, dH


def _activation_grad(name, Hs):
    _, grad = ACTIVATIONS[name]
    xp = array_module(Hs)
    return grad(Hs, out=xp.empty_like(Hs))


def _index_add(ids, rows, num_rows):
    from .backend import backend_of

    return backend_of(rows).index_add(ids, rows, num_rows)


def _check_tokens(X, V):
    """Shape and, on the host, range of the token ids; CuPy would not raise on bad ids."""
    if X.ndim != 2:
        raise ValueError(f"X must have shape (batch, steps), got {X.ndim} dimensions")
    if X.shape[0] < 1 or X.shape[1] < 1:
        raise ValueError(f"X must hold at least one token, got shape {tuple(X.shape)}")
    if isinstance(X, np.ndarray):
        if not np.issubdtype(X.dtype, np.integer):
            raise TypeError(f"X must hold integer token ids, got dtype {X.dtype}")
        lo, hi = int(X.min()), int(X.max())
        if lo < 0 or hi >= V:
            raise ValueError(f"token ids must lie in [0, {V}), got values in [{lo}, {hi}]")
    return X
