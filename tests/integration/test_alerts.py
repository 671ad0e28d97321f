"""Alerts against real servers on loopback: an HTTP server taking webhooks (generic JSON, Slack and
Teams shapes) and an SMTP server (aiosmtpd). Failure, recovery and slow-run alerts, each recorded on
its run; a channel that cannot be reached is recorded as failed without touching the run; secrets
(the webhook URL's token, the SMTP password) never reach logs, errors or listings."""

from __future__ import annotations

import datetime as dt
import json
import logging
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update
from tests.cli_helpers import init_project

from flowforge.core.context import Context
from flowforge.errors import ConfigError
from flowforge.metadata.tables import runs

TOKEN = "T0KEN-slack-abcdef-never-logged"
SMTP_PASSWORD = "smtp-Secret-never-logged"
GOOD = "SELECT 1 AS x"
BAD = "SELECT no_such_column FROM (SELECT 1 AS x)"


class Hooks:
    """Webhook requests received, by path; a path ending in /broken answers 500."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict[str, Any], dict[str, str]]] = []
        hooks = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                hooks.received.append((self.path, json.loads(body), dict(self.headers)))
                self.send_response(500 if self.path.endswith("/broken") else 200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def at(self, path: str) -> list[dict[str, Any]]:
        return [body for p, body, _ in self.received if p == path]


@pytest.fixture
def hooks() -> Iterator[Hooks]:
    server = Hooks()
    yield server
    server.server.shutdown()


@pytest.fixture
def smtp() -> Iterator[list[Any]]:
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult, LoginPassword

    class Inbox:
        def __init__(self) -> None:
            self.messages: list[Any] = []

        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            from email import message_from_bytes

            self.messages.append((envelope.rcpt_tos, message_from_bytes(envelope.content)))
            return "250 OK"

    def check(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        ok = isinstance(data, LoginPassword) and data.login == b"flowforge" and data.password == SMTP_PASSWORD.encode()
        return AuthResult(success=ok)

    inbox = Inbox()
    with socket.socket() as probe:  # a free port (the controller checks it can connect, so not port 0)
        probe.bind(("127.0.0.1", 0))
        inbox.port = probe.getsockname()[1]  # type: ignore[attr-defined]
    controller = Controller(inbox, hostname="127.0.0.1", port=inbox.port,  # type: ignore[attr-defined]
                            authenticator=check, auth_require_tls=False)
    controller.start()
    yield inbox  # type: ignore[misc]
    controller.stop()


def body(mail: Any) -> str:
    return str(mail.get_payload(decode=True).decode())


def workflow(project: Path, sql: str, alerts: str = "") -> None:
    (project / "workflows" / "nightly.yml").write_text(
        f"name: nightly\njobs:\n  - {{name: report, kind: gold, tables: [{{target: gold_report, sql: '{sql}'}}]}}\n"
        + alerts, encoding="utf-8")


@pytest.fixture
def project(tmp_path: Path, hooks: Hooks, smtp: Any) -> Path:
    folder = init_project(tmp_path / "p")
    (folder / ".env").write_text(f"SLACK_URL={hooks.url}/services/{TOKEN}\nSMTP_PASSWORD={SMTP_PASSWORD}\n")
    with (folder / "flowforge.yml").open("a") as fh:
        fh.write(f"""
alert_channels:
  ops_slack: {{type: webhook, url: "${{SLACK_URL}}", format: slack, events: [failure, recovery]}}
  dba_mail:
    type: email
    host: 127.0.0.1
    port: {smtp.port}
    security: none
    username: flowforge
    password: "${{SMTP_PASSWORD}}"
    sender: flowforge@bank.example
    to: [dba@bank.example, oncall@bank.example]
