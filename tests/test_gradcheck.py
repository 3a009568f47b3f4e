"""The gradient checker itself: no false alarms, no silent gaps, and it still catches real bugs."""
import importlib.util
import re

import numpy as np
import pytest

from minirnn.cells import rnn as rnn_cell
from minirnn.backend import get_backend
from minirnn.gradcheck import _kink_pattern, check_gradients, random_params as random_params_of_cell
from minirnn.loss import softmax_cross_entropy
from minirnn.model import rnn_backward, rnn_forward

from conftest import random_params
from helpers import ROOT, run_script

CPU = get_backend("cpu")


def draw(backend, B, T, V, H, seed, scale=0.5, dtype="float64"):
    """A problem drawn in the order scripts/gradcheck.py draws it."""
    rng = np.random.default_rng(seed)
    params = random_params(backend, V, H, rng, scale=scale, dtype=dtype)
    X, Y = rng.integers(0, V, (B, T)), rng.integers(0, V, (B, T))
    H0 = backend.asarray(rng.normal(0, scale, (B, H)).astype(dtype))
    G = backend.asarray(rng.normal(0, scale, (B, H)).astype(dtype))
    return params, X, Y, H0, G


def verdicts(rows):
    return {r["name"]: r["verdict"] for r in rows}


# ----------------------------------------------------------------------------- 1. truncation error
@pytest.mark.parametrize("h", [1e-4, 1e-5])
def test_strong_curvature_is_not_read_as_a_wrong_gradient(backend, h):
    """scale 2 over 12 steps: the plain central difference is off by 7e-6 relative at
    h = 1e-5 (its O(h²) error); extrapolated, every array passes."""
    params, X, Y, H0, G = draw(backend, 2, 12, 5, 4, seed=1, scale=2.0)
    rows = check_gradients(params, X, Y, H0, dstate_T=G, h=h)
    assert set(verdicts(rows).values()) == {"pass"}, [(r["name"], r["reason"]) for r in rows]


def test_differences_that_do_not_settle_are_unresolved_not_failed(backend):
    """At h = 1e-3 the same problem's differences still move by 1e-2 between steps:
    the checker says it cannot tell, and does not blame the backward."""
    params, X, Y, H0, G = draw(backend, 2, 12, 5, 4, seed=1, scale=2.0)
    rows = check_gradients(params, X, Y, H0, dstate_T=G, h=1e-3)
    assert "FAIL" not in verdicts(rows).values()
    unresolved = [r for r in rows if r["verdict"] == "unresolved"]
    assert unresolved and all("do not settle" in r["reason"] for r in unresolved)
    assert all(r["est_error"] > 1e-6 * np.abs(r["analytic"]).max() for r in unresolved)


@pytest.mark.parametrize("h", [3.0, 10.0, 20.0, 100.0])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_step_too_large_is_unresolved_not_failed(h, seed):
    """The script's own problem at steps far past the expansion's range (tanh units in
    saturation, the loss flat): the differences can agree with each other by chance
    and be far from the gradient, which once read as FAIL from h = 10 up. The
    checker sees they do not shrink as their error estimate assumes, and says so."""
    params, X, Y, H0, G = draw(CPU, 3, 5, 8, 6, seed)
    rows = check_gradients(params, X, Y, H0, dstate_T=G, h=h)
    assert "FAIL" not in verdicts(rows).values(), [(r["name"], r["reason"]) for r in rows]
    assert any("the step is too large" in r["reason"] for r in rows)


@pytest.mark.parametrize("cell", ["gru", "lstm"])
@pytest.mark.parametrize("h", [0.3, 3.0, 30.0])
def test_a_step_too_large_blames_no_gated_cell(cell, h):
    rng = np.random.default_rng(0)
    params = random_params_of_cell(8, 6, rng, scale=2.0, cell=cell)
    X, Y = rng.integers(0, 8, (3, 5)), rng.integers(0, 8, (3, 5))
    state = tuple(rng.normal(0, 2.0, (3, 6)) for _ in range(2 if cell == "lstm" else 1))
    G = tuple(rng.normal(0, 2.0, (3, 6)) for _ in state)
    if cell == "gru":
        state, G = state[0], G[0]
    assert "FAIL" not in verdicts(check_gradients(params, X, Y, state, dstate_T=G, h=h)).values()


