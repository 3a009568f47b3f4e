"""The README and the pages under docs/, as a reader meets them: their commands run, the
outputs they show are what the code prints, and their links resolve.

Marking a command block as runnable: an HTML comment line right before the block.

    <!-- run -->                                     the block's commands run as written
    <!-- run: train.py --epochs 2; generate.py -n 20 -->
                                                     the same, with these options added at the
                                                     end of every command of that script (the
                                                     last value of an option wins, so this
                                                     shortens a run that takes minutes)

The block is a fenced ```bash block (each line one command; a trailing `# comment` is
fine), a fenced ```python block (run as one script), or a list (the last inline code span
of each item is its command, as in the README's tour). A page's commands run top to bottom
in one temporary folder, so a later block can use what an earlier one saved. The folder
links to the checkout's top-level files and folders (`scripts/train.py` and `--data
README.md` work; outputs land in the folder) and holds `my-text.txt`, a stand-in for a
reader's own text. PYTHONPATH is this checkout, OPENBLAS_NUM_THREADS 1, MINIRNN_DEVICE unset;
every command must exit 0. Without matplotlib, `--plot PATH` is dropped. Blocks left
unmarked are shown and not run: installs, the GPU, downloads, runs that cannot be shortened,
and commands that write into the checkout (the figures).

Printed outputs: a plain fenced block that shows what a command printed is checked by a test
below against a short run of that command: line by line, in order, with the numbers and the
quoted samples masked (a short run prints other figures); `...` stands for omitted lines.
The gradient checker's sample is checked more closely in test_gradcheck.py, and the README's
Python API example is run by test_release.py.
"""
import os
import re
import shlex
import signal
import subprocess
import sys
import textwrap
from importlib.util import find_spec

import pytest

from helpers import ROOT

PAGES = ["README.md"] + sorted(f"docs/{p.name}" for p in (ROOT / "docs").glob("*.md"))
HAS_MATPLOTLIB = find_spec("matplotlib") is not None
MARK = re.compile(r"<!-- run(?::(.*))? -->")


def text(page):
    return (ROOT / page).read_text()


# ----------------------------------------------------------------------------- the runnable blocks
def runnable_blocks(page):
    """[(kind, commands, quick options)] of the page, in order; kind is 'bash' or 'python'."""
    lines, blocks = text(page).splitlines(), []
    for i, line in enumerate(lines):
        mark = MARK.fullmatch(line.strip())
        if not mark:
            continue
        quick = {}
        for part in filter(None, (p.strip() for p in (mark.group(1) or "").split(";"))):
            script, *options = shlex.split(part)
            quick[script] = options
        body, start = [], i + 1
        if start < len(lines) and lines[start] in ("```bash", "```python"):
            end = lines.index("```", start + 1)
            body, kind = lines[start + 1:end], lines[start][3:]
            commands = ["\n".join(body)] if kind == "python" else [c for c in body if c.strip()]
        else:  # a list: one item a command
            kind, commands = "bash", []
            for item in lines[start:]:
                if not item.strip():
                    break
                if item.startswith("- "):
                    commands.append(re.findall(r"`([^`]+)`", item)[-1])
                elif commands:  # an item's continuation line
                    spans = re.findall(r"`([^`]+)`", item)
                    commands[-1] = spans[-1] if spans else commands[-1]
        assert commands, f"{page}, line {i + 1}: a run marker with no block right after it"
        blocks.append((kind, commands, quick))
    return blocks


def _shortened(command, quick):
    words = shlex.split(command, comments=True)
    scripts = [os.path.basename(w) for w in words if w.endswith(".py")]
    if not scripts or (scripts[0] not in quick and HAS_MATPLOTLIB):
        return command
    if not HAS_MATPLOTLIB and "--plot" in words:
        at = words.index("--plot")
        del words[at:at + 2]
    return shlex.join(words + quick.get(scripts[0], []))


