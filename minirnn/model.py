"""The language model around the cells: parameters, input layer, stacking, output.

Dimension letters, used in every shape below:
    B batch, T steps, V vocabulary, H hidden units, E embedding size, L layers,
    I a layer's input size (V or E for layer 0, H above it), k a cell's blocks.

    input    layer 0 reads one-hot X_t (a row lookup) or E_t = W_emb[x_t]
    layers   for l = 0..L-1: the cell over the window (cells/), reading the layer
             below's H_t; its input products X_t·W_x + b for all blocks run once
             over all T·B rows, only H_{t-1}·W_h sits in the time loop
    output   O_t = H_t·W_hq + b_q on the top layer, all T·B rows at once   (T·B, V)

Parameter names are d2l's: W_xh, W_hh, b_h (rnn); W_xz … b_h (gru); W_xi … b_c
(lstm); W_emb; W_hq, b_q. Layer 0 keeps the plain names, layer l ≥ 1 appends _l{l}.
The cell, the number of layers and the embedding are read off the keys, so one
rnn_forward / rnn_backward pair serves every model. A cell file in the simple
protocol (cells/protocol.py: its W_x{g}, b_{g} per gate and its own recurrent
parameters) runs through the same pair, named by cell= (its path or module).

The state is H for rnn and gru, and the pair (H, C) for lstm; each array is (B,H)
for one layer, (L,B,H) for L layers. None means zeros.
"""
import dataclasses
import re

import numpy as np

from .backend import array_module, backend_of, get_backend
from .cells import cell_key, cell_name, get_cell, recurrent_params
from .cells.common import ACTIVATIONS
from .dropout import dropout_backward, dropout_forward
from .embedding import embedding_backward, embedding_forward, onehot_backward, onehot_forward

PARAM_NAMES = ("W_xh", "W_hh", "b_h", "W_hq", "b_q")  # the default model's parameters
DTYPES = ("float32", "float64")


# ----------------------------------------------------------------------------- the parameters
@dataclasses.dataclass(frozen=True)
class Spec:
    """What a parameter dict describes."""

    cell: object  # a built-in cell's name, or a cells.ProtocolCell (a cell file)
    num_layers: int
    vocab_size: int
    num_hiddens: int
    embed_size: int  # 0: one-hot input

    def __post_init__(self):
        object.__setattr__(self, "cell", cell_key(self.cell))  # a path becomes its loaded, checked cell

    def describe(self):
        """'rnn', '2-layer lstm, embedding 32', ...: the model in a few words."""
        cell = cell_name(self.cell) + (f" ({self.cell.file})" if hasattr(self.cell, "file") else "")
        return ((f"{self.num_layers}-layer " if self.num_layers > 1 else "") + cell
                + (f", embedding {self.embed_size}" if self.embed_size else ""))


def layer_suffix(layer):
    return "" if layer == 0 else f"_l{layer}"


def param_shapes(spec):
    """{name: shape} in the order the weights are drawn: W_emb, the layers, W_hq, b_q."""
    V, H, E = spec.vocab_size, spec.num_hiddens, spec.embed_size
    shapes = {"W_emb": (V, E)} if E else {}
    for layer in range(spec.num_layers):
        I = (E or V) if layer == 0 else H
        s = layer_suffix(layer)
        recurrent = recurrent_params(spec.cell, H)
        for g in get_cell(spec.cell).GATES:  # W_x{g}, W_h{g}, b_{g}, as the book orders them
            shapes.update({f"W_x{g}{s}": (I, H), **({f"W_h{g}{s}": recurrent[f"W_h{g}"]} if f"W_h{g}" in recurrent
                                                    else {}), f"b_{g}{s}": (H,)})
        shapes.update({f"{name}{s}": shape for name, shape in recurrent.items()})  # a cell file's own names
    shapes.update({"W_hq": (H, V), "b_q": (V,)})
    return shapes


