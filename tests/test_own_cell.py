"""A cell in the simple protocol (a plain file): loading and its checks, the engine
running it, the reference versions of the built-in cells against the fast ones, the
shipped examples' gradients, the step check, and the CLI with --cell PATH."""
import json
import os
import re
import shutil
import textwrap
import zipfile

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from minirnn.cells import CellError, get_cell, load_cell
from minirnn.cells.protocol import PACKAGE_DIR
from minirnn.cells.steps import FastSteps
from minirnn.gradcheck import check_gradients, check_step, random_params
from minirnn.loss import softmax_cross_entropy
from minirnn.model import init_params, model_spec, rnn_backward, rnn_forward

from helpers import run_script

EXAMPLES = ("examples/torch_gru", "examples/cifg")
CIFG = os.path.join(PACKAGE_DIR, "examples", "cifg.py")
TORCH_GRU = os.path.join(PACKAGE_DIR, "examples", "torch_gru.py")


def _loss_and_grads(params, X, Y, state, G, cell):
    logits, state_T, cache = rnn_forward(params, X, state, cell=cell)
    loss, dlogits = softmax_cross_entropy(logits, Y.T.reshape(-1))
    members = state_T if isinstance(state_T, tuple) else (state_T,)
    Gs = G if isinstance(G, tuple) else (G,)
    loss = float(loss) + sum(float((g * s).sum()) for g, s in zip(Gs, members))
    grads, dstate_0 = rnn_backward(dlogits, cache, G)
    return loss, {k: v.copy() for k, v in grads.items()}, tuple(np.array(d) for d in
                                                                 (dstate_0 if isinstance(dstate_0, tuple) else (dstate_0,)))


def _draw(cell, L, E, B, T, H, seed, V, scale):
    """A random model of `cell`, a minibatch, a state and the gradient G at the final state
    (a bare array for a one-state cell, a tuple otherwise)."""
    rng = np.random.default_rng(seed)
    params = random_params(V, H, rng, cell=cell, num_layers=L, embed_size=E or None)
    X, Y = rng.integers(0, V, (B, T)), rng.integers(0, V, (B, T))
    shape = (B, H) if L == 1 else (L, B, H)
    n = len(get_cell(cell).STATES)
    state, G = (tuple(rng.normal(0, scale, shape) for _ in range(n)) for _ in range(2))
    return (params, X, Y, state, G) if n > 1 else (params, X, Y, state[0], G[0])


def _agrees(row):
    """A checked array passes, or its gradient is so small (tiny drawn sizes: H 1, T 1) that
    the loss's rounding hides it: unresolved, and the backward agrees within that rounding."""
    return row["verdict"] == "pass" or (row["reason"].startswith("rounding")
                                        and row["abs_error"] <= 3 * row["est_error"])


# ----------------------------------------------------------------------------- reference = fast path
@settings(max_examples=12)
@given(cell=st.sampled_from(["rnn", "gru", "lstm"]), L=st.integers(1, 3), E=st.sampled_from([0, 3]),
       B=st.integers(1, 3), T=st.integers(1, 5), H=st.integers(1, 5), seed=st.integers(0, 2 ** 16))
def test_the_reference_cells_give_the_fast_paths_loss_and_gradients(cell, L, E, B, T, H, seed):
    params, X, Y, state, G = _draw(cell, L, E, B, T, H, seed, V=6, scale=1.0)
    fast = _loss_and_grads(params, X, Y, state, G, cell)
    ref = _loss_and_grads(params, X, Y, state, G, f"reference/{cell}")
    assert abs(fast[0] - ref[0]) <= 1e-12 * max(1.0, abs(fast[0]))
    assert list(fast[1]) == list(ref[1])
    for k in fast[1]:
        np.testing.assert_allclose(ref[1][k], fast[1][k], rtol=0, atol=1e-12, err_msg=k)
    for a, b in zip(fast[2], ref[2]):
        np.testing.assert_allclose(b, a, rtol=0, atol=1e-12)


