"""The gated recurrent unit (d2l §10.2), with the book's equations exactly:

    Z_t = σ(X_t·W_xz + H_{t-1}·W_hz + b_z)                 update gate   (B,H)
    R_t = σ(X_t·W_xr + H_{t-1}·W_hr + b_r)                 reset gate    (B,H)
    H̃_t = tanh(X_t·W_xh + (R_t ⊙ H_{t-1})·W_hh + b_h)      candidate     (B,H)
    H_t = Z_t ⊙ H_{t-1} + (1 - Z_t) ⊙ H̃_t

The reset gate acts before the product with W_hh, as in the book (PyTorch and
cuDNN apply it after). The three blocks sit side by side, in the order z, r, h:
X_t·[W_xz|W_xr|W_xh] + [b_z|b_r|b_h] arrives precomputed for all steps in
A (T,B,3H) (model.py), and inside the time loop the gates share one product
H_{t-1}·[W_hz|W_hr] (B,2H); the candidate waits for R_t, so (R_t ⊙ H_{t-1})·W_hh
is a second one.

Layout: a step's gates are kept gate-major, G_t = [Z_t, R_t, H̃_t] (3,B,H), so that
every elementwise op reads contiguous (B,H) blocks (or the (2,B,H) block of the
two sigmoids) rather than columns of a (B,3H) row. The forward adds A_t's z and r
parts to the first product in a (B,2H) scratch, and one strided pass moves the sum
gate-major, halved for σ(a) = (1 + tanh(a/2))/2; the second product goes straight
into H̃_t's block. The backward mirrors it: the gate gradients go into a gate-major
scratch dG_t (3,B,H), one strided copy writes them side by side into dA_t (B,3H),
and the shared product [dA_z|dA_r]·[W_hz|W_hr]ᵀ reads that.

Memory: each step writes into memory it has just read, which is still in cache.
The input buffer has one spare block in front, A = buf[1:] (T+1 blocks of (B,3H)).
Step t reads A[t] = buf[t+1] and writes its gates G[t] into buf[t], the block that
step t-1 has finished reading (step 0 takes the spare one). Going back, step t
writes dA_t over its own gates G[t] once it has read them, so dA (T,B,3H) is buf[:T].

Backward, for one step, given dH_t (the total gradient at H_t); "dA" is the
gradient at a block's pre-activation:
    dA_h     = dH_t ⊙ (1 - Z_t) ⊙ (1 - H̃_t²)
    dA_z     = dH_t ⊙ (H_{t-1} - H̃_t) ⊙ Z_t(1 - Z_t) = dH_t ⊙ (1 - Z_t) ⊙ (H_t - H̃_t)
    d(R⊙H)   = dA_h·W_hhᵀ
    dA_r     = d(R⊙H) ⊙ H_{t-1} ⊙ R_t(1 - R_t)
    dH_{t-1} = dH_t ⊙ Z_t + d(R⊙H) ⊙ R_t + [dA_z|dA_r]·[W_hz|W_hr]ᵀ
    dW_hz|hr = Σ_t H_{t-1}ᵀ·[dA_z|dA_r],  dW_hh = Σ_t (R_t ⊙ H_{t-1})ᵀ·dA_h   (after the loop)
"""
from ..backend import array_module
from .common import final_gradient, gate_major

GATES = ("z", "r", "h")  # W_xz W_hz b_z, W_xr W_hr b_r, W_xh W_hh b_h
STATES = ("H",)
SPENDS_CACHE = True  # dA_t is written over the gates G_t (sequence_backward)


