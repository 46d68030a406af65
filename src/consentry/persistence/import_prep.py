"""Preparing import batches for the store: parsed, indexed, sealed and, for PostgreSQL, encoded.

Parsing, normalising, sealing and hashing an import's rows is most of its Python work, and one
interpreter runs it on one core however many threads share it. For a large import on PostgreSQL
the rows are therefore prepared in a helper process (this module, run with ``python -m``), which
hands each batch back already in binary ``COPY`` form: the importing process only looks them up,
chains the events (one SHA-256 each) and copies the bytes, while its database backend works on
the other core. Small imports, and SQLite, prepare on a thread of the importing process.

The helper holds the tenant's data key and the platform's index and digest keys for the length
of one import, received over its standard input from the process that started it; it writes
nothing anywhere but its standard output, and ends when its input closes.
"""

from __future__ import annotations

import contextlib
import gc
import io
import itertools
import os
import pickle
import queue
import select
import struct
import subprocess
import sys
import tempfile
import threading
import uuid
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self, cast

from consentry.domain.consent import ConsentEvent, EvidenceDigests, apply_event
from consentry.domain.ids import new_id
from consentry.domain.model import Contact, PointKind, point_index_value
from consentry.persistence import copy_binary
from consentry.persistence.ledger import EncodedEvent, event_values, seal_event, state_values
from consentry.services.import_file import RawRow
from consentry.services.import_rows import (
    PreparedBatch,
    ReadyRow,
    RowContext,
    new_contact,
    parsed_rows,
    row_event,
)
from consentry.services.ports import SealedEvent, SealedRow, SealingKeys

# A large import prepares in a helper process: below this many rows the start of the helper
# (about a third of a second) costs more than it saves.
HELPER_MIN_ROWS = 20_000
# One helper a core, up to three by default (``CONSENTRY_IMPORT_HELPERS``): the importing
# process and its database backend need a core's worth between them. On one core a helper
# would only add the cost of the pipe.
MAX_HELPERS = 3
# A helper that sends nothing for this long while a batch of its is awaited (alive but silent:
# stopped, or stuck) fails the import, which would otherwise wait for ever. A batch takes
# under a second.
HELPER_SILENCE_SECONDS = 300.0

_FRAME = struct.Struct(">Q")
_SOURCE = "consent_events.source_enc"


class RowSealer:
    """Seals one tenant's import rows: new contacts as ``SqlContactRepository.columns`` stores
    them (in the order of ``CONTACT_COLUMNS``), and consent events for ``append_sealed``."""

    def __init__(self, keys: SealingKeys, tenant_id: uuid.UUID) -> None:
        self._keys = keys
        self._tenant_id = tenant_id
        self._source: tuple[str, bytes | None] | None = None

    def _index(self, kind: PointKind, value: str | None) -> bytes | None:
        return (
            None if value is None else self._keys.blind_index(kind, point_index_value(kind, value))
        )

    def contact(self, contact: Contact, email_key: bytes | None) -> SealedRow:
        """The new contact's row; ``email_key`` is the blind index of its email address."""
        if contact.tenant_id != self._tenant_id:
            raise ValueError("a sealer seals one tenant's rows")
        seal, index = self._keys.seal, self._index
        dob = None if contact.date_of_birth is None else contact.date_of_birth.isoformat()
        return (
            contact.id, contact.tenant_id, contact.created_at, contact.created_at,
            contact.external_ref, seal("contacts.name", contact.name),
            seal("contacts.email", contact.email),
            index(PointKind.EMAIL, contact.email) if email_key is None else email_key,
            seal("contacts.phone", contact.phone), index(PointKind.PHONE, contact.phone),
            None if contact.phone_type is None else contact.phone_type.value,
            seal("contacts.whatsapp", contact.whatsapp), index(PointKind.PHONE, contact.whatsapp),
            seal("contacts.postal", contact.postal_address),
            index(PointKind.POSTAL, contact.postal_address), contact.country, contact.time_zone,
            contact.locale, seal("contacts.dob", dob), contact.adult_on, contact.age_attested,
            contact.whatsapp_last_inbound_at, contact.erased_at,
        )  # fmt: skip

    def event(self, event: ConsentEvent, digests: EvidenceDigests) -> SealedEvent:
        if event.tenant_id != self._tenant_id:
            raise ValueError("a sealer seals one tenant's rows")
        return seal_event(self._seal_evidence, event, digests)

    def _seal_evidence(self, purpose: str, value: str | None) -> bytes | None:
        """Seals evidence; the source, the same text in every row of an import, is sealed
        once and its ciphertext repeated (its digest, beside it, repeats as well)."""
        if purpose != _SOURCE or value is None:
            return self._keys.seal(purpose, value)
        if self._source is None or self._source[0] != value:
            self._source = (value, self._keys.seal(purpose, value))
        return self._source[1]


