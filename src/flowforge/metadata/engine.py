"""Engine set-up for the metadata store and its programmatic Alembic upgrade.

Every command and server start opens the store, so the schema check is cheap: one read of the
version table compared with the newest revision of the shipped migrations (found by reading their
``revision``/``down_revision`` lines, without loading Alembic). Alembic is imported and run only
when the two differ: a new database, or one an older FlowForge created.
"""

from __future__ import annotations

import functools
import re
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError

from flowforge.errors import ConfigError, MissingDependencyError, StorageError, redact
from flowforge.metadata.tables import VERSION_TABLE

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR: Final = Path(__file__).resolve().parent / "migrations"
# Execution option of read-only transactions: on SQLite they BEGIN DEFERRED (a shared snapshot,
# no write lock), so readers neither queue behind each other nor behind a writer.
READ_ONLY: Final = "flowforge_read_only"
_REVISION = re.compile(r"^revision\b[^=]*=\s*['\"]([^'\"]+)['\"]", re.MULTILINE)
_DOWN = re.compile(r"^down_revision\b[^=]*=\s*(.+)$", re.MULTILINE)
URL_HINT: Final = "Check FLOWFORGE_METADATA_URL (metadata_url in settings) and that the database is reachable."
_SQLITE_BUSY_TIMEOUT_MS: Final = 30_000
_MIGRATE_LOCK_KEY: Final = 0x466C6F77466F7267  # "FlowForg"
_ALEMBIC_LOCK: Final = threading.Lock()


@functools.cache
def head_revisions() -> frozenset[str]:
    """The newest revision(s) of the shipped migrations, read from their files without Alembic:
    every ``revision`` no other file names as its ``down_revision``."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (MIGRATIONS_DIR / "versions").glob("*.py"):
        source = path.read_text(encoding="utf-8")
        found = _REVISION.search(source)
        if found is None:
            continue
        revisions.add(found.group(1))
        down = _DOWN.search(source)
        if down is not None:
            parents.update(re.findall(r"['\"]([^'\"]+)['\"]", down.group(1)))
    return frozenset(revisions - parents)


def schema_is_current(engine: Engine) -> bool:
    """True when the database's schema revision is the newest one this FlowForge ships: one read
    that takes no write lock. False when it differs or cannot be read (no version table yet)."""
    try:
        with engine.connect() as conn:
            conn = conn.execution_options(**{READ_ONLY: True})
            with conn.begin():
                found = {row[0] for row in conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}"))}
    except DBAPIError:
        return False
    return bool(found) and found == head_revisions()


def upgrade_to_head(conn: Connection) -> None:
    """Migrate the database behind ``conn`` to the newest revision inside its open transaction.

    Returns early when already at head (no Alembic environment is loaded then).
    """
    from alembic import command
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    cfg = alembic_config()
    script = ScriptDirectory.from_config(cfg)
    if conn.dialect.name == "postgresql":
        # Two processes starting at once (server and a CLI run) must not both create the tables.
        # SQLite needs no lock: its BEGIN IMMEDIATE already serializes writers.
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATE_LOCK_KEY})
    current = set(MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE}).get_current_heads())
    if current == set(script.get_heads()):
        return
    unknown = current - {revision.revision for revision in script.walk_revisions()}
    if unknown:
        raise StorageError(
            f"The metadata database is at schema revision {', '.join(sorted(unknown))}, "
            "which this FlowForge version does not know (it was migrated by a newer one).",
            hint="Upgrade FlowForge, or point the metadata URL at another database.",
        )
    # Alembic joins the caller's transaction, so the whole upgrade commits or rolls back at once.
    cfg.attributes["connection"] = conn
    # alembic.context and alembic.op are process-wide proxies: two threads upgrading at once
    # (even different databases) would run each other's operations.
    with _ALEMBIC_LOCK:
        command.upgrade(cfg, "head")


def alembic_config() -> Config:
    """An Alembic Config built in code: no alembic.ini is needed or read."""
    from alembic.config import Config

    cfg = Config()
    # ConfigParser interpolates '%'; a path may contain one.
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    cfg.set_main_option("path_separator", "os")
    return cfg


def create_metadata_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite gets WAL, foreign keys, a busy timeout and real transactions."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigError(f"Metadata URL '{redact(url)}' is not a database URL.", hint=URL_HINT) from None
    if parsed.drivername == "postgresql":
        # psycopg 3 is what the 'postgres' extra installs; SQLAlchemy would default to psycopg2.
        parsed = parsed.set(drivername="postgresql+psycopg")
    is_sqlite = parsed.get_backend_name() == "sqlite"
    if is_sqlite:
        parsed = _prepare_sqlite_path(parsed)
    try:
        engine = create_engine(parsed, pool_pre_ping=not is_sqlite)
    except NoSuchModuleError:
        raise ConfigError(f"Metadata URL '{redact(url)}' names an unknown database kind.", hint=URL_HINT) from None
    except ModuleNotFoundError as exc:
        raise MissingDependencyError(
            f"The metadata store at {redact(url)} needs the '{exc.name}' driver.",
            hint="pip install 'flowforge[postgres]'",
        ) from None
    if is_sqlite:
        event.listen(engine, "connect", _sqlite_on_connect)
        event.listen(engine, "begin", _sqlite_on_begin)
    return engine


def _prepare_sqlite_path(url: URL) -> URL:
    database = url.database
    if not database or database == ":memory:" or database.startswith("file:") or url.query.get("uri"):
        return url
    path = Path(database).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    return url.set(database=str(path))


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # Take transaction control from the sqlite3 module (it skips BEGIN before SELECT and DDL);
    # _sqlite_on_begin emits our own, so migrations and read-then-write methods are atomic.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {_SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA journal_mode = WAL")
        # In WAL mode NORMAL syncs at checkpoints, not at every commit: a run writes some 30 small
        # transactions (job runs, leases, live logs), each an fsync of ~5 ms under FULL. The database
        # stays consistent after any crash; a power cut can lose the last commits, which record runs
        # whose table data (and watermarks) Delta holds.
        cursor.execute("PRAGMA synchronous = NORMAL")
    finally:
        cursor.close()


def _sqlite_on_begin(conn: Connection) -> None:
    # IMMEDIATE takes the write lock up front: a second process waits on busy_timeout instead of
    # failing with SQLITE_BUSY when it upgrades a read to a write. Transactions here are short.
    # Read-only transactions (MetadataStore._read) never write, so they take no lock: in WAL mode
    # they read a snapshot while one writer works.
    conn.exec_driver_sql("BEGIN" if conn.get_execution_options().get(READ_ONLY) else "BEGIN IMMEDIATE")
