"""Bad input gets one clear line and the right exit code; nothing a user has is lost."""
import errno
import json
import os
import signal
import subprocess
import sys
import zipfile

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from minirnn import checkpoint
from minirnn.atomic import atomic_write
from minirnn.backend import BackendError, get_backend
from minirnn.config import Config
from minirnn.data import Corpus, Vocab
from minirnn.errors import CheckpointError, DataError, DivergedError, MinirnnError, OutputError, UsageError
from minirnn.model import init_params
from minirnn.optim import make_optimizer
from minirnn.train import fit, new_state, state_from_dict, state_to_dict

from helpers import ROOT, run_script

SMALL = ["--num-hiddens", "16", "--batch-size", "4", "--num-steps", "8", "--max-tokens", "400", "--epochs", "1"]


def one_line_error(r, code, *fragments):
    assert r.returncode == code, (r.returncode, r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    for f in fragments:
        assert f in lines[0], (f, lines[0])


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("inputs")
    (d / "binary.dat").write_bytes(b"\x00\x01\x02 some text")
    (d / "latin1.txt").write_bytes("café au lait".encode("latin-1"))
    (d / "empty.txt").write_bytes(b"")
    (d / "digits.txt").write_text("1234 5678 90\n")
    (d / "short.txt").write_text("a short text\n")
    (d / "folder").mkdir()
    return d


@pytest.mark.parametrize("args, code, fragments", [
    (["--batch-size", "0"], 2, ["--batch-size", ">= 1"]),
    (["--num-steps", "-3"], 2, ["--num-steps", ">= 1"]),
    (["--num-hiddens", "0"], 2, ["--num-hiddens", ">= 1"]),
    (["--epochs", "0"], 2, ["--epochs", ">= 1"]),
    (["--lr", "-1"], 2, ["--lr", "finite number >= 0"]),
    (["--lr", "nan"], 2, ["--lr", "finite"]),
    (["--lr", "inf"], 2, ["--lr", "finite"]),
    (["--clip", "-0.5"], 2, ["--clip", ">= 0"]),
    (["--batch-size", "x"], 2, ["--batch-size", "invalid int"]),
    (["--device", "tpu"], 2, ["--device", "invalid choice"]),
    (["--bogus"], 2, ["unrecognized arguments: --bogus"]),
    (["--sampling", "random", "--no-detach"], 2, ["--no-detach needs --sampling sequential"]),
    (["--save-every", "2"], 2, ["--save-every needs --save"]),
    (["--max-tokens", "500", "--num-hiddens", "8"], 1, ["500 tokens", "--batch-size 32 x --num-steps 35", "lower"]),
])
def test_bad_options(args, code, fragments):
    one_line_error(run_script("train.py", *args), code, *fragments)


@pytest.mark.parametrize("name, fragments", [
    ("missing.txt", ["no such file"]),
    ("folder", ["is a directory"]),
    ("binary.dat", ["binary file"]),
    ("latin1.txt", ["not valid UTF-8", "offset 3"]),
    ("empty.txt", ["the file is empty"]),
    ("digits.txt", ["no tokens after 'words' preprocessing", "--text-mode raw"]),
    ("short.txt", ["too few for one minibatch", "--batch-size 4 x --num-steps 8"]),
])
def test_bad_data(files, name, fragments):
    one_line_error(run_script("train.py", "--data", files / name, *SMALL), 1, "--data" if name != "short.txt" else "",
                   *fragments)


def test_unreadable_data(files):
    # /proc/self/mem exists and is a file, but reading it from the start fails even for root
    one_line_error(run_script("train.py", "--data", "/proc/self/mem", *SMALL), 1, "cannot be read")
    if os.geteuid() != 0:  # root reads any file, whatever its mode
        path = files / "locked.txt"
        path.write_text("some text")
        path.chmod(0)
        one_line_error(run_script("train.py", "--data", path, *SMALL), 1, "cannot be read")


@pytest.mark.parametrize("option", ["--save", "--log", "--plot"])
def test_bad_output_paths_fail_before_training(tmp_path, option):
    r = run_script("train.py", option, tmp_path / "no" / "such" / "dir" / "out", *SMALL)
    one_line_error(r, 2, option, "does not exist")
    assert "epoch" not in r.stdout
    one_line_error(run_script("train.py", option, "/proc/minirnn-out", *SMALL), 2, option, "cannot write")
    one_line_error(run_script("train.py", option, tmp_path, *SMALL), 2, option, "is a directory")


def test_gpu_errors_name_what_is_missing():
    try:
        get_backend("gpu")
        pytest.skip("a GPU is usable here")
    except MinirnnError:
        pass
    r = run_script("train.py", "--device", "gpu", *SMALL)
    one_line_error(r, 1, "device 'gpu' needs")
    assert "pip install" in r.stderr or "CUDA device" in r.stderr


def without_matplotlib(tmp_path):
    """Environment variables under which `import matplotlib` fails, installed or not."""
    (tmp_path / "block" / "matplotlib").mkdir(parents=True)
    (tmp_path / "block" / "matplotlib" / "__init__.py").write_text("raise ImportError('blocked for a test')\n")
    return {"PYTHONPATH": os.pathsep.join([str(tmp_path / "block"), str(ROOT)])}


def test_plot_without_matplotlib_is_clear(tmp_path):
    # The advice works outside a checkout too (not pip install -e ".[plot]").
    r = run_script("train.py", "--plot", tmp_path / "p.png", *SMALL, env=without_matplotlib(tmp_path))
    one_line_error(r, 1, "--plot needs matplotlib", "pip install matplotlib")


def test_debug_shows_the_traceback(files):
    r = run_script("train.py", "--data", files / "binary.dat", "--debug", *SMALL)
    assert r.returncode == 1 and "Traceback" in r.stderr and "binary file" in r.stderr


# ----------------------------------------------------------------------------- checkpoints
@pytest.fixture(scope="module")
def good_checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("ckpt") / "good.npz"
    vocab = Vocab.build("abc de")
    cfg = Config(num_hiddens=6)
    checkpoint.save(path, init_params(len(vocab), 6), vocab, cfg, {})
    return path


def _members(path):
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def _write_npz(path, arrays):
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize("change, fragment", [
    (lambda m: m.pop("W_hh"), "missing member W_hh"),
    (lambda m: m.update(W_hh=np.zeros((5, 6), np.float32)), "W_hh has shape (5, 6)"),
    (lambda m: m.update(b_q=np.zeros(5, np.float32)), "b_q has shape (5,)"),
    (lambda m: m.update(W_hq=m["W_hq"][:2]), "W_hq has shape (2, 7), expected (6, 7)"),
    (lambda m: m.update(W_hq=m["W_hq"][0]), "W_hq has shape (7,), expected (6, 7)"),
    (lambda m: m.update(W_xh=m["W_xh"].astype(np.int32)), "float32 or all float64"),
    (lambda m: m.update(vocab=np.array(["<unk>", "a", "b"])), "vocabulary has 3 tokens but the weights expect V=7"),
    (lambda m: m.update(vocab=np.array(["a", "<unk>", "b", "c", "d", "e", "f"])), "bad vocabulary"),
    (lambda m: m.update(config=np.array(json.dumps({"num_hiddens": 6, "colour": "red"}))), "unknown option colour"),
    (lambda m: m.update(config=np.array(json.dumps({"num_hiddens": 9}))), "does not match its weights"),
    (lambda m: m.update(config=np.array(json.dumps({"num_hiddens": 6, "data": 5}))), "--data must be a file path"),
    (lambda m: m.update(config=np.array(json.dumps({"num_hiddens": 6, "detach": "no"}))), "detach must be true"),
    (lambda m: m.update(W_hh=np.full((6, 6), np.nan, np.float32)), "W_hh hold NaN or inf"),
    (lambda m: m.update(state=np.array(json.dumps({"epoch": 1}))), "training state is malformed"),
    (lambda m: m.update(format=np.array("something-else")), "unknown format"),
])
def test_inconsistent_checkpoints(tmp_path, good_checkpoint, change, fragment):
    m = _members(good_checkpoint)
    change(m)
    with pytest.raises(CheckpointError, match=None) as e:
        checkpoint.load(_write_npz(tmp_path / "bad.npz", m))
    assert fragment in str(e.value)


def test_pickled_object_arrays_are_refused_without_unpickling(tmp_path, good_checkpoint):
    marker = tmp_path / "unpickled"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    m = _members(good_checkpoint)
    m["vocab"] = np.array([Evil()], dtype=object)
    path = tmp_path / "evil.npz"
    np.savez(path, **m)  # np.savez pickles object arrays
    with pytest.raises(CheckpointError, match="pickled Python objects"):
        checkpoint.load(path)
    assert not marker.exists()


def test_checkpoint_file_errors(tmp_path, good_checkpoint):
    with pytest.raises(CheckpointError, match="no such file"):
        checkpoint.load(tmp_path / "nope.npz")
    with pytest.raises(CheckpointError, match="is not a file"):
        checkpoint.load(tmp_path)
    (tmp_path / "text.npz").write_text("hello")
    with pytest.raises(CheckpointError, match="not an .npz"):
        checkpoint.load(tmp_path / "text.npz")
    raw = good_checkpoint.read_bytes()
    (tmp_path / "cut.npz").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(CheckpointError, match="truncated"):
        checkpoint.load(tmp_path / "cut.npz")
    np.save(tmp_path / "plain.npy", np.zeros(3))
    with pytest.raises(CheckpointError, match="not an .npz"):
        checkpoint.load(tmp_path / "plain.npy")


def test_generate_script_reports_bad_checkpoints(tmp_path):
    (tmp_path / "junk.npz").write_bytes(b"junk")
    one_line_error(run_script("generate.py", "--checkpoint", tmp_path / "junk.npz"), 1, "not an .npz")
    one_line_error(run_script("generate.py", "--checkpoint", tmp_path / "none.npz"), 1, "no such file")


def test_generate_script_prefix_errors(good_checkpoint):
    one_line_error(run_script("generate.py", "--checkpoint", good_checkpoint, "--prefix", ""), 2, "--prefix is empty")
    one_line_error(run_script("generate.py", "--checkpoint", good_checkpoint, "--prefix", "42!"), 2,
                   "empty after 'letters' preprocessing")
    one_line_error(run_script("generate.py", "--checkpoint", good_checkpoint, "-n", "-1"), 2, "-n must be >= 0")
    one_line_error(run_script("generate.py", "--checkpoint", good_checkpoint, "--temperature", "0"), 2,
                   "--temperature must be > 0")
    one_line_error(run_script("generate.py", "--checkpoint", good_checkpoint, "--seed", "-1"), 2,
                   "--seed must be an integer >= 0, got -1")


@settings(max_examples=60)
@given(st.binary(max_size=2000))
def test_random_bytes_as_a_checkpoint(tmp_path_factory, data):
    path = tmp_path_factory.getbasetemp() / "fuzz.npz"
    path.write_bytes(data)
    with pytest.raises(CheckpointError):
        checkpoint.load(path)


@settings(max_examples=60)
@given(st.data())
def test_corrupted_checkpoints_load_or_raise_checkpoint_error(tmp_path_factory, good_checkpoint, data):
    raw = bytearray(good_checkpoint.read_bytes())
    for _ in range(data.draw(st.integers(1, 8))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    raw = raw[: data.draw(st.integers(1, len(raw)))]
    path = tmp_path_factory.getbasetemp() / "corrupt.npz"
    path.write_bytes(bytes(raw))
    try:
        loaded = checkpoint.load(path)
    except CheckpointError:
        return
    assert loaded.params["W_hh"].shape == (6, 6)  # loaded: then it is a consistent checkpoint


# ----------------------------------------------------------------------------- never lose work
def test_atomic_write_keeps_the_old_file_when_a_write_fails(tmp_path):
    path = tmp_path / "out.csv"
    path.write_text("previous content")

    def half_then_crash(f):
        f.write(b"new conte")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with pytest.raises(OutputError, match=r"cannot write .*out\.csv \(No space left on device\); it keeps its previous"):
        atomic_write(path, half_then_crash)  # one clear error, not a traceback
    assert path.read_text() == "previous content"
    assert os.listdir(tmp_path) == ["out.csv"]  # no temporary file left behind


def test_checkpoint_save_failing_halfway_keeps_the_previous_checkpoint(tmp_path, good_checkpoint, monkeypatch):
    path = tmp_path / "m.npz"
    path.write_bytes(good_checkpoint.read_bytes())

    def broken_savez(f, **arrays):
        with zipfile.ZipFile(f, "w") as z:
            z.writestr("W_xh.npy", b"\x93NUMPY partial")
        raise OSError("no space left on device")

    monkeypatch.setattr(checkpoint.np, "savez", broken_savez)
    vocab = Vocab.build("abc de")
    with pytest.raises(OutputError, match="no space left on device"):
        checkpoint.save(path, init_params(len(vocab), 6), vocab, Config(num_hiddens=6), {})
    monkeypatch.undo()
    assert path.read_bytes() == good_checkpoint.read_bytes()
    assert checkpoint.load(path).params["W_hh"].shape == (6, 6)
    assert os.listdir(tmp_path) == ["m.npz"]


TEXT = "the time traveller for so it will be convenient to speak of him was expounding a recondite matter to us "


GATED = dict(cell="lstm", num_layers=2, embed_size=6, dropout=0.3, eval_every=1, lr_decay=0.5)


@pytest.mark.parametrize("model", [{}, {**GATED, "optimizer": "adam"}, {**GATED, "optimizer": "adagrad"},
                                   {**GATED, "optimizer": "sgd"}, {**GATED, "optimizer": "adam", "ensemble": 3}],
                         ids=["book", "adam", "adagrad", "sgd", "ensemble"])
def test_interrupted_and_resumed_run_is_bit_for_bit_identical(tmp_path, model):
    """Stop mid-epoch, save (with the optimizer's state), load, resume: the parameters,
    the history and the learning rate equal an uninterrupted run's; for the book's RNN,
    and for a 2-layer LSTM with an embedding, dropout and learning-rate decay (and a
    snapshot ensemble, whose snapshots and figures must match too)."""
    backend = get_backend("cpu")
    vocab = Vocab.build(TEXT)
    corpus = Corpus(vocab.encode(TEXT * 10), vocab, max_tokens=600)
    cfg = Config(batch_size=4, num_steps=10, num_hiddens=24, epochs=6, print_every=2, seed=5, **model)
    straight = new_state(cfg, len(vocab), backend)
    assert fit(cfg, corpus, backend, straight)

    calls = {"n": 0}

    def stop_after_17_minibatches():
        calls["n"] += 1
        return calls["n"] >= 17

    first = new_state(cfg, len(vocab), backend)
    assert not fit(cfg, corpus, backend, first, should_stop=stop_after_17_minibatches)
    assert first.batch > 0  # stopped in the middle of an epoch
    path = tmp_path / "run.npz"
    checkpoint.save(path, first.params, vocab, cfg, state_to_dict(first), first.H,
                    optimizer_state=first.optimizer.state_dict(), snapshots=first.snapshots)
    ck = checkpoint.load(path)
    resumed = state_from_dict(ck.state, ck.params, ck.H, snapshots=ck.snapshots)
    resumed.optimizer = make_optimizer(ck.config.optimizer, resumed.lr, resumed.params)
    resumed.optimizer.load_state_dict(ck.optimizer_state)
    assert fit(ck.config, corpus, backend, resumed)
    for k in straight.params:
        assert np.array_equal(straight.params[k], resumed.params[k]), k
    assert [r["train_ppl"] for r in straight.history] == [r["train_ppl"] for r in resumed.history]
    assert [r["lr"] for r in straight.history] == [r["lr"] for r in resumed.history]
    assert [r.get("ensemble_ppl") for r in straight.history] == [r.get("ensemble_ppl") for r in resumed.history]
    assert (straight.best_epoch, straight.best_heldout) == (resumed.best_epoch, resumed.best_heldout)
    if "ensemble" in model:
        assert straight.snapshots.epochs == resumed.snapshots.epochs == [4, 5, 6]
        assert all(np.array_equal(a[k], b[k]) for a, b in zip(straight.snapshots.params, resumed.snapshots.params)
                   for k in a)


def test_ctrl_c_saves_and_resume_finishes_identically(tmp_path):
    """The scripts as a user runs them: Ctrl-C, exit 130, resume; same parameters as one straight run."""
    args = ["--num-hiddens", "32", "--batch-size", "8", "--num-steps", "10", "--max-tokens", "2000",
            "--epochs", "60", "--print-every", "1", "--seed", "2"]
    straight, interrupted = tmp_path / "straight.npz", tmp_path / "interrupted.npz"
    assert run_script("train.py", *args, "--save", straight).returncode == 0

    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    p = subprocess.Popen([sys.executable, str(ROOT / "scripts" / "train.py"), *args, "--save", str(interrupted)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    for line in p.stdout:  # wait until training runs, then press Ctrl-C
        if line.startswith("epoch    3"):
            p.send_signal(signal.SIGINT)
            break
    out, err = p.communicate(timeout=120)
    if p.returncode == 0:
        pytest.skip("the run finished before Ctrl-C arrived")
    assert p.returncode == 130, err
    assert f"resume with: python {ROOT / 'scripts' / 'train.py'} --resume {interrupted}" in err  # as it was typed
    stopped = checkpoint.load(interrupted)
    assert 3 <= stopped.state["epoch"] < 60

    r = run_script("train.py", "--resume", interrupted)
    assert r.returncode == 0, r.stderr
    assert "resuming at epoch" in r.stdout
    a, b = checkpoint.load(straight), checkpoint.load(interrupted)
    for k in a.params:
        assert np.array_equal(a.params[k], b.params[k]), k
    conflict = run_script("train.py", "--resume", interrupted, "--clip", "0.5")  # --lr may change; --clip may not
    one_line_error(conflict, 2, "--clip 0.5 conflicts with the checkpoint's 1")
    conflict = run_script("train.py", "--resume", interrupted, "--no-detach")  # the flag the user typed, named as such
    one_line_error(conflict, 2, "--no-detach conflicts with the checkpoint, which was trained with detaching")


def test_divergence_exits_1_and_keeps_the_last_good_checkpoint(tmp_path):
    path = tmp_path / "m.npz"
    args = ["--num-hiddens", "16", "--batch-size", "4", "--num-steps", "8", "--max-tokens", "400", "--print-every", "1"]
    assert run_script("train.py", *args, "--epochs", "2", "--save", path).returncode == 0
    before = path.read_bytes()
    r = run_script("train.py", *args, "--epochs", "30", "--lr", "1e7", "--clip", "0", "--activation", "relu",
                   "--save", path, "--save-every", "1")
    one_line_error(r, 1, "diverged in epoch", "--lr", "--clip")
    epoch = int(r.stderr.split("diverged in epoch ")[1].split(":")[0])
    ck = checkpoint.load(path)  # the checkpoint on disk is the last good one
    assert all(np.isfinite(v).all() for v in ck.params.values())
    assert path.read_bytes() == before if epoch == 1 else ck.state["epoch"] == epoch - 1


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_divergence_after_periodic_saves_keeps_the_last_of_them(tmp_path):
    """A blow-up in epoch 4 stops training there; the checkpoint saved after epoch 3 stays."""
    backend = get_backend("cpu")
    vocab = Vocab.build(TEXT)
    corpus = Corpus(vocab.encode(TEXT * 10), vocab, max_tokens=600)
    cfg = Config(batch_size=4, num_steps=10, num_hiddens=8, epochs=10)
    state = new_state(cfg, len(vocab), backend)
    path = tmp_path / "m.npz"

    def save_then_blow_up(state):
        checkpoint.save(path, state.params, vocab, cfg, state_to_dict(state))
        if state.epoch == 3:
            state.params["W_hq"][0, 0] = np.inf  # what an exploding gradient leaves behind

    with pytest.raises(DivergedError, match="diverged in epoch 4"):
        fit(cfg, corpus, backend, state, on_epoch=save_then_blow_up)
    ck = checkpoint.load(path)
    assert ck.state["epoch"] == 3 and np.isfinite(ck.params["W_hq"]).all()


@settings(max_examples=15)
@given(st.text(max_size=400), st.sampled_from(["letters", "raw"]))
def test_any_text_trains_one_epoch_or_fails_clearly(tmp_path_factory, text, mode):
    from minirnn.data import load_corpus
    path = tmp_path_factory.getbasetemp() / "corpus.txt"
    path.write_bytes(text.encode("utf-8", "surrogatepass"))
    cfg = Config(batch_size=2, num_steps=3, num_hiddens=4, epochs=1, text_mode=mode, max_tokens=0)
    try:
        corpus = load_corpus(path, text_mode=mode, max_tokens=0)
        state = new_state(cfg, len(corpus.vocab), get_backend("cpu"))
        assert fit(cfg, corpus, get_backend("cpu"), state)
    except (DataError, UsageError) as e:
        assert str(e) and "\n" not in str(e)
        return
    assert state.epoch == 1 and np.isfinite(state.history[0]["train_ppl"])


def test_out_of_memory_is_one_line():
    one_line_error(run_script("train.py", "--num-hiddens", "300000", "--max-tokens", "400", "--batch-size", "4",
                              "--num-steps", "8"), 1, "out of memory", "--num-hiddens")


def test_a_tiny_temperature_is_greedy():
    vocab = Vocab.build(TEXT)
    params = {k: v * 100 for k, v in init_params(len(vocab), 16, seed=3).items()}
    from minirnn.generate import predict
    greedy = predict("time", 40, params, vocab)
    for tau in (1e-30, 1e-300):
        assert predict("time", 40, params, vocab, temperature=tau, seed=1) == greedy


def test_resume_refuses_another_text_and_a_broken_position():
    backend = get_backend("cpu")
    vocab = Vocab.build(TEXT)
    cfg = Config(batch_size=4, num_steps=10, num_hiddens=8, epochs=2)
    corpus = Corpus(vocab.encode(TEXT * 10), vocab, max_tokens=600)
    state = new_state(cfg, len(vocab), backend)
    fit(cfg.replace(epochs=1), corpus, backend, state)
    other = Corpus(vocab.encode((TEXT * 10)[::-1]), vocab, max_tokens=600)  # same characters, other text
    with pytest.raises(DataError, match="not the one the run was trained on"):
        fit(cfg, other, backend, state)
    state.batch, state.H = 3, None  # mid-epoch, but without the carried state
    with pytest.raises(CheckpointError, match="without its hidden state"):
        fit(cfg, corpus, backend, state)
    state.batch = 10_000
    with pytest.raises(CheckpointError, match="does not fit"):
        fit(cfg, corpus, backend, state)


def test_device_default_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("MINIRNN_DEVICE", "auto")
    assert Config().device == "auto"
    monkeypatch.setenv("MINIRNN_DEVICE", "GPU")
    assert Config().device == "gpu"
    monkeypatch.setenv("MINIRNN_DEVICE", "tpu")
    with pytest.raises(UsageError, match=r"MINIRNN_DEVICE='tpu' is not a device: set it to one of cpu, gpu, auto"):
        Config.from_dict({})
    with pytest.raises(BackendError, match=r"MINIRNN_DEVICE='tpu' is not a device"):
        get_backend()
    with pytest.raises(UsageError, match="--device must be one of"):  # given, not from the environment
        Config.from_dict({"device": "abc"})
    monkeypatch.delenv("MINIRNN_DEVICE")
    assert Config().device == "cpu"


def test_resume_without_matplotlib_warns_and_keeps_the_plot_path(tmp_path):
    pytest.importorskip("matplotlib")
    ckpt, plot = tmp_path / "m.npz", tmp_path / "m.png"
    assert run_script("train.py", *SMALL, "--save", ckpt, "--plot", plot).returncode == 0
    r = run_script("train.py", "--resume", ckpt, "--epochs", 2, env=without_matplotlib(tmp_path))
    assert r.returncode == 0, r.stderr
    assert r.stderr == (f"warning: the checkpoint's --plot {plot} needs matplotlib, which is not installed: "
                        f"no plot this time (pip install matplotlib)\n")
    assert checkpoint.load(ckpt).outputs == {"plot": str(plot), "save": str(ckpt)}  # a later resume with matplotlib draws it again
