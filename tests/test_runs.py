"""A user's runs: resuming a copied checkpoint, changing safe options on resume, the
last model against the best, divergence remarks, the plot, progress timing, and the
generate and bench conveniences."""
import csv
import json
import math
import re
import shutil

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from minirnn import checkpoint
from minirnn.data import Vocab
from minirnn.generate import predict
from minirnn.model import init_params

from helpers import run_script

SMALL = ["--num-hiddens", 16, "--batch-size", 4, "--num-steps", 8, "--max-tokens", 2000]


def train(*args, cwd):
    return run_script("train.py", *SMALL, *args, cwd=cwd)


def rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_resuming_a_copy_does_not_cut_short_the_original_runs_log(tmp_path):
    assert train("--epochs", 2, "--save", "ck.npz", "--log", "ck.csv", cwd=tmp_path).returncode == 0
    shutil.copy(tmp_path / "ck.npz", tmp_path / "ck2.npz")
    assert train("--resume", "ck.npz", "--epochs", 4, cwd=tmp_path).returncode == 0  # the original goes on
    before = (tmp_path / "ck.csv").read_text()
    assert len(rows(tmp_path / "ck.csv")) == 4
    r = train("--resume", "ck2.npz", "--epochs", 3, cwd=tmp_path)  # the copy, still at epoch 2
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "would overwrite the log" in r.stderr and "goes on to epoch 4" in r.stderr and "--log PATH" in r.stderr
    assert (tmp_path / "ck.csv").read_text() == before  # nothing destroyed
    r = train("--resume", "ck2.npz", "--epochs", 3, "--log", "ck2.csv", cwd=tmp_path)  # written elsewhere
    assert r.returncode == 0, r.stderr
    assert [row["epoch"] for row in rows(tmp_path / "ck2.csv")] == ["1", "2", "3"]
    assert (tmp_path / "ck.csv").read_text() == before


