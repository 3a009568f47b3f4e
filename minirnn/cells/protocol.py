"""A cell in the simple protocol: one plain Python file, loaded and checked here.

What the file holds (the names are the contract):

    NAME = "mgu"            how the cell is named in output, logs and checkpoints
    GATES = ("f", "h")      the blocks; block g has W_x{g} (I,H) and b_{g} (H,)
    STATES = ("H",)         the state arrays, H first; the layer above and the output read H

    def step_forward(A_t, state, W):
        A_t (B,kH): X_t·[W_x* side by side] + [b_*], blocks in GATES order (computed by
        the engine). state: tuple of (B,H) arrays in STATES order. W: this layer's
        recurrent parameters by their names without the layer suffix (default
        W_h{g} (H,H) for each g in GATES). Returns (new_state, cache_t).

    def step_backward(dstate, cache_t, W):
        dstate: tuple of (B,H), the total gradient at each array of the new state.
        Returns (dA_t (B,kH), dstate_prev (tuple), dW {name: array like W[name]}),
        this step's share.

Optional: recurrent_params(H) -> {name: shape}; init_param(name, shape, rng) -> a
host array (or None: the engine's default, normal(0, 0.01) or zeros); kinks(cache_t) -> the pre-activations whose sign change is a kink.
Other names in the file are ignored.

load_cell(cell) takes a built-in name, a path to a .py file, a short name of a
shipped file (examples/cifg, reference/gru) or a module, checks it (the names and
their signatures, the gates and states, a tiny forward and backward in float64
and that the steps leave their inputs alone) and returns a ProtocolCell, which
runs the steps over a window for model.py. Every failure is one CellError line
that names the file and what is wrong. Nothing here runs a file a checkpoint names.
"""
import hashlib
import importlib.util
import inspect
import os
import traceback

import numpy as np

from ..backend import array_module
from ..errors import MinirnnError

PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
SHIPPED = ("examples", "reference")  # folders of this package whose files load by a short name
REQUIRED = {"NAME": None, "GATES": None, "STATES": None,
            "step_forward": ("A_t", "state", "W"), "step_backward": ("dstate", "cache_t", "W")}
OPTIONAL = {"recurrent_params": ("H",), "init_param": ("name", "shape", "rng"), "kinks": ("cache_t",)}


class CellError(MinirnnError, ValueError):
    """A cell file that does not follow the protocol (one line: the file, then what is wrong)."""


def is_cell_path(text):
    """Whether --cell's text names a file (or a shipped one) rather than a built-in cell."""
    return isinstance(text, str) and (text.endswith(".py") or "/" in text or os.sep in text)


def shipped_cells():
    """The short names of the cell files shipped with the package: examples/cifg, ..."""
    return [f"{d}/{f[:-3]}" for d in SHIPPED for f in sorted(os.listdir(os.path.join(PACKAGE_DIR, d)))
            if f.endswith(".py") and not f.startswith("_")]


def cell_path(text):
    """The file a --cell PATH names: a shipped short name (examples/cifg) or a path."""
    head = text.replace(os.sep, "/").split("/")[0]
    if head in SHIPPED and not os.path.exists(text):
        name = text[:-3] if text.endswith(".py") else text
        return os.path.join(PACKAGE_DIR, *name.split("/")) + ".py"
    return os.path.abspath(os.path.expanduser(text))


_LOADED = {}  # (path, sha256) -> ProtocolCell: a file is imported and checked once per process
_SEEN = {}  # (path, mtime, size) -> ProtocolCell


def load_cell(cell):
    """A ProtocolCell from a path, a shipped short name or a module; see the module docstring."""
    if isinstance(cell, ProtocolCell):
        return cell
    if inspect.ismodule(cell):
        key = (getattr(cell, "__file__", None) or cell.__name__, id(cell))
        if key not in _LOADED:
            _LOADED[key] = ProtocolCell(cell, getattr(cell, "__file__", None) or f"module {cell.__name__}")
        return _LOADED[key]
    if not isinstance(cell, (str, os.PathLike)):
        raise CellError(f"cell must be a built-in name, a path to a cell file or a module, got {type(cell).__name__}")
    text = os.fspath(cell)
    path = cell_path(text)
    if not os.path.isfile(path):
        shipped = ", ".join(shipped_cells())
        raise CellError(f"{text}: no such cell file; give the path of a .py file, or one of rnn, gru, lstm, {shipped}")
    if not path.endswith(".py"):
        raise CellError(f"{text}: a cell file is a Python module ending in .py")
    stat = os.stat(path)
    seen = _SEEN.get((path, stat.st_mtime_ns, stat.st_size))
    if seen is not None:  # the same file as a moment ago: not read again (the engine asks every minibatch)
        return seen
    sha = file_sha256(path)
    if (path, sha) not in _LOADED:
        module = _import(path, sha)
        _LOADED[(path, sha)] = ProtocolCell(module, path, sha)
    _SEEN[(path, stat.st_mtime_ns, stat.st_size)] = _LOADED[(path, sha)]
    return _LOADED[(path, sha)]