def init_params(vocab_size, num_hiddens, *, cell="rnn", num_layers=1, embed_size=None, backend=None,
                seed=0, dtype="float32"):
    """Weights ~ normal(0, 0.01), biases zero, as in the book; W_emb ~ normal(0, 1/√E).

    W_emb's scale: a one-hot input row has norm 1, so a row of W_emb with norm about
    1 (E entries of variance 1/E) feeds layer 0 the same scale, and X_t·W_x starts at
    the size the book's 0.01 weights give with one-hot input.

    Drawn on the host by a NumPy Generator and then moved, so one seed gives the
    same model on the CPU and the GPU. With the defaults this is the book's model:
    {W_xh (V,H), W_hh (H,H), b_h (H,), W_hq (H,V), b_q (V,)}.

    cell: a built-in name (rnn, gru, lstm), a path to a cell file, a shipped one's
    short name (examples/cifg) or a module; a cell file's init_param(name, shape,
    rng), where it has one, draws its layers' parameters (names without suffix).
    """
    spec = _spec_from_args(vocab_size, num_hiddens, cell, num_layers, embed_size)
    if str(dtype) not in DTYPES:
        raise ValueError(f"dtype must be float32 (training) or float64 (checks), got {dtype!r}")
    backend = get_backend(backend)
    rng = np.random.default_rng(seed)
    params = {}
    cell = get_cell(spec.cell)
    for name, shape in param_shapes(spec).items():
        host = None
        if name not in ("W_emb", "W_hq", "b_q") and hasattr(cell, "init_param"):  # a cell file's own init
            host = cell.init_param(re.sub(r"_l\d+$", "", name), shape, rng)
        if host is not None:
            pass
        elif len(shape) == 1:  # b_* (and a cell file's vectors): zeros
            host = np.zeros(shape)
        else:
            host = rng.normal(0.0, 1.0 / np.sqrt(spec.embed_size) if name == "W_emb" else 0.01, size=shape)
        params[name] = backend.asarray(host.astype(dtype))
    return params