# ----------------------------------------------------------------------------- the examples' gradients
@settings(max_examples=6)
@given(cell=st.sampled_from(EXAMPLES), L=st.integers(1, 2), E=st.sampled_from([0, 2]), B=st.integers(1, 2),
       T=st.integers(1, 4), H=st.integers(1, 4), seed=st.integers(0, 2 ** 16))
def test_the_examples_backward_matches_central_differences(cell, L, E, B, T, H, seed):
    params, X, Y, state, G = _draw(cell, L, E, B, T, H, seed, V=5, scale=0.5)
    n = len(get_cell(cell).STATES)
    rows = check_gradients(params, X, Y, state, dstate_T=G, cell=cell)
    assert [r["name"] for r in rows][-n:] == [f"{s}0" for s in get_cell(cell).STATES]
    assert all(_agrees(r) for r in rows), [(r["name"], r["reason"]) for r in rows if not r["passed"]]


@settings(max_examples=10)
@given(which=st.sampled_from(["rnn", "rnn-relu", "gru", "lstm", *EXAMPLES, "reference/rnn", "reference/gru",
                              "reference/lstm"]), B=st.integers(1, 4), H=st.integers(1, 5), seed=st.integers(0, 2 ** 16))
def test_every_step_backward_matches_differences_of_its_forward(which, B, H, seed):
    cell = FastSteps("rnn", "relu") if which == "rnn-relu" else FastSteps(which) if "/" not in which else get_cell(which)
    rows = check_step(cell, B, H, seed=seed)
    blocks = [f"dA_t[{gate}]" for gate in cell.GATES] if len(cell.GATES) > 1 else ["dA_t"]
    names = blocks + [f"d{s}_prev" for s in cell.STATES] + [f"d{k}" for k in cell.recurrent_params(H)]
    assert [r["name"] for r in rows] == names
    assert all(r["verdict"] != "FAIL" for r in rows), [(r["name"], r["reason"]) for r in rows]
    if which != "rnn-relu":  # its kinks may leave arrays unresolved
        assert all(_agrees(r) for r in rows), [(r["name"], r["reason"]) for r in rows if not r["passed"]]


def _corrupt(tmp_path, source, old, new, name="broken.py"):
    text = open(source).read()
    assert old in text
    path = tmp_path / name
    path.write_text(text.replace(old, new, 1))
    return str(path)


@pytest.mark.parametrize("old, new, corrupted", [
    ("dC_prev = dC * F", "dC_prev = dC * (1 - F)", "dC_prev"),
    ('"W_ho": H_prev.T @ dA_o', '"W_ho": C_prev.T @ dA_o', "dW_ho"),
    # a wrong block of dA_t is named, and flows on into dH_prev and that block's dW, and nowhere else
    ("dA_c = dC * (1 - F) * (1 - Cc * Cc)", "dA_c = dC * (1 - F) * (1 - Cc)", "dA_t[c] dH_prev dW_hc"),
    ("dA_o = dH * tC * O * (1 - O)", "dA_o = dH * tC * O", "dA_t[o] dH_prev dW_ho"),
])
def test_step_check_names_the_array_a_wrong_line_corrupts(tmp_path, old, new, corrupted):
    path = _corrupt(tmp_path, CIFG, old, new)
    rows = check_step(load_cell(path), 3, 4)
    assert [r["name"] for r in rows if r["verdict"] == "FAIL"] == corrupted.split()


