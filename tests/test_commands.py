"""The command-line entry points: `minirnn COMMAND`, `python -m minirnn`, the script wrappers."""
import os
import re
import subprocess
import sys

import pytest

import minirnn
from minirnn import checkpoint

from helpers import ROOT, run_script


def run_module(*args, timeout=120):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
    env.pop("MINIRNN_DEVICE", None)
    return subprocess.run([sys.executable, "-m", "minirnn", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, env=env)


def test_version_from_the_module_and_each_command():
    assert run_module("--version").stdout == f"minirnn {minirnn.__version__}\n"
    for name in ("train", "generate", "gradcheck", "bench"):
        r = run_module(name, "--version")
        assert r.returncode == 0 and r.stdout == f"minirnn {minirnn.__version__}\n", (name, r.stderr)
    assert run_script("train.py", "--version").stdout == f"minirnn {minirnn.__version__}\n"


def test_version_is_one_value():
    setup = (ROOT / "setup.cfg").read_text()
    assert "version = attr: minirnn.__version__" in setup


def test_no_command_or_an_unknown_one_is_a_usage_error():
    bare = run_module()
    assert bare.returncode == 2 and all(n in bare.stdout for n in ("train", "generate", "gradcheck", "bench"))
    bad = run_module("trian")
    assert bad.returncode == 2 and "unknown command 'trian'" in bad.stderr and "train" in bad.stderr
    assert run_module("--help").returncode == 0


def test_the_module_runs_train_like_the_script():
    args = ("--epochs", 1, "--num-hiddens", 16, "--print-every", 1)
    m, s = run_module("train", *args), run_script("train.py", *args)
    assert m.returncode == 0 and s.returncode == 0, m.stderr + s.stderr
    strip = lambda out: [re.sub(r" *[\d.e+]+ tokens/s", "", l) for l in out.splitlines()]  # throughput differs
    assert strip(m.stdout) == strip(s.stdout)
    assert m.stdout.splitlines()[-3].endswith("tokens/sec on cpu")


def test_usage_errors_name_the_command_used():
    assert "python -m minirnn train: error:" in run_module("train", "--bogus").stderr
    assert run_script("train.py", "--bogus").stderr.startswith("train.py: error:")


def test_bench_sets_its_threads_before_numpy_loads():
    r = run_module("bench", "--threads", 1, "--configs", "book", "--repeats", 1, "--warmup", 0, "--json")
    assert r.returncode == 0, r.stderr
    assert '"threads": 1' in r.stdout


def test_importing_the_package_loads_no_numpy():
    code = "import sys, minirnn.commands; print('numpy' in sys.modules); minirnn.sgd; print('numpy' in sys.modules)"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={"PYTHONPATH": str(ROOT)})
    assert r.stdout.split() == ["False", "True"], r.stderr


def test_the_resume_hint_names_the_command_used():
    from minirnn.cli import invocation

    assert invocation("train.py") == "python scripts/train.py"
    assert invocation("minirnn train") == "minirnn train"
    assert invocation("python -m minirnn train") == "python -m minirnn train"


# ---------------------------------------------------------------------------- train: progress, threads, outputs
SMALL = ["--num-hiddens", 16, "--batch-size", 4, "--num-steps", 8, "--max-tokens", 2000]


def test_progress_inside_an_epoch_with_a_fake_clock():
    from minirnn.commands.train import EpochProgress
    from minirnn.train import TrainState

    lines, now = [], [0.0]
    tick = EpochProgress(10, epochs=3, report=lines.append, clock=lambda: now[0])
    state = TrainState(params={}, rng_state={})
    for batch in range(1, 101):  # one minibatch of 1,000 tokens a second
        state.batch, state.tokens = batch, 1000 * batch
        tick(state, 100)
        now[0] += 1.0
    assert len(lines) == 9  # about every 10 s, none at the epoch's end
    assert lines[0] == "  epoch 1: minibatch 11/100, 1000 tokens/s, epoch ends in 1m29s, run in 4m49s"
    state.epoch, state.batch, state.tokens = 2, 1, 1000  # the last epoch: no run estimate
    tick(state, 100)
    now[0] += 20
    state.batch, state.tokens = 3, 3000
    tick(state, 100)
    assert lines[-1] == "  epoch 3: minibatch 3/100, 100 tokens/s, epoch ends in 16m10s"


def test_durations():
    from minirnn.commands.train import duration

    assert [duration(s) for s in (0.4, 59, 61, 3599, 3600 * 5 + 300, 86400 * 2 + 3600 * 4)] == \
        ["0s", "59s", "1m01s", "59m59s", "5h05m", "2d04h"]


def test_train_prints_progress_inside_long_epochs():
    r = run_script("train.py", *SMALL, "--epochs", 2, "--print-every", 2, "--progress-seconds", 1e-6)
    assert r.returncode == 0, r.stderr
    inside = [l for l in r.stdout.splitlines() if l.startswith("  epoch ")]
    assert inside and all(re.fullmatch(r"  epoch [12]: minibatch \d+/\d+, \d+ tokens/s, epoch ends in \d+s"
                                       r"(, run in \d+s)?", l) for l in inside), inside
    quiet = run_script("train.py", *SMALL, "--epochs", 2, "--progress-seconds", 0)
    assert not [l for l in quiet.stdout.splitlines() if l.startswith("  epoch ")]


