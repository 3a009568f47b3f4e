"""Import weights from a safetensors file in PyTorch's or Keras' layout as a minirnn checkpoint.

    python scripts/import.py lstm.safetensors -o lstm.npz                          # the file names its vocabulary
    python scripts/import.py lstm.safetensors -o lstm.npz --vocab-from book.txt    # a state dict from PyTorch

The checkpoint holds the weights, the vocabulary and a config, and no training
state: generate and gradflow read it, and `train --init-from` starts a new run
from its weights. The vocabulary, text mode and activation come from the file's
__metadata__ when it has them; else from --vocab-from (a minirnn checkpoint, or
the text the model was trained on), --text-mode and --activation.
docs/interop.md lists each mapping, and what is refused and why.
"""
import os
import zipfile

from minirnn import checkpoint, interop
from minirnn.atomic import check_named, check_not_input, check_writable
from minirnn.cli import ArgumentParser
from minirnn.config import ACTIVATIONS, TEXT_MODES, Config
from minirnn.data import Vocab, read_text
from minirnn.errors import CheckpointError, DataError, UsageError, plural
from minirnn.model import model_spec
from minirnn.safetensors_io import load_safetensors
from minirnn.textmodes import default_text_mode, preprocess, text_prefix


def main(argv, prog="import.py"):
    p = ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    p.add_argument("file", metavar="FILE", help="a .safetensors file (from minirnn export, or a PyTorch / Keras model)")
    p.add_argument("-o", "--output", required=True, metavar="CHECKPOINT", help="the checkpoint (.npz) to write")
    p.add_argument("--layout", choices=interop.LAYOUTS,
                   help="the file's key layout, torch or keras (default: as its __metadata__ says, else read off its keys)")
    p.add_argument("--vocab-from", metavar="CHECKPOINT_OR_TEXT",
                   help="where the vocabulary comes from when the file has none: a minirnn checkpoint, or the text "
                        "the model was trained on (its vocabulary is built as train builds it)")
    p.add_argument("--text-mode", choices=TEXT_MODES,
                   help="the model's preprocessing, when the file does not say (default: a --vocab-from checkpoint's; for a "
                        "--vocab-from text, words, as train reads a --data file; else letters)")
    p.add_argument("--activation", choices=tuple(ACTIVATIONS),
                   help="an rnn model's activation, when the file does not say (default tanh)")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    args = p.parse_args(argv)
    check_named({"FILE": args.file, "-o": args.output, "--vocab-from": args.vocab_from})
    check_writable(args.output, "-o")
    check_not_input({"-o": args.output}, {"FILE": args.file, "--vocab-from": args.vocab_from})

    arrays, raw_meta = load_safetensors(args.file)
    meta = interop.read_metadata(raw_meta, args.file)
    layout = args.layout or meta.get("layout") or interop.guess_layout(arrays)
    if layout not in interop.LAYOUTS:
        raise CheckpointError(f"{args.file}: its tensors are in no layout minirnn knows ({', '.join(list(arrays)[:4])}"
                              f"{', ...' if len(arrays) > 4 else ''}); the keys of d2l's RNNModel are expected "
                              f"(rnn.*, linear.*, embedding.*), see docs/interop.md")
    try:
        params = interop.IMPORTS[layout](arrays, cell=meta.get("cell"))
    except CheckpointError as e:
        raise CheckpointError(f"{args.file}: {e}") from None
    cell = interop.TORCH_GRU if "b_hn" in params else None  # nn.GRU comes in as the torch_gru cell file
    spec = model_spec(params, cell=cell)

    vocab, text_mode, data, prefix = _vocabulary(args, meta, spec.vocab_size)
    activation = _agreed("activation", meta.get("activation"), args.activation, args.file) or "tanh"
    if spec.cell != "rnn" and activation != "tanh":
        raise UsageError(f"--activation {activation} applies to rnn models only; this is a {spec.cell}, "
                         f"so drop --activation")
    cfg = Config.from_dict({"cell": cell or spec.cell, "num_layers": spec.num_layers, "num_hiddens": spec.num_hiddens,
                            "embed_size": spec.embed_size, "activation": activation, "text_mode": text_mode,
                            "dtype": str(params["W_hq"].dtype), "data": data,
                            "sample_prefix": meta.get("sample_prefix") or prefix})
    checkpoint.save(args.output, params, vocab, cfg, state={})
    print(f"wrote {args.output}: {spec.describe()}" + (f" ({activation})" if spec.cell == "rnn" else "")
          + f", V={spec.vocab_size} H={spec.num_hiddens}, {cfg.dtype}, from the {layout} layout; "
          + f"use it with generate or gradflow --checkpoint {args.output}, or start a run from it with "
          + f"train --init-from {args.output}" + (f" (a model of the shipped cell file {cell})" if cell else ""))
    return 0


