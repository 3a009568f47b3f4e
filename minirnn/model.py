"""The RNN: parameters, and the forward/backward pass through time, by hand.

Dimension letters, used in every shape below:
    B batch, T steps, V vocabulary, H hidden units.

The model (one-hot inputs X_t, time-major, as in the book):
    Z_t = X_t·W_xh + b_h + H_{t-1}·W_hh    X_t·W_xh is a row lookup, done for all t at once
    H_t = φ(Z_t)                           the recurrence, one step at a time        (B, H)
    O_t = H_t·W_hq + b_q                   output layer, all steps at once          (T·B, V)

φ is tanh (or ReLU). Only H_{t-1}·W_hh and, going back, dZ_t·W_hhᵀ sit in the time
loop; every other product runs once over all T·B rows.
"""
import numpy as np

from .backend import array_module, backend_of, get_backend

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


class Workspace:
    """Buffers kept across minibatches, so the large arrays of a step (the states,
    dZ, φ', the logits, W_hhᵀ, dW_hh) are allocated once, not every step.

    A buffer is made on first use and again only when its shape or dtype changes.
    Arrays that rnn_forward / rnn_backward return from a workspace (logits, the
    cache, the grads) are valid until the next call that uses the same workspace.
    """

    def __init__(self):
        self._buffers = {}

    def get(self, name, shape, dtype, xp):
        buf = self._buffers.get(name)
        if buf is None or buf.shape != tuple(shape) or buf.dtype != dtype or array_module(buf) is not xp:
            buf = self._buffers[name] = xp.empty(shape, dtype=dtype)
        return buf


# ----------------------------------------------------------------------------- one step
def rnn_step_forward(Z_t, H_prev, W_hh, activation, tmp):
    """One step, in place: Z_t (B,H) holds X_t·W_xh + b_h on entry and H_t on exit,

        H_t = φ(X_t·W_xh + b_h + H_{t-1}·W_hh).

    H_prev (B,H); W_hh (H,H); tmp (B,H) scratch for the product. Returns Z_t.
    """
    phi, _ = ACTIVATIONS[activation]
    xp = array_module(Z_t)
    xp.matmul(H_prev, W_hh, out=tmp)  # H_{t-1}·W_hh
    Z_t += tmp  # the pre-activation Z_t
    return phi(Z_t, out=Z_t)  # H_t = φ(Z_t)


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


# ----------------------------------------------------------------------------- the phases
# rnn_forward and rnn_backward are these, in order; scripts/bench.py --profile times each.
def input_forward(W_xh, b_h, ids, out):
    """X_t·W_xh + b_h for all T·B rows at once: a one-hot row picks a row of W_xh + b_h.
    ids (T·B,); out (T·B, H)."""
    xp = array_module(out)
    return xp.take(W_xh + b_h, ids, axis=0, out=out)


def recurrence_forward(Hs, W_hh, activation, tmp):
    """Hs (T+1,B,H): Hs[0] = H_0 and Hs[t] = X_t·W_xh + b_h on entry; Hs[t] = H_t on exit."""
    for t in range(1, Hs.shape[0]):
        rnn_step_forward(Hs[t], Hs[t - 1], W_hh, activation, tmp)


def output_forward(H_all, W_hq, b_q, out):
    """O = H·W_hq + b_q over all T·B rows. H_all (T·B, H); out (T·B, V)."""
    xp = array_module(out)
    xp.matmul(H_all, W_hq, out=out)
    out += b_q
    return out


def output_backward(dlogits, H_all, W_hq, dW_hq, dH_out):
    """From dL/dO (T·B, V): dW_hq = Hᵀ·dO into dW_hq (H,V), db_q returned, and
    dL/dH_t from each step's own output, dO·W_hqᵀ, into dH_out (T·B, H)."""
    xp = array_module(dW_hq)
    xp.matmul(H_all.T, dlogits, out=dW_hq)  # into W_hq
    xp.matmul(dlogits, W_hq.T, out=dH_out)  # into H_t, from O_t
    return dlogits.sum(axis=0)  # into b_q


def recurrence_backward(dZ, Hs, W_hhT, activation, dphi, dH):
    """The steps in reverse. dZ (T,B,H) holds dL/dH_t from the outputs on entry and
    dL/dZ_t on exit; dH (B,H) holds dL/dH_T on entry and dL/dH_0 on exit."""
    ACTIVATIONS[activation][1](Hs[1:], out=dphi)  # φ'(Z_t) for all t, from the outputs
    for t in range(dZ.shape[0], 0, -1):  # t = T..1; dZ and dphi hold step t in row t-1
        dH_t = dZ[t - 1]
        dH_t += dH  # total dL/dH_t: its own output + step t+1
        rnn_step_backward(dH_t, dphi[t - 1], W_hhT, dH_prev=dH)  # dH_t becomes dZ_t; dH becomes dL/dH_{t-1}
    return dH


def weight_backward(dZ_all, H_prev_all, ids, V, dW_hh):
    """The recurrent and input weights from dL/dZ (T·B, H), once over all rows:
    dW_hh = Σ_t H_{t-1}ᵀ·dZ_t into dW_hh (H,H); returns (dW_xh, db_h)."""
    xp = array_module(dZ_all)
    xp.matmul(H_prev_all.T, dZ_all, out=dW_hh)  # into W_hh
    dW_xh = backend_of(dZ_all).index_add(ids, dZ_all, V)  # into the looked-up rows of W_xh
    return dW_xh, dW_xh.sum(axis=0)  # into b_h: each row of dZ went into one row of dW_xh


