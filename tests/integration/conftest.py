"""Lakehouse backends for the integration suite: a local folder and a real S3-protocol server.

The S3 server is moto's, started by the tests on 127.0.0.1 (see ``tests/s3_server.py``). Each
test gets its own bucket, so tests never see each other's objects.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.lakes import Lake
from tests.s3_server import S3Server, missing_packages


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    problem = missing_packages()
    if problem:
        if os.environ.get("FLOWFORGE_REQUIRE_S3"):
            pytest.fail(problem)
        pytest.skip(problem)
    with S3Server() as server:
        yield server


@pytest.fixture
def s3_bucket(s3_server: S3Server) -> str:
    return s3_server.create_bucket(f"ff-{uuid.uuid4().hex[:12]}")


# The lakehouse sits under a name a URL escapes (a space, a percent sign), as under "/Users/Jane Doe":
# Delta gives file addresses percent-encoded, and every layer must read them as the names they are.
LAKE_FOLDER = "team lake 100%"


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.s3)])
def lake(request: pytest.FixtureRequest, tmp_path: Path) -> Lake:
    if request.param == "local":
        return Lake("local", str(tmp_path / LAKE_FOLDER / "lakehouse"), str(tmp_path / "landing"))
    server: S3Server = request.getfixturevalue("s3_server")
    bucket = request.getfixturevalue("s3_bucket")
    return Lake("s3", f"s3://{bucket}/{LAKE_FOLDER}/lake", f"s3://{bucket}/landing", server.options(), server,
                bucket)


@pytest.fixture(scope="session")
def logical_pg() -> Iterator[str]:
    """URL of a throw-away PostgreSQL with wal_level=logical (``tests/cdc_servers.py``)."""
    from tests.cdc_servers import logical_postgres

    with logical_postgres() as url:
        yield url


@pytest.fixture(scope="session")
def binlog_server() -> Iterator[int]:
    """Port of a throw-away MariaDB with a row-based binlog (``tests/cdc_servers.py``)."""
    from tests.cdc_servers import binlog_mariadb

    with binlog_mariadb() as port:
        yield port
