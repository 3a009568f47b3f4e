"""Out-of-range and unusual input at the public functions: a clear error or the right answer."""
import numpy as np
import pytest

from minirnn.data import Vocab, check_fits
from minirnn.errors import DataError, plural
from minirnn.generate import predict
from minirnn.gradcheck import check_gradients
from minirnn.loss import softmax_cross_entropy
from minirnn.model import init_params, rnn_forward
from minirnn.optim import clip_grad_norm, grad_norm

from conftest import random_params


@pytest.mark.parametrize("bad", [-1, 3, 100])
def test_targets_outside_the_vocabulary_are_refused(backend, bad):
    logits = backend.asarray(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"targets y must lie in \[0, 3\)"):
        softmax_cross_entropy(logits, np.array([0, bad]))


def test_targets_may_be_a_list_and_must_be_integers(backend):
    logits = backend.asarray(np.log(np.array([[0.5, 0.25, 0.25], [0.1, 0.2, 0.7]])))
    loss, _ = softmax_cross_entropy(logits, [0, 2])
    assert abs(float(loss) - -(np.log(0.5) + np.log(0.7)) / 2) < 1e-12
    with pytest.raises(TypeError, match="integer"):
        softmax_cross_entropy(logits, [0.0, 2.0])


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_clipping_does_not_overflow_in_low_precision(backend, dtype):
    big = {"float32": 1e19, "float16": 1e3}[dtype]  # squares past the type's largest value
    grads = {"a": backend.asarray(np.array([3 * big, 4 * big], dtype=dtype))}
    norm = clip_grad_norm(grads, 1.0)
    assert abs(float(norm) / (5 * big) - 1) < 1e-3
    np.testing.assert_allclose(backend.to_numpy(grads["a"]).astype(np.float64), [0.6, 0.8], rtol=2e-3)
    assert str(grads["a"].dtype) == dtype and np.isfinite(float(grad_norm(grads)))


def test_token_ids_may_be_python_lists(backend):
    params = random_params(backend, 5, 4, np.random.default_rng(0))
    from_list, H_list, _ = rnn_forward(params, [[0, 1, 2], [4, 3, 2]], None)
    from_array, H_array, _ = rnn_forward(params, np.array([[0, 1, 2], [4, 3, 2]]), None)
    np.testing.assert_array_equal(backend.to_numpy(from_list), backend.to_numpy(from_array))
    np.testing.assert_array_equal(backend.to_numpy(H_list), backend.to_numpy(H_array))
    with pytest.raises(TypeError, match="integer"):
        rnn_forward(params, [[0.5, 1.0]], None)
    with pytest.raises(ValueError, match=r"\[0, 5\)"):
        rnn_forward(params, [[0, 7]], None)
    with pytest.raises(ValueError, match=r"got shape \(3,\)"):
        rnn_forward(params, [0, 1, 2], None)
    rows = check_gradients(params, [[0, 1, 2]], [[1, 2, 3]], [[0.1, -0.2, 0.3, 0.0]])
    assert {r["verdict"] for r in rows} == {"pass"}


@pytest.mark.parametrize("temperature", [None, 1.0, 5.0])
def test_unk_is_never_generated(backend, temperature):
    """A model whose output favours <unk> above all: it still never emits it."""
    vocab = Vocab(["<unk>", "a", "b", "c"])
    params = init_params(len(vocab), 8, backend=backend, dtype="float64")
    params["b_q"][0] = 5.0  # <unk> gets most of the mass, greedy or sampled
    text = predict("abc", 300, params, vocab, temperature=temperature, seed=1)
    assert len(text) == 3 + 300 and "<unk>" not in text


def test_counts_in_messages_agree_with_their_nouns():
    assert plural(1, "token") == "1 token" and plural(2, "token") == "2 tokens" and plural(0, "byte") == "0 bytes"
    with pytest.raises(DataError) as e:
        check_fits(1, 2, 3, "training text")
    assert "has 1 token," in str(e.value) and "1 tokens" not in str(e.value)


def test_states_given_as_lists_are_accepted():
    from minirnn import init_params, rnn_backward, rnn_forward

    p = init_params(5, 2, dtype="float64")
    logits, H, cache = rnn_forward(p, [[0, 1, 2]], [[0.1, 0.2]])
    np.testing.assert_array_equal(H, rnn_forward(p, np.array([[0, 1, 2]]), np.array([[0.1, 0.2]]))[1])
    grads, dH0 = rnn_backward(logits, cache, [[1.0, -1.0]])
    assert dH0.shape == (1, 2)
    lstm = init_params(5, 2, cell="lstm")
    H, C = rnn_forward(lstm, [[0, 1]], ([[0.1, 0.2]], [[0.0, 0.0]]))[1]
    assert H.shape == C.shape == (1, 2)
    with pytest.raises((TypeError, ValueError), match="state"):
        rnn_forward(lstm, [[0, 1]], "abc")


@pytest.mark.parametrize("cell", ["rnn", "gru"])
def test_a_pair_as_the_state_of_a_one_array_cell_is_named(cell):
    """(H, C) is the LSTM's state; the other cells take H alone, or (H,)."""
    from minirnn import init_params, rnn_forward

    p = init_params(5, 2, cell=cell, dtype="float64")
    H = np.full((1, 2), 0.3)
    with pytest.raises(ValueError, match=f"state of a {cell} model is one array H, got a tuple of 2; pass H alone"):
        rnn_forward(p, [[0, 1]], (H, H))
    np.testing.assert_array_equal(rnn_forward(p, [[0, 1]], (H,))[0], rnn_forward(p, [[0, 1]], H)[0])


def test_dlogits_of_the_wrong_shape_are_named():
    from minirnn import init_params, rnn_backward, rnn_forward

    p = init_params(5, 2, cell="gru", dtype="float64")
    logits, _, cache = rnn_forward(p, np.zeros((2, 3), int), None)  # T·B = 6 rows
    for bad, got in ((logits[:5], r"got shape \(5, 5\)"), (logits.tolist(), "got a list")):
        with pytest.raises(ValueError, match=r"dlogits must be an array of shape \(6, 5\).*" + got):
            rnn_backward(bad, cache)  # refused before any cell writes: the cache is not spent
    assert rnn_backward(logits, cache)[0]["W_hq"].shape == (2, 5)
