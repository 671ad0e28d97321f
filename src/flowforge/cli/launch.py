"""The ``flowforge`` entry point: hand the command to a warm daemon when one runs, else run it here.

A command spends 0.5 to 0.9 s importing pyarrow, deltalake, SQLAlchemy, pydantic and FlowForge before
its own work (often 0.1 to 0.3 s). ``flowforge daemon start`` keeps one process with all of that
imported; for the commands in :data:`DELEGATED`, this module (standard library only) connects to
it, and the daemon forks a child that runs the command exactly as this process would have: the
child gets this process's arguments, environment, working directory, umask, resource limits and
scheduling priority, and its standard input, output and error themselves (the file descriptors,
passed over the socket), so terminals, pipes, prompts on stdin, colours, exit codes and secrets
from the environment behave as before. Ctrl-C and termination signals are passed on to the
child's process group. What the child cannot take on is the caller's cgroup (a container's or a
systemd unit's memory and CPU limits): commands that must run inside one run without the daemon.

The socket lives in a directory only this user can enter (:func:`runtime_dir` checks owner and
mode before anything is sent: the environment carries credentials), and the daemon accepts
connections from its own user only. A daemon of another installation (interpreter, import path or
FlowForge version) has another socket name; one whose code changed on disk since it started
refuses and exits. Whenever the daemon is absent, refuses or cannot be reached, the command runs
here as if no daemon existed. ``FLOWFORGE_NO_DAEMON=1`` skips it; with ``FLOWFORGE_DAEMON=auto``
a command that finds none starts one in the background (and runs here itself).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import socket
import stat
import struct
import sys

RUNTIME_ENV = "FLOWFORGE_RUNTIME_DIR"
SKIP_ENV = "FLOWFORGE_NO_DAEMON"
AUTO_ENV = "FLOWFORGE_DAEMON"  # "auto": a command that finds no daemon starts one for the commands after it
# Commands that never prompt on a terminal (a forked child has no controlling terminal, so a hidden
# prompt could not hide its input) and end by themselves (servers keep their own process).
DELEGATED = frozenset({"run", "ingest", "validate", "runs", "query", "lineage", "export", "test", "schedules",
                       "cancel", "rerun", "backfill", "optimize", "vacuum", "tables"})
_VALUE_OPTIONS = frozenset({"-p", "--project"})
# (SIGHUP and SIGQUIT exist on POSIX only; on Windows, which cannot fork, no command is handed over)
_FORWARDED = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT")
                   if hasattr(signal, name))


def main() -> None:
    if not _delegated(sys.argv[1:]):
        from flowforge.cli.main import app

        app(prog_name="flowforge")


class UnsafeRuntimeDir(Exception):
    """The daemon's socket directory is not this user's own, private directory."""


def runtime_dir(create: bool = False) -> str:
    """The directory of this user's daemon sockets: ``$FLOWFORGE_RUNTIME_DIR``, else
    ``$XDG_RUNTIME_DIR/flowforge``, else ``/tmp/flowforge-<uid>``. It must be a real directory owned
    by this user that no one else may enter; anything else raises :class:`UnsafeRuntimeDir` (another
    local user could have made it to catch the environment sent through it)."""
    path = os.environ.get(RUNTIME_ENV) or (
        os.path.join(os.environ["XDG_RUNTIME_DIR"], "flowforge") if os.environ.get("XDG_RUNTIME_DIR")
        else os.path.join("/tmp", f"flowforge-{os.getuid()}"))
    if create:
        with contextlib.suppress(FileExistsError):
            os.mkdir(path, 0o700)
    info = os.lstat(path)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise UnsafeRuntimeDir(f"{path} must be a directory owned by uid {os.getuid()} with mode 0700 "
                               f"(it is uid {info.st_uid}, mode {stat.filemode(info.st_mode)}); "
                               f"remove it or set {RUNTIME_ENV}")
    return path


def installation_key(path: list[str] | None = None) -> str:
    """What a daemon must share with a command to run it: the interpreter, the import path (but its
    first entry, the script's or working directory, which the child takes from the command) and
    FlowForge's version."""
    from flowforge import __version__

    parts = [sys.executable, __version__, *(path if path is not None else sys.path)[1:]]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]


def socket_path(directory: str) -> str:
    return os.path.join(directory, f"daemon-{installation_key()}.sock")


