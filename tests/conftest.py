import os

import pytest
from hypothesis import HealthCheck, settings

from minirnn.backend import BackendError, get_backend

# No deadline: timings on a shared 2-core machine are noisy. The default profile
# keeps the suite within a few minutes; HYPOTHESIS_PROFILE=thorough draws more.
settings.register_profile("default", max_examples=50, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
settings.register_profile("thorough", max_examples=300, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


# MINIRNN_DEVICE=gpu adds the GPU to the `backend` fixture's devices. It is taken out
# of the environment here so that everything else (library defaults, the scripts the
# tests run) stays on the CPU, where the tests compare NumPy arrays.
# pytest-xdist's workers start after this has run, so the request is passed on to them
# under a name that the library does not read.
GPU_REQUESTED = (os.environ.pop("MINIRNN_DEVICE", "").strip().lower() == "gpu"
                 or os.environ.get("MINIRNN_TESTS_ON_GPU") == "1")
if GPU_REQUESTED:
    os.environ["MINIRNN_TESTS_ON_GPU"] = "1"


def pytest_sessionstart(session):
    """Asked for the GPU and none works: an error, not a green run with every GPU case skipped."""
    if GPU_REQUESTED:
        try:
            get_backend("gpu")
        except BackendError as e:
            raise pytest.UsageError(f"MINIRNN_DEVICE=gpu, but no GPU is usable: {e} "
                                    f"Unset MINIRNN_DEVICE to run the CPU tests only.") from None


def _gpu_or_skip():
    if not GPU_REQUESTED:
        pytest.skip("GPU cases run only with MINIRNN_DEVICE=gpu")
    return get_backend("gpu")  # checked at the start of the session


@pytest.fixture(params=["cpu", "gpu"], scope="session")
def backend(request):
    """Each engine test runs on the CPU, and on CuPy when MINIRNN_DEVICE=gpu and a GPU works."""
    return get_backend("cpu") if request.param == "cpu" else _gpu_or_skip()


def random_params(backend, V, H, rng, scale=0.5, dtype="float64"):
    from minirnn.gradcheck import random_params as draw

    return draw(V, H, rng, scale=scale, backend=backend, dtype=dtype)


@pytest.fixture(scope="session")
def installed(tmp_path_factory):
    """A regular (not editable) install of this checkout, with `pip install --target`:
    (site folder, bin folder). Skips when pip cannot fetch the build backend."""
    import subprocess
    import sys

    from helpers import ROOT

    target = tmp_path_factory.mktemp("install") / "site"
    r = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--quiet", "--target", str(target),
                        str(ROOT)], capture_output=True, text=True, timeout=300)
    if r.returncode != 0 and ("Could not find" in r.stderr or "connection" in r.stderr.lower()):
        pytest.skip(f"pip could not fetch the build backend: {r.stderr.strip().splitlines()[-1]}")
    assert r.returncode == 0, r.stderr
    return target, target / "bin"
