"""The metadata store suite against a real PostgreSQL server.

The session works in its own throw-away database (``flowforge_meta_test_<random>``) on the server
from ``pg_server`` (tests/conftest.py: FLOWFORGE_TEST_PG_URL), dropped at the end; each test
starts from emptied tables. Tests that need an empty database get one from ``pg_database``.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from tests.unit.test_metadata_store import MetadataStoreSuite

from flowforge.metadata import MetadataStore
from flowforge.metadata.tables import metadata

psycopg = pytest.importorskip("psycopg")

pytestmark = pytest.mark.postgres


def _libpq(url: str) -> str:
    """The server URL as libpq accepts it (FLOWFORGE_TEST_PG_URL may name a SQLAlchemy driver)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def pg_session_url(pg_server: str) -> Iterator[str]:
    name = f"flowforge_meta_test_{secrets.token_hex(6)}"
    identifier = psycopg.sql.Identifier(name)
    with psycopg.connect(_libpq(pg_server), autocommit=True) as admin:
        admin.execute(psycopg.sql.SQL("CREATE DATABASE {}").format(identifier))
        try:
            url = make_url(pg_server).set(drivername="postgresql+psycopg", database=name)
            store = MetadataStore(url.render_as_string(hide_password=False))
            store.migrate()
            store.close()
            yield url.render_as_string(hide_password=False)
        finally:
            # FORCE: a failed test may leave a pooled connection behind.
            admin.execute(psycopg.sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(identifier))


class TestPostgresMetadataStore(MetadataStoreSuite):
    @pytest.fixture
    def fresh_url(self, pg_database: str) -> Iterator[str]:
        yield pg_database

    @pytest.fixture
    def store(self, pg_session_url: str) -> Iterator[MetadataStore]:
        store = MetadataStore(pg_session_url)
        names = ", ".join(table.name for table in metadata.sorted_tables)
        with store.engine.begin() as conn:
            conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        yield store
        store.close()


def test_timestamps_come_back_in_utc_whatever_the_session_zone(pg_database: str) -> None:
    store = MetadataStore(f"{pg_database}?options=-c%20TimeZone%3DAsia/Kolkata")
    try:
        store.migrate()
        with store.engine.connect() as conn:
            assert conn.execute(text("SHOW TimeZone")).scalar_one() == "Asia/Kolkata"
        store.set_watermark("bronze.t", "job", {}, 1)
        mark = store.get_watermark("bronze.t")
        assert mark is not None
        offset = mark.updated_at.utcoffset()
        assert offset is not None and offset.total_seconds() == 0
    finally:
        store.close()
