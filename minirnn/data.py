"""Text -> token ids -> minibatches: the book, preprocessing, Vocab, both iterators.

Text modes (letters, words, raw): minirnn/textmodes.py.

Large texts are read once, in chunks of CHUNK_BYTES: each chunk is decoded,
preprocessed (the modes' rules carry across chunk boundaries) and given provisional
ids in order of first appearance while the characters are counted; the vocabulary
then reorders them by frequency, and one pass over the ids, in place, renumbers
them. The ids take 1 byte per token for up to 256 tokens (<unk> included).

Minibatches are host NumPy arrays X, Y of shape (B, T), with Y = X shifted by one.
"""
import codecs
import hashlib
import itertools
import os
import shlex
from importlib import resources

import numpy as np

from .errors import DataError, plural
from .textmodes import MAX_CODEPOINT, TEXT_MODES, Preprocessor, codepoints, default_text_mode, preprocess  # noqa: F401

BOOK_NAME = "timemachine.txt"
BOOK_SHA1 = "090b5e7e70c295757f55df93cb0a180b9691891a"
UNK = "<unk>"
CHUNK_BYTES = 1 << 21  # bytes read, decoded and preprocessed at a time
NUL_SCAN = 1 << 20  # a NUL byte in the first MiB marks a binary file


# ---------------------------------------------------------------------------- text
def _book_bytes():
    raw = resources.files("minirnn").joinpath("data", BOOK_NAME).read_bytes()
    digest = hashlib.sha1(raw).hexdigest()
    if digest != BOOK_SHA1:
        raise DataError(f"the packaged {BOOK_NAME} is damaged (sha1 {digest}, expected {BOOK_SHA1}); reinstall minirnn")
    return raw


def read_book():
    """The Time Machine, exactly the book's file, from package data, hash-checked."""
    return "".join(_decoded_chunks([_book_bytes()], BOOK_NAME))


def _check_file(path):
    if not os.path.exists(path):
        raise DataError(f"--data {path}: no such file; check the path")
    if os.path.isdir(path):
        raise DataError(f"--data {path}: is a directory; give a text file inside it")
    if not os.path.isfile(path):  # reading a pipe would wait for a writer
        raise DataError(f"--data {path}: is not a regular file (a device, pipe or socket); give a text file")


def _file_chunks(path, chunk_bytes):
    """The file's bytes, chunk_bytes at a time, each read once."""
    try:
        with open(path, "rb") as f:
            while True:
                raw = f.read(chunk_bytes)
                if not raw:
                    return
                yield raw
    except OSError as e:
        raise DataError(f"--data {path}: cannot be read ({e.strerror}); check that it is a readable file") from None


def read_text(path):
    """A UTF-8 text file, with a clear DataError for each way it can be unusable."""
    path = os.fspath(path)
    _check_file(path)
    return "".join(_decoded_chunks(_file_chunks(path, CHUNK_BYTES), path))


def _decoded_chunks(byte_chunks, name):
    """UTF-8 bytes -> text pieces: validated, the BOM dropped, universal newlines
    (\r\n and \r become \n, as open() reads), also where a chunk ends in \r."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset, started, cr = 0, False, ""
    for raw in itertools.chain(byte_chunks, [b""]):
        final = not raw
        if offset == 0 and raw[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
            raise DataError(f"--data {name}: the file is UTF-16 text (it starts with a UTF-16 byte order mark); "
                            f"convert it with: {_iconv('UTF-16', name)}")
        if offset == 0 and (source := _utf16_without_bom(raw[:4096])):
            raise DataError(f"--data {name}: looks like {source} text without a byte order mark (NULs in every "
                            f"other byte); convert it with: {_iconv(source, name)}")
        if offset < NUL_SCAN and b"\x00" in raw[:NUL_SCAN - offset]:
            raise DataError(f"--data {name}: looks like a binary file (it holds NUL bytes); give a UTF-8 text file")
        if final and offset == 0:
            raise DataError(f"--data {name}: the file is empty; give a text file with some text in it")
        held = len(decoder.getstate()[0])  # bytes of a character cut by the last chunk's end
        try:
            text = decoder.decode(raw, final)
        except UnicodeDecodeError as e:
            at = offset - held + e.start
            raise DataError(f"--data {name}: is not valid UTF-8 (bad byte at offset {at}); "
                            f"{_conversion_advice(name, e.object)}") from None
        offset += len(raw)
        if not started and text:
            text, started = text.removeprefix("\ufeff"), True
        text = cr + text
        cr = "\r" if text.endswith("\r") and not final else ""
        text = text[:-1] if cr else text
        if "\r" in text:
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        if text:
            yield text


def _conversion_advice(name, raw):
    """How to convert a file that is not UTF-8: of the bytes in raw that UTF-8 cannot
    read, 0x80-0x9F are printable in Windows-1252 only; others read as Latin-1."""
    bad = {ord(c) - 0xDC00 for c in raw.decode("utf-8", "surrogateescape") if "\udc80" <= c <= "\udcff"}
    source = "WINDOWS-1252" if any(0x80 <= b <= 0x9F for b in bad) else "LATIN1"
    return f"if it is {source} text, convert it with: {_iconv(source, name)} (for another encoding, name it after -f)"


def _utf16_without_bom(head):
    """'UTF-16LE' or 'UTF-16BE' when head looks like mostly-ASCII UTF-16 text (NULs in
    the high bytes, few in the low ones), else None."""
    even, odd = head[0::2], head[1::2]
    if len(odd) < 8:
        return None
    for low, high, source in ((even, odd, "UTF-16LE"), (odd, even, "UTF-16BE")):
        if high.count(0) > 0.5 * len(high) and low.count(0) < 0.05 * len(low):
            return source
    return None


def _iconv(source, name):
    """The iconv command that writes name's text as UTF-8 beside it, as NAME.utf8.EXT."""
    root, ext = os.path.splitext(name)
    target = f"{root}.utf8{ext or '.txt'}"
    return f"iconv -f {source} -t UTF-8 {shlex.quote(name)} > {shlex.quote(target)}"


