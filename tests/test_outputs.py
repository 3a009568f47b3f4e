"""Output paths: an output never replaces an input, a device or a pipe; the best model
survives a resume; options cannot be abbreviated. (A full disk: test_robustness.py.)"""
import os

import pytest

from minirnn import checkpoint
from minirnn.atomic import atomic_write, check_writable
from minirnn.errors import UsageError

from helpers import run_script

TINY = ["--num-hiddens", "8", "--batch-size", "4", "--num-steps", "8", "--max-tokens", "2000"]
TEXT = "the quick brown fox jumps over the lazy dog and runs far away into the hills. " * 60


@pytest.mark.parametrize("flag", ["--log", "--save", "--save-best", "--plot"])
def test_an_output_on_the_training_text_is_refused(tmp_path, flag):
    data = tmp_path / "text.png" if flag == "--plot" else tmp_path / "text.txt"  # a plot must end in .png
    data.write_text(TEXT)
    r = run_script("train.py", "--data", data, flag, data, *TINY, "--epochs", "1")
    assert r.returncode == 2 and f"{flag} {data} is the file given to --data: writing it would destroy it" in r.stderr
    assert data.read_text() == TEXT


def test_a_log_or_plot_on_the_resumed_checkpoint_is_refused(tmp_path):
    ck = tmp_path / "m.npz"
    assert run_script("train.py", "--save", ck, *TINY, "--epochs", "1").returncode == 0
    before = ck.read_bytes()
    r = run_script("train.py", "--resume", ck, "--epochs", "2", "--save", tmp_path / "next.npz", "--log", ck)
    assert r.returncode == 2 and f"--log {ck} is the file given to --resume" in r.stderr
    assert ck.read_bytes() == before


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc/self/fd (Linux)")
def test_a_link_to_a_pipe_that_resolves_to_no_path_is_refused():
    """/dev/stdout on a pipe is a link to /proc/self/fd/1, whose own target is
    "pipe:[…]", no path at all: it is named as a pipe, not as a missing directory."""
    read, write = os.pipe()
    try:
        link = f"/proc/self/fd/{write}"
        assert not os.path.exists(os.path.realpath(link)) and os.path.exists(link)
        with pytest.raises(UsageError, match="is not a regular file"):
            check_writable(link, "--save")
    finally:
        os.close(read)
        os.close(write)


