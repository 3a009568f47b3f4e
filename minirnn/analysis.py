"""Gradient flow through time: how much gradient reaches each earlier state, and why.

Everything here drives the cells' own hand-written step backwards (cells/*.py);
nothing is differentiated anew.

Conventions, for a window X (B,T) of inputs and Y (B,T) of targets:
    L      the project's loss: the mean of the cross-entropy over all T·B rows (loss.py)
    ℓ_t    step t's term of L: (1/(T·B)) Σ_b CE(O_t[b], Y[b,t]), so L = Σ_t ℓ_t and,
           at t = T, dL/dH_T = ∂ℓ_T/∂H_T: both curves share one unit and start together
    state  H_t (rnn, gru), the pair (H_t, C_t) (lstm), each layer's own. The gradient
           at a state is taken with the state as the next step's input: dH_t is the
           total gradient at H_t (its own output, the layer above and step t+1), dC_t
           the gradient that step t+1 sends to C_t
    norms  plain L2 norms, per sequence b: ‖g[b]‖ over the H (or 2H) numbers of one
           sequence's state. The batch's sequences do not interact, so the batch's
           Jacobian is block-diagonal with one block per sequence.
    J_t    ∂state_t/∂state_{t-1}, one layer's recurrence with its input held fixed. It
           is built row by row by driving the cell's step backward with the rows of
           an identity matrix (row i of dstate_{t-1} = e_iᵀ·J_t); for the rnn this is
           diag(φ'(Z_t))·W_hhᵀ. Its spectral norm σ_max bounds each step's factor:
           ‖∂ℓ_T/∂state_{t-1}‖ ≤ σ_max(J_t)·‖∂ℓ_T/∂state_t‖ (top layer; lower layers
           also receive gradient from the layer above at every step).
    σ_max  by power iteration on J_tᵀJ_t (power_iterations per step, warm-started
           from the previous step's vector; 5x as many at t = T): an estimate from
           below that converges to σ_max. power_iterations=None computes it exactly
           by an SVD on the host instead, slow for large H (about 0.5 s per step at
           H = 512 here, so a minute for T = 100).
"""
import dataclasses

import numpy as np

from .backend import array_module, backend_of
from .cells.common import ACTIVATIONS
from .cells.gru import gru_step_backward
from .cells.lstm import lstm_step_backward
from .cells.rnn import rnn_step_backward
from .loss import softmax_cross_entropy
from .cells import cell_name, get_cell
from .model import Workspace, check_tokens, layer_backward, model_spec, rnn_forward

POWER_ITERATIONS = 20  # per step, warm-started from the step before
FIRST_STEP = 5  # times as many at the first step (t = T), which starts cold


@dataclasses.dataclass
class GradientFlow:
    """What gradient_flow returns: host float64 arrays of shape (L, T, B), indexed
    [layer, k, b] with k = T - t (row 0 is t = T, the last row t = 1). For rnn and
    gru the state is H, so the *_state arrays are the *_H ones and the *_C are None."""

    cell: str
    dlast_dH: np.ndarray  # ‖∂ℓ_T/∂H_t‖
    dL_dH: np.ndarray  # ‖dL/dH_t‖
    jac_H: np.ndarray  # σ_max(∂H_t/∂H_{t-1}), C_{t-1} held fixed for the lstm
    dlast_dC: np.ndarray = None  # lstm: ‖∂ℓ_T/∂C_t‖
    dL_dC: np.ndarray = None  # lstm: ‖dL/dC_t‖
    jac_C: np.ndarray = None  # lstm: σ_max(∂C_t/∂C_{t-1}), H_{t-1} held fixed (= max F_t)
    dlast_dstate: np.ndarray = None  # ‖∂ℓ_T/∂(H_t, C_t)‖, the state as one vector
    dL_dstate: np.ndarray = None
    jac_state: np.ndarray = None  # σ_max(∂(H_t, C_t)/∂(H_{t-1}, C_{t-1})): the bound's factor
    states: tuple = ("H",)  # the cell's state arrays; for a cell file, "C" above is its second one

    @property
    def k(self):
        """The distances k = T - t, 0 … T-1."""
        return np.arange(self.dlast_dH.shape[1])


