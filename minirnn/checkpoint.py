"""Checkpoints: one .npz of plain arrays, written atomically, read without pickle.

Members:
    W_xh, W_hh, b_h, W_hq, b_q   the parameters (float32 or float64), under their own
                                names: those of the config's cell, layers and embedding
    vocab                       the tokens, a 1-D unicode array, id order
    config                      the run's Config as JSON text
    state                       epoch, position, RNG state and metrics as JSON text
    H, C                        the carried state (C for the LSTM), when saved mid-epoch
    opt.*                       the optimizer's state (Adagrad's G, Adam's m, v and t)
    ens.*                       with --ensemble K > 1, the snapshots: ens.epochs (K,),
                                ens.losses (K, N) and each member's weights as ens.{i}.{name}
    cell                        for a run with a cell file (--cell PATH): its NAME, file name,
                                sha256, gates, states and recurrent parameters, as JSON text;
                                never its code (resuming or generating needs --cell PATH again)
    outputs                     where the run writes its log, plot and best model, as JSON text
                                (optional), so that a resumed run continues them
    format                      "minirnn-checkpoint-1"

Reading parses each member's .npy header first and refuses object arrays before
any data is read, so a checkpoint from a stranger cannot run code; every problem
is one CheckpointError that says what is wrong.
"""
import dataclasses
import json
import os
import warnings
import zipfile

import numpy as np

from .atomic import atomic_write
from .cells.protocol import is_cell_path, load_cell, shipped_cells
from .cells.record import RecordedCell, check_against_record, cell_record
from .config import Config
from .data import Vocab
from .ensemble import Snapshots
from .errors import CheckpointError, MinirnnError, plural
from .backend import backend_of
from .model import likely_spec
from .train import ARRAY_FIELDS, TrainState

FORMAT = "minirnn-checkpoint-1"
STATE_KEYS = tuple(f.name for f in dataclasses.fields(TrainState) if f.name not in ARRAY_FIELDS)
# Keys that checkpoints of minirnn 0.1 do not have: such a checkpoint resumes with their defaults.
LATER_STATE_KEYS = ("lr", "best_heldout", "best_epoch", "evals_since_best", "stopped_early", "changes")


class Checkpoint:
    """A loaded checkpoint: params (host arrays), vocab, config, state dict, H (the
    carried state: an array, the pair (H, C) for the LSTM, or None), and outputs
    ({"log": path, "plot": path}, either may be absent), and snapshots (an
    ensemble.Snapshots of host arrays, or None)."""

    def __init__(self, params, vocab, config, state, H=None, outputs=None, optimizer_state=None, snapshots=None):
        self.params, self.vocab, self.config, self.state, self.H = params, vocab, config, state, H
        self.outputs = outputs or {}
        self.optimizer_state = optimizer_state or {}  # the optimizer's state_dict, host arrays
        self.snapshots = snapshots
        self.cell = None  # a cell file's record (cells.protocol.cell_record), for a run with --cell PATH


OUTPUTS = ("log", "plot", "save_best", "save")


def save(path, params, vocab, config, state=None, H=None, outputs=None, optimizer_state=None, snapshots=None):
    """Write a checkpoint atomically; host copies are made of device arrays.
    optimizer_state: an optimizer's state_dict (plain arrays), saved as members opt.*;
    snapshots: an ensemble.Snapshots, saved as members ens.*."""
    arrays = {k: backend_of(v).to_numpy(v) for k, v in params.items()}  # deliberate host sync
    arrays["vocab"] = np.array(vocab.idx_to_token)
    arrays["config"] = np.array(json.dumps(config.to_dict()))
    arrays["state"] = np.array(json.dumps(state or {}))
    arrays["format"] = np.array(FORMAT)
    if is_cell_path(config.cell):  # what the cell file was, never its code
        arrays["cell"] = np.array(json.dumps(cell_record(load_cell(config.cell), config.num_hiddens)))
    if H is not None:
        names = load_cell(config.cell).STATES if is_cell_path(config.cell) else ("H", "C")
        for name, part in zip(names, H if isinstance(H, tuple) else (H,)):
            arrays[name] = backend_of(part).to_numpy(part)
    for k, a in (optimizer_state or {}).items():
        arrays[f"opt.{k}"] = backend_of(a).to_numpy(a) if hasattr(a, "dtype") else np.asarray(a)
    if snapshots is not None and len(snapshots):
        arrays.update({f"ens.{k}": a for k, a in snapshots.state_dict().items()})
    if outputs:
        arrays["outputs"] = np.array(json.dumps({k: str(v) for k, v in outputs.items() if k in OUTPUTS and v}))
    atomic_write(path, lambda f: np.savez(f, **arrays))