# ----------------------------------------------------------------------------- 2. rounding error
@pytest.mark.parametrize("seed", [3, 18])
def test_a_loss_too_large_for_the_step_is_unresolved_not_failed(seed):
    """ReLU activations that grow through 25 steps: a loss of 1e13-1e16, where the
    differences of b_q round to zero. The analytic db_q is right (it equals the
    predicted minus the actual target frequencies over N), and the check says
    unresolved, with the reason."""
    rng = np.random.default_rng(seed)
    params = random_params("cpu", 3, 3, rng, scale=1.5)
    X, Y = rng.integers(0, 3, (1, 25)), rng.integers(0, 3, (1, 25))
    H0 = rng.normal(0, 1.5, (1, 3))
    logits, _, _ = rnn_forward(params, X, H0, activation="relu")
    shifted = logits - logits.max(axis=1, keepdims=True)
    p = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
    y = Y.T.reshape(-1)
    exact_db_q = (p.sum(axis=0) - np.bincount(y, minlength=3)) / len(y)
    assert float(softmax_cross_entropy(logits, y)[0]) > 1e12  # the loss is huge

    rows = {r["name"]: r for r in check_gradients(params, X, Y, H0, activation="relu")}
    np.testing.assert_allclose(rows["b_q"]["analytic"], exact_db_q, rtol=1e-12, atol=1e-15)
    assert rows["b_q"]["verdict"] == "unresolved" and "rounding" in rows["b_q"]["reason"]
    assert "FAIL" not in verdicts(rows.values()).values()


# ----------------------------------------------------------------------------- 3. skipped elements
def test_kink_guard_reads_pre_activations_only(backend):
    """A zero H_0, as in training: H_0 is an input, not a pre-activation, so no
    element of its gradient is skipped."""
    params, X, Y, _, _ = draw(backend, 2, 3, 4, 5, seed=0)
    H0 = backend.asarray(np.zeros((2, 5)))
    _, _, cache = rnn_forward(params, X, H0, activation="relu")
    assert tuple(_kink_pattern(cache).shape) == (3, 2, 5)  # T steps, not T + 1 states
    rows = {r["name"]: r for r in check_gradients(params, X, Y, H0, activation="relu")}
    assert rows["H0"]["skipped"] == 0 and rows["H0"]["verdict"] == "pass"
    assert _kink_pattern(rnn_forward(params, X, H0, activation="tanh")[2]) is None


def test_an_array_with_every_element_skipped_is_not_a_pass(backend):
    """Every pre-activation exactly 0: each element of b_h moves some unit off its
    kink, so all of b_h is skipped, and b_h was not checked."""
    params, X, Y, _, _ = draw(backend, 2, 3, 4, 3, seed=0)
    for k in ("W_xh", "W_hh", "b_h"):
        params[k][...] = 0.0
    rows = {r["name"]: r for r in check_gradients(params, X, Y, backend.asarray(np.zeros((2, 3))), activation="relu")}
    b_h = rows["b_h"]
    assert b_h["skipped"] == 3 and b_h["verdict"] == "unresolved" and not b_h["passed"]
    assert "skipped" in b_h["reason"]


# ----------------------------------------------------------------------------- 4. precision
@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_low_precision_inputs_are_checked_on_float64_copies(backend, dtype):
    params, X, Y, H0, G = draw(backend, 2, 4, 5, 4, seed=2, dtype=dtype)
    before = {k: backend.to_numpy(v).copy() for k, v in params.items()}
    rows = check_gradients(params, X, Y, H0, dstate_T=G)
    assert set(verdicts(rows).values()) == {"pass"}
    assert all(str(v.dtype) == dtype and np.array_equal(backend.to_numpy(v), before[k]) for k, v in params.items())


