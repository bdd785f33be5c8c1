"""Where service sockets live, and finding them again.

Default socket: ``$XDG_RUNTIME_DIR/otrace/<program>-<pid>.sock``, else
``/tmp/otrace-<uid>/<program>-<pid>.sock``.  The directory is created 0700 and must belong to
us (a directory someone else owns or can write to is refused, so nobody can plant a socket
for our consoles to talk to); the socket is made 0600.  Sockets of processes that have ended
are removed when a new service starts in the same directory, and a path whose process is
alive is never taken over.

Thread safety: plain functions; any thread.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import stat
import sys

from otrace.errors import OTraceError

SUFFIX = ".sock"
AUDIT_SUFFIX = ".audit.log"
_NAME = re.compile(r"^(?P<program>.+)-(?P<pid>\d+)\.sock$")


class SocketPathError(OTraceError):
    """A socket directory or path cannot be used safely."""


def socket_dir() -> str:
    """The directory for this user's sockets (not created)."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and os.path.isdir(runtime):
        return os.path.join(runtime, "otrace")
    return os.path.join("/tmp", f"otrace-{os.getuid()}")


def program_name() -> str:
    """A short name for this program: the main script's (or module's) base name."""
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None) or (sys.argv[0] if sys.argv else "")
    spec = getattr(main, "__spec__", None)
    if spec is not None and getattr(spec, "name", None) and spec.name != "__main__":
        name = spec.name.rsplit(".", 1)[-1]
        name = spec.name.split(".")[0] if name == "__main__" else name
    else:
        name = os.path.splitext(os.path.basename(path or ""))[0]
    name = re.sub(r"[^\w.+-]", "_", name)
    # ``python -c ...`` (argv[0] is ``-c``), ``python -`` or nothing: just "python"
    return name if name and not name.startswith("-") else "python"


def default_socket_path(program: str | None = None, pid: int | None = None) -> str:
    name = program or program_name()
    return os.path.join(socket_dir(), f"{name}-{pid or os.getpid()}{SUFFIX}")


def ensure_private_dir(path: str) -> None:
    """Create ``path`` 0700 if needed; refuse one we do not own or others can write to."""
    with contextlib.suppress(FileExistsError):
        os.makedirs(path, mode=0o700)
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode):
        raise SocketPathError(f"{path} is not a directory")
    if st.st_uid != os.getuid():
        raise SocketPathError(f"{path} belongs to uid {st.st_uid}, not to us")
    if st.st_mode & 0o022:
        raise SocketPathError(f"{path} is writable by others (mode {st.st_mode & 0o777:o})")


def parse_name(path: str) -> tuple[str, int] | None:
    """(program, pid) from a default socket name, if it is one."""
    m = _NAME.match(os.path.basename(path))
    return (m["program"], int(m["pid"])) if m else None


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def socket_in_use(path: str, timeout: float = 1.0) -> bool:
    """Whether something accepts connections on the UNIX socket ``path``."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        try:
            s.connect(path)
        except (ConnectionRefusedError, FileNotFoundError):
            return False
        except OSError:
            return True  # e.g. permission denied: someone's live socket
        return True


def prepare_socket_path(path: str) -> None:
    """Make ``path`` free for a new socket: remove a stale one, never a live one."""
    if not os.path.lexists(path):
        return
    st = os.lstat(path)
    if not stat.S_ISSOCK(st.st_mode):
        raise SocketPathError(f"{path} exists and is not a socket")
    if socket_in_use(path):
        raise SocketPathError(f"{path} is in use by a live process")
    os.unlink(path)


def clean_stale(directory: str) -> list[str]:
    """Remove sockets of dead processes in ``directory`` (their audit logs stay, as records)."""
    removed: list[str] = []
    try:
        names = os.listdir(directory)
    except OSError:
        return removed
    for name in names:
        parsed = parse_name(name)
        if parsed is None or pid_alive(parsed[1]):
            continue
        path = os.path.join(directory, name)
        if socket_in_use(path, timeout=0.2):
            continue  # a live process in another pid namespace
        with contextlib.suppress(OSError):
            os.unlink(path)
            removed.append(path)
    return removed


def list_sockets(directory: str | None = None) -> list[str]:
    """Socket paths in ``directory`` (default: :func:`socket_dir`), sorted."""
    directory = directory or socket_dir()
    try:
        names = sorted(os.listdir(directory))
    except OSError:
        return []
    return [os.path.join(directory, n) for n in names if n.endswith(SUFFIX)]
