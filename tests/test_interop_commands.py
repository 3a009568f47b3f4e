"""`minirnn export` and `minirnn import`, and `train --init-from`: a checkpoint goes out
and comes back bit for bit with its vocabulary, text mode and activation; an imported
checkpoint is read by generate, gradflow and train; bad input is one clear line."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from minirnn import checkpoint, interop
from minirnn.commands import export, import_
from minirnn.config import Config
from minirnn.data import load_corpus
from minirnn.errors import CheckpointError, DataError, UsageError
from minirnn.gradcheck import random_params
from minirnn.safetensors_io import load_safetensors, save_safetensors

from helpers import ROOT, run_script

TEXT = "the quick brown fox jumps over the lazy dog and runs far away into the hills. " * 30


def make_checkpoint(path, cell="lstm", L=2, E=3, H=4, dtype="float64", activation="tanh", data=None,
                    text_mode="letters", seed=0):
    """A small model of the book's (or data's) vocabulary, saved as train saves one."""
    vocab = load_corpus(data, text_mode=text_mode, max_tokens=0).vocab
    params = random_params(len(vocab), H, np.random.default_rng(seed), cell=cell, num_layers=L,
                           embed_size=E or None, dtype=dtype)
    cfg = Config(cell=cell, num_layers=L, embed_size=E, num_hiddens=H, dtype=dtype, activation=activation,
                 data=data, text_mode=text_mode, sample_prefix="the").validated()
    checkpoint.save(path, params, vocab, cfg, state={})
    return checkpoint.load(path)


@pytest.mark.parametrize("cell, activation, layout, dtype", [
    ("lstm", "tanh", "torch", "float64"), ("rnn", "relu", "torch", "float32"), ("gru", "tanh", "keras", "float32"),
    ("rnn", "tanh", "keras", "float64")])
def test_export_then_import_gives_the_checkpoint_back_bit_for_bit(tmp_path, capsys, cell, activation, layout, dtype):
    raw = cell == "gru"
    data = tmp_path / "text.txt"
    data.write_text(TEXT + "ÄÖ!")
    source = make_checkpoint(tmp_path / "a.npz", cell=cell, activation=activation, dtype=dtype,
                             data=str(data) if raw else None, text_mode="raw" if raw else "letters")
    assert export.main([str(tmp_path / "a.npz"), "-o", str(tmp_path / "m.safetensors"), "--layout", layout]) == 0
    assert f"in the {layout} layout" in capsys.readouterr().out
    arrays, meta = load_safetensors(tmp_path / "m.safetensors")
    assert json.loads(meta["vocab"]) == source.vocab.idx_to_token and json.loads(meta["activation"]) == activation
    assert json.loads(meta["text_mode"]) == source.config.text_mode and json.loads(meta["layout"]) == layout
    assert import_.main([str(tmp_path / "m.safetensors"), "-o", str(tmp_path / "b.npz")]) == 0
    back = checkpoint.load(tmp_path / "b.npz")
    assert back.vocab == source.vocab and not back.state
    for key in ("cell", "num_layers", "num_hiddens", "embed_size", "activation", "text_mode", "dtype", "sample_prefix"):
        assert getattr(back.config, key) == getattr(source.config, key), key
    assert list(back.params) == list(source.params)
    assert all(back.params[k].tobytes() == a.tobytes() and back.params[k].dtype == a.dtype
               for k, a in source.params.items())


def test_export_can_change_the_precision(tmp_path):
    make_checkpoint(tmp_path / "a.npz", dtype="float32")
    export.main([str(tmp_path / "a.npz"), "-o", str(tmp_path / "m.safetensors"), "--dtype", "float64"])
    arrays, _ = load_safetensors(tmp_path / "m.safetensors")
    assert {a.dtype for a in arrays.values()} == {np.dtype("float64")}


def test_the_books_gru_is_refused_for_torch_and_nothing_is_written(tmp_path):
    make_checkpoint(tmp_path / "gru.npz", cell="gru")
    r = run_script("export.py", tmp_path / "gru.npz", "-o", tmp_path / "g.safetensors")
    assert r.returncode == 2 and r.stderr.count("\n") == 1
    assert "nn.GRU is not the book's GRU" in r.stderr and "--layout keras" in r.stderr
    assert os.listdir(tmp_path) == ["gru.npz"]


def test_the_torch_gru_cell_files_model_goes_to_nn_gru_and_back(tmp_path):
    small = ["--num-hiddens", 6, "--num-layers", 2, "--embed-size", 3, "--max-tokens", 2000, "--epochs", 1]
    r = run_script("train.py", "--cell", "examples/torch_gru", *small, "--save", tmp_path / "tg.npz")
    assert r.returncode == 0, r.stderr
    r = run_script("export.py", tmp_path / "tg.npz", "-o", tmp_path / "tg.safetensors")
    assert r.returncode == 0 and "nn.GRU(3, 6, num_layers=2)" in r.stdout, r.stderr
    arrays, meta = load_safetensors(tmp_path / "tg.safetensors")
    assert arrays["rnn.weight_hh_l1"].shape == (18, 6) and json.loads(meta["cell"]) == "torch_gru"
    r = run_script("import.py", tmp_path / "tg.safetensors", "-o", tmp_path / "back.npz")
    assert r.returncode == 0 and "a model of the shipped cell file examples/torch_gru" in r.stdout, r.stderr
    before, after = checkpoint.load(tmp_path / "tg.npz"), checkpoint.load(tmp_path / "back.npz")
    assert after.cell["name"] == "torch_gru" and after.cell["sha256"] == before.cell["sha256"]
    assert list(after.params) == list(before.params)
    assert all(after.params[k].tobytes() == before.params[k].tobytes() for k in before.params)
    for cell in (["--cell", "examples/torch_gru"], []):  # the shipped file is package code: taken as recorded
        r = run_script("generate.py", "--checkpoint", tmp_path / "back.npz", *cell, "-n", 5)
        assert r.returncode == 0, r.stderr
    keras = run_script("export.py", tmp_path / "tg.npz", "-o", tmp_path / "k.safetensors", "--layout", "keras")
    assert keras.returncode == 2 and "export it with --layout torch" in keras.stderr
    edited = tmp_path / "torch_gru.py"  # the same NAME, other code: its equations may not be nn.GRU's
    edited.write_text((ROOT / "minirnn" / "cells" / "examples" / "torch_gru.py").read_text() + "\n# mine\n")
    r = run_script("train.py", "--cell", edited, *small, "--save", tmp_path / "mine.npz")
    assert r.returncode == 0, r.stderr
    r = run_script("export.py", tmp_path / "mine.npz", "-o", tmp_path / "m.safetensors")
    assert r.returncode == 2 and "code differs from the shipped" in r.stderr and "sha256" in r.stderr
    assert not (tmp_path / "m.safetensors").exists()


def test_an_imported_checkpoint_serves_generate_gradflow_and_train_init_from(tmp_path):
    make_checkpoint(tmp_path / "a.npz", cell="lstm", dtype="float32")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run = lambda *a: subprocess.run([sys.executable, "-m", "minirnn", *map(str, a)], capture_output=True,  # noqa
                                    text=True, env=env, timeout=300)
    r = run("export", tmp_path / "a.npz", "-o", tmp_path / "m.safetensors")
    assert r.returncode == 0, r.stderr
    r = run_script("import.py", tmp_path / "m.safetensors", "-o", tmp_path / "b.npz")
    assert r.returncode == 0 and "train --init-from" in r.stdout, r.stderr
    r = run_script("generate.py", "--checkpoint", tmp_path / "b.npz", "-n", "5")
    assert r.returncode == 0 and r.stdout.startswith("the"), r.stderr
    r = run_script("gradflow.py", "--checkpoint", tmp_path / "b.npz", "--num-steps", "6")
    assert r.returncode == 0 and "b.npz: lstm, H=4, 2 layers, embedding 3" in r.stdout, r.stderr
    r = run_script("train.py", "--resume", tmp_path / "b.npz", "--epochs", "1")
    assert r.returncode == 1 and f"--init-from {tmp_path / 'b.npz'} instead of --resume" in r.stderr
    # A new run from the imported weights; with lr 0 they come out unchanged, bit for bit.
    r = run_script("train.py", "--init-from", tmp_path / "b.npz", "--epochs", "1", "--lr", "0", "--batch-size", "4",
                   "--num-steps", "8", "--max-tokens", "500", "--save", tmp_path / "c.npz")
    assert r.returncode == 0 and "starting from the weights of" in r.stdout, r.stderr
    start, after = checkpoint.load(tmp_path / "b.npz"), checkpoint.load(tmp_path / "c.npz")
    assert after.config.init_from == str(tmp_path / "b.npz") and after.config.cell == "lstm"
    assert after.config.num_layers == 2 and after.config.embed_size == 3 and after.state["epoch"] == 1
    assert all(after.params[k].tobytes() == a.tobytes() for k, a in start.params.items())


def test_init_from_refuses_other_model_options_another_vocabulary_and_resume(tmp_path):
    from minirnn.commands import train

    make_checkpoint(tmp_path / "a.npz", cell="rnn", L=1, E=0)
    for argv, error, message in (
            (["--num-hiddens", "8"], UsageError, "--num-hiddens 8 conflicts with --init-from .* --num-hiddens 4"),
            (["--cell", "gru"], UsageError, "--cell gru conflicts"),
            (["--text-mode", "raw"], DataError, "another vocabulary"),
            (["--resume", str(tmp_path / "a.npz")], UsageError, "--init-from cannot be combined with --resume"),
            (["--save", str(tmp_path / "a.npz")], UsageError, "is the file given to --init-from")):
        with pytest.raises(error, match=message):
            train.main(["--init-from", str(tmp_path / "a.npz"), "--epochs", "1", *argv])


def test_vocab_from_a_text_reads_it_as_train_reads_a_data_file(tmp_path):
    de = tmp_path / "de.txt"
    de.write_text("Über die Straße ging\nein Mann nach Köln.\n" * 50)
    ckpt = make_checkpoint(tmp_path / "a.npz", cell="rnn", L=1, E=0, H=5, data=str(de), text_mode="words")
    save_safetensors(tmp_path / "sd.safetensors", interop.to_torch(ckpt.params))
    assert import_.main([str(tmp_path / "sd.safetensors"), "-o", str(tmp_path / "b.npz"),
                         "--vocab-from", str(de)]) == 0
    back = checkpoint.load(tmp_path / "b.npz")
    assert back.vocab == ckpt.vocab and back.config.text_mode == "words" and "ü" in back.vocab.idx_to_token
    assert back.config.sample_prefix == "über die straße"  # generate continues the text's start, as train's model
    with pytest.raises(CheckpointError, match=r"give the text .* and the --text-mode it used \(this was raw\)"):
        import_.main([str(tmp_path / "sd.safetensors"), "-o", str(tmp_path / "c.npz"), "--vocab-from", str(de),
                      "--text-mode", "raw"])


def test_a_state_dict_without_a_vocabulary_needs_vocab_from(tmp_path, capsys):
    ckpt = make_checkpoint(tmp_path / "a.npz", cell="rnn", L=1, E=0, H=5)
    save_safetensors(tmp_path / "sd.safetensors", interop.to_torch(ckpt.params))  # no metadata, as PyTorch saves
    with pytest.raises(UsageError, match="holds no vocabulary .* give --vocab-from CHECKPOINT_OR_TEXT"):
        import_.main([str(tmp_path / "sd.safetensors"), "-o", str(tmp_path / "b.npz")])
    assert not (tmp_path / "b.npz").exists()
    book = ROOT / "minirnn" / "data" / "timemachine.txt"
    for source in (book, tmp_path / "a.npz"):  # the text it was trained on, or a checkpoint
        assert import_.main([str(tmp_path / "sd.safetensors"), "-o", str(tmp_path / "b.npz"),
                             "--vocab-from", str(source)]) == 0
        assert checkpoint.load(tmp_path / "b.npz").vocab == ckpt.vocab
    assert checkpoint.load(tmp_path / "b.npz").config.activation == "tanh"
    with pytest.raises(CheckpointError, match="has 71 tokens but the weights expect V=28; give the text"):
        import_.main([str(tmp_path / "sd.safetensors"), "-o", str(tmp_path / "c.npz"), "--vocab-from", str(book),
                      "--text-mode", "raw"])
    with pytest.raises(UsageError, match="--activation relu applies to rnn models only"):
        save_safetensors(tmp_path / "l.safetensors", interop.to_torch(
            make_checkpoint(tmp_path / "l.npz").params))
        import_.main([str(tmp_path / "l.safetensors"), "-o", str(tmp_path / "c.npz"), "--vocab-from", str(book),
                      "--activation", "relu"])


def test_import_errors_are_one_line_and_write_nothing(tmp_path):
    ckpt = make_checkpoint(tmp_path / "a.npz", cell="rnn", L=1, E=0)
    good = tmp_path / "m.safetensors"
    save_safetensors(good, interop.to_torch(ckpt.params), interop.metadata("torch", "rnn", ckpt.vocab, "letters", "tanh"))
    (tmp_path / "damaged.safetensors").write_bytes(good.read_bytes()[:100])
    sd = interop.to_torch(ckpt.params)
    sd.pop("rnn.bias_hh_l0")
    save_safetensors(tmp_path / "missing.safetensors", sd, interop.metadata("torch", "rnn", ckpt.vocab))
    for argv, message in (
            (["damaged.safetensors"], "damaged.safetensors: not a valid safetensors file: its header claims"),
            (["missing.safetensors"], "missing.safetensors: tensor missing for the torch layout: rnn.bias_hh_l0"),
            (["m.safetensors", "--layout", "keras"], "unexpected tensors for the keras layout.*give --layout torch"),
            (["m.safetensors", "--activation", "relu"], "--activation relu conflicts with"),
            (["m.safetensors", "--vocab-from", "a.npz", "--text-mode", "raw"], "--text-mode raw")):
        r = run_script("import.py", *[tmp_path / a if a.endswith((".safetensors", ".npz")) else a for a in argv],
                       "-o", tmp_path / "out.npz")
        assert r.returncode in (1, 2) and r.stderr.count("\n") == 1, r.stderr
        assert __import__("re").search(message, r.stderr), r.stderr
    assert not (tmp_path / "out.npz").exists()