# ---------------------------------------------------------------------------- vocab
class Vocab:
    """Character vocabulary: `<unk>` at 0, then tokens by descending frequency,
    ties broken by first appearance (the book's order)."""

    def __init__(self, tokens):
        tokens = list(tokens)
        if not tokens or tokens[0] != UNK:
            raise ValueError(f"a vocabulary starts with {UNK!r}")
        if len(set(tokens)) != len(tokens):
            raise ValueError("a vocabulary holds each token once")
        if any(len(t) != 1 for t in tokens[1:]):
            raise ValueError("vocabulary tokens after <unk> are single characters")
        self.idx_to_token = tokens
        cps = np.array([ord(t) for t in tokens[1:]], dtype=np.uint32)
        order = np.argsort(cps)
        self._sorted_cps = cps[order]
        self._sorted_ids = (order + 1).astype(np.int64)

    @classmethod
    def build(cls, text):
        """Count every character of text (vectorised) and order them."""
        cps = codepoints(text)
        uniq, first, counts = np.unique(cps, return_index=True, return_counts=True)
        order = np.lexsort((first, -counts))  # by count descending, then first appearance
        return cls([UNK] + [chr(c) for c in uniq[order]])

    @classmethod
    def from_counts(cls, cps, counts):
        """cps (N,) code points in order of first appearance, counts (N,) their counts."""
        order = np.lexsort((np.arange(len(cps)), -np.asarray(counts)))
        return cls([UNK] + [chr(c) for c in np.asarray(cps)[order].tolist()])

    def __len__(self):
        return len(self.idx_to_token)

    @property
    def dtype(self):
        """The smallest unsigned integer type that holds every id."""
        return dtype_for(len(self))

    def ids_of(self, cps):
        """The id of each code point in cps (unknown ones -> 0), int64."""
        cps = np.asarray(cps, dtype=np.uint32)
        if len(self._sorted_cps) == 0:
            return np.zeros(len(cps), dtype=np.int64)
        pos = np.minimum(np.searchsorted(self._sorted_cps, cps), len(self._sorted_cps) - 1)
        known = self._sorted_cps[pos] == cps
        return np.where(known, self._sorted_ids[pos], 0)

    def encode(self, text):
        """ids of text's characters (unknown ones -> 0), vectorised."""
        return self.ids_of(codepoints(text)).astype(self.dtype)

    def unknown_chars(self, text):
        """The distinct characters of text that are not in the vocabulary."""
        return sorted(set(text) - set(self.idx_to_token[1:]))

    def decode(self, ids):
        return "".join(self.idx_to_token[int(i)] for i in ids)

    def __eq__(self, other):
        return isinstance(other, Vocab) and self.idx_to_token == other.idx_to_token


def dtype_for(n):
    """The smallest unsigned integer type that holds ids 0 .. n-1."""
    return np.uint8 if n <= 256 else np.uint16 if n <= 65536 else np.uint32


