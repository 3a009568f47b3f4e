"""docs/own-cell.md runs as written: its Python blocks are the shipped example's own
code, and each of its console blocks is run, in order, in a folder holding the
student's cifg.py, with the output compared to what the page shows.

A console block is `$ command` lines, each followed by its output. A comment
`<!-- test: ... -->` just above a block says how to run and compare it:
    (none)         every line as shown; numbers agree to the digits shown, except
                   those below 1e-6 (rounding noise of the checks), which need only
                   stay below 1e-6
    timing         every line, with every number masked (times and rates vary)
    short OPTIONS  run with OPTIONS appended (a shorter run); compare the first line
                   and the closing ones (perplexity, checkpoint, the table's heading),
                   numbers masked
    starts TEXT    the output starts with TEXT (generated text)
"""
import os
import re
import shlex
import subprocess
import sys

import pytest

from helpers import ROOT

PAGE = ROOT / "docs" / "own-cell.md"
CIFG = ROOT / "minirnn" / "cells" / "examples" / "cifg.py"
NUMBER = re.compile(r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?")
BROKEN = ("dC_prev = dC * F", "dC_prev = dC * (1 - F)")  # the line the page breaks


def blocks():
    """[(how, [(command, [output lines])])] for every console block, in order."""
    out = []
    for how, body in re.findall(r"(?:<!-- test: (.*?) -->\n)?```console\n(.*?)```", PAGE.read_text(), re.S):
        runs = []
        for line in body.rstrip("\n").split("\n"):
            if line.startswith("$ "):
                runs.append((line[2:], []))
            else:
                runs[-1][1].append(line)
        out.append((how.strip(), runs))
    return out


def _masked(line):
    """The line with every number as #, and runs of spaces as one (a column's width
    follows its numbers' digits)."""
    return " ".join(NUMBER.sub("#", line).split())


def _same(shown, got):
    """A shown line against a printed one: the same words; numbers to the digits shown."""
    if _masked(shown) != _masked(got):
        return False
    for a, b in zip(NUMBER.findall(shown), NUMBER.findall(got)):
        x, y = float(a), float(b)
        if abs(x) < 1e-6:
            if not abs(y) < 1e-6:
                return False
        elif a != b and abs(x - y) > 1e-3 * abs(x):
            return False
    return True


def test_the_pages_code_is_the_shipped_examples_code():
    code = re.findall(r"```python\n(.*?)```", PAGE.read_text(), re.S)
    source = CIFG.read_text()
    assert len(code) >= 3
    for block in code:
        assert block in source, block


def test_every_command_on_the_page_prints_what_it_shows(tmp_path):
    (tmp_path / "cifg.py").write_text(CIFG.read_text())
    (tmp_path / "broken.py").write_text(CIFG.read_text().replace(*BROKEN, 1))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OPENBLAS_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    env.pop("MINIRNN_DEVICE", None)
    ran = 0
    for how, runs in blocks():
        for command, shown in runs:
            argv = shlex.split(command)
            assert argv[0] == "minirnn", command
            if how.startswith("short "):
                argv += shlex.split(how[len("short "):])
            r = subprocess.run([sys.executable, "-m", "minirnn", *argv[1:]], capture_output=True, text=True,
                               cwd=tmp_path, env=env, timeout=600)
            got = r.stdout.rstrip("\n").split("\n")
            expect_fail = "GRADIENT CHECK FAILED" in "\n".join(shown)
            assert r.returncode == (1 if expect_fail else 0), (command, r.stdout, r.stderr)
            if how.startswith("starts "):
                assert r.stdout.startswith(how[len("starts "):].strip('"')), (command, r.stdout)
            elif how.startswith("short "):
                assert _masked(got[0]) == _masked(shown[0]), (command, got[0])
                for line in shown:
                    if line.startswith(("perplexity ", "wrote checkpoint", "  window:", " k=T-t")):
                        assert _masked(line) in [_masked(x) for x in got], (command, line, r.stdout)
            elif how == "timing":
                assert [_masked(x) for x in got] == [_masked(x) for x in shown], (command, r.stdout)
            else:
                assert len(got) == len(shown), (command, r.stdout)
                for a, b in zip(shown, got):
                    assert _same(a, b), (command, a, b)
            ran += 1
    assert ran >= 7
