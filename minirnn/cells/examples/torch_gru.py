"""PyTorch's and cuDNN's GRU (what nn.GRU computes), in the simple protocol.

    R_t = σ(X_t·W_ir + b_ir + H_{t-1}·W_hr)                         reset gate    (B,H)
    Z_t = σ(X_t·W_iz + b_iz + H_{t-1}·W_hz)                         update gate   (B,H)
    N_t = tanh(X_t·W_in + b_in + R_t ⊙ (H_{t-1}·W_hn + b_hn))       candidate     (B,H)
    H_t = (1 - Z_t) ⊙ N_t + Z_t ⊙ H_{t-1}

Unlike the book's GRU (minirnn/cells/gru.py), the reset gate acts after the product
with W_hn, and that product has its own bias b_hn: recurrent_params says so. (nn.GRU's
b_hr and b_hz add to b_ir and b_iz, so they are left out; its W_ir is W_xr here.)
A_t = X_t·[W_xr|W_xz|W_xn] + [b_r|b_z|b_n] (B,3H) comes from the engine.

    minirnn train --cell examples/torch_gru
"""
from minirnn.backend import array_module

NAME = "torch_gru"
GATES = ("r", "z", "n")  # nn.GRU's order
STATES = ("H",)


def recurrent_params(H):
    return {"W_hr": (H, H), "W_hz": (H, H), "W_hn": (H, H), "b_hn": (H,)}


def sigmoid(x, xp):
    return 0.5 * (1 + xp.tanh(0.5 * x))  # = 1 / (1 + e^-x), without overflow


def step_forward(A_t, state, W):
    xp = array_module(A_t)
    (H_prev,) = state
    a_r, a_z, a_n = xp.split(A_t, 3, axis=1)  # the three blocks (B,H)
    R = sigmoid(a_r + H_prev @ W["W_hr"], xp)
    Z = sigmoid(a_z + H_prev @ W["W_hz"], xp)
    Hn = H_prev @ W["W_hn"] + W["b_hn"]  # H_{t-1}·W_hn + b_hn
    N = xp.tanh(a_n + R * Hn)
    H_t = (1 - Z) * N + Z * H_prev
    return (H_t,), (H_prev, R, Z, Hn, N)


def step_backward(dstate, cache_t, W):
    xp = array_module(dstate[0])
    (dH,), (H_prev, R, Z, Hn, N) = dstate, cache_t
    dN = dH * (1 - Z)  # into N_t
    dA_z = dH * (H_prev - N) * Z * (1 - Z)  # into Z_t's pre-activation, through σ
    dA_n = dN * (1 - N * N)  # into N_t's pre-activation, through tanh
    dHn = dA_n * R  # into H_{t-1}·W_hn + b_hn
    dA_r = dA_n * Hn * R * (1 - R)  # into R_t's pre-activation, through σ
    dH_prev = (dH * Z  # into H_{t-1}: directly, through the update gate
               + dHn @ W["W_hn"].T  # through the candidate's product
               + dA_r @ W["W_hr"].T + dA_z @ W["W_hz"].T)  # through both gates' products
    dW = {"W_hr": H_prev.T @ dA_r, "W_hz": H_prev.T @ dA_z, "W_hn": H_prev.T @ dHn,
          "b_hn": dHn.sum(axis=0)}  # into the recurrent parameters
    return xp.concatenate([dA_r, dA_z, dA_n], axis=1), (dH_prev,), dW
