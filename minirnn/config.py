"""Every training default in one place, with validation.

The defaults are the book's run: batch 32, 35 steps, 512 hidden units, lr 1,
clip θ = 1, 500 epochs, sequential partitioning, the first 10,000 tokens, letters
mode (a --data file defaults to words mode). The
device defaults to the MINIRNN_DEVICE environment variable, else cpu.
"""
import dataclasses
import math

from .errors import UsageError

from .backend import DEVICES, ENV_VAR, env_device
from .data import TEXT_MODES, default_text_mode
from .cells import CELLS, is_cell_path, shipped_cells
from .model import ACTIVATIONS

CELL_NAMES = tuple(CELLS)


def cell_option(text):
    """--cell's value: a built-in name, or a cell file (a path ending in .py, or a
    shipped one's short name, examples/cifg); the file is loaded where it is used."""
    if text in CELL_NAMES or is_cell_path(text):
        return text
    import argparse
    raise argparse.ArgumentTypeError(f"invalid choice: {text!r} (choose from {', '.join(CELL_NAMES)}, the path of a "
                                     f"cell file ending in .py, or {', '.join(shipped_cells())})")

SAMPLINGS = ("sequential", "random", "reset")
DTYPES = ("float32", "float64")
# Default learning rate of each optimizer (minirnn/optim.py): SGD 1, the book's;
# Adagrad 0.1, min-char-rnn's; Adam 2e-3, char-rnn's for its per-parameter-scaled
# steps (Kingma & Ba's general default is 1e-3).
DEFAULT_LR = {"sgd": 1.0, "adagrad": 0.1, "adam": 2e-3}
OPTIMIZERS = tuple(DEFAULT_LR)