def _vocabulary(args, meta, V):
    """(vocab, text mode, data path or None, sample prefix or None): from the file, else
    from --vocab-from."""
    saved = meta.get("vocab")
    text_mode = _agreed("text_mode", meta.get("text_mode"), args.text_mode, args.file)
    data = prefix = None
    if args.vocab_from:
        source, text_mode, data, prefix = _vocab_from(args.vocab_from, text_mode)
        if saved is not None and list(source.idx_to_token) != saved:
            raise UsageError(f"--vocab-from {args.vocab_from} gives another vocabulary than the one {args.file} "
                             f"holds; drop --vocab-from to use the file's")
        vocab = source
    elif saved is not None:
        try:
            vocab = Vocab(saved)
        except ValueError as e:
            raise CheckpointError(f"{args.file}: its vocabulary is malformed: {e}") from None
    else:
        raise UsageError(f"{args.file} holds no vocabulary (its __metadata__ has no 'vocab'): give --vocab-from "
                         f"CHECKPOINT_OR_TEXT, a minirnn checkpoint with the model's vocabulary or the text the "
                         f"model was trained on")
    if len(vocab) != V:
        where = f"--vocab-from {args.vocab_from}" if args.vocab_from else f"{args.file}'s metadata"
        raise CheckpointError(f"the vocabulary from {where} has {plural(len(vocab), 'token')} but the weights "
                              f"expect V={V}; give the text (or checkpoint) the model was trained on"
                              + (f", and the --text-mode it used (this was {text_mode})" if args.vocab_from else ""))
    return vocab, text_mode or "letters", data, prefix


def _vocab_from(path, text_mode):
    """A checkpoint's vocabulary (and its text mode, text and sample prefix), or the one
    a text gives (and the text's start as the prefix, as train takes it)."""
    if os.path.isfile(path) and zipfile.is_zipfile(path):
        ckpt = checkpoint.load(path)
        if text_mode and text_mode != ckpt.config.text_mode:
            raise UsageError(f"--vocab-from {path} was trained with --text-mode {ckpt.config.text_mode}, not "
                             f"{text_mode}; drop --text-mode")
        return ckpt.vocab, ckpt.config.text_mode, ckpt.config.data, ckpt.config.sample_prefix
    try:
        text = read_text(path)
    except DataError as e:
        raise DataError(str(e).replace("--data", "--vocab-from", 1)) from None
    text_mode = text_mode or default_text_mode(path)  # as train --data reads a text: words
    tokens = preprocess(text, text_mode)
    if not tokens:
        raise DataError(f"--vocab-from {path}: holds no tokens after '{text_mode}' preprocessing; "
                        f"give --text-mode raw or another text")
    return Vocab.build(tokens), text_mode, os.path.abspath(path), text_prefix(tokens[:60])


def _agreed(name, saved, given, file):
    """The file's value, or the option's; both given and different is a usage error."""
    if saved is not None and given is not None and saved != given:
        raise UsageError(f"--{name.replace('_', '-')} {given} conflicts with {file}, whose metadata says {saved}; "
                         f"drop --{name.replace('_', '-')}")
    if saved is not None and name == "text_mode" and saved not in TEXT_MODES or \
            name == "activation" and saved is not None and saved not in ACTIVATIONS:
        raise CheckpointError(f"{file}: its metadata names an unknown {name.replace('_', ' ')} {saved!r}")
    return saved if saved is not None else given
