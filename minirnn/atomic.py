"""Write files so that a crash never leaves a torn one: temp file, fsync, rename."""
import os
import tempfile

from .errors import OutputError, UsageError


def atomic_write(path, write, mode="wb"):
    """Call write(f) on a temporary file beside path, then rename it over path.

    If write raises, path keeps its previous content and the temporary file is removed;
    a failure of the file system (a full disk, a quota) is an OutputError that says so.
    A symbolic link is followed: the file it points to is replaced, the link is kept.
    """
    given = os.fspath(path)
    path = os.path.realpath(given)
    _refuse_special(given, path, "output")
    folder = os.path.dirname(path)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix="." + os.path.basename(path) + ".", suffix=".tmp")
        with os.fdopen(fd, mode) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, _mode_for(path))  # mkstemp makes 0600; give the file the usual mode
        os.replace(tmp, path)
    except BaseException as e:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass
        if isinstance(e, OSError):
            raise OutputError(f"cannot write {given} ({e.strerror or e}); it keeps its previous content, if it had "
                              f"one; free some space or choose another location") from None
        raise


def check_named(paths, *more):
    """A path option given an empty name is a usage error. paths: {option: path};
    more: (option, path) pairs, for an option given several times. None is not given."""
    for option, path in (*paths.items(), *more):
        if path == "":
            raise UsageError(f"{option} needs a file name, got an empty one")


def check_png(path, option):
    """Plots are PNG files: a name that asks for another format is refused."""
    ext = os.path.splitext(os.fspath(path))[1]
    if ext and ext.lower() != ".png":
        raise UsageError(f"{option} {path}: plots are written as PNG; give a name ending in .png")


def _refuse_special(given, path, option):
    """Outputs replace a regular file; a device, pipe or socket in their place is refused.
    Both names are tried: a link such as /dev/stdout may resolve to no path at all
    (pipe:[…]) while the link itself still reaches the pipe."""
    if any(os.path.exists(p) and not os.path.isfile(p) and not os.path.isdir(p) for p in (given, path)):
        raise UsageError(f"{option} {given}: is not a regular file (a device, pipe or socket); minirnn writes "
                         f"a new file and renames it into place, so give the path of a regular file")


def same_file(a, b):
    """Whether the paths a and b name one file (either may not exist yet)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.realpath(a) == os.path.realpath(b)


def check_not_input(outputs, inputs):
    """An output written over an input would destroy the input: a usage error that
    names both. outputs, inputs: {option: path}; empty paths are skipped."""
    for out_option, out in outputs.items():
        for in_option, source in inputs.items():
            if out and source and same_file(out, source):
                raise UsageError(f"{out_option} {out} is the file given to {in_option}: writing it would destroy "
                                 f"it; give {out_option} another path")


def check_writable(path, option, fix=None):
    """Fail now, not after 500 epochs, if path cannot be written. fix: advice that
    replaces the default (choose another name or location)."""
    path = os.fspath(path)
    if not path:
        raise UsageError(f"{option} needs a file name, got an empty one")
    real = os.path.realpath(path)
    folder = os.path.dirname(real)
    if os.path.isdir(path) or path.endswith(os.sep):
        raise UsageError(f"{option} {path}: is a directory; give a file name")
    _refuse_special(path, real, option)
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise UsageError(f"{option} {path}: {folder} is a file, not a directory; choose another location")
    if not os.path.isdir(folder):
        raise UsageError(f"{option} {path}: the directory {folder} does not exist; create it first")
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".minirnn-write-test.")
    except OSError as e:
        raise UsageError(f"{option} {path}: cannot write in {folder} ({e.strerror}); {fix or 'choose another location'}") from None
    os.close(fd)
    os.unlink(tmp)
    if os.path.exists(path) and not os.access(path, os.W_OK):
        raise UsageError(f"{option} {path}: the file exists and is read-only; {fix or 'choose another name'}")


def _mode_for(path):
    """The existing file's mode, else what open() would give a new file (0666 less the umask)."""
    try:
        return os.stat(path).st_mode & 0o777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask
