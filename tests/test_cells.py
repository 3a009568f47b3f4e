"""The gated cells, stacking and the embedding: every gradient against central
differences in float64, the carried-state and detaching properties for every cell,
fixed values, and the loss at init."""
import math

import numpy as np
import pytest
from hypothesis import given, strategies as st

from minirnn import init_params, rnn_backward, rnn_forward, softmax_cross_entropy
from minirnn.cells import gru, lstm, rnn
from minirnn.config import Config
from minirnn.backend import get_backend
from minirnn.model import Workspace, model_spec
from minirnn.train import train_step

seeds = st.integers(0, 2**32 - 1)
CELLS = ["rnn", "gru", "lstm"]
TOL = 1e-6
CPU = get_backend("cpu")


# Below this size an array's gradient is compared absolutely, to TOL · RESOLVED = 1e-11:
# the five-point difference of an O(1) float64 loss at h = 1e-4 carries a rounding
# error of about 1e-12, so a whole array of gradients near 1e-7 (a deep stack with
# H = 1 draws them) cannot be resolved to 1e-6 relative, though a wrong one is still
# off by far more than 1e-11.
RESOLVED = 1e-5


def rel_error(a, b):
    return float(np.max(np.abs(a - b)) / max(RESOLVED, np.max(np.abs(a) + np.abs(b))))


def central_difference(f, x, h=1e-4):
    """df/dx by the five-point central difference (error O(h⁴), rounding about
    eps·|f|/h ≈ 1e-12), so that even a gradient near 1e-5 is resolved to 1e-6
    relative; x (a host float64 array) is perturbed in place."""
    grad = np.zeros(x.shape)
    for i in np.ndindex(*x.shape):
        old = x[i]
        values = []
        for step in (h, -h, 2 * h, -2 * h):
            x[i] = old + step
            values.append(f())
        x[i] = old
        grad[i] = (8 * (values[0] - values[1]) - (values[2] - values[3])) / (12 * h)
    return grad


def drawn_params(rng, V, H, cell, layers, E, scale):
    params = init_params(V, H, cell=cell, num_layers=layers, embed_size=E or None, dtype="float64")
    return {k: rng.normal(0, scale, v.shape) for k, v in params.items()}


def drawn_state(rng, cell, shape, scale=0.5):
    if cell == "lstm":
        return rng.normal(0, scale, shape), rng.normal(0, scale, shape)
    return rng.normal(0, scale, shape)


def as_tuple(s):
    return s if isinstance(s, tuple) else (s,)


# ----------------------------------------------------------------------------- one step
def _step_case(cell, rng, B, H, I):
    """Inputs of one step (host float64) and a function: inputs -> list of outputs."""
    k = len(cell.GATES)
    inputs = {"A": rng.normal(0, 1, (B, k * H)), "H_prev": rng.normal(0, 1, (B, H)),
              "W_h": rng.normal(0, 0.5, (H, k * H))}
    if cell is lstm:
        inputs["C_prev"] = rng.normal(0, 1, (B, H))
    return inputs


def _step_forward(cell, x):
    B, H = x["H_prev"].shape
    if cell is rnn:
        G = x["A"].copy()
        return [rnn.rnn_step_forward(G, x["H_prev"], x["W_h"], "tanh", np.empty((B, H))).copy()], G
    if cell is gru:
        G, H_t, RH = np.empty((3, B, H)), np.empty((B, H)), np.empty((B, H))
        gru.gru_step_forward(x["A"], x["H_prev"], x["W_h"][:, :2 * H], x["W_h"][:, 2 * H:], G, RH, H_t,
                             np.empty((B, 2 * H)))
        return [H_t], (G, H_t.copy())
    G, H_t, C_t, tC = np.empty((4, B, H)), np.empty((B, H)), np.empty((B, H)), np.empty((B, H))
    lstm.lstm_step_forward(x["A"], x["H_prev"], x["C_prev"], x["W_h"], G, H_t, C_t, tC, np.empty((B, 4 * H)))
    return [H_t, C_t], (G, tC)


