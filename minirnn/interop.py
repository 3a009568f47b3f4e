"""Weights in and out: minirnn's parameters in PyTorch's and Keras' layouts.

Each mapping is exact: the other framework's documented equations, run on the
mapped weights, give minirnn's logits and final state. Where the equations differ,
the mapping is refused with the reason.

    minirnn          PyTorch                                   Keras
    rnn (tanh|relu)  nn.RNN(nonlinearity=...)                  SimpleRNN(activation=...)
    lstm             nn.LSTM, gates (i, f, g, o)               LSTM, gates (i, f, c, o)
    gru (the book's) refused: nn.GRU resets after the product  GRU(reset_after=False), gates (z, r, h)
    examples/torch_gru  nn.GRU, gates (r, z, n)                refused (export with --layout torch)
    W_hq, b_q        nn.Linear(H, V)                           Dense(V)
    W_emb            nn.Embedding(V, E)                        Embedding(V, E)

Keys, as in d2l's concise RNNModel (a module with `rnn`, `linear` and `embedding`):
    torch   rnn.weight_ih_l{k} (kH,I) = [W_x·]ᵀ stacked, rnn.weight_hh_l{k} (kH,H),
            rnn.bias_ih_l{k} (kH,) = b, rnn.bias_hh_l{k} (kH,) = 0,
            linear.weight (V,H) = W_hqᵀ, linear.bias (V,) = b_q, embedding.weight (V,E) = W_emb
    keras   rnn.kernel_l{k} (I,kH) = [W_x·] side by side, rnn.recurrent_kernel_l{k} (H,kH),
            rnn.bias_l{k} (kH,), linear.kernel (H,V) = W_hq, linear.bias (V,), embedding.embeddings (V,E)
PyTorch's two biases add: importing takes b = bias_ih + bias_hh (bias_ih alone when
bias_hh is zero, so that minirnn -> file -> minirnn is exact, bit for bit). nn.GRU's
candidate keeps its recurrent bias apart, inside the reset gate's product: it is the
torch_gru cell file's b_hn, and the n block of bias_hh.

The vocabulary, the text mode and the activation are not weights: they travel in
the file's __metadata__ as JSON strings (metadata and read_metadata).
"""
import json
import re

import numpy as np

from .cells import cell_name
from .errors import CheckpointError, UsageError
from .model import layer_suffix, model_spec, param_shapes
from .safetensors_io import load_safetensors, save_safetensors  # noqa: F401  (part of this module's API)

LAYOUTS = ("torch", "keras")
# The blocks of each cell in the other framework's order, as minirnn's gate letters.
TORCH_GATES = {"rnn": ("h",), "lstm": ("i", "f", "c", "o"), "torch_gru": ("r", "z", "n")}
TORCH_GRU = "examples/torch_gru"  # the shipped cell file that computes nn.GRU's equations
KERAS_GATES = {"rnn": ("h",), "lstm": ("i", "f", "c", "o"), "gru": ("z", "r", "h")}
TORCH_MODULES = {"rnn": "nn.RNN", "lstm": "nn.LSTM"}
KERAS_LAYERS = {"rnn": "SimpleRNN", "lstm": "LSTM", "gru": "GRU(reset_after=False)"}
GRU_REFUSED = ("PyTorch's nn.GRU is not the book's GRU: it applies the reset gate after the product, "
               "tanh(W_in x + b_in + r * (W_hn h + b_hn)), where the book's cell computes "
               "tanh(x W_xh + (r * h) W_hh + b_h), so no mapping of the weights gives the same outputs")
METADATA_KEYS = ("vocab", "text_mode", "activation", "cell", "layout", "sample_prefix")