def _spec_from_args(vocab_size, num_hiddens, cell, num_layers, embed_size):
    for name, value in (("vocab_size", vocab_size), ("num_hiddens", num_hiddens), ("num_layers", num_layers)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    embed_size = 0 if embed_size is None else embed_size
    if isinstance(embed_size, bool) or not isinstance(embed_size, (int, np.integer)) or embed_size < 0:
        raise ValueError(f"embed_size must be an integer >= 1, or None / 0 for one-hot input, got {embed_size!r}")
    return Spec(cell_key(cell), int(num_layers), int(vocab_size), int(num_hiddens), int(embed_size))


def model_spec(params, cell=None):
    """The Spec that a parameter dict describes; a clear ValueError if its keys or
    shapes fit no model. cell: the cell (a name, a path to a cell file or a module);
    None reads a built-in cell off the keys, which a cell file's parameters may
    share (a GRU in the protocol has the built-in GRU's names): give cell= for those."""
    if not isinstance(params, dict) or "W_hq" not in params:
        raise ValueError("params must be a dict of arrays with at least W_hq (as init_params returns)")
    given = cell is not None
    if given:
        cell = cell_key(cell)
    else:
        cell = "lstm" if "W_hi" in params else "gru" if "W_hz" in params else "rnn"
    first = get_cell(cell).GATES[0]
    num_layers = 1
    while f"b_{first}_l{num_layers}" in params:
        num_layers += 1
    spec, expected = likely_spec(params, cell, num_layers, _dim(params, "W_emb", 1) or 0)
    H, V, E = spec.num_hiddens, spec.vocab_size, spec.embed_size
    missing = [k for k in expected if k not in params]
    unknown = [k for k in params if k not in expected]
    if missing or unknown:
        raise ValueError(f"params do not describe a {num_layers}-layer {cell_name(cell)} model: "
                         + "; ".join(s for s in (missing and f"missing {', '.join(missing)}",
                                                 unknown and f"unexpected {', '.join(unknown)}") if s)
                         + ("" if given else "; for the parameters of a cell file, pass cell= (its path or module)"))
    for k, shape in expected.items():
        if tuple(params[k].shape) != shape:
            raise ValueError(f"{k} has shape {tuple(params[k].shape)}, expected {shape} "
                             f"(V={V}, H={H}{f', E={E}' if E else ''})")
    return spec


def likely_spec(arrays, cell, num_layers, embed_size):
    """(spec, param_shapes(spec)) for the arrays of a model: H and V as read off W_hq,
    or, where some array does not fit those, the reading (from W_hq, layer 0's first
    recurrent matrix and b_q) that the most arrays fit, so that one damaged array is
    the one an error names. A ValueError when no reading has both."""
    cell = cell_key(cell)
    first = f"W_h{get_cell(cell).GATES[0]}" if isinstance(cell, str) else f"b_{get_cell(cell).GATES[0]}"
    readings = [(_dim(arrays, "W_hq", 0), _dim(arrays, "W_hq", 1)), (_dim(arrays, first, 0), _dim(arrays, "b_q", 0)),
                (_dim(arrays, first, 0), _dim(arrays, "W_hq", 1)), (_dim(arrays, "W_hq", 0), _dim(arrays, "b_q", 0))]
    best = None
    for H, V in ((H, V) for H, V in readings if H and V):
        spec = Spec(cell, num_layers, V, H, embed_size)
        shapes = param_shapes(spec)
        misfits = sum(k in arrays and tuple(arrays[k].shape) != shape for k, shape in shapes.items())
        if best is None or misfits < best[0]:
            best = (misfits, spec, shapes)
        if not misfits:  # the first reading that every array fits: the usual case, at once
            break
    if best is None:
        raise ValueError(f"the arrays describe no model: W_hq has shape {tuple(arrays['W_hq'].shape)}, expected (H, V)")
    return best[1], best[2]


def _dim(params, name, axis):
    """params[name].shape[axis], or None when there is no such array or axis."""
    shape = getattr(params.get(name), "shape", ())
    return int(shape[axis]) if len(shape) > axis else None


# ----------------------------------------------------------------------------- buffers
class Workspace:
    """Buffers kept across minibatches, so the large arrays of a step (the states,
    the gates, their gradients, the logits, the concatenated weights) are
    allocated once, not every step.

    A buffer is made on first use and again only when its shape or dtype changes.
    Arrays that rnn_forward / rnn_backward return from a workspace (logits, the
    cache, the grads) are valid until the next call that uses the same workspace.
    """

    def __init__(self):
        self._buffers = {}

    def get(self, name, shape, dtype, xp):
        buf = self._buffers.get(name)
        if buf is None or buf.shape != tuple(shape) or buf.dtype != dtype or array_module(buf) is not xp:
            buf = self._buffers[name] = xp.empty(shape, dtype=dtype)
        return buf


# ----------------------------------------------------------------------------- the phases
def prepare(params, ws, spec=None):
    """The weights of one window, as the forward and backward use them: for each layer
    its input blocks side by side, W_x (I,kH) and b (kH,) (for one-hot layer 0 the
    lookup table W_x + b (V,kH)), and the cell's recurrent weights. Copies, so a
    window's backward sees the weights its forward used even after an update."""
    spec = spec or model_spec(params)
    cell = get_cell(spec.cell)
    xp, dtype, H = array_module(params["W_hq"]), params["W_hq"].dtype, spec.num_hiddens
    k = len(cell.GATES)
    layers = []
    for layer in range(spec.num_layers):
        s, key = layer_suffix(layer), f"l{layer}."
        I = (spec.embed_size or spec.vocab_size) if layer == 0 else H
        W_x = ws.get(key + "W_x", (I, k * H), dtype, xp)
        b = ws.get(key + "b", (k * H,), dtype, xp)
        for i, g in enumerate(cell.GATES):
            W_x[:, i * H:(i + 1) * H] = params[f"W_x{g}{s}"]
            b[i * H:(i + 1) * H] = params[f"b_{g}{s}"]
        if layer == 0 and not spec.embed_size:
            W_x += b  # the one-hot lookup table W_x + b
        recurrent = cell.prepare([params[name + s] for name in recurrent_params(cell, H)], ws, key)
        layers.append({"W_x": W_x, "b": b, "recurrent": recurrent})
    return {"spec": spec, "layers": layers, "W_emb": params.get("W_emb"), "W_hq": params["W_hq"],
            "b_q": params["b_q"]}


def input_forward(prep, ids, ws, T, B):
    """Layer 0's input: the one-hot ids themselves, or the embedding E (T·B, E)."""
    spec = prep["spec"]
    if not spec.embed_size:
        return None, None
    E = ws.get("E", (T * B, spec.embed_size), prep["W_emb"].dtype, array_module(prep["W_emb"]))
    return embedding_forward(prep["W_emb"], ids, out=E)


def layer_input_forward(prep, layer, X_in, ids, ws, T, B, token_mask=None):
    """One layer's input products X_t·W_x + b for every block, once over all T·B rows,
    into the cell's input buffer. X_in (T·B, I), or None for one-hot ids (then a row
    lookup, whose one-hot rows dropout scales by token_mask (T·B, 1)). Returns A (T,B,kH)."""
    spec, w = prep["spec"], prep["layers"][layer]
    cell, H = get_cell(spec.cell), spec.num_hiddens
    xp, dtype = array_module(w["W_x"]), w["W_x"].dtype
    A = cell.input_buffer(ws, f"l{layer}.", T, B, H, dtype, xp)
    A_rows = A.reshape(T * B, A.shape[2])
    if X_in is None:
        onehot_forward(w["W_x"], ids, out=A_rows)  # X_t·W_x + b: a row lookup
        if token_mask is not None:  # dropout on the one-hot X_t: (X_t ⊙ m)·W_x + b = m·(X_t·W_x) + b
            A_rows -= w["b"]
            A_rows *= token_mask
            A_rows += w["b"]
    else:
        xp.matmul(X_in, w["W_x"], out=A_rows)  # X_t·W_x for every block, all T·B rows
        A_rows += w["b"]
    return A


def output_forward(H_all, W_hq, b_q, out):
    """O = H·W_hq + b_q over all T·B rows. H_all (T·B, H); out (T·B, V)."""
    xp = array_module(out)
    xp.matmul(H_all, W_hq, out=out)
    out += b_q
    return out


def output_backward(dlogits, H_all, W_hq, dW_hq, dH_out):
    """From dL/dO (T·B, V): dW_hq = Hᵀ·dO into dW_hq (H,V), db_q returned, and
    dL/dH_t from each step's own output, dO·W_hqᵀ, into dH_out (T·B, H)."""
    xp = array_module(dW_hq)
    xp.matmul(H_all.T, dlogits, out=dW_hq)  # into W_hq
    xp.matmul(dlogits, W_hq.T, out=dH_out)  # into H_t, from O_t
    return dlogits.sum(axis=0)  # into b_q


def layer_backward(prep, layer, dA, X_in, ids, ws, dX_in, token_mask=None):
    """The input blocks' weight gradients from dA (T·B, kH), the gradient at the
    pre-activations, once over all rows; and dL/dX_in = dA·W_xᵀ into dX_in (T·B, I)
    when a layer or an embedding lies below. Returns (dW_x (I,kH), db (kH,))."""
    spec, w = prep["spec"], prep["layers"][layer]
    xp = array_module(dA)
    if X_in is None and token_mask is not None:  # one-hot rows scaled by dropout
        dA_kept = ws.get("l0.dA_kept", dA.shape, dA.dtype, xp)
        xp.multiply(dA, token_mask, out=dA_kept)
        return onehot_backward(dA_kept, ids, spec.vocab_size)[0], dA.sum(axis=0)  # into W_x's rows, and b
    if X_in is None:
        return onehot_backward(dA, ids, spec.vocab_size)  # into the looked-up rows of W_x, and b
    dW_x = ws.get(f"l{layer}.dW_x", w["W_x"].shape, dA.dtype, xp)
    xp.matmul(X_in.T, dA, out=dW_x)  # into W_x
    xp.matmul(dA, w["W_x"].T, out=dX_in)  # into the layer's input
    return dW_x, dA.sum(axis=0)  # into b


# ----------------------------------------------------------------------------- the sequence
def rnn_forward(params, X, state, *, activation="tanh", workspace=None, masks=None, cell=None):
    """Run the model over a minibatch.

    X (B,T) integer token ids (an array or nested lists), best passed as a host
    array: its range is then checked on the host (CuPy does not raise on a bad
    index) and it is moved here. state: see the module docstring; None is zeros.
    Returns (logits, state_T, cache): logits (T·B, V) time-major, so row t·B + b is
    step t of sequence b, as the book's torch.cat(outputs, dim=0); state_T fresh
    arrays, in the form of state. workspace: a Workspace to reuse buffers across calls;
    the logits and the cache are then its buffers, valid until its next use (copy the
    logits to keep them). masks: dropout masks from dropout.dropout_masks (None: no dropout).
    cell: a built-in name, a path to a cell file or a module (see init_params);
    None reads a built-in cell off the keys (model_spec).
    """
    spec = model_spec(params, cell)
    X = check_tokens(X, spec.vocab_size)
    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}: choose one of {', '.join(ACTIVATIONS)}")
    if spec.cell != "rnn" and activation != "tanh":
        raise ValueError(f"activation {activation!r} applies to the plain rnn cell only; "
                         f"the {spec.cell} cell has its own nonlinearities (leave activation at 'tanh')")
    B, T = X.shape
    xp = array_module(params["W_hq"])
    states = split_state(as_arrays(state, xp, params["W_hq"].dtype), spec, B)
    ws = workspace if workspace is not None else Workspace()
    ids = xp.asarray(X.T.reshape(-1))  # (T·B,) time-major token ids
    return forward_ids(prepare(params, ws, spec), ids, T, B, states, activation, ws, masks)


