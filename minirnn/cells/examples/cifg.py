"""The LSTM with a coupled input-forget gate (CIFG), in the simple protocol.

    F_t = σ(X_t·W_xf + b_f + H_{t-1}·W_hf)        forget gate       (B,H)
    O_t = σ(X_t·W_xo + b_o + H_{t-1}·W_ho)        output gate       (B,H)
    C̃_t = tanh(X_t·W_xc + b_c + H_{t-1}·W_hc)     candidate memory  (B,H)
    C_t = F_t ⊙ C_{t-1} + (1 - F_t) ⊙ C̃_t          the input gate is I_t = 1 - F_t
    H_t = O_t ⊙ tanh(C_t)

Three blocks instead of the LSTM's four (minirnn/cells/reference/lstm.py), and the
same two states. A_t = X_t·[W_xf|W_xo|W_xc] + [b_f|b_o|b_c] (B,3H) comes from the engine.

    minirnn train --cell examples/cifg
"""
from minirnn.backend import array_module

NAME = "cifg"
GATES = ("f", "o", "c")
STATES = ("H", "C")


def sigmoid(x, xp):
    return 0.5 * (1 + xp.tanh(0.5 * x))  # = 1 / (1 + e^-x), without overflow


def step_forward(A_t, state, W):
    xp = array_module(A_t)
    H_prev, C_prev = state
    a_f, a_o, a_c = xp.split(A_t, 3, axis=1)  # the three blocks (B,H)
    F = sigmoid(a_f + H_prev @ W["W_hf"], xp)
    O = sigmoid(a_o + H_prev @ W["W_ho"], xp)
    Cc = xp.tanh(a_c + H_prev @ W["W_hc"])
    C_t = F * C_prev + (1 - F) * Cc
    tC = xp.tanh(C_t)
    H_t = O * tC
    return (H_t, C_t), (H_prev, C_prev, F, O, Cc, tC)


def step_backward(dstate, cache_t, W):
    xp = array_module(dstate[0])
    (dH, dC), (H_prev, C_prev, F, O, Cc, tC) = dstate, cache_t
    dA_o = dH * tC * O * (1 - O)  # into O_t's pre-activation
    dC = dC + dH * O * (1 - tC * tC)  # into C_t: from step t+1, and through H_t = O_t ⊙ tanh(C_t)
    dA_f = dC * (C_prev - Cc) * F * (1 - F)  # into F_t's pre-activation: C_t moves by C_{t-1} - C̃_t per F_t
    dA_c = dC * (1 - F) * (1 - Cc * Cc)  # into C̃_t's pre-activation
    dC_prev = dC * F  # into C_{t-1}
    dH_prev = dA_f @ W["W_hf"].T + dA_o @ W["W_ho"].T + dA_c @ W["W_hc"].T  # into H_{t-1}, through the products
    dW = {"W_hf": H_prev.T @ dA_f, "W_ho": H_prev.T @ dA_o, "W_hc": H_prev.T @ dA_c}
    return xp.concatenate([dA_f, dA_o, dA_c], axis=1), (dH_prev, dC_prev), dW
