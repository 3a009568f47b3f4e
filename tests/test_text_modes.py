"""Text modes and chunked loading: a large text read piece by piece gives exactly the
ids and vocabulary of the whole text; words mode keeps every letter; the header says
what was trained on, held out, unused and dropped."""
import re
import shutil
import subprocess
import tempfile
import tracemalloc
import unicodedata
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from minirnn import data
from minirnn.config import Config
from minirnn.data import Corpus, Vocab, load_corpus, preprocess
from minirnn.errors import DataError, UsageError

from helpers import run_script

# Characters that exercise every rule: ASCII letters of both cases, blanks and line
# breaks of each kind, punctuation, letters outside A-Z (2-, 3- and 4-byte UTF-8), a
# combining accent, a letter whose lowercase is two characters, a BOM, a digit.
ALPHABET = "aZ q\n\r\r\n\t.,'é ßΣçİ\u0301ж中𝔄\ufeff7-"


def letters_reference(text):
    """The book's rule, line by line."""
    return "".join(re.sub("[^A-Za-z]+", " ", line).strip().lower() for line in text.split("\n"))


def words_reference(text):
    """Letters and marks kept, each lowercased alone; every other run one space."""
    kept = []
    for ch in text:
        lower = ch.lower()
        kept.append((lower if len(lower) == 1 else ch) if unicodedata.category(ch)[0] in "LM" else " ")
    return " ".join("".join(kept).split())


def universal(text):
    """What reading a file gives: no leading BOM, \\r\\n and \\r as \\n."""
    return text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")


def load_bytes(raw, **kw):
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "t.txt"
        path.write_bytes(raw)
        return load_corpus(path, max_tokens=0, **kw)


def all_ids(corpus):
    return np.concatenate([corpus.train, corpus.heldout])


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet=ALPHABET, min_size=1, max_size=80), st.sampled_from(data.TEXT_MODES),
       st.integers(1, 40))
def test_chunked_loading_equals_the_whole_text(text, mode, chunk_bytes):
    whole = universal(text)
    expected = preprocess(whole, mode)
    reference = {"letters": letters_reference, "words": words_reference, "raw": lambda t: t}[mode](whole)
    assert expected == reference  # the whole-text rule is the stated one
    if not expected:
        with pytest.raises(DataError, match="holds no tokens"):
            load_bytes(text.encode("utf-8"), text_mode=mode, chunk_bytes=chunk_bytes)
        return
    corpus = load_bytes(text.encode("utf-8"), text_mode=mode, chunk_bytes=chunk_bytes)
    vocab = Vocab.build(expected)  # by frequency, then first appearance
    assert corpus.vocab == vocab
    assert np.array_equal(all_ids(corpus), vocab.encode(expected)) and all_ids(corpus).dtype == vocab.dtype


@pytest.mark.parametrize("mode", data.TEXT_MODES)
def test_the_book_is_the_same_in_every_chunk_size(mode):
    whole = load_corpus(text_mode=mode, max_tokens=0)
    text = preprocess(data.read_book(), mode)
    assert whole.vocab == Vocab.build(text) and np.array_equal(all_ids(whole), Vocab.build(text).encode(text))
    for chunk_bytes in (61, 4093):
        chunked = load_corpus(text_mode=mode, max_tokens=0, chunk_bytes=chunk_bytes)
        assert chunked.vocab == whole.vocab and np.array_equal(all_ids(chunked), all_ids(whole))


def test_more_than_256_tokens_take_two_bytes_each():
    text = "".join(chr(0x400 + i) + " " for i in range(300)) * 2
    corpus = load_bytes(text.encode("utf-8"), text_mode="raw", chunk_bytes=97)
    assert len(corpus.vocab) == 302 and corpus.train.dtype == np.uint16
    assert np.array_equal(all_ids(corpus), corpus.vocab.encode(text))
    assert load_bytes(b"ab c" * 100, text_mode="raw").train.dtype == np.uint8


def test_words_mode_keeps_every_letter_and_separates_lines():
    assert preprocess("Le café était fermé. Straße", "words") == "le café était fermé straße"
    assert preprocess("Le café était fermé. Straße", "letters") == "le caf tait ferm stra e"  # the book's rule
    assert preprocess("the end of a\nline, and a-\nnother", "words") == "the end of a line and a nother"
    assert preprocess("the end of a\nline", "letters") == "the end of aline"
    assert preprocess("ΣΊΣΥΦΟΣ 42 Москва", "words") == "σίσυφοσ москва"


