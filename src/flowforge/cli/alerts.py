"""``flowforge alerts ...``: alert channels (webhooks, e-mail) and a test send."""


import sys
from typing import Annotated, Any

import typer

from flowforge.cli.common import _context

alerts_app = typer.Typer(help="Alert channels: webhooks (JSON, Slack, Teams) and e-mail (secrets stored encrypted).",
                         no_args_is_help=True)
NameArg = Annotated[str, typer.Argument(help="Channel name.")]


@alerts_app.command("list")
def list_() -> None:
    """Channels with kind, destination host and project-wide events; never a secret."""
    from flowforge.cli import output

    with _context() as ctx:
        rows = [{"channel": c.name, "kind": c.kind, "to": c.where, "events (all workflows)": ", ".join(c.events),
                 "slow factor": f"{c.slow_factor:g}", "defined in": c.source} for c in ctx.alerts.summaries()]
    output.records(rows, ["channel", "kind", "to", "events (all workflows)", "slow factor", "defined in"],
                   title="Alert channels")


@alerts_app.command("add")
def add(name: NameArg,
        type_: Annotated[str, typer.Option("--type", help="webhook or email")],
        url: Annotated[bool, typer.Option("--url", help="Prompt for the webhook URL (it holds Slack's and Teams' "
                                          "tokens, so it is never given on the command line).")] = False,
        url_stdin: Annotated[bool, typer.Option(help="Read the webhook URL from standard input.")] = False,
        format_: Annotated[str | None, typer.Option("--format", help="json, slack or teams (webhook).")] = None,
        event: Annotated[list[str] | None, typer.Option("--event", help="failure, recovery or slow: send these "
                                                        "events of every workflow (repeat it).")] = None,
        slow_factor: Annotated[float | None, typer.Option(help="'slow' above this many times the median.")] = None,
        host: Annotated[str | None, typer.Option(help="SMTP server (email).")] = None,
        port: Annotated[int | None, typer.Option(help="SMTP port (email).")] = None,
        security: Annotated[str | None, typer.Option(help="starttls, ssl or none (email).")] = None,
        username: Annotated[str | None, typer.Option(help="SMTP login (email).")] = None,
        password: Annotated[bool, typer.Option("--password", help="Prompt for the SMTP password.")] = False,
        sender: Annotated[str | None, typer.Option(help="From address (email).")] = None,
        to: Annotated[list[str] | None, typer.Option("--to", help="Recipient (email; repeat it).")] = None,
        test: Annotated[bool, typer.Option("--test/--no-test", help="Send a test alert after saving.")] = False,
        ) -> None:
    """Store a channel; its URL, header values and password are encrypted with the project's key."""
    from flowforge.cli import output

    data: dict[str, Any] = {"type": type_}
    for key, value in (("format", format_), ("slow_factor", slow_factor), ("host", host), ("port", port),
                       ("security", security), ("username", username), ("sender", sender)):
        if value is not None:
            data[key] = value
    if event:
        data["events"] = event
    if to:
        data["to"] = to
    if url_stdin:
        data["url"] = sys.stdin.readline().strip()
    elif url:
        data["url"] = typer.prompt("Webhook URL", hide_input=True)
    if password:
        data["password"] = typer.prompt("SMTP password", hide_input=True)
    with _context() as ctx:
        summary = ctx.alerts.save_channel(name, data)
        output.info(f"saved alert channel '{summary.name}': {summary.where}")
        if test:
            output.info(f"test alert: {ctx.alerts.test_channel(name)}")


@alerts_app.command("remove")
def remove(name: NameArg) -> None:
    """Delete a stored channel (workflows naming it then fail validation)."""
    from flowforge.cli import output

    with _context() as ctx:
        ctx.alerts.remove_channel(name)
    output.info(f"removed alert channel '{name}'")


@alerts_app.command("test")
def test(name: NameArg) -> None:
    """Send a test alert through a channel now."""
    from flowforge.cli import output

    with _context() as ctx:
        output.info(f"sent: {ctx.alerts.test_channel(name)}")