def load(path):
    """Read and validate a checkpoint; raise CheckpointError for anything amiss."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise CheckpointError(f"checkpoint {path}: no such file; check the path")
    if not os.path.isfile(path):
        raise CheckpointError(f"checkpoint {path}: is not a file")
    if os.path.getsize(path) == 0:
        raise CheckpointError(f"checkpoint {path}: the file is empty (0 bytes); use an earlier checkpoint, "
                              f"or the one --save-best kept")
    try:
        arrays = _read_npz(path)
        return _validate(arrays, path)
    except CheckpointError:
        raise
    except MinirnnError as e:
        raise CheckpointError(f"checkpoint {path}: {e}") from None
    except Exception as e:  # any other failure of a damaged file
        raise CheckpointError(f"checkpoint {path}: damaged or not a minirnn checkpoint ({type(e).__name__}: {e})") from None


def _read_npz(path):
    """The .npy members of the zip at path, read from the file member by member (a
    checkpoint with an ensemble can be hundreds of MB: it is never held twice)."""
    try:
        f = open(path, "rb")
    except OSError as e:
        raise CheckpointError(f"checkpoint {path}: cannot be read ({e.strerror})") from None
    with f:
        head = f.read(4)
        f.seek(0)
        if not zipfile.is_zipfile(f):
            if head == b"PK\x03\x04":
                raise CheckpointError(f"checkpoint {path}: truncated or corrupted (its zip directory is unreadable); "
                                      f"use an earlier checkpoint, or the one --save-best kept")
            raise CheckpointError(f"checkpoint {path}: not an .npz file (no zip archive); was it written by --save?")
        f.seek(0)
        arrays = {}
        with zipfile.ZipFile(f) as z:
            for info in z.infolist():
                if not info.filename.endswith(".npy"):
                    continue
                with z.open(info) as member:
                    arrays[info.filename[:-4]] = _read_member(member, info, path)
    return arrays


def _read_member(member, info, path):
    """One .npy member: check its header, then read it with pickle disabled."""
    version = np.lib.format.read_magic(member)
    if version == (1, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(member)
    elif version == (2, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(member)
    else:
        raise CheckpointError(f"checkpoint {path}: member {info.filename} has an unsupported .npy version {version}")
    if dtype.hasobject:
        raise CheckpointError(
            f"checkpoint {path}: member {info.filename} holds pickled Python objects; "
            f"minirnn never unpickles, so it refuses this file"
        )
    size = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if size > info.file_size:
        raise CheckpointError(f"checkpoint {path}: member {info.filename} is truncated ({plural(info.file_size, 'byte')} for {size})")
    data = member.read(size)
    if len(data) != size:
        raise CheckpointError(f"checkpoint {path}: member {info.filename} is truncated")
    order = "F" if fortran else "C"
    return np.frombuffer(data, dtype=dtype).reshape(shape, order=order).copy()


def _text(arrays, key, path):
    a = arrays.get(key)
    if a is None or a.dtype.kind != "U" or a.ndim != 0:
        raise CheckpointError(f"checkpoint {path}: member '{key}' is missing or is not text")
    return str(a[()])


def _validate(arrays, path):
    missing = [k for k in ("W_hq", "b_q", "vocab", "config", "state", "format") if k not in arrays]
    if missing:
        raise CheckpointError(f"checkpoint {path}: missing {'member' if len(missing) == 1 else 'members'} {', '.join(missing)}; was it written by minirnn?")
    if _text(arrays, "format", path) != FORMAT:
        raise CheckpointError(f"checkpoint {path}: unknown format {_text(arrays, 'format', path)!r}, expected {FORMAT!r}")
    config = Config.from_dict(json.loads(_text(arrays, "config", path)))
    cell, record = config.cell, None
    if is_cell_path(config.cell):  # a run with a cell file: read by its record, no code is run
        try:
            record = json.loads(_text(arrays, "cell", path))
            cell = RecordedCell(record, config.num_hiddens)
        except (ValueError, TypeError, KeyError, IndexError) as e:
            raise CheckpointError(f"checkpoint {path}: its run used the cell file {config.cell}, but "
                                  f"{e if isinstance(e, ValueError) and 'record' in str(e) else 'its record is missing'}; "
                                  f"the file is damaged, use an earlier one") from None
    try:  # as model_spec reads them: so that one damaged array is the one named
        spec, expected = likely_spec(arrays, cell, config.num_layers, config.embed_size)
    except ValueError as e:
        raise CheckpointError(f"checkpoint {path}: {e}") from None
    H, V = spec.num_hiddens, spec.vocab_size
    missing = [k for k in expected if k not in arrays]
    if missing:
        raise CheckpointError(f"checkpoint {path}: missing member{'s' if len(missing) > 1 else ''} "
                              f"{', '.join(missing)} of its {config.num_layers}-layer {cell} model; "
                              f"was it written by minirnn?")
    params = {k: arrays[k] for k in expected}
    dtypes = {str(a.dtype) for a in params.values()}
    if len(dtypes) != 1 or dtypes.pop() not in ("float32", "float64"):
        raise CheckpointError(f"checkpoint {path}: parameters must all be float32 or all float64, got "
                              + ", ".join(f"{k} {a.dtype}" for k, a in params.items()))
    bad = [k for k, a in params.items() if not np.isfinite(a).all()]
    if bad:
        raise CheckpointError(f"checkpoint {path}: {', '.join(bad)} hold NaN or inf (a diverged run?); "
                              f"use an earlier checkpoint")
    for k, shape in expected.items():
        if params[k].shape != shape:
            raise CheckpointError(f"checkpoint {path}: {k} has shape {params[k].shape}, expected {shape} "
                                  f"(V={V}, H={H}{f', E={config.embed_size}' if config.embed_size else ''})")
    vocab_arr = arrays["vocab"]
    if vocab_arr.dtype.kind != "U" or vocab_arr.ndim != 1:
        raise CheckpointError(f"checkpoint {path}: vocab must be a 1-D text array")
    try:
        vocab = Vocab([str(t) for t in vocab_arr])
    except ValueError as e:
        raise CheckpointError(f"checkpoint {path}: bad vocabulary: {e}") from None
    if len(vocab) != V:
        raise CheckpointError(f"checkpoint {path}: the vocabulary has {plural(len(vocab), 'token')} but the weights expect V={V}")
    dtype = params["W_hq"].dtype
    if config.num_hiddens != H or config.dtype != str(dtype):
        raise CheckpointError(f"checkpoint {path}: its config (num_hiddens {config.num_hiddens}, {config.dtype}) "
                              f"does not match its weights (H={H}, {dtype})")
    state = json.loads(_text(arrays, "state", path))
    if not isinstance(state, dict) or (state and not set(STATE_KEYS) - set(LATER_STATE_KEYS) <= set(state) <= set(STATE_KEYS)):
        raise CheckpointError(f"checkpoint {path}: the training state is malformed")
    if state:
        _check_state(state, path)
    outputs = json.loads(_text(arrays, "outputs", path)) if "outputs" in arrays else {}
    if not (isinstance(outputs, dict) and set(outputs) <= set(OUTPUTS)
            and all(isinstance(v, str) and v for v in outputs.values())):
        raise CheckpointError(f"checkpoint {path}: the saved output paths are malformed")
    optimizer_state = {k[len("opt."):]: a for k, a in arrays.items() if k.startswith("opt.")}
    ckpt = Checkpoint(params, vocab, config, state, _carried_state(arrays, config, H, dtype, path, cell), outputs,
                      optimizer_state, _snapshots(arrays, config, params, state, path))
    ckpt.cell = record
    return ckpt


def check_cell(ckpt, given, path):
    """The cell file to run a checkpoint's model with: for a run with a cell file, the
    --cell PATH given again (a checkpoint never runs code), checked against the record:
    refused if its NAME, gates, states or parameters differ, run with a warning if
    only its source changed. A cell file shipped with the package (examples/torch_gru,
    which an imported nn.GRU uses) is package code: without --cell it is taken as
    recorded. Returns the config's cell for this run."""
    if ckpt.cell is None:
        if given is not None and given != ckpt.config.cell:
            raise CheckpointError(f"checkpoint {path} holds a {ckpt.config.cell} model; drop --cell {given}")
        return ckpt.config.cell
    if given is None and ckpt.config.cell in shipped_cells():
        given = ckpt.config.cell
    if given is None or not is_cell_path(given):
        raise CheckpointError(f"checkpoint {path} was trained with the cell file {ckpt.cell['file']} "
                              f"(NAME {ckpt.cell['name']}, given as --cell {ckpt.config.cell}); a checkpoint never "
                              f"runs code, so give --cell PATH to that file again")
    warning = check_against_record(load_cell(given), ckpt.cell, ckpt.config.num_hiddens, path)
    if warning:
        warnings.warn(warning)
    return given


