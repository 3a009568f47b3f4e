"""The torch layout against real PyTorch, both ways: minirnn -> file -> nn.RNN / nn.LSTM
(and nn.GRU, for the torch_gru cell file) give minirnn's logits and final state, and a PyTorch model -> file -> minirnn gives
PyTorch's. Skipped where torch is not installed (it is a test extra, never a
runtime dependency)."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from minirnn import interop
from minirnn.errors import CheckpointError
from minirnn.gradcheck import random_params
from minirnn.model import rnn_forward
from minirnn.safetensors_io import load_safetensors, save_safetensors

torch = pytest.importorskip("torch")
nn = torch.nn

TOL = 1e-12
CELLS = [("rnn", "tanh"), ("rnn", "relu"), ("lstm", "tanh"), ("torch_gru", "tanh")]
FILE = {"torch_gru": interop.TORCH_GRU}  # a cell name in these tests -> the cell= the engine takes


class RNNModel(nn.Module):
    """d2l's concise RNNModel: one-hot or embedded input, nn.RNN / nn.LSTM, nn.Linear
    on every step's output (time-major rows, as minirnn's logits)."""

    def __init__(self, rnn, vocab_size, embed_size=0):
        super().__init__()
        self.rnn, self.vocab_size = rnn, vocab_size
        self.linear = nn.Linear(rnn.hidden_size, vocab_size)
        if embed_size:
            self.embedding = nn.Embedding(vocab_size, embed_size)

    def forward(self, ids, state):
        X = self.embedding(ids.T) if hasattr(self, "embedding") else \
            nn.functional.one_hot(ids.T, self.vocab_size).to(self.linear.weight.dtype)
        Y, state = self.rnn(X, state)
        return self.linear(Y.reshape(-1, Y.shape[-1])), state


def torch_model(cell, activation, V, H, L, E):
    rnn = nn.LSTM(E or V, H, num_layers=L) if cell == "lstm" else nn.GRU(E or V, H, num_layers=L) \
        if cell == "torch_gru" else nn.RNN(E or V, H, num_layers=L, nonlinearity=activation)
    return RNNModel(rnn, V, E).double()


sizes = st.tuples(st.sampled_from(CELLS), st.integers(2, 7), st.integers(1, 6), st.integers(1, 3),
                  st.sampled_from([0, 3]), st.integers(1, 3), st.integers(1, 5), st.integers(0, 2**31))


def draw_state(rng, cell, L, B, H):
    """(minirnn's state, torch's state): h (L,B,H), or (h, c)."""
    parts = [rng.normal(0, 0.5, (L, B, H)) for _ in range(2 if cell == "lstm" else 1)]
    ours = tuple(p if L > 1 else p[0] for p in parts)
    theirs = tuple(torch.from_numpy(p) for p in parts)
    return (ours if cell == "lstm" else ours[0]), (theirs if cell == "lstm" else theirs[0])


def compare(model, params, ids, cell, activation, state, L):
    ours_state, torch_state = state
    logits, final, _ = rnn_forward(params, ids, ours_state, activation=activation, cell=FILE.get(cell))
    with torch.no_grad():
        t_logits, t_final = model(torch.from_numpy(ids), torch_state)
    assert np.max(np.abs(t_logits.numpy() - logits)) < TOL
    for t_part, part in zip(t_final if cell == "lstm" else (t_final,), final if cell == "lstm" else (final,)):
        assert np.max(np.abs(t_part.numpy().reshape(part.shape) - part)) < TOL


@settings(max_examples=20)
@given(sizes)
def test_minirnn_to_file_to_pytorch_gives_the_same_outputs(tmp_path_factory, drawn):
    (cell, activation), V, H, L, E, B, T, seed = drawn
    rng = np.random.default_rng(seed)
    params = random_params(V, H, rng, cell=FILE.get(cell, cell), num_layers=L, embed_size=E or None)
    path = tmp_path_factory.mktemp("out") / "m.safetensors"
    save_safetensors(path, interop.to_torch(params, cell=FILE.get(cell)))
    arrays, _ = load_safetensors(path)
    model = torch_model(cell, activation, V, H, L, E)
    model.load_state_dict({k: torch.from_numpy(a) for k, a in arrays.items()}, strict=True)
    ids = rng.integers(0, V, size=(B, T))
    compare(model, params, ids, cell, activation, draw_state(rng, cell, L, B, H), L)


@settings(max_examples=20)
@given(sizes)
def test_pytorch_to_file_to_minirnn_gives_the_same_outputs(tmp_path_factory, drawn):
    (cell, activation), V, H, L, E, B, T, seed = drawn
    torch.manual_seed(seed)
    model = torch_model(cell, activation, V, H, L, E)  # PyTorch's own init: both biases non-zero
    path = tmp_path_factory.mktemp("in") / "m.safetensors"
    save_safetensors(path, {k: v.numpy() for k, v in model.state_dict().items()})
    arrays, _ = load_safetensors(path)
    params = interop.from_torch(arrays)
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, V, size=(B, T))
    compare(model, params, ids, cell, activation, draw_state(rng, cell, L, B, H), L)


def test_a_float32_pytorch_model_comes_in_as_float32_bit_for_bit():
    torch.manual_seed(0)
    model = RNNModel(nn.LSTM(4, 5, num_layers=2), 6, embed_size=4)
    sd = {k: v.numpy() for k, v in model.state_dict().items()}
    params = interop.from_torch(sd)
    assert {a.dtype for a in params.values()} == {np.dtype("float32")}
    assert params["W_emb"].tobytes() == sd["embedding.weight"].tobytes()
    assert params["W_xi_l1"].tobytes() == np.ascontiguousarray(sd["rnn.weight_ih_l1"][:5].T).tobytes()


@pytest.mark.parametrize("rnn, message", [
    (nn.LSTM(4, 3, bidirectional=True), "bidirectional"),
    (nn.RNN(4, 3, bidirectional=True), "bidirectional"),
    (nn.LSTM(4, 3, proj_size=2), "proj_size"),
])
def test_what_pytorch_has_and_minirnn_does_not_is_refused(rnn, message):
    sd = {k: v.numpy() for k, v in RNNModel(rnn, 4).state_dict().items()}
    with pytest.raises(CheckpointError, match=message):
        interop.from_torch(sd)