@dataclass(frozen=True, slots=True)
class Oids:
    """The type oids of the three tables' columns, in the order their rows are written."""

    contacts: tuple[int, ...]
    events: tuple[int, ...]
    states: tuple[int, ...]


class RowEncoder:
    """Binary ``COPY`` forms of a new contact, its event (around the chain fields) and its
    state (around ``seq``)."""

    _EVENT_SEQ = 2  # position of seq in EVENT_COLUMNS; prev_hash and hash are the last two
    _STATE_SEQ = 9  # position of seq in STATE_COLUMNS

    def __init__(self, oids: Oids) -> None:
        events = copy_binary.encoders(oids.events)
        states = copy_binary.encoders(oids.states)
        self._contact = copy_binary.Columns(copy_binary.encoders(oids.contacts))
        self._contact_count = copy_binary.field_count(len(oids.contacts))
        self._event_head = copy_binary.Columns(events[: self._EVENT_SEQ])
        self._event_middle = copy_binary.Columns(events[self._EVENT_SEQ + 1 : -2])
        self._event_count = copy_binary.field_count(len(events))
        self._state_head = copy_binary.Columns(states[: self._STATE_SEQ])
        self._state_tail = copy_binary.Columns(states[self._STATE_SEQ + 1 :])
        self._state_count = copy_binary.field_count(len(states))

    def contact(self, row: SealedRow) -> bytes:
        return self._contact_count + self._contact(row)

    def event(self, sealed: SealedEvent) -> EncodedEvent:
        v = event_values(sealed.event, sealed.evidence_columns)
        return (
            self._event_count + self._event_head(v[: self._EVENT_SEQ]),
            self._event_middle(v[self._EVENT_SEQ + 1 : -2]),
            sealed.before_seq,
            sealed.after_seq,
        )

    def state(self, sealed: SealedEvent) -> tuple[bytes, bytes]:
        """The state a new contact's event starts, before and after its ``seq``."""
        v = state_values(apply_event(None, sealed.event))
        return (
            self._state_count + self._state_head(v[: self._STATE_SEQ]),
            self._state_tail(v[self._STATE_SEQ + 1 :]),
        )


# A ready row's payload on PostgreSQL, a plain tuple (it crosses the pipe a million times):
# the new contact's row, its event as ``EncodedEvent`` fields, and its state before and after
# its ``seq``.
CONTACT, EVENT_HEAD, EVENT_MIDDLE, BEFORE_SEQ, AFTER_SEQ, STATE_HEAD, STATE_TAIL = range(7)


def prepare(
    ctx: RowContext, keys: SealingKeys, raw: list[RawRow], encoder: RowEncoder | None
) -> PreparedBatch:
    """One batch parsed, indexed and sealed; with an ``encoder``, each ready row's payload is
    an ``EncodedNew``, else the sealed contact row and ``SealedEvent``."""
    sealer = RowSealer(keys, ctx.tenant_id)
    early: list[Any] = []
    ready: list[ReadyRow] = []
    for item in parsed_rows(ctx, keys, raw):
        if not isinstance(item, tuple):
            early.append(item)
            continue
        row, key, email_key = item
        contact_id = new_id()
        contact = sealer.contact(new_contact(ctx, row, contact_id), email_key)
        event = sealer.event(*row_event(ctx, keys, row, contact_id, key))
        payload: Any
        if encoder is None:
            payload = (contact, event)
        else:
            payload = (encoder.contact(contact), *encoder.event(event), *encoder.state(event))
        ready.append(ReadyRow(row.line, row.address, row.email, key, email_key, payload))
    return PreparedBatch(len(raw), early, ready, raw)


# The cyclic collector's thresholds (see ``_Collections``): in a helper, which only prepares
# rows; in the importing process while it imports. Measured on a 1,000,000-row import: young
# collections 50,000 allocations apart kept the helpers' memory flat, but let the importing
# process grow (157 MB to 255 MB), which 20,000 does not.
BULK_GC_THRESHOLDS = (50_000, 20, 100)
IMPORTER_GC_THRESHOLDS = (20_000, 10, 10)


