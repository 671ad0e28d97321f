"""``flowforge daemon``: one process per user and installation that keeps FlowForge and its libraries
imported, and forks a child for each command handed to it (cli/launch.py is the other side and
says what a child inherits from the command).

The daemon only imports: it opens no database, table or thread pool, so every child starts as a
fresh process would, minus the imports. It is single-threaded (forking a process with threads of
its own would copy their locks), serves its own user only (``SO_PEERCRED``), refuses commands
once FlowForge's code or the installed packages changed on disk (and then exits), and exits by
itself after ``idle`` seconds without a command. Its own messages go to ``daemon.log`` beside
the socket; commands' output goes to the commands' own terminals and files.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import importlib
import json
import os
import selectors
import signal
import socket
import struct
import sys
import time
import traceback
from dataclasses import dataclass, field
from typing import Any

from flowforge.cli.launch import command_word, installation_key, runtime_dir, send_message, socket_path, spawn

# What commands import (modules new in sys.modules after runs, ingests, gold jobs, run lists,
# catalog listings, queries and validations); optional drivers that are not installed are skipped.
PRELOAD = ("pyarrow", "pyarrow.parquet", "pyarrow.compute", "deltalake", "duckdb", "numpy", "yaml",
           "sqlalchemy.dialects.sqlite", "sqlalchemy.dialects.postgresql", "sqlglot", "sqlglot.dialects.duckdb",
           "rich.console", "rich.table", "rich._emoji_codes", "typer._adapters", "typer._click.decorators",
           "smtplib", "urllib.request", "statistics", "pwd", "colorsys",
           "flowforge.cli.main", "flowforge.cli.output", "flowforge.core.context", "flowforge.core.alerts",
           "flowforge.core.connections", "flowforge.core.files", "flowforge.core.onboarding", "flowforge.core.roots",
           "flowforge.core.spec_cache", "flowforge.core.sql_console", "flowforge.core.users",
           "flowforge.core.validation", "flowforge.connectors.config", "flowforge.connectors.files.config",
           "flowforge.connectors.files.connector", "flowforge.connectors.sql.sqlite.config",
           "flowforge.connectors.sql.sqlite.connector", "flowforge.connectors.sql.sqlite.convert",
           "flowforge.connectors.sql.postgres.connector", "flowforge.connectors.sql.postgres.config",
           "flowforge.connectors.sql.mysql.connector", "psycopg", "adbc_driver_manager", "adbc_driver_postgresql",
           "concurrent.futures.thread", "flowforge.storage.delta_files", "flowforge.storage.delta_merge",
           "flowforge.runner.executor", "flowforge.runner.jobs", "flowforge.runner.dispatchers",
           "flowforge.runner.notify", "flowforge.runner.refresh", "flowforge.layers.bronze",
           "flowforge.layers.silver", "flowforge.layers.silver_merge", "flowforge.layers.gold",
           "flowforge.layers.discovery", "flowforge.layers.maintenance", "flowforge.lineage.graph",
           "flowforge.lineage.openlineage", "flowforge.metadata.store", "flowforge.metadata.alerts",
           "flowforge.metadata.generation", "flowforge.metadata.quality", "flowforge.quality.evaluate",
           "flowforge.quality.results", "flowforge.storage.delta", "flowforge.storage.maintenance",
           "flowforge.storage.summaries",
           "flowforge.engine.duckdb_engine")
IDLE_SECONDS = 3600
_MAX_MESSAGE = 1 << 20  # an environment larger than 1 MB is not a command's


@dataclass
class _Daemon:
    listener: socket.socket
    path: str
    key: str
    idle: float
    wakeup: tuple[int, int]
    lock: int  # held while this daemon lives; never by its children
    code: tuple[int, int]
    started: float = field(default_factory=time.time)
    served: int = 0
    last: float = field(default_factory=time.monotonic)
    children: dict[int, socket.socket] = field(default_factory=dict)
    stopping: bool = False


def code_stamp() -> tuple[int, int]:
    """(newest modification time, file count) of FlowForge's modules and of the import path's
    package directories (installing or upgrading a package changes its site-packages directory;
    other directories on the path, a working directory among them, change for other reasons)."""
    import flowforge

    newest, count = 0, 0
    for root, _dirs, files in os.walk(os.path.dirname(flowforge.__file__)):
        for name in files:
            if name.endswith(".py"):
                newest = max(newest, os.stat(os.path.join(root, name)).st_mtime_ns)
                count += 1
    for entry in sys.path[1:]:
        if os.path.basename(entry.rstrip(os.sep)) not in ("site-packages", "dist-packages"):
            continue
        with contextlib.suppress(OSError):
            newest = max(newest, os.stat(entry).st_mtime_ns)
    return newest, count


def serve(idle: float = IDLE_SECONDS) -> None:
    """Run the daemon in this process until stopped or idle (``python -m flowforge.cli.daemon``)."""
    directory = runtime_dir(create=True)
    key = installation_key()  # before any import could add to the import path
    path = socket_path(directory)
    lock = os.open(f"{path}.lock", os.O_WRONLY | os.O_CREAT, 0o600)
    try:  # one daemon per installation: a second one (two commands starting one at once) leaves
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise SystemExit(f"a FlowForge daemon already serves {path}") from None
    _preload()
    os.chdir(directory)  # the import path is resolved; keep no user's directory busy
    listener = _listen(path)
    bound = os.stat(path).st_ino
    reader, writer = os.pipe()
    os.set_blocking(writer, False)
    signal.set_wakeup_fd(writer)
    signal.signal(signal.SIGCHLD, lambda *_: None)  # only to wake the loop through the pipe
    daemon = _Daemon(listener, path, key, idle, (reader, writer), lock, code_stamp())
    signal.signal(signal.SIGTERM, lambda *_: setattr(daemon, "stopping", True))
    _log(f"serving {path} (pid {os.getpid()}, installation {key})")
    try:
        _loop(daemon)
    finally:
        with contextlib.suppress(FileNotFoundError):
            if os.stat(path).st_ino == bound:  # not a newer daemon's socket
                os.unlink(path)
        listener.close()
        _log("stopped")


def _preload() -> None:
    """Import what commands import, and nothing else (no call that could keep state of this process)."""
    for name in PRELOAD:
        with contextlib.suppress(ImportError):
            importlib.import_module(name)
    # the table of character widths rich loads by name when it first measures text
    versions: tuple[str, ...] = importlib.import_module("rich._unicode_data").VERSIONS
    importlib.import_module(f"rich._unicode_data.unicode{versions[-1].replace('.', '-')}")
    with contextlib.suppress(Exception):  # the PostgreSQL reader's library, mapped once (15 ms a command)
        import ctypes

        import adbc_driver_postgresql

        ctypes.CDLL(adbc_driver_postgresql._driver_path())
    _build_commands()


def _build_commands() -> None:
    """Typer builds the click command tree of the whole CLI on every call of the app (7-17 ms a
    command); built here once, every child starts with it. Only the daemon's own ``app`` gets the
    built tree, which holds no state of a call (click makes a context per invocation)."""
    import typer.main

    from flowforge.cli.main import app

    build = typer.main.get_command
    built = build(app)

    def get_command(typer_instance: typer.Typer) -> Any:
        return built if typer_instance is app else build(typer_instance)

    typer.main.get_command = get_command


def _listen(path: str) -> socket.socket:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)  # left by a daemon that was killed (a live one would hold the lock)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o177)
    try:
        listener.bind(path)
    finally:
        os.umask(old)
    listener.listen(64)
    return listener


def _loop(daemon: _Daemon) -> None:
    selector = selectors.DefaultSelector()
    selector.register(daemon.listener, selectors.EVENT_READ, "accept")
    selector.register(daemon.wakeup[0], selectors.EVENT_READ, "wakeup")
    while True:
        if daemon.stopping and not daemon.children:
            return
        if not daemon.children and time.monotonic() - daemon.last > daemon.idle:
            _log(f"idle for {daemon.idle:.0f} s")
            return
        for key, _ in selector.select(timeout=1.0):
            if key.data == "accept":
                conn, _addr = daemon.listener.accept()
                _answer(daemon, selector, conn)
            elif key.data == "wakeup":
                with contextlib.suppress(BlockingIOError):
                    os.read(daemon.wakeup[0], 4096)
            else:  # a command's client went away before its child ended: end the child as Ctrl-C would
                selector.unregister(key.fileobj)
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(key.data, signal.SIGTERM)
        _reap(daemon, selector)


def _reap(daemon: _Daemon, selector: selectors.BaseSelector) -> None:
    while daemon.children:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        conn = daemon.children.pop(pid, None)
        daemon.last = time.monotonic()
        if conn is not None:
            with contextlib.suppress(KeyError, ValueError):
                selector.unregister(conn)
            with contextlib.suppress(OSError):
                conn.sendall(f"exit {status}\n".encode())
            conn.close()


def _answer(daemon: _Daemon, selector: selectors.BaseSelector, conn: socket.socket) -> None:
    fds: list[int] = []
    keep = False
    try:
        # Linux tells the peer's uid; elsewhere (macOS) the directory's mode 0700 alone keeps others out
        if hasattr(socket, "SO_PEERCRED"):
            uid = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))[1]
            if uid != os.getuid():
                _log(f"refused a connection of uid {uid}")
                return
        conn.settimeout(10)
        message, fds = _receive(conn)
        op = message.get("op")
        if op == "status":
            send_message(conn, {"pid": os.getpid(), "started": daemon.started, "served": daemon.served,
                                "running": len(daemon.children), "pids": sorted(daemon.children),
                                "idle": daemon.idle, "socket": daemon.path})
        elif op == "stop":
            daemon.stopping = True
            send_message(conn, {"pid": os.getpid(), "running": len(daemon.children)})
        elif op == "run" and len(fds) == 4:
            if daemon.stopping or message.get("key") != daemon.key:
                conn.sendall(b"refused\n")
            elif code_stamp() != daemon.code:
                conn.sendall(b"stale\n")
                _log("FlowForge or its packages changed on disk: stopping")
                daemon.stopping = True
            else:
                pid = _fork(daemon, selector, conn, message, fds)
                conn.sendall(f"pid {pid}\n".encode())
                conn.settimeout(None)
                daemon.children[pid] = conn  # answered with the child's exit status when it ends
                daemon.served += 1
                daemon.last = time.monotonic()
                selector.register(conn, selectors.EVENT_READ, pid)
                keep = True
    except (OSError, ValueError, KeyError, TypeError, struct.error) as exc:  # a bad request ends alone
        _log(f"a request failed: {exc!r}")
    finally:
        for fd in fds:
            os.close(fd)
        if not keep:
            conn.close()


def _receive(conn: socket.socket) -> tuple[dict[str, Any], list[int]]:
    header, fds, _flags, _addr = socket.recv_fds(conn, 4, 4)
    if len(header) < 4:
        header += conn.recv(4 - len(header), socket.MSG_WAITALL)
    (size,) = struct.unpack("!I", header)
    if size > _MAX_MESSAGE:
        raise ValueError(f"message of {size} bytes")
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            raise ValueError("connection closed mid-message")
        data += chunk
    message = json.loads(data)
    if not isinstance(message, dict):
        raise ValueError("not a request")
    return message, list(fds)


def _fork(daemon: _Daemon, selector: selectors.BaseSelector, conn: socket.socket, message: dict[str, Any],
          fds: list[int]) -> int:
    for stream in (sys.stdout, sys.stderr):  # nothing of the daemon's own output is written twice
        stream.flush()
    pid = os.fork()
    if pid == 0:
        try:
            selector.close()
            conn.close()  # the daemon alone answers the command's client
            _become(daemon, message, fds)
        except BaseException:
            traceback.print_exc()  # on the command's stderr once it is in place, else in the daemon's log
        finally:
            os._exit(70)  # only if becoming the command itself failed
    with contextlib.suppress(OSError):  # also done in the child: whichever runs first
        os.setpgid(pid, pid)
    return pid


def _become(daemon: _Daemon, message: dict[str, Any], fds: list[int]) -> None:
    """In the forked child: turn into the command's process, run it and exit with its code."""
    os.setpgid(0, 0)
    signal.set_wakeup_fd(-1)
    for signum in (signal.SIGCHLD, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT):
        signal.signal(signum, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for signum in message.get("ignored") or ():  # what the caller ignores, as Python leaves it ignored
        if signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT):
            signal.signal(signum, signal.SIG_IGN)
    for own in (daemon.listener, *daemon.children.values()):
        own.close()
    for fd in (*daemon.wakeup, daemon.lock):
        os.close(fd)
    for target, fd in enumerate(fds[:3]):
        os.dup2(fd, target)
    os.fchdir(fds[3])
    for fd in fds:
        os.close(fd)
    os.umask(int(message["umask"]))
    _limit(message)
    os.environ.clear()
    os.environ.update({str(k): str(v) for k, v in dict(message["env"]).items()})
    sys.path[0] = str(message["path0"])
    sys.argv = ["flowforge", *[str(a) for a in message["argv"]]]
    with contextlib.suppress(OSError), open("/proc/self/comm", "w") as comm:  # what top and ps -o comm show
        comm.write(f"ff {command_word(sys.argv[1:]) or ''}"[:15])
    sys.stdin = open(0, encoding=sys.stdin.encoding, closefd=False)  # noqa: SIM115  # the process's own streams
    sys.stdout = open(1, "w", buffering=1 if os.isatty(1) else -1, encoding=sys.stdout.encoding,  # noqa: SIM115
                      closefd=False)
    sys.stderr = open(2, "w", buffering=1, encoding=sys.stderr.encoding, errors="backslashreplace",  # noqa: SIM115
                      closefd=False)
    from flowforge import testing
    from flowforge.cli import output
    from flowforge.cli.main import app

    testing.read_environment()
    output.open_consoles()
    code = 0
    try:
        app(prog_name="flowforge")
    except SystemExit as exc:
        code = _exit_code(exc.code)
    except BaseException as exc:  # what the interpreter would do with an uncaught exception (typer's hook included)
        sys.excepthook(type(exc), exc, exc.__traceback__)
        code = 1
        if isinstance(exc, KeyboardInterrupt):  # the interpreter ends by SIGINT then, as shells expect
            code = -signal.SIGINT
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    if code < 0:
        signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    os._exit(code)