@dataclasses.dataclass(frozen=True)
class Config:
    batch_size: int = 32
    num_steps: int = 35
    num_hiddens: int = 512
    optimizer: str = "sgd"  # sgd | adagrad | adam (minirnn/optim.py)
    lr: float = None  # None: DEFAULT_LR[optimizer], 1 for SGD as in the book
    clip: float = 1.0  # θ of the global-norm clip; 0 turns clipping off
    epochs: int = 500
    sampling: str = "sequential"  # sequential | random | reset (see docs/training.md)
    max_tokens: int = 10000  # 0: the whole text
    heldout_tokens: int = 0  # >0: hold out this many tokens (after the training slice, else the text's last ones)
    eval_tokens: int = 0  # >0: measure on the first N held-out tokens during training, all of them at the end
    seed: int = 0
    device: str = dataclasses.field(default_factory=lambda: env_device() or "cpu")
    data: str = None  # None: the book
    text_mode: str = None  # None: letters for the book, words for a --data file (data.default_text_mode)
    cell: str = "rnn"  # rnn | gru | lstm | the path of a cell file (cells/protocol.py)
    num_layers: int = 1
    embed_size: int = 0  # 0: one-hot input
    activation: str = "tanh"  # the rnn cell's φ: tanh | relu
    dropout: float = 0.0  # on the non-recurrent connections (minirnn/dropout.py)
    detach: bool = True  # False: backpropagate through every earlier window of the epoch
    dtype: str = "float32"
    print_every: int = 10
    sample_prefix: str = None  # None: "time traveller" on the book, else the start of the training text
    sample_temperature: float = None  # None: greedy samples; else q ∝ p^(1/τ)
    progress_seconds: float = 10.0  # inside an epoch, a progress line this often; 0: never
    save_every: int = 0  # 0: save only at the end (and on Ctrl-C)
    eval_every: int = 0  # held-out perplexity every N epochs; 0: at every progress line
    patience: int = 0  # stop after N held-out measurements without improvement; 0: never
    lr_decay: float = 1.0  # multiply the learning rate by this when the held-out perplexity does not improve
    ensemble: int = 1  # >1: select and report the average prediction of the last K measured models
    init_from: str = None  # a checkpoint whose weights start this new run (absolute path); None: init_params

    # Options that may differ between a checkpoint and the run that resumes it.
    # Each change is recorded in the checkpoint's state and the log (docs/runs.md).
    RESUMABLE_CHANGES = ("epochs", "lr", "device", "print_every", "save_every", "progress_seconds", "eval_every",
                         "patience", "sample_prefix", "sample_temperature")

    def __post_init__(self):
        if self.lr is None and self.optimizer in DEFAULT_LR:  # the optimizer's own default
            object.__setattr__(self, "lr", DEFAULT_LR[self.optimizer])
        if self.text_mode is None:
            object.__setattr__(self, "text_mode", default_text_mode(self.data))

    @classmethod
    def from_dict(cls, values):
        """A validated Config; unknown keys are an error that names them."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise UsageError(f"unknown {'option' if len(unknown) == 1 else 'options'} {', '.join(unknown)}; known options: {', '.join(sorted(known))}")
        return cls(**values).validated()

    def to_dict(self):
        return dataclasses.asdict(self)

    def replace(self, **changes):
        return Config.from_dict({**self.to_dict(), **changes})

    def validated(self):
        for name in ("batch_size", "num_steps", "num_hiddens", "epochs", "print_every", "num_layers"):
            _int(name, getattr(self, name), low=1)
        for name in ("max_tokens", "seed", "save_every", "embed_size", "eval_every", "patience", "heldout_tokens",
                     "eval_tokens"):
            _int(name, getattr(self, name), low=0)
        _int("ensemble", self.ensemble, low=1)
        _real("lr", self.lr)
        _real("clip", self.clip)
        _real("progress_seconds", self.progress_seconds)
        if isinstance(self.dropout, bool) or not isinstance(self.dropout, (int, float)) or not 0 <= self.dropout < 1:
            raise UsageError(f"--dropout must be a probability in [0, 1), got {self.dropout!r}")
        if isinstance(self.lr_decay, bool) or not isinstance(self.lr_decay, (int, float)) or not 0 < self.lr_decay <= 1:
            raise UsageError(f"--lr-decay must be a factor in (0, 1] (1 turns decay off), got {self.lr_decay!r}")
        if self.device not in DEVICES and self.device == env_device():
            raise UsageError(f"{ENV_VAR}={self.device!r} is not a device: set it to one of {', '.join(DEVICES)}, "
                             f"or unset it (or give --device)")
        for name, choices in (("sampling", SAMPLINGS), ("device", DEVICES), ("text_mode", TEXT_MODES),
                              ("activation", tuple(ACTIVATIONS)), ("dtype", DTYPES),
                              ("cell", CELL_NAMES), ("optimizer", OPTIMIZERS)):
            if name == "cell" and is_cell_path(self.cell):
                continue
            if getattr(self, name) not in choices:
                raise UsageError(f"{flag_name(name)} must be one of {', '.join(choices)}, got {getattr(self, name)!r}")
        if self.sample_prefix is not None and not (isinstance(self.sample_prefix, str) and self.sample_prefix):
            raise UsageError(f"--sample-prefix must be some text, e.g. --sample-prefix 'the', got {self.sample_prefix!r}")
        if self.sample_temperature is not None and (isinstance(self.sample_temperature, bool) or not isinstance(
                self.sample_temperature, (int, float)) or not 0 < self.sample_temperature < math.inf):
            raise UsageError(f"--sample-temperature must be a finite number > 0, got {self.sample_temperature!r}")
        if self.data is not None and not isinstance(self.data, str):
            raise UsageError(f"--data must be a file path, got {self.data!r}")
        if self.init_from is not None and not (isinstance(self.init_from, str) and self.init_from):
            raise UsageError(f"--init-from must be a checkpoint's path, got {self.init_from!r}")
        if not isinstance(self.detach, bool):
            raise UsageError(f"detach must be true or false, got {self.detach!r}")
        if self.activation != "tanh" and self.cell != "rnn":
            which = f"cell file {self.cell}" if is_cell_path(self.cell) else f"{self.cell} cell"
            raise UsageError(f"--activation {self.activation} applies to --cell rnn only; the {which} has "
                             f"its own nonlinearities, so drop --activation")
        if self.eval_tokens and self.ensemble > 1:
            raise UsageError("--eval-tokens cannot be combined with --ensemble: each snapshot keeps the loss of every "
                             "held-out token it scored, so all must score the same ones; drop one of them "
                             "(or bound the held-out text itself with --heldout-tokens)")
        if not self.detach and self.sampling != "sequential":
            raise UsageError("--no-detach needs --sampling sequential: the other modes reset the state every minibatch")
        return self


# What a checkpoint's weights fix: a run started from them (--init-from) takes these from it.
MODEL_OPTIONS = ("cell", "num_layers", "num_hiddens", "embed_size", "activation")

# Named sets of defaults (--preset NAME); options given beside a preset override it.
PRESETS = {
    # The lowest held-out perplexity on the book found within 15 minutes on 2 CPU cores:
    # the whole book with its last 10% held out (see docs/heldout.md),
    # selected and reported by the ensemble of the last 24 epochs' models.
    # It runs on two BLAS threads unless told (threads.PRESET_THREADS).
    "heldout": {
        "max_tokens": 0, "cell": "lstm", "num_layers": 2, "num_hiddens": 320, "embed_size": 64,
        "dropout": 0.5, "optimizer": "adam", "lr": 3e-3, "batch_size": 32, "num_steps": 32,
        "epochs": 70, "eval_every": 1, "print_every": 1, "patience": 10, "sample_temperature": 0.5, "ensemble": 24,
    },
}


def preset(name, given):
    """The preset's values, overridden by the options given beside it."""
    if name not in PRESETS:
        raise UsageError(f"unknown preset {name!r}: choose one of {', '.join(PRESETS)}")
    return {**PRESETS[name], **given}


def flag_name(name):
    """The command-line option of a Config field: batch_size -> --batch-size."""
    return "--no-detach" if name == "detach" else "--" + name.replace("_", "-")


def _int(name, value, low):
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise UsageError(f"{flag_name(name)} must be an integer >= {low}, got {value!r}")


def _real(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise UsageError(f"{flag_name(name)} must be a finite number >= 0, got {value!r}")
