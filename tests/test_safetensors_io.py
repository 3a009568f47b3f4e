"""The safetensors reader and writer: NumPy alone, bit for bit, the format's rules
enforced on read (each damaged file one clear error), atomic writes; and, where the
reference `safetensors` package is installed, the same bytes and values as it."""
import json
import os
import struct

import numpy as np
import pytest
from hypothesis import given, strategies as st

from minirnn.errors import CheckpointError, UsageError
from minirnn.safetensors_io import load_safetensors, save_safetensors

DTYPES = ["float32", "float64", "float16", "int64", "int32", "uint8", "int8", "bool"]


@st.composite
def tensors(draw):
    n = draw(st.integers(0, 4))
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    out = {}
    for i in range(n):
        shape = tuple(draw(st.lists(st.integers(0, 4), max_size=3)))
        dtype = np.dtype(draw(st.sampled_from(DTYPES)))
        raw = rng.integers(0, 256, size=int(np.prod(shape)) * dtype.itemsize, dtype=np.uint8)
        out[draw(st.sampled_from(["a", "rnn.weight_ih_l0", "b_q", "é", "z" * 3])) + str(i)] = \
            raw.view(dtype).reshape(shape) if dtype != np.bool_ else (raw % 2).astype(bool).reshape(shape)
    return out


@given(tensors(), st.dictionaries(st.text(max_size=5), st.text(max_size=10), max_size=3))
def test_what_is_written_is_read_back_bit_for_bit(tmp_path_factory, arrays, meta):
    path = tmp_path_factory.mktemp("st") / "t.safetensors"
    save_safetensors(path, arrays, meta)
    back, meta_back = load_safetensors(path)
    assert meta_back == meta and set(back) == set(arrays)
    for k, a in arrays.items():  # NaN payloads and signed zeros included: the bytes themselves
        assert back[k].dtype == a.dtype and back[k].shape == a.shape and back[k].tobytes() == a.tobytes()
        assert back[k].flags.writeable and back[k].flags.c_contiguous


def test_big_endian_and_strided_arrays_are_written_little_endian_in_c_order(tmp_path):
    a = np.arange(12, dtype=">f8").reshape(3, 4).T  # big-endian, Fortran-ordered view
    save_safetensors(tmp_path / "t", {"a": a})
    back, _ = load_safetensors(tmp_path / "t")
    assert np.array_equal(back["a"], a) and back["a"].dtype == np.float64


def test_what_cannot_be_written_is_a_usage_error_and_nothing_is_written(tmp_path):
    path = tmp_path / "t.safetensors"
    save_safetensors(path, {"a": np.ones(2)})
    before = path.read_bytes()
    for arrays, meta, message in (({"a": np.array(["x"])}, None, "no safetensors name"),
                                  ({"__metadata__": np.ones(1)}, None, "name must be"),
                                  ({"a": np.ones(1)}, {"k": 1}, "metadata maps text to text")):
        with pytest.raises(UsageError, match=message):
            save_safetensors(path, arrays, meta)
        assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["t.safetensors"]  # no temporary file left behind


# ----------------------------------------------------------------------------- damaged files
def header_file(path, header, data=b"", length=None):
    text = json.dumps(header).encode() if isinstance(header, dict) else header
    path.write_bytes(struct.pack("<Q", len(text) if length is None else length) + text + data)
    return path


GOOD = {"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
        "b": {"dtype": "F64", "shape": [1], "data_offsets": [8, 16]}}


def test_a_good_hand_made_file_reads(tmp_path):
    arrays, meta = load_safetensors(header_file(tmp_path / "f", GOOD, bytes(16)))
    assert arrays["a"].shape == (2,) and arrays["b"].dtype == np.float64 and meta == {}


