"""Export a checkpoint's weights as safetensors, in PyTorch's or Keras' layout.

    python scripts/export.py tm.npz -o tm.safetensors                   # nn.RNN / nn.LSTM + nn.Linear
    python scripts/export.py gru.npz -o gru.safetensors --layout keras  # Keras' GRU(reset_after=False)

The keys are those of d2l's concise RNNModel (rnn.*, linear.*, embedding.*); the
vocabulary, text mode and activation travel in the file's __metadata__.
docs/interop.md lists each mapping and the lines that load the file.
"""
import sys

import numpy as np

from minirnn import checkpoint, interop
from minirnn.atomic import check_named, check_not_input, check_writable
from minirnn.cells import cell_name, load_cell
from minirnn.cli import ArgumentParser
from minirnn.config import DTYPES
from minirnn.errors import UsageError
from minirnn.model import model_spec
from minirnn.safetensors_io import save_safetensors


def main(argv, prog="export.py"):
    p = ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    p.add_argument("checkpoint", metavar="CHECKPOINT", help="a checkpoint written by train --save")
    p.add_argument("-o", "--output", required=True, metavar="FILE", help="the .safetensors file to write")
    p.add_argument("--layout", choices=interop.LAYOUTS, default="torch",
                   help="torch: nn.RNN / nn.LSTM, nn.Linear, nn.Embedding; keras: SimpleRNN / LSTM / "
                        "GRU(reset_after=False), Dense, Embedding (default torch)")
    p.add_argument("--dtype", choices=DTYPES, help="write the weights in this precision (default: the checkpoint's)")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    args = p.parse_args(argv)
    check_named({"CHECKPOINT": args.checkpoint, "-o": args.output})
    check_writable(args.output, "-o")
    check_not_input({"-o": args.output}, {"CHECKPOINT": args.checkpoint})
    ckpt = checkpoint.load(args.checkpoint)
    cfg = ckpt.config
    cell = _exported_cell(args, ckpt) if ckpt.cell is not None else None
    params = {k: a.astype(args.dtype or a.dtype, copy=False) for k, a in ckpt.params.items()}
    arrays = interop.to_torch(params, cell=cell) if args.layout == "torch" else interop.to_keras(params)
    spec = model_spec(params, cell=cell)  # the torch layout refuses the book's GRU, saying why
    name = cell_name(spec.cell)
    meta = interop.metadata(args.layout, name, ckpt.vocab, cfg.text_mode, cfg.activation, cfg.sample_prefix)
    save_safetensors(args.output, arrays, meta)
    if ckpt.snapshots is not None:
        print("note: the checkpoint's ensemble snapshots are not exported, only its own weights", file=sys.stderr)
    dtype = np.dtype(next(iter(arrays.values())).dtype).name
    print(f"wrote {args.output}: {spec.describe()}"
          + (f" ({cfg.activation})" if spec.cell == "rnn" else "")
          + f", V={spec.vocab_size} H={spec.num_hiddens}, {dtype}, {len(arrays)} tensors in the {args.layout} layout "
          + f"for {_target(spec, cfg.activation, args.layout)}")
    return 0


def _exported_cell(args, ckpt):
    """A model of a cell file exports only when the file is the shipped torch_gru, whose
    equations are nn.GRU's, to the torch layout; else one line that says why."""
    shipped = load_cell(interop.TORCH_GRU)
    if ckpt.cell["name"] == shipped.NAME and ckpt.cell["sha256"] == shipped.sha256:
        if args.layout == "torch":
            return interop.TORCH_GRU
        raise UsageError(f"{args.checkpoint} is a model of the torch_gru cell file, PyTorch's nn.GRU: export it "
                         f"with --layout torch")
    if ckpt.cell["name"] == shipped.NAME:
        raise UsageError(f"{args.checkpoint} is a model of a torch_gru cell file whose code differs from the shipped "
                         f"{interop.TORCH_GRU} (sha256 {ckpt.cell['sha256'][:12]}, not {shipped.sha256[:12]}), so its "
                         f"equations may not be nn.GRU's; train with --cell {interop.TORCH_GRU} to export to nn.GRU")
    raise UsageError(f"{args.checkpoint} is a model of the cell file {ckpt.config.cell} ({ckpt.cell['name']}): export "
                     f"maps only the built-in rnn, gru and lstm and the shipped {interop.TORCH_GRU}, whose equations "
                     "PyTorch and Keras layers compute; a cell file's weights are in the checkpoint under their own "
                     f"names (numpy.load({args.checkpoint!r})['{next(iter(ckpt.params))}'])")


def _target(spec, activation, layout):
    """The other framework's modules that load the file."""
    if layout == "torch":
        module = {"lstm": "LSTM", "torch_gru": "GRU"}.get(cell_name(spec.cell), "RNN")
        rnn = f"nn.{module}({spec.embed_size or spec.vocab_size}, " \
              f"{spec.num_hiddens}" + (f", num_layers={spec.num_layers}" if spec.num_layers > 1 else "") \
              + (", nonlinearity='relu'" if activation == "relu" else "") + ")"
        return ((f"nn.Embedding({spec.vocab_size}, {spec.embed_size}) + " if spec.embed_size else "")
                + rnn + f" + nn.Linear({spec.num_hiddens}, {spec.vocab_size})")
    layer = {"rnn": "SimpleRNN", "lstm": "LSTM", "gru": "GRU"}[spec.cell]
    options = ", reset_after=False" if spec.cell == "gru" else ", activation='relu'" if activation == "relu" else ""
    return ((f"Embedding({spec.vocab_size}, {spec.embed_size}) + " if spec.embed_size else "")
            + (f"{spec.num_layers} x " if spec.num_layers > 1 else "") + f"{layer}({spec.num_hiddens}{options}) + "
            + f"Dense({spec.vocab_size})")