def forward_ids(prep, ids, T, B, states, activation, ws, masks=None):
    """rnn_forward on prepared weights and device ids (T·B,), already checked; states
    is one tuple per layer. Generation calls this once per character."""
    spec = prep["spec"]
    masks = masks or [None] * (spec.num_layers + 1)
    if len(masks) != spec.num_layers + 1:
        raise ValueError(f"masks: expected {spec.num_layers + 1} (one per layer input and one for the output), "
                         f"got {len(masks)}; draw them with dropout.dropout_masks")
    X_in, emb_cache = input_forward(prep, ids, ws, T, B)
    layers, states_T = [], []
    for layer in range(spec.num_layers):
        X_in = _dropped(X_in, masks[layer], ws, f"l{layer}.X_drop")
        A = layer_input_forward(prep, layer, X_in, ids, ws, T, B, masks[0] if X_in is None else None)
        Hs, state_T, cache = get_cell(spec.cell).sequence_forward(A, states[layer], prep["layers"][layer]["recurrent"],
                                                               ws, f"l{layer}.", activation)
        layers.append({"X_in": X_in, "cell": cache})
        states_T.append(state_T)
        X_in = Hs[1:].reshape(T * B, spec.num_hiddens)  # the next layer reads H_t
    X_out = _dropped(X_in, masks[-1], ws, "out.X_drop")
    logits = output_forward(X_out, prep["W_hq"], prep["b_q"],
                            out=ws.get("logits", (T * B, spec.vocab_size), X_in.dtype, array_module(X_in)))
    cache = {"prep": prep, "ids": ids, "T": T, "B": B, "layers": layers, "emb": emb_cache, "ws": ws,
             "X_out": X_out, "masks": masks}
    return logits, join_state(states_T, spec), cache


