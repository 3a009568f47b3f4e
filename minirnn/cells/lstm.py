"""The long short-term memory cell (d2l §10.1), with the book's equations exactly:

    I_t = σ(X_t·W_xi + H_{t-1}·W_hi + b_i)        input gate        (B,H)
    F_t = σ(X_t·W_xf + H_{t-1}·W_hf + b_f)        forget gate       (B,H)
    O_t = σ(X_t·W_xo + H_{t-1}·W_ho + b_o)        output gate       (B,H)
    C̃_t = tanh(X_t·W_xc + H_{t-1}·W_hc + b_c)     candidate memory  (B,H)
    C_t = F_t ⊙ C_{t-1} + I_t ⊙ C̃_t
    H_t = O_t ⊙ tanh(C_t)

The state is the pair (H, C). The four blocks sit side by side, in the order
i, f, o, c: X_t·[W_xi|W_xf|W_xo|W_xc] + [b_i|b_f|b_o|b_c] arrives precomputed for
all steps (model.py), and inside the time loop one product H_{t-1}·[W_hi|W_hf|W_ho|W_hc]
feeds all four.

Backward, for one step, given dH_t (the total gradient at H_t) and dC_t (the
gradient reaching C_t from step t+1); "dA" is the gradient at a block's pre-activation:
    dA_o     = dH_t ⊙ tanh(C_t) ⊙ O_t(1 - O_t)
    dC_t    += dH_t ⊙ O_t ⊙ (1 - tanh²(C_t))
    dA_i     = dC_t ⊙ C̃_t ⊙ I_t(1 - I_t)
    dA_f     = dC_t ⊙ C_{t-1} ⊙ F_t(1 - F_t)
    dA_c     = dC_t ⊙ I_t ⊙ (1 - C̃_t²)
    dC_{t-1} = dC_t ⊙ F_t
    dH_{t-1} = [dA_i|dA_f|dA_o|dA_c]·[W_hi|W_hf|W_ho|W_hc]ᵀ
    dW_h·    = Σ_t H_{t-1}ᵀ·dA_·       once over all T·B rows, after the loop
"""
from ..backend import array_module
from .common import final_gradient, sigmoid

GATES = ("i", "f", "o", "c")  # W_xi W_hi b_i, W_xf W_hf b_f, W_xo W_ho b_o, W_xc W_hc b_c
STATES = ("H", "C")


def lstm_step_forward(G_t, H_prev, C_prev, W_h, H_t, C_t, tC_t, tmp4):
    """One step. G_t (B,4H) holds X_t·[W_xi|W_xf|W_xo|W_xc] + [b_i|…|b_c] on entry and
    [I_t | F_t | O_t | C̃_t] on exit. H_prev, C_prev (B,H); W_h (H,4H) = [W_hi|W_hf|W_ho|W_hc].
    Writes H_t, C_t and tC_t = tanh(C_t), each (B,H). tmp4 (B,4H): scratch. Returns (H_t, C_t)."""
    xp = array_module(G_t)
    H = H_prev.shape[1]
    I, F, O, Cc = G_t[:, :H], G_t[:, H:2 * H], G_t[:, 2 * H:3 * H], G_t[:, 3 * H:]
    xp.matmul(H_prev, W_h, out=tmp4)  # H_{t-1}·[W_hi|W_hf|W_ho|W_hc]
    G_t += tmp4
    sigmoid(G_t[:, :3 * H], out=G_t[:, :3 * H])  # I_t, F_t, O_t
    xp.tanh(Cc, out=Cc)  # C̃_t
    xp.multiply(F, C_prev, out=C_t)  # C_t = F_t ⊙ C_{t-1} + I_t ⊙ C̃_t
    xp.multiply(I, Cc, out=tC_t)
    C_t += tC_t
    xp.tanh(C_t, out=tC_t)  # tanh(C_t)
    xp.multiply(O, tC_t, out=H_t)  # H_t = O_t ⊙ tanh(C_t)
    return H_t, C_t


def lstm_step_backward(dH_t, dC, G_t, C_prev, tC_t, W_hT, dA_t, dH_prev, tmp, tmp3):
    """Mirror of lstm_step_forward.

    dH_t (B,H): total gradient at H_t.  dC (B,H): gradient at C_t from step t+1 on
    entry, dL/dC_{t-1} on exit.  G_t (B,4H): the cached [I_t|F_t|O_t|C̃_t].
    C_prev (B,H): C_{t-1}.  tC_t (B,H): tanh(C_t).  W_hT (4H,H): contiguous [W_h·]ᵀ.
    dA_t (B,4H): receives [dA_i|dA_f|dA_o|dA_c].  dH_prev (B,H): receives dL/dH_{t-1}
    from this step.  tmp (B,H), tmp3 (B,3H): scratch.
    """
    xp = array_module(dH_t)
    H = dH_t.shape[1]
    I, F, O, Cc = G_t[:, :H], G_t[:, H:2 * H], G_t[:, 2 * H:3 * H], G_t[:, 3 * H:]
    dI, dF, dO, dCc = dA_t[:, :H], dA_t[:, H:2 * H], dA_t[:, 2 * H:3 * H], dA_t[:, 3 * H:]
    xp.multiply(dH_t, tC_t, out=dO)  # into O_t
    xp.multiply(tC_t, tC_t, out=tmp)
    xp.subtract(1, tmp, out=tmp)  # tanh'(C_t) = 1 - tanh²(C_t)
    tmp *= O
    tmp *= dH_t
    dC += tmp  # into C_t, through H_t = O_t ⊙ tanh(C_t)
    xp.multiply(dC, Cc, out=dI)  # into I_t
    xp.multiply(dC, C_prev, out=dF)  # into F_t
    xp.multiply(dC, I, out=dCc)  # into C̃_t
    dC *= F  # into C_{t-1}
    dIFO, IFO = dA_t[:, :3 * H], G_t[:, :3 * H]
    dIFO *= IFO
    xp.multiply(dIFO, IFO, out=tmp3)
    dIFO -= tmp3  # into the three gates' pre-activations: ⊙ σ(1 - σ)
    xp.multiply(Cc, Cc, out=tmp)
    xp.subtract(1, tmp, out=tmp)
    dCc *= tmp  # into C̃_t's pre-activation: ⊙ (1 - C̃_t²)
    xp.matmul(dA_t, W_hT, out=dH_prev)  # into H_{t-1}, through all four products
    return dA_t, dH_prev, dC


