"""The held-out protocol: every token but the first scored once, each from all the
earlier tokens of its stream, B streams side by side; snapshot ensembles score the
same tokens; what the snapshot store hands out is the caller's to keep."""
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from minirnn import checkpoint
from minirnn.backend import get_backend
from minirnn.config import Config
from minirnn.data import Corpus, Vocab, load_corpus
from minirnn.ensemble import Snapshots, mixture_perplexity
from minirnn.generate import predict, snapshot_models
from minirnn.model import init_params, rnn_forward
from minirnn.train import eval_windows, evaluate, fit, new_state, scored_tokens, state_to_dict

CPU = get_backend("cpu")
TEXT = "the time traveller for so it will be convenient to speak of him was expounding a recondite matter to us "


def by_hand(params, ids, B, activation="tanh"):
    """-log p(ids[j+1]) for every j, the text fed one token at a time through each of
    B streams: contiguous pieces of the N - 1 targets, the first ones one longer
    (np.array_split's cut), each stream's state starting at zero."""
    losses = np.full(len(ids) - 1, np.nan)
    for stream in np.array_split(np.arange(len(ids) - 1), B):
        state = None
        for j in stream:
            logits, state, _ = rnn_forward(params, ids[None, j:j + 1], state, activation=activation)
            row = logits[0].astype(np.float64)
            losses[j] = np.log(np.exp(row - row.max()).sum()) + row.max() - row[ids[j + 1]]
    return losses