def test_a_device_or_pipe_is_refused_and_a_link_is_followed(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    r = run_script("train.py", "--save", fifo, *TINY, "--epochs", "1")
    assert r.returncode == 2 and "is not a regular file (a device, pipe or socket)" in r.stderr
    with pytest.raises(UsageError, match="not a regular file"):
        atomic_write(fifo, lambda f: f.write(b"x"))
    assert fifo.is_fifo()
    real, link = tmp_path / "real.csv", tmp_path / "link.csv"
    real.write_text("old")
    link.symlink_to(real)
    r = run_script("train.py", "--log", link, *TINY, "--epochs", "1")
    assert r.returncode == 0, r.stderr
    assert link.is_symlink() and real.read_text().startswith("epoch,")


@pytest.mark.parametrize("args, message", [
    (["--save", ""], "--save needs a file name, got an empty one"),
    (["--log", ""], "--log needs a file name, got an empty one"),
    (["--data", ""], "--data needs a file name, got an empty one"),
    (["--plot", "p.pdf"], "--plot p.pdf: plots are written as PNG; give a name ending in .png"),
    (["--thread", "2"], "unrecognized arguments: --thread 2; did you mean --threads for --thread?"),
    (["--pres", "heldout"], "unrecognized arguments: --pres heldout; did you mean --preset for --pres?"),
    (["--bogus", "3"], "unrecognized arguments: --bogus 3 (see --help)"),  # nothing close enough
    (["--epoch", "2", "--num-hidden=8"], "did you mean --epochs for --epoch, --num-hiddens for --num-hidden?"),
])
def test_bad_output_names_and_abbreviations_are_usage_errors(tmp_path, args, message):
    r = run_script("train.py", *args, *TINY, "--epochs", "1", cwd=tmp_path)
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert os.listdir(tmp_path) == []


def test_a_file_in_place_of_a_directory_is_named():
    with pytest.raises(UsageError, match="is a file, not a directory"):
        check_writable(__file__ + "/x.npz", "--save")


def test_the_best_model_survives_a_resume(tmp_path):
    run, best = tmp_path / "run.npz", tmp_path / "best.npz"
    common = [*TINY, "--optimizer", "adam", "--lr", "0.01", "--eval-every", "1"]
    r = run_script("train.py", *common, "--epochs", "3", "--save", run, "--save-best", best)
    assert r.returncode == 0, r.stderr
    kept = best.read_bytes()
    # A new --save-best path starts with a copy of the best so far, and the summary only
    # names a file that holds it.
    new = tmp_path / "best2.npz"
    r = run_script("train.py", "--resume", run, "--epochs", "4", "--save-best", new)
    assert r.returncode == 0, r.stderr
    assert new.exists() and f"to {new}" in r.stdout and f"(kept in {new})" in r.stdout
    state = checkpoint.load(new).state
    assert state["best_heldout"] == pytest.approx(checkpoint.load(run).state["best_heldout"])
    assert best.read_bytes() == kept  # the first run's best is left alone
    # Resuming from the best file itself would overwrite it with later weights.
    r = run_script("train.py", "--resume", best, "--epochs", "5")
    assert r.returncode == 2 and f"{best} is the best model its run kept (--save-best)" in r.stderr
    assert best.read_bytes() == kept
    # With --save elsewhere it continues.
    r = run_script("train.py", "--resume", best, "--epochs", "5", "--save", tmp_path / "more.npz")
    assert r.returncode == 0, r.stderr


def test_a_plot_on_a_checkpoints_training_text_is_refused(tmp_path):
    data, ck = tmp_path / "corpus", tmp_path / "m.npz"  # a text without an extension
    data.write_text(TEXT)
    assert run_script("train.py", "--data", data, "--save", ck, *TINY, "--epochs", "1").returncode == 0
    r = run_script("gradflow.py", "--checkpoint", ck, "--num-steps", "8", "--batch-size", "4", "--plot", data)
    assert r.returncode == 2 and f"--plot {data} is the file given to --data of {ck}" in r.stderr
    r = run_script("train.py", "--resume", ck, "--epochs", "2", "--save", tmp_path / "n.npz", "--plot", data)
    assert r.returncode == 2 and f"--plot {data} is the file given to --data" in r.stderr
    assert data.read_text() == TEXT


def test_a_best_file_rewritten_by_another_run_is_not_claimed(tmp_path):
    run, best = tmp_path / "a.npz", tmp_path / "best.npz"
    common = [*TINY, "--optimizer", "adam", "--lr", "0.01", "--eval-every", "1"]
    assert run_script("train.py", *common, "--epochs", "3", "--save", run, "--save-best", best).returncode == 0
    assert run_script("train.py", *common, "--epochs", "1", "--save", tmp_path / "b.npz", "--save-best", best,
                      "--seed", "5").returncode == 0  # another run takes the path
    other = checkpoint.load(best).state
    # The resumed run's best is not in best.npz any more: it is neither claimed nor copied.
    copy = tmp_path / "copy.npz"
    r = run_script("train.py", "--resume", run, "--epochs", "4", "--lr-decay", "1", "--save-best", copy)
    assert r.returncode == 0, r.stderr
    assert "copied" not in r.stdout
    if copy.exists():  # only if epoch 4 beat the first run's best: then this run wrote it
        assert checkpoint.load(copy).state["epoch"] == 4 and f"(kept in {copy})" in r.stdout
    else:
        assert f"(not kept in {copy}" in r.stdout
    assert checkpoint.load(best).state == other
    # --save-best on the checkpoint being resumed (with --save elsewhere) would replace it.
    r = run_script("train.py", "--resume", run, "--epochs", "5", "--save", tmp_path / "c.npz", "--save-best", run)
    assert r.returncode == 2 and f"--save-best {run} is the file given to --resume" in r.stderr


def test_a_pipe_as_data_and_a_directory_name_as_output_are_refused(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    r = run_script("train.py", "--data", fifo, *TINY, "--epochs", "1", timeout=60)
    assert r.returncode == 1 and "is not a regular file (a device, pipe or socket); give a text file" in r.stderr
    r = run_script("train.py", "--save", str(tmp_path / "x.npz") + os.sep, *TINY, "--epochs", "1")
    assert r.returncode == 2 and "is a directory; give a file name" in r.stderr
    assert not (tmp_path / "x.npz").exists()