def test_gradcheck_cli_on_the_cifg_example_and_a_broken_copy(tmp_path):
    ok = run_script("gradcheck.py", "--cell", CIFG, "--num-layers", 2, "--embed-size", 5)
    assert ok.returncode == 0 and ok.stdout.splitlines()[-1] == "all 23 arrays pass", ok.stdout + ok.stderr
    broken = _corrupt(tmp_path, CIFG, "dC_prev = dC * F", "dC_prev = dC * (1 - F)")
    full = run_script("gradcheck.py", "--cell", broken, "--num-layers", 2, "--embed-size", 5)
    assert full.returncode == 1 and "GRADIENT CHECK FAILED" in full.stdout
    step = run_script("gradcheck.py", "--cell", broken, "--step")
    assert step.returncode == 1
    failed = [line.split()[0] for line in step.stdout.splitlines() if "  FAIL:" in line]
    assert failed == ["dC_prev"], step.stdout
    builtin = run_script("gradcheck.py", "--cell", "gru", "--step")
    assert builtin.returncode == 0 and "gru_step_backward" in builtin.stdout.splitlines()[0]


# ----------------------------------------------------------------------------- the checks on load
GOOD = '''
from minirnn.backend import array_module
NAME = "mine"
GATES = ("h",)
STATES = ("H",)

def step_forward(A_t, state, W):
    xp = array_module(A_t)
    H_t = xp.tanh(A_t + state[0] @ W["W_hh"])
    return (H_t,), (state[0], H_t)

def step_backward(dstate, cache_t, W):
    H_prev, H_t = cache_t
    dZ = dstate[0] * (1 - H_t ** 2)
    return dZ, (dZ @ W["W_hh"].T,), {"W_hh": H_prev.T @ dZ}
'''


@pytest.mark.parametrize("old, new, message", [
    ("def step_backward", "def step_backwards", "missing step_backward"),
    ("def step_forward(A_t, state, W)", "def step_forward(A_t, state)", "step_forward takes 2 argument(s)"),
    ('GATES = ("h",)', 'GATES = ("h", "h")', "GATES has a repeated name"),
    ('STATES = ("H",)', 'STATES = ("S",)', "STATES[0] must be 'H'"),
    ('NAME = "mine"', 'NAME = "my cell"', "NAME must be a short name"),
    ("return dZ, (", "return dZ[:, :1], (", "step_backward's dA_t has shape (2, 1), expected (2, 3)"),
    ("return (H_t,), (state[0], H_t)", "return (H_t.astype('float32'),), (state[0], H_t)",
     "step_forward's new_state H has dtype float32"),
    ("H_t = xp.tanh(A_t + state[0] @ W[\"W_hh\"])", "A_t += 1\n    H_t = xp.tanh(A_t + state[0] @ W[\"W_hh\"])",
     "step_forward changes its input A_t in place"),
    ('{"W_hh": H_prev.T @ dZ}', '{"W_h": H_prev.T @ dZ}', "step_backward's dW must be a dict with the keys ['W_hh']"),
    ("return (H_t,), (state[0], H_t)", "return H_t, (state[0], H_t)", "step_forward's new_state must be a tuple"),
    ("dZ = dstate[0]", "dZ = undefined_name", "step_backward raised NameError"),
    ("NAME", "import not_a_module\nNAME", "importing it raised ModuleNotFoundError"),
])
def test_a_broken_cell_file_is_one_line_naming_the_file_and_the_problem(tmp_path, old, new, message):
    path = tmp_path / "cell.py"
    path.write_text(GOOD.replace(old, new, 1))
    with pytest.raises(CellError) as e:
        load_cell(str(path))
    text = str(e.value)
    assert "\n" not in text and text.startswith(f"{path}: ") and message in text, text


