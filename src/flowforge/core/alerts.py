"""Alerts as the CLI, API, UI and runner use them: channels (flowforge.yml or the metadata store,
secrets encrypted like connection secrets), the rules of workflows, and sending after a run.

After a run ends (and when a dead run is found abandoned) :meth:`AlertService.after_run` works out
the events (failure, recovery, slow) and the channels that want them, claims each (run, channel,
event) once in the store, sends it and records the outcome on the run. Channels are described by
kind and host only; no method returns a secret.

Example::

    ctx.alerts.save_channel("ops", {"type": "webhook", "url": "https://hooks.slack.com/...",
                                    "format": "slack", "events": ["failure"]})
    ctx.alerts.test_channel("ops")        # 'HTTP 200'
"""

from __future__ import annotations

import logging
import statistics
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr, TypeAdapter, ValidationError

from flowforge.errors import ConfigError, FlowForgeError, NotFoundError
from flowforge.spec.alerts import AnyChannel, ChannelConfig
from flowforge.spec.base import Identifier

if TYPE_CHECKING:
    from flowforge.core.context import Context
    from flowforge.metadata import RunRecord
    from flowforge.metadata.alerts import RunAlertRecord
    from flowforge.runner.notify import AlertMessage

log = logging.getLogger("flowforge.alerts")
SLOW_HISTORY = 20  # successful runs the median is taken over
SLOW_MIN_RUNS = 5  # fewer than this: no 'slow' alert yet
_CHANNEL = TypeAdapter(AnyChannel)
_NAME = TypeAdapter(Identifier)


@dataclass(frozen=True)
class ChannelSummary:
    """What may be shown about a channel: kind, where to (scheme and host), its events. Never secrets."""

    name: str
    kind: str
    where: str
    events: tuple[str, ...]
    slow_factor: float
    source: str  # "flowforge.yml" or "store"
    options: dict[str, Any]  # the non-secret settings (format, recipients, SMTP host...)


@dataclass(frozen=True)
class RuleInfo:
    workflow: str
    when: tuple[str, ...]
    notify: tuple[str, ...]
    slow_factor: float


