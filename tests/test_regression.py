"""A small fixed model with known loss and gradient values, so refactors cannot drift.

The numbers were computed by this engine when its gradients had been verified by
central differences; the naive loop below recomputes the loss independently.
"""
import math

import numpy as np
import pytest

from minirnn import rnn_backward, rnn_forward, softmax_cross_entropy

V, H, B, T = 4, 3, 2, 3
X = np.array([[0, 1, 2], [3, 2, 1]])
Y = np.array([[1, 2, 3], [2, 1, 0]])


def fixed_params():
    return {
        "W_xh": np.sin(np.arange(V * H)).reshape(V, H) * 0.5,
        "W_hh": np.cos(np.arange(H * H)).reshape(H, H) * 0.5,
        "b_h": np.array([0.1, -0.2, 0.3]),
        "W_hq": np.sin(np.arange(H * V) + 1.0).reshape(H, V),
        "b_q": np.array([0.0, 0.1, -0.1, 0.2]),
    }


LOSS = 1.4784768639177395
GRADS_HEAD = {  # the first four elements of each gradient, row-major
    "W_xh": [-0.125007540822, 0.067848423648, 0.010369818886, 0.045979356273],
    "W_hh": [0.048255803987, -0.04666837458, 0.010544167035, -0.027041670708],
    "b_h": [0.054979162246, -0.196153481895, 0.185764817325],
    "W_hq": [0.023840160849, 0.034617955437, -0.068723038594, 0.010264922308],
    "b_q": [0.16455711555, -0.032580016182, -0.166149905184, 0.034172805817],
}
H_T = [[0.232437970009, 0.267833244752, 0.58892077759], [0.410060746422, -0.363868474895, -0.227582491147]]


def naive_loss(p):
    """Scalar loops, straight from the equations."""
    total = 0.0
    for b in range(B):
        h = [0.0] * H
        for t in range(T):
            z = [p["W_xh"][X[b, t], j] + p["b_h"][j] + sum(h[i] * p["W_hh"][i, j] for i in range(H)) for j in range(H)]
            h = [math.tanh(v) for v in z]
            o = [p["b_q"][q] + sum(h[j] * p["W_hq"][j, q] for j in range(H)) for q in range(V)]
            total += math.log(sum(math.exp(v) for v in o)) - o[Y[b, t]]
    return total / (B * T)


def test_fixed_model_loss_and_gradients(backend):
    params = {k: backend.asarray(v) for k, v in fixed_params().items()}
    logits, H_last, cache = rnn_forward(params, X, None)
    loss, dlogits = softmax_cross_entropy(logits, backend.asarray(Y.T.reshape(-1)))
    grads, _ = rnn_backward(dlogits, cache)
    assert float(loss) == pytest.approx(LOSS, rel=1e-12)
    assert float(loss) == pytest.approx(naive_loss(fixed_params()), rel=1e-12)
    for k, head in GRADS_HEAD.items():
        np.testing.assert_allclose(backend.to_numpy(grads[k]).ravel()[:len(head)], head, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(backend.to_numpy(H_last), H_T, rtol=1e-9)
