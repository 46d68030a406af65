"""Signals in, on each database: the delivery world (a tenant that has sent a campaign)."""

from __future__ import annotations

from tests.integration.delivery.conftest import world

__all__ = ["world"]
