"""Every fused step kernel compiles with NVRTC, for a GPU of compute capability 8.0
(the A100, and the H100 and H200 run its PTX too), in float32 and float64. No GPU is
needed: NVRTC ships with cupy-cuda12x[ctk], and a kernel that does not compile fails
here rather than on a user's GPU."""
import pytest

from minirnn.kernels import KERNELS, source


def _nvrtc():
    """The NVRTC bindings, or the reason they cannot be used here."""
    try:
        from cupy_backends.cuda.libs import nvrtc
    except ImportError as e:
        return None, f"NVRTC is not importable ({e}): pip install \"cupy-cuda12x[ctk]\""
    try:
        nvrtc.getVersion()
    except Exception as e:  # the bindings import, but find no libnvrtc
        return None, f"NVRTC's library is missing ({type(e).__name__}: {e}): pip install \"cupy-cuda12x[ctk]\""
    return nvrtc, None


NVRTC, WHY_NOT = _nvrtc()
pytestmark = pytest.mark.skipif(NVRTC is None, reason=WHY_NOT or "")

# The test's own build for the GPU (tests/test_kernels.py) adds --fmad=false.
OPTIONS = [("-arch=compute_80",), ("-arch=compute_80", "--fmad=false")]


def compile_ptx(src, name, options):
    """(PTX text, compiler log) of src; a compile error fails with NVRTC's log."""
    prog = NVRTC.createProgram(src, name, [], [])
    try:
        try:
            NVRTC.compileProgram(prog, list(options))
        except Exception as e:
            pytest.fail(f"{name} does not compile with NVRTC {options}: {e}\n{NVRTC.getProgramLog(prog)}")
        ptx = NVRTC.getPTX(prog)
        log = NVRTC.getProgramLog(prog)
    finally:
        NVRTC.destroyProgram(prog)
    ptx = ptx.decode() if isinstance(ptx, bytes) else ptx
    log = log.decode() if isinstance(log, bytes) else log
    return ptx.rstrip("\0"), log.rstrip("\0")


@pytest.mark.parametrize("options", OPTIONS, ids=" ".join)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("cell", list(KERNELS))
def test_every_kernel_compiles_with_nvrtc(cell, dtype, options):
    ptx, log = compile_ptx(source(cell, dtype), f"{cell}_{dtype}.cu", options)
    assert log.strip() == "", f"NVRTC warns on {cell} {dtype}:\n{log}"
    assert ".target sm_80" in ptx
    for name in KERNELS[cell]:
        assert f".entry {name}(" in ptx, f"{name} is not in the PTX of {cell} {dtype}"
    wide = ".f64" in ptx.replace("cvt.f64", "")  # double arithmetic, beyond conversions
    assert wide == (dtype == "float64"), f"{cell} {dtype}: double arithmetic {'missing' if not wide else 'present'}"


@pytest.mark.parametrize("name", ["ADD", "TANH"])
def test_the_probes_own_kernels_compile(name):
    from minirnn import gpu_probe

    src = getattr(gpu_probe, name)
    ptx, log = compile_ptx(src, f"probe_{name.lower()}.cu", OPTIONS[0])
    assert log.strip() == "" and f".entry probe_{name.lower()}(" in ptx


def test_a_kernel_that_does_not_compile_fails_with_its_log():
    expected = r'(?s)does not compile with NVRTC.*"undefined_name" is undefined'
    with pytest.raises(pytest.fail.Exception, match=expected):
        compile_ptx(source("rnn", "float32") + "\nKERNEL broken(real *x) { x[0] = undefined_name; }\n",
                    "broken.cu", OPTIONS[0])