def test_a_users_file_defaults_to_words_mode_and_the_book_to_letters():
    assert Config().text_mode == "letters" and Config(data="f.txt").text_mode == "words"
    assert Config(data="f.txt", text_mode="letters").text_mode == "letters"


def test_the_file_is_read_once_in_chunks(tmp_path, monkeypatch):
    path = tmp_path / "t.txt"
    path.write_text("Some text, with lines\nand more of them.\n" * 2000)
    reads, opened = [], []
    real_open = open

    def counting_open(*args, **kwargs):
        f = real_open(*args, **kwargs)
        opened.append(args[0])
        read = f.read
        f_read = lambda n=-1: (reads.append(n), read(n))[1]  # noqa: E731
        return type("F", (), {"read": staticmethod(f_read), "__enter__": lambda s: s,
                              "__exit__": lambda s, *a: f.close()})()

    monkeypatch.setattr(data, "open", counting_open, raising=False)
    corpus = load_corpus(path, text_mode="words", max_tokens=0, chunk_bytes=4096)
    assert opened == [str(path)] and all(n == 4096 for n in reads)
    assert corpus.num_tokens > 0 and len(reads) == path.stat().st_size // 4096 + 2  # the last, short one, then b""


def test_memory_grows_with_the_text_by_a_small_multiple(tmp_path):
    words = data.read_book().split()[:5000] + ["café", "Straße"]
    rng = np.random.default_rng(0)
    peaks, sizes = [], []
    for lines in (6000, 18000):  # about 0.5 MB and 1.5 MB
        path = tmp_path / f"{lines}.txt"
        path.write_text("\n".join(" ".join(line) for line in rng.choice(words, (lines, 12))))
        sizes.append(path.stat().st_size)
        for mode in data.TEXT_MODES:
            tracemalloc.start()
            corpus = load_corpus(path, text_mode=mode, max_tokens=0, chunk_bytes=1 << 16)
            peaks.append((mode, tracemalloc.get_traced_memory()[1]))
            tracemalloc.stop()
            assert corpus.train.dtype == np.uint8
    for (mode, small), (_, large) in zip(peaks[:3], peaks[3:]):
        # each further byte of text costs its id (one byte) and little else: the
        # code point tables and a chunk's work do not grow with the text
        assert (large - small) / (sizes[1] - sizes[0]) < 1.5, (mode, small, large, sizes)


# ---------------------------------------------------------------------------- split
def test_heldout_tokens_fix_the_held_out_part():
    ids, vocab = np.arange(100) % 7, Vocab(["<unk>"] + list("abcdefg"))
    c = Corpus(ids, vocab, max_tokens=0, heldout_tokens=15)
    assert (len(c.train), len(c.heldout), c.unused) == (85, 15, 0) and np.array_equal(c.heldout, ids[85:])
    c = Corpus(ids, vocab, max_tokens=50, heldout_tokens=15)  # enwik8's shape: train, held out, the rest unused
    assert np.array_equal(c.train, ids[:50]) and np.array_equal(c.heldout, ids[50:65]) and c.unused == 35
    c = Corpus(ids, vocab, max_tokens=95, heldout_tokens=15)  # no room after max_tokens: the last 15
    assert (len(c.train), len(c.heldout)) == (85, 15)
    with pytest.raises(DataError, match="--heldout-tokens 100 leaves nothing to train on"):
        Corpus(ids, vocab, max_tokens=0, heldout_tokens=100)


def test_eval_tokens_cannot_be_combined_with_an_ensemble():
    with pytest.raises(UsageError, match="--eval-tokens cannot be combined with --ensemble"):
        Config(eval_tokens=5000, ensemble=3).validated()


# ---------------------------------------------------------------------------- messages
@pytest.mark.parametrize("encoding, source, text", [("latin-1", "LATIN1", "Le café était fermé.\n"),
                                                     ("cp1252", "WINDOWS-1252", "Le café “fermé”.\n"),
                                                     ("utf-16", "UTF-16", "Grüße aus Köln.\n"),
                                                     ("utf-16-le", "UTF-16LE", "Grüße aus Köln.\n"),
                                                     ("utf-16-be", "UTF-16BE", "Grüße aus Köln.\n")])