# ----------------------------------------------------------------------------- out
def to_torch(params, cell=None):
    """minirnn parameters -> {key: array} for d2l's RNNModel on nn.RNN / nn.LSTM, or
    nn.GRU for a model of the torch_gru cell file (cell=TORCH_GRU). The book's GRU is
    refused (a UsageError that says why)."""
    spec = model_spec(params, cell=cell)
    name = cell_name(spec.cell)
    if name not in TORCH_GATES:
        raise UsageError(f"the {spec.cell} model cannot be exported to the torch layout: {GRU_REFUSED}; "
                         f"export it with --layout keras (Keras' GRU(reset_after=False) is the book's cell), or "
                         f"train the cell file that computes nn.GRU's equations, --cell {TORCH_GRU}, whose models "
                         f"export to nn.GRU")
    out = {}
    if spec.embed_size:
        out["embedding.weight"] = _host(params["W_emb"])
    for layer in range(spec.num_layers):
        s = layer_suffix(layer)
        gates = TORCH_GATES[name]
        out[f"rnn.weight_ih_l{layer}"] = np.concatenate([_host(params[f"W_x{g}{s}"]).T for g in gates], axis=0)
        out[f"rnn.weight_hh_l{layer}"] = np.concatenate([_host(params[f"W_h{g}{s}"]).T for g in gates], axis=0)
        out[f"rnn.bias_ih_l{layer}"] = np.concatenate([_host(params[f"b_{g}{s}"]) for g in gates])
        out[f"rnn.bias_hh_l{layer}"] = np.zeros_like(out[f"rnn.bias_ih_l{layer}"])
        if name == "torch_gru":  # the candidate's recurrent bias, inside the reset gate's product
            out[f"rnn.bias_hh_l{layer}"][2 * spec.num_hiddens:] = _host(params[f"b_hn{s}"])
    out["linear.weight"] = np.ascontiguousarray(_host(params["W_hq"]).T)
    out["linear.bias"] = _host(params["b_q"]).copy()
    return out


def to_keras(params):
    """minirnn parameters -> {key: array} for Keras' Embedding, SimpleRNN / LSTM /
    GRU(reset_after=False) layers and Dense."""
    spec = model_spec(params)
    out = {}
    if spec.embed_size:
        out["embedding.embeddings"] = _host(params["W_emb"]).copy()
    for layer in range(spec.num_layers):
        s = layer_suffix(layer)
        gates = KERAS_GATES[spec.cell]
        out[f"rnn.kernel_l{layer}"] = np.concatenate([_host(params[f"W_x{g}{s}"]) for g in gates], axis=1)
        out[f"rnn.recurrent_kernel_l{layer}"] = np.concatenate([_host(params[f"W_h{g}{s}"]) for g in gates], axis=1)
        out[f"rnn.bias_l{layer}"] = np.concatenate([_host(params[f"b_{g}{s}"]) for g in gates])
    out["linear.kernel"] = _host(params["W_hq"]).copy()
    out["linear.bias"] = _host(params["b_q"]).copy()
    return out


# ----------------------------------------------------------------------------- in
TORCH_KEY = re.compile(r"rnn\.(weight_ih|weight_hh|bias_ih|bias_hh)_l(\d+)")
KERAS_KEY = re.compile(r"rnn\.(kernel|recurrent_kernel|bias)_l(\d+)")


