"""Numerical gradient checking: central differences, with their own error, against BPTT.

Method. For each element θ_i of each array, the loss is evaluated at θ_i ± h,
θ_i ± h/2 and θ_i ± h/4, giving three central differences D(h), D(h/2), D(h/4).
Each is g + c·s² + O(s⁴) for its step s, so Richardson extrapolation cancels the
s² term:  R(s) = (4·D(s/2) - D(s)) / 3 = g + O(s⁴).  The numerical gradient is
R(h/2), and the estimated error of the differences is

    |R(h) - R(h/2)|           the truncation (and rounding) left, measured, plus
    6 · ROUNDING · |L| / h    the rounding of R(h/2) when each loss value L is
                              off by up to ROUNDING·|L|.

That measure assumes the differences shrink as the expansion says: D(h) - D(h/2)
is 4 times D(h/2) - D(h/4) (16 times where the s⁴ term dominates). Where they move
by more than the tolerance and not that way (a step too large for the expansion),
the array is unresolved: no estimate at that step can be trusted (_unsettled).

An array's verdict, over its elements that were not skipped (err = max|a - n|,
scale = max(|a| + |n|), est = the largest estimated error):
    FAIL        err > tol·scale + SAFETY·est: the backward differs by more than
                the tolerance and the differences' own error can explain;
    pass        otherwise, when est <= tol·scale: the differences resolve the
                gradient to the tolerance, and it agrees;
    unresolved  otherwise: the differences cannot tell (a loss too large for h,
                so the differences round away; or differences that do not settle
                as the step shrinks, as with chaotic dynamics; or every element
                skipped). The reason says which. It is never counted as a pass.

The loss checked is L = CE(logits, y) + Σ G ⊙ state_T: the linear term makes a
non-zero gradient G arrive at the final state, so that path is checked too. The
state may be None, an array (H) or a tuple of arrays (H, C): every member's
initial value is checked, as rows "H0" and "C0".

ReLU: an element whose perturbation flips the sign of any pre-activation (a unit
crossing its kink) is skipped; _kink_pattern reads the signs off the cache.

Precision: the check runs in float64, on copies. In float32 the rounding of the
loss (1e-7) divided by h would be all that the differences measure; rather than
refuse, check_gradients converts copies of the parameters and the state, and
leaves the caller's arrays untouched.
"""
import functools

import numpy as np

from .backend import array_module, backend_of, get_backend
from .errors import plural
from .loss import softmax_cross_entropy
from .cells import cell_key, get_cell
from .model import init_params, kink_pattern, rnn_backward, rnn_forward

TOLERANCE = 1e-6  # largest relative error that passes
STEP = 1e-4  # h: the largest of the three steps
ROUNDING = 4 * np.finfo(np.float64).eps  # relative rounding error assumed for one loss value
SAFETY = 3.0  # how many estimated errors a difference may be off before it counts against the backward
ATOL = 1e-10  # absolute agreement asked of gradients_match, for arrays too small for a relative check
STATE_NAMES = ("H0", "C0")  # rows of the initial state's members
VERDICTS = ("pass", "FAIL", "unresolved")


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
    """rel_error <= tol, or abs_error <= ATOL: a quick comparison for the tests of
    single operations; check_gradients gives a verdict with an error estimate."""
    return rel_error(analytic, numeric) <= tol or abs_error(analytic, numeric) <= ATOL


