"""Numerical gradient checking: central differences against the hand-written BPTT.

For a loss L(θ), the central difference (L(θ + h·e_i) - L(θ - h·e_i)) / 2h
approximates dL/dθ_i with an error of O(h²). In float64 with h = 1e-5 that error
and the rounding error (about eps·L / h, near 1e-11) are tiny, so a correct
backward agrees to about 1e-9 relative and a wrong one is off by far more.

An array passes when its relative error is at most TOLERANCE, or when its
absolute error is at most ATOL: a whole array of gradients near 1e-7 (a
saturated tanh, a sure softmax) is below what the differences can resolve, and
its relative error then measures their rounding, not the backward.

The loss checked is L = CE(logits, y) + Σ G ⊙ H_T: the linear term makes a
non-zero gradient G arrive at the final state, so the dH_T path is checked too.
"""
import numpy as np

from .backend import array_module, backend_of, get_backend
from .loss import softmax_cross_entropy
from .model import PARAM_NAMES, kink_pattern, rnn_backward, rnn_forward

TOLERANCE = 1e-6  # largest max relative error that passes
ATOL = 1e-10  # ... or largest max absolute error, about 10 x the rounding of the differences
STEP = 1e-5  # h


def rel_error(a, b):
    """max|a - b| / max(1e-8, max(|a| + |b|)), over the elements that are not NaN.

    The error is taken relative to the array's scale rather than element by
    element: an element that is zero up to rounding would otherwise measure the
    finite-difference noise and not the backward.
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    keep = ~(np.isnan(a) | np.isnan(b))
    if not keep.any():
        return 0.0
    a, b = a[keep], b[keep]
    return float(np.max(np.abs(a - b)) / max(1e-8, float(np.max(np.abs(a) + np.abs(b)))))


def abs_error(a, b):
    """max|a - b| over the elements that are not NaN."""
    return float(np.nan_to_num(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))).max(initial=0.0))


def gradients_match(analytic, numeric, tol=TOLERANCE):
    """rel_error <= tol, or abs_error <= ATOL (see the module docstring)."""
    return rel_error(analytic, numeric) <= tol or abs_error(analytic, numeric) <= ATOL


def checked_loss(params, X, Y, H0, *, dH_T=None, activation="tanh"):
    """The checked loss as a float, its cache and dlogits: (loss, cache, dlogits)."""
    logits, H_T, cache = rnn_forward(params, X, H0, activation=activation)
    loss, dlogits = softmax_cross_entropy(logits, _targets(Y, logits))
    if dH_T is not None:
        loss = loss + (dH_T * H_T).sum()
    return float(loss), cache, dlogits  # deliberate host sync: a checker


def _targets(Y, logits):
    xp = array_module(logits)
    return xp.asarray(Y.T.reshape(-1))  # time-major, as the logits


def numerical_gradient(f, x, h=STEP, guard=None):
    """Central differences of the scalar f() with respect to each element of x.

    x is perturbed in place and restored. If guard is given, f returns
    (value, pattern) and an element whose ±h perturbation changes the pattern
    (a ReLU unit crossing its kink) is set to NaN, i.e. skipped.
    """
    grad = np.empty(x.shape)
    for i in np.ndindex(*x.shape):
        old = x[i].copy()
        x[i] = old + h
        f_plus = f()
        x[i] = old - h
        f_minus = f()
        x[i] = old
        if guard is not None:
            (f_plus, p_plus), (f_minus, p_minus) = f_plus, f_minus
            if not (bool((p_plus == guard).all()) and bool((p_minus == guard).all())):
                grad[i] = np.nan
                continue
        grad[i] = (f_plus - f_minus) / (2 * h)
    return grad


def check_gradients(params, X, Y, H0, *, dH_T=None, activation="tanh", h=STEP, tol=TOLERANCE):
    """Compare analytic and numerical gradients for every parameter and for H0.

    params should be float64. Returns a list of rows, one per array:
    {name, shape, rel_error, abs_error, passed, skipped, analytic, numeric};
    skipped counts the elements left out because a ReLU pre-activation lies
    within h of its kink; passed is rel_error <= tol or abs_error <= ATOL.
    """
    _, cache, dlogits = checked_loss(params, X, Y, H0, dH_T=dH_T, activation=activation)
    grads, dH0 = rnn_backward(dlogits, cache, dH_T)
    # ReLU: the sign pattern of the pre-activations, read off the cached outputs
    guard = kink_pattern(cache)

    def f():
        value, cache, _ = checked_loss(params, X, Y, H0, dH_T=dH_T, activation=activation)
        return value if guard is None else (value, kink_pattern(cache))

    rows = []
    for name, x, g in [(k, params[k], grads[k]) for k in PARAM_NAMES] + [("H0", H0, dH0)]:
        numeric = numerical_gradient(f, x, h=h, guard=guard)
        analytic = _host(g)
        rows.append({
            "name": name,
            "shape": tuple(x.shape),
            "rel_error": rel_error(analytic, numeric),
            "abs_error": abs_error(analytic, numeric),
            "passed": gradients_match(analytic, numeric, tol),
            "skipped": int(np.isnan(numeric).sum()),
            "analytic": analytic,
            "numeric": numeric,
        })
    return rows


def random_params(V, H, rng, *, scale=0.5, backend=None, dtype="float64"):
    """Parameters drawn normal(0, scale): larger than the training init, so that
    every gradient stands well above rounding."""
    backend = get_backend(backend)
    shapes = {"W_xh": (V, H), "W_hh": (H, H), "b_h": (H,), "W_hq": (H, V), "b_q": (V,)}
    return {k: backend.asarray(rng.normal(0.0, scale, shapes[k]).astype(dtype)) for k in PARAM_NAMES}


def _host(a):
    return backend_of(a).to_numpy(a)  # deliberate host sync: a checker
