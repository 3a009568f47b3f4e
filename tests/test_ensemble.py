"""Snapshot ensembles (--ensemble K): the mixture's perplexity, the ring of snapshots,
selection on the ensemble, checkpoints, and generation from several models. Resume
with an ensemble: test_robustness.py::test_interrupted_and_resumed_run_is_bit_for_bit_identical."""
import csv
import math

import numpy as np
import pytest
from hypothesis import given, strategies as st

from minirnn import checkpoint
from minirnn.backend import get_backend
from minirnn.config import Config
from minirnn.data import Corpus, Vocab
from minirnn.ensemble import Snapshots, mixture_perplexity
from minirnn.errors import CheckpointError, UsageError
from minirnn.generate import predict
from minirnn.loss import softmax_cross_entropy, token_losses
from minirnn.model import init_params, rnn_forward
from minirnn.train import evaluate, fit, new_state, state_to_dict

from helpers import run_script

TEXT = "the time traveller for so it will be convenient to speak of him was expounding a recondite matter to us "
CPU = get_backend("cpu")


@given(K=st.integers(1, 6), N=st.integers(1, 40), seed=st.integers(0, 2**32 - 1))
def test_mixture_perplexity_is_that_of_the_averaged_probabilities(K, N, seed):
    """exp(-mean_i log((1/K) Σ_k p_k,i)), computed here the plain way, on drawn probabilities."""
    rng = np.random.default_rng(seed)
    p = rng.uniform(1e-3, 1, size=(K, N))
    plain = math.exp(-np.mean(np.log(p.mean(axis=0))))
    assert mixture_perplexity(-np.log(p)) == pytest.approx(plain, rel=1e-12)
    if K == 1:  # one model: its own perplexity
        assert mixture_perplexity(-np.log(p)) == pytest.approx(math.exp(-np.log(p).mean()), rel=1e-12)


def test_mixture_perplexity_is_stable_and_never_worse_than_its_members_mean():
    # Losses of 1000 nats: exp(-1000) underflows, the log-sum-exp does not.
    assert mixture_perplexity(np.full((3, 5), 1000.0)) == math.inf  # e^1000 is past float range
    assert mixture_perplexity(np.full((3, 5), 700.0)) == pytest.approx(math.exp(700.0), rel=1e-9)
    assert mixture_perplexity([[800.0, 1.0], [1.0, 800.0]]) == pytest.approx(math.exp(1 + math.log(2)), rel=1e-12)
    rng = np.random.default_rng(0)
    losses = rng.uniform(0, 5, size=(4, 100))
    # Jensen: the mixture's log-loss is at most the members' mean log-loss.
    assert math.log(mixture_perplexity(losses)) <= losses.mean() + 1e-12
    assert mixture_perplexity([[math.inf, 1.0], [math.inf, 2.0]]) == math.inf  # a token no member can produce
    assert mixture_perplexity([[math.inf, 1.0], [0.0, 1.0]]) == pytest.approx(math.exp((math.log(2) + 1) / 2))
    with pytest.raises(ValueError, match="shape"):
        mixture_perplexity(np.zeros(5))
    for bad in ([[-1.0, 2.0]], [[math.nan, 1.0]]):
        with pytest.raises(ValueError, match="not the probabilities themselves"):
            mixture_perplexity(bad)
    with pytest.raises(ValueError, match="array of numbers"):
        mixture_perplexity([[1.0, 2.0], [3.0]])


def test_snapshots_keep_the_last_k_as_copies():
    snaps = Snapshots(2)
    params = {"W": np.zeros(3)}
    for epoch in (1, 2, 3):
        params["W"][:] = epoch
        snaps.add(epoch, params, np.full(4, float(epoch)))
    params["W"][:] = 99  # training goes on in place; the snapshots keep their own copies
    assert snaps.epochs == [2, 3] and [p["W"][0] for p in snaps.params] == [2, 3]
    assert snaps.perplexity() == pytest.approx(mixture_perplexity([[2.0] * 4, [3.0] * 4]))
    assert snaps.describe() == "2 models (epochs 2 to 3)"
    back = Snapshots.from_state_dict(2, snaps.state_dict(), ["W"])
    assert back.epochs == snaps.epochs and all(np.array_equal(a["W"], b["W"]) for a, b in zip(back.params, snaps.params))
    on_cpu = snaps.models(CPU)  # the members' weights as predict takes them
    assert [m["W"][0] for m in on_cpu] == [2, 3]
    with pytest.raises(ValueError, match="same held-out tokens"):
        snaps.add(4, params, np.zeros(5))
    for bad in (0, 2.0, "3", True):
        with pytest.raises(ValueError, match="an integer >= 1"):
            Snapshots(bad)
    assert Snapshots(np.int64(3)).size == 3
    empty = Snapshots(2)
    for use in (empty.perplexity, empty.describe, empty.state_dict):
        with pytest.raises(ValueError, match="the ensemble is empty"):
            use()
    with pytest.raises(TypeError, match="one model's dict"):
        empty.add(1, [params], np.zeros(4))
    with pytest.raises(ValueError, match=r"shape \(N,\)"):
        empty.add(1, params, np.zeros((2, 4)))


