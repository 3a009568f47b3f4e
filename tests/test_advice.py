"""Error messages whose advice must work in the situation that triggers them,
and the divergence rule."""
import math
import os
import re
import shutil
import subprocess
import sys

import pytest

from minirnn import checkpoint
from minirnn.backend import get_backend
from minirnn.config import Config
from minirnn.data import Corpus, Vocab, load_corpus
from minirnn.errors import DataError, DivergedError
from minirnn.train import DIVERGED_FACTOR, check_corpus, diverged, fit, fixed, new_state, progress_line

from helpers import ROOT, run_script

TEXT = "the time traveller for so it will be convenient to speak of him was expounding a recondite matter to us "


def tiny(**kw):
    base = dict(batch_size=4, num_steps=10, num_hiddens=16, epochs=5, print_every=1)
    return Config.from_dict({**base, **kw})


def tiny_corpus():
    vocab = Vocab.build(TEXT)
    return Corpus(vocab.encode(TEXT * 8), vocab, max_tokens=len(TEXT) * 4)


# ---------------------------------------------------------------------------- divergence
def test_the_divergence_rule():
    V = 28
    limit = math.log(V) + math.log(DIVERGED_FACTOR)
    assert not diverged(math.log(V), 1.0, V)  # guessing uniformly is not divergence
    assert not diverged(limit - 0.01, 1e3, V)
    assert diverged(limit + 0.01, 1.0, V)
    assert diverged(275.0, 4e10, V)  # the unclipped book run: perplexity about 1e119, finite
    assert diverged(1.0, math.inf, V) and diverged(math.nan, 1.0, V) and diverged(1e4, 1.0, V)


@pytest.mark.parametrize("clip, fix", [(0, r"use --clip 1 \(clipping is off\), or lower --lr"),
                                       (1, r"lower --lr \(now 0; try 0\)")])
def test_a_finite_but_exploded_loss_stops_training(clip, fix):
    """Weights that predict confidently and wrongly: a finite loss far above log V."""
    backend = get_backend("cpu")
    corpus = tiny_corpus()
    cfg = tiny(lr=0, clip=clip)  # lr 0: the blow-up stays exactly as set
    state = new_state(cfg, len(corpus.vocab), backend)
    state.params["W_hq"] *= 1e5
    with pytest.raises(DivergedError) as e:
        fit(cfg, corpus, backend, state)
    message = str(e.value)
    loss = float(re.search(r"mean loss ([\d.e+]+)", message).group(1))
    assert math.isfinite(loss) and loss > math.log(len(corpus.vocab)) + math.log(DIVERGED_FACTOR)
    assert message.startswith("training diverged in epoch 1:") and re.search(fix, message)
    assert f"uniform guessing: {len(corpus.vocab)}" in message and state.epoch == 0


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_a_huge_lr_with_clipping_on_is_told_to_lower_the_lr():
    backend = get_backend("cpu")
    corpus = tiny_corpus()
    cfg = tiny(lr=1e6, clip=1, epochs=30)
    state = new_state(cfg, len(corpus.vocab), backend)
    with pytest.raises(DivergedError, match=r"lower --lr \(now 1e\+06; try 1\)$") as e:
        fit(cfg, corpus, backend, state)
    assert "--clip" not in str(e.value)  # clipping is already on


def test_the_unclipped_run_stops_with_exit_1_and_keeps_its_log(tmp_path):
    log = tmp_path / "run.csv"
    r = run_script("train.py", "--num-hiddens", 16, "--batch-size", 4, "--num-steps", 8, "--max-tokens", 400,
                   "--print-every", 1, "--epochs", 30, "--lr", 1e7, "--clip", 0, "--log", log, "--save", tmp_path / "m.npz")
    assert r.returncode == 1, r.stderr
    err = r.stderr.strip().splitlines()
    assert err[-1].startswith("error: training diverged in epoch ") and "use --clip 1" in err[-1]
    epoch = int(err[-1].split("diverged in epoch ")[1].split(":")[0])
    assert err[-2] == (f"wrote log {log} up to epoch {epoch - 1}; no checkpoint was written to {tmp_path / 'm.npz'} "
                       f"(--save-every N saves one every N epochs)")  # none was: no word of one left as it was
    assert len(log.read_text().splitlines()) == epoch  # the header and one row per good epoch


