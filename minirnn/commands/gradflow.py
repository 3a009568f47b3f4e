"""Gradient flow through time: how the last step's gradient shrinks or grows on its way back.

    python scripts/gradflow.py --cell rnn --plot flow.png           # a fresh init, on the book
    python scripts/gradflow.py --cell rnn --cell gru --cell lstm --plot cmp.png
    python scripts/gradflow.py --checkpoint tanh.npz --checkpoint gru.npz --plot trained.png

For each model, on the first --num-steps tokens of the text (one window, zero
initial state), a table at distances k = T - t: the norm of the gradient that the
last step's loss sends back to the state H_t, of the gradient under the whole
loss, and the spectral norm of each step's Jacobian, whose product bounds the
first. See minirnn/analysis.py for the conventions.
"""
import os

import numpy as np

from minirnn import checkpoint
from minirnn.analysis import POWER_ITERATIONS, gradient_flow
from minirnn.atomic import atomic_write, check_named, check_not_input, check_png, check_writable
from minirnn.backend import get_backend
from minirnn.cli import ArgumentParser, need_matplotlib
from minirnn.cells import get_cell, is_cell_path
from minirnn.config import ACTIVATIONS, DEVICES, TEXT_MODES, Config, cell_option
from minirnn.data import default_text_mode, load_corpus
from minirnn.errors import DataError, UsageError
from minirnn.model import init_params


D = Config()
NUM_STEPS = 100


def parse(argv, prog):
    p = ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    a = p.add_argument
    a("--checkpoint", action="append", default=[], metavar="PATH",
      help="a model saved by train.py --save; repeat it to compare models")
    a("--cell", action="append", default=[], type=cell_option,
      help="a fresh model of this cell (the book's init): rnn, gru, lstm or the path of a cell file; repeat it to "
           "compare (default rnn without --checkpoint). A checkpoint trained with a cell file needs that file "
           "here too (a checkpoint never runs code): it serves the checkpoint, not a fresh model")
    a("--num-hiddens", type=int, default=D.num_hiddens, help=f"fresh models: hidden units, H (default {D.num_hiddens})")
    a("--num-layers", type=int, default=D.num_layers, help=f"fresh models: layers, L (default {D.num_layers})")
    a("--embed-size", type=int, default=D.embed_size, help="fresh models: embedding size E, 0 = one-hot (default 0)")
    a("--activation", choices=tuple(ACTIVATIONS), default=D.activation,
      help=f"fresh rnn models: the activation (default {D.activation})")
    a("--seed", type=int, default=D.seed, help=f"fresh models: the seed of the weights (default {D.seed})")
    a("--num-steps", type=int, default=NUM_STEPS, help=f"window length, T (default {NUM_STEPS})")
    a("--batch-size", type=int, default=1,
      help="sequences, B: consecutive windows from the start of the text; the table shows "
           "the geometric mean over them (default 1)")
    a("--data", metavar="PATH", help="a UTF-8 text (default: the checkpoint's text, else The Time Machine)")
    a("--text-mode", choices=TEXT_MODES, help="fresh models: letters, words or raw (default letters for the book, words for --data; "
                                                "a checkpoint keeps its own)")
    a("--power-iterations", type=int, default=POWER_ITERATIONS,
      help=f"power iterations per step for the Jacobian norms (default {POWER_ITERATIONS})")
    a("--exact", action="store_true", help="exact Jacobian norms by an SVD per step (slow for large H)")
    a("--device", choices=DEVICES, default=None, help="default: the MINIRNN_DEVICE environment variable, else cpu")
    a("--plot", metavar="PATH", help="draw the norms against k on a log scale as a PNG here (needs matplotlib)")
    a("--debug", action="store_true", help="show tracebacks")
    return p.parse_args(argv)