def gradient_flow(params, X, Y, state=None, *, activation="tanh", power_iterations=POWER_ITERATIONS, cell=None):
    """The gradient that reaches each state of a window, and each step's Jacobian norm.

    params: any model (init_params, or a checkpoint's). X (B,T) input ids, Y (B,T)
    target ids (host arrays or nested lists). state: the state before step 1, in the
    form rnn_forward takes (None: zeros). Computed in float64 whatever the params'
    dtype, so that a gradient of 1e-100 does not underflow. See the module docstring
    for the conventions; returns a GradientFlow. cell: as for rnn_forward (a cell
    file's path or module; None reads a built-in cell off the keys). A cell file's
    steps are driven through its own step_backward; its second state, if any, is
    reported where the LSTM's C is, and "state" is all of its states as one vector.
    """
    if power_iterations is not None and (isinstance(power_iterations, bool) or
                                         not isinstance(power_iterations, (int, np.integer)) or power_iterations < 1):
        raise ValueError(f"power_iterations must be an integer >= 1, or None for an exact SVD; got {power_iterations!r}")
    spec = model_spec(params, cell)
    grads, cache = _gradients(params, X, Y, state, activation, spec.cell)
    xp = array_module(params["W_hq"])
    states = get_cell(spec.cell).STATES
    lstm = len(states) > 1  # a second state: the lstm's C, or a cell file's

    def norms(arrays):  # (T,B,H) per layer -> (L,T,B), k-ordered
        return xp.stack([xp.linalg.norm(a, axis=2)[::-1] for a in arrays])

    out = {}
    for name, which in (("dlast", "last"), ("dL", "all")):
        out[f"{name}_dH"] = norms([g[0] for g in grads[which]])
        if lstm:
            out[f"{name}_dC"] = norms([g[1] for g in grads[which]])
            out[f"{name}_dstate"] = xp.sqrt(out[f"{name}_dH"] ** 2 + out[f"{name}_dC"] ** 2)
    jac = [_jacobian_norms(_cell(spec), layer["cell"], power_iterations) for layer in cache["layers"]]
    for name in jac[0]:
        out[f"jac_{name}"] = xp.stack([j[name][::-1] for j in jac])
    host = backend_of(params["W_hq"]).to_numpy  # deliberate host sync: once, at the end
    out = {k: np.asarray(host(v), dtype=np.float64) for k, v in out.items()}
    if not lstm:
        out.update(dlast_dstate=out["dlast_dH"], dL_dstate=out["dL_dH"], jac_state=out["jac_H"])
    return GradientFlow(cell=cell_name(spec.cell), states=tuple(states), **out)


def state_gradients(params, X, Y, state=None, *, activation="tanh", last_only=False, cell=None):
    """The gradients themselves: one (dH, dC) pair per layer, each (T,B,H) in time
    order (row t-1 is step t), float64; dC is None for rnn and gru. last_only: the
    gradient of ℓ_T alone, else of L (see the module docstring)."""
    grads, _ = _gradients(params, X, Y, state, activation, cell)
    return grads["last" if last_only else "all"]


# ----------------------------------------------------------------------------- the gradients
def _gradients(params, X, Y, state, activation, cell=None):
    spec = model_spec(params, cell)
    X = check_tokens(X, spec.vocab_size)
    Y = check_tokens(Y, spec.vocab_size)
    if tuple(X.shape) != tuple(Y.shape):
        raise ValueError(f"targets Y must have the shape of X {tuple(X.shape)}, got {tuple(Y.shape)}")
    xp = array_module(params["W_hq"])
    p64 = {k: xp.asarray(v, dtype=xp.float64) for k, v in params.items()}
    if state is not None:
        state = (tuple(None if s is None else xp.asarray(s, dtype=xp.float64) for s in state)
                 if isinstance(state, (tuple, list)) else xp.asarray(state, dtype=xp.float64))
    B, T = X.shape
    logits, _, cache = rnn_forward(p64, X, state, activation=activation, workspace=Workspace(), cell=spec.cell)
    y = xp.asarray(Y.T.reshape(-1))  # time-major, as the logits' rows
    _, dlogits = softmax_cross_entropy(logits, y)  # dL/dO, each row / (T·B)
    dlast = xp.zeros_like(dlogits)
    dlast[(T - 1) * B:] = dlogits[(T - 1) * B:]  # ∂ℓ_T/∂O: the same rows, only at step T
    H = spec.num_hiddens
    out = {}
    for which, dO in (("all", dlogits), ("last", dlast)):
        dH_out = (dO @ p64["W_hq"].T).reshape(T, B, H)  # into H_t, from O_t (as output_backward)
        out[which] = _backward(cache, dH_out)
    return out, cache


