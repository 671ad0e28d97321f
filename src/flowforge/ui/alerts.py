"""Alert settings: the channels (webhook with JSON, Slack or Teams shape; e-mail over SMTP), which
events each sends for every workflow, a test send, and the per-workflow rules as the files declare
them. Secret fields (webhook URL, SMTP password) are write-only: never shown, kept when left empty."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import RedirectResponse
from nicegui import run, ui

from flowforge.ui import services
from flowforge.ui.layout import error_message, frame, load, login_redirect, notify_error, page, page_user, table

EVENTS = {"failure": "failure", "recovery": "recovery", "slow": "slow run"}


def _data(v: dict[str, Any]) -> dict[str, Any]:
    common = {"type": v["type"], "events": list(v["events"]), "slow_factor": v["slow_factor"] or None}
    if v["type"] == "webhook":
        return {**common, "url": v["url"] or None, "format": v["format"]}
    to = [a.strip() for a in (v["to"] or "").replace(";", ",").split(",") if a.strip()]
    return {**common, "host": v["host"] or None, "port": int(v["port"]) if v["port"] else None,
            "security": v["security"], "username": v["username"] or None, "password": v["password"] or None,
            "sender": v["sender"] or None, "to": to or None}


def register() -> None:
    @page("/alerts")
    async def alerts_page(request: Request) -> RedirectResponse | None:
        user = await page_user(request)
        if user is None:
            return login_redirect(request)
        with frame("Alerts", user):
            ui.label("Channels receive the events you tick for every workflow; a workflow file can add its own "
                     "rules (alerts: when/notify). Every alert sent is listed on its run.").classes("text-gray-600")
            try:
                found, declared = await load(services.alert_channels, user), await load(services.alert_rules, user)
            except Exception as exc:
                ui.label(error_message(exc)).classes("text-negative")
                return None
            channels(user, found)
            if user.can_edit:
                form(user)
            rules = [{"workflow": r.workflow, "when": ", ".join(r.when), "notify": ", ".join(r.notify),
                      "slow factor": f"{r.slow_factor:g}"} for r in declared]
            ui.label("Rules of workflows").classes("text-lg font-medium")
            if rules:
                table(rules).props("data-testid=alert-rules")
            else:
                ui.label("No workflow declares alert rules (alerts: in its file).").classes("text-gray-500")
        return None

    async def rechannel(user: services.UiUser) -> None:
        """The channels again, read first so the old list stays until the new one comes."""
        try:
            found = await load(services.alert_channels, user)
        except Exception as exc:
            notify_error(exc)
            return
        channels.refresh(user, found)

    @ui.refreshable
    def channels(user: services.UiUser, found: list[Any]) -> None:
        rows = [{"channel": c.name, "kind": c.kind, "sends to": c.where, "events (all workflows)": ", ".join(c.events),
                 "slow factor": f"{c.slow_factor:g}", "defined in": c.source} for c in found]
        if not rows:
            ui.label("No alert channels yet.").classes("text-gray-500")
            return
        table(rows, row_key="channel").props("data-testid=alert-channels")
        if not user.can_edit:
            return
        with ui.row().classes("gap-2"):
            for row in rows:
                name = row["channel"]
                ui.button(f"Test {name}", icon="send", on_click=lambda n=name: test(user, n)).props(
                    f"outline dense data-testid=test-{name}")
                if row["defined in"] == "store":
                    ui.button(f"Delete {name}", icon="delete", color="negative",
                              on_click=lambda n=name: delete(user, n)).props(f"flat dense data-testid=delete-{name}")

    async def test(user: services.UiUser, name: str) -> None:
        try:
            result = await run.io_bound(services.test_alert_channel, user, name)
        except Exception as exc:
            notify_error(exc)
            return
        ui.notify(f"Test alert to '{name}': {result}", type="positive")

    async def delete(user: services.UiUser, name: str) -> None:
        try:
            await load(services.delete_alert_channel, user, name)
        except Exception as exc:
            notify_error(exc)
            return
        ui.notify(f"Deleted '{name}'.", type="positive")
        await rechannel(user)

    def form(user: services.UiUser) -> None:
        v: dict[str, Any] = {"name": "", "type": "webhook", "url": "", "format": "slack", "host": "", "port": 587,
                             "security": "starttls", "username": "", "password": "", "sender": "", "to": "",
                             "events": ["failure", "recovery"], "slow_factor": 3.0}
        with ui.card().classes("w-full"):
            ui.label("Add or change a channel").classes("text-lg font-medium")
            with ui.row().classes("gap-4 items-center"):
                ui.input("Name", placeholder="ops_slack").bind_value(v, "name").props("data-testid=channel-name")
                ui.toggle({"webhook": "Webhook", "email": "E-mail"}).bind_value(v, "type").props(
                    "data-testid=channel-type")
            with ui.row().classes("gap-4 items-center").bind_visibility_from(v, "type", value="webhook"):
                ui.input("Webhook URL (secret; empty keeps it)", password=True).bind_value(
                    v, "url").classes("w-96").props("data-testid=channel-url")
                ui.select({"slack": "Slack (also Mattermost)", "teams": "Microsoft Teams", "json": "Generic JSON"},
                          label="Shape").bind_value(v, "format").classes("w-56")
            with ui.row().classes("gap-4 items-center").bind_visibility_from(v, "type", value="email"):
                ui.input("SMTP host").bind_value(v, "host").props("data-testid=channel-host")
                ui.number("Port", format="%d").bind_value(v, "port").classes("w-24")
                ui.select({"starttls": "STARTTLS", "ssl": "TLS (SMTPS)", "none": "none"}, label="Security").bind_value(
                    v, "security").classes("w-32")
                ui.input("User").bind_value(v, "username")
                ui.input("Password (kept secret)", password=True).bind_value(v, "password")
                ui.input("From").bind_value(v, "sender").props("data-testid=channel-sender")
                ui.input("To (comma-separated)").bind_value(v, "to").classes("w-72").props("data-testid=channel-to")
            with ui.row().classes("gap-4 items-center"):
                ui.select(EVENTS, label="Events of every workflow", multiple=True).bind_value(v, "events").classes(
                    "w-80").props("data-testid=channel-events")
                ui.number("Slow factor", format="%.1f").bind_value(v, "slow_factor").classes("w-40")

            async def save() -> None:
                try:
                    await run.io_bound(services.save_alert_channel, user, v["name"], _data(v))
                except Exception as exc:
                    notify_error(exc)
                    return
                ui.notify(f"Saved '{v['name']}'.", type="positive")
                v["url"] = v["password"] = ""
                await rechannel(user)

            ui.button("Save channel", icon="save", on_click=save).props("data-testid=save-channel")