def test_non_float_parameters_are_refused():
    params, X, Y, H0, _ = draw(CPU, 1, 2, 3, 2, seed=0)
    params["b_q"] = np.zeros(3, dtype=np.int64)
    with pytest.raises(TypeError, match=r"params\['b_q'\].*int64"):
        check_gradients(params, X, Y, H0)


# ----------------------------------------------------------------------------- 5. reporting
def test_rows_report_errors_estimate_and_verdict(backend):
    params, X, Y, H0, G = draw(backend, 2, 3, 4, 3, seed=0)
    for r in check_gradients(params, X, Y, H0, dstate_T=G):
        assert {"rel_error", "abs_error", "est_error", "skipped", "verdict", "reason"} <= set(r)
        assert r["verdict"] == "pass" and r["reason"] == "" and 0 < r["est_error"] < 1e-8


def test_script_exit_codes_follow_the_verdicts():
    ok = run_script("gradcheck.py", "--batch-size", 2, "--num-steps", 12, "--vocab-size", 5, "--num-hiddens", 4,
                    "--scale", 2, "--seed", 1)  # the strongly curved problem: passes
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert ok.stdout.splitlines()[-1] == "all 6 arrays pass"
    unresolved = run_script("gradcheck.py", "--batch-size", 2, "--num-steps", 12, "--vocab-size", 5,
                            "--num-hiddens", 4, "--scale", 2, "--seed", 1, "--step", 1e-3)
    assert unresolved.returncode == 3 and "unresolved: the differences do not settle" in unresolved.stdout
    assert "FAIL" not in unresolved.stdout
    assert "3  nothing failed, but some array could not be checked" in run_script("gradcheck.py", "--help").stdout


def test_script_exits_1_on_a_wrong_backward(monkeypatch, capsys):
    right = rnn_cell.rnn_step_backward
    # a step backward that forgets φ': dZ_t = dH_t
    monkeypatch.setattr(rnn_cell, "rnn_step_backward", lambda dH_t, dphi_t, *rest, **kw: right(dH_t, 1.0, *rest, **kw))
    assert _script().main([]) == 1
    out = capsys.readouterr().out
    assert "W_hh" in out and "FAIL: off by" in out and out.splitlines()[-1].startswith("GRADIENT CHECK FAILED")


def test_the_docs_sample_output_is_what_the_script_prints():
    """docs/gradcheck.md's sample: same lines, same arrays, shapes, skip counts and
    verdicts; only the error digits may differ with the BLAS."""
    readme = (ROOT / "docs" / "gradcheck.md").read_text()
    sample = re.search(r"```\n(gradient check:.*?)```", readme, re.S).group(1).splitlines()
    printed = run_script("gradcheck.py").stdout.splitlines()
    assert len(sample) == len(printed) and sample[:2] == printed[:2] and sample[-1] == printed[-1]
    for a, b in zip(sample[2:-1], printed[2:-1]):
        fa, fb = a.split(), b.split()
        assert fa[:3] == fb[:3] and fa[-2:] == fb[-2:]


def _script():
    return importlib.import_module("minirnn.commands.gradcheck")  # what scripts/gradcheck.py runs


def test_every_script_option_has_help():
    assert all(action.help for action in _script().build_parser()._actions)


@pytest.mark.parametrize("args, message", [
    (["--num-hiddens", 0], "error: --num-hiddens must be an integer >= 1, got 0"),
    (["--batch-size", -2], "error: --batch-size must be an integer >= 1, got -2"),
    (["--step", 0], "error: --step must be a finite number > 0, got 0.0"),
    (["--scale", "nan"], "error: --scale must be a finite number > 0, got nan"),
    (["--tol", "inf"], "error: --tol must be a finite number > 0, got inf"),
    (["--seed", -1], "error: --seed must be an integer >= 0, got -1"),
])
def test_bad_script_values_name_their_option(args, message):
    r = run_script("gradcheck.py", *args)
    assert r.returncode == 2 and r.stderr.strip() == message


