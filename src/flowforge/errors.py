"""FlowForge errors.

Every failure a user can cause ends in exactly one of these; the message says what
happened, where, and what to do next. Messages never carry a secret.

FlowForgeError
 ├── SpecError                bad YAML / unknown field / bad reference (carries file:line)
 ├── ConfigError              bad settings or an unknown connection name
 │    ├── NotFoundError           no workflow, job, run, table or user by that name
 │    └── ConflictError           the name is taken (a workflow, job or user already exists)
 ├── AccessDenied             a role that may not do this
 │    ├── NotSignedIn             no valid session or token (or a wrong password)
 │    └── TooManyAttempts         sign-in locked for a while after repeated failures
 ├── ConnectorError
 │    ├── ConnectionFailed        (transient) host unreachable, refused, timed out
 │    ├── AuthenticationFailed    (terminal) wrong user or password
 │    ├── SourceNotFound          (terminal) missing table, file or database
 │    └── SourceSchemaError       (terminal) unknown column, type that cannot be mapped
 │         └── SchemaDriftError        the source's columns changed in a way the table refuses
 ├── StorageError             the lakehouse could not be read or written
 ├── UserCodeError            user SQL (derived column, gold query) failed
 ├── CheckFailed              data that breaks a rule with severity 'fail' (null keys, ...)
 ├── RunFailed                a workflow run ended with failed jobs
 │    ├── RunCancelled            someone cancelled it; it stopped at a safe point (nothing half-committed)
 │    └── LeaseLost               its lease was taken over (it stalled past the timeout): it stops
 └── MissingDependencyError   an optional extra is not installed
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

_URL_PASSWORD = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.\-]*://)(?P<user>[^:/@\s]*):(?P<pw>[^@\s]*)@")
_KV_PASSWORD = re.compile(r"(?i)\b(password|pwd|passwd|secret|token)\s*=\s*('[^']*'|\"[^\"]*\"|[^\s;]+)")


def redact(text: str) -> str:
    """Mask passwords in URLs (``user:***@``) and ``password=...`` pairs."""
    text = _URL_PASSWORD.sub(lambda m: f"{m['scheme']}{m['user']}:***@", text)
    return _KV_PASSWORD.sub(lambda m: f"{m.group(1)}=***", text)


class FlowForgeError(Exception):
    """Base of every error FlowForge raises on purpose."""

    transient: bool = False

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = redact(message)
        self.hint = redact(hint) if hint else None
        super().__init__(self.message)

    def __str__(self) -> str:
        return f"{self.message}\n  → {self.hint}" if self.hint else self.message


class SpecError(FlowForgeError):
    """A workflow or settings file is malformed; carries file and line."""

    def __init__(
        self, message: str, *, file: str | None = None, line: int | None = None, hint: str | None = None
    ) -> None:
        self.file = file
        self.line = line
        where = f"{file}:{line}: " if file and line else (f"{file}: " if file else "")
        super().__init__(f"{where}{message}", hint=hint)


class ConfigError(FlowForgeError):
    pass


class NotFoundError(ConfigError):
    pass


class ConflictError(ConfigError):
    pass


class AccessDenied(FlowForgeError):
    pass


class NotSignedIn(AccessDenied):
    pass


class TooManyAttempts(AccessDenied):
    def __init__(self, message: str, *, retry_after: int, hint: str | None = None) -> None:
        self.retry_after = retry_after
        super().__init__(message, hint=hint)


class ConnectorError(FlowForgeError):
    pass


class ConnectionFailed(ConnectorError):
    transient = True


class AuthenticationFailed(ConnectorError):
    pass


class SourceNotFound(ConnectorError):
    pass


class SourceSchemaError(ConnectorError):
    pass


class SchemaDriftError(SourceSchemaError):
    """The columns of a batch changed in a way its table's ``on_schema_change`` refuses; nothing
    was committed."""


class StorageError(FlowForgeError):
    pass


class UserCodeError(FlowForgeError):
    pass


class CheckFailed(FlowForgeError):
    pass


class RunFailed(FlowForgeError):
    pass


class RunCancelled(RunFailed):
    pass


class LeaseLost(RunFailed):
    pass


class MissingDependencyError(FlowForgeError):
    pass


ErrorMap = Mapping[type[BaseException], type[FlowForgeError]]


@contextmanager
def map_exceptions(mapping: ErrorMap, context: str, hint: str | None = None) -> Iterator[None]:
    """Translate driver exceptions into FlowForge errors at a boundary.

    ``context`` names the object and the action ("Connection 'core' (postgresql://db1/bank)");
    the driver's own message follows it, redacted.
    """
    try:
        yield
    except FlowForgeError:
        raise
    except BaseException as exc:
        for source, target in mapping.items():
            if isinstance(exc, source):
                detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise target(f"{context}: {detail}", hint=hint) from exc
        raise