def gru_step_forward(A_t, H_prev, W_hzr, W_hh, G_t, RH_t, H_t, tmp2):
    """One step. A_t (B,3H): X_t·[W_xz|W_xr|W_xh] + [b_z|b_r|b_h]. H_prev (B,H);
    W_hzr (H,2H) = [W_hz|W_hr]; W_hh (H,H). G_t (3,B,H) receives the gates
    [Z_t, R_t, H̃_t]. Writes R_t ⊙ H_{t-1} into RH_t (B,H) and H_t into H_t (B,H).
    tmp2 (B,2H): scratch. Returns H_t."""
    xp = array_module(G_t)
    H = H_prev.shape[1]
    ZR, (Z, R, Hc) = G_t[:2], G_t
    xp.matmul(H_prev, W_hzr, out=tmp2)  # H_{t-1}·[W_hz|W_hr]
    tmp2 += A_t[:, :2 * H]  # the two gates' pre-activations a, side by side
    xp.multiply(gate_major(tmp2, 2), 0.5, out=ZR)  # a/2, gate-major: σ(a) = (1 + tanh(a/2)) / 2
    xp.tanh(ZR, out=ZR)
    ZR *= 0.5
    ZR += 0.5  # Z_t, R_t
    xp.multiply(R, H_prev, out=RH_t)  # R_t ⊙ H_{t-1}
    xp.matmul(RH_t, W_hh, out=Hc)  # (R_t ⊙ H_{t-1})·W_hh
    Hc += A_t[:, 2 * H:]
    xp.tanh(Hc, out=Hc)  # H̃_t
    xp.subtract(H_prev, Hc, out=H_t)  # H_t = H̃_t + Z_t ⊙ (H_{t-1} - H̃_t)
    H_t *= Z
    H_t += Hc
    return H_t


def gru_step_backward(dH_t, G_t, H_t, RH_t, W_hzrT, W_hhT, dA_t, dH_prev, dG, tmp):
    """Mirror of gru_step_forward.

    dH_t (B,H): total gradient at H_t.  G_t (3,B,H): the cached gates [Z_t, R_t, H̃_t].
    H_t (B,H): the step's output; H_t - H̃_t = Z_t ⊙ (H_{t-1} - H̃_t).  RH_t (B,H): the
    cached R_t ⊙ H_{t-1}.  W_hzrT (2H,H), W_hhT (H,H): contiguous transposes.
    dA_t (B,3H): receives [dA_z | dA_r | dA_h]; it may be G_t's own memory (written
    after the gates are read).  dH_prev (B,H): receives dL/dH_{t-1}
    from this step (it may be the array dH_t was added from).
    dG (3,B,H), tmp (B,H): scratch.
    """
    xp = array_module(dH_t)
    H = H_t.shape[1]
    (Z, R, Hc), (dZ, dR, dHc) = G_t, dG
    xp.multiply(dH_t, Z, out=dH_prev)  # into H_{t-1}, directly through the update gate
    xp.subtract(dH_t, dH_prev, out=tmp)  # into H̃_t: dH ⊙ (1 - Z)
    xp.multiply(Hc, Hc, out=dHc)
    xp.subtract(1, dHc, out=dHc)
    dHc *= tmp  # into H̃_t's pre-activation: ⊙ (1 - H̃²)
    xp.subtract(H_t, Hc, out=dZ)
    dZ *= tmp  # into Z_t's pre-activation: dH ⊙ (H_{t-1} - H̃) ⊙ Z(1 - Z) = (H_t - H̃) ⊙ dH(1 - Z)
    xp.matmul(dHc, W_hhT, out=tmp)  # into R_t ⊙ H_{t-1}
    xp.multiply(tmp, RH_t, out=dR)  # into R_t, times R_t: d(R⊙H) ⊙ H_{t-1} ⊙ R_t
    tmp *= R
    dH_prev += tmp  # into H_{t-1}, through the reset gate
    xp.multiply(dR, R, out=tmp)
    dR -= tmp  # into R_t's pre-activation: d(R⊙H) ⊙ H_{t-1} ⊙ R(1 - R)
    xp.copyto(gate_major(dA_t, 3), dG)  # the three pre-activation gradients, side by side
    xp.matmul(dA_t[:, :2 * H], W_hzrT, out=tmp)  # into H_{t-1}, through both gates' products
    dH_prev += tmp
    return dA_t, dH_prev


# ----------------------------------------------------------------------------- the sequence
def prepare(W_h, ws, key):
    """The recurrent weights of one window: [W_hz|W_hr] side by side, W_hh, and
    contiguous copies of their transposes (the weights this window used)."""
    W_hz, W_hr, W_hh = W_h
    xp, H, dtype = array_module(W_hh), W_hh.shape[0], W_hh.dtype
    W_hzr = ws.get(key + "W_hzr", (H, 2 * H), dtype, xp)
    W_hzr[:, :H], W_hzr[:, H:] = W_hz, W_hr
    W_hzrT = ws.get(key + "W_hzrT", (2 * H, H), dtype, xp)
    W_hzrT[:H], W_hzrT[H:] = W_hz.T, W_hr.T  # block by block: faster than W_hzr.T, read at a 2H row stride
    W_hhT = ws.get(key + "W_hhT", (H, H), dtype, xp)
    W_hhT[...] = W_hh.T
    return {"W_hzr": W_hzr, "W_hh": W_hh, "W_hzrT": W_hzrT, "W_hhT": W_hhT}


