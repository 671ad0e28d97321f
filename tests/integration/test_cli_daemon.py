"""``flowforge daemon``: a command handed to the warm daemon behaves exactly as the same command run
alone (arguments, environment, working directory, output, exit code, signals), and the daemon's
socket is never used where another user could have planted one."""

from __future__ import annotations

import os
import re
import resource
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.cdc_project import WORKFLOW, CdcProject
from tests.cli_helpers import init_project

pytestmark = pytest.mark.slow


@pytest.fixture
def runtime() -> Iterator[Path]:
    # a short path of its own: a Unix socket's path is limited to 107 bytes
    folder = Path(tempfile.mkdtemp(prefix="ffd-", dir="/tmp"))
    yield folder
    _flowforge(folder, "daemon", "stop")
    deadline = time.monotonic() + 30
    while any(folder.glob("*.sock")) and time.monotonic() < deadline:
        time.sleep(0.1)
    for path in folder.iterdir():
        path.unlink()
    folder.rmdir()


def _env(runtime: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "FLOWFORGE_NO_DAEMON"}
    return {**env, "FLOWFORGE_RUNTIME_DIR": str(runtime), "COLUMNS": "120", **extra}


def _flowforge(runtime: Path, *args: str, cwd: Path | None = None, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "flowforge", *args], capture_output=True, text=True, timeout=300,
                          env=_env(runtime, **extra), cwd=cwd, check=False)


def _served(runtime: Path) -> int:
    status = _flowforge(runtime, "daemon", "status")
    assert status.returncode == 0, status.stdout + status.stderr
    return int(re.search(r"(\d+) commands served", status.stdout)[1])  # type: ignore[index]


def _bank(tmp_path: Path) -> tuple[Path, Path]:
    project = init_project(tmp_path / "p")
    source = project / "data" / "bank.db"
    with sqlite3.connect(source) as db:
        db.execute("CREATE TABLE accounts (id INTEGER PRIMARY KEY, owner TEXT, balance REAL)")
        db.execute("INSERT INTO accounts VALUES (1, 'Ada', 120.5)")
    return project, source


def test_a_command_handed_to_the_daemon_runs_with_the_callers_directory_and_environment(
        tmp_path: Path, runtime: Path) -> None:
    project, source = _bank(tmp_path)
    started = _flowforge(runtime, "daemon", "start")
    assert started.returncode == 0 and "0 commands served" in started.stdout, started.stdout + started.stderr
    elsewhere = tmp_path / "other_lake"
    # no -p: the project is found from the caller's working directory; the lakehouse comes from the
    # caller's environment, which the daemon's own process never had
    landed = _flowforge(runtime, "ingest", "--from", f"sqlite:///{source}", "--table", "accounts", cwd=project,
                        FLOWFORGE_LAKEHOUSE=str(elsewhere))
    assert landed.returncode == 0, landed.stdout + landed.stderr
    assert "1 read, 1 written" in landed.stdout
    assert (elsewhere / "bronze" / "bronze_accounts" / "_delta_log").is_dir()
    assert not (project / "lakehouse" / "bronze" / "bronze_accounts").exists()
    assert _served(runtime) == 1
    listed = _flowforge(runtime, "tables", cwd=project, FLOWFORGE_LAKEHOUSE=str(elsewhere))
    alone = _flowforge(runtime, "tables", cwd=project, FLOWFORGE_LAKEHOUSE=str(elsewhere), FLOWFORGE_NO_DAEMON="1")
    assert listed.returncode == alone.returncode == 0
    assert listed.stdout == alone.stdout and "bronze_accounts" in listed.stdout  # the same table, the same width
    assert _served(runtime) == 2


def test_errors_and_exit_codes_come_back_as_the_command_alone_gives_them(tmp_path: Path, runtime: Path) -> None:
    project, source = _bank(tmp_path)
    assert _flowforge(runtime, "daemon", "start").returncode == 0
    args = ("-p", str(project), "ingest", "--from", f"sqlite:///{source}", "--table", "no_such_table")
    warm = _flowforge(runtime, *args)
    cold = _flowforge(runtime, *args, FLOWFORGE_NO_DAEMON="1")
    assert warm.returncode == cold.returncode == 1
    assert "no_such_table" in warm.stdout

    def same(text: str) -> str:  # but for clock times, durations and run ids
        return re.sub(r"\d+", "#", text)

    assert same(warm.stdout) == same(cold.stdout) and warm.stderr == cold.stderr
    assert _served(runtime) == 1
    usage = _flowforge(runtime, "runs", "--no-such-option")
    assert usage.returncode == 2 and "No such option" in usage.stderr


