"""The command-line entry points: `minirnn COMMAND`, `python -m minirnn`, the script wrappers."""
import os
import re
import subprocess
import sys

from helpers import ROOT, run_script

import minirnn


def run_module(*args, timeout=120):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
    env.pop("MINIRNN_DEVICE", None)
    return subprocess.run([sys.executable, "-m", "minirnn", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, env=env)


def test_version_from_the_module_and_each_command():
    assert run_module("--version").stdout == f"minirnn {minirnn.__version__}\n"
    for name in ("train", "generate", "gradcheck", "bench"):
        r = run_module(name, "--version")
        assert r.returncode == 0 and r.stdout == f"minirnn {minirnn.__version__}\n", (name, r.stderr)
    assert run_script("train.py", "--version").stdout == f"minirnn {minirnn.__version__}\n"


def test_version_is_one_value():
    setup = (ROOT / "setup.cfg").read_text()
    assert "version = attr: minirnn.__version__" in setup


def test_no_command_or_an_unknown_one_is_a_usage_error():
    bare = run_module()
    assert bare.returncode == 2 and all(n in bare.stdout for n in ("train", "generate", "gradcheck", "bench"))
    bad = run_module("trian")
    assert bad.returncode == 2 and "unknown command 'trian'" in bad.stderr and "train" in bad.stderr
    assert run_module("--help").returncode == 0


def test_the_module_runs_train_like_the_script():
    args = ("--epochs", 1, "--num-hiddens", 16, "--print-every", 1)
    m, s = run_module("train", *args), run_script("train.py", *args)
    assert m.returncode == 0 and s.returncode == 0, m.stderr + s.stderr
    strip = lambda out: [re.sub(r"[\d.]+ tokens/s", "", l) for l in out.splitlines()]  # throughput differs
    assert strip(m.stdout) == strip(s.stdout)
    assert m.stdout.splitlines()[-3].endswith("tokens/sec on cpu")


def test_usage_errors_name_the_command_used():
    assert "python -m minirnn train: error:" in run_module("train", "--bogus").stderr
    assert run_script("train.py", "--bogus").stderr.startswith("train.py: error:")


def test_bench_sets_its_threads_before_numpy_loads():
    r = run_module("bench", "--threads", 1, "--configs", "book", "--repeats", 1, "--warmup", 0, "--json")
    assert r.returncode == 0, r.stderr
    assert '"threads": 1' in r.stdout


def test_importing_the_package_loads_no_numpy():
    code = "import sys, minirnn.commands; print('numpy' in sys.modules); minirnn.sgd; print('numpy' in sys.modules)"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={"PYTHONPATH": str(ROOT)})
    assert r.stdout.split() == ["False", "True"], r.stderr


def test_the_resume_hint_names_the_command_used():
    from minirnn.cli import invocation

    assert invocation("train.py") == "python scripts/train.py"
    assert invocation("minirnn train") == "minirnn train"
    assert invocation("python -m minirnn train") == "python -m minirnn train"
