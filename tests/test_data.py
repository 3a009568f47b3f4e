"""The book, its preprocessing, the vocabulary and both iterators."""
import hashlib
import re

import numpy as np
import pytest
from hypothesis import given, strategies as st

from minirnn.data import (BOOK_SHA1, Corpus, Vocab, check_fits, load_corpus, num_batches_sequential, preprocess,
                          read_book, seq_random, seq_sequential)
from minirnn.errors import DataError


@pytest.fixture(scope="module")
def book():
    return load_corpus(max_tokens=0)


def test_book_is_the_exact_file():
    text = read_book()
    assert hashlib.sha1(text.encode("utf-8")).hexdigest() == BOOK_SHA1
    assert text.count("\n") == 3221


def test_book_corpus_and_vocab(book):
    assert book.num_tokens == 170580
    assert len(book.vocab) == 28
    assert book.vocab.idx_to_token[:10] == ["<unk>", " ", "e", "t", "a", "i", "n", "o", "s", "h"]
    assert book.train.dtype == np.uint8
    assert book.vocab.decode(book.train[:13]) == "the time mach"


def _book_reference(text):
    """The book's preprocessing, line by line."""
    return "".join(re.sub("[^A-Za-z]+", " ", line).strip().lower() for line in text.split("\n"))


@given(st.text(alphabet=st.sampled_from(list("abcXYZ \n\t.,!-1é\u212a")), max_size=200))
def test_letters_mode_equals_the_book_line_by_line(text):
    assert preprocess(text, "letters") == _book_reference(text)


def test_letters_mode_on_the_book():
    text = read_book()
    assert preprocess(text, "letters") == _book_reference(text)


@given(st.text(max_size=300))
def test_raw_round_trip_with_any_unicode(text):
    if not text:
        return
    vocab = Vocab.build(text)
    ids = vocab.encode(text)
    assert vocab.decode(ids) == text
    assert ids.dtype == vocab.dtype
    assert (ids > 0).all()  # every character of its own text is known


def test_vocab_order_is_frequency_then_first_appearance():
    v = Vocab.build("bbaacd")  # b and a tie at 2 (b first), c and d tie at 1
    assert v.idx_to_token == ["<unk>", "b", "a", "c", "d"]
    assert v.encode("abzc").tolist() == [2, 1, 0, 3]  # z is unknown
    assert v.unknown_chars("abzcyy") == ["y", "z"]


def test_id_dtype_fits_the_vocabulary():
    assert Vocab.build("ab").dtype == np.uint8
    big = Vocab.build("".join(chr(0x4E00 + i) for i in range(300)))
    assert big.dtype == np.uint16
    assert big.encode(chr(0x4E00 + 299))[0] == 300


def test_bad_vocab_is_refused():
    for tokens in (["a", "<unk>"], ["<unk>", "a", "a"], ["<unk>", "ab"], []):
        with pytest.raises(ValueError):
            Vocab(tokens)


def test_heldout_split():
    ids = np.arange(100, dtype=np.uint8)
    c = Corpus(ids, None, max_tokens=30)
    assert c.train.tolist() == list(range(30)) and c.heldout.tolist() == list(range(30, 60))
    whole = Corpus(ids, None, max_tokens=0)
    assert whole.train.tolist() == list(range(90)) and whole.heldout.tolist() == list(range(90, 100))
    assert len(Corpus(ids, None, max_tokens=500).heldout) == 10


def test_encoding_a_large_text_is_vectorised(tmp_path):
    import time
    path = tmp_path / "big.txt"
    path.write_text(read_book() * 60)  # about 10 MB
    start = time.perf_counter()
    corpus = load_corpus(path, max_tokens=0)
    assert corpus.num_tokens == 60 * 170580
    assert time.perf_counter() - start < 15


iterator_args = st.tuples(st.integers(50, 400), st.integers(1, 6), st.integers(1, 12), st.integers(0, 2**32 - 1))


@given(iterator_args)
def test_sequential_iterator(args):
    n, B, T, seed = args
    ids = np.arange(n)
    rng = np.random.default_rng(seed)
    batches = seq_sequential(ids, B, T, rng)
    offset = int(np.random.default_rng(seed).integers(0, T + 1))
    assert len(batches) == num_batches_sequential(n, B, T, offset) == ((n - offset - 1) // B) // T
    for X, Y in batches:
        assert X.shape == Y.shape == (B, T)
        np.testing.assert_array_equal(Y, X + 1)  # Y is X shifted by one
    for (X1, _), (X2, _) in zip(batches, batches[1:]):
        np.testing.assert_array_equal(X2[:, 0], X1[:, -1] + 1)  # minibatches adjacent row by row
    if batches:
        assert batches[0][0][0, 0] == offset


@given(iterator_args)
def test_random_iterator(args):
    n, B, T, seed = args
    ids = np.arange(n)
    batches = seq_random(ids, B, T, np.random.default_rng(seed))
    offset = int(np.random.default_rng(seed).integers(0, T))
    num_subseqs = (n - offset - 1) // T
    assert len(batches) == num_subseqs // B
    starts = []
    for X, Y in batches:
        assert X.shape == (B, T)
        np.testing.assert_array_equal(Y, X + 1)
        np.testing.assert_array_equal(X, X[:, :1] + np.arange(T))  # contiguous subsequences
        starts += X[:, 0].tolist()
    assert len(set(starts)) == len(starts)  # no subsequence twice
    assert all((s - offset) % T == 0 for s in starts)  # on the grid, so none overlap


def test_iterators_are_seeded_by_the_generator_passed_in():
    ids = np.arange(1000)
    a = seq_random(ids, 4, 5, np.random.default_rng(7))
    b = seq_random(ids, 4, 5, np.random.default_rng(7))
    c = seq_random(ids, 4, 5, np.random.default_rng(8))
    assert all(np.array_equal(x[0], y[0]) for x, y in zip(a, b))
    assert not all(np.array_equal(x[0], y[0]) for x, y in zip(a, c))


def test_book_minibatch_count():
    corpus = load_corpus()  # the book's 10,000 tokens
    assert len(seq_sequential(corpus.train, 32, 35, np.random.default_rng(0))) == 8


def test_text_too_short_names_the_sizes():
    with pytest.raises(DataError, match=r"100 tokens.*--batch-size 32 x --num-steps 35"):
        check_fits(100, 32, 35, "training text")


def test_a_regular_install_ships_the_book(tmp_path, installed):
    """`pip install .` (not editable) must carry the book as package data."""
    import subprocess
    import sys

    target, _ = installed
    code = "import minirnn.data as d; print(d.__file__); print(len(d.load_corpus(max_tokens=0).train))"
    check = subprocess.run([sys.executable, "-c", code],
                           capture_output=True, text=True, cwd=tmp_path, env={"PYTHONPATH": str(target)}, timeout=120)
    assert check.returncode == 0, check.stderr
    where, count = check.stdout.split()
    assert where.startswith(str(target))  # the installed copy, not this checkout
    assert count == str(170580 - 17058)
