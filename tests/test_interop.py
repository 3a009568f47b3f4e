"""The mappings to PyTorch's and Keras' layouts, checked without either framework:
each framework's documented equations, written out here in plain NumPy (none of
minirnn's cells), run on the exported weights and give rnn_forward's logits and
final state; import is the exact inverse, bit for bit; what does not map is refused."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

from minirnn import interop
from minirnn.errors import CheckpointError, UsageError
from minirnn.gradcheck import random_params
from minirnn.model import rnn_forward
from minirnn.safetensors_io import load_safetensors, save_safetensors

TOL = 1e-12


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


ACT = {"tanh": np.tanh, "relu": lambda z: np.maximum(z, 0.0)}


# ----------------------------------------------------------------------------- the other frameworks' equations
def torch_model(sd, ids, state, cell, activation="tanh"):
    """d2l's RNNModel on nn.RNN / nn.LSTM / nn.GRU, as PyTorch documents them (weights
    (out, in), y = x Wᵀ + b; LSTM rows in the order i, f, g, o; GRU rows r, z, n). ids
    (B,T); state: per layer h, or (h, c). Returns logits (T·B, V) time-major and the
    final states per layer."""
    V = sd["linear.weight"].shape[0]
    B, T = ids.shape
    xs = [sd["embedding.weight"][ids[:, t]] if "embedding.weight" in sd else np.eye(V)[ids[:, t]] for t in range(T)]
    finals = []
    for layer, s0 in enumerate(state):
        W_ih, W_hh = sd[f"rnn.weight_ih_l{layer}"], sd[f"rnn.weight_hh_l{layer}"]
        b_ih, b_hh = sd[f"rnn.bias_ih_l{layer}"], sd[f"rnn.bias_hh_l{layer}"]
        outs = []
        if cell == "rnn":
            h = s0
            for x in xs:
                h = ACT[activation](x @ W_ih.T + b_ih + h @ W_hh.T + b_hh)
                outs.append(h)
            finals.append(h)
        elif cell == "torch_gru":  # nn.GRU
            h = s0
            for x in xs:
                xr, xz, xn = np.split(x @ W_ih.T + b_ih, 3, axis=1)
                hr, hz, hn = np.split(h @ W_hh.T + b_hh, 3, axis=1)
                r, z = sigmoid(xr + hr), sigmoid(xz + hz)
                n = np.tanh(xn + r * hn)
                h = (1 - z) * n + z * h
                outs.append(h)
            finals.append(h)
        else:
            h, c = s0
            for x in xs:
                gates = x @ W_ih.T + b_ih + h @ W_hh.T + b_hh
                i, f, g, o = np.split(gates, 4, axis=1)
                i, f, g, o = sigmoid(i), sigmoid(f), np.tanh(g), sigmoid(o)
                c = f * c + i * g
                h = o * np.tanh(c)
                outs.append(h)
            finals.append((h, c))
        xs = outs
    logits = np.concatenate([x @ sd["linear.weight"].T + sd["linear.bias"] for x in xs], axis=0)
    return logits, finals


def keras_model(w, ids, state, cell, activation="tanh"):
    """Keras' Embedding, SimpleRNN / LSTM / GRU(reset_after=False) layers and Dense,
    as Keras documents them (x·kernel + h·recurrent_kernel + bias; LSTM blocks
    i, f, c, o; GRU blocks z, r, h with the reset gate on h before the product)."""
    V = w["linear.kernel"].shape[1]
    B, T = ids.shape
    xs = [w["embedding.embeddings"][ids[:, t]] if "embedding.embeddings" in w else np.eye(V)[ids[:, t]]
          for t in range(T)]
    finals = []
    for layer, s0 in enumerate(state):
        K, U, b = w[f"rnn.kernel_l{layer}"], w[f"rnn.recurrent_kernel_l{layer}"], w[f"rnn.bias_l{layer}"]
        outs = []
        if cell == "rnn":
            h = s0
            for x in xs:
                h = ACT[activation](x @ K + b + h @ U)
                outs.append(h)
            finals.append(h)
        elif cell == "lstm":
            h, c = s0
            for x in xs:
                i, f, cc, o = np.split(x @ K + h @ U + b, 4, axis=1)
                c = sigmoid(f) * c + sigmoid(i) * np.tanh(cc)
                h = sigmoid(o) * np.tanh(c)
                outs.append(h)
            finals.append((h, c))
        else:  # GRU, reset_after=False
            h = s0
            Uz, Ur, Uh = np.split(U, 3, axis=1)
            for x in xs:
                xz, xr, xh = np.split(x @ K + b, 3, axis=1)
                z = sigmoid(xz + h @ Uz)
                r = sigmoid(xr + h @ Ur)
                hh = np.tanh(xh + (r * h) @ Uh)
                h = z * h + (1 - z) * hh
                outs.append(h)
            finals.append(h)
        xs = outs
    logits = np.concatenate([x @ w["linear.kernel"] + w["linear.bias"] for x in xs], axis=0)
    return logits, finals


# ----------------------------------------------------------------------------- drawing models
@st.composite
def models(draw, cells):
    cell, activation = draw(st.sampled_from(cells))
    V, H = draw(st.integers(2, 7)), draw(st.integers(1, 6))
    L, E = draw(st.integers(1, 3)), draw(st.sampled_from([0, 0, 1, 3, 5]))
    B, T, seed = draw(st.integers(1, 3)), draw(st.integers(1, 5)), draw(st.integers(0, 2**31))
    rng = np.random.default_rng(seed)
    params = random_params(V, H, rng, cell=FILE.get(cell, cell), num_layers=L, embed_size=E or None)
    ids = rng.integers(0, V, size=(B, T))
    parts = 2 if cell == "lstm" else 1
    state = [tuple(rng.normal(0, 0.5, (B, H)) for _ in range(parts)) for _ in range(L)]  # per layer
    return cell, activation, params, ids, state


def minirnn_state(state, cell):
    """Per-layer tuples -> rnn_forward's form."""
    parts = [np.stack([s[i] for s in state]) if len(state) > 1 else state[0][i] for i in range(len(state[0]))]
    return tuple(parts) if cell == "lstm" else parts[0]