def page_folder(tmp_path):
    for entry in ROOT.iterdir():
        if not entry.name.startswith("."):
            (tmp_path / entry.name).symlink_to(entry)
    book = (ROOT / "minirnn" / "data" / "timemachine.txt").read_text()
    (tmp_path / "my-text.txt").write_text(book[40_000:100_000])  # a stand-in for a reader's own text
    return tmp_path


def run_in(folder, command, timeout=300):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OPENBLAS_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    env.pop("MINIRNN_DEVICE", None)
    return subprocess.run(["bash", "-c", command], capture_output=True, text=True, cwd=folder, env=env,
                          timeout=timeout)


def test_the_pages_have_runnable_blocks():
    assert runnable_blocks("README.md") and sum(len(runnable_blocks(p)) for p in PAGES) >= 10


@pytest.mark.parametrize("page", PAGES)
def test_every_runnable_block_runs(page, tmp_path):
    folder = page_folder(tmp_path)
    for kind, commands, quick in runnable_blocks(page):
        for command in commands:
            if kind == "python":
                (folder / "snippet.py").write_text(command)
                command = f"{shlex.quote(sys.executable)} snippet.py"
            else:
                command = _shortened(command, quick)
                command = re.sub(r"^python ", f"{shlex.quote(sys.executable)} ", command)
            r = run_in(folder, command)
            assert r.returncode == 0, f"{page}: {command}\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}"


def test_a_shortened_command_keeps_what_it_shows():
    quick = {"train.py": ["--epochs", "2"]}
    shown = "python scripts/train.py --cell gru --log 'my log.csv'   # a comment"
    short = _shortened(shown, quick)
    assert shlex.split(short)[:-2] == shlex.split(shown, comments=True)
    assert shlex.split(short)[-2:] == ["--epochs", "2"]
    assert _shortened("ls -l", quick) == "ls -l"


# ----------------------------------------------------------------------------- the printed outputs
NUMBER = re.compile(r"[-+]?(?:\d[\d,]*(?:\.\d+)?(?:e[-+]?\d+)?|inf|nan)\b")


def masked(line):
    line = re.sub(r"'[^']*'", "'…'", line)  # a quoted sample of generated text
    line = re.sub(r"\b\d+[hms](?:\d+[ms])?\b", "#", line)  # durations: 0s, 1m36s, 3h02m
    return " ".join(NUMBER.sub("#", line).split())


def shown_block(page, first):
    """The plain fenced block of `page` whose first line starts with `first`, as lines."""
    return re.search(r"```\n(" + re.escape(first) + r".*?)```", text(page), re.S).group(1).splitlines()


def assert_printed(shown, printed, generated=0):
    """Each shown line (but `...`) is, masked, a printed line, in order, where lines that are
    alike once masked (the progress lines) count as one; the last `generated`
    shown lines are generated text, which a short run cannot repeat: the printed output ends
    with as many non-empty lines."""
    shown, free = (shown[:-generated], shown[-generated:]) if generated else (shown, [])
    if free:
        assert all(printed[-generated:]), printed
        printed = printed[:-generated]
    rest = _runs([masked(line) for line in printed])
    for line in _runs([masked(line) for line in shown if line != "..."]):
        assert line in rest, f"{line!r} is not printed; printed:\n" + "\n".join(printed)
        rest = rest[rest.index(line) + 1:]


def _runs(lines):
    return [line for i, line in enumerate(lines) if i == 0 or line != lines[i - 1]]


def test_masking_tells_formats_apart():
    assert masked("epoch   10  ppl  13.650  'the the'") == masked("epoch 2 ppl 16.310 'a b c'")
    assert masked("perplexity 3.24e+34, in 1m36s") == masked("perplexity inf, in 0s")
    assert masked("held-out 13.3") != masked("held out 13.3")
    with pytest.raises(AssertionError):
        assert_printed(["a 1", "b 2"], ["b 2", "a 1"])
    assert_printed(["x", "a 1", "...", "a 3", "a 4", "b 2"], ["x", "a 9", "b 9"])