def _step_backward(cell, x, cached, douts):
    """The cell's step backward; returns {input name: gradient} (W_h from the step's own
    pre-activation gradient, as the sequence backward computes it after the loop)."""
    B, H = x["H_prev"].shape
    if cell is rnn:
        dphi = 1 - cached ** 2
        dZ, dH_prev = rnn.rnn_step_backward(douts[0].copy(), dphi, np.ascontiguousarray(x["W_h"].T), np.empty((B, H)))
        return {"A": dZ, "H_prev": dH_prev, "W_h": x["H_prev"].T @ dZ}
    if cell is gru:
        dA, dH_prev = np.empty((B, 3 * H)), np.empty((B, H))
        W_hzrT, W_hhT = np.ascontiguousarray(x["W_h"][:, :2 * H].T), np.ascontiguousarray(x["W_h"][:, 2 * H:].T)
        G, H_t = cached
        RH = G[1] * x["H_prev"]
        gru.gru_step_backward(douts[0].copy(), G, H_t, RH, W_hzrT, W_hhT, dA, dH_prev,
                              np.empty((3, B, H)), np.empty((B, H)))
        dW = np.concatenate([x["H_prev"].T @ dA[:, :2 * H], RH.T @ dA[:, 2 * H:]], axis=1)
        return {"A": dA, "H_prev": dH_prev, "W_h": dW}
    G, tC = cached
    dA, dH_prev, dC = np.empty((B, 4 * H)), np.empty((B, H)), douts[1].copy()
    lstm.lstm_step_backward(douts[0].copy(), dC, G, x["C_prev"], tC, np.ascontiguousarray(x["W_h"].T), dA, dH_prev,
                            np.empty((4, B, H)), np.empty((4, B, H)), np.empty((B, H)))
    return {"A": dA, "H_prev": dH_prev, "W_h": x["H_prev"].T @ dA, "C_prev": dC}


@given(st.sampled_from([rnn, gru, lstm]), st.integers(1, 4), st.integers(1, 6), seeds)
def test_step_backward_matches_central_differences(cell, B, H, seed):
    rng = np.random.default_rng(seed)
    x = _step_case(cell, rng, B, H, None)
    outs, cached = _step_forward(cell, x)
    douts = [rng.normal(0, 1, o.shape) for o in outs]
    analytic = _step_backward(cell, x, cached, douts)

    def loss():
        return sum(float((g * o).sum()) for g, o in zip(douts, _step_forward(cell, x)[0]))

    for name in x:
        assert rel_error(analytic[name], central_difference(loss, x[name])) <= TOL, name


@given(st.sampled_from([gru, lstm]), st.integers(1, 4), st.integers(1, 6), seeds)
def test_step_backward_may_write_over_its_own_gates(cell, B, H, seed):
    """The sequence backward hands the step its gates' own memory as dA_t (its docstring
    says it may): the result equals that of a separate dA_t, bit for bit."""
    rng = np.random.default_rng(seed)
    x = _step_case(cell, rng, B, H, None)
    outs, cached = _step_forward(cell, x)
    douts = [rng.normal(0, 1, o.shape) for o in outs]
    apart = _step_backward(cell, x, cached, douts)
    G = cached[0]
    dA_t = G.reshape(B, G.shape[0] * H)  # the gates' memory, seen as (B,kH)
    dH_prev, dH = np.empty((B, H)), douts[0].copy()
    if cell is gru:
        H_t, RH = cached[1], G[1] * x["H_prev"]
        W_hzrT, W_hhT = np.ascontiguousarray(x["W_h"][:, :2 * H].T), np.ascontiguousarray(x["W_h"][:, 2 * H:].T)
        gru.gru_step_backward(dH, G, H_t, RH, W_hzrT, W_hhT, dA_t, dH_prev, np.empty((3, B, H)), np.empty((B, H)))
    else:
        dC = douts[1].copy()
        lstm.lstm_step_backward(dH, dC, G, x["C_prev"], cached[1], np.ascontiguousarray(x["W_h"].T), dA_t, dH_prev,
                                np.empty((4, B, H)), np.empty((4, B, H)), np.empty((B, H)))
        np.testing.assert_array_equal(dC, apart["C_prev"])
    np.testing.assert_array_equal(dA_t, apart["A"])
    np.testing.assert_array_equal(dH_prev, apart["H_prev"])


# ----------------------------------------------------------------------------- the sequence
def _loss_and_grads(params, X, Y, state0, G):
    """L = CE(logits, Y) + Σ G ⊙ state_T, and its gradients by the hand-written BPTT."""
    logits, state_T, cache = rnn_forward(params, X, state0)
    loss, dlogits = softmax_cross_entropy(logits, Y.T.reshape(-1))
    total = float(loss) + sum(float((g * s).sum()) for g, s in zip(as_tuple(G), as_tuple(state_T)))
    return total, cache, dlogits