def rnn_backward(dlogits, cache, dstate_T=None, *, dH_T=None, keep_cache=False, cell=None):
    """Backpropagation through time: the mirror of rnn_forward.

    dlogits (T·B, V): dL/dO, time-major (None: no output gradient, as when only a
    later window's gradient flows back through this one). dstate_T: the gradient
    arriving at the final state, in the form of the state (None: zero).
    Returns (grads, dstate_0): grads keyed like the params; dstate_0 the gradient
    at the initial state, in the form of the state. dH_T: the name dstate_T had
    when the state was always H, still accepted. The grads are buffers of the
    forward's workspace (see Workspace), valid until its next use: copy them to keep them.

    The gated cells write their gate gradients over the cached gates (memory that
    is still in cache, so it is faster), which spends the cache: a second backward
    through it is an error. keep_cache=True leaves it whole, for backpropagating
    through the same window more than once.

    cell: the cell, as given to rnn_forward (the cache knows it already; a different one is an error).
    """
    if cache.get("spent"):
        raise ValueError("this cache was spent by an earlier rnn_backward, which wrote the gate gradients over "
                         "its gates; run rnn_forward again, or pass keep_cache=True to every rnn_backward that "
                         "must leave the cache whole")
    dstate_T = dH_T if dstate_T is None else dstate_T
    if cell is not None and get_cell(cell_key(cell)) is not get_cell(cache["prep"]["spec"].cell):
        raise ValueError(f"rnn_backward: cell={cell_name(cell_key(cell))!r}, but the forward ran the "
                         f"{cell_name(cache['prep']['spec'].cell)} cell; pass the same cell to both, or leave it out")
    prep, ids, T, B, ws, masks = (cache[k] for k in ("prep", "ids", "T", "B", "ws", "masks"))
    spec, cell = prep["spec"], get_cell(prep["spec"].cell)
    H, V, L = spec.num_hiddens, spec.vocab_size, spec.num_layers
    if dlogits is not None and tuple(getattr(dlogits, "shape", ())) != (T * B, V):
        got = f"shape {tuple(dlogits.shape)}" if hasattr(dlogits, "shape") else f"a {type(dlogits).__name__}"
        raise ValueError(f"dlogits must be an array of shape ({T * B}, {V}), the shape of the logits rnn_forward "
                         f"returned (T·B rows, time-major, one column per token); got {got}")
    xp, dtype = array_module(prep["W_hq"]), prep["W_hq"].dtype
    dstates_T = split_state(as_arrays(dstate_T, xp, dtype), spec, B, what="dstate_T")
    cache["spent"] = cell.SPENDS_CACHE and not keep_cache  # from here on, the cells may overwrite it
    grads = {}
    top = L - 1
    dHs = ws.get(f"l{top}.dHs", (T, B, H), dtype, xp)  # dL/dH_t from above, per layer
    dW_hq = ws.get("dW_hq", (H, V), dtype, xp)
    if dlogits is None:
        dW_hq[...], dHs[...] = 0, 0
        db_q = xp.zeros(V, dtype=dtype)
    else:
        db_q = output_backward(dlogits, cache["X_out"], prep["W_hq"], dW_hq, dH_out=dHs.reshape(T * B, H))
        if masks[-1] is not None:
            dropout_backward(dHs.reshape(T * B, H), masks[-1])  # into the top layer's H_t
    dstates_0 = [None] * L
    for layer in range(top, -1, -1):
        X_in = cache["layers"][layer]["X_in"]
        dA, dstates_0[layer], dW_h = cell.sequence_backward(dHs, cache["layers"][layer]["cell"], dstates_T[layer],
                                                            keep_cache)
        dA = dA.reshape(T * B, dA.shape[2])
        below = layer > 0 or spec.embed_size
        dX_in = ws.get(f"l{layer - 1}.dHs" if layer else "dE", X_in.shape, dtype, xp) if below else None
        dW_x, db = layer_backward(prep, layer, dA, X_in, ids, ws, dX_in, masks[0] if X_in is None else None)
        if below and masks[layer] is not None:
            dropout_backward(dX_in, masks[layer])  # into the layer's input, before dropout
        s = layer_suffix(layer)
        for i, g in enumerate(cell.GATES):
            grads[f"W_x{g}{s}"] = dW_x[:, i * H:(i + 1) * H]
            grads[f"b_{g}{s}"] = db[i * H:(i + 1) * H]
        for name, dW in zip(recurrent_params(cell, H), dW_h):
            grads[name + s] = dW
        if layer:
            dHs = dX_in.reshape(T, B, H)
        elif spec.embed_size:
            grads["W_emb"] = embedding_backward(dX_in, cache["emb"])
    grads["W_hq"], grads["b_q"] = dW_hq, db_q
    return {k: grads[k] for k in param_shapes(spec)}, join_state(dstates_0, spec)


