"""The safetensors file format, read and written with NumPy alone.

A file is:
    8 bytes     N, the header's length, an unsigned little-endian integer
    N bytes     the header: a JSON object, {name: {"dtype": "F32", "shape": [..],
                "data_offsets": [begin, end]}, ..., "__metadata__": {str: str}}
                (the writer pads it with spaces to a multiple of 8 bytes)
    the rest    the byte buffer: each tensor's little-endian, C-order data at
                [begin, end) relative to the buffer's start

Reading follows the format's rules and refuses anything else with one
CheckpointError that names the problem: a header of at most 100 MB that is a JSON
object starting with '{', known dtypes, each tensor's byte count equal to its
shape's, and offsets that, in order, cover the whole buffer with no hole and no
overlap. Nothing is unpickled or executed: the header is JSON, the data raw numbers.
Writing is atomic (atomic.py): a failure leaves the previous file as it was.
"""
import json
import os
import struct

import numpy as np

from .atomic import atomic_write
from .errors import CheckpointError, UsageError

MAX_HEADER = 100_000_000  # bytes: the format's limit
METADATA = "__metadata__"
# The format's dtype strings that NumPy holds, little-endian. (BF16 and the F8 types
# are the format's too; NumPy has no such type, so they are refused with advice.)
DTYPES = {"F16": "<f2", "F32": "<f4", "F64": "<f8", "I8": "i1", "I16": "<i2", "I32": "<i4", "I64": "<i8",
          "U8": "u1", "U16": "<u2", "U32": "<u4", "U64": "<u8", "BOOL": "?"}
NAMES = {np.dtype(v).newbyteorder("<").str if np.dtype(v).itemsize > 1 else np.dtype(v).str: k
         for k, v in DTYPES.items()}
# The order the reference writer lays out dtypes in, last first (its Dtype enum's order).
RANK = {code: i for i, code in enumerate(("BOOL", "U8", "I8", "I16", "U16", "F16", "I32", "U32", "F32", "F64", "I64", "U64"))}
NOT_IN_NUMPY = ("BF16", "F8_E4M3", "F8_E5M2", "F8_E8M0", "F4", "F6_E2M3", "F6_E3M2", "C64")