# ----------------------------------------------------------------------------- the sequence
def prepare(W_h, ws, key):
    """The recurrent weights of one window: [W_hi|W_hf|W_ho|W_hc] side by side, and a
    contiguous copy of its transpose (the weights this window used)."""
    xp, H, dtype = array_module(W_h[0]), W_h[0].shape[0], W_h[0].dtype
    W_cat = ws.get(key + "W_h", (H, 4 * H), dtype, xp)
    for i, W in enumerate(W_h):
        W_cat[:, i * H:(i + 1) * H] = W
    W_catT = ws.get(key + "W_hT", (4 * H, H), dtype, xp)
    W_catT[...] = W_cat.T
    return {"W_h": W_cat, "W_hT": W_catT}


def input_buffer(ws, key, T, B, H, dtype, xp):
    """Where X_t·[W_xi|W_xf|W_xo|W_xc] + [b_i|…|b_c] goes (T,B,4H); it becomes the gates."""
    return ws.get(key + "G", (T, B, 4 * H), dtype, xp)


def sequence_forward(A, state0, W, ws, key, activation=None):
    """A (T,B,4H): the blocks' input parts, from input_buffer; overwritten with the
    gates. state0: (H_0, C_0), each (B,H) or None.
    Returns (Hs (T+1,B,H), (H_T, C_T), cache)."""
    T, B, H4 = A.shape
    H, xp, dtype = H4 // 4, array_module(A), A.dtype
    Hs = ws.get(key + "Hs", (T + 1, B, H), dtype, xp)
    Cs = ws.get(key + "Cs", (T + 1, B, H), dtype, xp)
    tCs = ws.get(key + "tCs", (T, B, H), dtype, xp)
    Hs[0] = 0 if state0[0] is None else state0[0]
    Cs[0] = 0 if state0[1] is None else state0[1]
    tmp4 = ws.get(key + "tmp4", (B, 4 * H), dtype, xp)
    for t in range(T):
        lstm_step_forward(A[t], Hs[t], Cs[t], W["W_h"], Hs[t + 1], Cs[t + 1], tCs[t], tmp4)
    cache = {"Hs": Hs, "Cs": Cs, "tCs": tCs, "G": A, "W_hT": W["W_hT"], "ws": ws, "key": key}
    return Hs, (Hs[T].copy(), Cs[T].copy()), cache


def sequence_backward(dHs, cache, dstate_T):
    """The steps in reverse. dHs (T,B,H): dL/dH_t from above (the outputs); it receives
    the total gradient at each H_t. dstate_T: (dH_T, dC_T), either may be None.
    Returns (dA (T,B,4H), (dH_0, dC_0), [dW_hi, dW_hf, dW_ho, dW_hc])."""
    Hs, Cs, tCs, G, ws, key = (cache[k] for k in ("Hs", "Cs", "tCs", "G", "ws", "key"))
    T, B, H = dHs.shape
    xp, dtype = array_module(dHs), dHs.dtype
    dA = ws.get(key + "dA", (T, B, 4 * H), dtype, xp)
    tmp, tmp3 = ws.get(key + "tmp", (B, H), dtype, xp), ws.get(key + "tmp3", (B, 3 * H), dtype, xp)
    dH = final_gradient(dstate_T, 0, (B, H), dtype, xp)
    dC = final_gradient(dstate_T, 1, (B, H), dtype, xp)
    for t in range(T, 0, -1):  # dHs, G, tCs, dA hold step t in row t-1
        dHs[t - 1] += dH  # total dL/dH_t: its own output + step t+1
        lstm_step_backward(dHs[t - 1], dC, G[t - 1], Cs[t - 1], tCs[t - 1], cache["W_hT"], dA[t - 1], dH, tmp, tmp3)
    dW_h = ws.get(key + "dW_h", (H, 4 * H), dtype, xp)
    xp.matmul(Hs[:-1].reshape(T * B, H).T, dA.reshape(T * B, 4 * H), out=dW_h)  # into the four W_h·
    return dA, (dH, dC), [dW_h[:, i * H:(i + 1) * H] for i in range(4)]
