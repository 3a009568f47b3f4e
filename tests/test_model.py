"""Properties of the forward pass, the loss, clipping and SGD."""
import math

import numpy as np
import pytest
from hypothesis import given, strategies as st

from minirnn import (PARAM_NAMES, clip_grad_norm, grad_norm, init_params, rnn_backward, rnn_forward, sgd,
                     softmax_cross_entropy)
from minirnn.model import Workspace
from minirnn.train import train_step
from minirnn.config import Config

from conftest import random_params

seeds = st.integers(0, 2**32 - 1)


@given(st.integers(1, 4), st.integers(1, 6), st.integers(1, 6), st.integers(2, 10), st.integers(1, 8),
       st.sampled_from(["tanh", "relu"]), seeds)
def test_two_windows_with_carried_state_equal_one_forward(backend, B, T1, T2, V, H, activation, seed):
    rng = np.random.default_rng(seed)
    params = random_params(backend, V, H, rng)
    X = rng.integers(0, V, (B, T1 + T2))
    H0 = backend.asarray(rng.normal(0, 1, (B, H)))
    logits, H_T, _ = rnn_forward(params, X, H0, activation=activation)
    l1, H1, _ = rnn_forward(params, X[:, :T1], H0, activation=activation)
    l2, H2, _ = rnn_forward(params, X[:, T1:], H1, activation=activation)
    np.testing.assert_allclose(backend.to_numpy(logits), np.concatenate([backend.to_numpy(l1), backend.to_numpy(l2)]),
                               rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(backend.to_numpy(H_T), backend.to_numpy(H2), rtol=1e-12, atol=1e-12)


@given(st.integers(1, 4), st.integers(1, 6), st.integers(2, 10), st.integers(1, 8), seeds)
def test_logits_are_time_major(backend, B, T, V, H, seed):
    """Row t·B + b of the logits is step t of sequence b, as the book's torch.cat(outputs)."""
    rng = np.random.default_rng(seed)
    params = random_params(backend, V, H, rng)
    X = rng.integers(0, V, (B, T))
    logits = backend.to_numpy(rnn_forward(params, X, None)[0])
    for b in range(B):
        alone = backend.to_numpy(rnn_forward(params, X[b:b + 1], None)[0])  # (T, V)
        np.testing.assert_allclose(logits[b::B], alone, rtol=1e-12, atol=1e-12)


@given(st.integers(1, 3), st.integers(1, 5), st.integers(2, 8), st.integers(1, 6), seeds)
def test_window_gradient_ignores_earlier_tokens_once_state_is_given(backend, B, T, V, H, seed):
    """Truncated BPTT: after a first window, the second window's gradient is the one a
    fresh run from the same state value gets, with no trace of the first window (its
    tokens, its cache, the shared buffers). Without detaching, it is not."""
    rng = np.random.default_rng(seed)
    cfg = Config(clip=0, lr=0.0, dtype="float64")
    params = random_params(backend, V, H, rng)
    X1, X2, Y1, Y2 = (rng.integers(0, V, (B, T)) for _ in range(4))

    def host(grads):
        return {k: backend.to_numpy(v).copy() for k, v in grads.items()}

    workspace = Workspace()
    H1 = train_step(params, X1, Y1, None, cfg, backend, workspace=workspace)[2]
    after_window_1 = host(train_step(params, X2, Y2, H1, cfg, backend, workspace=workspace)[3])
    H1_value = backend.asarray(backend.to_numpy(H1).copy())
    fresh = host(train_step(params, X2, Y2, H1_value, cfg, backend, workspace=Workspace())[3])
    for k in PARAM_NAMES:
        np.testing.assert_array_equal(after_window_1[k], fresh[k])

    earlier = []
    H1 = train_step(params, X1, Y1, None, cfg, backend, earlier)[2]
    chained = host(train_step(params, X2, Y2, H1, cfg, backend, earlier)[3])
    assert any(not np.allclose(chained[k], fresh[k]) for k in ("W_xh", "W_hh", "b_h"))


def test_loss_at_init_is_log_vocab(backend):
    for V in (2, 5, 28, 100):
        params = init_params(V, 64, backend=backend, seed=1, dtype="float64")
        X = np.random.default_rng(V).integers(0, V, (8, 10))
        logits, _, _ = rnn_forward(params, X, None)
        loss, _ = softmax_cross_entropy(logits, backend.asarray(X.T.reshape(-1)))
        assert abs(float(loss) - math.log(V)) < 0.01


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_sgd_steps_lower_the_loss_on_a_fixed_batch(backend, activation):
    rng = np.random.default_rng(0)
    params = init_params(12, 32, backend=backend, seed=0, dtype="float64")
    X, Y = rng.integers(0, 12, (4, 10)), rng.integers(0, 12, (4, 10))
    y = backend.asarray(Y.T.reshape(-1))
    losses = []
    for _ in range(20):
        logits, _, cache = rnn_forward(params, X, None, activation=activation)
        loss, dlogits = softmax_cross_entropy(logits, y)
        grads, _ = rnn_backward(dlogits, cache)
        clip_grad_norm(grads, 1.0)
        sgd(params, grads, 1.0)
        losses.append(float(loss))
    assert losses[-1] < losses[0] - 0.1
    assert all(b <= a + 1e-9 for a, b in zip(losses, losses[1:]))


@given(st.integers(1, 30), st.integers(2, 40), st.integers(1, 16), seeds)
def test_one_hot_product_equals_lookup(backend, N, V, H, seed):
    """The book's exercise 1: X_t·W_xh with one-hot X_t is the row lookup W_xh[ids]."""
    rng = np.random.default_rng(seed)
    W_xh = rng.normal(0, 1, (V, H))
    ids = rng.integers(0, V, N)
    onehot = np.eye(V)[ids]
    W = backend.asarray(W_xh)
    np.testing.assert_allclose(backend.to_numpy(backend.xp.take(W, backend.asarray(ids), axis=0)), onehot @ W_xh,
                               rtol=1e-14, atol=0)
    # and its gradient, the scatter-add, is the transposed product
    rows = rng.normal(0, 1, (N, H))
    np.testing.assert_allclose(backend.to_numpy(backend.index_add(backend.asarray(ids), backend.asarray(rows), V)),
                               onehot.T @ rows, rtol=1e-12, atol=1e-12)


def test_index_add_for_a_large_vocabulary(backend):
    rng = np.random.default_rng(0)
    ids, rows = rng.integers(0, 2000, 300), rng.normal(0, 1, (300, 4))
    expected = np.zeros((2000, 4))
    np.add.at(expected, ids, rows)
    got = backend.to_numpy(backend.index_add(backend.asarray(ids), backend.asarray(rows), 2000))
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_softmax_cross_entropy_is_stable_for_huge_logits(backend, dtype):
    logits = backend.asarray(np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, -1e4], [1e4, 1e4, -1e4]], dtype=dtype))
    y = backend.asarray(np.array([0, 1, 2]))
    loss, dlogits = softmax_cross_entropy(logits, y)
    d = backend.to_numpy(dlogits)
    assert np.isfinite(float(loss)) and np.isfinite(d).all()
    # row 0 is right with certainty (0), row 1 uniform (log 3), row 2 wrong by 2e4
    assert abs(float(loss) - (0 + math.log(3) + 2e4 + math.log(2)) / 3) < 1e-2 * (1 if dtype == "float64" else 10)
    np.testing.assert_allclose(d.sum(axis=1), 0, atol=1e-6)


