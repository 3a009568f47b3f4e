"""Gradient flow through time (minirnn/analysis.py): the gradients at every state and
the steps' Jacobians against central differences in float64, a case whose answer is
known exactly, and the bound that the Jacobian norms put on the decay."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minirnn.analysis import gradient_flow, state_gradients, step_jacobian
from minirnn.cells import CELLS
from minirnn.model import (Workspace, init_params, input_forward, layer_input_forward, model_spec, prepare,
                           rnn_forward, split_state)

V, H, B, T = 5, 3, 2, 4
STEP = 1e-6

models = st.tuples(st.sampled_from(["rnn-tanh", "rnn-relu", "gru", "lstm"]), st.integers(1, 2),
                   st.sampled_from([0, 3]), st.integers(0, 2 ** 16))


def draw(cell, num_layers, embed_size, seed, scale=0.5):
    """A float64 model with weights normal(0, scale), a window, targets and a random state."""
    rng = np.random.default_rng(seed)
    shapes = init_params(V, H, cell=cell, num_layers=num_layers, embed_size=embed_size or None, dtype="float64")
    params = {k: rng.normal(0.0, scale, v.shape) for k, v in shapes.items()}
    X, Y = rng.integers(0, V, (B, T)), rng.integers(0, V, (B, T))
    shape = (B, H) if num_layers == 1 else (num_layers, B, H)
    state = tuple(rng.normal(0.0, scale, shape) for _ in range(2 if cell == "lstm" else 1))
    return params, X, Y, state if cell == "lstm" else state[0]


def split(model):
    cell, num_layers, embed_size, seed = model
    name, _, activation = cell.partition("-")
    return draw(name, num_layers, embed_size, seed), activation or "tanh"


def parts(state):
    """The state as a list of arrays: [H] or [H, C]."""
    return list(state) if isinstance(state, tuple) else [state]


def state_at(params, X, state0, t, activation):
    """The state after step t (t = 0: state0), as fresh arrays in the public form."""
    if t == 0:
        return tuple(a.copy() for a in state0) if isinstance(state0, tuple) else state0.copy()
    return rnn_forward(params, X[:, :t], state0, activation=activation)[1]


def ce_sum(logits, y):
    z = logits - logits.max(axis=1, keepdims=True)
    return float((np.log(np.exp(z).sum(axis=1)) - z[np.arange(len(y)), y]).sum())


def loss_with(params, X, Y, state0, activation, last_only, inject=None):
    """L (or ℓ_T), run step by step and layer by layer from model.py's forward pieces,
    with inject = (layer, part, t, delta) added to that layer's H_t (part 0) or C_t
    (part 1) right after step t computes it: the layer above reads the changed H_t."""
    spec = model_spec(params)
    ws = Workspace()
    prep = prepare(params, ws, spec)
    states = split_state(state0, spec, B)
    total = 0.0
    for t in range(1, X.shape[1] + 1):
        ids = X[:, t - 1].copy()
        X_in, _ = input_forward(prep, ids, ws, 1, B)
        for layer in range(spec.num_layers):
            A = layer_input_forward(prep, layer, X_in, ids, ws, 1, B)
            _, st, _ = CELLS[spec.cell].sequence_forward(A, states[layer], prep["layers"][layer]["recurrent"], ws,
                                                         f"l{layer}.", activation)
            st = [s.copy() for s in st]
            if inject is not None and inject[0] == layer and inject[2] == t:
                st[inject[1]] += inject[3]
            states[layer] = tuple(st)
            X_in = st[0]
        if not last_only or t == X.shape[1]:
            total += ce_sum(X_in @ params["W_hq"] + params["b_q"], Y[:, t - 1])
    return total / (X.shape[0] * X.shape[1])


def numeric_state_gradient(params, X, Y, state0, activation, last_only, layer, part, t):
    """Central differences of loss_with at every entry of one layer's H_t or C_t."""
    g = np.zeros((B, H))
    for i in np.ndindex(g.shape):
        delta = np.zeros((B, H))
        delta[i] = STEP
        up = loss_with(params, X, Y, state0, activation, last_only, (layer, part, t, delta))
        down = loss_with(params, X, Y, state0, activation, last_only, (layer, part, t, -delta))
        g[i] = (up - down) / (2 * STEP)
    return g