def test_threads_are_set_before_numpy_and_said():
    r = run_module("train", *SMALL, "--epochs", 1, "--threads", 1)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0].endswith(", sequential, 1 BLAS thread")
    s = run_script("train.py", *SMALL, "--epochs", 1, "--threads", 2)
    assert s.returncode == 0 and ", 2 BLAS threads" in s.stdout.splitlines()[0], s.stderr
    assert run_script("train.py", "--threads", 0).returncode == 2
    default = run_script("train.py", *SMALL, "--epochs", 1)  # one thread unless told (docs/training.md, "Threads")
    assert default.stdout.splitlines()[0].endswith(", sequential, 1 BLAS thread"), default.stderr
    told = run_script("train.py", *SMALL, "--epochs", 1, env={"OPENBLAS_NUM_THREADS": "2"})
    assert told.stdout.splitlines()[0].endswith(", 2 BLAS threads"), told.stderr


def test_a_preset_brings_its_own_thread_count_unless_told():
    from minirnn.config import PRESETS
    from minirnn.threads import PRESET_THREADS, preset_from_argv

    assert set(PRESET_THREADS) <= set(PRESETS)
    assert preset_from_argv(["--epochs", "1", "--preset", "heldout"]) == "heldout"
    assert preset_from_argv(["--preset=heldout"]) == "heldout" and preset_from_argv(["--epochs", "1"]) is None
    tiny = ["--preset", "heldout", *SMALL, "--num-layers", 1, "--embed-size", 4, "--epochs", 1, "--patience", 0]
    own = run_script("train.py", *tiny)
    assert own.returncode == 0, own.stderr
    assert own.stdout.splitlines()[0].endswith(f", {PRESET_THREADS['heldout']} BLAS threads")
    told = run_script("train.py", *tiny, "--threads", 1)
    assert told.returncode == 0 and told.stdout.splitlines()[0].endswith(", 1 BLAS thread"), told.stderr


def test_threads_cannot_be_set_once_numpy_has_loaded():
    from minirnn.commands.train import main
    from minirnn.errors import UsageError

    with pytest.raises(UsageError, match="was not set before NumPy loaded"):
        main(["--threads", "7", "--epochs", "1"])


def test_summary_says_where_the_outputs_went_and_resume_continues_them(tmp_path):
    pytest.importorskip("matplotlib")
    ckpt, log, plot = tmp_path / "m.npz", tmp_path / "m.csv", tmp_path / "m.png"
    r = run_script("train.py", *SMALL, "--epochs", 2, "--print-every", 1, "--save", ckpt, "--log", log, "--plot", plot)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[-4] == f"wrote checkpoint {ckpt}, log {log}, plot {plot}"
    assert re.fullmatch(r"perplexity [\d.]+, [\d.]+ tokens/sec on cpu", lines[-3])
    assert checkpoint.load(ckpt).outputs == {"log": str(log), "plot": str(plot), "save": str(ckpt)}
    first_plot = plot.read_bytes()

    r = run_script("train.py", "--resume", ckpt, "--epochs", 4)  # no --log, no --plot
    assert r.returncode == 0, r.stderr
    assert f"continuing log {log}, plot {plot}" in r.stdout
    assert [row.split(",")[0] for row in log.read_text().splitlines()] == ["epoch", "1", "2", "3", "4"]
    assert plot.read_bytes() != first_plot

    other = tmp_path / "other.csv"  # an override goes to the new file, and the checkpoint remembers it
    r = run_script("train.py", "--resume", ckpt, "--epochs", 5, "--log", other)
    assert r.returncode == 0, r.stderr
    assert len(other.read_text().splitlines()) == 6 and len(log.read_text().splitlines()) == 5
    assert checkpoint.load(ckpt).outputs == {"log": str(other), "plot": str(plot), "save": str(ckpt)}


def test_malformed_output_paths_in_a_checkpoint_are_refused(tmp_path):
    import numpy as np

    from minirnn.errors import CheckpointError

    r = run_script("train.py", *SMALL, "--epochs", 1, "--save", tmp_path / "m.npz")
    assert r.returncode == 0, r.stderr
    with np.load(tmp_path / "m.npz") as z:
        arrays = dict(z)
    for bad in ('{"log": 3}', '["a"]', '{"shell": "x"}'):
        arrays["outputs"] = np.array(bad)
        np.savez(tmp_path / "bad.npz", **arrays)
        with pytest.raises(CheckpointError, match="output paths are malformed"):
            checkpoint.load(tmp_path / "bad.npz")