@settings(max_examples=200, deadline=None)
@given(N=st.integers(2, 3000), B=st.integers(1, 64), T=st.integers(1, 80))
def test_every_token_but_the_first_is_scored_once(N, B, T):
    if N - 1 < B:  # a stream with nothing to predict: refused
        with pytest.raises(ValueError, match=f"too few to evaluate with B={B} streams"):
            scored_tokens(np.zeros(N, dtype=np.uint8), Config(batch_size=B, num_steps=T))
        return
    assert scored_tokens(np.zeros(N, dtype=np.uint8), Config(batch_size=B, num_steps=T)) == N - 1
    windows = eval_windows(N, B, T)
    assert all(1 <= width <= T and 1 <= rows <= B for rows, _, width in windows)
    assert [rows for rows, _, _ in windows[:-1]] == [B] * (len(windows) - 1)  # only the last may be narrower
    steps = [t for _, t0, width in windows for t in range(t0, t0 + width)]
    assert steps == list(range(len(steps)))  # each stream's steps in order, none twice
    assert len(windows) == -(-((N - 1) // B) // T) + ((N - 1) % B > 0)


@settings(max_examples=15, deadline=None)
@given(N=st.integers(2, 90), B=st.integers(1, 9), T=st.integers(1, 12), cell=st.sampled_from(["rnn", "gru", "lstm"]),
       layers=st.integers(1, 2), seed=st.integers(0, 2**16))
def test_perplexity_is_that_of_feeding_each_stream_one_token_at_a_time(N, B, T, cell, layers, seed):
    B = min(B, N - 1)
    V = 7
    ids = np.random.default_rng(seed).integers(0, V, size=N).astype(np.uint8)
    params = init_params(V, 5, cell=cell, num_layers=layers, seed=seed, dtype="float64")
    cfg = Config(batch_size=B, num_steps=T, cell=cell, num_layers=layers, num_hiddens=5, dtype="float64")
    ppl, losses = evaluate(params, ids, cfg, CPU, per_token=True)
    expected = by_hand(params, ids, B)
    assert losses.shape == (N - 1,) and losses.dtype == np.float64
    np.testing.assert_allclose(losses, expected, rtol=1e-10, atol=1e-12)  # losses[j]: the loss of ids[j + 1]
    assert ppl == pytest.approx(math.exp(expected.mean()), rel=1e-12)
    assert evaluate(params, ids, cfg, CPU) == ppl  # the plain figure: the same float64 losses


def test_a_float32_model_is_scored_in_float64_stream_by_stream():
    corpus = load_corpus(max_tokens=2000)
    params = init_params(28, 16, seed=3)  # float32, as trained
    cfg = Config(batch_size=8, num_steps=10, num_hiddens=16)
    ppl, losses = evaluate(params, corpus.heldout, cfg, CPU, per_token=True)
    assert len(losses) == 1999 and losses.dtype == np.float64
    np.testing.assert_allclose(losses, by_hand(params, corpus.heldout, 8), rtol=1e-5)
    # The 8 streams are 8 pieces of 250 targets (the last 249), each read alone: batching mixes nothing.
    alone = [evaluate(params, corpus.heldout[i:i + 251], cfg.replace(batch_size=1), CPU, per_token=True)[1]
             for i in range(0, 2000, 250)]
    np.testing.assert_allclose(np.concatenate(alone), losses, rtol=1e-5)


def test_too_little_text_is_refused_with_the_fix():
    params = init_params(7, 4)
    with pytest.raises(ValueError, match="4 tokens are too few to evaluate with B=4 streams.*smaller batch_size"):
        evaluate(params, np.arange(4) % 7, Config(batch_size=4, num_steps=3), CPU)


def _corpus():
    vocab = Vocab.build(TEXT)
    return vocab, Corpus(vocab.encode(TEXT * 10), vocab, max_tokens=600)


def test_a_snapshot_ensemble_scores_the_tokens_the_single_model_scores():
    vocab, corpus = _corpus()
    cfg = Config(batch_size=7, num_steps=9, num_hiddens=12, cell="gru", epochs=4, print_every=1, seed=5,
                 optimizer="adam", lr=0.01, ensemble=3, dtype="float64")
    assert (len(corpus.heldout) - 1) % 7 and (len(corpus.heldout) - 1) // 7 % 9  # a shorter window and a narrower batch
    state = new_state(cfg, len(vocab), CPU)
    assert fit(cfg, corpus, CPU, state)
    snaps = state.snapshots
    assert [len(x) for x in snaps.losses] == [len(corpus.heldout) - 1] * 3
    for member, stored in zip(snaps.params, snaps.losses):
        np.testing.assert_allclose(stored, by_hand(member, corpus.heldout, 7), rtol=1e-10)
    last = state.history[-1]
    assert last["ensemble_ppl"] == mixture_perplexity(np.stack(snaps.losses))
    assert last["heldout_ppl"] == pytest.approx(math.exp(snaps.losses[-1].mean()), rel=1e-12)


def test_models_are_copies_that_a_later_snapshot_leaves_alone():
    s = Snapshots(2)
    for e in (1, 2):
        s.add(e, init_params(28, 4, seed=e), np.ones(5))
    held = s.models(CPU)
    before = held[0]["W_hq"].copy()
    s.add(3, init_params(28, 4, seed=3), np.ones(5))  # the ring is full: epoch 1's arrays take epoch 3's weights
    assert np.array_equal(before, held[0]["W_hq"])
    held[1]["W_hq"][:] = 7  # the caller may write its copy ...
    assert not (s.params[0]["W_hq"] == 7).any()  # ... and the store keeps what it measured


def test_editing_a_returned_model_does_not_edit_what_the_checkpoint_saves(tmp_path):
    vocab, corpus = _corpus()
    cfg = Config(batch_size=4, num_steps=10, num_hiddens=8, epochs=2, print_every=1, ensemble=2)
    state = new_state(cfg, len(vocab), CPU)
    fit(cfg, corpus, CPU, state)
    saved = [{k: v.copy() for k, v in member.items()} for member in state.snapshots.params]
    for model in state.snapshots.models(CPU):
        for v in model.values():
            v += 1
    path = tmp_path / "run.npz"
    checkpoint.save(path, state.params, vocab, cfg, state_to_dict(state), snapshots=state.snapshots)
    back = checkpoint.load(path).snapshots
    assert all(np.array_equal(a[k], b[k]) for a, b in zip(back.params, saved) for k in a)


def test_state_dict_hands_out_read_only_views_and_loading_copies():
    s = Snapshots(2)
    for e in (1, 2):
        s.add(e, init_params(28, 4, seed=e), np.full(5, float(e)))
    d = s.state_dict()
    with pytest.raises(ValueError, match="read-only"):
        d["0.W_hq"][0, 0] = 1.0
    d["losses"][:] = 0  # a new array: the store's losses stay
    assert s.losses[0][0] == 1.0
    given_arrays = {k: np.array(v) for k, v in d.items()}
    back = Snapshots.from_state_dict(2, given_arrays, list(s.params[0]))
    kept = given_arrays["0.W_hq"].copy()
    back.add(3, init_params(28, 4, seed=3), np.ones(5))  # reuses its oldest member's arrays ...
    assert np.array_equal(given_arrays["0.W_hq"], kept)  # ... its own, not the dict it was built from


def test_generating_from_the_store_itself_reads_it_and_writes_nothing():
    vocab = Vocab.build(TEXT)
    s = Snapshots(3)
    for e in (1, 2, 3):
        s.add(e, init_params(len(vocab), 6, cell="lstm", seed=e), np.ones(5))
    before = s.state_dict()
    before = {k: np.array(v) for k, v in before.items()}
    members = snapshot_models(s, CPU)  # on the CPU: the store itself, no copies
    assert members is s
    text = predict("the time", 30, members, vocab, temperature=0.7, seed=1)
    assert text == predict("the time", 30, s.models(CPU), vocab, temperature=0.7, seed=1)
    assert all(np.array_equal(v, s.state_dict()[k]) for k, v in before.items())
