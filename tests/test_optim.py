"""The optimizers against their formulas, their state round trip, and the factory."""
import numpy as np
import pytest

from minirnn.config import DEFAULT_LR, OPTIMIZERS
from minirnn.optim import SGD, Adagrad, Adam, make_optimizer

# fixed numbers: two parameters, three steps of gradients
P0 = {"w": np.array([[1.0, -2.0], [0.5, 0.0]]), "b": np.array([0.25, -0.75, 3.0])}
GRADS = [
    {"w": np.array([[0.5, -1.0], [2.0, 0.1]]), "b": np.array([1e-3, -4.0, 0.0])},
    {"w": np.array([[-0.3, 0.2], [1.0, -0.1]]), "b": np.array([2e-3, 1.0, 0.5])},
    {"w": np.array([[0.1, 0.1], [-2.0, 0.3]]), "b": np.array([-1e-3, 0.5, -0.5])},
]


def run(opt, backend, steps=GRADS, params=None):
    params = {k: backend.asarray(v.copy()) for k, v in (params or P0).items()}
    for g in steps:
        opt.step(params, {k: backend.asarray(v) for k, v in g.items()})
    return {k: backend.to_numpy(v) for k, v in params.items()}


def test_sgd_follows_its_formula(backend):
    got = run(SGD(0.5), backend)
    for k in P0:
        np.testing.assert_allclose(got[k], P0[k] - 0.5 * sum(g[k] for g in GRADS), rtol=1e-15, atol=1e-15)


def test_adagrad_follows_its_formula(backend):
    lr, eps = 0.1, 1e-8
    got = run(Adagrad(lr, eps=eps), backend)
    for k in P0:
        p, G = P0[k].copy(), np.zeros_like(P0[k])
        for g in GRADS:
            G = G + g[k] ** 2
            p = p - lr * g[k] / np.sqrt(G + eps)
        np.testing.assert_allclose(got[k], p, rtol=1e-14, atol=1e-15)


def test_adam_follows_its_formula(backend):
    lr, (b1, b2), eps = 0.01, (0.8, 0.99), 1e-8
    got = run(Adam(lr, betas=(b1, b2), eps=eps), backend)
    for k in P0:
        p, m, v = P0[k].copy(), np.zeros_like(P0[k]), np.zeros_like(P0[k])
        for t, g in enumerate(GRADS, start=1):
            m = b1 * m + (1 - b1) * g[k]
            v = b2 * v + (1 - b2) * g[k] ** 2
            p = p - lr * (m / (1 - b1 ** t)) / (np.sqrt(v / (1 - b2 ** t)) + eps)
        np.testing.assert_allclose(got[k], p, rtol=1e-14, atol=1e-15)


def test_adams_first_step_moves_every_parameter_by_about_lr(backend):
    lr = 2e-3
    got = run(Adam(lr), backend, steps=GRADS[:1])
    for k in P0:
        moved = np.abs(got[k] - P0[k])
        nonzero = GRADS[0][k] != 0
        np.testing.assert_allclose(moved[nonzero], lr, rtol=1e-5)  # a gradient of 1e-3 too
        assert not moved[~nonzero].any()  # a zero gradient does not move


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_state_dict_round_trip_continues_bit_for_bit(backend, name):
    """Two steps, save the state through plain arrays (as a checkpoint would), load it
    into a fresh optimizer, one more step: identical to three steps without a break."""
    straight = run(make_optimizer(name, 0.05), backend)

    first = make_optimizer(name, 0.05)
    mid = run(first, backend, steps=GRADS[:2])
    saved = first.state_dict()
    assert all(type(v) is np.ndarray and v.dtype != object for v in saved.values())
    saved = {k: np.array(v) for k, v in saved.items()}  # nothing shared with the optimizer
    second = make_optimizer(name, 0.05)
    second.load_state_dict(saved)
    resumed = run(second, backend, steps=GRADS[2:], params=mid)
    for k in P0:
        assert np.array_equal(resumed[k], straight[k]), (name, k)


def test_state_dicts_are_flat_and_checked(backend):
    opt = make_optimizer("adam", params={k: backend.asarray(v) for k, v in P0.items()})
    assert sorted(opt.state_dict()) == ["m.b", "m.w", "t", "v.b", "v.w"]
    assert int(opt.state_dict()["t"]) == 0 and not opt.state_dict()["m.w"].any()
    assert make_optimizer("sgd").state_dict() == {}
    with pytest.raises(ValueError, match="unknown entry G.w"):
        Adam(0.1).load_state_dict({"t": np.array(1), "G.w": np.zeros(2)})
    with pytest.raises(ValueError, match="'t'"):
        Adagrad(0.1).load_state_dict({"G.w": np.zeros(2)})
    bad = Adagrad(0.1)
    bad.load_state_dict({"t": np.array(1), "G.w": np.zeros(3), "G.b": np.zeros(3)})
    with pytest.raises(ValueError, match=r"G.w has shape \(3,\)"):
        run(bad, backend)


def test_factory_defaults_and_errors():
    assert {n: make_optimizer(n).lr for n in OPTIMIZERS} == DEFAULT_LR
    assert DEFAULT_LR["sgd"] == 1.0  # the book's
    assert isinstance(make_optimizer("adagrad", 0.3), Adagrad) and make_optimizer("adagrad", 0.3).lr == 0.3
    with pytest.raises(ValueError, match="unknown optimizer 'rmsprop'"):
        make_optimizer("rmsprop")
    for lr in (-1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="learning rate"):
            make_optimizer("adam", lr)
    assert make_optimizer("sgd", 0).lr == 0  # lr 0: the same work with the model held still (the bench)


def test_updates_stay_in_place_and_in_float32(backend):
    params = {k: backend.asarray(v.astype(np.float32)) for k, v in P0.items()}
    refs = dict(params)
    for name in OPTIMIZERS:
        opt = make_optimizer(name)
        opt.step(params, {k: backend.asarray(v.astype(np.float32)) for k, v in GRADS[0].items()})
        assert all(params[k] is refs[k] and str(params[k].dtype) == "float32" for k in params)
        assert all(str(v.dtype) in ("float32", "int64") for v in opt.state_dict().values())


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_a_step_allocates_no_temporaries(name):
    # Every update works in a scratch array made once per shape; a temporary as large
    # as a parameter, per operation, costs page faults at every step on large models.
    import tracemalloc
    from minirnn.optim import clip_grad_norm
    params = {"W": np.ones((1000, 1000), np.float32), "b": np.ones(1000, np.float32)}
    grads = {k: np.full_like(p, 0.5) for k, p in params.items()}
    opt = make_optimizer(name, params=params)
    opt.step(params, grads)  # the first step makes the scratch
    tracemalloc.start()
    try:
        opt.step(params, grads)
        clip_grad_norm(grads, 1.0)  # the norm, summed in float64, and the scaling
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < params["W"].nbytes // 8, f"{name}: {peak} bytes allocated in one step"  # einsum buffers ~130 kB