def spawn(directory: str, idle: float) -> None:
    """Start the daemon in the background, in this process's environment and directory (relative or
    empty PYTHONPATH entries then resolve alike, so its installation key is this process's). A
    second daemon of the same installation exits at once (the first holds its lock)."""
    import subprocess

    with open(os.path.join(directory, "daemon.log"), "a") as log:
        subprocess.Popen([sys.executable, "-m", "flowforge.cli.daemon", str(idle)], stdin=subprocess.DEVNULL,
                         stdout=log, stderr=log, start_new_session=True)


def send_message(sock: socket.socket, message: dict[str, object], fds: list[int] | None = None) -> None:
    data = json.dumps(message).encode()
    header = struct.pack("!I", len(data))
    if fds:
        socket.send_fds(sock, [header], fds)
    else:
        sock.sendall(header)
    sock.sendall(data)


def command_word(args: list[str]) -> str | None:
    """The command word after the global options (``--debug``, ``-p DIR``)."""
    skip = False
    for arg in args:
        if skip:
            skip = False
        elif arg in _VALUE_OPTIONS:
            skip = True
        elif not arg.startswith("-"):
            return arg
    return None


def _delegated(args: list[str]) -> bool:
    """Run the command in the daemon when one can take it; False means: run it here."""
    if os.environ.get(SKIP_ENV) or command_word(args) not in DELEGATED or not hasattr(os, "fork"):
        return False
    try:
        path = socket_path(runtime_dir(create=os.environ.get(AUTO_ENV) == "auto"))
    except (OSError, UnsafeRuntimeDir):
        return False
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(path)
    except OSError:
        if os.environ.get(AUTO_ENV) == "auto":
            spawn(os.path.dirname(path), 3600)
        return False
    child = _Child()
    ignored = [int(signum) for signum in _FORWARDED if signal.getsignal(signum) == signal.SIG_IGN]
    for signum in _FORWARDED:  # from now on, a Ctrl-C belongs to the command wherever it runs
        if signum not in ignored:  # (a background job of a shell ignores SIGINT: so does its command)
            signal.signal(signum, child.forward)
    cwd = -1
    try:
        cwd = os.open(".", os.O_RDONLY | os.O_DIRECTORY)
        umask = os.umask(0)
        os.umask(umask)
        send_message(sock, {"op": "run", "argv": args, "env": dict(os.environ), "umask": umask,
                            "limits": _limits(), "priority": os.getpriority(os.PRIO_PROCESS, 0), "ignored": ignored,
                            "path0": sys.path[0], "key": installation_key()}, [0, 1, 2, cwd])
        reply = sock.makefile("rb")
        first = reply.readline().split()
    except OSError:
        first = []
    finally:
        if cwd >= 0:
            os.close(cwd)
    if len(first) != 2 or first[0] != b"pid":  # refused (changed code, another installation): run here
        sock.close()
        child.release()
        return False
    child.started(int(first[1]))
    _end_as(reply.readline().split())
    return True  # not reached: _end_as exits


def _limits() -> dict[str, tuple[int, int]]:
    """This process's resource limits (``ulimit``), which the command's process takes on."""
    import resource

    return {name: resource.getrlimit(getattr(resource, name)) for name in dir(resource) if name.startswith("RLIMIT_")}


class _Child:
    """Signals for the command's process group, held until the daemon says which group that is."""

    def __init__(self) -> None:
        self.pid = 0
        self.pending: list[int] = []
        self.previous = {signum: signal.getsignal(signum) for signum in _FORWARDED}

    def forward(self, signum: int, _frame: object) -> None:
        if not self.pid:
            self.pending.append(signum)
            return
        with contextlib.suppress(ProcessLookupError):  # it has ended already
            os.killpg(self.pid, signum)

    def started(self, pid: int) -> None:
        self.pid = pid
        for signum in self.pending:
            self.forward(signum, None)

    def release(self) -> None:
        """The command runs here after all: signals act as usual, and one that came meanwhile acts now."""
        for forwarded, handler in self.previous.items():
            signal.signal(forwarded, handler)
        for signum in self.pending:
            signal.raise_signal(signum)


def _end_as(line: list[bytes]) -> None:
    """End this process the way the daemon says the command's process ended."""
    if len(line) != 2 or line[0] != b"exit":
        sys.stderr.write("flowforge: the daemon stopped before the command ended; see 'flowforge daemon status'\n")
        os._exit(1)
    status = int(line[1])
    if os.WIFSIGNALED(status):
        signal.signal(os.WTERMSIG(status), signal.SIG_DFL)
        os.kill(os.getpid(), os.WTERMSIG(status))
    os._exit(os.waitstatus_to_exitcode(status))
