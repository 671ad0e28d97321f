"""Shared fixtures: where the public conformance fixtures are, and the real PostgreSQL server.

CI sets FLOWFORGE_REQUIRE_CONFORMANCE / FLOWFORGE_REQUIRE_POSTGRES so a missing fixture folder
or server fails the run; on a user's machine those tests skip with the reason stated.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PG_URL = os.environ.get("FLOWFORGE_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


@pytest.fixture(scope="session")
def conformance_dir() -> Path:
    path = Path(os.environ.get("FLOWFORGE_CONFORMANCE", REPO.parent / "shared" / "conformance"))
    if not path.is_dir():
        reason = f"conformance fixtures not found at {path} (set FLOWFORGE_CONFORMANCE)"
        if os.environ.get("FLOWFORGE_REQUIRE_CONFORMANCE"):
            pytest.fail(reason)
        pytest.skip(reason)
    return path


def _pg_available() -> str | None:
    try:
        import psycopg

        with psycopg.connect(PG_URL, connect_timeout=3):
            return None
    except Exception as exc:  # any failure means "no server here"; the reason is reported
        return str(exc).splitlines()[0]


@pytest.fixture(scope="session")
def pg_server() -> str:
    """The admin URL of the real PostgreSQL server."""
    problem = _pg_available()
    if problem:
        reason = f"PostgreSQL not reachable at {PG_URL}: {problem}"
        if os.environ.get("FLOWFORGE_REQUIRE_POSTGRES"):
            pytest.fail(reason)
        pytest.skip(reason)
    return PG_URL


@pytest.fixture
def pg_database(pg_server: str) -> Iterator[str]:
    """A fresh, empty database for one test; dropped afterwards."""
    yield from _fresh_database(pg_server)


@pytest.fixture
def pg_metadata_database(pg_server: str) -> Iterator[str]:
    """A second fresh database, for FlowForge's metadata beside a source in ``pg_database``
    (a connection may never read the metadata database itself)."""
    yield from _fresh_database(pg_server)


def _fresh_database(pg_server: str) -> Iterator[str]:
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    name = f"flowforge_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    params = conninfo_to_dict(pg_server)
    yield f"postgresql://{params.get('user', 'postgres')}@{params.get('host', '127.0.0.1')}:" \
          f"{params.get('port', 5432)}/{name}"
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