@given(st.integers(1, 30), st.integers(2, 12), st.floats(0.01, 30), seeds)
def test_softmax_cross_entropy_matches_the_definition(backend, N, V, scale, seed):
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, scale, (N, V))
    y = rng.integers(0, V, N)
    loss, _ = softmax_cross_entropy(backend.asarray(logits), backend.asarray(y))
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    assert abs(float(loss) + np.mean(np.log(p[np.arange(N), y]))) < 1e-9 * max(1, scale)


grads_strategy = st.integers(0, 2**32 - 1).map(lambda s: np.random.default_rng(s))


@given(grads_strategy, st.floats(1e-3, 1e3), st.floats(1e-3, 1e3))
def test_clipping_bounds_norm_and_keeps_direction(backend, rng, scale, theta):
    grads = {k: backend.asarray(rng.normal(0, scale, s))
             for k, s in {"W_xh": (5, 3), "W_hh": (3, 3), "b_h": (3,), "W_hq": (3, 5), "b_q": (5,)}.items()}
    before = {k: backend.to_numpy(v).copy() for k, v in grads.items()}
    norm = float(clip_grad_norm(grads, theta))
    flat_before = np.concatenate([v.ravel() for v in before.values()])
    flat_after = np.concatenate([backend.to_numpy(v).ravel() for v in grads.values()])
    assert abs(norm - np.linalg.norm(flat_before)) <= 1e-12 * norm
    assert np.linalg.norm(flat_after) <= theta
    if norm <= theta:  # a no-op below theta
        np.testing.assert_allclose(flat_after, flat_before, rtol=1e-6)
    # same direction: a positive multiple of the original
    c = flat_after @ flat_before / (flat_before @ flat_before)
    assert c > 0
    np.testing.assert_allclose(flat_after, c * flat_before, rtol=1e-12, atol=1e-300)


