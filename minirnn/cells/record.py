"""What a checkpoint keeps of a cell file, and the check of a file against it.

A checkpoint of a run with --cell PATH records the file's NAME, file name and
sha256, its gates, states and recurrent parameters; never its code, and reading
the checkpoint runs nothing. To resume or generate, the file is given again and
checked here against the record: a different cell is refused, a changed source
only runs with a warning naming both hashes.
"""
from .protocol import CellError


def cell_record(cell, H):
    """What a checkpoint keeps of a cell file: its NAME, file name and sha256, its
    gates, states and recurrent parameters at H. Never its code."""
    return {"name": cell.NAME, "file": cell.file, "sha256": cell.sha256, "gates": list(cell.GATES),
            "states": list(cell.STATES), "params": {k: list(v) for k, v in cell.recurrent_params(H).items()}}


class RecordedCell:
    """A cell as a checkpoint records it: enough to read the checkpoint's arrays
    (GATES, STATES, recurrent_params at the run's H), nothing to run."""

    def __init__(self, record, H):
        ok = (isinstance(record, dict) and {"name", "file", "sha256", "gates", "states", "params"} <= set(record)
              and isinstance(record["name"], str) and all(isinstance(g, str) for g in record["gates"])
              and record["states"][:1] == ["H"] and isinstance(record["params"], dict)
              and all(isinstance(s, list) and all(isinstance(d, int) for d in s) for s in record["params"].values()))
        if not ok:
            raise ValueError("its record of the cell file is malformed")
        self.record, self.H = record, H
        self.NAME, self.GATES, self.STATES = record["name"], tuple(record["gates"]), tuple(record["states"])

    def recurrent_params(self, H):
        if H != self.H:  # only the run's own H is known without the code
            raise ValueError(f"the cell file's parameters are recorded for H={self.H}, not H={H}")
        return {k: tuple(v) for k, v in self.record["params"].items()}

    def __str__(self):
        return self.NAME


def check_against_record(cell, record, H, checkpoint):
    """A loaded cell file against a checkpoint's record: a CellError if its NAME, gates,
    states or parameters differ; a warning (text) if only its source changed, else None."""
    mine = cell_record(cell, H)
    for key, what in (("name", "NAME"), ("gates", "GATES"), ("states", "STATES"), ("params", "parameters")):
        if mine[key] != record[key]:
            raise CellError(f"{cell.path}: its {what} {_show(mine[key])} do not match those of the cell that trained "
                            f"{checkpoint} ({record['file']}: {_show(record[key])}); give the cell file the run used")
    if mine["sha256"] != record["sha256"]:
        return (f"{cell.path} is not the file that trained {checkpoint}: its source changed (sha256 {record['sha256'][:12]} "
                f"then, {mine['sha256'][:12]} now); its names and shapes match, so it runs")
    return None


def _show(value):
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {tuple(v)}" for k, v in value.items()) + "}"
    return repr(tuple(value)) if isinstance(value, list) else repr(value)
