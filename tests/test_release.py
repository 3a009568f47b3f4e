"""What a release carries: an installed command, the licence, the changelog, the
README's Python example and figure, and the GPU request that cannot be met."""
import os
import re
import subprocess
import sys

import pytest

import minirnn
from minirnn.backend import BackendError, get_backend

from helpers import ROOT


def test_a_regular_install_runs_outside_the_checkout(tmp_path, installed):
    target, bin_dir = installed
    env = {"PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}", "PYTHONPATH": str(target),
           "PYTHONUNBUFFERED": "1"}
    version = subprocess.run([sys.executable, "-m", "minirnn", "--version"], capture_output=True, text=True,
                             cwd=tmp_path, env=env, timeout=120)
    assert version.returncode == 0 and version.stdout == f"minirnn {minirnn.__version__}\n", version.stderr
    train = subprocess.run(["minirnn", "train", "--epochs", "2", "--save", "m.npz"], capture_output=True, text=True,
                           cwd=tmp_path, env=env, timeout=300)
    assert train.returncode == 0, train.stderr
    lines = train.stdout.splitlines()
    assert lines[0].startswith("training on cpu: 10000 tokens") and lines[-4] == "wrote checkpoint m.npz"
    assert re.fullmatch(r"perplexity [\d.]+, [\d.]+ tokens/sec on cpu", lines[-3])
    where = subprocess.run([sys.executable, "-c", "import minirnn.commands as c; print(c.__file__)"],
                           capture_output=True, text=True, cwd=tmp_path, env=env, timeout=60)
    assert where.stdout.startswith(str(target))  # the installed copy, not this checkout
    generate = subprocess.run(["minirnn", "generate", "--checkpoint", "m.npz", "-n", "10"], capture_output=True,
                              text=True, cwd=tmp_path, env=env, timeout=120)
    assert generate.returncode == 0 and generate.stdout.startswith("time traveller"), generate.stderr


def test_the_readme_python_example_runs(tmp_path):
    code = re.search(r"## Python API\n.*?```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S).group(1)
    assert len(code.strip().splitlines()) <= 20
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OPENBLAS_NUM_THREADS": "1"}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    ppl, guessing = map(float, re.fullmatch(r"perplexity ([\d.]+) \(guessing: (\d+)\)", r.stdout.splitlines()[0]).groups())
    assert ppl < guessing / 1.5  # it learned something
    assert r.stdout.splitlines()[1] == "gradients match"


def test_licence_and_changelog():
    licence = (ROOT / "LICENSE").read_text()
    assert licence.startswith("MIT License") and "WITHOUT WARRANTY OF ANY KIND" in licence
    assert "license = MIT" in (ROOT / "setup.cfg").read_text()
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert f"## {minirnn.__version__}" in changelog


def test_the_readme_figure_is_there_and_small():
    figures = re.findall(r"!\[[^\]]*\]\(([^)]+\.png)\)", (ROOT / "README.md").read_text())
    assert figures
    for name in figures:
        data = (ROOT / name).read_bytes()
        assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) < 100_000, (name, len(data))


def test_asking_for_the_gpu_without_one_is_an_error():
    try:
        get_backend("gpu")
        pytest.skip("a GPU is usable here")
    except BackendError:
        pass
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MINIRNN_DEVICE": "gpu"}
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_regression.py"],
                       capture_output=True, text=True, cwd=ROOT, env=env, timeout=120)
    assert r.returncode == 4, r.stdout + r.stderr  # pytest's usage error, not a green run
    assert "MINIRNN_DEVICE=gpu, but no GPU is usable" in r.stdout + r.stderr
    assert "passed" not in r.stdout
