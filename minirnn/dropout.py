"""Dropout on the non-recurrent connections (Zaremba, Sutskever & Vinyals, 2014,
"Recurrent Neural Network Regularization"): the input of each layer (the one-hot
token or the embedding for layer 0, the layer below's H_t above it) and the top
layer's H_t before W_hq; never on H_{t-1} -> H_t.

Inverted dropout: a kept unit is scaled by 1/(1 - p) during training, so the
expected input is unchanged and nothing happens at evaluation or in generation.

    forward   Y = X ⊙ M,   M = Bernoulli(1 - p) / (1 - p)     (rows, width)
    backward  dX = dY ⊙ M

One-hot input has one unit per token, so its mask is (T·B, 1): the whole token is
dropped or kept. The masks are drawn on the host by a NumPy Generator that the
caller seeds, so a seed fixes them (on the CPU and the GPU alike), and the
gradient check can hold them fixed.
"""

from .backend import array_module, backend_of


def dropout_masks(spec, T, B, p, rng, like):
    """One mask per dropped connection, as device arrays of like's dtype: masks[l]
    for the input of layer l (l = 0..L-1), masks[L] for the top layer's states.
    Returns None when p == 0."""
    if not p:
        return None
    backend = backend_of(like)
    widths = [spec.embed_size or 1] + [spec.num_hiddens] * spec.num_layers
    keep = 1.0 - p
    masks = []
    for w in widths:
        M = (rng.random((T * B, w)) < keep).astype(like.dtype)  # Bernoulli(1 - p) ...
        M *= 1 / keep  # ... / (1 - p): the value float(1 / keep) in like's dtype, as a division would give
        masks.append(backend.asarray(M))
    return masks


def dropout_forward(X, mask, out):
    """Y = X ⊙ M into out (X's shape); mask (rows, width) or (rows, 1)."""
    xp = array_module(out)
    return xp.multiply(X, mask, out=out)


def dropout_backward(dY, mask):
    """Mirror of dropout_forward, in place: dY becomes dX = dY ⊙ M."""
    dY *= mask  # into X: a dropped unit gets no gradient, a kept one is scaled by 1/(1 - p)
    return dY