class AlertService:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    # -- channels -------------------------------------------------------------------------------------
    def channels(self) -> dict[str, tuple[ChannelConfig, str]]:
        """Every channel by name, with where it is defined; flowforge.yml wins over the store."""
        out: dict[str, tuple[ChannelConfig, str]] = {}
        for name, raw in self.ctx.settings.alert_channels.items():
            out[name] = (self.parse(name, raw, "flowforge.yml"), "flowforge.yml")
        for record in self.ctx.metadata.alerts.list_channels():
            if record.name not in out:
                data = dict(record.options)
                if record.secret:
                    data.update(self.ctx.connections.keyring().decrypt(record.secret, f"alert channel '{record.name}'"))
                out[record.name] = (self.parse(record.name, data, "stored channel"), "store")
        return out

    def channel_names(self) -> list[str]:
        names = set(self.ctx.settings.alert_channels)
        names |= {r.name for r in self.ctx.metadata.alerts.list_channels()}
        return sorted(names)

    def summaries(self) -> list[ChannelSummary]:
        """Every channel with where it sends (never its secrets); viewers may see them."""
        self.ctx.require("viewer")
        out = []
        for name, (config, source) in sorted(self.channels().items()):
            options = config.model_dump(mode="json", exclude={*config.secret_fields, "events", "slow_factor", "type"})
            out.append(ChannelSummary(name, config.type, config.describe(), tuple(config.events), config.slow_factor,
                                      source, options))
        return out

    def parse(self, name: str, data: dict[str, Any], where: str) -> ChannelConfig:
        try:
            config: ChannelConfig = _CHANNEL.validate_python(data)
        except ValidationError as exc:
            from flowforge.spec.problems import describe

            untagged = describe(exc, AnyChannel, lambda loc: tuple(p for p in loc if p not in ("webhook", "email")))
            raise ConfigError(f"Alert channel '{name}' ({where}): {untagged}",
                              hint="A channel is {type: webhook, url, format: json|slack|teams} or "
                                   "{type: email, host, port, sender, to: [...]}.") from None
        return config

    def save_channel(self, name: str, data: dict[str, Any]) -> ChannelSummary:
        """Create or replace a stored channel (editors). Secret fields left out (or empty) keep their stored
        value, so an edit form never needs to show them."""
        self.ctx.require("editor")
        try:
            _NAME.validate_python(name)
        except ValidationError:
            raise ConfigError(f"'{name}' is not a valid channel name.",
                              hint="Use letters, digits and underscores, starting with a letter.") from None
        if name in self.ctx.settings.alert_channels:
            raise ConfigError(f"Alert channel '{name}' is defined in flowforge.yml; edit it there.")
        keyring = self.ctx.connections.keyring(create=True)
        old = self.ctx.metadata.alerts.get_channel(name)
        merged = {k: v for k, v in data.items() if v not in (None, "", {})}
        if old is not None and old.secret and old.kind == merged.get("type", old.kind):
            for key, value in keyring.decrypt(old.secret, f"alert channel '{name}'").items():
                merged.setdefault(key, value)
        config = self.parse(name, merged, "new channel")
        options = config.model_dump(mode="json", exclude=set(config.secret_fields))
        secrets = {k: _plain(getattr(config, k)) for k in config.secret_fields if getattr(config, k)}
        token = keyring.encrypt(secrets) if secrets else None
        self.ctx.metadata.alerts.save_channel(name, config.type, options, token, self.ctx.actor)
        return next(s for s in self.summaries() if s.name == name)

    def remove_channel(self, name: str) -> None:
        self.ctx.require("editor")
        if name in self.ctx.settings.alert_channels:
            raise ConfigError(f"Alert channel '{name}' is defined in flowforge.yml; remove it there.")
        if not self.ctx.metadata.alerts.delete_channel(name, self.ctx.actor):
            raise NotFoundError(f"No stored alert channel named '{name}'.", hint="See 'flowforge alerts list'.")

    def test_channel(self, name: str) -> str:
        """Send a test alert now; returns what the server said, raises ConnectionFailed saying why not."""
        self.ctx.require("editor")
        return send_test(name, self.channel(name))

    def channel(self, name: str) -> ChannelConfig:
        """A channel's whole config, secrets included, for sending (editors)."""
        self.ctx.require("editor")
        found = self.channels().get(name)
        if found is None:
            raise NotFoundError(f"No alert channel named '{name}'.",
                                hint=f"Channels: {', '.join(self.channel_names()) or 'none'}.")
        return found[0]

    def rules(self) -> list[RuleInfo]:
        """The alert rules the registered workflows declare (``alerts:`` in their files)."""
        self.ctx.require("viewer")
        out = []
        for record in self.ctx.metadata.list_workflows():
            out += [RuleInfo(record.name, tuple(r.when), tuple(r.notify), r.slow_factor) for r in _rules(record.spec)]
        return out

    # -- alerts of a run --------------------------------------------------------------------------------
    def for_run(self, run_id: int) -> list[RunAlertRecord]:
        self.ctx.require("viewer")
        return self.ctx.metadata.alerts.for_run(run_id)

    def after_run(self, run_id: int) -> list[RunAlertRecord]:
        """Send what the run's end calls for, each (channel, event) once; returns the alerts recorded."""
        from flowforge.runner.notify import send

        run = self.ctx.metadata.get_run(run_id)
        if run is None or run.status in ("queued", "running"):
            return []
        targets = self._targets(run)
        if not targets:
            return []
        channels = self.channels()
        for (channel, event), message in targets.items():
            if not self.ctx.metadata.alerts.claim(run.id, channel, event):
                continue
            try:
                if channel not in channels:
                    raise ConfigError(f"alert channel '{channel}' is not defined")
                detail, status = send(channels[channel][0], message), "sent"
            except FlowForgeError as exc:
                detail, status = exc.message, "failed"
                log.warning("alert %s of run %s to channel %s failed: %s", event, run.id, channel, exc.message)
            self.ctx.metadata.alerts.record(run.id, channel, event, status, detail)
        return self.for_run(run.id)

    def _targets(self, run: RunRecord) -> dict[tuple[str, str], AlertMessage]:
        """(channel, event) → the message, for the events this run raises and the channels wanting them."""
        wanted: list[tuple[str, str, float]] = []  # channel, event, slow factor
        record = self.ctx.metadata.get_workflow(run.workflow_name)
        for rule in _rules(record.spec if record else {}):
            wanted += [(channel, event, rule.slow_factor) for channel in rule.notify for event in rule.when]
        try:
            configured = self.channels()
        except FlowForgeError as exc:  # a broken channel must not hide the others' alerts
            log.error("alert channels could not be read: %s", exc.message)
            configured = {}
        for name, (config, _) in configured.items():
            wanted += [(name, event, config.slow_factor) for event in config.events]
        if not wanted:
            return {}
        history = [r for r in self.ctx.metadata.list_runs(run.workflow_name, SLOW_HISTORY * 3)
                   if r.id < run.id and r.status not in ("queued", "running", "cancelled")]
        out: dict[tuple[str, str], AlertMessage] = {}
        for channel, event, factor in wanted:
            detail = _event_detail(event, run, history, factor)
            if detail is not None and (channel, event) not in out:
                out[(channel, event)] = _message(event, run, detail)
        return out