def _backward(cache, dH_above):
    """The layers from the top down, each driven step by step from t = T to 1,
    recording the gradient at every state. dH_above (T,B,H): the top layer's
    gradient from the outputs. Returns [(dH, dC or None)] per layer, bottom first."""
    prep, ws = cache["prep"], cache["ws"]
    spec = prep["spec"]
    T, B, H = dH_above.shape
    xp = array_module(dH_above)
    out = [None] * spec.num_layers
    cell = _cell(spec)
    S, k = len(get_cell(spec.cell).STATES), len(get_cell(spec.cell).GATES) * H
    for layer in range(spec.num_layers - 1, -1, -1):
        c = cache["layers"][layer]["cell"]
        dHs, dCs, dA = xp.empty((T, B, H)), xp.empty((T, B, H)), xp.empty((T, B, k))
        dstate = (xp.zeros((B, H)),) * S  # from step t+1; none beyond the window
        for t in range(T, 0, -1):
            dHs[t - 1] = dH_above[t - 1] + dstate[0]  # total dL/dH_t
            if S > 1:
                dCs[t - 1] = dstate[1]
            dA[t - 1], dstate = _step(cell, c, t, (dHs[t - 1],) + tuple(dstate[1:]))
        out[layer] = (dHs, dCs if S > 1 else None)
        if layer:  # the layer below receives dA·W_xᵀ at each step, from model.py's own backward
            X_in = cache["layers"][layer]["X_in"]
            dX_in = xp.empty(X_in.shape)
            layer_backward(prep, layer, dA.reshape(T * B, k), X_in, cache["ids"], ws, dX_in)
            dH_above = dX_in.reshape(T, B, H)
    return out


def _cell(spec):
    """A built-in cell by its name (its fast steps below), a cell file as itself."""
    return spec.cell if isinstance(spec.cell, str) else get_cell(spec.cell)


def _step(cell, c, t, dstate, rows=slice(None)):
    """One step t of a layer's backward: (dA_t, dstate_{t-1} as a tuple), through a
    built-in cell's step function (_step_backward) or a cell file's step_backward.
    For a cell file, rows=slice(b, b+1) repeats sequence b's cached arrays (those
    whose first axis is the batch) over the n rows of dstate."""
    if isinstance(cell, str):
        dA, dH, dC = _step_backward(cell, c, t, dstate[0], dstate[1] if len(dstate) > 1 else None, rows)
        return dA, (dH,) if dC is None else (dH, dC)
    cache_t = c["caches"][t - 1]
    if rows != slice(None):
        B, n = c["Hs"].shape[1], dstate[0].shape[0]
        cache_t = _repeat_rows(cache_t, [rows.start] * n, B)
    dA, dprev, _ = cell.step_backward(dstate, cache_t, c["W"])
    return dA, tuple(dprev)


def _repeat_rows(obj, index, B):
    """Each array of a step's cache (nested in tuples, lists, dicts) whose first axis
    is the batch, B, indexed by index along it; anything else as it is."""
    if isinstance(obj, (tuple, list)):
        return type(obj)(_repeat_rows(o, index, B) for o in obj)
    if isinstance(obj, dict):
        return {k: _repeat_rows(v, index, B) for k, v in obj.items()}
    if getattr(obj, "ndim", 0) >= 1 and obj.shape[0] == B:
        return obj[index]
    return obj