def per_layer(final, cell, L):
    """rnn_forward's final state -> a list of per-layer states (h, or (h, c))."""
    parts = final if cell == "lstm" else (final,)
    layers = [tuple(p if L == 1 else p[l] for p in parts) for l in range(L)]
    return [s if cell == "lstm" else s[0] for s in layers]


def assert_same(framework, ours, cell, L):
    logits, finals = framework
    our_logits, our_final = ours
    assert np.max(np.abs(logits - our_logits)) < TOL
    for theirs, mine in zip(finals, per_layer(our_final, cell, L)):
        for a, b in zip(theirs if cell == "lstm" else (theirs,), mine if cell == "lstm" else (mine,)):
            assert np.max(np.abs(a - b)) < TOL


BUILT_IN = [("rnn", "tanh"), ("rnn", "relu"), ("lstm", "tanh")]
TORCH_CELLS = BUILT_IN + [("torch_gru", "tanh")]  # nn.GRU: the shipped torch_gru cell file
KERAS_CELLS = BUILT_IN + [("gru", "tanh")]
FILE = {"torch_gru": interop.TORCH_GRU}  # a cell name in these tests -> the cell= the engine takes


def forward(params, ids, state, cell, activation):
    return rnn_forward(params, ids, minirnn_state(state, cell), activation=activation, cell=FILE.get(cell))


@pytest.mark.parametrize("export, framework, cells", [
    (lambda params, cell: interop.to_torch(params, cell=FILE.get(cell)), torch_model, TORCH_CELLS),
    (lambda params, cell: interop.to_keras(params), keras_model, KERAS_CELLS)], ids=["pytorch", "keras"])
@given(data=st.data())
def test_the_frameworks_equations_on_the_exported_weights_give_minirnns_outputs(export, framework, cells, data):
    cell, activation, params, ids, state = data.draw(models(cells))
    theirs = framework(export(params, cell), ids, [s if cell == "lstm" else s[0] for s in state], cell, activation)
    logits, final, _ = forward(params, ids, state, cell, activation)
    assert_same(theirs, (logits, final), cell, len(state))