def test_the_good_cell_loads_and_errors_name_lines(tmp_path):
    path = tmp_path / "cell.py"
    path.write_text(GOOD)
    cell = load_cell(str(path))
    assert (cell.NAME, cell.GATES, cell.STATES, cell.recurrent_params(4)) == ("mine", ("h",), ("H",), {"W_hh": (4, 4)})
    bad = tmp_path / "bad.py"
    bad.write_text(GOOD.replace("dZ = dstate[0]", "dZ = undefined_name"))
    line = next(i for i, text in enumerate(bad.read_text().splitlines(), 1) if "undefined_name" in text)
    with pytest.raises(CellError, match=rf"\(line {line}\)"):
        load_cell(str(bad))
    with pytest.raises(CellError, match="no such cell file"):
        load_cell(str(tmp_path / "nothing.py"))
    bad.write_text(GOOD.replace("def step_backward(", "def step_backward(:", 1))  # a syntax error: its line, once
    line = next(i for i, text in enumerate(bad.read_text().splitlines(), 1) if "step_backward(:" in text)
    with pytest.raises(CellError) as e:
        load_cell(str(bad))
    assert "SyntaxError" in str(e.value) and str(e.value).count(f"line {line}") == 1, str(e.value)


# ----------------------------------------------------------------------------- the engine and the API
def test_cell_is_a_name_a_path_or_a_module_and_a_protocol_dict_needs_it():
    from minirnn.cells.examples import cifg

    rng = np.random.default_rng(0)
    params = init_params(7, 4, cell=CIFG, dtype="float64")
    assert [k for k in params if k.startswith("W_h") and k != "W_hq"] == ["W_hf", "W_ho", "W_hc"]
    X = rng.integers(0, 7, (2, 3))
    by_path = rnn_forward(params, X, None, cell=CIFG)[0]
    by_module = rnn_forward(params, X, None, cell=cifg)[0]
    by_name = rnn_forward(params, X, None, cell="examples/cifg")[0].copy()
    np.testing.assert_array_equal(by_path, by_name)
    np.testing.assert_array_equal(by_module, by_name)
    with pytest.raises(ValueError, match="pass cell="):
        rnn_forward(params, X, None)
    assert model_spec(params, CIFG).describe() == "cifg (cifg.py)"
    gru = init_params(7, 4, cell="gru")
    assert model_spec(gru).cell == "gru" and model_spec(gru, "reference/gru").cell.NAME == "gru"
    _, _, cache = rnn_forward(gru, X, None, cell="reference/gru")
    with pytest.raises(ValueError, match="the forward ran the gru cell"):
        rnn_backward(None, cache, cell="examples/torch_gru")


def test_recurrent_params_and_init_param_shape_the_model(tmp_path):
    path = tmp_path / "indrnn.py"
    path.write_text(GOOD.replace('@ W["W_hh"].T', '* W["u"]').replace('state[0] @ W["W_hh"]', 'state[0] * W["u"]')
                    .replace('{"W_hh": H_prev.T @ dZ}', '{"u": (H_prev * dZ).sum(axis=0)}')
                    + "\ndef recurrent_params(H):\n    return {'u': (H,)}\n"
                    + "\ndef init_param(name, shape, rng):\n    return rng.uniform(0, 1, shape) if name == 'u' else None\n")
    params = init_params(5, 3, cell=str(path), num_layers=2, dtype="float64")
    assert list(params) == ["W_xh", "b_h", "u", "W_xh_l1", "b_h_l1", "u_l1", "W_hq", "b_q"]
    assert params["u"].shape == (3,) and (params["u"] > 0).all() and (params["u_l1"] > 0).all()
    rng = np.random.default_rng(1)
    p = random_params(5, 3, rng, cell=str(path), num_layers=2)
    rows = check_gradients(p, rng.integers(0, 5, (2, 3)), rng.integers(0, 5, (2, 3)), cell=str(path))
    assert all(r["passed"] for r in rows), rows


