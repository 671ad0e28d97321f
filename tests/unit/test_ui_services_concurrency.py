"""Pages of different users are served side by side: one user's long call (a SQL console query, a
run being started) must not hold up another user's page, and a session that ended is refused even
while other calls are in flight."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from flowforge.core.context import Context
from flowforge.core.project import init_project
from flowforge.errors import NotSignedIn
from flowforge.settings import Settings
from flowforge.ui import services


@pytest.fixture
def users(tmp_path: Path) -> Iterator[tuple[services.UiUser, services.UiUser]]:
    project = tmp_path / "project"
    init_project(project)
    ctx = Context(Settings.load(project).model_copy(update={"actor": "test-setup"}))
    made = []
    for name, role in (("ada", "editor"), ("bob", "viewer")):
        ctx.users.create_user(name, f"{name}-Pass-0001", role)
        record = ctx.users.get(name)
        made.append(services.UiUser(name, role, record, ctx.users.issue_session(record)))
    services.configure(ctx.settings)
    yield made[0], made[1]
    ctx.close()


def test_one_users_long_call_does_not_hold_up_another_users_page(
        users: tuple[services.UiUser, services.UiUser]) -> None:
    ada, bob = users
    inside, release = threading.Event(), threading.Event()

    def long_call() -> None:
        with services.acting(ada):  # as a console query holds its Context while DuckDB works
            inside.set()
            release.wait(60)

    holder = threading.Thread(target=long_call)
    holder.start()
    try:
        assert inside.wait(30)
        answer: list[list[str]] = []
        page = threading.Thread(target=lambda: answer.append([w.name for w in services.workflow_summaries(bob)]))
        page.start()
        page.join(20)
        assert not page.is_alive(), "bob's workflow list waited for ada's call to end"
        assert answer == [["example"]]  # the new project's example workflow, listed at once
    finally:
        release.set()
        holder.join(30)


def test_an_ended_session_is_refused_while_other_calls_run(users: tuple[services.UiUser, services.UiUser]) -> None:
    ada, bob = users
    services.logout(bob.session)
    with services.acting(ada) as ctx:
        assert ctx.actor == "ada"
        with pytest.raises(NotSignedIn):
            services.workflow_summaries(bob)