def test_a_fresh_copy_does_not_take_over_the_original_runs_outputs(tmp_path):
    assert train("--epochs", 2, "--save", "ck.npz", "--log", "ck.csv", cwd=tmp_path).returncode == 0
    shutil.copy(tmp_path / "ck.npz", tmp_path / "ck2.npz")
    before = (tmp_path / "ck.csv").read_text()
    r = train("--resume", "ck2.npz", "--epochs", 3, cwd=tmp_path)  # the log ends where the copy does
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "comes from the run that saves to" in r.stderr and "ck.npz" in r.stderr and "--log PATH" in r.stderr
    assert (tmp_path / "ck.csv").read_text() == before
    assert train("--resume", "ck2.npz", "--epochs", 3, "--log", "ck2.csv", cwd=tmp_path).returncode == 0
    assert train("--resume", "ck.npz", "--epochs", 3, cwd=tmp_path).returncode == 0  # the original goes on
    assert len(rows(tmp_path / "ck.csv")) == 3
    (tmp_path / "ck.npz").rename(tmp_path / "moved.npz")  # a moved checkpoint is no copy: it goes on
    r = train("--resume", "moved.npz", "--epochs", 4, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert len(rows(tmp_path / "ck.csv")) == 4


def test_a_log_that_ends_where_the_checkpoint_does_is_continued(tmp_path):
    assert train("--epochs", 2, "--save", "ck.npz", "--log", "ck.csv", cwd=tmp_path).returncode == 0
    first = rows(tmp_path / "ck.csv")
    r = train("--resume", "ck.npz", "--epochs", 3, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    now = rows(tmp_path / "ck.csv")
    assert [{k: row[k] for k in first[0]} for row in now[:2]] == first and len(now) == 3
    assert now[2]["changes"] == "--epochs 2 -> 3"  # raising --epochs is a change too, recorded


def test_naming_the_log_again_replaces_its_later_rows_with_a_note(tmp_path):
    assert train("--epochs", 2, "--save", "ck.npz", "--log", "ck.csv", cwd=tmp_path).returncode == 0
    shutil.copy(tmp_path / "ck.npz", tmp_path / "ck2.npz")
    assert train("--resume", "ck.npz", "--epochs", 4, cwd=tmp_path).returncode == 0
    r = train("--resume", "ck2.npz", "--epochs", 3, "--log", "ck.csv", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "note: replacing the log ck.csv (it goes on to epoch 4)" in r.stderr
    assert len(rows(tmp_path / "ck.csv")) == 3


def test_resuming_a_copy_does_not_overwrite_a_later_best_model(tmp_path):
    assert train("--epochs", 1, "--save", "ck.npz", "--save-best", "best.npz", cwd=tmp_path).returncode == 0
    shutil.copy(tmp_path / "ck.npz", tmp_path / "ck2.npz")
    assert train("--resume", "ck.npz", "--epochs", 3, cwd=tmp_path).returncode == 0
    kept = checkpoint.load(tmp_path / "best.npz").state["epoch"]
    if kept == 1:
        pytest.skip("the first epoch stayed the best, so no later best exists to protect")
    r = train("--resume", "ck2.npz", "--epochs", 2, cwd=tmp_path)
    assert r.returncode == 2 and f"best.npz (of epoch {kept})" in r.stderr and "--save-best PATH" in r.stderr


def test_resuming_a_copy_does_not_redraw_the_original_runs_plot(tmp_path):
    pytest.importorskip("matplotlib")
    assert train("--epochs", 2, "--save", "ck.npz", "--plot", "ck.png", cwd=tmp_path).returncode == 0
    shutil.copy(tmp_path / "ck.npz", tmp_path / "ck2.npz")
    assert train("--resume", "ck.npz", "--epochs", 4, cwd=tmp_path).returncode == 0
    before = (tmp_path / "ck.png").read_bytes()
    r = train("--resume", "ck2.npz", "--epochs", 3, cwd=tmp_path)
    assert r.returncode == 2 and "the plot" in r.stderr and "drawn to epoch 4" in r.stderr and "--plot PATH" in r.stderr
    assert (tmp_path / "ck.png").read_bytes() == before
    assert train("--resume", "ck.npz", "--epochs", 5, cwd=tmp_path).returncode == 0  # its own run: continued


def test_resume_may_change_the_learning_rate_and_records_it(tmp_path):
    assert train("--epochs", 2, "--save", "ck.npz", "--log", "ck.csv", cwd=tmp_path).returncode == 0
    r = train("--resume", "ck.npz", "--epochs", 4, "--lr", 0.25, "--patience", 5, "--print-every", 2,
              "--eval-every", 1, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "changed on resuming: --epochs 2 -> 4, --lr 1 -> 0.25, --patience 0 -> 5, --print-every 10 -> 2, " \
           "--eval-every 0 -> 1" in r.stdout
    assert "sgd lr 0.25" in r.stdout.splitlines()[0]
    log = rows(tmp_path / "ck.csv")
    assert [row["lr"] for row in log] == ["1.0", "1.0", "0.25", "0.25"]
    assert [row["changes"] for row in log][1:3] == ["", "--epochs 2 -> 4, --lr 1 -> 0.25, --patience 0 -> 5, "
                                                        "--print-every 10 -> 2, --eval-every 0 -> 1"]
    ck = checkpoint.load(tmp_path / "ck.npz")
    assert ck.config.lr == 0.25 and ck.state["lr"] == 0.25 and ck.config.patience == 5
    assert ck.state["changes"] == [{"epoch": 2, "batch": 0, "changes": {
        "epochs": [2, 4], "lr": [1.0, 0.25], "patience": [0, 5], "print_every": [10, 2], "eval_every": [0, 1]}}]
    r = train("--resume", "ck.npz", "--epochs", 5, "--num-hiddens", 32, cwd=tmp_path)  # the rest: still refused
    assert r.returncode == 2 and "--num-hiddens 32 conflicts with the checkpoint's 16" in r.stderr


def test_a_changed_learning_rate_is_the_one_the_optimizer_uses(tmp_path):
    assert train("--epochs", 1, "--save", "ck.npz", cwd=tmp_path).returncode == 0
    before = checkpoint.load(tmp_path / "ck.npz").params
    assert train("--resume", "ck.npz", "--epochs", 2, "--lr", 0, cwd=tmp_path).returncode == 0
    after = checkpoint.load(tmp_path / "ck.npz")
    assert after.state["epoch"] == 2 and all(np.array_equal(before[k], after.params[k]) for k in before)  # lr 0: no step


def test_save_warns_when_the_last_model_is_clearly_worse_than_the_best(tmp_path):
    (tmp_path / "ab.txt").write_text("ab" * 1000 + "aabb" * 500)  # held out: a pattern training makes unlikely
    common = ["--data", "ab.txt", "--epochs", 4, "--print-every", 1]
    r = train(*common, "--save", "last.npz", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    warning = [line for line in r.stderr.splitlines() if "holds the last model" in line]
    assert len(warning) == 1 and "not the best" in warning[0] and "--save-best PATH" in warning[0]
    both = train(*common, "--save", "last.npz", "--save-best", "best.npz", cwd=tmp_path)
    assert both.returncode == 0 and "holds the last model" not in both.stderr


def test_divergence_names_a_checkpoint_only_if_there_is_one(tmp_path):
    r = train("--clip", 0, "--lr", 1e6, "--epochs", 3, "--save", "div.npz", "--log", "div.csv", cwd=tmp_path)
    assert r.returncode == 1 and "diverged" in r.stderr
    assert "left as it was" not in r.stderr and "; no checkpoint was written to div.npz" in r.stderr
    assert not (tmp_path / "div.npz").exists()
    assert train("--epochs", 1, "--save", "div.npz", cwd=tmp_path).returncode == 0
    r = train("--resume", "div.npz", "--epochs", 3, "--lr", 1e6, "--clip", 0, cwd=tmp_path)
    assert r.returncode == 2  # --clip is not a safe change: refused before training
    before = (tmp_path / "div.npz").read_bytes()
    r = train("--resume", "div.npz", "--epochs", 3, "--lr", 1e9, "--log", "div2.csv", cwd=tmp_path)
    if r.returncode == 1:  # clipped, it may or may not diverge; when it does, the file is kept
        assert "the checkpoint div.npz is left as it was" in r.stderr
        assert (tmp_path / "div.npz").read_bytes() == before


def test_unknown_prefix_characters_are_shown_as_typed():
    vocab = Vocab(["<unk>", "a", "b", " "])
    params = init_params(len(vocab), 8, seed=0)
    with pytest.warns(UserWarning, match="shows them as typed"):
        text = predict("a é b", 5, params, vocab, text_mode="raw")
    assert text.startswith("a é b") and "<unk>" not in text and len(text) == 5 + 5


def test_the_progress_line_shows_elapsed_and_left_time():
    from minirnn.train import RunClock, progress_line

    now = [100.0]
    clock = RunClock(start_epoch=10, epochs=50, clock=lambda: now[0])
    now[0] += 30
    assert clock(13) == "30s elapsed, 6m10s left"  # 10 s an epoch, 37 to go
    now[0] += 370
    assert clock(50) == "6m40s elapsed"  # the last epoch: nothing left
    row = {"epoch": 13, "train_ppl": 5.0, "heldout_ppl": 6.0, "tokens_per_s": 1000.0, "grad_norm": 0.5}
    assert progress_line(row, "the", "30s elapsed, 6m10s left").endswith("|grad|  0.500  30s elapsed, 6m10s left  'the'")


def test_train_progress_lines_carry_the_timing(tmp_path):
    r = train("--epochs", 2, "--print-every", 1, cwd=tmp_path)
    lines = [line for line in r.stdout.splitlines() if line.startswith("epoch")]
    assert re.search(r"\|grad\| +[\d.]+  \d+s elapsed, \d+s left  '", lines[0])
    assert re.search(r"\|grad\| +[\d.]+  \d+s elapsed  '", lines[1])


@settings(max_examples=200, deadline=None)
@given(st.floats(1.0, 1e6), st.floats(1.0, 1e4))
def test_log_ticks_are_round_and_cover_the_range(low, ratio):
    from minirnn.commands.train import log_ticks

    high = low * ratio
    ticks = log_ticks(low, high)
    assert 2 <= len(ticks) <= 8 and ticks == sorted(set(ticks))
    assert all(float(f"{t / 10 ** math.floor(math.log10(t)):.2g}") == round(t / 10 ** math.floor(math.log10(t)), 2)
               for t in ticks)  # a round mantissa: 1, 1.2, 1.5, 2, ...
    inside = [t for t in ticks if low <= t <= high]
    assert len(inside) >= 2 or (ticks[0] < low and ticks[-1] > high)  # a narrow range: one tick on each side


def test_the_plot_names_the_text_and_the_model_and_its_run(tmp_path):
    pytest.importorskip("matplotlib")
    (tmp_path / "story.txt").write_text("the quick brown fox jumps over the lazy dog\n" * 200)
    r = train("--data", "story.txt", "--epochs", 2, "--plot", "p.png", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    from minirnn.commands.train import _png_run, plot_title
    from minirnn.config import Config

    assert _png_run(tmp_path / "p.png")["epoch"] == 2
    title = plot_title(Config(data=str(tmp_path / "story.txt"), num_hiddens=16, max_tokens=2000), 27)
    assert title.startswith("story.txt, first 2000 tokens: rnn, H=16")


def test_generate_writes_several_samples_to_a_file(tmp_path):
    assert train("--epochs", 1, "--save", "m.npz", cwd=tmp_path).returncode == 0
    args = ["--checkpoint", "m.npz", "--prefix", "the", "-n", 30, "--temperature", 1.5]
    r = run_script("generate.py", *args, "--num-samples", 3, "--output", "out.txt", cwd=tmp_path)
    assert r.returncode == 0 and r.stdout == "" and "wrote 3 samples of 30 characters to out.txt" in r.stderr
    samples = (tmp_path / "out.txt").read_text(encoding="utf-8").rstrip("\n").split("\n\n")
    assert len(samples) == 3 and len(set(samples)) == 3 and all(s.startswith("the") for s in samples)
    for k, sample in enumerate(samples):  # sample k is the one seed k gives
        one = run_script("generate.py", *args, "--seed", k, cwd=tmp_path)
        assert one.stdout.rstrip("\n") == sample
    greedy = run_script("generate.py", "--checkpoint", "m.npz", "--num-samples", 2, cwd=tmp_path)
    assert greedy.returncode == 2 and "needs --temperature or --alpha" in greedy.stderr
    onto = run_script("generate.py", "--checkpoint", "m.npz", "--output", "m.npz", cwd=tmp_path)
    assert onto.returncode == 2 and (tmp_path / "m.npz").exists()


def test_bench_takes_a_batch_size_and_a_number_of_steps():
    r = run_script("bench.py", "--configs", "book", "--batch-size", 3, "--num-steps", 5, "--num-hiddens", 8,
                   "--repeats", 1, "--warmup", 0, "--json")
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout)
    assert (result["batch_size"], result["num_steps"], result["num_hiddens"]) == (3, 5, 8)
    bad = run_script("bench.py", "--num-steps", 0)
    assert bad.returncode == 2 and "--num-steps must be an integer >= 1" in bad.stderr


def test_lr_zero_says_that_it_does_not_train(tmp_path):
    r = train("--epochs", 1, "--lr", 0, "--save", "m.npz", cwd=tmp_path)
    assert r.returncode == 0 and "--lr 0 leaves the weights as they are" in r.stderr, r.stderr
    r = train("--epochs", 1, cwd=tmp_path)
    assert "--lr 0" not in r.stderr
