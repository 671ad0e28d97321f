"""Object-store settings as a user writes them: known keys only, secrets never shown."""

from __future__ import annotations

from pathlib import Path

import pytest

from flowforge.errors import ConfigError
from flowforge.settings import Settings
from flowforge.storage.objects import describe_failure
from flowforge.storage.options import normalize_options, obstore_kwargs, scrub

SECRET = "wJalrXUtnFEMI-K7MDENG-bPxRfiCY"


def _project(tmp_path: Path, text: str, env: str = "") -> Path:
    (tmp_path / "flowforge.yml").write_text(text)
    if env:
        (tmp_path / ".env").write_text(env)
    return tmp_path


def test_storage_settings_are_normalized_and_the_secret_stays_hidden(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLOWFORGE_STORAGE__AWS_REGION", "eu-west-1")
    project = _project(tmp_path, "lakehouse: s3://lake/prod\nsingle_writer: true\nstorage:\n"
                                 "  AWS_ENDPOINT_URL: http://minio:9000\n  aws_allow_http: true\n"
                                 "  aws_access_key_id: flowforge\n  aws_secret_access_key: ${MINIO_SECRET}\n",
                       env=f"MINIO_SECRET={SECRET}\n")
    settings = Settings.load(project)
    assert settings.storage_options == {"aws_endpoint": "http://minio:9000", "aws_allow_http": "true",
                                        "aws_access_key_id": "flowforge", "aws_secret_access_key": SECRET,
                                        "aws_region": "eu-west-1"}
    assert settings.single_writer and settings.lakehouse_root == "s3://lake/prod"
    assert SECRET not in repr(settings) and SECRET not in str(settings.model_dump())


def test_unknown_storage_key_names_the_closest_one(tmp_path: Path) -> None:
    project = _project(tmp_path, "storage:\n  aws_endpont: http://minio:9000\n")
    with pytest.raises(ConfigError) as err:
        Settings.load(project)
    assert "aws_endpont" in str(err.value) and "Did you mean 'aws_endpoint'" in str(err.value)


def test_table_locations_name_real_layers(tmp_path: Path) -> None:
    project = _project(tmp_path, "table_locations:\n  bronz: {t: s3://b/t}\n")
    with pytest.raises(ConfigError, match="unknown layer"):
        Settings.load(project)
    project = _project(tmp_path, "table_locations:\n  bronze: {bronze_customers: 's3://flowforge-data/bronze/c'}\n")
    assert Settings.load(project).lakehouse_locations == {"bronze": {"bronze_customers":
                                                                     "s3://flowforge-data/bronze/c"}}


def test_obstore_receives_the_same_options() -> None:
    kwargs = obstore_kwargs(normalize_options({"aws_endpoint": "http://h:9000", "aws_allow_http": True,
                                               "max_retries": "2", "retry_timeout": "30s",
                                               "aws_s3_locking_provider": "dynamodb"}))
    assert kwargs["config"] == {"endpoint": "http://h:9000"}
    assert kwargs["client_options"] == {"allow_http": "true"}
    assert kwargs["retry_config"]["max_retries"] == 2 and kwargs["retry_config"]["retry_timeout"].seconds == 30


@pytest.mark.parametrize(("message", "kind", "reason"), [
    ("Generic S3 error\n ↳ 404 Not Found\n <Error><Code>NoSuchBucket</Code></Error>", "not_found",
     "bucket 'lake' does not exist at http://minio:9000"),
    ("Kernel error -> ... 403 Forbidden <Error><Code>SignatureDoesNotMatch</Code></Error>", "credentials",
     "rejected the credentials (SignatureDoesNotMatch)"),
    ("Failed to parse parquet: External: The operation lacked the necessary privileges to complete "
     "<Code>AccessDenied</Code>", "denied", "access denied (AccessDenied)"),
    ("Generic S3 error\n ↳ error sending request\n ↳ tcp connect error\n ↳ Connection refused (os error 111)",
     "unreachable", "cannot reach the object store at http://minio:9000 (connection refused)"),
])
def test_object_store_failures_become_one_line(message: str, kind: str, reason: str) -> None:
    options = {"aws_endpoint": "http://minio:9000", "aws_secret_access_key": SECRET}
    got_kind, got_reason, hint = describe_failure(OSError(message + f" key={SECRET}"), "s3://lake/t", options)
    assert got_kind == kind and reason in got_reason
    assert SECRET not in got_reason + hint


def test_scrub_masks_secret_values() -> None:
    assert scrub(f"signing with {SECRET} failed", {"aws_secret_access_key": SECRET}) == "signing with *** failed"


def test_files_connection_keeps_its_secret() -> None:
    from flowforge.connectors.config import parse_connection

    config = parse_connection({"type": "files", "path": "s3://raw/product", "format": "json",
                               "aws_endpoint": "http://minio:9000", "aws_secret_access_key": SECRET,
                               "storage": {"session_token": "tok-123456"}})
    assert SECRET not in repr(config) and "tok-123456" not in repr(config)
    assert config.storage_options()["aws_secret_access_key"] == SECRET  # type: ignore[attr-defined]
    assert config.storage_options()["aws_session_token"] == "tok-123456"  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="unknown object-store option 'aws_endpont'"):
        parse_connection({"type": "files", "path": "s3://raw", "storage": {"aws_endpont": "x"}})


def test_docstring_examples_load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import re

    import yaml

    import flowforge.storage.options as options_module
    from flowforge.connectors.config import parse_connection
    from flowforge.connectors.files.config import FilesConfig

    def example(doc: str | None) -> str:
        m = re.search(r"```yaml\n(.*?)```", doc or "", re.S)
        assert m is not None
        return m.group(1)

    monkeypatch.setenv("MINIO_SECRET", SECRET)
    settings = Settings.load(_project(tmp_path, example(options_module.__doc__)))
    assert settings.lakehouse_root == "s3://flowforge-data/lake"
    assert settings.storage_options["aws_secret_access_key"] == SECRET
    connections = yaml.safe_load(example(FilesConfig.__doc__))
    raw = parse_connection(connections["product_raw"])
    assert raw.describe() == "json files in s3://cord-raw/product/raw"
    assert raw.storage_options()["aws_allow_http"] == "true"  # type: ignore[attr-defined]
    assert parse_connection(connections["crm_files"]).describe() == "csv files in data"
