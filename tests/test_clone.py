"""Running from a clone without installing: the scripts find the package beside them,
and `python -m minirnn` from the folder that holds the clone says what went wrong."""
import os
import shutil
import subprocess
import sys

import pytest

from helpers import ROOT


def clone(tmp_path):
    """A copy of the tree's code, as a clone named minirnn, nothing installed from it."""
    target = tmp_path / "minirnn"
    target.mkdir()
    shutil.copytree(ROOT / "minirnn", target / "minirnn", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "scripts", target / "scripts", ignore=shutil.ignore_patterns("__pycache__", "figures"))
    if (ROOT / "__main__.py").exists():  # the clone root's own, run when python -m minirnn takes the clone
        shutil.copy(ROOT / "__main__.py", target / "__main__.py")
    return target


def bare_env():
    """The environment of a user who has not installed minirnn nor set PYTHONPATH."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MINIRNN_DEVICE")}
    return {**env, "OPENBLAS_NUM_THREADS": "1"}


def python(*args, cwd):
    return subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True, cwd=cwd,
                          env=bare_env(), timeout=120)


@pytest.mark.parametrize("script", sorted(p.name for p in (ROOT / "scripts").glob("*.py") if not p.name.startswith("_")))
def test_every_script_runs_from_a_clone_without_installing(tmp_path, script):
    target = clone(tmp_path)
    r = python(target / "scripts" / script, "--help", cwd=tmp_path)  # --help loads the command, NumPy too
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f"usage: {script}")


def test_the_script_runs_the_package_of_its_own_clone(tmp_path):
    target = clone(tmp_path)
    init = target / "minirnn" / "__init__.py"
    init.write_text(init.read_text().replace('__version__ = "', '__version__ = "9.9-copy-'))
    r = python(target / "scripts" / "train.py", "--version", cwd=tmp_path)
    assert r.returncode == 0 and "9.9-copy-" in r.stdout, (r.stdout, r.stderr)


def test_a_script_away_from_any_clone_says_what_to_run(tmp_path):
    if python("-c", "import minirnn", cwd=tmp_path).returncode == 0:
        pytest.skip("minirnn is installed here, so a lone script finds it")
    shutil.copy(ROOT / "scripts" / "train.py", tmp_path / "train.py")
    shutil.copy(ROOT / "scripts" / "_clone.py", tmp_path / "_clone.py")
    r = python(tmp_path / "train.py", "--epochs", "1", cwd=tmp_path)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert "cannot find the minirnn package" in r.stderr and "pip install -e" in r.stderr


def test_python_m_minirnn_beside_the_clone_names_the_shadowing(tmp_path):
    clone(tmp_path)
    found = python("-c", "import minirnn; print(minirnn.__file__)", cwd=tmp_path)
    if found.stdout.strip() != "None":
        pytest.skip("an installed minirnn comes before the folder here, so nothing is shadowed")
    r = python("-m", "minirnn", "train", "--epochs", "1", cwd=tmp_path)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert "found the folder minirnn, a minirnn clone" in r.stderr and "use python minirnn train --epochs 1 " in r.stderr
    assert "python minirnn/scripts/train.py" in r.stderr
    inside = python("-m", "minirnn", "--version", cwd=tmp_path / "minirnn")  # the advice works
    assert inside.returncode == 0 and inside.stdout.startswith("minirnn ")
    direct = python("minirnn", "--version", cwd=tmp_path)  # python CLONE runs the commands
    assert direct.returncode == 0 and direct.stdout.startswith("minirnn ")


def test_a_missing_numpy_is_one_line(tmp_path):
    target = clone(tmp_path)
    block = tmp_path / "block" / "numpy"
    block.mkdir(parents=True)
    (block / "__init__.py").write_text("raise ModuleNotFoundError(\"No module named 'numpy'\", name='numpy')\n")
    r = subprocess.run([sys.executable, str(target / "scripts" / "train.py"), "--epochs", "1"], capture_output=True,
                       text=True, cwd=tmp_path, env={**bare_env(), "PYTHONPATH": str(tmp_path / "block")}, timeout=120)
    assert r.returncode == 1 and r.stderr.strip() == ("error: minirnn needs NumPy, which is not installed: pip install "
                                                      "numpy (or pip install -e . in the clone, which installs it)")