def _snapshots(arrays, config, params, state, path):
    """The saved snapshot ensemble, checked against the model; None if there is none."""
    saved = {k[len("ens."):]: a for k, a in arrays.items() if k.startswith("ens.")}
    if not saved:
        if config.ensemble > 1 and state.get("best_heldout") is not None:  # it measured, so it kept snapshots
            raise CheckpointError(f"checkpoint {path}: its run keeps an ensemble (--ensemble {config.ensemble}) but the "
                                  f"file holds no snapshots; the file is damaged, use an earlier one")
        return None
    if config.ensemble < 2:
        raise CheckpointError(f"checkpoint {path}: it holds ensemble snapshots, but its config has no --ensemble; "
                              f"the file is damaged, use an earlier one")
    try:
        snaps = Snapshots.from_state_dict(config.ensemble, saved, list(params))
    except ValueError as e:
        raise CheckpointError(f"checkpoint {path}: {e}; the file is damaged, use an earlier one") from None
    if state and snaps.epochs[-1] > state["epoch"]:  # measured after an epoch the run has completed
        raise CheckpointError(f"checkpoint {path}: its ensemble holds a model of epoch {snaps.epochs[-1]}, after the "
                              f"run's own epoch {state['epoch']}; the file is damaged, use an earlier one")
    for i, member in enumerate(snaps.params):
        for k, a in member.items():
            if a.shape != params[k].shape or a.dtype != params[k].dtype:
                raise CheckpointError(f"checkpoint {path}: ensemble member {i}'s {k} ({a.dtype}, shape {a.shape}) "
                                      f"does not match the model's ({params[k].dtype}, shape {params[k].shape}); "
                                      f"the file is damaged, use an earlier one")
            if not np.isfinite(a).all():
                raise CheckpointError(f"checkpoint {path}: ensemble member {i}'s {k} holds NaN or inf; "
                                      f"the file is damaged, use an earlier one")
    return snaps