def main(argv, prog="gradflow.py"):
    args = parse(argv, prog)
    for name, low in (("num_hiddens", 1), ("num_layers", 1), ("embed_size", 0), ("seed", 0), ("num_steps", 1),
                      ("batch_size", 1), ("power_iterations", 1)):
        if getattr(args, name) < low:
            raise UsageError(f"--{name.replace('_', '-')} must be >= {low}, got {getattr(args, name)}")
    check_named({"--plot": args.plot, "--data": args.data}, *(("--checkpoint", c) for c in args.checkpoint))
    cells = args.cell or ([] if args.checkpoint else ["rnn"])
    if args.activation != "tanh" and any(c != "rnn" for c in cells):
        raise UsageError(f"--activation {args.activation} applies to --cell rnn only; the gated cells have their "
                         f"own nonlinearities, so compare them in separate runs or drop --activation")
    if args.plot:
        check_png(args.plot, "--plot")
        check_writable(args.plot, "--plot")
        for option, source in [("--data", args.data)] + [("--checkpoint", c) for c in args.checkpoint]:
            check_not_input({"--plot": args.plot}, {option: source})
    backend = get_backend(args.device)
    B, T = args.batch_size, args.num_steps
    iterations = None if args.exact else args.power_iterations

    models = []  # (label, params, activation, data, text mode, vocab, cell)
    for path in args.checkpoint:
        ckpt = checkpoint.load(path)
        cfg = ckpt.config
        if args.plot:
            check_not_input({"--plot": args.plot}, {f"--data of {path}": args.data or cfg.data})
        cell = None
        if ckpt.cell is not None:  # the --cell PATH given for it, which is then no fresh model
            files = [c for c in cells if is_cell_path(c) and get_cell(c).NAME == ckpt.cell["name"]]
            cell = checkpoint.check_cell(ckpt, files[0] if files else None, path)
            cells = cells[:]
            if cell in cells:  # this once; given twice, the file is also a fresh model
                cells.remove(cell)
        models.append((_checkpoint_label(path, ckpt), ckpt.params, cfg.activation, args.data or cfg.data,
                       cfg.text_mode, ckpt.vocab, cell))
    if args.plot:
        need_matplotlib()  # after the usage errors, before any work
    for cell in cells:
        models.append((None, cell, args.activation if cell == "rnn" else "tanh", args.data,
                       args.text_mode or default_text_mode(args.data), None, cell))

    results = []
    for label, params, activation, data, text_mode, vocab, cell in models:
        corpus = load_corpus(data, text_mode=text_mode, max_tokens=B * T + 1, vocab=vocab)
        ids = corpus.train.astype(np.int64)
        if len(ids) < B * T + 1:
            raise DataError(f"the text has {len(ids)} tokens, too few for --batch-size {B} x --num-steps {T} "
                            f"(needs {B * T + 1}); lower them or use a longer --data file")
        if vocab is None:  # a fresh model, sized to this text
            params = init_params(len(corpus.vocab), args.num_hiddens, cell=cell, num_layers=args.num_layers,
                                 embed_size=args.embed_size or None, seed=args.seed)
            label = _fresh_label(cell, activation, args)
        params = {k: backend.asarray(v) for k, v in params.items()}
        X = ids[:B * T].reshape(B, T)
        Y = ids[1:B * T + 1].reshape(B, T)
        flow = gradient_flow(params, X, Y, activation=activation, power_iterations=iterations, cell=cell)
        results.append((label, flow))
        source = f"--data {data}" if data else "the book"
        print(_table(label, flow, source, T, B, iterations))
        print()
    if args.plot:
        _write_plot(args.plot, results, T, B)
        print(f"plot written to {args.plot}")
    return 0


# ----------------------------------------------------------------------------- labels and the table
def _model_name(cell, activation, H, L, E):
    if is_cell_path(cell):
        cell = f"{get_cell(cell).NAME} ({get_cell(cell).file})"
    return (f"{cell}" + (f" ({activation})" if cell == "rnn" else "") + f", H={H}"
            + (f", {L} layers" if L > 1 else "") + (f", embedding {E}" if E else ""))


def _fresh_label(cell, activation, args):
    return _model_name(cell, activation, args.num_hiddens, args.num_layers, args.embed_size) + f", fresh init (seed {args.seed})"


def _checkpoint_label(path, ckpt):
    c = ckpt.config
    epoch = ckpt.state.get("epoch")
    cell = c.cell if ckpt.cell is None else f"{ckpt.cell['name']} ({ckpt.cell['file']})"  # never the file itself
    return (f"{os.path.basename(path)}: " + _model_name(cell, c.activation, c.num_hiddens, c.num_layers, c.embed_size)
            + (f", trained {epoch} epochs" if epoch is not None else ""))


def log_spaced(T, points=12):
    """Distances 0 … T-1, about evenly spaced on a log scale."""
    if T == 1:
        return np.array([0])
    k = np.unique(np.round(np.logspace(0, np.log10(T - 1), points)).astype(int))
    return np.concatenate([[0], k])


def rate(values):
    """The geometric mean factor per step from the first non-zero value to the last
    (dC_T is zero: nothing lies beyond the window)."""
    nonzero = np.flatnonzero(values > 0)
    if len(nonzero) == 0 or nonzero[0] >= len(values) - 1 or not values[-1] > 0:
        return float("nan")
    return float((values[-1] / values[nonzero[0]]) ** (1.0 / (len(values) - 1 - nonzero[0])))


def geometric_mean(a, axis=-1):
    """Over the sequences; 0 if any is 0."""
    with np.errstate(divide="ignore"):
        return np.exp(np.mean(np.log(a), axis=axis))


def _columns(flow):
    """(heading, values (T,), kind): the top layer, geometric mean over the sequences."""
    top = lambda a: geometric_mean(a[-1])  # noqa: E731
    cols = [("|dl_T/dH_t|", top(flow.dlast_dH), "grad")]
    if flow.dlast_dC is not None:
        cols.append(("|dl_T/dC_t|", top(flow.dlast_dC), "grad"))
    cols.append(("|dL/dH_t|", top(flow.dL_dH), "grad"))
    if flow.dL_dC is not None:
        cols.append(("|dL/dC_t|", top(flow.dL_dC), "grad"))
    cols.append(("s(dH_t/dH_t-1)", top(flow.jac_H), "jac"))
    if flow.jac_C is not None:
        cols += [("s(dC_t/dC_t-1)", top(flow.jac_C), "jac"), ("s(d(H,C)_t/d(H,C)_t-1)", top(flow.jac_state), "jac")]
    return cols


