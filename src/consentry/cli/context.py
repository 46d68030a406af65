"""What every command shares: settings from the environment and options, errors mapped once."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from consentry.bootstrap import Container, bootstrap
from consentry.config import Settings
from consentry.domain.errors import ConsentryError
from consentry.services.audit_seal import seal_audit

P = ParamSpec("P")
R = TypeVar("R")

console = Console()
err_console = Console(stderr=True)


class State:
    """Options given before the command name; the container is built on first use."""

    def __init__(self, data_dir: Path | None, database_url: str | None) -> None:
        overrides: dict[str, Any] = {}
        if data_dir is not None:
            overrides["data_dir"] = data_dir
        if database_url is not None:
            overrides["database_url"] = database_url
        self.settings = Settings(**overrides)
        self._container: Container | None = None

    def container(self, *, create_keys: bool = False) -> Container:
        if self._container is None:
            self._container = bootstrap(self.settings, create_keys=create_keys)
        return self._container

    def close(self) -> None:
        if self._container is not None:
            try:
                # What this command recorded in the audit log is chained before it exits.
                seal_audit(self._container.uow())
            except Exception as exc:  # noqa: BLE001  (the entries stay stored for the next sealer)
                err_console.print(
                    f"[yellow]warning[/] the audit log was not sealed ({type(exc).__name__}); "
                    "the next sealer chains its new entries",
                    highlight=False,
                )
            finally:
                self._container.close()


def state(ctx: typer.Context) -> State:
    obj = ctx.find_root().obj
    if not isinstance(obj, State):
        raise TypeError("the root callback did not run")
    return obj


def handle_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Print a consentry error with its stable code and exit non-zero (2); nothing else leaks."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except ConsentryError as exc:
            where = f" (field: {exc.field})" if exc.field else ""
            err_console.print(
                f"[bold red]error[/] \\[{exc.code}] {escape(exc.message)}{escape(where)}",
                highlight=False,
            )
            raise typer.Exit(code=2) from exc

    return wrapper