def from_torch(arrays, cell=None):
    """A state dict in d2l's RNNModel layout (nn.RNN, nn.LSTM or nn.GRU, nn.Linear,
    optionally nn.Embedding), as {key: array} -> minirnn parameters; nn.GRU's are those
    of the torch_gru cell file (TORCH_GRU), with b_hn. cell: what the file says the
    model is (checked against the shapes), or None. Bidirectional layers, proj_size and
    shapes that fit no minirnn model are refused with a CheckpointError that says why."""
    arrays = _refuse_common(arrays, "torch")
    layers = _layers(arrays, TORCH_KEY, ("weight_ih", "weight_hh"), ("bias_ih", "bias_hh"), "torch",
                     linear="linear.weight", embedding="embedding.weight")
    W_hh0 = arrays["rnn.weight_hh_l0"]
    H = _dim(W_hh0, 1, "rnn.weight_hh_l0", 2)
    k, rows = _blocks(W_hh0.shape[0], H, "rnn.weight_hh_l0", f"({W_hh0.shape[0]}, {H})")
    found = {1: "rnn", 3: "torch_gru", 4: "lstm"}[k]  # nn.GRU: the torch_gru cell file, not the book's GRU
    _check_cell(cell, found, "torch")
    V = _dim(arrays["linear.weight"], 0, "linear.weight", 2)
    E = _dim(arrays["embedding.weight"], 1, "embedding.weight", 2) if "embedding.weight" in arrays else 0
    params = {}
    if E:
        params["W_emb"] = arrays["embedding.weight"].copy()
    gates = TORCH_GATES[found]
    for layer in range(layers):
        s, l = layer_suffix(layer), f"_l{layer}"
        I = (E or V) if layer == 0 else H
        W_ih = _shaped(arrays, f"rnn.weight_ih{l}", (k * H, I), V, H, E)
        W_hh = _shaped(arrays, f"rnn.weight_hh{l}", (k * H, H), V, H, E)
        if f"rnn.bias_ih{l}" in arrays:
            b_ih = _shaped(arrays, f"rnn.bias_ih{l}", (k * H,), V, H, E)
            b_hh = _shaped(arrays, f"rnn.bias_hh{l}", (k * H,), V, H, E)
            if found == "torch_gru":  # b_hn stays apart (inside r * (...)); r's and z's biases add
                params[f"b_hn{s}"] = b_hh[2 * H:].copy()
                b_hh = np.concatenate([b_hh[:2 * H], np.zeros(H, dtype=b_hh.dtype)])
            b = b_ih if not b_hh.any() else b_ih + b_hh  # the two biases add; b_ih itself when b_hh is 0
        else:  # bias=False
            b = np.zeros(k * H, dtype=W_hh.dtype)
            if found == "torch_gru":
                params[f"b_hn{s}"] = np.zeros(H, dtype=W_hh.dtype)
        for i, g in enumerate(gates):
            params[f"W_x{g}{s}"] = np.ascontiguousarray(W_ih[i * H:(i + 1) * H].T)
            params[f"W_h{g}{s}"] = np.ascontiguousarray(W_hh[i * H:(i + 1) * H].T)
            params[f"b_{g}{s}"] = b[i * H:(i + 1) * H].copy()
    params["W_hq"] = np.ascontiguousarray(_shaped(arrays, "linear.weight", (V, H), V, H, E).T)
    params["b_q"] = _shaped(arrays, "linear.bias", (V,), V, H, E).copy()
    return _checked(params, found)


def from_keras(arrays, cell=None):
    """Weights in the Keras layout (Embedding, SimpleRNN / LSTM / GRU(reset_after=False),
    Dense) as {key: array} -> minirnn parameters. A GRU with reset_after=True (a
    bias of shape (2, 3H)) and shapes that fit no minirnn model are refused."""
    arrays = _refuse_common(arrays, "keras")
    layers = _layers(arrays, KERAS_KEY, ("kernel", "recurrent_kernel", "bias"), (), "keras",
                     linear="linear.kernel", embedding="embedding.embeddings")
    U0 = arrays["rnn.recurrent_kernel_l0"]
    H = _dim(U0, 0, "rnn.recurrent_kernel_l0", 2)
    k, cols = _blocks(U0.shape[1], H, "rnn.recurrent_kernel_l0", f"({H}, {U0.shape[1]})")
    found = {1: "rnn", 3: "gru", 4: "lstm"}[k]
    _check_cell(cell, found, "keras")
    for layer in range(layers):
        b = arrays[f"rnn.bias_l{layer}"]
        if found == "gru" and b.ndim == 2 and b.shape[0] == 2:
            raise CheckpointError(f"rnn.bias_l{layer} has shape {b.shape}: a Keras GRU with reset_after=True (the "
                                  f"default), which applies the reset gate after the product as PyTorch does; the "
                                  f"book's GRU is GRU(reset_after=False): train with that, or keep the model in Keras")
    V = _dim(arrays["linear.kernel"], 1, "linear.kernel", 2)
    E = _dim(arrays["embedding.embeddings"], 1, "embedding.embeddings", 2) if "embedding.embeddings" in arrays else 0
    params = {}
    if E:
        params["W_emb"] = arrays["embedding.embeddings"].copy()
    for layer in range(layers):
        s, l = layer_suffix(layer), f"_l{layer}"
        I = (E or V) if layer == 0 else H
        W = _shaped(arrays, f"rnn.kernel{l}", (I, k * H), V, H, E)
        U = _shaped(arrays, f"rnn.recurrent_kernel{l}", (H, k * H), V, H, E)
        b = _shaped(arrays, f"rnn.bias{l}", (k * H,), V, H, E)
        for i, g in enumerate(KERAS_GATES[found]):
            params[f"W_x{g}{s}"] = np.ascontiguousarray(W[:, i * H:(i + 1) * H])
            params[f"W_h{g}{s}"] = np.ascontiguousarray(U[:, i * H:(i + 1) * H])
            params[f"b_{g}{s}"] = b[i * H:(i + 1) * H].copy()
    params["W_hq"] = _shaped(arrays, "linear.kernel", (H, V), V, H, E).copy()
    params["b_q"] = _shaped(arrays, "linear.bias", (V,), V, H, E).copy()
    return _checked(params, found)


