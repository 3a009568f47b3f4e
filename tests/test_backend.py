"""The backend switch: device selection, clear errors, and cupy staying in backend.py."""
import ast
import builtins
import pathlib

import numpy as np
import pytest

import minirnn
from minirnn import backend as backend_module
from minirnn.backend import BackendError, get_backend

from helpers import gpu_usable

PACKAGE = pathlib.Path(minirnn.__file__).parent
ENGINE_FILES = sorted(PACKAGE.glob("*.py")) + sorted(PACKAGE.glob("cells/*.py"))


def _cupy_importable():
    try:
        import cupy  # noqa: F401
        return True
    except ImportError:
        return False


def test_cpu_backend():
    b = get_backend("cpu")
    assert b.xp is np and b.name == "cpu"
    a = b.asarray([1, 2], dtype=np.float32)
    assert isinstance(b.to_numpy(a), np.ndarray) and a.dtype == np.float32
    b.synchronize()


def test_default_comes_from_the_environment(monkeypatch):
    monkeypatch.delenv("MINIRNN_DEVICE", raising=False)
    assert get_backend().name == "cpu"
    monkeypatch.setenv("MINIRNN_DEVICE", "cpu")
    assert get_backend(None).name == "cpu"
    monkeypatch.setenv("MINIRNN_DEVICE", "tpu")
    with pytest.raises(BackendError, match=r"^MINIRNN_DEVICE='tpu' is not a device: set it to one of cpu, gpu, auto, "
                                           r"or unset it \(or give --device\)$"):
        get_backend()  # the user gave no --device: the message names the variable


def test_unknown_device():
    with pytest.raises(BackendError, match="choose one of cpu, gpu, auto"):
        get_backend("cuda")


def test_gpu_without_cupy_says_how_to_install(monkeypatch):
    real_import = builtins.__import__

    def no_cupy(name, *args, **kwargs):
        if name.split(".")[0] in ("cupy", "cupyx"):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_cupy)
    monkeypatch.setattr(backend_module, "_GPU", [])
    with pytest.raises(BackendError, match=r"needs CuPy.*pip install -e \"\.\[gpu\]\""):
        get_backend("gpu")


def test_auto_falls_back_to_cpu_and_says_so(monkeypatch, capsys):
    if gpu_usable():
        pytest.skip("a GPU is usable here, so auto picks it")
    assert get_backend("auto").name == "cpu"
    assert "falls back to cpu" in capsys.readouterr().err


@pytest.mark.skipif(not _cupy_importable(), reason="cupy is not installed (pip install -e \".[gpu]\")")
def test_gpu_without_a_device_names_the_device():
    """cupy imports without a GPU and fails only when it allocates; the error says so."""
    if gpu_usable():
        pytest.skip("a GPU is usable here")
    with pytest.raises(BackendError, match="needs a working CUDA device"):
        get_backend("gpu")


def _xp_attributes(path):
    """Every name used as `xp.NAME` in a source file."""
    tree = ast.parse(path.read_text())
    return {node.attr for node in ast.walk(tree)
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "xp"}


def test_engine_uses_xp_functions():
    """Outside backend.py (which knows both modules) every xp function is NumPy's too."""
    names = set().union(*(_xp_attributes(p) for p in ENGINE_FILES if p.name != "backend.py"))
    assert {"matmul", "take", "tanh", "empty"} <= names  # the scan sees the engine's calls
    missing = sorted(n for n in names if not hasattr(np, n))
    assert not missing


@pytest.mark.skipif(not _cupy_importable(), reason="cupy is not installed (pip install -e \".[gpu]\")")
def test_every_xp_function_the_engine_calls_exists_in_cupy():
    import cupy

    names = set().union(*(_xp_attributes(p) for p in ENGINE_FILES))
    missing = sorted(n for n in names if not hasattr(cupy, n))
    assert not missing, f"not in cupy: {missing}"


def test_only_backend_imports_cupy():
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")) + sorted(PACKAGE.parent.glob("scripts/*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            if any(n.split(".")[0] in ("cupy", "cupyx", "cupy_backends") for n in names) and path.name != "backend.py":
                offenders.append(f"{path.name}:{node.lineno}")
    assert not offenders, f"cupy imported outside backend.py: {offenders}"


def test_no_host_sync_inside_the_loops():
    """No float()/int()/bool()/.item()/asnumpy()/to_numpy() in the body of any loop of the
    engine, the training loop or generation: each would stall the GPU once per pass."""
    bad = []
    for name in ("model.py", "loss.py", "optim.py", "train.py", "generate.py", "embedding.py",
                 "cells/rnn.py", "cells/gru.py", "cells/lstm.py", "cells/common.py"):
        for loop in ast.walk(ast.parse((PACKAGE / name).read_text())):
            if isinstance(loop, (ast.For, ast.While)):
                for stmt in loop.body:
                    for node in ast.walk(stmt):
                        if isinstance(node, ast.Call):
                            f = node.func
                            called = f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else ""
                            if called in ("float", "int", "bool", "item", "asnumpy", "to_numpy", "evaluate"):
                                bad.append(f"{name}:{node.lineno} {called}()")
    allowed = {"train.py"}  # fit() evaluates the held-out text once per progress line, a deliberate sync
    assert all(b.split(":")[0] in allowed and b.endswith("evaluate()") for b in bad), bad