@given(models(TORCH_CELLS))
def test_a_pytorch_state_dict_with_both_biases_imports_to_the_same_outputs(model):
    """PyTorch's model, with a non-zero bias_hh as PyTorch trains it, comes in with the
    biases added, and minirnn's outputs are the state dict's own under PyTorch's equations."""
    cell, activation, params, ids, state = model
    sd = interop.to_torch(params, cell=FILE.get(cell))
    rng = np.random.default_rng(ids.sum())
    for key in [k for k in sd if k.startswith("rnn.bias_hh")]:
        sd[key] = rng.normal(0, 0.5, sd[key].shape)
    theirs = torch_model(sd, ids, [s if cell == "lstm" else s[0] for s in state], cell, activation)
    imported = interop.from_torch(sd)
    logits, final, _ = forward(imported, ids, state, cell, activation)
    assert_same(theirs, (logits, final), cell, len(state))


@given(models(TORCH_CELLS + [("gru", "tanh")]), st.sampled_from(interop.LAYOUTS),
       st.sampled_from(["float32", "float64"]))
def test_minirnn_to_file_to_minirnn_is_bit_for_bit(tmp_path_factory, model, layout, dtype):
    cell, _, params, _, _ = model
    if (cell, "tanh") not in (TORCH_CELLS if layout == "torch" else KERAS_CELLS):
        return
    params = {k: v.astype(dtype) for k, v in params.items()}
    params["b_q"][0] = -0.0  # a signed zero survives too
    path = tmp_path_factory.mktemp("rt") / "m.safetensors"
    exported = interop.to_torch(params, cell=FILE.get(cell)) if layout == "torch" else interop.to_keras(params)
    save_safetensors(path, exported, {"k": "v"})
    arrays, meta = load_safetensors(path)
    back = interop.IMPORTS[layout](arrays)
    assert meta == {"k": "v"} and list(back) == list(params)
    for k in params:
        assert back[k].dtype == params[k].dtype and back[k].shape == params[k].shape
        assert back[k].tobytes() == params[k].tobytes(), k


# ----------------------------------------------------------------------------- what is refused
def small(cell="rnn", L=1, E=None, V=5, H=3):
    return random_params(V, H, np.random.default_rng(0), cell=cell, num_layers=L, embed_size=E)


def test_the_books_gru_is_refused_for_pytorch_with_the_reason():
    with pytest.raises(UsageError, match="nn.GRU is not the book's GRU: it applies the reset gate after the "
                                         "product.*--layout keras"):
        interop.to_torch(small("gru"))


def test_an_nn_gru_state_dict_comes_in_as_the_torch_gru_cell_file():
    sd = interop.to_torch(small("lstm"))
    sd = {k: (v[:9] if k.startswith("rnn.") else v) for k, v in sd.items()}  # 3H = 9 rows: nn.GRU's shapes
    params = interop.from_torch(sd)
    assert list(params) == ["W_xr", "W_hr", "b_r", "W_xz", "W_hz", "b_z", "W_xn", "W_hn", "b_n", "b_hn", "W_hq", "b_q"]
    np.testing.assert_array_equal(params["b_hn"], sd["rnn.bias_hh_l0"][6:])  # the candidate's own bias
    with pytest.raises(CheckpointError, match="says its model is a lstm, but its torch weights have the shapes of a "
                                              "torch_gru"):
        interop.from_torch(sd, cell="lstm")


def test_bidirectional_and_projected_layers_are_refused():
    sd = interop.to_torch(small("lstm"))
    with pytest.raises(CheckpointError, match="bidirectional"):
        interop.from_torch({**sd, "rnn.weight_ih_l0_reverse": sd["rnn.weight_ih_l0"]})
    with pytest.raises(CheckpointError, match="proj_size"):
        interop.from_torch({**sd, "rnn.weight_hr_l0": np.zeros((2, 3))})


def test_a_keras_gru_with_reset_after_is_refused():
    w = interop.to_keras(small("gru"))
    w["rnn.bias_l0"] = np.zeros((2, 9))
    with pytest.raises(CheckpointError, match="reset_after=True"):
        interop.from_keras(w)


