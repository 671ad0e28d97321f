"""How a server looks at the metadata generation on PostgreSQL: on its event loop, one read shared by
the requests that asked before it was sent, never by one that asked after (that request could be
served an answer made before a write it had already seen return)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from flowforge.metadata.generation import Generation, _SharedReads
from tests.api.conftest import Api, make_api

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_api(pg_database: str, tmp_path: Path) -> Iterator[Api]:
    yield from make_api(tmp_path / "project", metadata_url=pg_database)


def _write(api: Api, description: str) -> None:
    with api.ctx.metadata.engine.begin() as conn:
        conn.exec_driver_sql(f"UPDATE workflows SET description = '{description}' WHERE name = 'example'")


def test_a_read_sent_before_a_caller_asked_never_answers_it(pg_api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    """The first read has its answer and is still on its way back when a write commits; a caller who
    asks after the write waits for a read of its own, and sees the write."""
    generation = Generation(pg_api.ctx.metadata.engine)
    real = _SharedReads._query
    answered: list[int | None] = []

    async def slow_way_back(self: _SharedReads) -> int | None:
        value = await real(self)
        answered.append(value)
        if len(answered) == 1:
            await asyncio.sleep(0.3)
        return value

    monkeypatch.setattr(_SharedReads, "_query", slow_way_back)

    async def scenario() -> tuple[int | None, int | None]:
        first = asyncio.create_task(generation.read())
        while not answered:
            await asyncio.sleep(0.005)
        await asyncio.to_thread(_write, pg_api, "written while a read was on its way")
        second = await generation.read()
        return await first, second

    try:
        before, after = asyncio.run(scenario())
        assert before is not None and after is not None
        assert after > before
        assert after == generation.current()
    finally:
        generation.close()


def test_fifty_requests_asking_at_once_share_one_read(pg_api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    generation = Generation(pg_api.ctx.metadata.engine)
    real = _SharedReads._query
    sent = 0

    async def counted(self: _SharedReads) -> int | None:
        nonlocal sent
        sent += 1
        return await real(self)

    monkeypatch.setattr(_SharedReads, "_query", counted)

    async def scenario() -> list[int | None]:
        return list(await asyncio.gather(*(generation.read() for _ in range(50))))

    try:
        values = asyncio.run(scenario())
        assert set(values) == {generation.current()} and values[0] is not None
        assert sent == 1
    finally:
        generation.close()


def test_a_dropped_connection_answers_unknown_once_then_reconnects(pg_api: Api) -> None:
    """The metadata server ends the connection (a restart, a failover): the next request is answered
    afresh (unknown generation: nothing served from kept answers), the one after reads again."""
    generation = Generation(pg_api.ctx.metadata.engine)

    def end_generation_sessions() -> None:
        with pg_api.ctx.metadata.engine.begin() as conn:
            ended = conn.exec_driver_sql(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE pid <> pg_backend_pid() "
                "AND datname = current_database() AND query LIKE 'SELECT n FROM metadata_generation%%'").scalar()
            assert ended == 1

    async def scenario() -> tuple[int | None, int | None, int | None]:
        first = await generation.read()
        await asyncio.to_thread(end_generation_sessions)
        return first, await generation.read(), await generation.read()

    try:
        first, after_end, again = asyncio.run(scenario())
        assert first is not None
        assert after_end is None
        assert again == first == generation.current()
    finally:
        generation.close()


def test_each_event_loop_reads_over_its_own_connection(pg_api: Api) -> None:
    """A test client, or a server restarted in the same process, runs a new loop: reads go on working."""
    generation = Generation(pg_api.ctx.metadata.engine)
    try:
        first = asyncio.run(generation.read())
        _write(pg_api, "between two loops")
        second = asyncio.run(generation.read())
        assert first is not None and second is not None and second > first
    finally:
        generation.close()


def test_a_server_gone_silent_holds_requests_no_longer_than_the_read_timeout(
        pg_api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    """The generation's row is locked (a server that stops answering looks the same from here): the
    read gives up after READ_TIMEOUT and the request is answered afresh; once the row is free again
    reads come back."""
    import psycopg

    from flowforge.metadata import generation as module

    monkeypatch.setattr(module, "READ_TIMEOUT", 0.5)
    generation = Generation(pg_api.ctx.metadata.engine)
    url = pg_api.ctx.settings.metadata_url
    assert url is not None
    try:
        with psycopg.connect(url) as locker:
            locker.execute("LOCK TABLE metadata_generation IN ACCESS EXCLUSIVE MODE")
            # without a limit of its own the read would wait for the lock for ever (wait_for ends the test)
            assert asyncio.run(asyncio.wait_for(generation.read(), 30)) is None
            locker.rollback()
        now = generation.current()
        assert now is not None
        assert asyncio.run(generation.read()) == now
    finally:
        generation.close()
