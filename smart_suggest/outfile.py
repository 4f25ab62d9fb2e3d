"""The one way smart-suggest writes a file the user named (``-o``, ``backup``, ``export``).

Rules, the same for every command:

* **Never the database.** The open database, its ``-wal``, ``-shm`` and ``-journal`` files are
  refused in every case, ``--force`` or not, whatever name reaches them: the check compares
  the file the name resolves to (symlinks followed, then device and inode, so a hard link is
  caught too) with each protected file.
* **Never an existing file without ``--force``.** A regular file that exists (directly or as
  a symlink's target) is refused unless the caller passes ``force``.
* **Special files are written into, never replaced.** A FIFO (``>(gzip > x.gz)``) or a
  character device (``/dev/null``, ``/dev/stdout``) is opened and written like a stream; a
  symlink writes its target and stays a symlink. Directories, sockets and block devices are
  refused.
* **Regular files are replaced atomically**: the data goes to a temporary file in the same
  folder, is fsynced and renamed over the target, so a reader sees the old file or the
  complete new one. The temporary file is removed on any error, on ctrl+c and on SIGTERM.
  Its name, ``.NAME.smart-suggest-PID.tmp``, lets the next write into that folder remove
  what a SIGKILLed process (whose PID is gone) left behind.
* **Folders** (``export``) are written as a temporary folder beside the target and renamed
  into place at the end: a failure (a full disk) leaves no partial folder to block a retry.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import stat
import tempfile
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from smart_suggest.errors import InputError, SmartSuggestError

#: Files SQLite keeps beside a database: writing over any of them loses committed data.
SIDECARS = ("-wal", "-shm", "-journal")
_TMP_TAG = ".smart-suggest-"
_TMP_RE = re.compile(r"^\..+\.smart-suggest-(\d+)\.tmp(-journal|-wal|-shm)?$")


class Terminated(BaseException):
    """SIGTERM arrived while a file was being written (raised so clean-up code runs)."""


@dataclass(frozen=True, slots=True)
class Target:
    """Where a write goes: ``path`` as given, ``real`` with symlinks resolved, its kind."""

    path: Path
    real: Path
    kind: str  # "new", "file", "fifo", "chardev"

    @property
    def special(self) -> bool:
        return self.kind in ("fifo", "chardev")


def _protected(protect: Iterable[Path | str]) -> tuple[set[Path], set[tuple[int, int]]]:
    names: set[Path] = set()
    inodes: set[tuple[int, int]] = set()
    for given in protect:
        # SQLite names the sidecars after the database's resolved path: both spellings.
        for base in {str(given), os.path.realpath(given)}:
            for suffix in ("", *SIDECARS):
                p = Path(f"{base}{suffix}")
                names.add(Path(os.path.realpath(p)))
                with contextlib.suppress(OSError):
                    st = os.stat(p)
                    inodes.add((st.st_dev, st.st_ino))
    return names, inodes


def check_target(path: Path | str, *, force: bool, protect: Iterable[Path | str] = ()) -> Target:
    """Decide how to write ``path``, or raise ``InputError`` with one line saying why not."""
    path = Path(path)
    real = Path(os.path.realpath(path))
    names, inodes = _protected(protect)
    try:
        st: os.stat_result | None = os.stat(path)
    except FileNotFoundError:
        st = None
    except NotADirectoryError:
        raise InputError(f"{path}: a part of the path is not a folder") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot use this file ({exc.strerror})") from None
    if real in names or (st is not None and (st.st_dev, st.st_ino) in inodes):
        raise InputError(
            f"{path}: is the open database or one of its files; refusing to write over it"
        )
    if real.name.endswith(SIDECARS) and _is_sqlite(_sidecar_base(real)):
        # The WAL, WAL index or journal of another SQLite database (one this process has
        # not opened): writing over it loses or corrupts that database's transactions.
        raise InputError(f"{path}: belongs to the SQLite database beside it; refusing")
    if st is None:
        if not real.parent.is_dir():
            raise InputError(f"{path}: folder {real.parent} does not exist")
        return Target(path, real, "new")
    mode = st.st_mode
    if stat.S_ISDIR(mode):
        raise InputError(f"{path}: is a directory")
    if stat.S_ISFIFO(mode):
        return Target(path, real, "fifo")
    if stat.S_ISCHR(mode):
        return Target(path, real, "chardev")
    if not stat.S_ISREG(mode):
        raise InputError(f"{path}: not a regular file, FIFO or character device; refusing")
    if not force:
        raise InputError(f"{path}: already exists (use --force to overwrite it)")
    return Target(path, real, "file")


def _sidecar_base(real: Path) -> Path:
    for suffix in SIDECARS:
        if real.name.endswith(suffix):
            return real.with_name(real.name[: -len(suffix)])
    return real


def _is_sqlite(path: Path) -> bool:
    try:
        if not path.is_file():
            return False
        # Only for files this process has not opened as a database (those are protected by
        # inode above): closing a descriptor of a file drops the process's locks on it.
        with open(path, "rb") as fh:
            return fh.read(16) == b"SQLite format 3\x00"
    except OSError:
        return False


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_stale(folder: Path) -> list[Path]:
    """Remove temporary files and folders left in ``folder`` by killed smart-suggest writes."""
    removed: list[Path] = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        m = _TMP_RE.match(entry.name)
        if m is None or _pid_alive(int(m.group(1))):
            continue
        p = Path(entry.path)
        with contextlib.suppress(OSError):
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(p)
            else:
                p.unlink()
            removed.append(p)
    return removed


def temp_name(real: Path) -> Path:
    """The temporary name for a write to ``real`` (a pattern :func:`clean_stale` knows).

    Whatever already has the name was left by an earlier process with our PID (reused
    after it died): it is removed.
    """
    tmp = real.with_name(f".{real.name}{_TMP_TAG}{os.getpid()}.tmp")
    if tmp.is_dir() and not tmp.is_symlink():
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        _remove(tmp)
    return tmp


@contextlib.contextmanager
def _sigterm_raises() -> Iterator[None]:
    """While writing, SIGTERM raises ``Terminated`` so that ``finally`` blocks clean up."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _remove(path: Path) -> None:
    for suffix in ("", *SIDECARS):
        with contextlib.suppress(OSError):
            Path(f"{path}{suffix}").unlink()


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _write_error(path: Path, exc: OSError) -> SmartSuggestError:
    reason = exc.strerror or str(exc)
    if exc.errno == 28:  # ENOSPC
        reason = "the disk is full"
    elif exc.errno == 27:  # EFBIG
        reason = "file too large (file size limit)"
    return SmartSuggestError(f"{path}: cannot write ({reason})")