@pytest.mark.parametrize("change, message", [
    (lambda sd: sd.pop("linear.bias"), "missing for the torch layout: linear.bias"),
    (lambda sd: sd.pop("rnn.weight_hh_l1"), "missing for the torch layout: rnn.weight_hh_l1"),
    (lambda sd: sd.pop("rnn.bias_hh_l0"), "missing for the torch layout: rnn.bias_hh_l0"),
    (lambda sd: sd.update({"decoder.weight": np.zeros(2)}), "unexpected tensor for the torch layout: decoder.weight"),
    (lambda sd: sd.update({"rnn.kernel_l0": np.zeros(2)}), "give --layout keras"),
    (lambda sd: sd.update({"rnn.weight_ih_l0": np.zeros((3, 7))}), r"rnn.weight_ih_l0 has shape \(3, 7\), expected "
                                                                   r"\(3, 5\).*one-hot input.*fit no minirnn model"),
    (lambda sd: sd.update({"rnn.weight_hh_l0": np.zeros((6, 3))}), "no recurrent cell's.*fit no minirnn model"),
    (lambda sd: sd.update({"linear.weight": np.zeros((5, 4))}), "linear.weight has shape .*fit no minirnn model"),
    (lambda sd: sd.update({"linear.bias": np.zeros(5, np.float32)}), "must all be float32 or all float64"),
])
def test_a_state_dict_that_fits_no_model_is_one_clear_error(change, message):
    sd = interop.to_torch(small("rnn", L=2))
    change(sd)
    with pytest.raises(CheckpointError, match=message):
        interop.from_torch(sd)


def test_a_keras_file_missing_a_tensor_or_with_a_torch_key_is_refused():
    w = interop.to_keras(small("gru", E=2))
    with pytest.raises(CheckpointError, match="missing for the keras layout: rnn.recurrent_kernel_l0"):
        interop.from_keras({k: v for k, v in w.items() if k != "rnn.recurrent_kernel_l0"})
    with pytest.raises(CheckpointError, match="give --layout torch"):
        interop.from_keras({**w, "rnn.weight_ih_l0": np.zeros(2)})


def test_the_file_saying_another_cell_than_its_shapes_is_refused():
    with pytest.raises(CheckpointError, match="says its model is a gru.*shapes of a lstm"):
        interop.from_keras(interop.to_keras(small("lstm")), cell="gru")


def test_torch_bias_false_imports_as_zero_biases():
    sd = {k: v for k, v in interop.to_torch(small("lstm")).items() if not k.startswith("rnn.bias")}
    params = interop.from_torch(sd)
    assert not params["b_i"].any() and params["b_i"].shape == (3,)


# ----------------------------------------------------------------------------- metadata
def test_metadata_travels_as_json_strings():
    from minirnn.data import Vocab

    vocab = Vocab(["<unk>", " ", "é", '"'])
    meta = interop.metadata("torch", "rnn", vocab, "raw", "relu", "the")
    assert all(isinstance(v, str) for v in meta.values())
    assert interop.read_metadata(meta) == {"vocab": vocab.idx_to_token, "text_mode": "raw", "activation": "relu",
                                           "cell": "rnn", "layout": "torch", "sample_prefix": "the"}
    assert interop.read_metadata({"format": "pt"}) == {}  # others' metadata is left alone
    with pytest.raises(CheckpointError, match="'vocab' is not JSON text"):
        interop.read_metadata({"vocab": "abc"})
    with pytest.raises(CheckpointError, match="'vocab' must be a JSON list"):
        interop.read_metadata({"vocab": '"abc"'})
    with pytest.raises(CheckpointError, match="'text_mode' must be a JSON string"):
        interop.read_metadata({"text_mode": "[1]"})


def test_no_other_framework_is_a_runtime_dependency():
    """minirnn itself never imports torch, safetensors, keras or tensorflow: NumPy reads and writes the files."""
    import ast
    import pathlib

    import minirnn

    root = pathlib.Path(minirnn.__file__).parent
    offenders = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module else []
            if any(n.split(".")[0] in ("torch", "safetensors", "keras", "tensorflow", "jax") for n in names):
                offenders.append(f"{path.relative_to(root)}:{node.lineno}")
    assert not offenders
    setup = (root.parent / "setup.cfg").read_text()
    requires = setup.split("install_requires =")[1].split("\n[")[0]
    assert "torch" not in setup and "safetensors" not in requires