def test_check_gradients_names_a_missing_or_misshapen_gradient():
    rng = np.random.default_rng(0)
    params = random_params(5, 3, rng)
    X = rng.integers(0, 5, (2, 3))

    def missing(dlogits, cache, dstate_T):
        grads, d0 = rnn_backward(dlogits, cache, dstate_T)
        return {k: v for k, v in grads.items() if k != "W_hh"}, d0

    def misshapen(dlogits, cache, dstate_T):
        grads, d0 = rnn_backward(dlogits, cache, dstate_T)
        return {**grads, "b_h": grads["b_h"][:2]}, d0

    with pytest.raises(ValueError, match=r"missing returned no gradient for W_hh: expected an array of shape \(3, 3\)"):
        check_gradients(params, X, X, backward=missing)
    with pytest.raises(ValueError, match=r"misshapen returned shape \(2,\) for the gradient of b_h, expected shape \(3,\)"):
        check_gradients(params, X, X, backward=misshapen)


def test_gradient_flow_of_the_reference_gru_is_the_built_in_grus():
    from minirnn.analysis import gradient_flow

    rng = np.random.default_rng(0)
    params = random_params(6, 4, rng, cell="gru", scale=0.5)
    X, Y = rng.integers(0, 6, (2, 5)), rng.integers(0, 6, (2, 5))
    fast = gradient_flow(params, X, Y, power_iterations=None)
    ref = gradient_flow(params, X, Y, power_iterations=None, cell="reference/gru")
    for name in ("dlast_dH", "dL_dH", "jac_H"):
        np.testing.assert_allclose(getattr(ref, name), getattr(fast, name), rtol=1e-10, err_msg=name)
    lstm = random_params(6, 4, rng, cell="lstm", scale=0.5)
    fast, ref = (gradient_flow(lstm, X, Y, power_iterations=None, cell=c) for c in (None, "reference/lstm"))
    for name in ("dlast_dC", "jac_C", "jac_state"):
        np.testing.assert_allclose(getattr(ref, name), getattr(fast, name), rtol=1e-10, err_msg=name)


# ----------------------------------------------------------------------------- the CLI and checkpoints
SMALL = ("--num-hiddens", 8, "--epochs", 2, "--max-tokens", 600, "--batch-size", 4, "--num-steps", 8)


def test_train_generate_resume_with_a_cell_file(tmp_path):
    cell = tmp_path / "cifg.py"
    shutil.copy(CIFG, cell)
    ckpt = tmp_path / "m.npz"
    r = run_script("train.py", "--cell", cell, *SMALL, "--save", ckpt)
    assert r.returncode == 0, r.stderr
    assert "cifg (cifg.py), B=4" in r.stdout.splitlines()[0]
    with zipfile.ZipFile(ckpt) as z:
        assert not any(n.endswith(".py") for n in z.namelist())
    from minirnn import checkpoint
    import hashlib

    record = checkpoint.load(ckpt).cell
    assert record["name"] == "cifg" and record["file"] == "cifg.py"
    assert record["sha256"] == hashlib.sha256(cell.read_bytes()).hexdigest()
    # without the file: refused, and nothing runs
    g = run_script("generate.py", "--checkpoint", ckpt, "-n", 5)
    assert g.returncode == 1 and "give --cell PATH" in g.stderr and "cifg.py" in g.stderr
    g = run_script("generate.py", "--checkpoint", ckpt, "-n", 5, "--cell", cell)
    assert g.returncode == 0 and len(g.stdout) > 5, g.stderr
    other = run_script("generate.py", "--checkpoint", ckpt, "-n", 5, "--cell", TORCH_GRU)
    assert other.returncode == 1 and "NAME 'torch_gru' do not match" in other.stderr
    regated = tmp_path / "regated.py"
    regated.write_text(cell.read_text().replace('GATES = ("f", "o", "c")', 'GATES = ("f", "c", "o")'))
    r = run_script("generate.py", "--checkpoint", ckpt, "-n", 5, "--cell", regated)
    assert r.returncode == 1 and "GATES" in r.stderr
    edited = tmp_path / "edited.py"
    edited.write_text(cell.read_text() + "\n# a comment\n")
    r = run_script("generate.py", "--checkpoint", ckpt, "-n", 5, "--cell", edited)
    assert r.returncode == 0
    assert record["sha256"][:12] in r.stderr and hashlib.sha256(edited.read_bytes()).hexdigest()[:12] in r.stderr
    # resume, with the file again
    r = run_script("train.py", "--resume", ckpt, "--epochs", 3)
    assert r.returncode == 1 and "give --cell PATH" in r.stderr
    r = run_script("train.py", "--resume", ckpt, "--epochs", 3, "--cell", cell)
    assert r.returncode == 0 and "epoch    3" in r.stdout, r.stdout + r.stderr
    flow = run_script("gradflow.py", "--checkpoint", ckpt, "--cell", cell, "--num-steps", 4)
    assert flow.returncode == 0 and "m.npz: cifg (cifg.py)" in flow.stdout and "fresh" not in flow.stdout
    # export maps the built-in cells only: one line, and nothing written
    for layout in ("torch", "keras"):
        e = run_script("export.py", ckpt, "-o", tmp_path / "m.safetensors", "--layout", layout)
        assert e.returncode == 2 and len(e.stderr.strip().splitlines()) == 1, e.stderr
        assert "cell file" in e.stderr and "numpy.load" in e.stderr and not (tmp_path / "m.safetensors").exists()