""")
    return folder


def test_failure_and_recovery_reach_slack_and_email_and_are_recorded(project: Path, hooks: Hooks, smtp: Any,
                                                                      caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    workflow(project, BAD, "alerts:\n  - {when: [failure, recovery], notify: [dba_mail]}\n")
    with Context.open(project) as ctx:
        failed = ctx.run("nightly")
        assert failed.status == "failed"
        slack = hooks.at(f"/services/{TOKEN}")
        assert len(slack) == 1 and "nightly failed (run 1)" in slack[0]["text"] and "no_such_column" in slack[0]["text"]
        assert len(smtp.messages) == 1
        recipients, mail = smtp.messages[0]
        assert recipients == ["dba@bank.example", "oncall@bank.example"]
        assert mail["Subject"] == "FlowForge: workflow nightly failed (run 1)" and "no_such_column" in body(mail)
        recorded = {(a.channel, a.event, a.status) for a in ctx.alerts.for_run(failed.run_id)}
        assert recorded == {("ops_slack", "failure", "sent"), ("dba_mail", "failure", "sent")}
        assert ctx.alerts.after_run(failed.run_id) and len(hooks.received) == 1  # each alert once

        workflow(project, GOOD, "alerts:\n  - {when: [failure, recovery], notify: [dba_mail]}\n")
        ok = ctx.run("nightly")
        assert ok.status == "success"
        assert "nightly recovered (run 2)" in hooks.at(f"/services/{TOKEN}")[1]["text"]
        assert "Previous run 1 was failed" in body(smtp.messages[1][1])
        assert {a.event for a in ctx.alerts.for_run(ok.run_id)} == {"recovery"}
        assert ctx.run("nightly").status == "success"  # success after success: nobody is told
        assert len(hooks.received) == 2 and len(smtp.messages) == 2
        shown = json.dumps([s.__dict__ for s in ctx.alerts.summaries()], default=str)
    logged = caplog.text
    for secret in (TOKEN, SMTP_PASSWORD):
        assert secret not in logged and secret not in shown


def test_a_slow_run_alerts_in_the_teams_and_json_shapes(project: Path, hooks: Hooks) -> None:
    workflow(project, GOOD, "alerts:\n  - {when: [slow], slow_factor: 3, notify: [teams, generic]}\n")
    with Context.open(project) as ctx:
        ctx.alerts.save_channel("teams", {"type": "webhook", "url": f"{hooks.url}/teams", "format": "teams"})
        ctx.alerts.save_channel("generic", {"type": "webhook", "url": f"{hooks.url}/json",
                                            "headers": {"X-Api-Key": "k-123"}})
        history = [ctx.run("nightly").run_id for _ in range(5)]
        starts = {run_id: ctx.metadata.get_run(run_id).started_at for run_id in history}
        with ctx.metadata.engine.begin() as conn:  # those five took a microsecond each: any real run is slower
            for run_id, start in starts.items():
                conn.execute(update(runs).where(runs.c.id == run_id).values(ended_at=start + dt.timedelta(
                    microseconds=1)))
        assert hooks.received == []
        run = ctx.run("nightly")
        card = hooks.at("/teams")[0]["attachments"][0]
        assert card["contentType"] == "application/vnd.microsoft.card.adaptive"
        assert "nightly ran slowly" in card["content"]["body"][0]["text"]
        generic = hooks.at("/json")[0]
        assert generic["event"] == "slow" and generic["run_id"] == run.run_id and "median" in generic["detail"]
        assert next(h for p, _, h in hooks.received if p == "/json")["X-Api-Key"] == "k-123"


def test_an_unreachable_channel_is_recorded_as_failed_and_the_run_keeps_its_status(project: Path,
                                                                                     hooks: Hooks) -> None:
    workflow(project, BAD, "alerts:\n  - {when: [failure], notify: [broken, refused]}\n")
    with Context.open(project) as ctx:
        ctx.alerts.save_channel("broken", {"type": "webhook", "url": f"{hooks.url}/hooks/{TOKEN}/broken"})
        ctx.alerts.save_channel("refused", {"type": "webhook", "url": "http://127.0.0.1:9/nothing-listens"})
        run = ctx.run("nightly")
        assert run.status == "failed"
        alerts = {a.channel: a for a in ctx.alerts.for_run(run.run_id)}
        assert alerts["broken"].status == "failed" and "HTTP 500" in (alerts["broken"].detail or "")
        assert alerts["refused"].status == "failed" and "refused" in (alerts["refused"].detail or "").lower()
        assert all(TOKEN not in (a.detail or "") for a in alerts.values())


def test_channel_settings_are_checked_and_secrets_stored_encrypted(project: Path) -> None:
    with Context.open(project) as ctx:
        for url, reason in (("file:///etc/passwd", "https:// or http://"), ("gopher://x/1", "https:// or http://"),
                            ("https://user:pw@hooks.example/x", "credentials")):
            with pytest.raises(ConfigError, match=reason):
                ctx.alerts.save_channel("evil", {"type": "webhook", "url": url})
        with pytest.raises(ConfigError, match="e-mail address"):
            ctx.alerts.save_channel("mail", {"type": "email", "host": "smtp.example", "sender": "x",
                                             "to": ["a@b.example"]})
        with pytest.raises(ConfigError, match=r"flowforge\.yml"):
            ctx.alerts.save_channel("ops_slack", {"type": "webhook", "url": "https://hooks.example/x"})
        ctx.alerts.save_channel("stored", {"type": "webhook", "url": f"https://hooks.example/services/{TOKEN}",
                                           "format": "slack", "events": ["failure"]})
        record = ctx.metadata.alerts.get_channel("stored")
        assert record is not None and TOKEN not in json.dumps(record.options) and TOKEN not in (record.secret or "")
        ctx.alerts.save_channel("stored", {"type": "webhook", "format": "teams"})  # URL left out: kept
        assert ctx.alerts.channel("stored").url.get_secret_value().endswith(TOKEN)  # type: ignore[attr-defined]
        summary = next(s for s in ctx.alerts.summaries() if s.name == "stored")
        assert summary.where == "teams webhook to https://hooks.example" and TOKEN not in str(summary)
        assert all(TOKEN not in str(a.after) for a in ctx.audit_log(20, object_type="alert_channel"))
