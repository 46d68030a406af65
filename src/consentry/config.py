"""Typed settings, read from ``CONSENTRY_*`` environment variables at the edge and passed down."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Everything consentry can be configured with. Build one in an entrypoint; never at import."""

    model_config = SettingsConfigDict(env_prefix="CONSENTRY_", extra="ignore")

    data_dir: Path = Field(
        default=Path("consentry-data"),
        description="Directory for the embedded SQLite database, the key file and captured mail.",
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL; defaults to SQLite in the data directory. PostgreSQL: "
        "postgresql+psycopg://user@host/db.",
    )
    master_key: SecretStr | None = Field(
        default=None,
        description="Base64 master key (32 bytes) wrapping per-tenant data keys; when unset, the "
        "key file in the data directory is used.",
    )
    index_key: SecretStr | None = Field(
        default=None,
        description="Base64 key (32 bytes) for blind indexes and keyed digests; required with "
        "master_key.",
    )
    key_file: Path | None = Field(
        default=None,
        description="Path of the key file; defaults to keys.json in the data directory.",
    )
    sql_echo: bool = Field(default=False, description="Log every SQL statement (no parameters).")
    api_max_body_bytes: int = Field(
        default=1_048_576, ge=1024, description="Largest request body the API accepts."
    )
    api_rate_per_second: float = Field(
        default=200.0, gt=0, description="Sustained requests per second per API key or address."
    )
    api_rate_burst: int = Field(default=400, ge=1, description="Burst size for that limit.")
    auth_rate_per_second: float = Field(
        default=1.0, gt=0, description="Sign-in attempts per second per address."
    )
    auth_rate_burst: int = Field(default=10, ge=1, description="Burst size for sign-in attempts.")

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+pysqlite:///{(self.data_dir / 'consentry.db').resolve()}"

    @property
    def resolved_key_file(self) -> Path:
        return self.key_file or self.data_dir / "keys.json"

    @property
    def is_sqlite(self) -> bool:
        return self.resolved_database_url.startswith("sqlite")
