"""``openlineage:`` in flowforge.yml: where FlowForge sends an OpenLineage event as each job starts and ends.

```yaml
openlineage:
  transport: http                 # none (the default) | http | file
  url: http://marquez:5000        # http: Marquez or any OpenLineage endpoint; events go to <url>/<endpoint>
  api_key: ${OPENLINEAGE_API_KEY} # sent as 'Authorization: Bearer ...'; never logged
  timeout: 2                      # seconds per request; events are sent in the background
  namespace: bfsi-prod            # the namespace of FlowForge's jobs
# or: {transport: file, path: .flowforge/openlineage.jsonl}   (one JSON event per line)
```
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator


class OpenLineageSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    transport: Literal["none", "http", "file"] = "none"
    url: str | None = None
    endpoint: str = "api/v1/lineage"
    api_key: SecretStr | None = None
    timeout: float = Field(2.0, gt=0, le=60)
    path: str = ".flowforge/openlineage.jsonl"
    namespace: str = Field("flowforge", min_length=1, max_length=200)

    @model_validator(mode="after")
    def _url(self) -> OpenLineageSettings:
        if self.transport == "http":
            if not self.url or not self.url.startswith(("http://", "https://")):
                raise ValueError("transport 'http' needs 'url', like http://marquez:5000")
            if "@" in self.url.split("://", 1)[1].split("/", 1)[0]:
                raise ValueError("put credentials in 'api_key', not in 'url'")
        return self

    @property
    def enabled(self) -> bool:
        return self.transport != "none"

    @property
    def target(self) -> str:
        """Where events go, safe to show (no key)."""
        if self.transport == "http":
            return f"{(self.url or '').rstrip('/')}/{self.endpoint.lstrip('/')}"
        return self.path if self.transport == "file" else "nowhere"
