"""The plain RNN cell (d2l §9.5), with tanh or ReLU as φ:

    Z_t = X_t·W_xh + H_{t-1}·W_hh + b_h          (B,H)
    H_t = φ(Z_t)

B batch, T steps, H hidden units. X_t·W_xh + b_h arrives precomputed for all steps
at once (model.py); only the product with W_hh runs inside the time loop, and
going back only dZ_t·W_hhᵀ.

Backward, for one step, given dH_t (the total gradient at H_t):
    dZ_t     = dH_t ⊙ φ'(Z_t)        φ' from the cached output (1 - H_t² for tanh)
    dH_{t-1} = dZ_t·W_hhᵀ            (+ its own output's gradient, added by the caller)
    dW_hh    = Σ_t H_{t-1}ᵀ·dZ_t     once over all T·B rows, after the loop
"""
from ..backend import array_module
from .common import ACTIVATIONS, final_gradient

GATES = ("h",)  # the one block of W_x*, W_h*, b_*: W_xh, W_hh, b_h
STATES = ("H",)
SPENDS_CACHE = False  # the backward overwrites only its input dHs


def rnn_step_forward(Z_t, H_prev, W_hh, activation, tmp):
    """One step, in place: Z_t (B,H) holds X_t·W_xh + b_h on entry and H_t on exit.
    H_prev (B,H); W_hh (H,H); tmp (B,H) scratch for the product. Returns Z_t."""
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


# ----------------------------------------------------------------------------- the sequence
def prepare(W_h, ws, key):
    """The recurrent weights of one window: W_hh, and a contiguous copy of W_hhᵀ
    (the W_hh this window used, as the backward wants it)."""
    (W_hh,) = W_h
    W_hhT = ws.get(key + "W_hhT", W_hh.shape[::-1], W_hh.dtype, array_module(W_hh))
    W_hhT[...] = W_hh.T
    return {"W_hh": W_hh, "W_hhT": W_hhT}


def input_buffer(ws, key, T, B, H, dtype, xp):
    """Where X_t·W_xh + b_h goes (T,B,H): the RNN computes H_t in place there."""
    return ws.get(key + "Hs", (T + 1, B, H), dtype, xp)[1:]


def sequence_forward(A, state0, W, ws, key, activation):
    """A (T,B,H): X_t·W_xh + b_h for every step, in the buffer from input_buffer.
    state0: (H_0,) with H_0 (B,H) or None (zeros).
    Returns (Hs (T+1,B,H) with Hs[0] = H_0 and Hs[t] = H_t, (H_T,), cache)."""
    T, B, H = A.shape
    xp = array_module(A)
    Hs = ws.get(key + "Hs", (T + 1, B, H), A.dtype, xp)  # the buffer A lives in
    Hs[0] = 0 if state0[0] is None else state0[0]
    tmp = ws.get(key + "tmp", (B, H), A.dtype, xp)
    for t in range(1, T + 1):
        rnn_step_forward(Hs[t], Hs[t - 1], W["W_hh"], activation, tmp)
    cache = {"Hs": Hs, "W_hhT": W["W_hhT"], "activation": activation, "ws": ws, "key": key}
    return Hs, (Hs[T].copy(),), cache


def sequence_backward(dHs, cache, dstate_T, keep_cache=False):
    """The steps in reverse. dHs (T,B,H): dL/dH_t from above (the outputs), overwritten
    with dZ_t. dstate_T: (dH_T,) or None. Returns (dZ (T,B,H), (dH_0,), [dW_hh]).
    The cache is never overwritten, so keep_cache changes nothing here."""
    Hs, W_hhT, ws, key = cache["Hs"], cache["W_hhT"], cache["ws"], cache["key"]
    T, B, H = dHs.shape
    xp = array_module(dHs)
    dphi = ws.get(key + "dphi", (T, B, H), dHs.dtype, xp)
    ACTIVATIONS[cache["activation"]][1](Hs[1:], out=dphi)  # φ'(Z_t) for all t, from the outputs
    dH = final_gradient(dstate_T, 0, (B, H), dHs.dtype, xp)
    for t in range(T, 0, -1):  # dHs and dphi hold step t in row t-1
        dHs[t - 1] += dH  # total dL/dH_t: its own output + step t+1
        rnn_step_backward(dHs[t - 1], dphi[t - 1], W_hhT, dH_prev=dH)  # dHs[t-1] becomes dZ_t
    dW_hh = ws.get(key + "dW_hh", (H, H), dHs.dtype, xp)
    xp.matmul(Hs[:-1].reshape(T * B, H).T, dHs.reshape(T * B, H), out=dW_hh)  # into W_hh
    return dHs, (dH,), [dW_hh]