# ----------------------------------------------------------------------------- differences
def differences(f, x, h=STEP, guard=None):
    """Central differences of the scalar f() with respect to each element of x.

    x is perturbed in place and restored. Returns (numeric, est, loss_scale):
    numeric the Richardson value R(h/2), est the estimated error of each element
    (both x's shape, float64) and loss_scale the largest |f| seen. If guard is
    given, f returns (value, pattern), and an element whose perturbation changes
    the pattern from guard (a ReLU unit crossing its kink) is NaN in numeric and
    est, i.e. skipped.
    """
    numeric, est, unsettled = np.empty(x.shape), np.empty(x.shape), np.zeros(x.shape)
    loss_scale = 0.0
    for i in np.ndindex(*x.shape):
        old = x[i].copy()
        D, skip, scale = [], False, 0.0
        for s in (h, h / 2, h / 4):
            values, steps = [], []
            for sign in (1, -1):
                x[i] = old + sign * s
                steps.append(sign * float(x[i] - old))  # the step as stored, not as asked
                value = f()
                if guard is not None:
                    value, pattern = value
                    skip = skip or not bool((pattern == guard).all())
                values.append(value)
                scale = max(scale, abs(value))
            D.append((values[0] - values[1]) / (steps[0] + steps[1]) if steps[0] + steps[1] > 0 else np.nan)
        x[i] = old
        loss_scale = max(loss_scale, scale)
        R1, R2 = (4 * D[1] - D[0]) / 3, (4 * D[2] - D[1]) / 3
        numeric[i] = np.nan if skip else R2
        est[i] = np.nan if skip else abs(R1 - R2) + _rounding(scale, h)
        unsettled[i] = 0.0 if skip else _unsettled(D, _rounding(scale, h))
    return numeric, est, loss_scale, unsettled


def _unsettled(D, rounding):
    """How far the differences D(h), D(h/2), D(h/4) are from shrinking as the error
    estimate |R(h) - R(h/2)| assumes: 0 where D(h) - D(h/2) is 4 x D(h/2) - D(h/4)
    (the s² term dominant) or 16 x (the s⁴ term dominant) or within rounding of it,
    else their spread |D(h) - D(h/4)|. A spread that matters, beside the array's
    gradients, means a step too large for the expansion (units pushed into
    saturation, say), where R(h) and R(h/2) can agree by chance while both are far
    from the gradient: the array is then unresolved, never failed."""
    d1, d2 = D[0] - D[1], D[1] - D[2]
    # D(h) - k·D(h/2) + (k-1)·D(h/4) rounds by up to about (4k + 3)/6 x the rounding of R(h/2)
    # when each loss value is off by ROUNDING·|L|; a loss summed over many terms is off by
    # more, hence the margin of 20 x and 80 x
    if abs(d1 - 4 * d2) <= abs(d1) / 2 + 20 * rounding or abs(d1 - 16 * d2) <= abs(d1) / 2 + 80 * rounding:
        return 0.0
    return abs(D[0] - D[2])


def _rounding(loss, h):
    # R(h/2) = (4·D(h/4) - D(h/2)) / 3, each D a difference of two values off by
    # ROUNDING·|L|: (4·(2/(h/2)) + 2/h) / 3 = 6/h times ROUNDING·|L|
    return 6 * ROUNDING * loss / h


def numerical_gradient(f, x, h=STEP, guard=None):
    """The numerical gradient of f() with respect to x (NaN where skipped); see differences."""
    return differences(f, x, h, guard)[0]