# ----------------------------------------------------------------------------- the sequence
def rnn_forward(params, X, H, *, activation="tanh", workspace=None):
    """Run the RNN over a minibatch.

    X (B,T) integer token ids, best passed as a host array: its range is then
    checked on the host (CuPy does not raise on a bad index) and it is moved here.
    H (B,H) the initial state (None means zeros). Returns (logits, H_T, cache): logits (T·B, V) time-major, so row t·B + b is
    step t of sequence b, as the book's torch.cat(outputs, dim=0); H_T (B,H), a
    fresh array. workspace: a Workspace to reuse buffers across calls.
    """
    xp = array_module(params["W_hh"])
    W_xh, W_hh, b_h, W_hq, b_q = (params[k] for k in PARAM_NAMES)
    V, Hn = W_xh.shape
    X = _check_tokens(X, V)
    B, T = X.shape
    if H is not None and tuple(H.shape) != (B, Hn):
        raise ValueError(f"state H has shape {tuple(H.shape)}, expected (batch, num_hiddens) = {(B, Hn)}")
    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}: choose one of {', '.join(ACTIVATIONS)}")
    ws = workspace if workspace is not None else Workspace()
    dtype = W_hh.dtype
    ids = xp.asarray(X.T.reshape(-1))  # (T·B,) time-major token ids

    Hs = ws.get("Hs", (T + 1, B, Hn), dtype, xp)  # Hs[0] = H_0, Hs[t] = H_t
    Hs[0] = 0 if H is None else xp.asarray(H)
    input_forward(W_xh, b_h, ids, out=Hs[1:].reshape(T * B, Hn))
    recurrence_forward(Hs, W_hh, activation, tmp=ws.get("step", (B, Hn), dtype, xp))
    logits = output_forward(Hs[1:].reshape(T * B, Hn), W_hq, b_q, out=ws.get("logits", (T * B, V), dtype, xp))

    W_hhT = ws.get("W_hhT", (Hn, Hn), dtype, xp)
    W_hhT[...] = W_hh.T  # the W_hh this window used, contiguous as the backward wants it
    cache = {"Hs": Hs, "ids": ids, "W_hhT": W_hhT, "W_hq": W_hq, "activation": activation, "workspace": ws}
    return logits, Hs[T].copy(), cache


def rnn_backward(dlogits, cache, dH_T=None):
    """Backpropagation through time: the mirror of rnn_forward.

    dlogits (T·B, V): dL/dO, time-major (None: no output gradient, as when only a
    later window's gradient flows back through this one). dH_T (B,H): gradient
    arriving at the final state (None: zero). Returns (grads, dH0), grads keyed
    like the params, dH0 (B,H) the gradient at the initial state.
    """
    Hs, ids, W_hhT, W_hq, ws = cache["Hs"], cache["ids"], cache["W_hhT"], cache["W_hq"], cache["workspace"]
    xp = array_module(Hs)
    T, B, Hn = Hs.shape[0] - 1, Hs.shape[1], Hs.shape[2]
    V, dtype = W_hq.shape[1], Hs.dtype
    dZ = ws.get("dZ", (T, B, Hn), dtype, xp)  # dL/dH_t, then dL/dZ_t, in place
    dW_hq = ws.get("dW_hq", (Hn, V), dtype, xp)
    if dlogits is None:
        dW_hq[...], dZ[...] = 0, 0
        db_q = xp.zeros(V, dtype=dtype)
    else:
        db_q = output_backward(dlogits, Hs[1:].reshape(T * B, Hn), W_hq, dW_hq, dH_out=dZ.reshape(T * B, Hn))
    dH = xp.zeros((B, Hn), dtype=dtype) if dH_T is None else xp.array(dH_T, dtype=dtype)
    dH0 = recurrence_backward(dZ, Hs, W_hhT, cache["activation"], ws.get("dphi", (T, B, Hn), dtype, xp), dH)
    dW_hh = ws.get("dW_hh", (Hn, Hn), dtype, xp)
    dW_xh, db_h = weight_backward(dZ.reshape(T * B, Hn), Hs[:-1].reshape(T * B, Hn), ids, V, dW_hh)
    return {"W_xh": dW_xh, "W_hh": dW_hh, "b_h": db_h, "W_hq": dW_hq, "b_q": db_q}, dH0


def _check_tokens(X, V):
    """Shape and, on the host, range of the token ids; CuPy would not raise on bad ids."""
    if not hasattr(X, "ndim"):
        X = np.asarray(X)  # a list or other array-like of ids
    if X.ndim != 2:
        raise ValueError(f"X must have shape (batch, steps), got shape {tuple(X.shape)}")
    if X.shape[0] < 1 or X.shape[1] < 1:
        raise ValueError(f"X must hold at least one token, got shape {tuple(X.shape)}")
    if isinstance(X, np.ndarray):
        if not np.issubdtype(X.dtype, np.integer):
            raise TypeError(f"X must hold integer token ids, got dtype {X.dtype}")
        lo, hi = int(X.min()), int(X.max())
        if lo < 0 or hi >= V:
            raise ValueError(f"token ids must lie in [0, {V}), got values in [{lo}, {hi}]")
    return X
