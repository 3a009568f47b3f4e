"""The long short-term memory cell (d2l §10.1), with the book's equations exactly:

    I_t = σ(X_t·W_xi + H_{t-1}·W_hi + b_i)        input gate        (B,H)
    F_t = σ(X_t·W_xf + H_{t-1}·W_hf + b_f)        forget gate       (B,H)
    O_t = σ(X_t·W_xo + H_{t-1}·W_ho + b_o)        output gate       (B,H)
    C̃_t = tanh(X_t·W_xc + H_{t-1}·W_hc + b_c)     candidate memory  (B,H)
    C_t = F_t ⊙ C_{t-1} + I_t ⊙ C̃_t
    H_t = O_t ⊙ tanh(C_t)

The state is the pair (H, C). The four blocks sit side by side, in the order
i, f, o, c: X_t·[W_xi|W_xf|W_xo|W_xc] + [b_i|b_f|b_o|b_c] arrives precomputed for
all steps in A (T,B,4H) (model.py), and inside the time loop one product
H_{t-1}·[W_hi|W_hf|W_ho|W_hc] (B,4H) feeds all four.

Layout: a step's gates are kept gate-major, G_t = [I_t, F_t, O_t, C̃_t] (4,B,H),
so that every elementwise op reads contiguous (B,H) blocks (or the (3,B,H) block
of the three sigmoids) rather than columns of a (B,4H) row. The forward adds A_t
to the product in a (B,4H) scratch and moves the sum gate-major with one strided
copy, into A_t's own memory: the cache G (T,4,B,H) is the buffer A, reread.
The backward mirrors it: the gate gradients go into a gate-major scratch
dG_t (4,B,H), one strided copy writes them side by side into dA_t (B,4H), and
the one product dA_t·W_hᵀ reads that. dA_t too takes the memory of G_t, once the
step has read the gates: each step writes into memory it has just read, which is
still in cache.

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
from .common import final_gradient, gate_major, sigmoid

GATES = ("i", "f", "o", "c")  # W_xi W_hi b_i, W_xf W_hf b_f, W_xo W_ho b_o, W_xc W_hc b_c
STATES = ("H", "C")
SPENDS_CACHE = True  # dA_t is written over the gates G_t (sequence_backward)


def lstm_step_forward(A_t, H_prev, C_prev, W_h, G_t, H_t, C_t, tC_t, tmp4):
    """One step. A_t (B,4H): X_t·[W_xi|W_xf|W_xo|W_xc] + [b_i|…|b_c]. H_prev, C_prev
    (B,H); W_h (H,4H) = [W_hi|W_hf|W_ho|W_hc]. G_t (4,B,H) receives the gates
    [I_t, F_t, O_t, C̃_t]; it may be A_t's own memory (A_t is read in full first).
    Writes H_t, C_t and tC_t = tanh(C_t), each (B,H). tmp4 (B,4H): scratch.
    Returns (H_t, C_t)."""
    xp = array_module(G_t)
    xp.matmul(H_prev, W_h, out=tmp4)  # H_{t-1}·[W_hi|W_hf|W_ho|W_hc]
    tmp4 += A_t  # the four pre-activations, side by side
    xp.copyto(G_t, gate_major(tmp4, 4))  # ... gate-major
    IFO, (I, F, O, Cc) = G_t[:3], G_t
    sigmoid(IFO, out=IFO)  # I_t, F_t, O_t
    xp.tanh(Cc, out=Cc)  # C̃_t
    xp.multiply(F, C_prev, out=C_t)  # C_t = F_t ⊙ C_{t-1} + I_t ⊙ C̃_t
    xp.multiply(I, Cc, out=tC_t)
    C_t += tC_t
    xp.tanh(C_t, out=tC_t)  # tanh(C_t)
    xp.multiply(O, tC_t, out=H_t)  # H_t = O_t ⊙ tanh(C_t)
    return H_t, C_t


def lstm_step_backward(dH_t, dC, G_t, C_prev, tC_t, W_hT, dA_t, dH_prev, dG, D, tmp):
    """Mirror of lstm_step_forward.

    dH_t (B,H): total gradient at H_t.  dC (B,H): gradient at C_t from step t+1 on
    entry, dL/dC_{t-1} on exit.  G_t (4,B,H): the cached gates [I_t, F_t, O_t, C̃_t].
    C_prev (B,H): C_{t-1}.  tC_t (B,H): tanh(C_t).  W_hT (4H,H): contiguous [W_h·]ᵀ.
    dA_t (B,4H): receives [dA_i|dA_f|dA_o|dA_c]; it may be G_t's own memory (written
    after the gates are read).  dH_prev (B,H): receives dL/dH_{t-1}
    from this step.  dG, D (4,B,H), tmp (B,H): scratch.
    """
    xp = array_module(dH_t)
    (I, F, O, Cc), (dI, dF, dO, dCc) = G_t, dG
    xp.multiply(dH_t, tC_t, out=dO)  # into O_t
    xp.multiply(dO, tC_t, out=tmp)
    xp.subtract(dH_t, tmp, out=tmp)  # into tanh(C_t): dH_t ⊙ tanh'(C_t) = dH_t ⊙ (1 - tanh²(C_t)) ...
    tmp *= O  # ... ⊙ O_t
    dC += tmp  # into C_t, through H_t = O_t ⊙ tanh(C_t)
    xp.multiply(dC, Cc, out=dI)  # into I_t
    xp.multiply(dC, C_prev, out=dF)  # into F_t
    xp.multiply(dC, I, out=dCc)  # into C̃_t
    dC *= F  # into C_{t-1}
    xp.multiply(G_t, G_t, out=D)  # the derivatives of the four nonlinearities, from their outputs:
    xp.subtract(G_t[:3], D[:3], out=D[:3])  # σ' = σ - σ² for i, f, o
    xp.subtract(1, D[3], out=D[3])  # tanh' = 1 - C̃² for c
    dG *= D  # into the four pre-activations
    xp.copyto(gate_major(dA_t, 4), dG)  # ... side by side
    xp.matmul(dA_t, W_hT, out=dH_prev)  # into H_{t-1}, through all four products
    return dA_t, dH_prev, dC


# ----------------------------------------------------------------------------- the sequence
def prepare(W_h, ws, key):
    """The recurrent weights of one window: [W_hi|W_hf|W_ho|W_hc] side by side, and a
    contiguous copy of its transpose (the weights this window used)."""
    xp, H, dtype = array_module(W_h[0]), W_h[0].shape[0], W_h[0].dtype
    W_cat = ws.get(key + "W_h", (H, 4 * H), dtype, xp)
    W_catT = ws.get(key + "W_hT", (4 * H, H), dtype, xp)
    for i, W in enumerate(W_h):
        W_cat[:, i * H:(i + 1) * H] = W
        W_catT[i * H:(i + 1) * H] = W.T  # block by block: 3x faster than W_cat.T, read at a 4H row stride
    return {"W_h": W_cat, "W_hT": W_catT}


def input_buffer(ws, key, T, B, H, dtype, xp):
    """Where X_t·[W_xi|W_xf|W_xo|W_xc] + [b_i|…|b_c] goes (T,B,4H); it becomes the gates."""
    return ws.get(key + "G", (T, B, 4 * H), dtype, xp)


def sequence_forward(A, state0, W, ws, key, activation=None):
    """A (T,B,4H): the blocks' input parts, from input_buffer; overwritten with the
    gates, gate-major: the cache's G (T,4,B,H) is A's memory. state0: (H_0, C_0),
    each (B,H) or None. Returns (Hs (T+1,B,H), (H_T, C_T), cache)."""
    T, B, H4 = A.shape
    H, xp, dtype = H4 // 4, array_module(A), A.dtype
    G = A.reshape(T, 4, B, H)  # step t's gates in the memory of A[t]
    Hs = ws.get(key + "Hs", (T + 1, B, H), dtype, xp)
    Cs = ws.get(key + "Cs", (T + 1, B, H), dtype, xp)
    tCs = ws.get(key + "tCs", (T, B, H), dtype, xp)
    Hs[0] = 0 if state0[0] is None else state0[0]
    Cs[0] = 0 if state0[1] is None else state0[1]
    tmp4 = ws.get(key + "tmp4", (B, 4 * H), dtype, xp)
    for t in range(T):
        lstm_step_forward(A[t], Hs[t], Cs[t], W["W_h"], G[t], Hs[t + 1], Cs[t + 1], tCs[t], tmp4)
    cache = {"Hs": Hs, "Cs": Cs, "tCs": tCs, "G": G, "W_hT": W["W_hT"], "ws": ws, "key": key}
    return Hs, (Hs[T].copy(), Cs[T].copy()), cache


def sequence_backward(dHs, cache, dstate_T, keep_cache=False):
    """The steps in reverse. dHs (T,B,H): dL/dH_t from above (the outputs); it receives
    the total gradient at each H_t. dstate_T: (dH_T, dC_T), either may be None.
    Returns (dA (T,B,4H), (dH_0, dC_0), [dW_hi, dW_hf, dW_ho, dW_hc]).
    dA overwrites the cached gates unless keep_cache is true."""
    Hs, Cs, tCs, G, ws, key = (cache[k] for k in ("Hs", "Cs", "tCs", "G", "ws", "key"))
    T, B, H = dHs.shape
    xp, dtype = array_module(dHs), dHs.dtype
    if keep_cache:  # the gates stay for another backward (as through earlier windows, without detaching)
        dA = ws.get(key + "dA", (T, B, 4 * H), dtype, xp)
    else:  # dA_t takes the memory of G_t, once step t has read it: the cache is spent
        dA = G.reshape(T, B, 4 * H)
    dG, D = ws.get(key + "dG", (4, B, H), dtype, xp), ws.get(key + "D", (4, B, H), dtype, xp)
    tmp = ws.get(key + "tmp", (B, H), dtype, xp)
    dH = final_gradient(dstate_T, 0, (B, H), dtype, xp)
    dC = final_gradient(dstate_T, 1, (B, H), dtype, xp)
    for t in range(T, 0, -1):  # dHs, G, tCs, dA hold step t in row t-1
        dHs[t - 1] += dH  # total dL/dH_t: its own output + step t+1
        lstm_step_backward(dHs[t - 1], dC, G[t - 1], Cs[t - 1], tCs[t - 1], cache["W_hT"], dA[t - 1], dH,
                           dG, D, tmp)
    dW_h = ws.get(key + "dW_h", (H, 4 * H), dtype, xp)
    xp.matmul(Hs[:-1].reshape(T * B, H).T, dA.reshape(T * B, 4 * H), out=dW_h)  # into the four W_h·
    return dA, (dH, dC), [dW_h[:, i * H:(i + 1) * H] for i in range(4)]