def test_bench_and_gradflow_take_a_cell_file():
    r = run_script("bench.py", "--cell", "examples/torch_gru", "--configs", "book", "--num-hiddens", 8,
                   "--repeats", 1, "--warmup", 0, "--json")
    assert r.returncode == 0, r.stderr
    row = json.loads(r.stdout)
    assert row["step_ms"] > 0 and row["floor_ms"] > 0
    r = run_script("gradflow.py", "--cell", "gru", "--cell", "examples/torch_gru", "--num-hiddens", 4,
                   "--num-steps", 3)
    assert r.returncode == 0 and "torch_gru (torch_gru.py), H=4" in r.stdout
    bad = run_script("train.py", "--cell", "cnn")
    assert bad.returncode == 2 and re.search(r"invalid choice: 'cnn' \(choose from rnn, gru, lstm", bad.stderr)


INDRNN = '''
from minirnn.backend import array_module
NAME = "indrnn"
GATES = ("h",)
STATES = ("H",)

def recurrent_params(H):
    return {"u": (H,)}

def kinks(cache_t):
    return cache_t[1]

def step_forward(A_t, state, W):
    Z = A_t + W["u"] * state[0]
    return (array_module(A_t).maximum(Z, 0),), (state[0], Z)

def step_backward(dstate, cache_t, W):
    H_prev, Z = cache_t
    dZ = dstate[0] * (Z > 0)
    return dZ, (dZ * W["u"],), {"u": (dZ * H_prev).sum(axis=0)}
'''


@settings(max_examples=5)
@given(seed=st.integers(0, 2 ** 16), L=st.integers(1, 2))
def test_a_relu_cell_files_kinks_are_skipped_by_the_checks(tmp_path_factory, seed, L):
    from minirnn.model import kink_pattern

    path = tmp_path_factory.mktemp("relu") / "indrnn.py"
    path.write_text(INDRNN)
    rng = np.random.default_rng(seed)
    params = random_params(5, 4, rng, cell=str(path), num_layers=L, scale=1.0)
    X, Y = rng.integers(0, 5, (3, 4)), rng.integers(0, 5, (3, 4))
    _, _, cache = rnn_forward(params, X, None, cell=str(path))
    assert kink_pattern(cache).size == L * 4 * 3 * 4  # every step's Z, every layer
    rows = check_gradients(params, X, Y, cell=str(path), h=1e-3)
    assert not [r for r in rows if r["verdict"] == "FAIL"], rows
    assert any(r["passed"] for r in rows)
    step = check_step(load_cell(str(path)), 3, 4, seed=seed)
    assert [r["verdict"] for r in step if r["verdict"] == "FAIL"] == []
