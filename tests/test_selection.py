"""Training that generalises: optimizers in the loop, dropout, model selection
(--eval-every, --save-best, --patience, --lr-decay) and the preset. Resume with the
optimizers' state: test_robustness.py::test_interrupted_and_resumed_run_is_bit_for_bit_identical."""
import csv
import math

import numpy as np
import pytest

from minirnn import checkpoint
from minirnn.backend import get_backend
from minirnn.config import PRESETS, Config
from minirnn.data import Corpus, Vocab
from minirnn.train import _select, fit, new_state

from helpers import run_script

TEXT = "the time traveller for so it will be convenient to speak of him was expounding a recondite matter to us "
CPU = get_backend("cpu")


def _corpus():
    vocab = Vocab.build(TEXT)
    return vocab, Corpus(vocab.encode(TEXT * 10), vocab, max_tokens=600)


def test_dropout_is_seeded_and_changes_training():
    vocab, corpus = _corpus()
    base = dict(batch_size=4, num_steps=10, num_hiddens=16, epochs=2, print_every=1, seed=1, cell="gru")
    runs = []
    for dropout in (0.0, 0.5, 0.5):
        state = new_state(Config(**base, dropout=dropout), len(vocab), CPU)
        fit(Config(**base, dropout=dropout), corpus, CPU, state)
        runs.append(state.params["W_hq"].copy())
    assert not np.array_equal(runs[0], runs[1])  # dropout changed the updates
    assert np.array_equal(runs[1], runs[2])  # the same seed draws the same masks


class _Opt:
    lr = 1.0


def test_model_selection_keeps_the_best_decays_and_stops():
    cfg = Config(lr_decay=0.5, patience=2)
    state = new_state(Config(num_hiddens=4), 5, CPU)
    state.lr, state.optimizer = 1.0, _Opt()
    best = []
    for epoch, heldout in enumerate([9.0, 7.0, 7.5, 6.0, 6.5, 6.2], start=1):
        state.epoch = epoch
        _select(state, cfg, heldout, on_best=lambda s: best.append(s.epoch))
        if state.stopped_early:
            break
    assert best == [1, 2, 4]  # every new lowest held-out perplexity, and only those
    assert (state.best_epoch, state.best_heldout) == (4, 6.0)
    assert state.epoch == 6 and state.stopped_early  # two misses in a row after epoch 4
    assert state.lr == 0.5 ** 3 and state.optimizer.lr == state.lr  # one decay per miss: epochs 3, 5, 6


def test_script_save_best_patience_and_lr_column(tmp_path):
    best, log = tmp_path / "best.npz", tmp_path / "log.csv"
    r = run_script("train.py", "--num-hiddens", "16", "--max-tokens", "2000", "--batch-size", "8", "--num-steps", "10",
                   "--epochs", "40", "--print-every", "5", "--eval-every", "1", "--optimizer", "adam", "--lr", "0.05",
                   "--patience", "2", "--lr-decay", "0.5", "--save-best", best, "--log", log)
    assert r.returncode == 0, r.stderr
    rows = list(csv.DictReader(log.open()))
    heldout = [float(row["heldout_ppl"]) for row in rows]
    assert len(rows) < 40 and "stopping early" in r.stdout  # lr 0.05 overfits 2,000 tokens quickly
    i = int(np.argmin(heldout))
    assert all(h > heldout[i] for h in heldout[i + 1:]) and len(heldout) - 1 - i == 2  # two misses stopped it
    misses = sum(h >= min(heldout[:j]) for j, h in enumerate(heldout[:-1]) if j)
    assert float(rows[-1]["lr"]) == pytest.approx(0.05 * 0.5 ** misses)  # the epoch's rate: halved at every miss before
    kept = checkpoint.load(best)
    assert kept.state["epoch"] == i + 1 and kept.state["best_heldout"] == pytest.approx(heldout[i])
    assert f"best held-out perplexity {heldout[i]:.3f} ({math.log2(heldout[i]):.3f} bpc) at epoch {i + 1}" in r.stdout
    assert r.stdout.splitlines()[-3].startswith("perplexity ")  # the book's closing line stays


def test_preset_is_overridden_by_the_options_given():
    r = run_script("train.py", "--preset", "heldout", "--num-hiddens", "8", "--embed-size", "4", "--epochs", "1",
                   "--batch-size", "4", "--num-steps", "8", "--max-tokens", "3000", "--print-every", "1")
    assert r.returncode == 0, r.stderr
    header = r.stdout.splitlines()[0]
    p = PRESETS["heldout"]
    layers = f"{p['num_layers']}-layer " if p["num_layers"] > 1 else ""
    assert f"{layers}{p['cell']}" in header and "H=8" in header and f"{p['optimizer']} lr" in header
    assert f"dropout {p['dropout']:g}" in header and "3000 tokens" in header
    bad = run_script("train.py", "--preset", "nope")
    assert bad.returncode == 2 and "invalid choice" in bad.stderr


@pytest.mark.parametrize("args, message", [
    (["--dropout", "1"], "--dropout must be a probability in [0, 1), got 1.0"),
    (["--lr-decay", "0"], "--lr-decay must be a factor in (0, 1]"),
    (["--patience", "-1"], "--patience must be an integer >= 0"),
    (["--optimizer", "rmsprop"], "invalid choice: 'rmsprop'"),
    (["--sample-temperature", "0"], "--sample-temperature must be a finite number > 0, got 0.0"),
])
def test_bad_selection_options(args, message):
    r = run_script("train.py", *args)
    assert r.returncode == 2 and message in r.stderr


def test_optimizer_default_learning_rates():
    assert Config().lr == 1.0 and Config(optimizer="adam").lr == 2e-3 and Config(optimizer="adagrad").lr == 0.1
    assert Config(optimizer="adam", lr=0.01).lr == 0.01


def test_sample_temperature_samples_and_is_seeded():
    args = ["--num-hiddens", "16", "--epochs", "2", "--max-tokens", "2000", "--print-every", "1"]
    greedy = run_script("train.py", *args).stdout.splitlines()[-2]
    hot = [run_script("train.py", *args, "--sample-temperature", "2").stdout.splitlines()[-2] for _ in range(2)]
    assert hot[0] == hot[1] != greedy  # drawn, and fixed by the seed
