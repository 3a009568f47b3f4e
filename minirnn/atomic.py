"""Write files so that a crash never leaves a torn one: temp file, fsync, rename."""
import os
import tempfile

from .errors import UsageError


def atomic_write(path, write, mode="wb"):
    """Call write(f) on a temporary file beside path, then rename it over path.

    If write raises, path keeps its previous content and the temporary file is removed.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix="." + os.path.basename(path) + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, mode) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, _mode_for(path))  # mkstemp makes 0600; give the file the usual mode
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def check_writable(path, option, fix=None):
    """Fail now, not after 500 epochs, if path cannot be written. fix: advice that
    replaces the default (choose another name or location)."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise UsageError(f"{option} {path}: is a directory; give a file name")
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
