"""Data roots: what a connection may reach on the server, decided on resolved paths."""

from __future__ import annotations

from pathlib import Path

import pytest

from flowforge.connectors.config import parse_connection
from flowforge.core.roots import check_connection, confine
from flowforge.errors import ConfigError
from flowforge.settings import Settings


def _settings(tmp_path: Path, **extra: object) -> Settings:
    (tmp_path / "data").mkdir(exist_ok=True)
    return Settings(project_dir=tmp_path, **extra)  # type: ignore[arg-type]


def test_paths_under_a_root_are_resolved(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    assert confine(settings, "data/crm", "c") == str((tmp_path / "data" / "crm").resolve())
    assert confine(settings, str(tmp_path / "data" / "x.db"), "c").endswith("/data/x.db")


@pytest.mark.parametrize("path", ["/etc", "data/../.flowforge", ".flowforge/metadata.db", "lakehouse/bronze",
                                  ".", "..", "data/../../other"])
def test_paths_outside_or_into_the_state_are_refused(tmp_path: Path, path: str) -> None:
    with pytest.raises(ConfigError) as err:
        confine(_settings(tmp_path), path, "Connection 'x'")
    assert err.value.message.startswith("Connection 'x'")
    assert "outside the data roots" in err.value.message or "state or lakehouse" in err.value.message


def test_a_symlink_out_of_a_root_is_outside(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    (tmp_path / "data" / "etc").symlink_to("/etc")
    with pytest.raises(ConfigError, match="outside the data roots"):
        confine(settings, "data/etc", "c")


def test_a_root_that_holds_the_project_still_never_reaches_its_state(tmp_path: Path) -> None:
    settings = _settings(tmp_path, data_roots=["."])
    assert confine(settings, "data", "c")
    with pytest.raises(ConfigError, match="state or lakehouse"):
        confine(settings, ".", "c")  # it holds .flowforge
    with pytest.raises(ConfigError, match="state or lakehouse"):
        confine(settings, ".flowforge/secret.key", "c")


@pytest.mark.parametrize("target", ["postgresql://u@127.0.0.1:5432/meta", "postgresql://u@localhost/meta"])
def test_the_postgres_metadata_database_is_never_a_source(tmp_path: Path, target: str) -> None:
    settings = _settings(tmp_path, metadata_url="postgresql+psycopg://flowforge@127.0.0.1:5432/meta")
    with pytest.raises(ConfigError, match="own metadata database"):
        check_connection(settings, "sneaky", parse_connection({"type": "postgres", "url": target}))
    other = parse_connection({"type": "postgres", "url": "postgresql://u@127.0.0.1:5432/sales"})
    assert check_connection(settings, "fine", other) is other