def _table(label, flow, source, T, B, iterations):
    L = flow.dlast_dH.shape[0]
    cols = _columns(flow)
    lines = [f"gradient flow through time: {label}",
             f"  window: the first {T} tokens of {source}" + (f", {B} consecutive windows" if B > 1 else "")
             + ", zero initial state, float64",
             "  l_T: the last step's term of the loss L (the mean cross-entropy over all T*B outputs)",
             "  |.|: L2 norm over one sequence's state" + (f", geometric mean over {B} sequences" if B > 1 else "")
             + (f"; layer {L} of {L} (the top)" if L > 1 else ""),
             "  s(J): largest singular value of the step's Jacobian, "
             + ("exact (SVD)" if iterations is None else f"by {iterations} power iterations per step (from below)"),
             ""]
    widths = [max(11, len(h)) for h, _, _ in cols]
    lines.append(f"{'k=T-t':>6} {'t':>5}  " + "  ".join(f"{h:>{w}}" for (h, _, _), w in zip(cols, widths)))
    for k in log_spaced(T):
        lines.append(f"{k:>6} {T - k:>5}  " + "  ".join(
            f"{v[k]:>{w}.3e}" if kind == "grad" else f"{v[k]:>{w}.4f}" for (_, v, kind), w in zip(cols, widths)))
    per_step = []
    for (_, v, kind), w in zip(cols, widths):
        r = rate(v) if kind == "grad" else (float(geometric_mean(v[:-1])) if T > 1 else float("nan"))
        per_step.append("-".rjust(w) if not np.isfinite(r) else f"{r:>{w}.4f}")
    lines.append(f"{'per step':>12}  " + "  ".join(per_step))
    lines.append("  per step: the gradients' mean factor per step, (value at k=T-1 / value at k=0)^(1/(T-1))\n"
                 "  (from k=1 for dC, zero at k=0); for s, its geometric mean over t = T..2, whose power bounds that factor")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- the plot
def _write_plot(path, results, T, B):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker as ticker

    ncol = 1 if len(results) < 3 else 2
    rows = -(-len(results) // ncol)  # the legend's, under the panels
    height = 3.8 + 0.22 * rows
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, height))
    for i, (label, flow) in enumerate(results):
        color = f"C{i}"
        g = geometric_mean(flow.dlast_dstate[-1])
        sigma = geometric_mean(flow.jac_state[-1])
        k = flow.k
        name = label + (f" — state ({', '.join(flow.states)})" if len(flow.states) > 1 else "")
        left.plot(k, np.where(g > 0, g, np.nan), color=color, label=name)
        bound = g[0] * np.concatenate([[1.0], np.cumprod(sigma[:-1])])  # ‖g_T‖·Π σ(J_t) for t = T..t+1
        left.plot(k, np.where(bound > 0, bound, np.nan), color=color, linestyle="--", linewidth=1)
        right.plot(k, sigma, color=color, label=name)
    left.set_yscale("log")
    left.set_xlabel("k = T - t (steps back from the last)")
    left.set_ylabel(r"$\|\partial \ell_T / \partial s_t\|$")
    left.set_title("the gradient of the last step's loss at the state $s_t$\n"
                   "(dashed: its value at k = 0 times the product of the Jacobian norms)", fontsize=9)
    right.set_yscale("log")
    right.set_xlabel("k = T - t")
    right.set_ylabel(r"$\sigma_{\max}(\partial s_t / \partial s_{t-1})$")
    right.set_title("each step's Jacobian norm\n(the state $s_t$ is $H_t$, or $(H_t, C_t)$ for the LSTM)", fontsize=9)
    right.axhline(1.0, color="gray", linewidth=0.8, linestyle=":")
    lo, hi = right.get_ylim()
    subs = range(1, 10) if hi / lo < 10 else (1.0, 2.0, 5.0)  # label a narrow range more densely
    right.yaxis.set_major_locator(ticker.LogLocator(base=10, subs=subs))
    right.yaxis.set_major_formatter(ticker.FuncFormatter(lambda y, _: f"{y:g}"))
    right.yaxis.set_minor_formatter(ticker.NullFormatter())
    for ax in (left, right):
        ax.grid(True, which="major", alpha=0.3)
    handles, labels = right.get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=ncol, fontsize=8, frameon=False)
    fig.suptitle(f"gradient flow through time (T = {T}" + (f", geometric mean over {B} sequences" if B > 1 else "")
                 + ")", fontsize=11)
    fig.tight_layout(rect=(0, (0.1 + 0.2 * rows) / height, 1, 1))
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=80))
    plt.close(fig)