def test_token_losses_and_per_token_evaluation_agree_with_the_mean():
    rng = np.random.default_rng(3)
    logits, y = rng.normal(size=(12, 7)) * 20, rng.integers(0, 7, size=12)
    loss, _ = softmax_cross_entropy(logits.copy(), y)
    rows = token_losses(logits, y)
    assert rows.shape == (12,) and (rows >= 0).all() and rows.mean() == pytest.approx(float(loss), rel=1e-12)
    logp = logits - logits.max(1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(1, keepdims=True))
    assert np.allclose(rows, -logp[np.arange(12), y], rtol=1e-12)

    vocab = Vocab.build(TEXT)
    ids = vocab.encode(TEXT * 3)
    params = init_params(len(vocab), 8, cell="gru", seed=1, dtype="float64")
    cfg = Config(batch_size=3, num_steps=5, cell="gru", num_hiddens=8, dtype="float64")
    ppl, losses = evaluate(params, ids, cfg, CPU, per_token=True)
    assert ppl == pytest.approx(evaluate(params, ids, cfg, CPU), rel=1e-12)  # float64 throughout here
    assert len(losses) == len(ids) - 1 and math.exp(losses.mean()) == pytest.approx(ppl, rel=1e-12)
    with pytest.raises(ValueError, match="too few to evaluate"):
        evaluate(params, ids[:3], cfg, CPU)


def _corpus():
    vocab = Vocab.build(TEXT)
    return vocab, Corpus(vocab.encode(TEXT * 10), vocab, max_tokens=600)


def test_training_selects_on_the_ensemble_of_the_last_k_measured_models(tmp_path):
    vocab, corpus = _corpus()
    cfg = Config(batch_size=4, num_steps=10, num_hiddens=16, cell="lstm", epochs=5, print_every=1, seed=2,
                 optimizer="adam", lr=0.01, ensemble=3, dtype="float64")
    state = new_state(cfg, len(vocab), CPU)
    assert fit(cfg, corpus, CPU, state)
    snaps = state.snapshots
    assert snaps.epochs == [3, 4, 5] and np.array_equal(snaps.params[-1]["W_hq"], state.params["W_hq"])
    # The last row's figure, recomputed: each member evaluated again, probabilities averaged by hand.
    p = np.stack([np.exp(-evaluate(member, corpus.heldout, cfg, CPU, per_token=True)[1]) for member in snaps.params])
    last = state.history[-1]
    assert last["ensemble_ppl"] == pytest.approx(math.exp(-np.log(p.mean(axis=0)).mean()), rel=1e-12)
    assert last["heldout_ppl"] == pytest.approx(math.exp(-np.log(p[-1]).mean()), rel=1e-12)
    figures = [row["ensemble_ppl"] for row in state.history]
    assert state.best_heldout == min(figures) and state.best_epoch == 1 + figures.index(min(figures))
    assert figures[0] == state.history[0]["heldout_ppl"]  # one snapshot: the model itself, to the last digit

    path = tmp_path / "run.npz"
    checkpoint.save(path, state.params, vocab, cfg, state_to_dict(state), snapshots=state.snapshots)
    back = checkpoint.load(path).snapshots
    assert back.epochs == snaps.epochs and np.array_equal(np.stack(back.losses), np.stack(snaps.losses))
    assert all(np.array_equal(a[k], b[k]) for a, b in zip(back.params, snaps.params) for k in a)


def test_without_ensemble_nothing_changes():
    vocab, corpus = _corpus()
    cfg = Config(batch_size=4, num_steps=10, num_hiddens=16, epochs=2, print_every=1)
    state = new_state(cfg, len(vocab), CPU)
    fit(cfg, corpus, CPU, state)
    assert state.snapshots is None and all("ensemble_ppl" not in row for row in state.history)