def test_large_figures_keep_a_fixed_width():
    row = {"epoch": 300, "train_ppl": 1.3e117, "heldout_ppl": math.inf, "tokens_per_s": 7.1e4, "grad_norm": 4.2e10}
    line = progress_line(row)
    assert "1.3e+117" in line and "4.2e+10" in line and "inf" in line
    small = progress_line({**row, "train_ppl": 1.037, "heldout_ppl": 98.487, "grad_norm": 0.169})
    assert len(line) <= len(small) + 4
    assert fixed(1.0374, 7) == "  1.037" and fixed(123456.0, 7) == "1.23e+05" and len(fixed(1e300, 7)) <= 9


# ---------------------------------------------------------------------------- sizes and texts
def test_a_max_tokens_that_leaves_no_held_out_text_says_lower_it():
    cfg = Config(max_tokens=170000)
    with pytest.raises(DataError, match="held-out text") as e:
        check_corpus(load_corpus(max_tokens=170000), cfg)
    message = str(e.value)
    assert "raise --max-tokens" not in message
    advised = int(re.search(r"lower --max-tokens to at most (\d+)", message).group(1))
    check_corpus(load_corpus(max_tokens=advised), cfg.replace(max_tokens=advised))  # the advice works
    with pytest.raises(DataError):
        check_corpus(load_corpus(max_tokens=advised + 1), cfg.replace(max_tokens=advised + 1))


def test_a_too_short_training_slice_says_raise_max_tokens():
    with pytest.raises(DataError, match=r"training text has 500 tokens.*raise --max-tokens \(the text has \d+"):
        check_corpus(load_corpus(max_tokens=500), Config(max_tokens=500))


def test_advice_for_a_short_text_is_advice_that_works(tmp_path):
    # A text too short for the last-10% split: halving it with --max-tokens works, and is said.
    data = tmp_path / "short.txt"
    data.write_text(TEXT * 85)  # about 8,800 tokens: a 10% held-out slice is too short for B 32 x T 35
    corpus, cfg = load_corpus(data, max_tokens=10000), Config(data=str(data))
    with pytest.raises(DataError, match="held-out text") as e:
        check_corpus(corpus, cfg)
    half = int(re.search(r"--max-tokens (\d+) \(train on the first", str(e.value)).group(1))
    check_corpus(load_corpus(data, max_tokens=half), cfg.replace(max_tokens=half))  # the advice works
    # No size to lower, and more tokens than the whole text could give: neither is advised.
    with pytest.raises(DataError) as e:
        check_corpus(load_corpus(max_tokens=2000), Config(batch_size=100000, max_tokens=2000))
    assert "raise --max-tokens" not in str(e.value) and "lower --batch-size" in str(e.value)
    small = tmp_path / "tiny.txt"
    small.write_text("ab")
    with pytest.raises(DataError) as e:
        check_corpus(load_corpus(small, max_tokens=0), Config(batch_size=1, num_steps=1, max_tokens=0))
    assert "lower" not in str(e.value) and "use a longer --data file" in str(e.value)


def test_max_tokens_beyond_the_text_is_said(tmp_path):
    r = run_script("train.py", "--max-tokens", 999999999, "--epochs", 1, "--num-hiddens", 8, "--print-every", 1)
    assert r.returncode == 0, r.stderr
    assert "--max-tokens 999999999 is not below the text's 170580 tokens" in r.stderr
    assert "153522 tokens (held out: 17058)" in r.stdout
    short = tmp_path / "short.txt"  # the default --max-tokens 10000, on a text of fewer tokens, said once
    short.write_text("the time machine is a story by wells " * 100)
    args = ["--data", short, "--epochs", 1, "--num-hiddens", 8, "--batch-size", 4, "--num-steps", 8,
            "--save", tmp_path / "s.npz"]
    r = run_script("train.py", *args)
    assert r.returncode == 0 and "the default --max-tokens 10000 is not below the text's 3699 tokens" in r.stderr
    r = run_script("train.py", "--resume", tmp_path / "s.npz", "--epochs", 2)
    assert r.returncode == 0 and "max-tokens" not in r.stderr


def test_resume_on_a_replaced_text_names_the_change(tmp_path):
    data, ckpt = tmp_path / "story.txt", tmp_path / "m.npz"
    data.write_text(TEXT * 40)
    small = ["--batch-size", 4, "--num-steps", 8, "--num-hiddens", 8, "--max-tokens", 0]
    assert run_script("train.py", "--data", data, *small, "--epochs", 1, "--save", ckpt).returncode == 0
    for replacement in (TEXT[:30], TEXT[::-1] * 40):  # too short for the run's sizes; same letters, other text
        data.write_text(replacement)
        r = run_script("train.py", "--resume", ckpt, "--epochs", 2)
        assert r.returncode == 1 and "was the file changed?" in r.stderr, r.stderr
        assert "--batch-size" not in r.stderr and "--num-steps" not in r.stderr