def kink_pattern(cache):
    """Where a ReLU could break a finite difference: the signs of every pre-activation
    Z_t (t ≥ 1) of a ReLU model's layers, as a host bool array (T,B,H), or (L,T,B,H)
    for L layers; None without ReLU.
    (H_t = relu(Z_t) > 0 exactly when Z_t > 0; the initial state is no pre-activation.)"""
    layers = [entry["cell"] for entry in cache["layers"]]
    if layers[0].get("kinks") is not None:  # a cell file's kinks(cache_t), step by step
        backend = backend_of(cache["prep"]["W_hq"])
        parts = [[z for t in c["caches"] for z in _members(c["kinks"](t))] for c in layers]
        return np.concatenate([backend.to_numpy(z).ravel() > 0 for p in parts for z in p])  # deliberate host sync
    if layers[0].get("activation") != "relu":
        return None
    backend = backend_of(layers[0]["Hs"])
    signs = [backend.to_numpy(c["Hs"][1:] > 0) for c in layers]  # deliberate host sync: a checker
    return signs[0] if len(signs) == 1 else np.stack(signs)


def _members(z):
    return z if isinstance(z, tuple) else (z,)


def _dropped(X, mask, ws, name):
    """X ⊙ mask into a buffer of the workspace; X itself when there is no mask (or no X)."""
    if X is None or mask is None:
        return X
    return dropout_forward(X, mask, out=ws.get(name, X.shape, X.dtype, array_module(X)))


