"""The input layer: the row that a token id picks, for all T·B rows at once.

One-hot input (d2l's default): X_t·W is the row W[x_t], so the input products of
layer 0 are a row lookup in the table W_x + b (V, kH), never a product.

A learnable embedding (the chapter's exercise 2) puts E_t = W_emb[x_t] (V,E) in
front of layer 0 instead:
    forward   E = W_emb[ids]                           (T·B, E)
    backward  dW_emb[v] = Σ of the rows of dE whose id is v
"""
from .backend import array_module, backend_of


def onehot_forward(table, ids, out):
    """X_t·W_x + b for all T·B rows: one-hot row x_t of X picks row x_t of
    table = W_x + b (V, kH). ids (T·B,); out (T·B, kH)."""
    xp = array_module(out)
    return xp.take(table, ids, axis=0, out=out)


def onehot_backward(dA, ids, V):
    """Mirror of onehot_forward: dW_x[v] = Σ of the rows of dA (T·B, kH) whose id
    is v, and db = Σ of all rows. Returns (dW_x (V,kH), db (kH,))."""
    dW = backend_of(dA).index_add(ids, dA, V)  # into the looked-up rows of W_x
    return dW, dW.sum(axis=0)  # into b: each row of dA went into one row of dW_x


def embedding_forward(W_emb, ids, out):
    """E = W_emb[ids]: W_emb (V,E), ids (T·B,), out (T·B,E). Returns (E, cache)."""
    xp = array_module(out)
    xp.take(W_emb, ids, axis=0, out=out)
    return out, (ids, W_emb.shape[0])


def embedding_backward(dE, cache):
    """Mirror of embedding_forward: dE (T·B,E) -> dW_emb (V,E)."""
    ids, V = cache
    return backend_of(dE).index_add(ids, dE, V)  # into the looked-up rows of W_emb
