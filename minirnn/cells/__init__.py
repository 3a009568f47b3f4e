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

Besides these fast modules, a cell can be one plain file in the simple protocol
(protocol.py): NAME, GATES, STATES, step_forward, step_backward. reference/ holds
rnn, gru and lstm written that way (the equations and nothing else), examples/
two more cells; get_cell loads any of them, or a user's file, by name or path.
"""
import inspect

from . import gru, lstm, rnn
from .protocol import CellError, ProtocolCell, is_cell_path, load_cell, shipped_cells

CELLS = {"rnn": rnn, "gru": gru, "lstm": lstm}


def get_cell(cell):
    """The cell object behind a Spec's cell: the built-in module for a built-in name,
    a checked ProtocolCell for a path, a shipped short name (examples/cifg) or a module."""
    if isinstance(cell, str) and cell in CELLS:
        return CELLS[cell]
    if any(cell is module for module in CELLS.values()) or isinstance(cell, ProtocolCell):
        return cell
    if hasattr(cell, "GATES") and hasattr(cell, "STATES") and not inspect.ismodule(cell):
        return cell  # a description of a cell without its code, as a checkpoint records it
    if cell is None or (isinstance(cell, str) and not is_cell_path(cell)):
        raise CellError(f"unknown cell {cell!r}: choose one of {', '.join(CELLS)}, a path to a cell file (.py), "
                        f"or one of {', '.join(shipped_cells())}")
    return load_cell(cell)


def cell_key(cell):
    """What a Spec holds for a cell: the built-in name, or the ProtocolCell."""
    for name, module in CELLS.items():
        if cell is module:
            return name
    return cell if isinstance(cell, str) and cell in CELLS else get_cell(cell)


def cell_name(cell):
    """The name a cell goes by in output: 'gru', or a cell file's NAME."""
    return cell if isinstance(cell, str) else cell.NAME


def recurrent_params(cell, H):
    """{name: shape} of one layer's recurrent parameters: W_h{g} (H,H) per gate for
    the built-in cells, the file's own recurrent_params(H) where it has one."""
    cell = get_cell(cell) if isinstance(cell, str) else cell
    if hasattr(cell, "recurrent_params"):
        return cell.recurrent_params(H)
    return {f"W_h{g}": (H, H) for g in cell.GATES}