@pytest.mark.parametrize("header, data, length, message", [
    (b"", b"", None, "not a JSON object"),
    (b'{"a":', b"", 400, "header claims 400 bytes but the file has only 5.*truncated"),
    (b"{}", b"", 100_000_001, "more than the format's limit of 100000000"),
    (b"[1, 2]", b"", None, "not a JSON object"),
    (b'{"a": 1,', b"", None, "not valid JSON"),
    (b'{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}, "a": {}}', bytes(4), None, "a key appears twice"),
    ({**GOOD, "b": {**GOOD["b"], "data_offsets": [4, 12]}}, bytes(16), None, "overlap the previous tensor's"),
    ({**GOOD, "b": {**GOOD["b"], "data_offsets": [8, 16]}}, bytes(12), None, r"reach past the buffer's 12 bytes"),
    ({**GOOD, "b": {**GOOD["b"], "data_offsets": [12, 20]}}, bytes(20), None, "the buffer has a hole: bytes 8 to 12"),
    (GOOD, bytes(20), None, "the tensors cover 16 bytes of the buffer's 20"),
    ({**GOOD, "a": {**GOOD["a"], "dtype": "F33"}}, bytes(16), None, "unknown dtype 'F33'"),
    ({**GOOD, "a": {**GOOD["a"], "dtype": "float32"}}, bytes(16), None, "unknown dtype 'float32'"),
    ({**GOOD, "a": {**GOOD["a"], "dtype": "BF16"}}, bytes(16), None, "BF16, which NumPy cannot hold.*float32"),
    ({**GOOD, "a": {**GOOD["a"], "shape": [3]}}, bytes(16), None, r"needs 12 bytes but its data_offsets \[0, 8\] span 8"),
    ({**GOOD, "a": {**GOOD["a"], "shape": [-2]}}, bytes(16), None, "shape must be a list of integers >= 0"),
    ({**GOOD, "a": {**GOOD["a"], "data_offsets": [8, 0]}}, bytes(16), None, "data_offsets must be"),
    ({**GOOD, "a": {**GOOD["a"], "extra": 1}}, bytes(16), None, "exactly dtype, shape and data_offsets"),
    ({**GOOD, "__metadata__": {"k": 1}}, bytes(16), None, "__metadata__ must map text to text"),
    (b'{"a": NaN}', b"", None, "not valid JSON"),
])
def test_each_damaged_file_is_one_clear_error(tmp_path, header, data, length, message):
    path = header_file(tmp_path / "f.safetensors", header, data, length)
    with pytest.raises(CheckpointError, match=message):
        load_safetensors(path)


def test_a_truncated_file_and_a_missing_one_are_clear_errors(tmp_path):
    path = tmp_path / "t.safetensors"
    save_safetensors(path, {"a": np.ones((3, 3))})
    raw = path.read_bytes()
    for cut, message in ((4, "fewer than the 8 of the header's length"), (12, "the header is truncated"),
                         (len(raw) - 1, "reach past the buffer's 71 bytes")):
        path.write_bytes(raw[:cut])
        with pytest.raises(CheckpointError, match=message):
            load_safetensors(path)
    path.write_bytes(b"PK\x03\x04" + bytes(40))  # torch.save's zip of pickles, or an .npz
    with pytest.raises(CheckpointError, match="zip archive.*never loaded.*save_file"):
        load_safetensors(path)
    with pytest.raises(CheckpointError, match="no such file"):
        load_safetensors(tmp_path / "none.safetensors")


# ----------------------------------------------------------------------------- the reference package
@given(tensors(), st.dictionaries(st.text(max_size=5), st.text(max_size=10), max_size=3))
def test_the_reference_reader_reads_what_minirnn_writes_and_writes_the_same_bytes(tmp_path_factory, arrays, meta):
    safetensors = pytest.importorskip("safetensors")
    import safetensors.numpy

    folder = tmp_path_factory.mktemp("ref")
    save_safetensors(folder / "ours", arrays, meta)
    theirs = safetensors.numpy.load_file(str(folder / "ours"))
    assert set(theirs) == set(arrays)
    for k, a in arrays.items():
        assert theirs[k].dtype == a.dtype and theirs[k].shape == a.shape and theirs[k].tobytes() == a.tobytes()
    with safetensors.safe_open(str(folder / "ours"), "np") as f:
        assert (f.metadata() or {}) == meta
    safetensors.numpy.save_file(arrays, str(folder / "ref"), metadata=meta or None)
    if len(meta) < 2:  # the reference orders several metadata entries as it likes
        assert (folder / "ours").read_bytes() == (folder / "ref").read_bytes()
    back, back_meta = load_safetensors(folder / "ref")
    assert back_meta == meta and all(back[k].tobytes() == a.tobytes() for k, a in arrays.items())