def test_a_bad_device_in_the_environment_names_the_variable(tmp_path):
    corpus, cfg, path = load_corpus(), Config(num_hiddens=8), tmp_path / "model.npz"
    checkpoint.save(path, new_state(cfg, len(corpus.vocab), get_backend("cpu")).params, corpus.vocab, cfg)
    for script, args in (("train.py", ["--epochs", 1]), ("generate.py", ["--checkpoint", path]),
                         ("gradcheck.py", []), ("bench.py", ["--configs", "book", "--repeats", 1]),
                         ("gradflow.py", ["--num-hiddens", 8, "--num-steps", 5])):
        r = run_script(script, *args, env={"MINIRNN_DEVICE": "tpu"})
        assert r.returncode == 2 and r.stderr == ("error: MINIRNN_DEVICE='tpu' is not a device: set it to one of "
                                                  "cpu, gpu, auto, or unset it (or give --device)\n"), (script, r.stderr)
        assert "--device must be" not in r.stderr
    assert run_script("train.py", "--device", "cpu", "--epochs", 1, "--num-hiddens", 8,
                      env={"MINIRNN_DEVICE": "tpu"}).returncode == 0  # --device overrides it


def test_resuming_a_model_only_checkpoint_says_start_anew(tmp_path):
    corpus = load_corpus()
    cfg = Config(num_hiddens=8)
    path = tmp_path / "model.npz"
    checkpoint.save(path, new_state(cfg, len(corpus.vocab), get_backend("cpu")).params, corpus.vocab, cfg)
    r = run_script("train.py", "--resume", path)
    assert r.returncode == 1 and "no training state" in r.stderr
    assert f"start a new run from its weights with --init-from {path} instead of --resume" in r.stderr


# ---------------------------------------------------------------------------- more of the same
def test_out_of_memory_advice_fits_each_command():
    from minirnn.cli import run
    from minirnn.commands import bench, generate, train

    def oom(argv):
        raise MemoryError

    for module, fragment in ((train, "resume with --device cpu"), (generate, "a smaller -n"),
                             (generate, "--device cpu, if it ran on the GPU"), (bench, "fewer --configs"),
                             (bench, "lower --num-hiddens")):
        assert fragment in module.OUT_OF_MEMORY
    assert run(oom, [], generate.OUT_OF_MEMORY) == 1
    assert "--num-hiddens" not in generate.OUT_OF_MEMORY  # generate has no such option


def test_out_of_memory_in_generate_says_what_generate_can_change(tmp_path, capsys):
    from minirnn.commands import launch

    corpus, cfg, path = load_corpus(), Config(num_hiddens=8), tmp_path / "model.npz"
    checkpoint.save(path, new_state(cfg, len(corpus.vocab), get_backend("cpu")).params, corpus.vocab, cfg)
    assert launch("generate", ["--checkpoint", str(path), "-n", str(10**15)], prog="generate.py") == 1
    err = capsys.readouterr().err
    assert err == "error: out of memory; ask for a smaller -n, or use a machine with more memory (or --device cpu, if it ran on the GPU)\n"


def test_resume_after_the_text_was_moved_says_put_it_back(tmp_path):
    data, ckpt = tmp_path / "story.txt", tmp_path / "m.npz"
    data.write_text(TEXT * 40)
    small = ["--batch-size", 4, "--num-steps", 8, "--num-hiddens", 8, "--max-tokens", 0]
    assert run_script("train.py", "--data", data, *small, "--epochs", 1, "--save", ckpt).returncode == 0
    shutil.move(data, tmp_path / "elsewhere.txt")
    r = run_script("train.py", "--resume", ckpt, "--epochs", 2)
    assert r.returncode == 1 and f"trains on --data {data}, which no longer exists; put the text back" in r.stderr
    shutil.move(tmp_path / "elsewhere.txt", data)  # the advice works
    assert run_script("train.py", "--resume", ckpt, "--epochs", 2).returncode == 0