class _Ids:
    """Provisional ids, in order of first appearance, for a text given piece by piece
    as code point arrays; counts per id. Stored in a buffer of the text's size in
    bytes (an upper bound on its tokens) whose unused tail is never touched, so
    never resident."""

    def __init__(self, capacity):
        self.first = np.full(MAX_CODEPOINT, -1, dtype=np.int32)  # code point -> provisional id
        self.cps = np.zeros(0, dtype=np.uint32)  # provisional id -> code point
        self.counts = np.zeros(0, dtype=np.int64)
        self.buf = np.empty(max(capacity, 1), dtype=np.uint8)
        self.size = 0

    def add(self, cps):
        counts = np.bincount(cps)  # of each code point in this piece
        present = np.flatnonzero(counts)
        new = present[self.first[present] < 0]
        if len(new):
            self._number(cps, new)
            self.counts = np.concatenate([self.counts, np.zeros(len(self.cps) - len(self.counts), np.int64)])
        self.counts[self.first[present]] += counts[present]
        need = dtype_for(len(self.cps))
        if np.dtype(need).itemsize > self.buf.itemsize:  # more than 256 (65536) distinct characters
            wider = np.empty(len(self.buf), dtype=need)
            wider[:self.size] = self.buf[:self.size]
            self.buf = wider
        end = self.size + len(cps)
        if end > len(self.buf):
            raise AssertionError("more characters than bytes")  # UTF-8: at least one byte per character
        if cps.dtype == np.uint8 and self.buf.dtype == np.uint8:  # a byte-to-byte table: bytes.translate
            table = self.first[:256].clip(0).astype(np.uint8).tobytes()
            self.buf[self.size:end] = np.frombuffer(cps.tobytes().translate(table), dtype=np.uint8)
        else:
            self.buf[self.size:end] = self.first[cps]
        self.size = end

    def _number(self, cps, new):
        """Give the code points new (sorted) the next ids, in order of first appearance in cps."""
        head = 4096
        while True:  # look for them in ever longer heads of cps (they are usually near its start)
            u, at = np.unique(cps[:head], return_index=True)
            found = np.isin(new, u)
            if found.all() or head >= len(cps):
                break
            head *= 4
        firsts = at[np.searchsorted(u, new)]
        ordered = new[np.argsort(firsts)]
        self.first[ordered] = np.arange(len(self.cps), len(self.cps) + len(ordered), dtype=np.int32)
        self.cps = np.concatenate([self.cps, ordered.astype(np.uint32)])

    def renumber(self, table, dtype, step=1 << 22):
        """ids[i] = table[provisional id i], in place where the types allow."""
        table = np.asarray(table).astype(dtype)
        out = self.buf if self.buf.dtype == dtype else np.empty(self.size, dtype=dtype)
        for a in range(0, self.size, step):
            b = min(a + step, self.size)  # the buffer's tail past size was never written
            if dtype == np.uint8 and self.buf.dtype == np.uint8:
                out[a:b] = np.frombuffer(self.buf[a:b].tobytes().translate(table.tobytes().ljust(256, b"\0")),
                                         dtype=np.uint8)
            else:
                out[a:b] = table[self.buf[a:b]]
        self.buf = None
        return out[:self.size]


# ---------------------------------------------------------------------------- corpus
class Corpus:
    """The training and held-out token ids of one text, and its vocabulary.

    train    ids of the first max_tokens tokens (all but the held-out part when
             max_tokens is 0 or the text is too short for it)
    heldout  heldout_tokens given: the next heldout_tokens tokens after train (the
             last heldout_tokens when max_tokens is 0 or leaves no room for them).
             Else the next max_tokens tokens; when train takes the whole text, its
             last 10% is held out instead (and train keeps the first 90%).
    num_tokens  the text's tokens; unused = num_tokens - len(train) - len(heldout)
    stats    what loading saw (text mode, characters read, what the mode dropped), or {}
    """

    def __init__(self, ids, vocab, max_tokens, heldout_tokens=0, stats=None):
        n = len(ids)
        if heldout_tokens:
            if heldout_tokens >= n:
                raise DataError(f"--heldout-tokens {heldout_tokens} leaves nothing to train on: the text has "
                                f"{plural(n, 'token')}; give fewer (e.g. --heldout-tokens {max(n // 10, 1)})")
            cut = max_tokens if max_tokens and max_tokens + heldout_tokens <= n else n - heldout_tokens
            self.train, self.heldout = ids[:cut], ids[cut:cut + heldout_tokens]
        elif max_tokens and max_tokens < n:
            self.train = ids[:max_tokens]
            self.heldout = ids[max_tokens:2 * max_tokens]
        else:
            cut = n - n // 10
            self.train, self.heldout = ids[:cut], ids[cut:]
        self.vocab = vocab
        self.num_tokens = n
        self.stats = stats or {}

    @property
    def unused(self):
        return self.num_tokens - len(self.train) - len(self.heldout)


