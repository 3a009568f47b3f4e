"""Text modes (what becomes a token):
    letters  the book's ASCII preprocessing: per line, each run of characters other
             than A-Z and a-z becomes one space, then strip and lowercase; the lines
             are joined with no separator. Every other letter (é, ß, ж ...) is dropped,
             and the words at a line's end and the next line's start are glued.
             The default for the book.
    words    every letter of any script (Unicode categories L and M, so accents stay),
             each lowercased by itself; each run of other characters (digits,
             punctuation, spaces, line breaks) becomes one space, and the text's own
             ends are stripped. The default for --data files.
    raw      every character kept, with case, punctuation and newlines.

Each mode is a Preprocessor, applied to a text piece by piece with the same result
as on the whole text, so that a large file can be read in chunks (data.load_corpus).
"""
import unicodedata

import numpy as np

TEXT_MODES = ("letters", "words", "raw")
MAX_CODEPOINT = 0x110000


def default_text_mode(data):
    """letters for the book (its figures depend on it), words for a user's file."""
    return "letters" if data is None else "words"


def text_prefix(text, length=20):
    """The start of a preprocessed text, as a sample prefix: cut at a word boundary when
    there is one, without leading blanks. Give it at least 3 * length characters."""
    start = len(text) - len(text.lstrip())
    head = text[start:start + length]
    cut = head.rsplit(" ", 1)[0] if " " in head.strip() else head
    return cut.rstrip() or text[:length]


def codepoints(text):
    return np.frombuffer(text.encode("utf-32-le"), dtype="<u4")


