"""Sending one alert: a JSON webhook (generic, Slack-compatible, Teams Adaptive Card) or an e-mail.

Webhooks go out through an opener that speaks only http(s) and follows no redirect (a 3xx is a
failure), so a channel URL cannot be turned into a file read or a hop elsewhere. Errors name the
channel and the HTTP status or socket error, never the URL (Slack and Teams keep their tokens in it).
"""

from __future__ import annotations

import datetime as dt
import json
import smtplib
import ssl
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from email.message import EmailMessage

from flowforge.errors import ConnectionFailed, redact
from flowforge.spec.alerts import ChannelConfig, EmailChannel, WebhookChannel

HEADLINES = {"failure": "failed", "recovery": "recovered", "slow": "ran slowly", "test": "test alert"}


@dataclass(frozen=True)
class AlertMessage:
    event: str
    workflow: str
    run_id: int
    status: str
    trigger: str
    started_at: str
    ended_at: str | None
    seconds: float | None
    error: str | None
    detail: str

    @property
    def title(self) -> str:
        if self.event == "test":
            return f"FlowForge: test alert for channel check ({self.workflow})"
        return f"FlowForge: workflow {self.workflow} {HEADLINES.get(self.event, self.event)} (run {self.run_id})"

    def lines(self) -> list[str]:
        took = f"{self.seconds:.1f} s" if self.seconds is not None else "-"
        out = [f"Status: {self.status}", f"Trigger: {self.trigger}", f"Started: {self.started_at}", f"Took: {took}"]
        if self.detail:
            out.append(self.detail)
        if self.error:
            out.append(f"Error: {self.error[:1500]}")
        return out


def send(channel: ChannelConfig, message: AlertMessage) -> str:
    """Deliver ``message``; returns what the server said (``HTTP 200``); raises ConnectionFailed."""
    if isinstance(channel, WebhookChannel):
        return _webhook(channel, message)
    if isinstance(channel, EmailChannel):
        return _email(channel, message)
    raise TypeError(f"no sender for {type(channel).__name__}")


def payload(channel: WebhookChannel, message: AlertMessage) -> dict[str, object]:
    if channel.format == "slack":  # Slack's mrkdwn needs only &, < and > escaped
        text = "\n".join([message.title, *message.lines()])
        return {"text": text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")}
    if channel.format == "teams":  # an Adaptive Card message: incoming webhooks and Teams Workflows take it
        facts = [{"title": k, "value": v} for k, _, v in (line.partition(": ") for line in message.lines())]
        card = {"$schema": "http://adaptivecards.io/schemas/adaptive-card.json", "type": "AdaptiveCard",
                "version": "1.4", "body": [
                    {"type": "TextBlock", "text": message.title, "weight": "Bolder", "size": "Medium", "wrap": True},
                    {"type": "FactSet", "facts": facts}]}
        return {"type": "message", "attachments": [
            {"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None, "content": card}]}
    return {**asdict(message), "title": message.title}


def _opener() -> urllib.request.OpenerDirector:
    opener = urllib.request.OpenerDirector()
    for handler in (urllib.request.ProxyHandler(), urllib.request.HTTPHandler(),
                    urllib.request.HTTPSHandler(context=ssl.create_default_context()),
                    urllib.request.HTTPDefaultErrorHandler(), urllib.request.HTTPErrorProcessor()):
        opener.add_handler(handler)
    return opener


def _webhook(channel: WebhookChannel, message: AlertMessage) -> str:
    body = json.dumps(payload(channel, message), default=str).encode()
    headers = {"Content-Type": "application/json", "User-Agent": "FlowForge-alerts",
               **{k: v.get_secret_value() for k, v in channel.headers.items()}}
    request = urllib.request.Request(channel.url.get_secret_value(), data=body, headers=headers, method="POST")
    try:
        with _opener().open(request, timeout=channel.timeout) as response:
            return f"HTTP {response.status}"
    except urllib.error.HTTPError as exc:
        raise ConnectionFailed(f"{channel.describe()} answered HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ConnectionFailed(f"{channel.describe()}: {redact(str(reason))}") from None


def _email(channel: EmailChannel, message: AlertMessage) -> str:
    mail = EmailMessage()
    mail["Subject"] = message.title
    mail["From"] = channel.sender
    mail["To"] = ", ".join(channel.to)
    mail["Date"] = dt.datetime.now(dt.UTC).strftime("%a, %d %b %Y %H:%M:%S +0000")
    mail.set_content("\n".join(message.lines()) + "\n")
    try:
        smtp: smtplib.SMTP
        if channel.security == "ssl":
            smtp = smtplib.SMTP_SSL(channel.host, channel.port, timeout=channel.timeout,
                                    context=ssl.create_default_context())
        else:
            smtp = smtplib.SMTP(channel.host, channel.port, timeout=channel.timeout)
        with smtp:
            if channel.security == "starttls":
                smtp.starttls(context=ssl.create_default_context())
            if channel.username and channel.password is not None:
                smtp.login(channel.username, channel.password.get_secret_value())
            refused = smtp.send_message(mail)
    except (smtplib.SMTPException, OSError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConnectionFailed(f"{channel.describe()}: {redact(reason)}") from None
    return f"accepted for {len(channel.to) - len(refused)} of {len(channel.to)} recipient(s)"