def file_sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def _import(path, sha):
    spec = importlib.util.spec_from_file_location(f"minirnn_cell_{sha[:16]}", path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as e:
        raise CellError(f"{path}: importing it raised {_where(e, path)}") from None
    return module


def _where(e, path):
    """'TypeError: message (line 12)': an exception and the line of the cell file it came from."""
    if isinstance(e, SyntaxError) and e.lineno:
        return f"{type(e).__name__}: {e}"  # its message names the file and the line already
    lines = [f.lineno for f in traceback.extract_tb(e.__traceback__) if os.path.abspath(f.filename) == path]
    return f"{type(e).__name__}: {e}" + (f" (line {lines[-1]})" if lines else "")


# ----------------------------------------------------------------------------- the cell
class ProtocolCell:
    """A checked cell file, with the interface model.py gives every cell: GATES, STATES,
    SPENDS_CACHE, recurrent_params, prepare, input_buffer, sequence_forward/backward."""

    SPENDS_CACHE = False  # the steps' caches are read, never overwritten

    def __init__(self, module, path, sha256=None):
        self.module, self.path, self.sha256 = module, path, sha256
        self.file = os.path.basename(path)
        self._check_names()
        self.NAME, self.GATES, self.STATES = module.NAME, tuple(module.GATES), tuple(module.STATES)
        self.step_forward, self.step_backward = module.step_forward, module.step_backward
        self.kinks = getattr(module, "kinks", None)
        self._check_steps()

    def __repr__(self):
        return f"<cell {self.NAME} from {self.path}>"

    def __str__(self):
        return self.NAME

    def fail(self, what):
        raise CellError(f"{self.path}: {what}")

    # ------------------------------------------------------------------ parameters
    def recurrent_params(self, H):
        """{name: shape} of one layer's recurrent parameters (no layer suffix)."""
        if hasattr(self.module, "recurrent_params"):
            return {k: tuple(v) for k, v in self.module.recurrent_params(H).items()}
        return {f"W_h{g}": (H, H) for g in self.GATES}

    def init_param(self, name, shape, rng):
        """The file's init_param where it has one, else None (the engine's default)."""
        if not hasattr(self.module, "init_param"):
            return None
        value = self.module.init_param(name, shape, rng)
        if value is None:  # the engine's default for this one
            return None
        value = np.asarray(value, dtype=np.float64)
        if value.shape != tuple(shape):
            self.fail(f"init_param({name!r}, {shape}, rng) returned shape {value.shape}, expected {tuple(shape)}")
        return value

    # ------------------------------------------------------------------ checks on load
    def _check_names(self):
        m = self.module
        for name, args in REQUIRED.items():
            if not hasattr(m, name):
                self.fail(f"missing {name}: a cell file defines NAME, GATES, STATES, step_forward(A_t, state, W) "
                          f"and step_backward(dstate, cache_t, W)")
        for name, args in {**REQUIRED, **OPTIONAL}.items():
            if args is None or not hasattr(m, name):
                continue
            f = getattr(m, name)
            if not callable(f):
                self.fail(f"{name} must be a function {name}({', '.join(args)})")
            try:
                params = [p for p in inspect.signature(f).parameters.values()
                          if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty]
            except (TypeError, ValueError):
                continue
            if len(params) != len(args):
                self.fail(f"{name} takes {len(params)} argument(s) ({', '.join(p.name for p in params)}), "
                          f"expected {len(args)}: {name}({', '.join(args)})")
        if not (isinstance(m.NAME, str) and m.NAME.isidentifier()):
            self.fail(f"NAME must be a short name (letters, digits, _), got {m.NAME!r}")
        for what, names in (("GATES", m.GATES), ("STATES", m.STATES)):
            if not (isinstance(names, (tuple, list)) and names and all(isinstance(g, str) and g.isidentifier()
                                                                          for g in names)):
                self.fail(f"{what} must be a non-empty tuple of names, got {names!r}")
            if len(set(names)) != len(names):
                self.fail(f"{what} has a repeated name: {tuple(names)}")
        if m.STATES[0] != "H":
            self.fail(f"STATES[0] must be 'H' (the layer above and the output read H), got {tuple(m.STATES)}")

    def _check_steps(self):
        """A tiny forward and backward in float64: shapes, dtypes, no mutated inputs."""
        rng = np.random.default_rng(0)
        B, H, k, n = 2, 3, len(self.GATES), len(self.STATES)
        try:
            shapes = self.recurrent_params(H)
        except Exception as e:
            self.fail(f"recurrent_params({H}) raised {_where(e, self.path)}")
        if not (isinstance(shapes, dict) and shapes):
            self.fail(f"recurrent_params(H) must return a non-empty dict {{name: shape}}, got {shapes!r}")
        for name in shapes:
            if not (isinstance(name, str) and name.isidentifier()) or name.startswith(("W_x", "b_")) and any(
                    name in (f"W_x{g}", f"b_{g}") for g in self.GATES) or name in ("W_hq", "b_q", "W_emb"):
                self.fail(f"recurrent parameter name {name!r} is not a new name (W_x{{g}}, b_{{g}}, W_hq, b_q and "
                          f"W_emb are the engine's)")
        A_t = rng.normal(size=(B, k * H))
        state = tuple(rng.normal(size=(B, H)) for _ in range(n))
        W = {name: rng.normal(0, 0.5, size=shape) for name, shape in shapes.items()}
        copies = [A_t.copy(), [s.copy() for s in state], {k_: v.copy() for k_, v in W.items()}]
        try:
            out = self.step_forward(A_t, state, W)
        except Exception as e:
            self.fail(f"step_forward on A_t (2,{k * H}), a state of {n} (2,3) array(s) and W {_shapes(W)} raised "
                      f"{_where(e, self.path)}")
        if not (isinstance(out, tuple) and len(out) == 2):
            self.fail("step_forward must return (new_state, cache_t), a pair")
        new_state, cache_t = out
        self._check_tuple("step_forward's new_state", new_state, (B, H))
        self._check_unchanged("step_forward", ("A_t", "state", "W"), copies, (A_t, state, W))
        dstate = tuple(rng.normal(size=(B, H)) for _ in range(n))
        dcopy = [[d.copy() for d in dstate], {k_: v.copy() for k_, v in W.items()}]
        try:
            back = self.step_backward(dstate, cache_t, W)
        except Exception as e:
            self.fail(f"step_backward raised {_where(e, self.path)}")
        if not (isinstance(back, tuple) and len(back) == 3):
            self.fail("step_backward must return (dA_t, dstate_prev, dW), a triple")
        dA_t, dstate_prev, dW = back
        self._check_array("step_backward's dA_t", dA_t, (B, k * H))
        self._check_tuple("step_backward's dstate_prev", dstate_prev, (B, H))
        if not isinstance(dW, dict) or set(dW) != set(W):
            got = sorted(dW) if isinstance(dW, dict) else type(dW).__name__
            self.fail(f"step_backward's dW must be a dict with the keys {sorted(W)}, got {got}")
        for name in W:
            self._check_array(f"step_backward's dW[{name!r}]", dW[name], W[name].shape)
        self._check_unchanged("step_backward", ("dstate", "W"), dcopy, (dstate, W))
        if self.kinks is not None:
            try:
                z = self.kinks(cache_t)
            except Exception as e:
                self.fail(f"kinks(cache_t) raised {_where(e, self.path)}")
            if not all(hasattr(a, "shape") for a in (z if isinstance(z, tuple) else (z,))):
                self.fail(f"kinks(cache_t) must return an array (or a tuple of arrays), got {type(z).__name__}")

    def _check_array(self, what, a, shape):
        if not hasattr(a, "shape") or not hasattr(a, "dtype"):
            self.fail(f"{what} must be an array of shape {shape}, got {type(a).__name__}")
        if tuple(a.shape) != tuple(shape):
            self.fail(f"{what} has shape {tuple(a.shape)}, expected {tuple(shape)} (B=2, H=3 in the check on load)")
        if a.dtype != np.float64:
            self.fail(f"{what} has dtype {a.dtype} from float64 inputs; keep the inputs' dtype "
                      f"(xp.zeros_like(x), not xp.zeros(shape))")

    def _check_tuple(self, what, t, shape):
        if not isinstance(t, tuple) or len(t) != len(self.STATES):
            self.fail(f"{what} must be a tuple of {len(self.STATES)} array(s) in STATES order {self.STATES}, "
                      f"got {type(t).__name__}" + (f" of {len(t)}" if isinstance(t, (tuple, list)) else ""))
        for name, a in zip(self.STATES, t):
            self._check_array(f"{what} {name}", a, shape)

    def _check_unchanged(self, fn, names, before, after):
        for name, b, a in zip(names, before, after):
            pairs = zip(b, a) if isinstance(b, list) else ((b[k], a[k]) for k in b) if isinstance(b, dict) else [(b, a)]
            if any(not np.array_equal(x, y) for x, y in pairs):
                self.fail(f"{fn} changes its input {name} in place; the engine reuses it: write into new arrays")

    # ------------------------------------------------------------------ the engine's side
    def prepare(self, W_h, ws, key):
        """This window's recurrent parameters {name: copy}, in recurrent_params order:
        a window's backward sees the weights its forward used."""
        out = {}
        for name, w in zip(self._names, W_h):
            buf = ws.get(key + "W." + name, w.shape, w.dtype, array_module(w))
            buf[...] = w
            out[name] = buf
        return out

    def input_buffer(self, ws, key, T, B, H, dtype, xp):
        return ws.get(key + "A", (T, B, len(self.GATES) * H), dtype, xp)

    def sequence_forward(self, A, state0, W, ws, key, activation=None):
        """The steps over a window. A (T,B,kH); state0: a tuple with None for zeros.
        Returns (Hs (T+1,B,H), state_T, cache), as the built-in cells."""
        T, B, kH = A.shape
        H, xp = kH // len(self.GATES), array_module(A)
        Hs = ws.get(key + "Hs", (T + 1, B, H), A.dtype, xp)
        state = tuple(xp.zeros((B, H), dtype=A.dtype) if s is None else xp.array(s, dtype=A.dtype) for s in state0)
        Hs[0] = state[0]
        caches = []
        for t in range(T):
            state, cache_t = self.step_forward(A[t], state, W)
            Hs[t + 1] = state[0]
            caches.append(cache_t)
        cache = {"caches": caches, "W": W, "Hs": Hs, "ws": ws, "key": key, "kinks": self.kinks}
        return Hs, tuple(xp.array(s) for s in state), cache

    def sequence_backward(self, dHs, cache, dstate_T, keep_cache=False):
        """The steps in reverse, summing each step's dW. dHs (T,B,H): dL/dH_t from
        above; it receives the total gradient at each H_t. Returns (dA (T,B,kH),
        dstate_0, [dW in recurrent_params order])."""
        T, B, H = dHs.shape
        xp, dtype, W = array_module(dHs), dHs.dtype, cache["W"]
        dA = cache["ws"].get(cache["key"] + "dA", (T, B, len(self.GATES) * H), dtype, xp)
        carry = [xp.zeros((B, H), dtype=dtype) if dstate_T is None or dstate_T[i] is None
                 else xp.array(dstate_T[i], dtype=dtype) for i in range(len(self.STATES))]
        dW = {name: xp.zeros(w.shape, dtype=dtype) for name, w in W.items()}
        for t in range(T, 0, -1):  # dHs and dA hold step t in row t-1
            dHs[t - 1] += carry[0]  # total dL/dH_t: its own output + step t+1
            dA_t, dstate_prev, dW_t = self.step_backward((dHs[t - 1], *carry[1:]), cache["caches"][t - 1], W)
            dA[t - 1] = dA_t
            carry = list(dstate_prev)
            for name in dW:
                dW[name] += dW_t[name]  # this step's share
        return dA, tuple(carry), [dW[name] for name in self._names]

    @property
    def _names(self):
        return list(self.recurrent_params(1))


def _shapes(W):
    return "{" + ", ".join(f"{k}: {tuple(v.shape)}" for k, v in W.items()) + "}"