def save_safetensors(path, arrays, metadata=None):
    """Write {name: array} and metadata {str: str} to path as safetensors, atomically.
    Laid out as the reference writer lays them out, byte for byte: by dtype (widest
    first, in the reference's order), then by name; the header's entries in that order."""
    header = {}
    if metadata:
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
            raise UsageError("safetensors metadata maps text to text; encode other values as JSON strings")
        header[METADATA] = dict(metadata)
    for name in arrays:
        if not isinstance(name, str) or not name or name == METADATA:
            raise UsageError(f"a tensor's name must be non-empty text other than {METADATA!r}, got {name!r}")
    arrays = {k: np.asarray(a) for k, a in arrays.items()}
    codes = {}
    for name, a in arrays.items():
        key = a.dtype.newbyteorder("<").str if a.dtype.itemsize > 1 else a.dtype.str
        if key not in NAMES:
            raise UsageError(f"tensor {name}: dtype {a.dtype} has no safetensors name; "
                             f"use one of {', '.join(sorted(set(np.dtype(v).name for v in DTYPES.values())))}")
        codes[name] = NAMES[key]
    chunks, offset = [], 0
    for name in sorted(arrays, key=lambda k: (-RANK[codes[k]], k)):
        a = arrays[name]
        data = np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("<")).tobytes()  # little-endian, C order
        header[name] = {"dtype": codes[name], "shape": list(a.shape), "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    text += b" " * (-len(text) % 8)  # the buffer starts 8-byte aligned

    def write(f):
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for data in chunks:
            f.write(data)

    atomic_write(path, write)


def load_safetensors(path):
    """Read a safetensors file: ({name: array}, metadata {str: str}), the arrays in
    the file's order, native NumPy arrays of their own. Any violation of the format's
    rules is a CheckpointError."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise CheckpointError(f"{path}: no such file; check the path" if not os.path.exists(path)
                              else f"{path}: is not a file")
    try:
        with open(path, "rb") as f:
            return read(f, os.path.getsize(path), path)
    except OSError as e:
        raise CheckpointError(f"{path}: cannot be read ({e.strerror or e})") from None


def read(f, size, name):
    """Read the safetensors file open in f (binary), size bytes long; name: for messages."""
    def bad(why):
        return CheckpointError(f"{name}: not a valid safetensors file: {why}")

    if size < 8:
        raise bad(f"it has {size} bytes, fewer than the 8 of the header's length; the file is truncated")
    head = f.read(8)
    if head.startswith(b"PK\x03\x04"):
        raise bad("it is a zip archive: a minirnn checkpoint (.npz), or a PyTorch torch.save file, which holds "
                  "pickled code and is never loaded; save the weights with safetensors.torch.save_file("
                  "model.state_dict(), path), or export a checkpoint with minirnn export")
    (n,) = struct.unpack("<Q", head)
    if n > MAX_HEADER:
        raise bad(f"its header claims {n} bytes, more than the format's limit of {MAX_HEADER} (100 MB)")
    if 8 + n > size:
        raise bad(f"its header claims {n} bytes but the file has only {size - 8} after the length; "
                  f"the header is truncated")
    raw = f.read(n)
    if not raw.startswith(b"{"):
        raise bad("its header is not a JSON object (it must start with '{')")
    try:
        header = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError) as e:
        raise bad(f"its header is not valid JSON ({e})") from None
    if not isinstance(header, dict):
        raise bad("its header is not a JSON object")
    metadata = header.pop(METADATA, None) or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise bad(f"{METADATA} must map text to text")
    buffer_size = size - 8 - n
    entries = []
    for key, info in header.items():
        entries.append((key,) + _entry(key, info, bad))
    end = 0
    for key, dtype, shape, (begin, stop) in sorted(entries, key=lambda e: (e[3][0], e[3][1])):
        if begin < end:
            raise bad(f"tensor {key!r}'s data_offsets [{begin}, {stop}] overlap the previous tensor's, which ends at {end}")
        if begin > end:
            raise bad(f"the buffer has a hole: bytes {end} to {begin} belong to no tensor ({key!r} starts at {begin})")
        if stop > buffer_size:
            raise bad(f"tensor {key!r}'s data_offsets [{begin}, {stop}] reach past the buffer's {buffer_size} bytes "
                      f"(out of range; is the file truncated?)")
        end = stop
    if end != buffer_size:
        raise bad(f"the tensors cover {end} bytes of the buffer's {buffer_size}; the rest belongs to no tensor")
    data = f.read(buffer_size)
    if len(data) != buffer_size:
        raise bad("the file ended early; it is truncated")
    arrays = {}
    for key, dtype, shape, (begin, stop) in entries:
        a = np.frombuffer(data, dtype=dtype, count=(stop - begin) // dtype.itemsize, offset=begin)
        arrays[key] = a.reshape(shape).astype(dtype.newbyteorder("="), copy=True)  # native, writable, its own
    return arrays, dict(metadata)


def _entry(key, info, bad):
    """(dtype, shape, offsets) of one header entry, checked."""
    if not isinstance(info, dict) or set(info) != {"dtype", "shape", "data_offsets"}:
        raise bad(f"tensor {key!r} must have exactly dtype, shape and data_offsets, got "
                  f"{sorted(info) if isinstance(info, dict) else type(info).__name__}")
    code, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
    if code in NOT_IN_NUMPY:
        raise CheckpointError(f"tensor {key!r} is {code}, which NumPy cannot hold; save the weights as float32 "
                              f"(e.g. model.float() in PyTorch) and try again")
    if code not in DTYPES:
        raise bad(f"tensor {key!r} has an unknown dtype {code!r}; the format's are {', '.join(DTYPES)}")
    if not (isinstance(shape, list) and all(_count(d) for d in shape)):
        raise bad(f"tensor {key!r}'s shape must be a list of integers >= 0, got {shape!r}")
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(_count(o) for o in offsets)
            and offsets[0] <= offsets[1]):
        raise bad(f"tensor {key!r}'s data_offsets must be [begin, end] with 0 <= begin <= end, got {offsets!r}")
    dtype = np.dtype(DTYPES[code])
    expected = int(np.prod(shape, dtype=object)) * dtype.itemsize
    if offsets[1] - offsets[0] != expected:
        raise bad(f"tensor {key!r}: {code} {shape} needs {expected} bytes but its data_offsets {offsets} "
                  f"span {offsets[1] - offsets[0]}")
    return dtype, tuple(shape), tuple(offsets)


def _count(v):
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def _no_duplicates(pairs):
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        raise ValueError(f"a key appears twice: {sorted(k for k in set(keys) if keys.count(k) > 1)}")
    return dict(pairs)


def _no_constant(name):
    raise ValueError(f"{name} is not JSON")