def test_a_read_only_resume_file_says_give_save(tmp_path, monkeypatch):
    from minirnn.commands.train import main
    from minirnn.errors import UsageError

    ckpt = tmp_path / "m.npz"
    assert run_script("train.py", "--num-hiddens", 8, "--epochs", 1, "--save", ckpt).returncode == 0
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if os.fspath(p) == str(ckpt) else real_access(p, mode))
    with pytest.raises(UsageError, match=r"^--resume .*read-only; give --save PATH to write the checkpoint elsewhere$"):
        main(["--resume", str(ckpt), "--epochs", "2"])


def test_an_impossible_saved_position_says_the_checkpoint_is_damaged():
    backend = get_backend("cpu")
    corpus = tiny_corpus()
    cfg = tiny(epochs=2)
    state = new_state(cfg, len(corpus.vocab), backend)
    state.batch = 10_000
    with pytest.raises(Exception, match="does not fit this run: the checkpoint is damaged; use an earlier one"):
        fit(cfg, corpus, backend, state)


def test_a_prefix_with_no_letters_a_to_z_says_which_characters_count():
    from minirnn.errors import UsageError
    from minirnn.generate import encode_prefix

    with pytest.raises(UsageError, match="keeps only the letters A-Z; give some of them"):
        encode_prefix("ééé 123", Vocab.build(TEXT))


def test_two_outputs_on_one_path_are_refused(tmp_path):
    same = tmp_path / "s.png"
    r = run_script("train.py", "--log", same, "--plot", same, "--epochs", 1, "--num-hiddens", 8)
    assert r.returncode == 2 and r.stderr == f"error: the log and the plot would both be written to {same}; give them different paths\n"
    ck = tmp_path / "m.npz"
    r = run_script("train.py", "--save", ck, "--save-best", ck, "--epochs", 1, "--num-hiddens", 8)
    assert r.returncode == 2 and "the checkpoint and the best would both be written" in r.stderr
    assert not ck.exists() and not same.exists()


def test_a_usage_error_comes_before_the_missing_plotting_library(tmp_path):
    """Without matplotlib, two outputs on one path are still the error reported (a
    usage error, exit 2), and a plot asked for alone says what to install (exit 1)."""
    same = str(tmp_path / "s.png")
    code = ("import sys; sys.modules['matplotlib'] = None\n"
            "from minirnn.commands import launch\n"
            "sys.exit(launch('train', sys.argv[1:], prog='train.py'))")
    small = ["--epochs", "1", "--num-hiddens", "8"]
    r = subprocess.run([sys.executable, "-c", code, "--log", same, "--plot", same, *small],
                       capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert r.returncode == 2 and "would both be written to" in r.stderr, r.stderr
    r = subprocess.run([sys.executable, "-c", code, "--plot", same, *small], capture_output=True, text=True,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert r.returncode == 1 and r.stderr == "error: --plot needs matplotlib: pip install matplotlib (or drop --plot)\n"


def test_a_run_too_large_for_memory_is_refused_before_it_starts():
    r = run_script("train.py", "--num-hiddens", 100000000, "--epochs", 1)
    assert r.returncode == 1 and r.stderr.startswith("error: out of memory: this run needs about ")
    assert "GB available; lower --num-hiddens" in r.stderr and "Traceback" not in r.stderr


def test_resume_conflicts_name_what_the_user_typed(tmp_path):
    ck = tmp_path / "m.npz"
    assert run_script("train.py", "--save", ck, "--epochs", 1, "--num-hiddens", 8).returncode == 0
    r = run_script("train.py", "--resume", ck, "--preset", "heldout")
    assert r.returncode == 2 and "--preset heldout cannot be combined with --resume" in r.stderr
    other = tmp_path / "other.txt"
    other.write_text("some other text " * 500)
    r = run_script("train.py", "--resume", ck, "--data", other)
    assert r.returncode == 2 and "conflicts with the checkpoint's training text (the book)" in r.stderr


def test_generate_defaults_to_the_prefix_the_model_was_trained_with(tmp_path):
    text, ck = tmp_path / "zebra.txt", tmp_path / "z.npz"
    text.write_text("\n\nZebras quietly jog over frozen lakes. " * 200)
    assert run_script("train.py", "--data", text, "--text-mode", "raw", "--save", ck, "--epochs", 1,
                      "--num-hiddens", 8, "--max-tokens", 3000).returncode == 0
    r = run_script("generate.py", "--checkpoint", ck, "-n", 5)
    assert r.returncode == 0 and r.stdout.startswith("Zebras quietly jog"), r.stdout
