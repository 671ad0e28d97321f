"""``flowforge daemon start|stop|status``: a warm process that starts commands without their imports."""


import datetime as dt
from typing import Annotated, Any

import typer

daemon_app = typer.Typer(
    help="A background process that keeps FlowForge loaded, so run, ingest, runs, tables and the other "
         "non-interactive commands start in a fraction of the time (per user and installation).",
    no_args_is_help=True)


def _describe(answer: dict[str, Any]) -> str:
    started = dt.datetime.fromtimestamp(answer["started"]).strftime("%Y-%m-%d %H:%M:%S")
    pids = f" (pid {', '.join(map(str, answer['pids']))})" if answer.get("pids") else ""
    return (f"pid {answer['pid']}, started {started}, {answer['served']} commands served, "
            f"{answer['running']} running{pids}; stops after {answer['idle']:.0f} s without a command "
            f"(socket {answer['socket']})")


def _ask(op: str, idle: int = 0) -> dict[str, Any] | None:
    """The daemon's answer to ``op`` (start, status, stop; None: none runs). An unsafe socket
    directory, or a daemon that would not start, ends the command with the reason."""
    import os

    from flowforge.cli import output

    if not hasattr(os, "fork"):
        output.error("daemon: commands are forked from the daemon, which needs Linux or macOS")
        raise typer.Exit(1)
    from flowforge.cli import daemon
    from flowforge.cli.launch import UnsafeRuntimeDir

    try:
        return daemon.start(idle) if op == "start" else daemon.request(op)
    except (UnsafeRuntimeDir, RuntimeError) as exc:
        output.error(f"daemon: {exc}")
        raise typer.Exit(1) from None


@daemon_app.command("start")
def start(idle: Annotated[int, typer.Option(help="Stop after this many seconds without a command.", min=1)] = 3600
          ) -> None:
    """Start the daemon (if it is not running) and print its state."""
    from flowforge.cli import output

    answer = _ask("start", idle)
    assert answer is not None
    output.info(f"FlowForge daemon: {_describe(answer)}")


@daemon_app.command("status")
def status() -> None:
    """Whether this installation's daemon runs, and what it did (exit 1 when it does not run)."""
    from flowforge.cli import output

    answer = _ask("status")
    if answer is None:
        output.info("FlowForge daemon: not running ('flowforge daemon start' starts it)")
        raise typer.Exit(1)
    output.info(f"FlowForge daemon: {_describe(answer)}")


@daemon_app.command("stop")
def stop() -> None:
    """Stop the daemon once the commands it is running have ended."""
    from flowforge.cli import output

    answer = _ask("stop")
    if answer is None:
        output.info("FlowForge daemon: not running")
        return
    running = f", after its {answer['running']} running commands end" if answer["running"] else ""
    output.info(f"FlowForge daemon (pid {answer['pid']}) stops{running}")