# ----------------------------------------------------------------------------- the check
def check_gradients(params, X, Y, state=None, *, dstate_T=None, activation="tanh", h=STEP, tol=TOLERANCE,
                    forward=rnn_forward, backward=rnn_backward, masks=None, cell=None):
    """Compare analytic and numerical gradients for every array of params (in its
    order) and for each member of the initial state.

    state: None (zeros, not checked), an array, or a tuple of arrays; dstate_T:
    the gradient G at the final state, of the same structure, or None. forward
    and backward follow rnn_forward(params, X, state, activation=...) ->
    (logits, state_T, cache) and rnn_backward(dlogits, cache, dstate_T) ->
    (grads, dstate_0). The check runs on float64 copies (see the module docstring).
    masks: dropout masks (dropout.dropout_masks), held fixed for every evaluation.
    cell: the cell (a built-in name, a path to a cell file or a module), passed to
    forward; None reads a built-in cell off the keys. The state's rows are named
    after the cell's STATES (H0, C0, ...).

    Returns a list of rows, one per array: {name, shape, rel_error, abs_error,
    est_error, skipped, verdict, reason, passed, analytic, numeric}; verdict is
    one of VERDICTS, reason says why for any verdict but pass, passed is
    verdict == "pass", and skipped counts the elements left out at ReLU kinks.
    """
    if not (np.isfinite(h) and h > 0) or not (np.isfinite(tol) and tol > 0):
        raise ValueError(f"step h and tolerance tol must be finite and > 0, got h={h}, tol={tol}")
    names = STATE_NAMES
    if cell is not None:
        names = tuple(f"{s}0" for s in get_cell(cell_key(cell)).STATES)
        forward = functools.partial(forward, cell=cell)
    params = {k: _float64(v, f"params[{k!r}]") for k, v in params.items()}
    state, dstate_T = _float64(state, "the state"), _float64(dstate_T, "dstate_T")
    y = np.asarray(Y).T.reshape(-1)  # time-major targets, as the logits; checked on the host
    targets = []  # the targets on the device, once they have been checked

    def evaluate():
        extra = {} if masks is None else {"masks": [None if m is None else _float64(m, "a mask") for m in masks]}
        logits, state_T, cache = forward(params, X, state, activation=activation, **extra)
        if not targets:
            softmax_cross_entropy(logits, y)  # checks the targets' range on the host
            targets.append(array_module(logits).asarray(y))
        loss, dlogits = softmax_cross_entropy(logits, targets[0])
        return float(loss + _linear_term(dstate_T, state_T)), cache, dlogits  # deliberate host sync: a checker

    _, cache, dlogits = evaluate()
    guard = _kink_pattern(cache)
    grads, dstate_0 = backward(dlogits, cache, dstate_T)
    _check_backward(params, grads, state, dstate_0, backward, names)

    def f():
        value, cache, _ = evaluate()
        return value if guard is None else (value, _kink_pattern(cache))

    arrays = [(k, params[k], grads[k]) for k in params]
    arrays += [(_state_name(i, names), s, g) for i, (s, g) in enumerate(zip(_members(state), _members(dstate_0)))]
    rows = []
    for name, x, g in arrays:
        numeric, est, loss_scale, unsettled = differences(f, x, h=h, guard=guard)
        rows.append(_verdict(name, _host(g), numeric, est, loss_scale, h, tol, unsettled))
    return rows


def _kink_pattern(cache):
    """The sign pattern of every ReLU pre-activation of the window (a host bool array),
    or None without ReLU: model.kink_pattern, which reads sign(Z_t) for t >= 1 off
    H_t = relu(Z_t) in every layer. The initial state is an input, not a
    pre-activation, so it is not part of the pattern. A cache that is not the
    model's (a forward passed in by the caller) has no ReLU pattern to read."""
    if not (isinstance(cache, dict) and "layers" in cache):
        return None
    return kink_pattern(cache)