def send_test(name: str, config: ChannelConfig) -> str:
    import datetime as dt

    from flowforge.runner.notify import AlertMessage, send

    now = dt.datetime.now(dt.UTC)
    return send(config, AlertMessage("test", name, 0, "test", "manual", f"{now:%Y-%m-%d %H:%M:%S} UTC", None,
                                     None, None, "This is a test of the channel's settings."))


def _rules(spec: dict[str, Any]) -> list[Any]:
    from flowforge.spec.alerts import AlertRule

    out = []
    for raw in spec.get("alerts", ()) or ():
        try:
            out.append(AlertRule.model_validate(raw))
        except ValidationError:
            continue  # the spec was validated when registered; an older shape is ignored
    return out


def _seconds(run: RunRecord) -> float | None:
    return (run.ended_at - run.started_at).total_seconds() if run.ended_at else None


def _event_detail(event: str, run: RunRecord, history: list[RunRecord], factor: float) -> str | None:
    """The detail line when ``run`` raises ``event``, else None."""
    if event == "failure":
        return "" if run.status in ("failed", "partial") else None
    if run.status != "success":
        return None
    if event == "recovery":
        previous = history[0] if history else None
        return (f"Previous run {previous.id} was {previous.status_label}." if previous is not None and
                previous.status in ("failed", "partial") else None)
    if event == "slow":
        took = _seconds(run)
        durations = [s for s in (_seconds(r) for r in history if r.status == "success") if s is not None]
        durations = durations[:SLOW_HISTORY]
        if took is None or len(durations) < SLOW_MIN_RUNS:
            return None
        median = statistics.median(durations)
        if median > 0 and took > factor * median:
            return (f"Took {took / median:.1f}x the median of its last {len(durations)} successful runs "
                    f"({median:.1f} s; alert above {factor:g}x).")
    return None


def _message(event: str, run: RunRecord, detail: str) -> AlertMessage:
    from flowforge.runner.notify import AlertMessage

    return AlertMessage(event, run.workflow_name, run.id, run.status_label, run.trigger,
                        f"{run.started_at:%Y-%m-%d %H:%M:%S} UTC",
                        f"{run.ended_at:%Y-%m-%d %H:%M:%S} UTC" if run.ended_at else None, _seconds(run), run.error,
                        detail)


def _plain(value: Any) -> Any:
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value