def load_corpus(path=None, *, text_mode="letters", max_tokens=10000, vocab=None, heldout_tokens=0,
                chunk_bytes=CHUNK_BYTES, on_chunk=None):
    """Read (the book when path is None), preprocess, build or reuse a Vocab, encode:
    all in one pass over the file, chunk_bytes at a time (see the module docstring).
    on_chunk(bytes_read, bytes_total) runs after each chunk (progress)."""
    if path is None:
        raw = _book_bytes()
        name, total = BOOK_NAME, len(raw)
        chunks = (raw[a:a + chunk_bytes] for a in range(0, len(raw), chunk_bytes))
    else:
        name = os.fspath(path)
        _check_file(name)
        total = os.path.getsize(name)
        chunks = _file_chunks(name, chunk_bytes)
    if on_chunk is not None:
        chunks = _reporting(chunks, total, on_chunk)
    pre = Preprocessor(text_mode)
    ids = _Ids(total)
    for text in _decoded_chunks(chunks, name):
        ids.add(pre(text))
    if not ids.size:
        raise DataError(
            f"--data {path}: holds no tokens after '{text_mode}' preprocessing "
            f"({'letters mode keeps only A-Z' if text_mode == 'letters' else 'words mode keeps only letters'}); "
            f"use --text-mode raw or another file"
        )
    if vocab is None:
        vocab = Vocab.from_counts(ids.cps, ids.counts)
    table = vocab.ids_of(ids.cps)  # provisional id -> id
    stats = {"text_mode": text_mode, "characters": pre.read, "dropped_letters": pre.dropped_letters,
             "dropped_examples": "".join(pre.dropped_examples), "glued_lines": pre.glued_lines}
    return Corpus(ids.renumber(table, vocab.dtype, chunk_bytes), vocab, max_tokens, heldout_tokens, stats)


def _reporting(chunks, total, on_chunk):
    done = 0
    for raw in chunks:
        yield raw
        done += len(raw)
        on_chunk(done, total)


# ---------------------------------------------------------------------------- iterators
def num_batches_sequential(num_tokens, batch_size, num_steps, offset):
    """The book's count: ((N - offset - 1) // B) * B tokens in B rows, cut into T-step windows."""
    per_row = (num_tokens - offset - 1) // batch_size
    return max(per_row, 0) // num_steps


def seq_sequential(ids, batch_size, num_steps, rng, offset=None):
    """Sequential partitioning: B parallel streams from a random offset in [0, T]
    (or from the offset given).

    Minibatch i+1 continues minibatch i row by row, so the state can be carried.
    Returns a sequence of (X, Y) pairs, each (B, T): views of ids, not copies, made when asked for.
    """
    if offset is None:
        offset = int(rng.integers(0, num_steps + 1))
    num_tokens = ((len(ids) - offset - 1) // batch_size) * batch_size
    Xs = ids[offset:offset + num_tokens].reshape(batch_size, -1)
    Ys = ids[offset + 1:offset + 1 + num_tokens].reshape(batch_size, -1)
    n = num_batches_sequential(len(ids), batch_size, num_steps, offset)
    return _Batches(n, lambda i: (Xs[:, i * num_steps:(i + 1) * num_steps], Ys[:, i * num_steps:(i + 1) * num_steps]))


class _Batches:
    """n minibatches, the i-th made by get(i) when asked for: a list of them all
    would cost hundreds of bytes per window, gigabytes on a large text."""

    def __init__(self, n, get):
        self.n, self.get = n, get

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self.get(j) for j in range(*i.indices(self.n))]
        if not -self.n <= i < self.n:
            raise IndexError(i)
        return self.get(i % self.n)


def seq_random(ids, batch_size, num_steps, rng):
    """Random sampling: non-overlapping T-step subsequences from a random offset in
    [0, T), shuffled, B at a time; adjacent minibatches are unrelated.

    Returns a sequence of (X, Y) pairs, each (B, T), gathered when asked for.
    """
    offset = int(rng.integers(0, num_steps))
    num_subseqs = (len(ids) - offset - 1) // num_steps
    starts = offset + np.arange(0, num_subseqs * num_steps, num_steps)
    rng.shuffle(starts)
    steps = np.arange(num_steps)

    def get(i):
        rows = starts[i * batch_size:(i + 1) * batch_size, None] + steps  # (B, T) positions
        return ids[rows], ids[rows + 1]
    return _Batches(num_subseqs // batch_size, get)


def min_tokens(batch_size, num_steps):
    """The fewest tokens that give one minibatch at every sequential offset."""
    return batch_size * num_steps + 1 + num_steps


def check_fits(num_tokens, batch_size, num_steps, what, advice=None):
    """A DataError naming the sizes when a slice cannot give even one minibatch."""
    need = min_tokens(batch_size, num_steps)
    if num_batches_sequential(num_tokens, batch_size, num_steps, num_steps) < 1:
        advice = advice or "lower --batch-size or --num-steps, or use a longer --data file"
        raise DataError(
            f"the {what} has {plural(num_tokens, 'token')}, too few for one minibatch of "
            f"--batch-size {batch_size} x --num-steps {num_steps} (needs {need}); {advice}"
        )
