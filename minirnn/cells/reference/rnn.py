"""The plain RNN cell (d2l §9.5) in the simple protocol: the equations and nothing else.

    Z_t = X_t·W_xh + b_h + H_{t-1}·W_hh        (B,H)   X_t·W_xh + b_h is A_t, from the engine
    H_t = tanh(Z_t)                             (B,H)

minirnn/cells/rnn.py computes the same, fast, in preallocated buffers.
"""
from minirnn.backend import array_module

NAME = "rnn"
GATES = ("h",)  # W_xh (I,H), b_h (H,); W_hh (H,H)
STATES = ("H",)


def step_forward(A_t, state, W):
    """A_t (B,H); state (H_{t-1},); W {"W_hh": (H,H)}. Returns ((H_t,), cache_t)."""
    xp = array_module(A_t)
    (H_prev,) = state
    H_t = xp.tanh(A_t + H_prev @ W["W_hh"])  # H_t = tanh(Z_t)
    return (H_t,), (H_prev, H_t)


def step_backward(dstate, cache_t, W):
    """dstate (dH_t,). Returns (dZ_t (B,H), (dH_{t-1},), {"W_hh": dW_hh})."""
    (dH_t,), (H_prev, H_t) = dstate, cache_t
    dZ = dH_t * (1 - H_t * H_t)  # into Z_t, through tanh: 1 - H_t²
    dH_prev = dZ @ W["W_hh"].T  # into H_{t-1}, through Z_t = … + H_{t-1}·W_hh
    dW_hh = H_prev.T @ dZ  # into W_hh
    return dZ, (dH_prev,), {"W_hh": dW_hh}
