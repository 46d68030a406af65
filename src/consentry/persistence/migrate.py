"""Run Alembic migrations from code: ``consentry migrate``, the demo and tests all call this."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine

_SCRIPTS = Path(__file__).parent / "migrations"


def alembic_config(url: str | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(_SCRIPTS))
    if url:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to ``revision`` inside one transaction."""
    _migrate(engine, command.upgrade, revision)


def downgrade(engine: Engine, revision: str) -> None:
    """Take the schema back to ``revision`` inside one transaction."""
    _migrate(engine, command.downgrade, revision)


def _migrate(engine: Engine, step: Callable[[Config, str], None], revision: str) -> None:
    """Run ``step`` on one connection and transaction.

    On SQLite, batch mode rebuilds a table by copying it and dropping the original, which
    foreign-key enforcement refuses while other tables' rows refer to it. As SQLite's own
    procedure for schema changes says, enforcement is switched off around the transaction
    (it cannot change inside one) and every key is checked before the commit instead; only
    when there is something to migrate, since the check reads the whole database."""
    config = alembic_config()
    target = head_revision() if revision == "head" else revision
    rebuild = engine.dialect.name == "sqlite" and current_revision(engine) != target
    with engine.connect() as connection:
        if rebuild:
            _sqlite_foreign_keys(connection, enforced=False)
        try:
            with connection.begin():
                config.attributes["connection"] = connection
                step(config, revision)
                if rebuild:
                    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
                    if broken:
                        raise RuntimeError(f"migration broke foreign keys: {broken[:5]}")
        finally:
            if rebuild:
                _sqlite_foreign_keys(connection, enforced=True)


def _sqlite_foreign_keys(connection: Connection, *, enforced: bool) -> None:
    # On the driver's connection: a statement through SQLAlchemy would begin a transaction.
    connection.connection.driver_connection.execute(  # type: ignore[union-attr]
        f"PRAGMA foreign_keys={'ON' if enforced else 'OFF'}"
    )


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()
