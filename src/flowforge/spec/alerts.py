"""Alerts: who is told, and when, about runs.

A *channel* is a destination: a webhook (generic JSON, Slack- or Teams-compatible) or e-mail over
SMTP. Channels live in ``flowforge.yml`` under ``alert_channels:`` (secrets as ``${VAR}``) or in the
metadata store (``flowforge alerts add``, the UI), where their secret fields (the webhook URL, which
carries Slack's and Teams' tokens, header values, the SMTP password) are encrypted like connection
secrets. A channel with ``events`` is project-wide: it hears those events of every workflow.

```yaml
# flowforge.yml
alert_channels:
  ops_slack: {type: webhook, url: "${SLACK_WEBHOOK_URL}", format: slack, events: [failure, recovery]}
  dba_mail:
    type: email
    host: smtp.bank.internal
    port: 587
    security: starttls
    username: flowforge
    password: ${SMTP_PASSWORD}
    sender: flowforge@bank.example
    to: [dba@bank.example]

# workflows/<name>.yml: rules of this workflow
alerts:
  - when: [failure, recovery]
    notify: [dba_mail]
  - when: [slow]              # a successful run slower than slow_factor times the median of the last 20
    slow_factor: 3
    notify: [ops_slack]
```

Events: ``failure`` (a run ends failed or partial, or is found abandoned), ``recovery`` (a run
succeeds after a failed one), ``slow``.
"""

from __future__ import annotations

import re
from typing import Annotated, ClassVar, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator

from flowforge.spec.base import Identifier, SpecModel

AlertEvent = Literal["failure", "recovery", "slow"]
EVENTS: tuple[str, ...] = ("failure", "recovery", "slow")
_EMAIL = re.compile(r"^[^@\s<>,;\"']+@[^@\s<>,;\"']+\.[^@\s<>,;\"']+$")


class AlertRule(SpecModel):
    when: tuple[AlertEvent, ...] = Field(("failure",), min_length=1)
    notify: tuple[Identifier, ...] = Field(min_length=1)
    slow_factor: float = Field(3.0, gt=1.0)


class ChannelConfig(SpecModel):
    type: str
    events: tuple[AlertEvent, ...] = ()  # project-wide: these events of every workflow
    slow_factor: float = Field(3.0, gt=1.0)

    secret_fields: ClassVar[tuple[str, ...]] = ()

    def describe(self) -> str:
        raise NotImplementedError


def check_webhook_url(value: str) -> str:
    """Only http(s) to a named host: no file://, no gopher://, no credentials smuggled in."""
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https"):
        raise ValueError("a webhook URL must start with https:// or http://")
    if not parts.hostname:
        raise ValueError("a webhook URL needs a host")
    if parts.username or parts.password:
        raise ValueError("put credentials in 'headers', not in the webhook URL")
    if any(c in value for c in "\r\n\t "):
        raise ValueError("a webhook URL cannot contain spaces or line breaks")
    return value.strip()


class WebhookChannel(ChannelConfig):
    """POSTs JSON: ``format: json`` (the run as fields), ``slack`` (``{"text": ...}``, also what
    Mattermost and Rocket.Chat take) or ``teams`` (a MessageCard for an incoming webhook or a
    Workflows/Power Automate webhook)."""

    type: Literal["webhook"] = "webhook"
    url: SecretStr
    format: Literal["json", "slack", "teams"] = "json"
    headers: dict[str, SecretStr] = Field(default_factory=dict)
    timeout: float = Field(10.0, gt=0, le=60)

    secret_fields: ClassVar[tuple[str, ...]] = ("url", "headers")

    @field_validator("url")
    @classmethod
    def _url(cls, value: SecretStr) -> SecretStr:
        return SecretStr(check_webhook_url(value.get_secret_value()))

    @field_validator("headers")
    @classmethod
    def _headers(cls, value: dict[str, SecretStr]) -> dict[str, SecretStr]:
        for name, text in value.items():
            if not re.fullmatch(r"[A-Za-z0-9-]{1,64}", name) or any(c in text.get_secret_value() for c in "\r\n"):
                raise ValueError(f"header '{name}' is not a valid HTTP header")
        return value

    def describe(self) -> str:
        parts = urlsplit(self.url.get_secret_value())
        return f"{self.format} webhook to {parts.scheme}://{parts.hostname}"  # path and query hold tokens


class EmailChannel(ChannelConfig):
    type: Literal["email"] = "email"
    host: str
    port: int = Field(587, ge=1, le=65535)
    security: Literal["starttls", "ssl", "none"] = "starttls"
    username: str | None = None
    password: SecretStr | None = None
    sender: str
    to: tuple[str, ...] = Field(min_length=1)
    timeout: float = Field(20.0, gt=0, le=120)

    secret_fields: ClassVar[tuple[str, ...]] = ("password",)

    @field_validator("sender")
    @classmethod
    def _sender(cls, value: str) -> str:
        return _address(value)

    @field_validator("to")
    @classmethod
    def _to(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(_address(v) for v in value)

    @field_validator("host")
    @classmethod
    def _host(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9.\-:\[\]]{1,255}", value):
            raise ValueError(f"'{value}' is not a host name")
        return value

    def describe(self) -> str:
        return f"e-mail via {self.host}:{self.port} to {len(self.to)} recipient(s)"


def _address(value: str) -> str:
    if not _EMAIL.match(value):
        raise ValueError(f"'{value}' is not an e-mail address")
    return value


AnyChannel = Annotated[WebhookChannel | EmailChannel, Field(discriminator="type")]
CHANNEL_TYPES: dict[str, type[ChannelConfig]] = {"webhook": WebhookChannel, "email": EmailChannel}
