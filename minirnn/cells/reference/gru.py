"""The gated recurrent unit (d2l §10.2) in the simple protocol: the equations and nothing else.

    Z_t = σ(X_t·W_xz + b_z + H_{t-1}·W_hz)                  update gate   (B,H)
    R_t = σ(X_t·W_xr + b_r + H_{t-1}·W_hr)                  reset gate    (B,H)
    H̃_t = tanh(X_t·W_xh + b_h + (R_t ⊙ H_{t-1})·W_hh)       candidate     (B,H)
    H_t = Z_t ⊙ H_{t-1} + (1 - Z_t) ⊙ H̃_t

A_t = X_t·[W_xz|W_xr|W_xh] + [b_z|b_r|b_h] (B,3H) comes from the engine.
minirnn/cells/gru.py computes the same, fast, in preallocated buffers.
"""
from minirnn.backend import array_module

NAME = "gru"
GATES = ("z", "r", "h")  # blocks of A_t, in this order; W_hz, W_hr, W_hh (H,H)
STATES = ("H",)


def sigmoid(x, xp):
    return 0.5 * (1 + xp.tanh(0.5 * x))  # = 1 / (1 + e^-x), without overflow


def step_forward(A_t, state, W):
    xp = array_module(A_t)
    (H_prev,) = state
    a_z, a_r, a_h = xp.split(A_t, 3, axis=1)  # the three blocks (B,H)
    Z = sigmoid(a_z + H_prev @ W["W_hz"], xp)
    R = sigmoid(a_r + H_prev @ W["W_hr"], xp)
    RH = R * H_prev
    Hc = xp.tanh(a_h + RH @ W["W_hh"])
    H_t = Z * H_prev + (1 - Z) * Hc
    return (H_t,), (H_prev, Z, R, RH, Hc)


def step_backward(dstate, cache_t, W):
    xp = array_module(dstate[0])
    (dH,), (H_prev, Z, R, RH, Hc) = dstate, cache_t
    dHc = dH * (1 - Z)  # into H̃_t
    dA_h = dHc * (1 - Hc * Hc)  # into H̃_t's pre-activation, through tanh
    dZ = dH * (H_prev - Hc)  # into Z_t
    dA_z = dZ * Z * (1 - Z)  # into Z_t's pre-activation, through σ
    dRH = dA_h @ W["W_hh"].T  # into R_t ⊙ H_{t-1}
    dA_r = dRH * H_prev * R * (1 - R)  # into R_t's pre-activation
    dH_prev = (dH * Z  # into H_{t-1}: directly, through the update gate
               + dRH * R  # through R_t ⊙ H_{t-1}
               + dA_z @ W["W_hz"].T + dA_r @ W["W_hr"].T)  # through both gates' products
    dW = {"W_hz": H_prev.T @ dA_z, "W_hr": H_prev.T @ dA_r, "W_hh": RH.T @ dA_h}
    return xp.concatenate([dA_z, dA_r, dA_h], axis=1), (dH_prev,), dW
