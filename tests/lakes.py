"""A lakehouse backend for tests: where the Delta tables live and where source files land."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from flowforge.storage import LakehouseStore
from tests.s3_server import S3Server


@dataclass
class Lake:
    """One backend: where the lakehouse lives and where source files land."""

    kind: str
    root: str
    landing: str
    options: dict[str, str] = field(default_factory=dict)
    server: S3Server | None = None
    bucket: str | None = None

    def store(self, **kwargs: object) -> LakehouseStore:
        return LakehouseStore(self.root, self.options or None, **kwargs)  # type: ignore[arg-type]

    def put(self, rel: str, data: bytes) -> str:
        """Write a source file under the landing area; returns its full path or URI."""
        if self.server is None:
            path = Path(self.landing) / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            return str(path)
        key = f"{self.landing.split('/', 3)[3]}/{rel}"
        self.server.client().put_object(Bucket=self.bucket, Key=key, Body=data)
        return f"s3://{self.bucket}/{key}"

    def project_settings(self, **extra: object) -> dict[str, object]:
        """flowforge.yml entries that put the project's lakehouse on this backend."""
        out: dict[str, object] = {"lakehouse": self.root}
        if self.server is None:  # source files land outside the project: a data root of their own
            out["data_roots"] = [self.landing]
        if self.options:
            out["storage"] = dict(self.options)
        out.update(extra)
        return out

    def files_connection(self, fmt: str = "csv", **extra: object) -> dict[str, object]:
        conn: dict[str, object] = {"type": "files", "path": self.landing, "format": fmt, **extra}
        if self.options:
            conn.update({k: v for k, v in self.options.items()
                         if k in ("aws_endpoint", "aws_region", "aws_access_key_id", "aws_secret_access_key")})
            conn["aws_allow_http"] = True
        return conn


def write_project(project: Path, lake: Lake, connections: dict[str, object], **settings: object) -> Path:
    """A project directory whose flowforge.yml points at ``lake``."""
    (project / "workflows").mkdir(parents=True, exist_ok=True)
    data = {**lake.project_settings(**settings), "connections": connections}
    (project / "flowforge.yml").write_text(yaml.safe_dump(data, sort_keys=False))
    return project