@contextlib.contextmanager
def output_path(
    path: Path | str, *, force: bool = False, protect: Iterable[Path | str] = ()
) -> Iterator[Path]:
    """A path to write the whole output to (by a library that wants a file name).

    Yields a temporary file in the target's folder; on success it is fsynced and renamed
    onto a regular (or new) target, or copied into a FIFO or character device. The
    temporary file goes in every case. For ``backup``, which hands the name to SQLite.
    """
    target = check_target(path, force=force, protect=protect)
    folder = Path(tempfile.gettempdir()) if target.special else target.real.parent
    clean_stale(folder)
    tmp = temp_name(folder / target.real.name)
    with _sigterm_raises():
        try:
            yield tmp
            if target.special:
                _copy_into(tmp, target)
            else:
                _fsync_file(tmp)
                _keep_mode(tmp, target)
                os.replace(tmp, target.real)
                _fsync_dir(target.real.parent)
        except OSError as exc:
            raise _write_error(target.path, exc) from None
        finally:
            _remove(tmp)


def _keep_mode(tmp: Path, target: Target) -> None:
    """A replaced file keeps its permissions (a new one gets the umask's, as usual)."""
    if target.kind == "file":
        with contextlib.suppress(OSError):
            os.chmod(tmp, stat.S_IMODE(os.stat(target.real).st_mode))


def _fsync_file(tmp: Path) -> None:
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _copy_into(tmp: Path, target: Target) -> None:
    with open(tmp, "rb") as src, open(target.real, "wb", buffering=0) as dst:
        shutil.copyfileobj(src, dst, 1 << 20)


@contextlib.contextmanager
def open_output(
    path: Path | str,
    *,
    force: bool = False,
    protect: Iterable[Path | str] = (),
    encoding: str = "utf-8",
) -> Iterator[IO[str]]:
    """A text stream (newlines untranslated, for csv) that writes ``path`` by the rules above."""
    target = check_target(path, force=force, protect=protect)
    with _sigterm_raises():
        if target.special:
            try:
                with open(target.real, "w", encoding=encoding, newline="") as fh:
                    yield fh
            except OSError as exc:
                raise _write_error(target.path, exc) from None
            return
        folder = target.real.parent
        clean_stale(folder)
        tmp = temp_name(target.real)
        try:
            with open(tmp, "x", encoding=encoding, newline="") as fh:
                yield fh
                fh.flush()
                os.fsync(fh.fileno())
            _keep_mode(tmp, target)
            os.replace(tmp, target.real)
            _fsync_dir(folder)
        except OSError as exc:
            raise _write_error(target.path, exc) from None
        finally:
            with contextlib.suppress(OSError):
                tmp.unlink()


@contextlib.contextmanager
def output_folder(path: Path | str, *, protect: Iterable[Path | str] = ()) -> Iterator[Path]:
    """A temporary folder to fill; renamed to ``path`` (new or empty) when the block succeeds."""
    path = Path(path)
    real = Path(os.path.realpath(path))
    names, _inodes = _protected(protect)
    if real in names:
        raise InputError(f"{path}: is the open database or one of its files; refusing")
    if path.exists() or path.is_symlink():
        if not path.is_dir():
            raise InputError(f"{path}: exists and is not a folder")
        if any(path.iterdir()):
            raise InputError(f"{path}: folder is not empty (export into a new or empty folder)")
    elif not real.parent.is_dir():
        raise InputError(f"{path}: folder {real.parent} does not exist")
    clean_stale(real.parent)
    tmp = temp_name(real)
    with _sigterm_raises():
        try:
            tmp.mkdir()
            yield tmp
            _fsync_dir(tmp)
            os.replace(tmp, real)  # onto an empty folder, or a new name
            _fsync_dir(real.parent)
        except OSError as exc:
            raise _write_error(path, exc) from None
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