def _carried_state(arrays, config, H, dtype, path, cell=None):
    """The saved H (and C for the LSTM; each state of a cell file), checked against the
    config; None if not saved."""
    names = tuple(cell.STATES) if cell is not None and not isinstance(cell, str) else \
        ("H", "C") if config.cell == "lstm" else ("H",)
    parts = [arrays.get(name) for name in names]
    if all(p is None for p in parts):
        return None
    shape = (config.batch_size, H) if config.num_layers == 1 else (config.num_layers, config.batch_size, H)
    for name, part in zip(names, parts):
        if part is None or part.shape != shape or part.dtype != dtype:
            got = "missing" if part is None else f"shape {part.shape}"
            raise CheckpointError(f"checkpoint {path}: the saved state {name} is {got}, expected shape {shape}")
    return tuple(parts) if len(parts) > 1 else parts[0]


def _check_state(state, path):
    ints = all(isinstance(state[k], int) and state[k] >= 0 for k in ("epoch", "batch", "tokens", "total_tokens"))
    reals = all(isinstance(state[k], (int, float)) for k in ("loss_sum", "norm_sum", "train_time", "epoch_time"))
    rows = isinstance(state["history"], list) and all(isinstance(r, dict) for r in state["history"])
    later = (all(state.get(k) is None or (isinstance(state[k], (int, float)) and not isinstance(state[k], bool))
                 for k in ("lr", "best_heldout"))
             and all(isinstance(state.get(k, 0), int) and state.get(k, 0) >= 0 for k in ("best_epoch", "evals_since_best"))
             and isinstance(state.get("stopped_early", False), bool)
             and isinstance(state.get("changes", []), list) and all(isinstance(c, dict) for c in state.get("changes", [])))
    if not (ints and reals and rows and later and isinstance(state["corpus_sha1"], str)):
        raise CheckpointError(f"checkpoint {path}: the training state has values of the wrong type")
    try:
        np.random.default_rng().bit_generator.state = state["rng_state"]
    except Exception:
        raise CheckpointError(f"checkpoint {path}: the saved random-generator state is malformed") from None