def _verdict(name, analytic, numeric, est, loss_scale, h, tol, unsettled):
    row = {"name": name, "shape": tuple(analytic.shape), "analytic": analytic, "numeric": numeric,
           "skipped": int(np.isnan(numeric).sum()), "rel_error": rel_error(analytic, numeric),
           "abs_error": abs_error(analytic, numeric)}
    keep = ~np.isnan(numeric)
    a, n, e, u = analytic[keep], numeric[keep], est[keep], unsettled[keep]
    row["est_error"] = float(e.max()) if e.size else float("nan")
    if not keep.any():
        verdict, reason = "unresolved", f"all {plural(numeric.size, 'element')} skipped: a ReLU unit within h of its kink"
    elif not (np.isfinite(n).all() and np.isfinite(e).all() and np.isfinite(loss_scale)):
        verdict, reason = "unresolved", "the loss or its differences are not finite; try a smaller --scale"
    elif not np.isfinite(a).all():
        verdict, reason = "FAIL", "the backward gives NaN or inf"
    else:
        err, scale, est_max = float(np.abs(a - n).max()), float((np.abs(a) + np.abs(n)).max()), float(e.max())
        off = u > tol * scale  # differences that move, but not as the error estimate assumes (_unsettled)
        if off.any():  # where some elements are, the others' estimates cannot be trusted either
            verdict, reason = "unresolved", (f"at h={h:g} the differences of {plural(int(off.sum()), 'element')} "
                                             f"do not shrink with the step as their error estimate assumes: the step "
                                             f"is too large; try a smaller --h")
        elif err > tol * scale + SAFETY * est_max:
            verdict, reason = "FAIL", (f"off by {err:.1e} ({err / max(scale, 1e-300):.1e} relative), more than the "
                                       f"tolerance and {SAFETY:g} x the differences' error {est_max:.1e}")
        elif est_max <= tol * scale:
            verdict, reason = "pass", ""
        elif scale == 0 and _rounding(loss_scale, h) <= tol:
            verdict, reason = "pass", "the loss does not move: every difference and gradient is exactly 0"
        elif _rounding(loss_scale, h) >= est_max / 2:
            verdict, reason = "unresolved", (f"rounding: a loss of {loss_scale:.1e} is too large for h={h:g}, the "
                                             f"differences resolve only {est_max:.1e} of gradients up to {scale:.1e}; "
                                             f"try a larger --h")
        else:
            verdict, reason = "unresolved", (f"the differences do not settle as the step shrinks (error {est_max:.1e} "
                                             f"on gradients up to {scale:.1e}); try another --h or a smaller --scale")
    row.update(verdict=verdict, reason=reason, passed=verdict == "pass")
    return row


# ----------------------------------------------------------------------------- helpers
def _float64(a, what):
    """A float64 copy of an array (or of each member of a tuple); None stays None."""
    if a is None:
        return None
    if isinstance(a, tuple):
        return tuple(_float64(m, f"{what}[{i}]") for i, m in enumerate(a))
    if not hasattr(a, "dtype"):
        a = np.asarray(a)  # a list or other array-like
    if a.dtype.kind != "f":
        raise TypeError(f"{what} has dtype {a.dtype}; gradients are checked on floating-point arrays")
    return a.astype(np.float64)  # always a copy: the caller's arrays are never perturbed


def _members(state):
    return () if state is None else state if isinstance(state, tuple) else (state,)


def _state_name(i, names=STATE_NAMES):
    return names[i] if i < len(names) else f"S{i}_0"


def _check_backward(params, grads, state, dstate_0, backward, names):
    """What the backward returned, before any difference is taken: a gradient for each
    array, of its shape; a clear ValueError that names the array otherwise."""
    who = getattr(backward, "__name__", "the backward")
    if not isinstance(grads, dict):
        raise ValueError(f"{who} must return (grads, dstate_0) with grads a dict keyed like params, "
                         f"got {type(grads).__name__}")
    for k, p in params.items():
        if k not in grads:
            raise ValueError(f"{who} returned no gradient for {k}: expected an array of shape {tuple(p.shape)} "
                             f"under the key {k!r}")
        if tuple(getattr(grads[k], "shape", ())) != tuple(p.shape):
            got = f"shape {tuple(grads[k].shape)}" if hasattr(grads[k], "shape") else f"a {type(grads[k]).__name__}"
            raise ValueError(f"{who} returned {got} for the gradient of {k}, expected shape {tuple(p.shape)}")
    members, dmembers = _members(state), _members(dstate_0)
    if members and len(dmembers) != len(members):
        raise ValueError(f"{who} returned a dstate_0 of {len(dmembers)} array(s) for a state of {len(members)}")
    for i, (s, g) in enumerate(zip(members, dmembers)):
        if tuple(getattr(g, "shape", ())) != tuple(s.shape):
            got = f"shape {tuple(g.shape)}" if hasattr(g, "shape") else f"a {type(g).__name__}"
            raise ValueError(f"{who} returned {got} for the gradient of the initial state "
                             f"{_state_name(i, names)}, expected shape {tuple(s.shape)}")