def test_clipping_disabled_and_invalid(backend):
    grads = {"a": backend.asarray(np.array([3.0, 4.0]))}
    assert float(clip_grad_norm(grads, None)) == 5.0
    np.testing.assert_array_equal(backend.to_numpy(grads["a"]), [3.0, 4.0])
    assert float(grad_norm(grads)) == 5.0
    with pytest.raises(ValueError, match="theta"):
        clip_grad_norm(grads, 0)


def test_sgd_updates_in_place(backend):
    p = {"w": backend.asarray(np.array([1.0, 2.0]))}
    ref = p["w"]
    sgd(p, {"w": backend.asarray(np.array([0.5, -1.0]))}, 2.0)
    assert p["w"] is ref
    np.testing.assert_array_equal(backend.to_numpy(p["w"]), [0.0, 4.0])


def test_init_params_shapes_scale_and_seed(backend):
    p = init_params(28, 512, backend=backend, seed=3)
    shapes = {"W_xh": (28, 512), "W_hh": (512, 512), "b_h": (512,), "W_hq": (512, 28), "b_q": (28,)}
    assert {k: tuple(v.shape) for k, v in p.items()} == shapes
    assert all(str(v.dtype) == "float32" for v in p.values())
    W_hh = backend.to_numpy(p["W_hh"])
    assert abs(W_hh.std() - 0.01) < 0.0005 and abs(W_hh.mean()) < 0.0005
    assert not backend.to_numpy(p["b_h"]).any() and not backend.to_numpy(p["b_q"]).any()
    q = init_params(28, 512, backend=backend, seed=3)
    assert all(np.array_equal(backend.to_numpy(p[k]), backend.to_numpy(q[k])) for k in p)
    r = init_params(28, 512, backend=backend, seed=4)
    assert not np.array_equal(backend.to_numpy(p["W_hh"]), backend.to_numpy(r["W_hh"]))


def test_forward_rejects_bad_tokens_and_state():
    params = init_params(5, 4, dtype="float64")
    with pytest.raises(ValueError, match=r"\[0, 5\)"):
        rnn_forward(params, np.array([[0, 5]]), None)
    with pytest.raises(ValueError, match=r"\[0, 5\)"):
        rnn_forward(params, np.array([[-1, 2]]), None)
    with pytest.raises(TypeError, match="integer"):
        rnn_forward(params, np.array([[0.0, 1.0]]), None)
    with pytest.raises(ValueError, match="shape"):
        rnn_forward(params, np.array([[0, 1]]), np.zeros((2, 4)))
    with pytest.raises(ValueError, match="activation"):
        rnn_forward(params, np.array([[0, 1]]), None, activation="sigmoid")