def _limit(message: dict[str, Any]) -> None:
    """Take on the caller's resource limits and priority (``ulimit``, ``nice``). One the daemon cannot
    give (a hard limit above its own) stays the daemon's, the lower of the two."""
    import resource

    for name, (soft, hard) in dict(message.get("limits") or {}).items():
        which = getattr(resource, str(name), None)
        if str(name).startswith("RLIMIT_") and isinstance(which, int):
            with contextlib.suppress(ValueError, OSError):
                resource.setrlimit(which, (int(soft), int(hard)))
    if "priority" in message:
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, 0, int(message["priority"]))


def _exit_code(code: object) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    print(code, file=sys.stderr)
    return 1


def _log(message: str) -> None:
    with contextlib.suppress(OSError), open(os.path.join(runtime_dir(), "daemon.log"), "a") as log:
        log.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} [{os.getpid()}] {message}\n")


# -- the commands' side ----------------------------------------------------------------------

def request(op: str) -> dict[str, Any] | None:
    """Ask this installation's daemon for its status or to stop; None when none answers."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(10)
    try:
        sock.connect(socket_path(runtime_dir()))
        send_message(sock, {"op": op})
        header = sock.recv(4, socket.MSG_WAITALL)
        (size,) = struct.unpack("!I", header)
        answer: dict[str, Any] = json.loads(sock.recv(size, socket.MSG_WAITALL))
        return answer
    except (OSError, struct.error, ValueError):
        return None
    finally:
        sock.close()


def start(idle: float) -> dict[str, Any]:
    """Start this installation's daemon in the background; return its status once it answers."""
    running = request("status")
    if running is not None:
        return running
    directory = runtime_dir(create=True)
    spawn(directory, idle)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        answer = request("status")
        if answer is not None:
            return answer
        time.sleep(0.05)
    raise RuntimeError(f"the daemon did not start within 60 s; see {os.path.join(directory, 'daemon.log')}")


if __name__ == "__main__":
    serve(float(sys.argv[1]) if len(sys.argv) > 1 else IDLE_SECONDS)