def rel_error(a, b):
    return np.abs(a - b).max() / max(1e-8, (np.abs(a) + np.abs(b)).max())


@settings(max_examples=12)
@given(models, st.integers(1, T), st.booleans())
def test_state_gradients_match_central_differences(model, t, last_only):
    (params, X, Y, state0), activation = split(model)
    assert loss_with(params, X, Y, state0, activation, False) == pytest.approx(
        ce_sum(rnn_forward(params, X, state0, activation=activation)[0], Y.T.reshape(-1)) / (B * T), rel=1e-12)
    grads = state_gradients(params, X, Y, state0, activation=activation, last_only=last_only)
    for layer, pair in enumerate(grads):
        for part, g in enumerate(pair):  # H, then C for the lstm
            if g is not None:
                numeric = numeric_state_gradient(params, X, Y, state0, activation, last_only, layer, part, t)
                assert rel_error(g[t - 1], numeric) < 1e-6, (layer, part)


@settings(max_examples=12)
@given(models, st.integers(1, T))
def test_step_jacobians_match_central_differences(model, t):
    """J_t of each layer, its input held fixed: perturb that layer's state before step t
    and watch its state after; σ_max (exact) is the SVD of the numeric Jacobian."""
    (params, X, Y, state0), activation = split(model)
    cell = model[0].partition("-")[0]
    num_layers = model[1]
    _, _, cache = rnn_forward(params, X, state0, activation=activation, workspace=Workspace())
    exact = gradient_flow(params, X, Y, state0, activation=activation, power_iterations=None)
    estimate = gradient_flow(params, X, Y, state0, activation=activation)
    prev = state_at(params, X, state0, t - 1, activation)
    for layer in range(num_layers):
        pick = (lambda a: a) if num_layers == 1 else (lambda a: a[layer])
        n = len(parts(prev)) * H
        J = np.zeros((n, n))
        for j in range(n):
            cols = []
            for sign in (1, -1):
                s = [a.copy() for a in parts(prev)]
                pick(s[j // H])[:, j % H] += sign * STEP  # every sequence at once: they do not interact
                after = rnn_forward(params, X[:, t - 1:t], tuple(s) if len(s) > 1 else s[0], activation=activation)[1]
                cols.append(np.concatenate([pick(a) for a in parts(after)], axis=1))
            J[:, j] = ((cols[0] - cols[1]) / (2 * STEP))[0]  # sequence 0
        ours = step_jacobian(cell, cache["layers"][layer]["cell"], t, 0)
        assert rel_error(ours, J) < 1e-6
        sigma = np.linalg.svd(J, compute_uv=False)[0]
        assert exact.jac_state[layer, T - t, 0] == pytest.approx(sigma, rel=1e-6)
        assert exact.jac_H[layer, T - t, 0] == pytest.approx(np.linalg.svd(J[:H, :H], compute_uv=False)[0], rel=1e-6)
        if cell == "lstm":
            assert exact.jac_C[layer, T - t, 0] == pytest.approx(np.linalg.svd(J[H:, H:], compute_uv=False)[0], rel=1e-6)
        # power iteration estimates from below
        assert np.all(estimate.jac_state <= exact.jac_state * (1 + 1e-12))


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_rnn_jacobian_is_the_book_formula(activation):
    (params, X, Y, state0), _ = split(("rnn", 1, 0, 3))
    _, _, cache = rnn_forward(params, X, state0, activation=activation, workspace=Workspace())
    Hs = cache["layers"][0]["cell"]["Hs"]
    for t in range(1, T + 1):
        for b in range(B):
            dphi = 1 - Hs[t, b] ** 2 if activation == "tanh" else (Hs[t, b] > 0).astype(float)
            np.testing.assert_allclose(step_jacobian("rnn", cache["layers"][0]["cell"], t, b),
                                       np.diag(dphi) @ params["W_hh"].T, rtol=1e-14, atol=1e-16)


@pytest.mark.parametrize("a", [0.5, 0.9, 1.5])
def test_a_scaled_identity_in_the_linear_regime_decays_exactly_as_a_to_the_k(a):
    """W_hh = a·I with ReLU kept in its linear regime (every pre-activation > 0, so
    φ(z) = z and φ' = 1 exactly): ∂H_t/∂H_{t-1} = a·I, and the last step's gradient
    reaching k steps back is a^k times the one at H_T."""
    rng = np.random.default_rng(0)
    Tk = 30
    params = init_params(V, H, dtype="float64")
    params["W_xh"] = np.abs(rng.normal(0, 1, (V, H)))
    params["b_h"] = np.ones(H)
    params["W_hh"] = a * np.eye(H)
    params["W_hq"] = rng.normal(0, 1, (H, V))
    X, Y = rng.integers(0, V, (B, Tk)), rng.integers(0, V, (B, Tk))
    _, _, cache = rnn_forward(params, X, None, activation="relu", workspace=Workspace())
    assert cache["layers"][0]["cell"]["Hs"][1:].min() >= 1  # linear regime throughout
    flow = gradient_flow(params, X, Y, activation="relu")
    k = np.arange(Tk)[:, None]
    np.testing.assert_allclose(flow.dlast_dH[0], flow.dlast_dH[0, :1] * a ** k, rtol=1e-12)
    np.testing.assert_allclose(flow.jac_H[0], a, rtol=1e-12)


@settings(max_examples=12)
@given(models)
def test_each_step_decays_at_most_by_its_jacobian_norm(model):
    """‖∂ℓ_T/∂state_{t-1}‖ ≤ σ_max(J_t)·‖∂ℓ_T/∂state_t‖ on the top layer, whose only
    gradient is the last output's; and at t = T both losses send the same gradient."""
    (params, X, Y, state0), activation = split(model)
    flow = gradient_flow(params, X, Y, state0, activation=activation, power_iterations=None)
    top = flow.dlast_dstate[-1]
    assert np.all(top[1:] <= flow.jac_state[-1, :-1] * top[:-1] * (1 + 1e-10) + 1e-300)
    np.testing.assert_allclose(flow.dL_dstate[:, 0], flow.dlast_dstate[:, 0], rtol=1e-12)


def test_shapes_units_and_bad_input():
    params = init_params(V, H, cell="lstm", num_layers=2)  # float32: the analysis runs in float64
    X, Y = np.zeros((B, T), int), np.ones((B, T), int)
    flow = gradient_flow(params, X, Y)
    for name in ("dlast_dH", "dL_dH", "jac_H", "dlast_dC", "dL_dC", "jac_C", "dlast_dstate", "dL_dstate", "jac_state"):
        assert getattr(flow, name).shape == (2, T, B) and getattr(flow, name).dtype == np.float64, name
    np.testing.assert_allclose(flow.dlast_dstate ** 2, flow.dlast_dH ** 2 + flow.dlast_dC ** 2)
    assert list(flow.k) == list(range(T))
    rnn = gradient_flow(init_params(V, H), X, Y)
    assert rnn.dlast_dC is None and rnn.jac_state is rnn.jac_H
    with pytest.raises(ValueError, match="shape of X"):
        gradient_flow(params, X, Y[:, 1:])
    with pytest.raises(ValueError, match="power_iterations"):
        gradient_flow(params, X, Y, power_iterations=0)
    with pytest.raises(ValueError, match="token ids"):
        gradient_flow(params, X, Y + V)