def _step_backward(cell, c, t, dH_t, dC_t, rows=slice(None)):
    """One step t of a layer's backward through the cell's own step function, on fresh
    arrays. dH_t (n,H): the total gradient at H_t; dC_t (n,H): at C_t from step t+1
    (lstm only). rows: which sequences' cached values to use; a single sequence
    (slice(b, b+1)) is broadcast over all n rows. Returns (dA_t, dH_{t-1}, dC_{t-1})."""
    xp = array_module(dH_t)
    n, H = dH_t.shape
    if cell == "rnn":
        dphi = ACTIVATIONS[c["activation"]][1](c["Hs"][t][rows], out=xp.empty(c["Hs"][t][rows].shape))
        dZ, dH_prev = dH_t.copy(), xp.empty((n, H))
        rnn_step_backward(dZ, dphi, c["W_hhT"], dH_prev)
        return dZ, dH_prev, None
    G_t = c["G"][t - 1][:, rows]  # the gates are gate-major, (k,B,H)
    if cell == "gru":
        dA, dH_prev = xp.empty((n, 3 * H)), xp.empty((n, H))
        gru_step_backward(dH_t, G_t, c["Hs"][t][rows], c["RH"][t - 1][rows], c["W_hzrT"], c["W_hhT"], dA, dH_prev,
                          xp.empty((3, n, H)), xp.empty((n, H)))
        return dA, dH_prev, None
    dA, dH_prev, dC = xp.empty((n, 4 * H)), xp.empty((n, H)), dC_t.copy()
    lstm_step_backward(dH_t, dC, G_t, c["Cs"][t - 1][rows], c["tCs"][t - 1][rows], c["W_hT"], dA, dH_prev,
                       xp.empty((4, n, H)), xp.empty((4, n, H)), xp.empty((n, H)))
    return dA, dH_prev, dC


# ----------------------------------------------------------------------------- the Jacobians
def step_jacobian(cell, c, t, b):
    """J_t = ∂state_t/∂state_{t-1} of sequence b, (n,n) with n = H, or 2H for the lstm
    ((H, C) in that order; S·H for a cell file's S states): row i is the step
    backward of the unit vector e_i."""
    H = c["Hs"].shape[2]
    xp = array_module(c["Hs"])
    S = 2 if cell == "lstm" else 1 if isinstance(cell, str) else len(cell.STATES)
    eye = xp.eye(S * H)
    _, dprev = _step(cell, c, t, tuple(eye[:, i * H:(i + 1) * H] for i in range(S)), rows=slice(b, b + 1))
    return dprev[0] if S == 1 else xp.concatenate(dprev, axis=1)


def _jacobian_norms(cell, c, power_iterations):
    """σ_max of each step's Jacobian, (T,B) per name: H (and C, state for the lstm)."""
    T, B, H = c["Hs"].shape[0] - 1, c["Hs"].shape[1], c["Hs"].shape[2]
    xp = array_module(c["Hs"])
    S = 2 if cell == "lstm" else 1 if isinstance(cell, str) else len(cell.STATES)
    blocks = {"H": (slice(0, H), slice(0, H))}
    if S > 1:
        blocks.update(C=(slice(H, 2 * H), slice(H, 2 * H)), state=(slice(None), slice(None)))
    out = {name: xp.empty((T, B)) for name in blocks}
    rng = np.random.default_rng(0)  # the start vectors: fixed, so a run repeats exactly
    for b in range(B):
        v = {name: xp.asarray(rng.normal(size=(S * H if name == "state" else H))) for name in blocks}
        for t in range(T, 0, -1):
            J = step_jacobian(cell, c, t, b)
            first = power_iterations and (power_iterations * FIRST_STEP if t == T else power_iterations)
            for name, (r, s) in blocks.items():
                out[name][t - 1, b], v[name] = spectral_norm(J[r, s], v[name], first)
    return out


def spectral_norm(M, v, iterations):
    """σ_max(M) by power iteration on MᵀM from the vector v, and the vector it ends
    on (to warm-start the next call); iterations=None: exactly, by an SVD on the host.

    The iterations run in float32 (twice as fast; a direction needs no more), the
    answer ‖M·v‖/‖v‖ in M's own precision, so it never exceeds σ_max(M).
    """
    xp = array_module(M)
    if iterations is None:
        host = backend_of(M).to_numpy(M)  # deliberate host sync: the exact check
        return float(np.linalg.svd(host, compute_uv=False)[0]), v
    M32, v = M.astype(xp.float32), v.astype(xp.float32)
    for _ in range(iterations):
        v = (M32 @ v) @ M32  # MᵀM·v, both products on M as stored
        v /= xp.maximum(xp.linalg.norm(v), 1e-30)  # M = 0 (a dead ReLU layer) leaves v = 0 and σ = 0
    v = v.astype(M.dtype)
    return xp.linalg.norm(M @ v) / xp.maximum(xp.linalg.norm(v), 1e-300), v