# ----------------------------------------------------------------------------- states and ids
def split_state(state, spec, B, what="state"):
    """The public form of a state (see the module docstring) -> one tuple per layer,
    with None for zeros; a clear error when its shapes do not fit."""
    names = get_cell(spec.cell).STATES
    L, H = spec.num_layers, spec.num_hiddens
    if state is None:
        return [(None,) * len(names)] * L
    if isinstance(state, (tuple, list)) and len(names) == 1:  # (H,) is H; a pair is the lstm's form
        if len(state) != 1:
            raise ValueError(f"{what} of a {spec.cell} model is one array H, got a tuple of {len(state)}; "
                             f"pass H alone (the pair (H, C) is the lstm's state)")
        state = state[0]
    parts = state if isinstance(state, (tuple, list)) and len(names) > 1 else (state,)
    if len(parts) != len(names):
        raise ValueError(f"{what} of a {spec.cell} model is {'the tuple (' + ', '.join(names) + ')' if len(names) > 1 else 'one array H'}, "
                         f"got {len(parts)} part(s)")
    shape = (B, H) if L == 1 else (L, B, H)
    for name, part in zip(names, parts):
        if part is not None and tuple(part.shape) != shape:
            raise ValueError(f"{what} {name} has shape {tuple(part.shape)}, expected {shape} "
                             f"({'' if L == 1 else 'layers, '}batch, num_hiddens)")
    return [tuple(None if p is None else (p if L == 1 else p[layer]) for p in parts) for layer in range(L)]


def as_arrays(state, xp, dtype):
    """A state given as nested lists (or other array-likes) -> arrays of the model's dtype;
    a host array given to a GPU model is moved to the device."""
    if state is None:
        return state
    if hasattr(state, "shape"):
        return state if array_module(state) is xp else xp.asarray(state)
    if isinstance(state, tuple):
        return tuple(as_arrays(part, xp, dtype) for part in state)
    try:
        return xp.asarray(np.asarray(state, dtype=dtype))
    except (TypeError, ValueError) as e:
        raise TypeError(f"a state must be an array of numbers (or a tuple of them), got {type(state).__name__} ({e})") from None


def join_state(per_layer, spec):
    """Mirror of split_state: one tuple per layer -> the public form, as fresh arrays."""
    names = get_cell(spec.cell).STATES
    if spec.num_layers == 1:
        parts = list(per_layer[0])
    else:
        xp = array_module(per_layer[0][0])
        parts = [xp.stack([s[i] for s in per_layer]) for i in range(len(names))]
    return parts[0] if len(names) == 1 else tuple(parts)


def check_tokens(X, V):
    """Shape, type and, on the host, range of the token ids; CuPy would not raise on bad ids.
    Nested lists and other array-likes of integers are accepted."""
    if not hasattr(X, "ndim"):
        try:
            X = np.asarray(X)
        except (TypeError, ValueError) as e:
            raise TypeError(f"X must be a (batch, steps) array of integer token ids, got {type(X).__name__} ({e})") from None
    if X.ndim != 2:
        raise ValueError(f"X must have shape (batch, steps), got shape {tuple(X.shape)}")
    if X.shape[0] < 1 or X.shape[1] < 1:
        raise ValueError(f"X must hold at least one token, got shape {tuple(X.shape)}")
    if isinstance(X, np.ndarray):
        if not np.issubdtype(X.dtype, np.integer):
            raise TypeError(f"X must hold integer token ids, got dtype {X.dtype}")
        lo, hi = int(X.min()), int(X.max())
        if lo < 0 or hi >= V:
            raise ValueError(f"token ids must lie in [0, {V}), got values in [{lo}, {hi}]")
    return X


# The cells' step functions, importable from here as from their own modules.
from .cells.gru import gru_step_backward, gru_step_forward  # noqa: E402,F401
from .cells.lstm import lstm_step_backward, lstm_step_forward  # noqa: E402,F401
from .cells.rnn import rnn_step_backward, rnn_step_forward  # noqa: E402,F401