def test_the_book_run_shown_in_the_readme_is_what_train_prints(tmp_path):
    shown = shown_block("README.md", "training on cpu:")
    folder = page_folder(tmp_path)
    plot = "--plot tm.png" if HAS_MATPLOTLIB else ""
    r = run_in(folder, f"{shlex.quote(sys.executable)} scripts/train.py --log tm.csv {plot} --save tm.npz --epochs 2 --print-every 1")
    assert r.returncode == 0, r.stderr
    if not HAS_MATPLOTLIB:
        shown = [line.replace("log tm.csv, plot tm.png", "log tm.csv") for line in shown]
    assert_printed(shown, r.stdout.splitlines(), generated=2)
    assert r.stdout.splitlines()[0] == shown[0]  # the book's configuration, as the page says


def test_the_other_book_shown_in_the_exercises_is_what_train_prints(tmp_path):
    shown = shown_block("docs/exercises.md", "training on cpu:")
    r = run_in(page_folder(tmp_path), f"{shlex.quote(sys.executable)} scripts/train.py --data my-text.txt "
                                      f"--text-mode letters --log shakespeare.csv --epochs 2 --print-every 1")
    assert r.returncode == 0, r.stderr
    shown = [line.replace(", plot shakespeare.png", "") for line in shown]
    assert_printed(shown, r.stdout.splitlines(), generated=1)


def test_the_divergence_shown_in_the_exercises_is_what_train_prints(tmp_path):
    shown = shown_block("docs/exercises.md", "epoch  260")
    # a learning rate that diverges within seconds, as --clip 0 at lr 1 does in epoch 267
    r = run_in(page_folder(tmp_path), f"{shlex.quote(sys.executable)} scripts/train.py --clip 0 --lr 5 "
                                      f"--epochs 30 --print-every 1 --log clip0.csv")
    assert r.returncode == 1
    assert_printed(shown, (r.stdout + r.stderr).splitlines())


def test_the_long_epoch_line_shown_in_training_is_what_train_prints(tmp_path):
    shown = shown_block("docs/training.md", "  epoch 1: minibatch")
    r = run_in(page_folder(tmp_path), f"{shlex.quote(sys.executable)} scripts/train.py --max-tokens 0 "
                                      f"--epochs 2 --num-hiddens 32 --progress-seconds 0.05")
    assert r.returncode == 0, r.stderr
    assert_printed(shown, r.stdout.splitlines())


def test_the_gradient_flow_table_is_what_gradflow_prints(tmp_path):
    shown = shown_block("docs/gradflow.md", "gradient flow through time:")
    r = run_in(page_folder(tmp_path), f"{shlex.quote(sys.executable)} scripts/gradflow.py --cell rnn")
    assert r.returncode == 0, r.stderr
    printed = r.stdout.splitlines()
    assert_printed(shown, printed)
    per_step = lambda lines: [float(x) for x in next(l for l in lines if l.strip().startswith("per step")).split()[2:]]  # noqa: E731
    assert per_step(shown) == pytest.approx(per_step(printed), rel=1e-3)  # the page's figures, fresh init


# ----------------------------------------------------------------------------- links and figures
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def anchors(page):
    """GitHub's ids of the page's headings: lower case, punctuation dropped, spaces to hyphens."""
    ids, seen = set(), {}
    inside = False
    for line in text(page).splitlines():
        inside = not inside if line.startswith("```") else inside
        if inside or not line.startswith("#"):
            continue
        slug = re.sub(r"[^\w\- ]", "", line.lstrip("#").strip().lower().replace("`", "")).replace(" ", "-")
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        ids.add(slug if n == 0 else f"{slug}-{n}")
    return ids


def links(page):
    body = re.sub(r"```.*?```", "", text(page), flags=re.S)  # not inside code blocks
    return [target for target in LINK.findall(body) if not re.match(r"[a-z]+:", target)]