def input_buffer(ws, key, T, B, H, dtype, xp):
    """Where X_t·[W_xz|W_xr|W_xh] + [b_z|b_r|b_h] goes (T,B,3H): the last T blocks of
    a buffer (T+1,B,3H) whose blocks then hold the gates and their gradients."""
    return _buffer(ws, key, T, B, H, dtype, xp)[1:]


def _buffer(ws, key, T, B, H, dtype, xp):
    return ws.get(key + "A", (T + 1, B, 3 * H), dtype, xp)


def sequence_forward(A, state0, W, ws, key, activation=None):
    """A (T,B,3H): the blocks' input parts, from input_buffer. state0: (H_0,), H_0
    (B,H) or None. Returns (Hs (T+1,B,H), (H_T,), cache); the cache's G (T,3,B,H)
    holds the gates, gate-major, one block ahead of A in the same buffer."""
    T, B, H3 = A.shape
    H, xp, dtype = H3 // 3, array_module(A), A.dtype
    G = _buffer(ws, key, T, B, H, dtype, xp)[:T].reshape(T, 3, B, H)  # G[t] in the block that held A[t-1]
    Hs = ws.get(key + "Hs", (T + 1, B, H), dtype, xp)
    Hs[0] = 0 if state0[0] is None else state0[0]
    RH = ws.get(key + "RH", (T, B, H), dtype, xp)
    tmp2 = ws.get(key + "tmp2", (B, 2 * H), dtype, xp)
    for t in range(T):
        gru_step_forward(A[t], Hs[t], W["W_hzr"], W["W_hh"], G[t], RH[t], Hs[t + 1], tmp2)
    cache = {"Hs": Hs, "G": G, "RH": RH, "W_hzrT": W["W_hzrT"], "W_hhT": W["W_hhT"], "ws": ws, "key": key}
    return Hs, (Hs[T].copy(),), cache


def sequence_backward(dHs, cache, dstate_T, keep_cache=False):
    """The steps in reverse. dHs (T,B,H): dL/dH_t from above (the outputs); it receives
    the total gradient at each H_t. dstate_T: (dH_T,) or None.
    Returns (dA (T,B,3H), (dH_0,), [dW_hz, dW_hr, dW_hh]).
    dA overwrites the cached gates unless keep_cache is true."""
    Hs, G, RH, ws, key = cache["Hs"], cache["G"], cache["RH"], cache["ws"], cache["key"]
    T, B, H = dHs.shape
    xp, dtype = array_module(dHs), dHs.dtype
    if keep_cache:  # the gates stay for another backward (as through earlier windows, without detaching)
        dA = ws.get(key + "dA", (T, B, 3 * H), dtype, xp)
    else:  # dA_t takes the memory of G_t, once step t has read it: the cache is spent
        dA = G.reshape(T, B, 3 * H)
    dG, tmp = ws.get(key + "dG", (3, B, H), dtype, xp), ws.get(key + "tmp", (B, H), dtype, xp)
    dH = final_gradient(dstate_T, 0, (B, H), dtype, xp)
    for t in range(T, 0, -1):  # dHs, G, dA hold step t in row t-1
        dHs[t - 1] += dH  # total dL/dH_t: its own output + step t+1
        gru_step_backward(dHs[t - 1], G[t - 1], Hs[t], RH[t - 1], cache["W_hzrT"], cache["W_hhT"], dA[t - 1], dH,
                          dG, tmp)
    dA_all = dA.reshape(T * B, 3 * H)
    dW_hzr = ws.get(key + "dW_hzr", (H, 2 * H), dtype, xp)
    xp.matmul(Hs[:-1].reshape(T * B, H).T, dA_all[:, :2 * H], out=dW_hzr)  # into W_hz, W_hr
    dW_hh = ws.get(key + "dW_hh", (H, H), dtype, xp)
    xp.matmul(RH.reshape(T * B, H).T, dA_all[:, 2 * H:], out=dW_hh)  # into W_hh
    return dA, (dH,), [dW_hzr[:, :H], dW_hzr[:, H:], dW_hh]