def _running(runtime: Path, count: int) -> None:
    deadline = time.monotonic() + 120
    while f"{count} running" not in _flowforge(runtime, "daemon", "status").stdout:
        assert time.monotonic() < deadline, f"the daemon never had {count} commands running"
        time.sleep(0.1)


def _limited() -> None:  # the caller runs under `nice -n 7` and `ulimit -n 555`
    os.nice(7)
    resource.setrlimit(resource.RLIMIT_NOFILE, (555, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))


def test_ctrl_c_and_the_callers_limits_reach_the_command(tmp_path: Path, runtime: Path) -> None:
    events = tmp_path / "events"
    events.mkdir()
    project = CdcProject(tmp_path / "p", {"type": "debezium", "path": str(events)}, files="*.jsonl")
    assert _flowforge(runtime, "daemon", "start").returncode == 0
    caller = subprocess.Popen([sys.executable, "-m", "flowforge", "-p", str(project.root), "run", WORKFLOW,
                               "--follow", "--interval", "0.2"], env=_env(runtime), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, preexec_fn=_limited)
    _running(runtime, 1)
    pid = int(re.search(r"running \(pid (\d+)\)", _flowforge(runtime, "daemon", "status").stdout)[1])  # type: ignore[index]
    assert int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[16]) == 7  # its nice value
    assert re.search(r"Max open files\s+555\s", Path(f"/proc/{pid}/limits").read_text())
    time.sleep(1)  # into its loop of micro-batches
    caller.send_signal(signal.SIGINT)
    out, err = caller.communicate(timeout=60)
    # the follower's own Ctrl-C: it ends after the micro-batch in progress and exits 0, where a caller
    # that did not pass the signal on would die of it (-2) and leave the loop running in the daemon
    assert caller.returncode == 0, (caller.returncode, out, err)
    _running(runtime, 0)


def test_a_killed_caller_ends_its_command(tmp_path: Path, runtime: Path) -> None:
    project = init_project(tmp_path / "p")
    assert _flowforge(runtime, "daemon", "start").returncode == 0
    caller = subprocess.Popen([sys.executable, "-m", "flowforge", "-p", str(project), "query",
                               "SELECT sum(hash(i)) FROM range(10000000000000) t(i)"], env=_env(runtime),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _running(runtime, 1)
    caller.kill()  # a scheduler's timeout or kill -9: the query must not go on unseen in the daemon
    caller.wait(30)
    _running(runtime, 0)


def test_changed_code_is_never_run_by_an_old_daemon(tmp_path: Path, runtime: Path) -> None:
    import flowforge

    tree = tmp_path / "src"  # a copy of FlowForge to change, as an upgrade or a checkout would
    shutil.copytree(Path(flowforge.__file__).parent, tree / "flowforge", ignore=shutil.ignore_patterns("__pycache__"))
    project, source = _bank(tmp_path)
    path = {"PYTHONPATH": str(tree)}
    assert _flowforge(runtime, "daemon", "start", **path).returncode == 0
    args = ("-p", str(project), "ingest", "--from", f"sqlite:///{source}", "--table", "accounts")
    assert _flowforge(runtime, *args, **path).returncode == 0
    assert "1 commands served" in _flowforge(runtime, "daemon", "status", **path).stdout
    assert _flowforge(runtime, "daemon", "status").returncode == 1  # another import path: another daemon
    output = tree / "flowforge" / "cli" / "output.py"
    output.write_text(output.read_text().replace("Finished run", "Finished (edited) run"))
    edited = _flowforge(runtime, *args, **path)
    assert edited.returncode == 0 and "Finished (edited) run" in edited.stdout, edited.stdout + edited.stderr
    deadline = time.monotonic() + 30
    while _flowforge(runtime, "daemon", "status", **path).returncode == 0:
        assert time.monotonic() < deadline, "the daemon kept running with outdated code"
        time.sleep(0.1)


def _socket_of(runtime: Path) -> str:
    probe = subprocess.run([sys.executable, "-c", "import sys; from flowforge.cli.launch import socket_path; "
                            "print(socket_path(sys.argv[1]))", str(runtime)], capture_output=True, text=True,
                           check=True, env=_env(runtime))
    return probe.stdout.strip()


@pytest.mark.parametrize("planted", ["open to all", "a link"])
def test_a_socket_directory_others_could_have_made_is_never_used(tmp_path: Path, runtime: Path, planted: str) -> None:
    project, source = _bank(tmp_path)
    if planted == "open to all":
        used = runtime
        os.chmod(used, 0o777)
    else:
        target = tmp_path / "target"
        target.mkdir(mode=0o700)
        used = Path(tempfile.mkdtemp(prefix="ffl-", dir="/tmp"))
        used.rmdir()
        used.symlink_to(target)
    fake = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)  # someone else's listener, waiting for secrets
    fake.bind(_socket_of(used))
    fake.listen(4)
    fake.settimeout(0.5)
    try:
        refused = _flowforge(used, "daemon", "start")
        assert refused.returncode == 1 and "mode 0700" in refused.stderr
        landed = _flowforge(used, "-p", str(project), "ingest", "--from", f"sqlite:///{source}", "--table", "accounts",
                            FLOWFORGE_SECRET_TOKEN="s3cr3t")
        assert landed.returncode == 0 and "1 written" in landed.stdout  # run here instead
        with pytest.raises(TimeoutError):
            fake.accept()  # nothing, not even a connection, reached it
    finally:
        fake.close()
        os.unlink(_socket_of(used))
        if used != runtime:
            used.unlink()


