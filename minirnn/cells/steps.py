"""The built-in cells' fast step pairs, seen through the simple protocol, so that
`gradcheck --step` checks the very functions training runs (rnn_step_backward,
gru_step_backward, lstm_step_backward), one step at a time.

Each wrapper allocates the step's buffers and makes the copies the in-place steps
need; the weight gradients, which the fast cells take once after the time loop
(Σ_t H_{t-1}ᵀ·dA_t), are taken here for the one step, by the same formula.
"""
from ..backend import array_module
from .common import ACTIVATIONS
from .gru import gru_step_backward, gru_step_forward
from .lstm import lstm_step_backward, lstm_step_forward
from .rnn import rnn_step_backward, rnn_step_forward


class FastSteps:
    """NAME, GATES, STATES, step_forward, step_backward (and kinks for ReLU) of a built-in cell."""

    def __init__(self, name, activation="tanh"):
        self.NAME, self.activation = name, activation
        self.GATES = {"rnn": ("h",), "gru": ("z", "r", "h"), "lstm": ("i", "f", "o", "c")}[name]
        self.STATES = ("H", "C") if name == "lstm" else ("H",)
        self.step_forward = getattr(self, f"_{name}_forward")
        self.step_backward = getattr(self, f"_{name}_backward")
        self.kinks = (lambda cache_t: cache_t[1]) if activation == "relu" else None  # H_t > 0 exactly when Z_t > 0
        self.path = f"the built-in {name} cell ({name}_step_forward / {name}_step_backward)"

    def recurrent_params(self, H):
        return {f"W_h{g}": (H, H) for g in self.GATES}

    def _rnn_forward(self, A_t, state, W):
        xp, (H_prev,) = array_module(A_t), state
        Z = A_t.copy()  # the step works in place
        rnn_step_forward(Z, H_prev, W["W_hh"], self.activation, xp.empty_like(H_prev))
        return (Z,), (H_prev, Z)

    def _rnn_backward(self, dstate, cache_t, W):
        H_prev, H_t = cache_t
        xp = array_module(H_t)
        dZ, dH_prev = dstate[0].copy(), xp.empty_like(H_t)
        dphi = ACTIVATIONS[self.activation][1](H_t, out=xp.empty_like(H_t))
        rnn_step_backward(dZ, dphi, xp.ascontiguousarray(W["W_hh"].T), dH_prev)
        return dZ, (dH_prev,), {"W_hh": H_prev.T @ dZ}

    def _gru_forward(self, A_t, state, W):
        xp, (H_prev,) = array_module(A_t), state
        B, H = H_prev.shape
        W_hzr = xp.concatenate([W["W_hz"], W["W_hr"]], axis=1)
        G, RH, H_t = xp.empty((3, B, H)), xp.empty((B, H)), xp.empty((B, H))
        gru_step_forward(A_t, H_prev, W_hzr, W["W_hh"], G, RH, H_t, xp.empty((B, 2 * H)))
        return (H_t,), (H_prev, G, RH, H_t)

    def _gru_backward(self, dstate, cache_t, W):
        H_prev, G, RH, H_t = cache_t
        xp, (B, H) = array_module(H_t), H_t.shape
        dA, dH_prev = xp.empty((B, 3 * H)), xp.empty((B, H))
        W_hzrT = xp.concatenate([W["W_hz"].T, W["W_hr"].T], axis=0)
        gru_step_backward(dstate[0].copy(), G.copy(), H_t, RH, W_hzrT, xp.ascontiguousarray(W["W_hh"].T), dA,
                          dH_prev, xp.empty((3, B, H)), xp.empty((B, H)))
        dW = {"W_hz": H_prev.T @ dA[:, :H], "W_hr": H_prev.T @ dA[:, H:2 * H], "W_hh": RH.T @ dA[:, 2 * H:]}
        return dA, (dH_prev,), dW

    def _lstm_forward(self, A_t, state, W):
        xp, (H_prev, C_prev) = array_module(A_t), state
        B, H = H_prev.shape
        W_cat = xp.concatenate([W[f"W_h{g}"] for g in self.GATES], axis=1)
        G, H_t, C_t, tC = xp.empty((4, B, H)), xp.empty((B, H)), xp.empty((B, H)), xp.empty((B, H))
        lstm_step_forward(A_t, H_prev, C_prev, W_cat, G, H_t, C_t, tC, xp.empty((B, 4 * H)))
        return (H_t, C_t), (H_prev, C_prev, G, tC)

    def _lstm_backward(self, dstate, cache_t, W):
        H_prev, C_prev, G, tC = cache_t
        xp, (B, H) = array_module(tC), tC.shape
        dA, dH_prev, dC = xp.empty((B, 4 * H)), xp.empty((B, H)), dstate[1].copy()
        W_catT = xp.concatenate([W[f"W_h{g}"].T for g in self.GATES], axis=0)
        lstm_step_backward(dstate[0], dC, G.copy(), C_prev, tC, W_catT, dA, dH_prev, xp.empty((4, B, H)),
                           xp.empty((4, B, H)), xp.empty((B, H)))
        dW = {f"W_h{g}": H_prev.T @ dA[:, i * H:(i + 1) * H] for i, g in enumerate(self.GATES)}
        return dA, (dH_prev, dC), dW


__all__ = ["FastSteps"]