def _saved_ensemble(tmp_path, **change):
    vocab = Vocab.build(TEXT)
    cfg = change.pop("config", Config(num_hiddens=6, ensemble=2))
    params = init_params(len(vocab), 6, seed=0)
    snaps = Snapshots(2)
    for epoch in (1, 2):
        snaps.add(epoch, params, np.ones(10))
    d = snaps.state_dict()
    d.update(change)
    d = {k: v for k, v in d.items() if v is not None}  # None: leave the member out
    real = Snapshots.state_dict
    try:
        Snapshots.state_dict = lambda self: d
        state = new_state(cfg, len(vocab), CPU)
        state.epoch = 2  # the snapshots were measured after epochs 1 and 2
        checkpoint.save(tmp_path / "m.npz", params, vocab, cfg, state_to_dict(state), snapshots=snaps)
    finally:
        Snapshots.state_dict = real
    return tmp_path / "m.npz"


@pytest.mark.parametrize("change, message", [
    ({"1.W_hh": np.zeros((6, 5), np.float32)}, "member 1's W_hh"),
    ({"0.W_hq": np.full((6, len(Vocab.build(TEXT))), np.nan, np.float32)}, "member 0's W_hq holds NaN or inf"),
    ({"0.W_hq": np.zeros((6, 28), np.float32)}, r"does not match the model's \(float32, shape \(6, 24\)\)"),
    ({"epochs": np.array([1, 9])}, "a model of epoch 9, after the run's own epoch 2"),
    ({"epochs": np.array([1, 2, 3])}, "do not match"),
    ({"losses": -np.ones((2, 10))}, ">= 0"),
    ({"losses": np.full((2, 10), np.inf)}, "finite"),
    ({"epochs": np.array([2, 1])}, "not increasing"),
    ({"2.W_hh": np.zeros((6, 6), np.float32)}, "unexpected 2.W_hh"),
    ({"1.b_q": None}, "lacks weights of the model: 1.b_q"),
    ({"config": Config(num_hiddens=6)}, "no --ensemble"),
], ids=["shape", "nan", "vocab", "future", "count", "negative", "inf", "order", "extra", "missing", "no-ensemble"])
def test_a_damaged_ensemble_is_named(tmp_path, change, message):
    path = _saved_ensemble(tmp_path, **change)
    with pytest.raises(CheckpointError, match=message):
        checkpoint.load(path)


def test_generation_averages_the_members_distributions():
    vocab = Vocab.build(TEXT)
    a = init_params(len(vocab), 8, cell="gru", seed=1, dtype="float64")
    b = init_params(len(vocab), 8, cell="gru", seed=2, dtype="float64")
    for p, scale in ((a, 3), (b, 2)):  # sharper than at initialisation, so the two disagree
        for k in p:
            p[k] *= scale
    prefix = "time traveller"
    # Both alone, and the one-member list, are the model itself.
    assert predict(prefix, 20, [a], vocab) == predict(prefix, 20, a, vocab)
    snaps = Snapshots(2)
    snaps.add(1, a, np.ones(3))
    snaps.add(2, b, np.ones(3))
    assert predict(prefix, 20, snaps, vocab) == predict(prefix, 20, [a, b], vocab)  # a Snapshots is its members
    for bad in (None, [[1, 2]], "a"):
        with pytest.raises(TypeError, match="a list of them or a Snapshots"):
            predict(prefix, 1, bad, vocab)
    # Two copies of one model are that model (the same distribution), greedy and sampled.
    assert predict(prefix, 20, [a, a], vocab) == predict(prefix, 20, a, vocab)
    assert predict(prefix, 20, [a, a], vocab, temperature=0.7, seed=4) == predict(prefix, 20, a, vocab, temperature=0.7, seed=4)
    # The next character, by hand: the argmax of the average of the two softmaxes after the prefix.
    ids = vocab.encode(prefix)[None, :]
    probs = 0
    for p in (a, b):
        logits, _, _ = rnn_forward(p, ids, None)
        last = logits[-1] - logits[-1].max()
        last[vocab.idx_to_token.index("<unk>")] = -np.inf
        probs = probs + np.exp(last) / np.exp(last).sum()
    assert predict(prefix, 1, [a, b], vocab)[-1] == vocab.idx_to_token[int(np.argmax(probs))]
    assert {predict(prefix, 1, m, vocab)[-1] for m in (a, b)} != {vocab.idx_to_token[int(np.argmax(probs))]}
    with pytest.raises(ValueError, match="at least one model"):
        predict(prefix, 1, [], vocab)