def test_with_daemon_auto_the_first_command_starts_one_for_the_next(tmp_path: Path, runtime: Path) -> None:
    project, source = _bank(tmp_path)
    args = ("-p", str(project), "ingest", "--from", f"sqlite:///{source}", "--table", "accounts")
    first = _flowforge(runtime, *args, FLOWFORGE_DAEMON="auto")
    assert first.returncode == 0 and "1 written" in first.stdout  # ran alone, and started the daemon
    deadline = time.monotonic() + 120
    while _flowforge(runtime, "daemon", "status").returncode != 0:
        assert time.monotonic() < deadline, "no daemon started"
        time.sleep(0.1)
    assert _served(runtime) == 0
    second = _flowforge(runtime, *args, FLOWFORGE_DAEMON="auto")
    assert second.returncode == 0 and "1 written" in second.stdout
    assert _served(runtime) == 1


def test_two_daemons_of_one_installation_never_run_at_once(runtime: Path) -> None:
    starts = [subprocess.Popen([sys.executable, "-m", "flowforge.cli.daemon", "60"], env=_env(runtime),
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    deadline = time.monotonic() + 120
    while all(p.poll() is None for p in starts):
        assert time.monotonic() < deadline, "neither gave way"
        time.sleep(0.1)
    gave_way = next(p for p in starts if p.poll() is not None)
    assert gave_way.returncode == 1 and "already serves" in gave_way.communicate()[0]
    while _flowforge(runtime, "daemon", "status").returncode != 0:  # the other one serves, once loaded
        assert time.monotonic() < deadline and all(p.poll() in (None, 1) for p in starts), "no daemon serves"
        time.sleep(0.1)


@pytest.mark.parametrize("request_bytes", [b"\x00\x00", b"\xff\xff\xff\xff", b"\x00\x00\x00\x05[1,2]",
                                           b"\x00\x00\x00\x10{\"op\": \"run\"}xx", b"\x00\x00\x00\x04\xff\xfe\xfd\xfc"])
def test_a_malformed_request_is_refused_and_the_daemon_serves_on(tmp_path: Path, runtime: Path,
                                                                request_bytes: bytes) -> None:
    project, source = _bank(tmp_path)
    assert _flowforge(runtime, "daemon", "start").returncode == 0
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as bad:
        bad.settimeout(30)
        bad.connect(_socket_of(runtime))
        bad.sendall(request_bytes)
        bad.shutdown(socket.SHUT_WR)
        assert bad.recv(100) in (b"", b"refused\n")  # closed, nothing run
    landed = _flowforge(runtime, "-p", str(project), "ingest", "--from", f"sqlite:///{source}", "--table", "accounts")
    assert landed.returncode == 0 and "1 written" in landed.stdout
    assert _served(runtime) == 1


def test_a_signal_the_caller_ignores_is_ignored_by_its_command(tmp_path: Path, runtime: Path) -> None:
    """A shell's background job starts with SIGINT ignored; its command, forked by the daemon, too."""
    project = init_project(tmp_path / "p")
    assert _flowforge(runtime, "daemon", "start").returncode == 0
    caller = subprocess.Popen([sys.executable, "-m", "flowforge", "-p", str(project), "query",
                               "SELECT sum(hash(i)) FROM range(10000000000000) t(i)"], env=_env(runtime),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    try:
        _running(runtime, 1)
        status = _flowforge(runtime, "daemon", "status").stdout
        pid = int(re.search(r"running \(pid (\d+)\)", status)[1])  # type: ignore[index]
        found = re.search(r"SigIgn:\s+([0-9a-f]+)", Path(f"/proc/{pid}/status").read_text())
        assert found and int(found[1], 16) & (1 << (signal.SIGINT - 1)), "the command takes Ctrl-C its caller ignores"
    finally:
        caller.terminate()  # SIGTERM is not ignored: passed on, the query ends
        caller.wait(60)
    _running(runtime, 0)
