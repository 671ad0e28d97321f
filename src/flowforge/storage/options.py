"""Object-store options: the object_store keys that delta-rs, Polars and obstore share.

```yaml
lakehouse: s3://flowforge-data/lake
storage:
  aws_endpoint: http://minio:9000
  aws_region: us-east-1
  aws_access_key_id: flowforge
  aws_secret_access_key: ${MINIO_SECRET}
  aws_allow_http: true
```

Keys are checked against the known set (aliases such as ``endpoint`` or ``AWS_ENDPOINT_URL``
map to one canonical name) so a typo fails at load time, not as a silent default. Credentials
left out come from the environment (``AWS_ACCESS_KEY_ID``...) or the standard AWS chain:
delta-rs and obstore read those themselves. Secret values never reach a message.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from typing import Any

from flowforge.errors import ConfigError

# canonical name -> accepted spellings (compared case-insensitively)
_S3_KEYS: dict[str, tuple[str, ...]] = {
    "aws_access_key_id": ("access_key_id",),
    "aws_secret_access_key": ("secret_access_key",),
    "aws_session_token": ("session_token", "aws_token", "token"),
    "aws_region": ("region",),
    "aws_default_region": ("default_region",),
    "aws_endpoint": ("endpoint", "aws_endpoint_url", "endpoint_url"),
    "aws_virtual_hosted_style_request": ("virtual_hosted_style_request",),
    "aws_s3_express": ("s3_express",),
    "aws_imdsv1_fallback": ("imdsv1_fallback",),
    "aws_metadata_endpoint": ("metadata_endpoint",),
    "aws_unsigned_payload": ("unsigned_payload",),
    "aws_checksum_algorithm": ("checksum_algorithm",),
    "aws_container_credentials_relative_uri": ("container_credentials_relative_uri",),
    "aws_skip_signature": ("skip_signature",),
    "aws_sse_kms_key_id": ("sse_kms_key_id",),
    "aws_server_side_encryption": ("server_side_encryption",),
    "aws_sse_bucket_key_enabled": ("sse_bucket_key_enabled",),
    "aws_conditional_put": ("conditional_put",),
    "aws_copy_if_not_exists": ("copy_if_not_exists",),
    "aws_disable_tagging": ("disable_tagging",),
    "aws_request_payer": ("request_payer",),
    "aws_role_arn": ("role_arn",),
    "aws_role_session_name": ("role_session_name",),
    "aws_web_identity_token_file": ("web_identity_token_file",),
}
_CLIENT_KEYS: dict[str, tuple[str, ...]] = {
    "aws_allow_http": ("allow_http",),
    "allow_invalid_certificates": ("aws_allow_invalid_certificates",),
    "timeout": (),
    "connect_timeout": (),
    "pool_idle_timeout": (),
    "pool_max_idle_per_host": (),
    "proxy_url": (),
    "proxy_ca_certificate": (),
    "proxy_excludes": (),
    "user_agent": (),
    "http1_only": (),
    "http2_only": (),
}
_RETRY_KEYS: dict[str, tuple[str, ...]] = {"max_retries": (), "retry_timeout": ()}
# understood by delta-rs only (locking provider for stores without conditional put)
_DELTA_KEYS: dict[str, tuple[str, ...]] = {
    "aws_s3_locking_provider": (),
    "delta_dynamo_table_name": (),
}

SECRET_KEYS = frozenset({"aws_secret_access_key", "aws_session_token"})
KNOWN_KEYS = frozenset({*_S3_KEYS, *_CLIENT_KEYS, *_RETRY_KEYS, *_DELTA_KEYS})
_ALIASES = {alias.lower(): canon
            for table in (_S3_KEYS, _CLIENT_KEYS, _RETRY_KEYS, _DELTA_KEYS)
            for canon, aliases in table.items() for alias in (canon, *aliases)}


def canonical_key(key: str) -> str | None:
    return _ALIASES.get(key.strip().lower())


def normalize_options(raw: Mapping[str, Any] | None, where: str = "storage") -> dict[str, str]:
    """Canonical keys and string values; unknown keys raise ConfigError naming close matches."""
    out: dict[str, str] = {}
    for key, value in (raw or {}).items():
        canon = canonical_key(str(key))
        if canon is None:
            close = difflib.get_close_matches(str(key).lower(), sorted(_ALIASES), n=1)
            did_you_mean = f" Did you mean '{_ALIASES[close[0]]}'?" if close else ""
            raise ConfigError(
                f"{where}: unknown object-store option '{key}'.{did_you_mean}",
                hint="Use the object_store keys shared by delta-rs, Polars and obstore: aws_endpoint, "
                     "aws_region, aws_access_key_id, aws_secret_access_key, aws_allow_http, aws_conditional_put.")
        if value is None:
            continue
        if hasattr(value, "get_secret_value"):
            value = value.get_secret_value()
        out[canon] = ("true" if value else "false") if isinstance(value, bool) else str(value)
    return out


def public_options(options: Mapping[str, str]) -> dict[str, str]:
    """The options as they may be shown: secret values masked."""
    return {k: ("***" if k in SECRET_KEYS else v) for k, v in options.items()}


def scrub(text: str, options: Mapping[str, str] | None) -> str:
    """``text`` with every secret value of ``options`` masked (object-store errors may echo them)."""
    for key in SECRET_KEYS:
        value = (options or {}).get(key)
        if value and len(value) >= 4:
            text = text.replace(value, "***")
    return text


def is_remote(uri: str) -> bool:
    """True for object-store URIs (``s3://``...); local paths and ``file://`` are not."""
    scheme = uri.split("://", 1)[0].lower() if "://" in uri else ""
    return bool(scheme) and scheme != "file"


def local_path(uri: str) -> str:
    """The folder of a local table whose address delta-rs gives as a URL (``file:///a%20b/`` for
    ``/a b``); a plain path as it is."""
    from urllib.parse import unquote

    if not uri.startswith("file://"):
        return uri.rstrip("/")
    return unquote(uri.removeprefix("file://")).rstrip("/")


def split_uri(uri: str) -> tuple[str, str, str]:
    """``s3://bucket/a/b`` -> ("s3", "bucket", "a/b")."""
    scheme, _, rest = uri.partition("://")
    bucket, _, key = rest.partition("/")
    scheme = scheme.lower()
    if scheme in ("s3a", "s3n"):
        scheme = "s3"
    if scheme != "s3":
        raise ConfigError(f"Unsupported storage location {uri}: only local paths and s3:// are supported.",
                          hint="Write the location as s3://bucket/prefix or as a local path.")
    if not bucket:
        raise ConfigError(f"Storage location {uri} names no bucket.", hint="Write it as s3://bucket/prefix.")
    return scheme, bucket, key.strip("/")


def obstore_kwargs(options: Mapping[str, str]) -> dict[str, Any]:
    """Keyword arguments of ``obstore.store.S3Store`` for the same options delta-rs receives."""
    import datetime as dt

    config: dict[str, Any] = {}
    client: dict[str, Any] = {}
    retry: dict[str, Any] = {}
    for key, value in options.items():
        if key in _S3_KEYS:
            config[key.removeprefix("aws_")] = value
        elif key in _CLIENT_KEYS:
            name = "allow_http" if key == "aws_allow_http" else key
            client[name] = value
        elif key == "max_retries":
            retry["max_retries"] = int(value)
        elif key == "retry_timeout":
            retry["retry_timeout"] = dt.timedelta(seconds=_seconds(value))
    return {"config": config, "client_options": client or None, "retry_config": retry or None}


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|sec|m|min|h)?\s*$")


def _seconds(value: str) -> float:
    m = _DURATION.match(value)
    if not m:
        raise ConfigError(f"retry_timeout '{value}' is not a duration like '30s' or '2min'.")
    scale = {"ms": 0.001, None: 1, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600}[m.group(2)]
    return float(m.group(1)) * scale
