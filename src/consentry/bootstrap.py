"""The composition root: settings in, a container of engine, keys and units of work out."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine

from consentry.config import Settings
from consentry.domain.errors import KeyUnavailable
from consentry.persistence.crypto import (
    FileKeyRing,
    create_key_file,
    keyring_from_secrets,
    load_key_file,
)
from consentry.persistence.engine import make_engine
from consentry.persistence.migrate import upgrade
from consentry.persistence.uow import SqlUnitOfWork


@dataclass
class Container:
    settings: Settings
    engine: Engine
    keys: FileKeyRing

    def uow(self) -> SqlUnitOfWork:
        return SqlUnitOfWork(self.engine, self.keys)

    def read_uow(self) -> SqlUnitOfWork:
        return SqlUnitOfWork(self.engine, self.keys, read_only=True)

    def close(self) -> None:
        self.engine.dispose()


def initialise(settings: Settings) -> bool:
    """Create the data directory and key file when missing; True if a key file was created."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    if settings.master_key is not None:
        return False
    key_file = settings.resolved_key_file
    if key_file.exists():
        return False
    create_key_file(key_file)
    return True


def load_keys(settings: Settings) -> FileKeyRing:
    if settings.master_key is not None:
        if settings.index_key is None:
            raise KeyUnavailable("CONSENTRY_INDEX_KEY must be set with CONSENTRY_MASTER_KEY")
        return keyring_from_secrets(
            settings.master_key.get_secret_value(), settings.index_key.get_secret_value()
        )
    return load_key_file(settings.resolved_key_file)


def bootstrap(settings: Settings, *, migrate: bool = True, create_keys: bool = False) -> Container:
    """Compose consentry for ``settings``; migrates the database to head unless told not to."""
    if create_keys:
        initialise(settings)
    engine = make_engine(settings.resolved_database_url, echo=settings.sql_echo)
    if migrate:
        upgrade(engine)
    return Container(settings=settings, engine=engine, keys=load_keys(settings))
