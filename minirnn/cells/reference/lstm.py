"""The long short-term memory cell (d2l §10.1) in the simple protocol: the equations and nothing else.

    I_t = σ(X_t·W_xi + b_i + H_{t-1}·W_hi)        input gate        (B,H)
    F_t = σ(X_t·W_xf + b_f + H_{t-1}·W_hf)        forget gate       (B,H)
    O_t = σ(X_t·W_xo + b_o + H_{t-1}·W_ho)        output gate       (B,H)
    C̃_t = tanh(X_t·W_xc + b_c + H_{t-1}·W_hc)     candidate memory  (B,H)
    C_t = F_t ⊙ C_{t-1} + I_t ⊙ C̃_t
    H_t = O_t ⊙ tanh(C_t)

A_t = X_t·[W_xi|W_xf|W_xo|W_xc] + [b_i|b_f|b_o|b_c] (B,4H) comes from the engine.
minirnn/cells/lstm.py computes the same, fast, in preallocated buffers.
"""
from minirnn.backend import array_module

NAME = "lstm"
GATES = ("i", "f", "o", "c")  # blocks of A_t, in this order; W_hi, W_hf, W_ho, W_hc (H,H)
STATES = ("H", "C")


def sigmoid(x, xp):
    return 0.5 * (1 + xp.tanh(0.5 * x))  # = 1 / (1 + e^-x), without overflow


def step_forward(A_t, state, W):
    xp = array_module(A_t)
    H_prev, C_prev = state
    a_i, a_f, a_o, a_c = xp.split(A_t, 4, axis=1)  # the four blocks (B,H)
    I = sigmoid(a_i + H_prev @ W["W_hi"], xp)
    F = sigmoid(a_f + H_prev @ W["W_hf"], xp)
    O = sigmoid(a_o + H_prev @ W["W_ho"], xp)
    Cc = xp.tanh(a_c + H_prev @ W["W_hc"])
    C_t = F * C_prev + I * Cc
    tC = xp.tanh(C_t)
    H_t = O * tC
    return (H_t, C_t), (H_prev, C_prev, I, F, O, Cc, tC)


def step_backward(dstate, cache_t, W):
    xp = array_module(dstate[0])
    (dH, dC), (H_prev, C_prev, I, F, O, Cc, tC) = dstate, cache_t
    dA_o = dH * tC * O * (1 - O)  # into O_t's pre-activation
    dC = dC + dH * O * (1 - tC * tC)  # into C_t: from step t+1, and through H_t = O_t ⊙ tanh(C_t)
    dA_i = dC * Cc * I * (1 - I)  # into I_t's pre-activation
    dA_f = dC * C_prev * F * (1 - F)  # into F_t's pre-activation
    dA_c = dC * I * (1 - Cc * Cc)  # into C̃_t's pre-activation
    dC_prev = dC * F  # into C_{t-1}
    dH_prev = (dA_i @ W["W_hi"].T + dA_f @ W["W_hf"].T  # into H_{t-1}, through the four products
               + dA_o @ W["W_ho"].T + dA_c @ W["W_hc"].T)
    dW = {"W_hi": H_prev.T @ dA_i, "W_hf": H_prev.T @ dA_f, "W_ho": H_prev.T @ dA_o, "W_hc": H_prev.T @ dA_c}
    return xp.concatenate([dA_i, dA_f, dA_o, dA_c], axis=1), (dH_prev, dC_prev), dW