def test_ensemble_option_through_the_scripts(tmp_path):
    ckpt, best, log = tmp_path / "m.npz", tmp_path / "best.npz", tmp_path / "log.csv"
    r = run_script("train.py", "--cell", "gru", "--num-hiddens", "16", "--max-tokens", "2000", "--batch-size", "8",
                   "--num-steps", "10", "--epochs", "4", "--print-every", "1", "--optimizer", "adam",
                   "--ensemble", "3", "--save", ckpt, "--save-best", best, "--log", log)
    assert r.returncode == 0, r.stderr
    rows = list(csv.DictReader(log.open()))
    assert list(rows[0]) == ["epoch", "train_ppl", "heldout_ppl", "heldout_bpc", "heldout_tokens", "ensemble_ppl",
                             "tokens_per_s", "grad_norm", "lr"]
    figures = [float(row["ensemble_ppl"]) for row in rows]
    i = int(np.argmin(figures))
    assert (f"best held-out perplexity {figures[i]:.3f} ({math.log2(figures[i]):.3f} bpc) at epoch {i + 1}, "
            f"by the ensemble of the last 3") in r.stdout
    assert "ensemble of 3" in r.stdout.splitlines()[0] and "  ensemble " in r.stdout
    assert "continued by the ensemble of 3 models (epochs 2 to 4):" in r.stdout
    assert checkpoint.load(best).snapshots.epochs == list(range(max(1, i - 1), i + 2))
    g = run_script("generate.py", "--checkpoint", ckpt, "-n", "50")
    assert g.returncode == 0 and "generated by the ensemble of 3 models (epochs 2 to 4) (--no-ensemble: the model of epoch 4 alone)" in g.stderr
    assert g.stdout.splitlines() == [r.stdout.splitlines()[-2]]  # train's closing sample was the ensemble's
    alone = run_script("generate.py", "--checkpoint", ckpt, "-n", "30", "--no-ensemble")
    assert alone.returncode == 0 and "ensemble" not in alone.stderr
    resumed = run_script("train.py", "--resume", ckpt, "--ensemble", "2")
    assert resumed.returncode == 2 and "--ensemble 2 conflicts with the checkpoint's 3" in resumed.stderr
    resumed = run_script("train.py", "--resume", ckpt, "--ensemble", "0")
    assert resumed.returncode == 2 and "--ensemble must be an integer >= 1, got 0" in resumed.stderr
    hot = run_script("generate.py", "--checkpoint", ckpt, "--temperature", "inf")
    assert hot.returncode == 2 and "--temperature must be > 0 and finite, got inf" in hot.stderr
    hot = run_script("generate.py", "--checkpoint", ckpt, "--alpha", "1e-320")
    assert hot.returncode == 2 and "--alpha 1e-320 is too small to sample with" in hot.stderr
    cold = run_script("generate.py", "--checkpoint", ckpt, "--temperature", "1e-320", "-n", "50")
    assert cold.returncode == 0 and "warning" not in cold.stderr  # greedy, without NumPy's overflow warning
    assert cold.stdout == g.stdout
    bad = run_script("generate.py", "--checkpoint", ckpt, "--prefix", "123")
    assert bad.returncode == 2 and "ensemble" not in bad.stderr  # the error alone


def test_fewer_measurements_than_members_are_said(tmp_path):
    """K larger than the run's measurements: a warning at the start, and the true count at the end."""
    plain = tmp_path / "plain.npz"
    r = run_script("train.py", "--num-hiddens", "16", "--max-tokens", "2000", "--epochs", "2", "--print-every", "5",
                   "--ensemble", "4", "--save", plain)
    assert r.returncode == 0, r.stderr
    assert ("--ensemble 4 is more than the 1 held-out measurement this run makes, so the ensemble holds at most "
            "1 model; give --eval-every 1 or more --epochs, or a smaller --ensemble") in r.stderr
    assert "at epoch 2, by the ensemble, which held this one model then" in r.stdout
    assert "continued by the ensemble of 1 model (epoch 2):" in r.stdout
    r = run_script("train.py", "--num-hiddens", "16", "--max-tokens", "2000", "--epochs", "1", "--save", plain)
    assert "ensemble" not in r.stderr + r.stdout
    g = run_script("generate.py", "--checkpoint", plain, "--no-ensemble", "-n", "5")
    assert g.returncode == 0 and "holds no ensemble, so --no-ensemble changes nothing" in g.stderr
    again = run_script("train.py", "--resume", plain, "--ensemble", "3", "--epochs", "2")
    assert again.returncode == 2 and "--ensemble 3 conflicts with the checkpoint's 1 (no ensemble)" in again.stderr


