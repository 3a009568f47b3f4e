"""Text -> token ids -> minibatches: the book, preprocessing, Vocab, both iterators.

Text modes:
    letters  the book's preprocessing: per line, each run of non-letters becomes one
             space, then strip and lowercase; lines are joined with no separator.
    raw      every character kept, with case, punctuation and newlines.

Minibatches are host NumPy arrays X, Y of shape (B, T), with Y = X shifted by one.
"""
import hashlib
import os
import re
from importlib import resources

import numpy as np

from .errors import DataError, plural

BOOK_NAME = "timemachine.txt"
BOOK_SHA1 = "090b5e7e70c295757f55df93cb0a180b9691891a"
TEXT_MODES = ("letters", "raw")
UNK = "<unk>"


# ---------------------------------------------------------------------------- text
def read_book():
    """The Time Machine, exactly the book's file, from package data, hash-checked."""
    raw = resources.files("minirnn").joinpath("data", BOOK_NAME).read_bytes()
    digest = hashlib.sha1(raw).hexdigest()
    if digest != BOOK_SHA1:
        raise DataError(f"the packaged {BOOK_NAME} is damaged (sha1 {digest}, expected {BOOK_SHA1}); reinstall minirnn")
    return _decode(raw, BOOK_NAME)


def read_text(path):
    """A UTF-8 text file, with a clear DataError for each way it can be unusable."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise DataError(f"--data {path}: no such file; check the path")
    if os.path.isdir(path):
        raise DataError(f"--data {path}: is a directory; give a text file inside it")
    if not os.path.isfile(path):  # reading a pipe would wait for a writer
        raise DataError(f"--data {path}: is not a regular file (a device, pipe or socket); give a text file")
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise DataError(f"--data {path}: cannot be read ({e.strerror}); check that it is a readable file") from None
    return _decode(raw, path)


def _decode(raw, name):
    if not raw:
        raise DataError(f"--data {name}: the file is empty; give a text file with some text in it")
    if b"\x00" in raw[:1 << 20]:
        raise DataError(f"--data {name}: looks like a binary file (it holds NUL bytes); give a UTF-8 text file")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise DataError(
            f"--data {name}: is not valid UTF-8 (bad byte at offset {e.start}); convert it, e.g. iconv -t UTF-8"
        ) from None
    text = text.removeprefix("\ufeff")
    return text.replace("\r\n", "\n").replace("\r", "\n")  # universal newlines, as open() reads


def preprocess(text, mode="letters"):
    """Apply a text mode to a whole text (see the module docstring)."""
    if mode == "raw":
        return text
    if mode != "letters":
        raise ValueError(f"unknown text mode {mode!r}: choose one of {', '.join(TEXT_MODES)}")
    # The book works line by line; on the whole text that is: a run of non-letters
    # that touches a line break vanishes (it was stripped from both lines' ends),
    # any other run becomes one space, and the text's own ends are stripped.
    text = re.sub(r"[^A-Za-z]*\n[^A-Za-z]*", "\n", text)
    text = re.sub(r"[^A-Za-z\n]+", " ", text)
    return text.replace("\n", "").strip().lower()


def _codepoints(text):
    return np.frombuffer(text.encode("utf-32-le"), dtype="<u4")


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
        cps = _codepoints(text)
        uniq, first, counts = np.unique(cps, return_index=True, return_counts=True)
        order = np.lexsort((first, -counts))  # by count descending, then first appearance
        return cls([UNK] + [chr(c) for c in uniq[order]])

    def __len__(self):
        return len(self.idx_to_token)

    @property
    def dtype(self):
        """The smallest unsigned integer type that holds every id."""
        n = len(self)
        return np.uint8 if n <= 256 else np.uint16 if n <= 65536 else np.uint32

    def encode(self, text):
        """ids of text's characters (unknown ones -> 0), vectorised."""
        cps = _codepoints(text)
        if len(self._sorted_cps) == 0:
            return np.zeros(len(cps), dtype=self.dtype)
        pos = np.minimum(np.searchsorted(self._sorted_cps, cps), len(self._sorted_cps) - 1)
        known = self._sorted_cps[pos] == cps
        return np.where(known, self._sorted_ids[pos], 0).astype(self.dtype)

    def unknown_chars(self, text):
        """The distinct characters of text that are not in the vocabulary."""
        return sorted(set(text) - set(self.idx_to_token[1:]))

    def decode(self, ids):
        return "".join(self.idx_to_token[int(i)] for i in ids)

    def __eq__(self, other):
        return isinstance(other, Vocab) and self.idx_to_token == other.idx_to_token


