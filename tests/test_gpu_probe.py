"""`python -m minirnn.gpu_probe`: one clear line without a GPU; on a GPU
(MINIRNN_DEVICE=gpu) every figure, each on its line, in well under a minute."""
import subprocess
import sys

import pytest

from conftest import GPU_REQUESTED
from helpers import ROOT, gpu_usable


def probe(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "minirnn.gpu_probe", *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=timeout)


@pytest.mark.skipif(gpu_usable(), reason="a GPU is usable here")
def test_without_a_gpu_the_probe_says_why_in_one_line():
    r = probe()
    assert r.returncode == 1 and r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("error: the GPU probe needs a GPU: device 'gpu' needs ")
    assert "--device cpu" not in lines[0]  # the CPU is no way to run a GPU probe


def test_bad_counts_are_a_usage_error():
    r = probe("--calls", "0")
    assert r.returncode == 2
    assert r.stderr.strip() == ("python -m minirnn.gpu_probe: error: --calls and --replays must be at least 1 "
                                "(see --help)")


@pytest.mark.skipif(not GPU_REQUESTED, reason="GPU cases run only with MINIRNN_DEVICE=gpu")
def test_on_a_gpu_the_probe_prints_every_figure():
    r = probe("--calls", "400", "--replays", "50", timeout=60)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    starts = ["device: ", "host µs per call", "35 small kernels", "cuBLAS handle GEMMs against cupy.matmul",
              "RNN forward (35 steps", "cupy.matmul inside a capture: "]
    assert [next((s for s in starts if line.startswith(s)), line) for line in lines] == starts, r.stdout