EXPORTS = {"torch": to_torch, "keras": to_keras}
IMPORTS = {"torch": from_torch, "keras": from_keras}


def guess_layout(arrays):
    """'torch' or 'keras' from the keys, or None when neither fits."""
    keys = set(arrays)
    if any(TORCH_KEY.fullmatch(k) for k in keys) or "linear.weight" in keys:
        return "torch"
    if any(KERAS_KEY.fullmatch(k) for k in keys) or "linear.kernel" in keys:
        return "keras"
    return None


# ----------------------------------------------------------------------------- metadata
def metadata(layout, cell, vocab=None, text_mode=None, activation=None, sample_prefix=None):
    """The file's __metadata__: each value JSON text (a list for the vocabulary)."""
    values = {"layout": layout, "cell": cell, "vocab": None if vocab is None else list(vocab.idx_to_token),
              "text_mode": text_mode, "activation": activation, "sample_prefix": sample_prefix}
    return {k: json.dumps(v, ensure_ascii=False) for k, v in values.items() if v is not None}


def read_metadata(meta, name="the file"):
    """The minirnn values in a file's __metadata__ (others are ignored), decoded and
    type-checked: {"vocab": [str], "text_mode": str, ...}; a CheckpointError for one
    that is not valid JSON of its type."""
    out = {}
    for key in METADATA_KEYS:
        if key not in meta:
            continue
        try:
            value = json.loads(meta[key])
        except ValueError:
            raise CheckpointError(f"{name}: __metadata__ {key!r} is not JSON text ({meta[key][:40]!r}); "
                                  f"write it with json.dumps") from None
        ok = (isinstance(value, list) and all(isinstance(t, str) for t in value)) if key == "vocab" \
            else isinstance(value, str)
        if not ok:
            raise CheckpointError(f"{name}: __metadata__ {key!r} must be "
                                  + ("a JSON list of the tokens, in id order" if key == "vocab" else "a JSON string")
                                  + f", got {meta[key][:40]!r}")
        out[key] = value
    return out


# ----------------------------------------------------------------------------- checks
def _host(a):
    from .backend import backend_of

    return backend_of(a).to_numpy(a)


def _refuse_common(arrays, layout):
    """What neither layout maps: bidirectional layers and LSTM projections."""
    arrays = {k: np.asarray(v) for k, v in arrays.items()}
    reverse = sorted(k for k in arrays if k.endswith("_reverse"))
    if reverse:
        raise CheckpointError(f"{reverse[0]} and the other *_reverse tensors belong to a bidirectional RNN; "
                              f"minirnn's models read the text in one direction only, so it cannot be imported")
    proj = sorted(k for k in arrays if re.search(r"weight_hr_l\d+", k))
    if proj:
        raise CheckpointError(f"{proj[0]} belongs to an LSTM with proj_size > 0, whose state is projected to a "
                              f"smaller size at every step; minirnn's LSTM has no projection, so it cannot be imported")
    return arrays