@pytest.mark.parametrize("page", PAGES)
def test_every_relative_link_resolves(page):
    for target in links(page):
        path, _, anchor = target.partition("#")
        resolved = (ROOT / page).parent / path if path else ROOT / page
        assert resolved.exists(), f"{page}: {target} does not exist"
        assert ROOT in resolved.resolve().parents, f"{page}: {target} leaves the repository"
        if anchor:
            assert resolved.suffix == ".md" and anchor in anchors(resolved.relative_to(ROOT).as_posix()), \
                f"{page}: no heading #{anchor} in {path or page}"


def test_anchors_follow_githubs_rule():
    assert {"the-books-run", "1-one-hot-encoding-is-picking-a-row",
            "6-relu-instead-of-tanh-is-clipping-still-needed"} <= anchors("README.md") | anchors("docs/exercises.md")


def test_the_readme_links_every_page():
    readme = set(links("README.md"))
    for page in PAGES[1:]:
        assert page in readme, f"README.md does not link {page}"


@pytest.mark.parametrize("page", PAGES)
def test_every_figure_is_there_and_small(page):
    for target in LINK.findall(text(page)):
        if target.endswith(".png"):
            data = ((ROOT / page).parent / target).read_bytes()
            assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) < 100_000, (page, target, len(data))


def test_the_readme_is_a_front_door():
    readme = text("README.md")
    assert len(readme.splitlines()) <= 250
    headings = [line for line in readme.splitlines() if line.startswith("## ")]
    order = ["## The book's run", "## A tour", "## Python API", "## The package", "## Headline figures",
             "## The docs"]
    assert [h for h in headings if any(h.startswith(o) for o in order)] == headings
    assert [next(i for i, h in enumerate(headings) if h.startswith(o)) for o in order] == sorted(range(len(order)))
    figures = re.search(r"## Headline figures\n(.*?)\n## ", readme, re.S).group(1)
    rows = [line for line in figures.splitlines() if line.startswith("|")][2:]
    assert 1 <= len(rows) <= 8 and all(re.search(r"\]\(docs/[\w-]+\.md(#[\w-]+)?\)", row) for row in rows)


def test_the_two_commands_come_first_and_unchanged():
    readme = text("README.md")
    first = re.search(r"```bash\n(.*?)```", readme, re.S).group(1)
    assert first == textwrap.dedent("""\
        pip install -e . && python scripts/train.py          # install, then train the book's model (about 2 minutes on 2 cores)
        pip install -e ".[test]" && python -m pytest          # run the tests
        """)
    assert "python -m pytest -q" in (ROOT / ".ci" / "run").read_text()


def test_ctrl_c_prints_what_the_checkpoints_page_shows_and_its_advice_resumes(tmp_path):
    shown = shown_block("docs/checkpoints.md", "interrupt:")
    folder = page_folder(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OPENBLAS_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    env.pop("MINIRNN_DEVICE", None)
    run = subprocess.Popen([sys.executable, "scripts/train.py", "--save", "run.npz", "--print-every", "1", "--epochs", "50"],
                           cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert run.stdout.readline().startswith("training on cpu") and run.stdout.readline().startswith("epoch")
        run.send_signal(signal.SIGINT)
        _, err = run.communicate(timeout=120)
    finally:
        run.kill()
    assert run.returncode == 130
    printed = err.splitlines()
    assert_printed(shown[:-1], printed)  # the last line names the epoch, which a run reaches when it may
    stop = r"stopped (?:epoch \d+, after minibatch \d+|after epoch \d+); resume with: (.*)"  # mid-epoch or between
    stopped = re.fullmatch(stop, printed[-1])
    assert re.fullmatch(stop, shown[-1]).group(1) == stopped.group(1) == "python scripts/train.py --resume run.npz"
    resumed = run_in(folder, stopped.group(1).replace("python", shlex.quote(sys.executable), 1) + " --epochs 6")
    assert resumed.returncode == 0 and ", resuming at epoch" in resumed.stdout, resumed.stderr