class Preprocessor:
    """A text mode applied piece by piece, with the same result as on the whole text.

    Call it on consecutive pieces of text; it returns each piece's output as an
    array of code points (uint8 where they are all ASCII, else uint32). Between
    pieces it keeps what the rules need: whether a letter was emitted yet, and
    whether the gap since the last letter is non-empty and holds a line break. It
    counts what the mode dropped: dropped_letters (letters outside A-Z, letters
    mode, the first few in dropped_examples), glued_lines (line breaks between two
    words that vanished, letters mode), and read (characters in).
    """

    def __init__(self, mode):
        if mode not in TEXT_MODES:
            raise ValueError(f"unknown text mode {mode!r}: choose one of {', '.join(TEXT_MODES)}")
        self.mode = mode
        self.started = self.gap = self.gap_break = False
        self.read = self.dropped_letters = self.glued_lines = 0
        self.dropped_examples = []
        self._classified = np.zeros(MAX_CODEPOINT, dtype=bool)  # code points looked up so far
        self._classified[:128] = True
        self._letter = np.zeros(MAX_CODEPOINT, dtype=bool)  # a Unicode letter or mark
        self._letter[np.r_[65:91, 97:123]] = True
        self._lower = None  # words mode: each code point's lowercase, built on first use

    def _classify(self, cps):
        """Look up the code points of cps not seen before (few after the first piece)."""
        new = np.unique(cps[~self._classified[cps]])
        for c in new.tolist():
            ch = chr(c)
            self._letter[c] = unicodedata.category(ch)[0] in "LM"
            lower = ch.lower()
            if self._lower is not None and len(lower) == 1:  # kept as it is when its lowercase is longer
                self._lower[c] = ord(lower)
        self._classified[new] = True

    def __call__(self, text):
        self.read += len(text)
        if self.mode == "raw":
            return np.frombuffer(text.encode("ascii"), dtype=np.uint8) if text.isascii() else codepoints(text)
        breaks = None
        if self.mode == "letters" or text.isascii():
            b = np.frombuffer(text.encode("ascii", "replace"), dtype=np.uint8)  # other characters -> '?'
            low = b | 32  # the lowercase of A-Z; other characters are dropped or become spaces
            is_letter = low - 97 < 26  # A-Z, a-z (uint8: smaller values wrap round)
            if self.mode == "letters":
                breaks = np.flatnonzero(b == 10)
                if not text.isascii():
                    self._count_dropped(_non_ascii(text))
        else:
            if self._lower is None:
                self._lower = np.arange(MAX_CODEPOINT, dtype=np.uint32)
                self._lower[65:91] += 32
            cps = codepoints(text)
            self._classify(cps)
            is_letter, low = self._letter[cps], self._lower[cps]
        return self._collapse(low, is_letter, breaks)

    def _count_dropped(self, cps):
        self._classify(cps)
        dropped = cps[self._letter[cps]]
        self.dropped_letters += len(dropped)
        for c in dict.fromkeys(dropped[:4096].tolist()):
            if len(self.dropped_examples) < 8 and chr(c) not in self.dropped_examples:
                self.dropped_examples.append(chr(c))

    def _collapse(self, low, is_letter, breaks):
        """Letters kept (as low), each gap between two letters one space; in letters
        mode (breaks given: where the line breaks are) a gap with a break vanishes."""
        n = len(low)
        carried_letter = self.started and not self.gap  # the last piece ended inside a word
        run = np.empty(n, dtype=bool)  # where a run of letters starts
        run[0] = is_letter[0] and not carried_letter
        np.greater(is_letter[1:], is_letter[:-1], out=run[1:])
        starts = np.flatnonzero(run)  # (m,)
        if len(starts) == 0:  # no letter starts here: the piece is one gap, or the end of a word and a gap
            if not is_letter.all():
                self.gap = True
                last = n - 1 - int(np.argmax(is_letter[::-1])) if is_letter.any() else -1
                self.gap_break = (self.gap_break and last < 0) or bool(breaks is not None and len(breaks)
                                                                      and breaks[-1] > last)
            return low[is_letter]
        first_gap = starts[0] > 0 or self.gap  # non-letters before the first run
        spaced = np.ones(len(starts), dtype=bool)  # a space before each run
        if breaks is not None:
            broken = np.zeros(len(starts), dtype=bool)  # a line break in the gap before each run
            after = np.searchsorted(starts, breaks)  # the run that follows each break
            broken[after[after < len(starts)]] = True
            broken[0] |= self.gap_break and first_gap
            self.glued_lines += int(broken[1:].sum()) + int(bool(broken[0]) and self.started)
            spaced &= ~broken
        if not self.started:
            spaced[0] = False  # the text's own start is stripped
        spaced[0] &= bool(first_gap)
        lead = bool(spaced[0] and starts[0] == 0)  # the space belongs before this piece's first character
        at = starts[spaced] - 1
        at = at[at >= 0]
        keep = is_letter.copy()
        keep[at] = True
        low[at] = 32
        out = low[keep]
        if lead:
            out = np.concatenate([np.array([32], dtype=out.dtype), out])
        ends_in_gap = not is_letter[-1]
        self.started, self.gap = True, bool(ends_in_gap)
        if breaks is not None:
            last = n - 1 - int(np.argmax(is_letter[::-1]))
            self.gap_break = bool(len(breaks) and breaks[-1] > last)
        return out


def _non_ascii(text):
    """The code points of text's non-ASCII characters, in order (decoded from UTF-8)."""
    u = np.frombuffer(text.encode("utf-8") + b"\0\0\0", dtype=np.uint8)
    lead = np.flatnonzero(u >= 0xC0)  # each non-ASCII character starts with one such byte
    b0 = u[lead].astype(np.uint32)
    b1, b2, b3 = (u[lead + k].astype(np.uint32) & 0x3F for k in (1, 2, 3))
    two = ((b0 & 0x1F) << 6) | b1
    three = ((b0 & 0x0F) << 12) | (b1 << 6) | b2
    four = ((b0 & 0x07) << 18) | (b1 << 12) | (b2 << 6) | b3
    return np.where(b0 < 0xE0, two, np.where(b0 < 0xF0, three, four))


def preprocess(text, mode="letters"):
    """Apply a text mode to a whole text (see the module docstring)."""
    out = Preprocessor(mode)(text) if text else np.zeros(0, np.uint32)
    return out.astype("<u4").tobytes().decode("utf-32-le")