def test_a_file_in_another_encoding_gets_a_conversion_that_works(tmp_path, encoding, source, text):
    path = tmp_path / "fr.txt"
    path.write_bytes((text * 10).encode(encoding))
    with pytest.raises(DataError) as e:
        load_corpus(path)
    message = str(e.value)
    command = re.search(rf"iconv -f {source} -t UTF-8 \S+ > \S+", message)
    assert command, message
    if shutil.which("iconv"):  # the advice, run as given
        subprocess.run(command.group(0), shell=True, check=True, cwd=tmp_path)
        target = Path(command.group(0).split("> ")[1])
        assert data.read_text(target) == text * 10


def test_the_header_says_what_was_trained_held_out_unused_and_dropped(tmp_path):
    path = tmp_path / "de.txt"
    path.write_text("Über die Straße ging\nein Mann.\n" * 300)
    r = run_script("train.py", "--data", path, "--max-tokens", 2000, "--epochs", 1, "--num-hiddens", 8,
                   "--text-mode", "letters", "--log", tmp_path / "log.csv")
    assert r.returncode == 0, r.stderr
    text = [line for line in r.stdout.splitlines() if line.startswith("text: ")][0]
    n = load_corpus(path, text_mode="letters", max_tokens=0).num_tokens
    assert f"-> {n:,} tokens; training on 2,000, holding out 2,000; {n - 4000:,} (" in text
    assert "--max-tokens 0 trains on all of it" in text
    assert "letters mode dropped 600 letters outside A-Z (Üß" in text
    assert "joined 599 lines to the next with no space" in text and "--text-mode words" in text
    epoch = [line for line in r.stdout.splitlines() if line.startswith("epoch ")][0]
    ppl = float(epoch.split("held-out")[1].split()[0])
    assert f"{np.log2(ppl):.3f} bpc" in epoch
    row = (tmp_path / "log.csv").read_text().splitlines()
    fields = dict(zip(row[0].split(","), row[1].split(",")))
    assert float(fields["heldout_bpc"]) == pytest.approx(np.log2(float(fields["heldout_ppl"])))
    assert int(fields["heldout_tokens"]) == 1999  # every one of the 2,000 held-out tokens but the first


def test_eval_tokens_bound_the_measurements_until_the_last_epoch(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text(" ".join(data.read_book().split()[:6000]))
    r = run_script("train.py", "--data", path, "--max-tokens", 0, "--heldout-tokens", 6000, "--eval-tokens", 2300,
                   "--epochs", 2, "--print-every", 1, "--num-hiddens", 8, "--log", tmp_path / "log.csv")
    assert r.returncode == 0, r.stderr
    rows = [dict(zip(*(line.split(",") for line in pair)))
            for pair in [((tmp_path / "log.csv").read_text().splitlines()[0], line)
                         for line in (tmp_path / "log.csv").read_text().splitlines()[1:]]]
    assert [int(row["heldout_tokens"]) for row in rows] == [2299, 5999]  # the first 2,300 but their first; then all 6,000
    lines = [line for line in r.stdout.splitlines() if line.startswith("epoch ")]
    assert "(first 2,299 tokens)" in lines[0] and "first" not in lines[1]
    assert "held-out figures score the first 2,300 of them until the last epoch" in r.stdout
    best = [line for line in r.stdout.splitlines() if line.startswith("best held-out perplexity")][0]
    assert ("on the first 2,299 tokens at epoch 1" in best) == best.endswith("at epoch 1")


def test_a_remainder_of_a_few_tokens_is_counted_without_advice(tmp_path):
    path = tmp_path / "de.txt"
    path.write_text("Über die Straße ging\nein Mann.\n" * 300)
    n = load_corpus(path, max_tokens=0, text_mode="words").num_tokens
    r = run_script("train.py", "--data", path, "--max-tokens", (n - 1) // 2, "--epochs", 1, "--num-hiddens", 8)
    assert r.returncode == 0, r.stderr
    text = [line for line in r.stdout.splitlines() if line.startswith("text: ")][0]
    assert text.endswith(f"; {n - 2 * ((n - 1) // 2)} unused") and "--max-tokens 0" not in text, text