@given(st.sampled_from(CELLS), st.integers(1, 3), st.sampled_from([0, 3]), st.integers(1, 3), st.integers(1, 5),
       st.integers(2, 6), st.integers(1, 5), st.booleans(), seeds)
def test_sequence_gradients_match_central_differences(cell, layers, E, B, T, V, H, with_state, seed):
    """Every parameter, and the initial state (H, and C for the LSTM), with a non-zero
    gradient arriving at the final state, for 1 to 3 layers, with and without W_emb."""
    rng = np.random.default_rng(seed)
    params = drawn_params(rng, V, H, cell, layers, E, scale=0.5)
    X, Y = rng.integers(0, V, (B, T)), rng.integers(0, V, (B, T))
    shape = (B, H) if layers == 1 else (layers, B, H)
    state0 = drawn_state(rng, cell, shape) if with_state else None
    G = drawn_state(rng, cell, shape, scale=1.0)
    _, cache, dlogits = _loss_and_grads(params, X, Y, state0, G)
    grads, dstate0 = rnn_backward(dlogits, cache, G)
    grads = {k: v.copy() for k, v in grads.items()}
    assert list(grads) == list(params)

    def f():
        return _loss_and_grads(params, X, Y, state0, G)[0]

    for name, x in params.items():
        assert rel_error(grads[name], central_difference(f, x)) <= TOL, name
    if with_state:
        for name, x, g in zip("HC", as_tuple(state0), as_tuple(dstate0)):
            assert rel_error(g, central_difference(f, x)) <= TOL, name + "0"


@pytest.mark.parametrize("cell", CELLS)
def test_a_second_backward_needs_keep_cache(cell):
    """A gated cell's backward writes its gate gradients over the cached gates: a second
    backward through that cache is an error that names the fix, while keep_cache=True
    leaves the cache whole and gives the same gradients every time. The plain RNN's
    cache is never overwritten."""
    rng = np.random.default_rng(5)
    params = drawn_params(rng, 6, 4, cell, 2, 3, scale=0.5)
    X, Y = rng.integers(0, 6, (3, 5)), rng.integers(0, 6, (3, 5))
    logits, _, cache = rnn_forward(params, X, None)
    dlogits = softmax_cross_entropy(logits, Y.T.reshape(-1))[1]
    kept = [{k: v.copy() for k, v in rnn_backward(dlogits, cache, keep_cache=True)[0].items()} for _ in range(2)]
    spent = {k: v.copy() for k, v in rnn_backward(dlogits, cache)[0].items()}
    for k in params:
        np.testing.assert_array_equal(kept[0][k], kept[1][k])
        np.testing.assert_array_equal(kept[0][k], spent[k])
    if cell == "rnn":
        again = rnn_backward(dlogits, cache)[0]
        for k in params:
            np.testing.assert_array_equal(again[k], spent[k])
    else:
        with pytest.raises(ValueError, match="spent by an earlier rnn_backward.*keep_cache=True"):
            rnn_backward(dlogits, cache)


@given(st.sampled_from(CELLS), st.integers(1, 3), st.sampled_from([0, 4]), st.integers(1, 3), st.integers(1, 5),
       st.integers(1, 5), seeds)