class _Collections:
    """Fewer collections while an import runs. A batch allocates hundreds of thousands of
    short-lived objects (rows, cells, sealed values, tuples), which reference counting frees;
    with the default threshold (700 allocations) the cyclic collector ran every few rows and
    walked the batches in flight again and again, a fifth of an import's CPU. The thresholds
    are raised while any import of this process prepares rows, and the last one to finish puts
    back what was there before."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._holders = 0
        self._before = gc.get_threshold()

    def hold(self) -> None:
        with self._lock:
            if self._holders == 0:
                self._before = gc.get_threshold()
                gc.set_threshold(*IMPORTER_GC_THRESHOLDS)
            self._holders += 1

    def release(self) -> None:
        with self._lock:
            self._holders -= 1
            if self._holders == 0:
                gc.set_threshold(*self._before)


_COLLECTIONS = _Collections()


class _Preparer:
    """A context manager whose exit ends what the preparer started; while it is open the
    cyclic collector runs less often (``_Collections``)."""

    def close(self) -> None:
        return None

    def __enter__(self) -> Self:
        _COLLECTIONS.hold()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self.close()
        finally:
            _COLLECTIONS.release()


class ThreadPreparer(_Preparer):
    """Prepares batches in this process."""

    def __init__(self, ctx: RowContext, keys: SealingKeys, oids: Oids | None) -> None:
        self._ctx = ctx
        self._keys = keys
        self._encoder = None if oids is None else RowEncoder(oids)

    def batches(self, raws: Iterable[list[RawRow]]) -> Iterator[PreparedBatch]:
        for raw in raws:
            yield prepare(self._ctx, self._keys, raw, self._encoder)


def _send(stream: IO[bytes], message: Any) -> None:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_FRAME.pack(len(data)))
    stream.write(data)
    stream.flush()


def _receive(stream: IO[bytes]) -> Any:
    head = stream.read(_FRAME.size)
    if len(head) < _FRAME.size:
        raise EOFError
    (size,) = _FRAME.unpack(head)
    data = stream.read(size)
    if len(data) < size:
        raise EOFError
    return pickle.loads(data)  # noqa: S301  (our own helper, over its own pipe)


# Rows cross the pipe as plain tuples (a named tuple would be rebuilt through its Python
# ``__new__`` on the other side) and become named tuples again here, in C.
_ready_row = partial(tuple.__new__, ReadyRow)
_raw_row = partial(tuple.__new__, RawRow)


def _read_exactly(stream: io.RawIOBase, size: int, timeout: float | None) -> bytearray:
    """``size`` bytes from an unbuffered pipe: ``EOFError`` at its end, ``TimeoutError`` when
    nothing arrives for ``timeout`` seconds."""
    data = bytearray(size)
    view = memoryview(data)
    got = 0
    while got < size:
        if timeout is not None and not select.select([stream], [], [], timeout)[0]:
            raise TimeoutError
        n = stream.readinto(view[got:])
        if not n:
            raise EOFError
        got += n
    return data


def _receive_within(stream: io.RawIOBase, timeout: float | None) -> Any:
    """``_receive`` from the helper's unbuffered output, giving up after ``timeout`` seconds
    without a byte."""
    (size,) = _FRAME.unpack(_read_exactly(stream, _FRAME.size, timeout))
    return pickle.loads(_read_exactly(stream, size, timeout))  # noqa: S301  (our own helper)


class HelperFailed(RuntimeError):
    """The helper process stopped or reported an error."""


class _Helper:
    """One helper process and its pipes."""

    def __init__(self, ctx: RowContext, keys: SealingKeys, oids: Oids) -> None:
        self._errors = tempfile.TemporaryFile()  # noqa: SIM115  (closed in close())
        package_root = str(Path(__file__).resolve().parents[2])
        path = os.environ.get("PYTHONPATH")
        # Not consentry's own settings: the master key may be among them, and a helper needs
        # only what it is sent.
        env = {k: v for k, v in os.environ.items() if not k.startswith("CONSENTRY_")}
        env["PYTHONPATH"] = package_root + (os.pathsep + path if path else "")
        # Unbuffered, so that its output can be waited for with a timeout (``select``); what
        # is sent to it goes through a buffer of its own.
        self._process = subprocess.Popen(
            [sys.executable, "-m", "consentry.persistence.import_prep"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._errors, env=env,
            bufsize=0,
        )  # fmt: skip
        if self._process.stdin is None or self._process.stdout is None:
            self.close()
            raise HelperFailed("the import's helper process has no pipes")
        # With bufsize=0 the pipes are raw FileIO objects.
        self._input = io.BufferedWriter(cast(io.RawIOBase, self._process.stdin))
        self._output = cast(io.RawIOBase, self._process.stdout)
        try:
            _send(self._input, (ctx, keys, oids))
        except OSError as exc:
            self.close()
            raise self._failed("could not start") from exc

    def _failed(self, what: str) -> HelperFailed:
        self._errors.seek(0)
        detail = self._errors.read().decode("utf-8", "replace").strip()
        tail = detail.splitlines()[-1] if detail else f"exit status {self._process.poll()}"
        return HelperFailed(f"the import's helper process {what}: {tail}")

    def submit(self, raw: list[RawRow]) -> None:
        try:
            _send(self._input, [(r.line, r.cells) for r in raw])
        except OSError as exc:
            raise self._stopped() from exc

    def result(self, raw: list[RawRow]) -> PreparedBatch:
        silence = None if sys.platform == "win32" else HELPER_SILENCE_SECONDS
        try:
            reply = _receive_within(self._output, silence)
        except TimeoutError as exc:
            self._process.kill()
            raise HelperFailed(
                f"the import's helper process sent nothing for {silence:.0f} s"
            ) from exc
        except (OSError, EOFError) as exc:
            raise self._stopped() from exc
        if isinstance(reply, str):  # the helper's error, as text
            raise HelperFailed(f"the import's helper process failed: {reply}")
        early, ready = reply
        return PreparedBatch(len(raw), early, list(map(_ready_row, ready)), raw)

    def _stopped(self) -> HelperFailed:
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._process.wait(timeout=5)
        return self._failed("stopped")

    def close(self) -> None:
        """Close its pipes, so it ends (a batch it was still sending back is not wanted any
        more); a helper that does not end is killed."""
        for pipe in (getattr(self, "_input", None), self._process.stdin, self._process.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._errors.close()


class ProcessPreparer(_Preparer):
    """Prepares batches in helper processes, encoded for PostgreSQL's binary ``COPY``.

    Batch ``i`` goes to helper ``i mod n`` as (line, cells) pairs and comes back as the batch's
    row problems, repeats and ready rows; results are taken in file order. With two helpers on
    two cores the operating system shares the cores between them, this process and its
    database backend: the preparing, which is most of an import's CPU, no longer waits for
    one core."""

    def __init__(self, ctx: RowContext, keys: SealingKeys, oids: Oids, *, helpers: int = 2) -> None:
        self._helpers: list[_Helper] = []
        try:
            for _ in range(helpers):
                self._helpers.append(_Helper(ctx, keys, oids))
        except BaseException:
            self.close()
            raise

    def batches(self, raws: Iterable[list[RawRow]]) -> Iterator[PreparedBatch]:
        """Each raw batch prepared, in order; one more batch is in flight than there are
        helpers, so each has the next batch waiting while this process stores the last."""
        pending: deque[tuple[_Helper, list[RawRow]]] = deque()
        helpers = itertools.cycle(self._helpers)
        for raw in raws:
            helper = next(helpers)
            helper.submit(raw)
            pending.append((helper, raw))
            if len(pending) > len(self._helpers):
                yield self._take(pending)
        while pending:
            yield self._take(pending)

    @staticmethod
    def _take(pending: deque[tuple[_Helper, list[RawRow]]]) -> PreparedBatch:
        helper, raw = pending.popleft()
        return helper.result(raw)

    def close(self) -> None:
        for helper in self._helpers:
            helper.close()


def _serve(source: IO[bytes], sink: IO[bytes]) -> None:
    """The helper's loop. Its input is read on a thread of its own, so the importing process can
    always hand it the next batch while it is still sending back the last one."""
    gc.set_threshold(*BULK_GC_THRESHOLDS)  # this process only prepares rows
    ctx, keys, oids = _receive(source)
    encoder = RowEncoder(oids)
    inbox: queue.Queue[list[tuple[int, list[str]]] | None] = queue.Queue()

    def read() -> None:
        try:
            while True:
                inbox.put(_receive(source))
        except EOFError:
            inbox.put(None)

    threading.Thread(target=read, name="import-prep-input", daemon=True).start()
    while (rows := inbox.get()) is not None:
        try:
            batch = prepare(ctx, keys, list(map(_raw_row, rows)), encoder)
        except Exception as exc:  # reported to the importing process, which stops
            _send(sink, f"{type(exc).__name__}: {exc}")
            raise
        _send(
            sink,
            (
                batch.early,
                [tuple(r) for r in batch.ready],
            ),
        )


def preparer(
    ctx: RowContext, keys: SealingKeys, oids: Oids | None, *, rows: int, most: int = MAX_HELPERS
) -> ThreadPreparer | ProcessPreparer:
    """Helper processes (one a core, at most ``most``) for a large import on PostgreSQL
    (``oids`` given) on a machine with cores to spare, else a thread."""
    helpers = min(most, os.cpu_count() or 1)
    if oids is not None and rows >= HELPER_MIN_ROWS and helpers > 1:
        return ProcessPreparer(ctx, keys, oids, helpers=helpers)
    return ThreadPreparer(ctx, keys, oids)


if __name__ == "__main__":
    # Served by the module as imported, so that what it pickles names its real place.
    from consentry.persistence import import_prep  # noqa: PLW0406

    import_prep._serve(sys.stdin.buffer, sys.stdout.buffer)
