"""scripts/gradflow.py as a user runs it: the table, the plot, checkpoints, bad input."""
import importlib.util
import re

import numpy as np
import pytest

from helpers import run_script
from minirnn.analysis import gradient_flow
from minirnn.data import load_corpus
from minirnn.model import init_params

HAS_MATPLOTLIB = importlib.util.find_spec("matplotlib") is not None


def rows(out):
    """{k: [numbers]} of every table row printed, per model, in order."""
    tables = []
    for line in out.splitlines():
        if line.startswith("gradient flow through time"):
            tables.append({})
        m = re.match(r"^\s+(\d+)\s+(\d+)\s+(.*)$", line)
        if m and tables:
            tables[-1][int(m.group(1))] = [float(x) for x in m.group(3).split()]
    return tables


def test_the_table_for_each_cell_is_the_analysis_and_the_plot_is_a_png(tmp_path):
    plot = tmp_path / "flow.png"
    args = ["--cell", "rnn", "--cell", "gru", "--cell", "lstm", "--num-hiddens", 8, "--num-steps", 20]
    r = run_script("gradflow.py", *args, *(["--plot", plot] if HAS_MATPLOTLIB else []), timeout=120)
    assert r.returncode == 0, r.stderr
    tables = rows(r.stdout)
    assert len(tables) == 3 and all(0 in t and 19 in t for t in tables)
    assert "lstm, H=8" in r.stdout and "|dl_T/dC_t|" in r.stdout and "per step" in r.stdout
    # the printed numbers are gradient_flow's, on the book's first 21 tokens
    ids = load_corpus(max_tokens=21).train.astype(np.int64)
    flow = gradient_flow(init_params(28, 8), ids[None, :20], ids[None, 1:21])
    for k in (0, 19):
        assert tables[0][k] == pytest.approx([flow.dlast_dH[0, k, 0], flow.dL_dH[0, k, 0], flow.jac_H[0, k, 0]],
                                             rel=1e-3)
    if HAS_MATPLOTLIB:
        assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_checkpoints_are_compared_on_their_own_vocabulary(tmp_path):
    paths = []
    for cell in ("rnn", "lstm"):
        paths.append(tmp_path / f"{cell}.npz")
        r = run_script("train.py", "--cell", cell, "--num-layers", 2, "--num-hiddens", 6, "--epochs", 2,
                       "--max-tokens", 600, "--batch-size", 4, "--num-steps", 10, "--save", paths[-1], timeout=120)
        assert r.returncode == 0, r.stderr
    r = run_script("gradflow.py", "--checkpoint", paths[0], "--checkpoint", paths[1], "--num-steps", 12,
                   "--batch-size", 2, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "rnn.npz: rnn (tanh), H=6, 2 layers, trained 2 epochs" in r.stdout
    assert "lstm.npz: lstm, H=6, 2 layers" in r.stdout and "geometric mean over 2 sequences" in r.stdout
    assert [sorted(t)[-1] for t in rows(r.stdout)] == [11, 11]


@pytest.mark.parametrize("args, code, message", [
    (["--num-steps", "0"], 2, "--num-steps must be >= 1"),
    (["--cell", "gru", "--activation", "relu"], 2, "--activation relu applies to --cell rnn only"),
    (["--checkpoint", "no-such.npz"], 1, "no such file"),
    (["--num-hiddens", "4", "--num-steps", "400000"], 1, "too few for --batch-size 1 x --num-steps 400000"),
    (["--cell", "cnn"], 2, "invalid choice"),
])
def test_bad_input_is_one_line(args, code, message):
    r = run_script("gradflow.py", *args, timeout=60)
    assert r.returncode == code
    assert message in r.stderr and len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