def _linear_term(G, state_T):
    """Σ G ⊙ state_T over every member of the state (0 without G)."""
    return sum((g * s).sum() for g, s in zip(_members(G), _members(state_T)))


def random_params(V, H, rng, *, scale=0.5, backend=None, dtype="float64", cell="rnn", num_layers=1, embed_size=None):
    """Parameters of the model init_params describes, drawn normal(0, scale): larger
    than the training init, so that every gradient stands well above rounding."""
    backend = get_backend(backend)
    shapes = {k: v.shape for k, v in init_params(V, H, cell=cell, num_layers=num_layers, embed_size=embed_size,
                                                  dtype="float64").items()}
    return {k: backend.asarray(rng.normal(0.0, scale, s).astype(dtype)) for k, s in shapes.items()}


def _host(a):
    return backend_of(a).to_numpy(a)  # deliberate host sync: a checker


# ----------------------------------------------------------------------------- one step
def check_step(cell, B=3, H=4, *, seed=0, scale=0.5, h=STEP, tol=TOLERANCE, backend=None):
    """Check a cell's step_backward alone against central differences of its
    step_forward, on random A_t (B,kH), state and W, in float64: no sequence, no
    model around it. The loss is L = Σ_i G_i ⊙ new_state_i with a random G, so
    step_backward(G, cache_t, W) is its gradient.

    cell: anything with the protocol's NAME, GATES, STATES, step_forward and
    step_backward (a loaded cell file, or cells.steps.FastSteps for a built-in).
    Returns one row per gradient, as check_gradients: dA_t, one row per gate block
    (dA_t[f], dA_t[o], ... in GATES order) when the cell has several, then d{S}_prev for
    each state S, then d{name} for each recurrent parameter; a wrong line in the step
    backward shows as the array (or block) it corrupts.
    """
    backend = get_backend(backend)
    rng = np.random.default_rng(seed)
    k, n = len(cell.GATES), len(cell.STATES)
    shapes = cell.recurrent_params(H)
    A_t = backend.asarray(rng.normal(0.0, 1.0, (B, k * H)))
    state = tuple(backend.asarray(rng.normal(0.0, scale, (B, H))) for _ in range(n))
    W = {name: backend.asarray(rng.normal(0.0, scale, s)) for name, s in shapes.items()}
    G = tuple(backend.asarray(rng.normal(0.0, 1.0, (B, H))) for _ in range(n))
    new_state, cache_t = cell.step_forward(A_t, state, W)
    kinks = getattr(cell, "kinks", None)

    def pattern(cache):
        return np.concatenate([_host(z).ravel() > 0 for z in _members(kinks(cache))])

    guard = None if kinks is None else pattern(cache_t)
    dA_t, dstate_prev, dW = cell.step_backward(G, cache_t, W)

    def f():
        out, cache = cell.step_forward(A_t, state, W)
        value = float(sum((g * s).sum() for g, s in zip(G, out)))  # deliberate host sync: a checker
        return value if guard is None else (value, pattern(cache))

    arrays = [("dA_t", A_t, dA_t)] + [(f"d{s}_prev", x, g) for s, x, g in zip(cell.STATES, state, dstate_prev)]
    arrays += [(f"d{name}", W[name], dW[name]) for name in shapes]
    rows = []
    for name, x, g in arrays:
        numeric, est, loss_scale, unsettled = differences(f, x, h=h, guard=guard)
        g = _host(g)
        if name == "dA_t" and k > 1:  # each gate's block (B,H) of dA_t, so that a wrong dA_o is named
            for j, gate in enumerate(cell.GATES):
                cols = slice(j * H, (j + 1) * H)
                rows.append(_verdict(f"dA_t[{gate}]", g[:, cols], numeric[:, cols], est[:, cols], loss_scale, h,
                                     tol, unsettled[:, cols]))
        else:
            rows.append(_verdict(name, g, numeric, est, loss_scale, h, tol, unsettled))
    return rows