# ----------------------------------------------------------------------------- the checker still catches bugs
def _wrong_dW_hh(dlogits, cache, dstate_T):
    grads, d0 = rnn_backward(dlogits, cache, dstate_T)
    return {**grads, "W_hh": grads["W_hh"] * (1 + 1e-3)}, d0  # off by 1e-3 relative


def _dropped_final_state_gradient(dlogits, cache, dstate_T):
    return rnn_backward(dlogits, cache, None)


@pytest.mark.parametrize("activation", ["tanh", "relu"])
@pytest.mark.parametrize("bug, failing", [
    (_wrong_dW_hh, {"W_hh"}),
    (_dropped_final_state_gradient, {"W_xh", "W_hh", "b_h", "H0"}),
])
def test_real_bugs_fail(backend, activation, bug, failing):
    for seed in range(3):
        params, X, Y, H0, G = draw(backend, 2, 4, 5, 4, seed=seed)
        rows = check_gradients(params, X, Y, H0, dstate_T=G, activation=activation, backward=bug)
        assert {k for k, v in verdicts(rows).items() if v == "FAIL"} == failing, (seed, verdicts(rows))


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_phi_prime_from_the_wrong_step_fails(backend, monkeypatch, activation):
    """φ'(Z_{t-1}) in place of φ'(Z_t): the recurrence backward reads its φ' one step early."""
    phi, right = rnn_cell.ACTIVATIONS[activation]

    def one_step_early(Y, out):  # φ' of all steps from the outputs, then each row moved one step later
        right(Y, out)
        out[1:] = out[:-1].copy()
        return out

    monkeypatch.setitem(rnn_cell.ACTIVATIONS, activation, (phi, one_step_early))
    for seed in range(3):
        params, X, Y, H0, G = draw(backend, 2, 4, 5, 4, seed=seed)
        rows = verdicts(check_gradients(params, X, Y, H0, dstate_T=G, activation=activation))
        assert rows["W_hh"] == "FAIL" and rows["W_hq"] == rows["b_q"] == "pass", (seed, rows)


def test_float32_input_still_catches_a_bug():
    params, X, Y, H0, G = draw(CPU, 2, 4, 5, 4, seed=0, dtype="float32")
    rows = check_gradients(params, X, Y, H0, dstate_T=G, backward=_wrong_dW_hh)
    assert verdicts(rows)["W_hh"] == "FAIL"


# ----------------------------------------------------------------------------- any state structure
def test_tuple_states_and_extra_parameters_are_checked_generically():
    """A two-member state (H, C) and a parameter the checker was never told about:
    a toy cell where C rides along, C_T = C_0·s + H_T, with a scalar s."""
    def forward(params, X, state, *, activation):
        H0, C0 = state
        model_params = {k: v for k, v in params.items() if k != "s"}
        logits, H_T, cache = rnn_forward(model_params, X, H0, activation=activation)
        return logits, (H_T, C0 * params["s"] + H_T), (cache, C0, params["s"].copy())

    def backward(dlogits, cache, dstate_T):
        (inner, C0, s), (dH_T, dC_T) = cache, dstate_T
        grads, dH0 = rnn_backward(dlogits, inner, dH_T + dC_T)
        return {**grads, "s": (dC_T * C0).sum().reshape(1)}, (dH0, dC_T * s)

    params, X, Y, H0, G = draw(CPU, 2, 3, 4, 3, seed=5)
    params["s"] = np.array([0.7])
    rng = np.random.default_rng(1)
    C0, GC = rng.normal(size=(2, 3)), rng.normal(size=(2, 3))
    rows = check_gradients(params, X, Y, (H0, C0), dstate_T=(G, GC), forward=forward, backward=backward)
    assert [r["name"] for r in rows] == list(params) + ["H0", "C0"]
    assert set(verdicts(rows).values()) == {"pass"}


def test_no_state_means_no_state_rows(backend):
    params, X, Y, _, _ = draw(backend, 2, 3, 4, 3, seed=0)
    rows = check_gradients(params, X, Y, None)
    assert [r["name"] for r in rows] == list(params) and set(verdicts(rows).values()) == {"pass"}