# ---------------------------------------------------------------------------- corpus
class Corpus:
    """The training and held-out token ids of one text, and its vocabulary.

    train  ids of the first max_tokens tokens (all when max_tokens is 0 or larger
           than the text)
    heldout  the next max_tokens tokens; when train takes the whole text, its
           last 10% is held out instead (and train keeps the first 90%).
    """

    def __init__(self, ids, vocab, max_tokens):
        n = len(ids)
        if max_tokens and max_tokens < n:
            self.train = ids[:max_tokens]
            self.heldout = ids[max_tokens:2 * max_tokens]
        else:
            cut = n - n // 10
            self.train, self.heldout = ids[:cut], ids[cut:]
        self.vocab = vocab
        self.num_tokens = n


def load_corpus(path=None, *, text_mode="letters", max_tokens=10000, vocab=None):
    """Read (the book when path is None), preprocess, build or reuse a Vocab, encode."""
    text = read_book() if path is None else read_text(path)
    text = preprocess(text, text_mode)
    if not text:
        raise DataError(
            f"--data {path}: holds no tokens after '{text_mode}' preprocessing "
            f"(letters mode keeps only A-Z); use --text-mode raw or another file"
        )
    vocab = Vocab.build(text) if vocab is None else vocab
    return Corpus(vocab.encode(text), vocab, max_tokens)


# ---------------------------------------------------------------------------- iterators
def num_batches_sequential(num_tokens, batch_size, num_steps, offset):
    """The book's count: ((N - offset - 1) // B) * B tokens in B rows, cut into T-step windows."""
    per_row = (num_tokens - offset - 1) // batch_size
    return max(per_row, 0) // num_steps


def seq_sequential(ids, batch_size, num_steps, rng, offset=None):
    """Sequential partitioning: B parallel streams from a random offset in [0, T]
    (or from the offset given).

    Minibatch i+1 continues minibatch i row by row, so the state can be carried.
    Returns a list of (X, Y) pairs, each (B, T): views of ids, not copies.
    """
    if offset is None:
        offset = int(rng.integers(0, num_steps + 1))
    num_tokens = ((len(ids) - offset - 1) // batch_size) * batch_size
    Xs = ids[offset:offset + num_tokens].reshape(batch_size, -1)
    Ys = ids[offset + 1:offset + 1 + num_tokens].reshape(batch_size, -1)
    n = num_batches_sequential(len(ids), batch_size, num_steps, offset)
    return [(Xs[:, i:i + num_steps], Ys[:, i:i + num_steps]) for i in range(0, n * num_steps, num_steps)]


def seq_random(ids, batch_size, num_steps, rng):
    """Random sampling: non-overlapping T-step subsequences from a random offset in
    [0, T), shuffled, B at a time; adjacent minibatches are unrelated.

    Returns a list of (X, Y) pairs, each (B, T).
    """
    offset = int(rng.integers(0, num_steps))
    num_subseqs = (len(ids) - offset - 1) // num_steps
    starts = offset + np.arange(0, num_subseqs * num_steps, num_steps)
    rng.shuffle(starts)
    steps = np.arange(num_steps)
    batches = []
    for i in range(0, (num_subseqs // batch_size) * batch_size, batch_size):
        rows = starts[i:i + batch_size, None] + steps  # (B, T) positions
        batches.append((ids[rows], ids[rows + 1]))
    return batches


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