def _layers(arrays, pattern, required, paired, layout, linear, embedding):
    """The number of layers; a CheckpointError for tensors missing or unexpected in the layout."""
    other = "keras" if layout == "torch" else "torch"
    known = {linear, "linear.bias", embedding}
    layers, unexpected = {}, []
    for key in arrays:
        m = pattern.fullmatch(key)
        if m:
            layers.setdefault(int(m.group(2)), set()).add(m.group(1))
        elif key not in known:
            unexpected.append(key)
    if unexpected:
        hint = (f"; these look like the {other} layout: give --layout {other}" if guess_layout(
            {k: None for k in unexpected}) == other else "")
        raise CheckpointError(f"unexpected tensor{'s' if len(unexpected) > 1 else ''} for the {layout} layout: "
                              f"{', '.join(sorted(unexpected)[:6])}{hint} (expected the keys of d2l's RNNModel: "
                              f"rnn.*, linear.*, embedding.*; see docs/interop.md)")
    missing = [k for k in (linear, "linear.bias") if k not in arrays]
    count = max(layers) + 1 if layers else 0
    for layer in range(count):
        names = layers.get(layer, set())
        missing += [f"rnn.{n}_l{layer}" for n in required if n not in names]
        if paired and (set(paired) & names) and not set(paired) <= names:
            missing += [f"rnn.{n}_l{layer}" for n in paired if n not in names]
    if not count:
        missing.insert(0, f"rnn.{required[0]}_l0")
    if missing:
        raise CheckpointError(f"tensor{'s' if len(missing) > 1 else ''} missing for the {layout} layout: "
                              f"{', '.join(missing)}")
    return count


def _dim(a, axis, key, ndim):
    if a.ndim != ndim:
        raise CheckpointError(f"{key} has shape {a.shape}; a {ndim}-D array was expected, so the shapes fit no "
                              f"minirnn model")
    return int(a.shape[axis])


def _blocks(n, H, key, shape):
    """k, the number of gate blocks: n = k·H with k 1 (rnn), 3 (gru) or 4 (lstm)."""
    if H < 1 or n % H or n // H not in (1, 3, 4):
        raise CheckpointError(f"{key} has shape {shape}, which is no recurrent cell's: with H = {H} the gates "
                              f"should number 1 (rnn), 3 (gru) or 4 (lstm), so the shapes fit no minirnn model")
    return n // H, n


def _check_cell(said, found, layout):
    if said is not None and said != found:
        raise CheckpointError(f"the file says its model is a {said}, but its {layout} weights have the shapes "
                              f"of a {found}; the file is inconsistent")


def _shaped(arrays, key, shape, V, H, E):
    a = arrays[key]
    if a.shape != shape:
        sizes = f"V={V}, H={H}" + (f", E={E}" if E else ", one-hot input (no embedding): layer 0 reads V inputs")
        raise CheckpointError(f"{key} has shape {a.shape}, expected {shape} ({sizes}); the shapes fit no "
                              f"minirnn model")
    return a


def _checked(params, cell):
    dtypes = sorted({str(a.dtype) for a in params.values()})
    if len(dtypes) != 1 or dtypes[0] not in ("float32", "float64"):
        raise CheckpointError(f"the weights must all be float32 or all float64, got {', '.join(dtypes)}; "
                              f"convert them (e.g. model.float() or model.double() in PyTorch) and save again")
    bad = [k for k, a in params.items() if not np.isfinite(a).all()]
    if bad:
        raise CheckpointError(f"{', '.join(bad)} hold NaN or inf; a diverged model cannot be imported")
    try:
        spec = model_spec(params, cell=TORCH_GRU if cell == "torch_gru" else None)
    except ValueError as e:
        raise CheckpointError(f"the shapes fit no minirnn model: {e}") from None
    assert cell_name(spec.cell) == cell
    return {k: params[k] for k in param_shapes(spec)}  # in init_params' order