def test_snapshots_that_do_not_fit_the_held_out_text_are_refused(tmp_path):
    vocab, corpus = _corpus()
    cfg = Config(batch_size=4, num_steps=10, num_hiddens=8, epochs=2, print_every=1, ensemble=2)
    state = new_state(cfg, len(vocab), CPU)
    fit(cfg, corpus, CPU, state)
    state.snapshots.losses = [x[:10] for x in state.snapshots.losses]  # as a damaged checkpoint could hold
    with pytest.raises(CheckpointError, match="scored 10 held-out tokens, but this run scores 439"):
        fit(cfg.replace(epochs=3), corpus, CPU, state)
    path = tmp_path / "m.npz"  # an ensemble run that measured, saved without its snapshots
    checkpoint.save(path, state.params, vocab, cfg, state_to_dict(state))
    with pytest.raises(CheckpointError, match="holds no snapshots"):
        checkpoint.load(path)


def test_bad_ensemble_sizes():
    for bad in (0, -1, 1.5, True):
        with pytest.raises(UsageError, match="--ensemble must be an integer >= 1"):
            Config.from_dict({"ensemble": bad})
    r = run_script("train.py", "--ensemble", "0")
    assert r.returncode == 2 and "--ensemble must be an integer >= 1, got 0" in r.stderr


def test_memory_estimate_counts_one_copy_of_the_weights_per_snapshot():
    from minirnn.model import Spec, param_shapes
    from minirnn.train import memory_estimate

    base = Config(cell="lstm", num_hiddens=32, epochs=50, eval_every=1)
    weights = 4 * sum(int(np.prod(s)) for s in param_shapes(Spec("lstm", 1, 28, 32, 0)).values())
    assert memory_estimate(base.replace(ensemble=10), 28) - memory_estimate(base, 28) == 10 * weights
    # No more snapshots than the run measures: every epoch here, every 10th (and the last) with the default.
    assert memory_estimate(base.replace(ensemble=10**6), 28) == memory_estimate(base.replace(ensemble=50), 28)
    sparse = base.replace(eval_every=0, epochs=55)  # measured at epochs 10, 20, ..., 50 and 55
    assert memory_estimate(sparse.replace(ensemble=10**6), 28) == memory_estimate(sparse.replace(ensemble=6), 28)
    assert memory_estimate(sparse.replace(ensemble=6), 28) > memory_estimate(sparse.replace(ensemble=5), 28)


def test_generate_names_the_weights_that_no_ensemble_would_use(tmp_path):
    from minirnn.commands.generate import _own_weights

    assert _own_weights({"epoch": 4, "batch": 0}) == "the model of epoch 4"
    assert _own_weights({"epoch": 3, "batch": 123}) == "the weights saved in epoch 4, after minibatch 123"
    early = tmp_path / "early.npz"  # an ensemble run saved before its first measurement
    vocab = Vocab.build(TEXT)
    cfg = Config(num_hiddens=6, ensemble=3)
    checkpoint.save(early, init_params(len(vocab), 6), vocab, cfg, state_to_dict(new_state(cfg, len(vocab), CPU)))
    g = run_script("generate.py", "--checkpoint", early, "--no-ensemble", "-n", "5", "--prefix", "the")
    assert g.returncode == 0 and "holds no ensemble snapshots yet, so --no-ensemble changes nothing" in g.stderr
    empty = tmp_path / "empty.npz"
    empty.write_bytes(b"")
    with pytest.raises(CheckpointError, match=r"the file is empty \(0 bytes\); use an earlier checkpoint"):
        checkpoint.load(empty)


@pytest.mark.parametrize("epochs, print_every, eval_every", [(7, 3, 0), (7, 3, 2), (6, 2, 3), (5, 10, 0), (4, 1, 0)])
def test_measurements_counts_what_fit_measures(epochs, print_every, eval_every):
    from minirnn.train import measurements

    vocab, corpus = _corpus()
    cfg = Config(batch_size=4, num_steps=10, num_hiddens=4, epochs=epochs, print_every=print_every,
                 eval_every=eval_every)
    state = new_state(cfg, len(vocab), CPU)
    fit(cfg, corpus, CPU, state)
    assert measurements(cfg) == sum(row["heldout_ppl"] is not None for row in state.history)
    n, p, q = 10**9, print_every, eval_every or print_every  # counted, not looped over
    assert max(n // p, n // q) <= measurements(cfg.replace(epochs=n)) <= n // p + n // q + 1  # the union, and the last
