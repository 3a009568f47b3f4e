"""The recurrent cells, one file each. Every cell module has the same shape:

    GATES               the blocks of weights, in the order they sit side by side:
                        block g has W_x{g} (I,H), W_h{g} (H,H) and b_{g} (H,)
    STATES              the names of the state arrays: ("H",) or ("H", "C")
    SPENDS_CACHE        whether sequence_backward overwrites the forward's cache
                        (unless asked to keep it), so that a second backward needs a new forward
    *_step_forward / *_step_backward   one time step and its mirror
    prepare(W_h, ws, key)              the window's recurrent weights, concatenated
    input_buffer(...)                  where X_t·W_x + b for all steps goes
    sequence_forward / sequence_backward   the steps over a window, and in reverse

model.py does everything the cells share: the input products of all blocks over
all T·B rows at once, stacking, the output layer and the weight gradients of W_x.
"""
from . import gru, lstm, rnn

CELLS = {"rnn": rnn, "gru": gru, "lstm": lstm}
