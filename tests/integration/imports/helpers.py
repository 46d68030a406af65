"""Builders for import tests: an attestation, a spec, and a file run through the real services."""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import date
from typing import BinaryIO

from tests.integration.helpers import UowFactory, disclosure, shop

from consentry.domain.imports import Acquisition, Attestation, OptInMethod
from consentry.domain.model import Category, Channel
from consentry.services import import_file, imports
from consentry.services.tenancy import create_topic

LIMIT = 1 << 20


def attestation(disclosure_id: uuid.UUID | None, **changes: object) -> Attestation:
    base = Attestation(
        source="Newsletter box on the shop's website",
        opt_in_method=OptInMethod.WEB_FORM,
        collected_from=date(2025, 1, 1),
        collected_to=date(2026, 4, 30),
        acquisition=Acquisition.COLLECTED,
        attested=True,
        attested_by="owner@shop.example",
        website="https://shop.example/newsletter",
        disclosure_document_id=disclosure_id,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def spec(att: Attestation, **changes: object) -> imports.ImportSpec:
    base = imports.ImportSpec(
        topic="promotions", channel=Channel.EMAIL, attestation=att, file_name="list.csv"
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def opener(data: bytes) -> imports.Opener:
    @contextmanager
    def open_() -> Iterator[BinaryIO]:
        yield io.BytesIO(data)

    return open_


def scan(data: bytes, s: imports.ImportSpec) -> import_file.ScannedFile:
    return import_file.scan(
        io.BytesIO(data), channel=s.channel, mapping=s.mapping, encoding=s.encoding, max_bytes=LIMIT
    )


def run(
    new_uow: UowFactory, slug: str, data: bytes, s: imports.ImportSpec
) -> imports.ImportOutcome:
    """Scan, record and run an import as the API does; the outcome's report is open."""
    scanned = scan(data, s)
    record = imports.start_import(new_uow(), slug, s, scanned, now=None)
    return imports.run_import(new_uow, slug, record.id, opener(data), encoding=s.encoding)


def confirmed_opt_in_import(new_uow: UowFactory, data: bytes) -> tuple[str, uuid.UUID, int]:
    """A shop with a "newsletter" topic that requires confirmed opt-in and ``data`` imported
    into it: (tenant slug, import id, pending contact points)."""
    slug = shop(new_uow)
    cites = disclosure(new_uow, slug)
    create_topic(
        new_uow(), slug, key="newsletter", name="News", category=Category.MARKETING,
        requires_double_opt_in=True,
    )  # fmt: skip
    outcome = run(new_uow, slug, data, spec(attestation(cites.policy_document_id),
                                             topic="newsletter"))  # fmt: skip
    outcome.close()
    assert outcome.record is not None
    return slug, outcome.record.id, outcome.counts.pending