# ---------------------------------------------------------------------------- generate
def test_generate_says_once_what_the_prefix_became(tmp_path):
    ckpt = tmp_path / "m.npz"
    assert run_script("train.py", *SMALL, "--epochs", 1, "--save", ckpt).returncode == 0
    r = run_script("generate.py", "--checkpoint", ckpt, "--prefix", "The Time Machine!", "-n", 5)
    assert r.returncode == 0 and r.stdout.startswith("the time machine")
    assert r.stderr.splitlines() == [
        "note: the prefix 'The Time Machine!' became 'the time machine' after the model's 'letters' preprocessing"]
    r = run_script("generate.py", "--checkpoint", ckpt, "--prefix", "été", "-n", 5)
    assert r.returncode == 0 and r.stderr.count("became 't'") == 1
    assert run_script("generate.py", "--checkpoint", ckpt, "--prefix", "time", "-n", 5).stderr == ""


def test_a_closed_pipe_stops_quietly():
    """`minirnn train | head -1`: no traceback when the reader goes away."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
    p = subprocess.Popen([sys.executable, "-m", "minirnn", "train", *map(str, SMALL), "--epochs", "20",
                          "--print-every", "1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    assert p.stdout.readline().startswith("training on cpu")
    p.stdout.close()
    err = p.stderr.read()
    assert p.wait(timeout=120) == 141 and err == ""


def test_help_groups_the_options():
    r = run_script("train.py", "--help")
    assert r.returncode == 0
    groups = [line.rstrip(":") for line in r.stdout.splitlines() if line and not line.startswith(" ") and line.endswith(":")]
    assert groups[-4:] == ["model", "data", "training", "output"]


def test_sample_prefix_defaults_to_the_start_of_another_text(tmp_path):
    text = tmp_path / "other.txt"
    text.write_text("Zebras quietly jog over frozen lakes. " * 200)
    r = run_script("train.py", "--data", text, "--text-mode", "raw", "--num-hiddens", "8", "--epochs", "1",
                   "--max-tokens", "3000", "--print-every", "1")
    assert r.returncode == 0, r.stderr
    assert "'Zebras quietly " in r.stdout and "time traveller" not in r.stdout  # a prefix the text contains
    r = run_script("train.py", "--data", text, "--text-mode", "raw", "--num-hiddens", "8", "--epochs", "1",
                   "--max-tokens", "3000", "--print-every", "1", "--sample-prefix", "frozen")
    assert r.returncode == 0 and "'frozen" in r.stdout and r.stdout.splitlines()[-1].startswith("frozen")
    assert "note:" not in r.stderr  # read as typed: nothing to say
    r = run_script("train.py", "--num-hiddens", "8", "--epochs", "1", "--sample-prefix", "Time 2 travel")
    assert r.returncode == 0 and "'time travel" in r.stdout
    assert "note: the sample prefix 'Time 2 travel' became 'time travel' after the 'letters' preprocessing" in r.stderr
    bad = run_script("train.py", "--num-hiddens", "8", "--epochs", "1", "--sample-prefix", "42!")
    assert bad.returncode != 0 and "prefix" in bad.stderr and "Traceback" not in bad.stderr


def test_generate_alpha_is_one_over_the_temperature(tmp_path):
    """The book's exercise writes sampling as q ∝ p^α: --alpha α is --temperature 1/α."""
    ckpt = tmp_path / "m.npz"
    assert run_script("train.py", *SMALL, "--epochs", 1, "--save", ckpt).returncode == 0
    gen = lambda *a: run_script("generate.py", "--checkpoint", ckpt, "-n", 40, "--seed", 3, *a)
    by_alpha, by_tau = gen("--alpha", 4), gen("--temperature", 0.25)
    assert by_alpha.returncode == 0 and by_alpha.stderr == ""
    assert by_alpha.stdout == by_tau.stdout
    assert gen("--alpha", 0.5).stdout == gen("--temperature", 2).stdout != gen("--alpha", 4).stdout
    for bad in ("0", "-1", "inf", "nan"):
        r = gen("--alpha", bad)
        assert r.returncode == 2 and r.stderr.startswith("error: --alpha must be > 0") and len(r.stderr.splitlines()) == 1
    both = gen("--alpha", 2, "--temperature", 0.5)
    assert both.returncode == 2 and "not allowed with" in both.stderr and "Traceback" not in both.stderr


def test_a_long_gradient_check_says_so_before_it_starts(monkeypatch, capsys):
    """The check costs six forward passes per entry; one that will take long says how
    long, and how to make it short, before it starts. A short one says nothing extra."""
    from minirnn.commands import gradcheck

    args = ["--cell", "gru", "--num-hiddens", "3", "--batch-size", "2", "--num-steps", "3"]
    assert gradcheck.main(args) == 0
    assert capsys.readouterr().err == ""
    monkeypatch.setattr(gradcheck, "LONG_CHECK_SECONDS", -1)  # every check counts as long
    assert gradcheck.main(args) == 0
    err = capsys.readouterr().err
    entries = 3 * (8 * 3 + 3 * 3 + 3) + 3 * 8 + 8 + 2 * 3  # W_x*, W_h*, b_* per gate; W_hq, b_q; H0
    assert f"note: {entries} entries to check, 6 forward passes each" in err and "--num-hiddens" in err