def test_two_windows_with_carried_state_equal_one_forward(cell, layers, E, B, T1, T2, seed):
    rng = np.random.default_rng(seed)
    V, H = 5, 4
    params = drawn_params(rng, V, H, cell, layers, E, scale=0.5)
    X = rng.integers(0, V, (B, T1 + T2))
    state0 = drawn_state(rng, cell, (B, H) if layers == 1 else (layers, B, H))
    logits, state_T, _ = rnn_forward(params, X, state0)
    ws = Workspace()  # one workspace for both windows, as in training
    l1, s1, _ = rnn_forward(params, X[:, :T1], state0, workspace=ws)
    l1 = l1.copy()
    l2, s2, _ = rnn_forward(params, X[:, T1:], s1, workspace=ws)
    np.testing.assert_allclose(logits, np.concatenate([l1, l2]), rtol=1e-12, atol=1e-12)
    for a, b in zip(as_tuple(state_T), as_tuple(s2)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


@given(st.sampled_from(CELLS), st.integers(1, 2), st.sampled_from([0, 3]), st.integers(1, 3), st.integers(1, 4), seeds)
def test_detached_window_gradient_ignores_earlier_windows(cell, layers, E, B, T, seed):
    """Truncated BPTT: after a first window, the second window's gradient is the one a
    fresh run from the same state value gets (no trace of the first window's tokens,
    cache or shared buffers). Without detaching, it is not."""
    rng = np.random.default_rng(seed)
    V, H = 5, 4
    cfg = Config(clip=0, lr=0.0, dtype="float64", cell=cell, num_layers=layers, embed_size=E, num_hiddens=H)
    params = drawn_params(rng, V, H, cell, layers, E, scale=0.7)
    X1, X2, Y1, Y2 = (rng.integers(0, V, (B, T)) for _ in range(4))

    def host(grads):
        return {k: np.array(v) for k, v in grads.items()}

    ws = Workspace()
    s1 = train_step(params, X1, Y1, None, cfg, CPU, workspace=ws)[2]
    after_window_1 = host(train_step(params, X2, Y2, s1, cfg, CPU, workspace=ws)[3])
    s1_value = tuple(np.array(s) for s in s1) if isinstance(s1, tuple) else np.array(s1)
    fresh = host(train_step(params, X2, Y2, s1_value, cfg, CPU, workspace=Workspace())[3])
    for k in params:
        np.testing.assert_array_equal(after_window_1[k], fresh[k])

    earlier = []
    s1 = train_step(params, X1, Y1, None, cfg, CPU, earlier)[2]
    chained = host(train_step(params, X2, Y2, s1, cfg, CPU, earlier)[3])
    first = "W_emb" if E else [k for k in params if k.startswith("W_x")][0]
    assert not np.allclose(chained[first], fresh[first])


# ----------------------------------------------------------------------------- fixed values
def _fixed(cell, layers=1, E=0):
    params = init_params(4, 3, cell=cell, num_layers=layers, embed_size=E or None, dtype="float64")
    return {k: np.sin(np.arange(v.size) * (i + 1) * 0.7 + i).reshape(v.shape) * 0.6 for i, (k, v) in
            enumerate(params.items())}


X_FIX = np.array([[0, 1, 2, 3], [3, 2, 1, 0]])
Y_FIX = np.array([[1, 2, 3, 0], [2, 1, 0, 3]])


def _sig(z):
    return 1 / (1 + np.exp(-z))


def naive_loss(cell, p):
    """The book's equations, one step at a time in plain NumPy, independent of the engine."""
    B, T = X_FIX.shape
    H = p["W_hq"].shape[0]
    h, c, total = np.zeros((B, H)), np.zeros((B, H)), 0.0
    for t in range(T):
        x = np.eye(4)[X_FIX[:, t]]
        if cell == "rnn":
            h = np.tanh(x @ p["W_xh"] + h @ p["W_hh"] + p["b_h"])
        elif cell == "gru":
            z = _sig(x @ p["W_xz"] + h @ p["W_hz"] + p["b_z"])
            r = _sig(x @ p["W_xr"] + h @ p["W_hr"] + p["b_r"])
            h_tilde = np.tanh(x @ p["W_xh"] + (r * h) @ p["W_hh"] + p["b_h"])
            h = z * h + (1 - z) * h_tilde
        else:
            i, f, o = (_sig(x @ p[f"W_x{g}"] + h @ p[f"W_h{g}"] + p[f"b_{g}"]) for g in "ifo")
            c_tilde = np.tanh(x @ p["W_xc"] + h @ p["W_hc"] + p["b_c"])
            c = f * c + i * c_tilde
            h = o * np.tanh(c)
        o_t = h @ p["W_hq"] + p["b_q"]
        total += (np.log(np.exp(o_t).sum(axis=1)) - o_t[np.arange(B), Y_FIX[:, t]]).sum()
    return total / (B * T)


# Computed by this engine once its gradients had passed the central-difference tests.
FIXED = {
    "rnn": (1.4014479336363646, {
        "W_hh": [0.005961718903, -0.073052675499, -0.003221175526, 0.003873711976],
        "W_hq": [-0.105452099317, 0.134035906589, -0.044839641114, 0.016255833842],
        "b_q": [-0.092829195415, 0.123948727282, -0.070325128446, 0.039205596579],
        "W_xh": [-0.007076192935, 0.08924457555, 0.006017935407, -0.012821200092],
    }),
    "gru": (1.4488345743000561, {
        "W_hz": [0.001699963888, -0.001301352889, 0.000628149286, 0.005967365636],
        "W_hr": [-4.5597643e-05, 8.7366539e-05, -0.00012490209, 2.4265426e-05],
        "W_hq": [-0.030660329458, -0.003995397019, 0.007008084417, 0.027647642061],
        "b_q": [-0.049920398559, -0.104617269766, 0.015905912458, 0.138631755867],
        "W_xz": [0.000953981702, -0.007282994082, 0.002734433537, 0.005486204539],
    }),
    "lstm": (1.5169619328442758, {
        "W_hi": [-0.001346315908, 0.003985487003, -0.00429703608, 0.000318794991],
        "W_hf": [-0.006413609397, 0.000367466107, -0.000461811809, 0.000828887409],
        "W_hq": [0.00821836624, -0.001701654141, -0.029144231785, 0.022627519686],
        "b_q": [0.053665982293, -0.110801121221, 0.195939334333, -0.138804195405],
        "W_xi": [0.005631307115, -0.004369538189, -0.005270610364, 0.001473313572],
    }),
}


@pytest.mark.parametrize("cell", CELLS)
def test_fixed_model_loss_matches_the_books_equations(cell):
    p = _fixed(cell)
    logits, _, cache = rnn_forward(p, X_FIX, None)
    loss, dlogits = softmax_cross_entropy(logits, Y_FIX.T.reshape(-1))
    assert float(loss) == pytest.approx(naive_loss(cell, p), rel=1e-12)
    expected_loss, heads = FIXED[cell]
    assert float(loss) == pytest.approx(expected_loss, rel=1e-12)
    grads, _ = rnn_backward(dlogits, cache)
    for k, head in heads.items():
        np.testing.assert_allclose(grads[k].ravel()[:len(head)], head, rtol=1e-9, atol=1e-12)


# ----------------------------------------------------------------------------- init and contract
@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("layers,E", [(1, 0), (2, 0), (1, 16), (3, 8)])
def test_loss_at_init_is_log_vocab(cell, layers, E):
    for V in (5, 28, 100):
        params = init_params(V, 64, cell=cell, num_layers=layers, embed_size=E or None, seed=1, dtype="float64")
        X = np.random.default_rng(V).integers(0, V, (8, 10))
        logits, _, _ = rnn_forward(params, X, None)
        loss, _ = softmax_cross_entropy(logits, X.T.reshape(-1))
        assert abs(float(loss) - math.log(V)) < 0.01


def test_default_init_is_the_books_five_arrays_unchanged():
    p = init_params(28, 16, seed=3)
    assert list(p) == ["W_xh", "W_hh", "b_h", "W_hq", "b_q"]
    rng = np.random.default_rng(3)  # drawn in this order, biases zero
    np.testing.assert_array_equal(p["W_xh"], rng.normal(0, 0.01, (28, 16)).astype("float32"))
    np.testing.assert_array_equal(p["W_hh"], rng.normal(0, 0.01, (16, 16)).astype("float32"))
    np.testing.assert_array_equal(p["W_hq"], rng.normal(0, 0.01, (16, 28)).astype("float32"))
    assert not p["b_h"].any() and not p["b_q"].any()


def test_names_and_shapes_follow_d2l():
    p = init_params(10, 6, cell="gru", num_layers=2, embed_size=4)
    assert list(p) == ["W_emb", "W_xz", "W_hz", "b_z", "W_xr", "W_hr", "b_r", "W_xh", "W_hh", "b_h",
                       "W_xz_l1", "W_hz_l1", "b_z_l1", "W_xr_l1", "W_hr_l1", "b_r_l1", "W_xh_l1", "W_hh_l1", "b_h_l1",
                       "W_hq", "b_q"]
    assert p["W_emb"].shape == (10, 4) and p["W_xz"].shape == (4, 6) and p["W_xz_l1"].shape == (6, 6)
    lstm_p = init_params(10, 6, cell="lstm")
    assert [k for k in lstm_p if k.startswith("W_h")] == ["W_hi", "W_hf", "W_ho", "W_hc", "W_hq"]
    assert model_spec(lstm_p).cell == "lstm"


@pytest.mark.parametrize("cell", CELLS)
def test_state_forms(cell):
    """(B,H) for one layer, (L,B,H) for several; the LSTM's state is the pair (H, C)."""
    for layers in (1, 2):
        p = init_params(5, 4, cell=cell, num_layers=layers)
        _, s, _ = rnn_forward(p, np.zeros((3, 2), int), None)
        shape = (3, 4) if layers == 1 else (layers, 3, 4)
        assert all(part.shape == shape for part in as_tuple(s))
        assert len(as_tuple(s)) == (2 if cell == "lstm" else 1)
        bad = np.zeros((3, 5), "float32")
        with pytest.raises(ValueError, match="expected"):
            rnn_forward(p, np.zeros((3, 2), int), (bad, bad) if cell == "lstm" else bad)


def test_relu_with_a_gated_cell_is_a_clear_error():
    p = init_params(5, 4, cell="gru")
    with pytest.raises(ValueError, match="rnn cell only"):
        rnn_forward(p, np.zeros((1, 2), int), None, activation="relu")


@pytest.mark.parametrize("bad", ["float16", "int32", "float128"])
def test_init_params_refuses_dtypes_training_does_not_support(bad):
    with pytest.raises(ValueError, match="float32.*float64"):
        init_params(5, 4, dtype=bad)


# ----------------------------------------------------------------------------- dropout
@given(st.sampled_from(CELLS), st.integers(1, 3), st.sampled_from([0, 3]), st.integers(1, 3), st.integers(1, 4),
       st.sampled_from([0.2, 0.5]), seeds)
def test_gradients_with_dropout_masks_held_fixed(cell, layers, E, B, T, p, seed):
    from minirnn.dropout import dropout_masks
    from minirnn.model import model_spec

    rng = np.random.default_rng(seed)
    V, H = 5, 4
    params = drawn_params(rng, V, H, cell, layers, E, scale=0.6)
    X, Y = rng.integers(0, V, (B, T)), rng.integers(0, V, (B, T))
    masks = dropout_masks(model_spec(params), T, B, p, np.random.default_rng(seed), params["W_hq"])

    def f():
        logits, _, _ = rnn_forward(params, X, None, masks=masks)
        return float(softmax_cross_entropy(logits, Y.T.reshape(-1))[0])

    logits, _, cache = rnn_forward(params, X, None, masks=masks)
    _, dlogits = softmax_cross_entropy(logits, Y.T.reshape(-1))
    grads = {k: v.copy() for k, v in rnn_backward(dlogits, cache)[0].items()}
    for name, x in params.items():
        assert rel_error(grads[name], central_difference(f, x)) <= TOL, name


def test_dropout_masks_are_inverted_and_seeded():
    from minirnn.dropout import dropout_masks
    from minirnn.model import model_spec

    spec = model_spec(init_params(10, 64, cell="lstm", num_layers=2, embed_size=8))
    like = np.zeros(1, "float32")
    masks = dropout_masks(spec, 50, 40, 0.3, np.random.default_rng(1), like)
    assert [m.shape for m in masks] == [(2000, 8), (2000, 64), (2000, 64)]
    for m in masks:
        assert set(np.unique(m)) <= {0.0, np.float32(1 / 0.7)}
        assert abs(m.mean() - 1.0) < 0.03  # kept units are scaled by 1/(1 - p): the mean input is unchanged
    again = dropout_masks(spec, 50, 40, 0.3, np.random.default_rng(1), like)
    assert all(np.array_equal(a, b) for a, b in zip(masks, again))
    assert dropout_masks(spec, 50, 40, 0.0, np.random.default_rng(1), like) is None
    onehot = model_spec(init_params(10, 8))
    assert dropout_masks(onehot, 3, 2, 0.5, np.random.default_rng(0), like)[0].shape == (6, 1)  # a token at a time


def test_dropout_changes_training_outputs_only():
    """With masks the forward differs; without (evaluation, generation) it is the plain model."""
    from minirnn.dropout import dropout_masks
    from minirnn.model import model_spec

    params = init_params(6, 8, cell="gru", num_layers=2, dtype="float64", seed=2)
    X = np.random.default_rng(0).integers(0, 6, (3, 5))
    plain = rnn_forward(params, X, None)[0].copy()
    masks = dropout_masks(model_spec(params), 5, 3, 0.5, np.random.default_rng(0), params["W_hq"])
    dropped = rnn_forward(params, X, None, masks=masks)[0].copy()
    assert not np.allclose(plain, dropped)
    np.testing.assert_array_equal(rnn_forward(params, X, None)[0], plain)
