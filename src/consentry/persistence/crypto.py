"""Encryption of personal data at rest (ARCHITECTURE.md section 4, guarantee 4).

Scheme:

- Each tenant has a random 32-byte *data key*, stored only *wrapped*: AES-GCM-encrypted under a
  platform *master key*. Wrapped key layout: format byte, master-key version (uint32, big endian),
  12-byte nonce, ciphertext and tag. The version lets several master keys coexist, so a master key
  can be rotated by re-wrapping data keys (``rewrap``) without re-encrypting any personal data.
- Personal data is AES-GCM-encrypted under the tenant's data key. Ciphertext layout: format byte,
  12-byte random nonce, ciphertext and tag. Random 96-bit nonces are safe far beyond the number of
  values one tenant key will ever encrypt (the bound is about 2**32 per key).
- Associated data (AAD) binds every wrapped key to its tenant, and every ciphertext to its tenant
  and *purpose* (the column it lives in). A ciphertext copied into another column or tenant fails
  authentication (KeyUnavailable). It is not bound to its row: within one tenant and column, a
  value moved between rows still decrypts (binding row ids is a possible later hardening).
- Blind indexes are HMAC-SHA256 under a platform *index key*, truncated to 16 bytes: enough to make
  accidental collisions negligible, while a short value gives an attacker holding the database less
  to work with and keeps the index small. They are per platform, not per tenant, so a platform-wide
  suppression can be matched without decrypting anything.
- Keyed digests (for hash chains and evidence) use a second key derived from the index key with
  HKDF, so a digest can never be compared with, or substituted for, a blind index.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import os
import secrets
import struct
import threading
import uuid
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from consentry.domain.errors import AlreadyExists, InvalidInput, KeyUnavailable
from consentry.domain.model import PointKind

KEY_BYTES = 32
NONCE_BYTES = 12
BLIND_INDEX_BYTES = 16
KEY_FILE_FORMAT = 1
_WRAP_FORMAT = 1
_DATA_FORMAT = 1
_WRAP_HEADER = struct.Struct(">BI")  # format byte, master-key version
_WRAP_AAD = b"consentry data key v1\x00"
_DATA_AAD = b"consentry data v1\x00"
_DIGEST_INFO = b"consentry digest v1"
_CACHE_LIMIT = 1024  # unwrapped keys held in memory; one per active tenant is the common case


class FileKeyRing:
    """A KeyRing holding its master and index keys in memory (from a key file or settings)."""

    def __init__(
        self, master_keys: dict[int, bytes], active_version: int, index_key: bytes
    ) -> None:
        if active_version not in master_keys:
            raise KeyUnavailable(
                f"active master key version {active_version} is not in the key ring"
            )
        for version, key in master_keys.items():
            if not 0 < version < 2**32 or len(key) != KEY_BYTES:
                raise KeyUnavailable(f"master key version {version} is invalid")
        if len(index_key) != KEY_BYTES:
            raise KeyUnavailable("the index key must be 32 bytes")
        self._masters = {version: AESGCM(key) for version, key in master_keys.items()}
        self._active = active_version
        self._index_key = index_key
        self._digest_key = HKDF(
            algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=_DIGEST_INFO
        ).derive(index_key)
        self._cache: dict[tuple[uuid.UUID, bytes], AESGCM] = {}
        self._derived: dict[str, bytes] = {}
        self._lock = threading.Lock()  # workers share one key ring across threads

    @property
    def active_version(self) -> int:
        """The master-key version new and re-wrapped data keys are wrapped under."""
        return self._active

    def new_wrapped_data_key(self, tenant_id: uuid.UUID) -> bytes:
        """A fresh random data key for a tenant, wrapped under the active master key."""
        return self._wrap(tenant_id, AESGCM.generate_key(bit_length=KEY_BYTES * 8))

    def rewrap(self, tenant_id: uuid.UUID, wrapped_key: bytes) -> bytes:
        """The same data key wrapped under the active master key (after a master-key rotation)."""
        return self._wrap(tenant_id, self._unwrap(tenant_id, wrapped_key))

    def encrypt(
        self, tenant_id: uuid.UUID, wrapped_key: bytes, purpose: str, plaintext: str
    ) -> bytes:
        """AES-GCM ciphertext of ``plaintext`` bound to the tenant and ``purpose`` (a column)."""
        cipher = self._data_cipher(tenant_id, wrapped_key)
        return _seal(cipher, self._data_aad(tenant_id, purpose), purpose, plaintext)

    def decrypt(
        self, tenant_id: uuid.UUID, wrapped_key: bytes, purpose: str, ciphertext: bytes
    ) -> str:
        """Inverse of ``encrypt``; raises KeyUnavailable if the data or purpose do not match."""
        cipher = self._data_cipher(tenant_id, wrapped_key)
        if len(ciphertext) < 1 + NONCE_BYTES + 16 or ciphertext[0] != _DATA_FORMAT:
            raise KeyUnavailable("ciphertext is malformed or of an unknown format")
        nonce, sealed = ciphertext[1 : 1 + NONCE_BYTES], ciphertext[1 + NONCE_BYTES :]
        try:
            data = cipher.decrypt(nonce, sealed, self._data_aad(tenant_id, purpose))
            return data.decode("utf-8")
        except (InvalidTag, UnicodeDecodeError) as exc:
            raise KeyUnavailable(
                "ciphertext does not authenticate for this tenant and purpose"
            ) from exc

    def sealing_keys(self, tenant_id: uuid.UUID, wrapped_key: bytes) -> SealingKeys:
        """One tenant's keys for sealing many values: what ``encrypt``, ``blind_index`` and
        ``digest`` give, without their per-call look-ups; picklable for a helper process."""
        return SealingKeys(
            tenant_id, self._unwrap(tenant_id, wrapped_key), self._index_key, self._digest_key
        )

    def blind_index(self, kind: PointKind, normalized: str) -> bytes:
        """Truncated HMAC-SHA256 of ``kind:normalized`` under the index key; deterministic."""
        return _blind_index(self._index_key, kind, normalized)

    def digest(self, value: str | None) -> str | None:
        """Hex HMAC-SHA256 of ``value`` under the digest key; None stays None."""
        return _digest(self._digest_key, value)

    def derive(self, purpose: str) -> bytes:
        """A 32-byte key for ``purpose`` (e.g. unsubscribe tokens), derived from the index key:
        stable across restarts and processes, independent for each purpose."""
        found = self._derived.get(purpose)
        if found is None:
            # Kept: the same purposes are derived for every request that reads a link or
            # seals a payload. Two threads deriving at once compute the same bytes.
            info = b"consentry " + purpose.encode("ascii")
            found = HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=info).derive(
                self._index_key
            )
            self._derived[purpose] = found
        return found

    def _wrap(self, tenant_id: uuid.UUID, data_key: bytes) -> bytes:
        header = _WRAP_HEADER.pack(_WRAP_FORMAT, self._active)
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._masters[self._active].encrypt(
            nonce, data_key, self._wrap_aad(tenant_id, header)
        )
        return header + nonce + sealed

    def _unwrap(self, tenant_id: uuid.UUID, wrapped_key: bytes) -> bytes:
        head = _WRAP_HEADER.size
        if len(wrapped_key) != head + NONCE_BYTES + KEY_BYTES + 16:
            raise KeyUnavailable("wrapped data key is malformed")
        header = wrapped_key[:head]
        fmt, version = _WRAP_HEADER.unpack(header)
        master = self._masters.get(version)
        if fmt != _WRAP_FORMAT or master is None:
            raise KeyUnavailable(f"no master key for wrapped data key (format {fmt}, v{version})")
        nonce, sealed = wrapped_key[head : head + NONCE_BYTES], wrapped_key[head + NONCE_BYTES :]
        try:
            return master.decrypt(nonce, sealed, self._wrap_aad(tenant_id, header))
        except InvalidTag as exc:
            raise KeyUnavailable(f"data key of tenant {tenant_id} does not unwrap") from exc

    def _data_cipher(self, tenant_id: uuid.UUID, wrapped_key: bytes) -> AESGCM:
        cache_key = (tenant_id, wrapped_key)
        with self._lock:
            cipher = self._cache.get(cache_key)
        if cipher is None:
            cipher = AESGCM(self._unwrap(tenant_id, wrapped_key))
            with self._lock:
                if len(self._cache) >= _CACHE_LIMIT:
                    # Evict the oldest entry; a later miss only costs one unwrap.
                    del self._cache[next(iter(self._cache))]
                self._cache[cache_key] = cipher
        return cipher

    @staticmethod
    def _wrap_aad(tenant_id: uuid.UUID, header: bytes) -> bytes:
        return _WRAP_AAD + header + tenant_id.bytes

    @staticmethod
    def _data_aad(tenant_id: uuid.UUID, purpose: str) -> bytes:
        # The tenant id has a fixed length, so the purpose that follows cannot be confused with it.
        return _DATA_AAD + bytes([_DATA_FORMAT]) + tenant_id.bytes + purpose.encode("utf-8")


class SealingKeys:
    """One tenant's data key with the platform's index and digest keys: seals, indexes and
    digests exactly as ``FileKeyRing`` does, with the cipher and each purpose's associated data
    built once. Pickled (to a helper process of the same installation) as its raw keys."""

    def __init__(
        self, tenant_id: uuid.UUID, data_key: bytes, index_key: bytes, digest_key: bytes
    ) -> None:
        self.tenant_id = tenant_id
        self._data_key = data_key
        self._index_key = index_key
        self._digest_key = digest_key
        self._cipher = AESGCM(data_key)
        self._aads: dict[str, bytes] = {}

    def __getstate__(self) -> tuple[uuid.UUID, bytes, bytes, bytes]:
        return self.tenant_id, self._data_key, self._index_key, self._digest_key

    def __setstate__(self, state: tuple[uuid.UUID, bytes, bytes, bytes]) -> None:
        self.__init__(*state)  # type: ignore[misc]

    def seal(self, purpose: str, plaintext: str | None) -> bytes | None:
        """``FileKeyRing.encrypt`` for this tenant; None stays None."""
        if plaintext is None:
            return None
        aad = self._aads.get(purpose)
        if aad is None:
            aad = self._aads[purpose] = FileKeyRing._data_aad(self.tenant_id, purpose)
        return _seal(self._cipher, aad, purpose, plaintext)

    def blind_index(self, kind: PointKind, normalized: str) -> bytes:
        return _blind_index(self._index_key, kind, normalized)

    def digest(self, value: str | None) -> str | None:
        return _digest(self._digest_key, value)


_DATA_PREFIX = bytes([_DATA_FORMAT])


def _seal(cipher: AESGCM, aad: bytes, purpose: str, plaintext: str) -> bytes:
    """Format byte, a fresh random nonce, then the AES-GCM ciphertext and tag."""
    try:
        data = plaintext.encode("utf-8")
    except UnicodeEncodeError as exc:  # lone surrogates, e.g. from a JSON "\ud800" escape
        raise InvalidInput("text is not valid Unicode", field=purpose) from exc
    nonce = os.urandom(NONCE_BYTES)
    return _DATA_PREFIX + nonce + cipher.encrypt(nonce, data, aad)


def _blind_index(index_key: bytes, kind: PointKind, normalized: str) -> bytes:
    message = f"{kind.value}:{normalized}".encode()
    return hmac.digest(index_key, message, "sha256")[:BLIND_INDEX_BYTES]


def _digest(digest_key: bytes, value: str | None) -> str | None:
    if value is None:
        return None
    return hmac.digest(digest_key, value.encode("utf-8"), "sha256").hex()


def create_key_file(path: Path) -> None:
    """Write a new key file with fresh random keys, readable by its owner only.

    Raises AlreadyExists rather than overwrite: replacing the keys would make every stored
    personal datum unreadable.
    """
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    content = _key_file_json({1: secrets.token_bytes(KEY_BYTES)}, 1, secrets.token_bytes(KEY_BYTES))
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError as exc:
        raise AlreadyExists(f"key file {path} already exists; refusing to overwrite it") from exc
    _write_fd(fd, content, cleanup=path)


def load_key_file(path: Path) -> FileKeyRing:
    """The key ring stored in ``path``; KeyUnavailable if it is missing, malformed or exposed."""
    return FileKeyRing(*_parse_key_file(_read_key_file(path), path))


def rotate_master_key(path: Path) -> int:
    """Add a new master key to the key file, make it active and return its version.

    Existing wrapped data keys keep working (their version stays in the file) until they are
    re-wrapped with ``FileKeyRing.rewrap``. Not safe against two concurrent rotations of one file.
    """
    masters, active, index_key = _parse_key_file(_read_key_file(path), path)
    FileKeyRing(masters, active, index_key)  # refuse to rotate a file that would not load
    new_version = max(masters) + 1
    masters[new_version] = secrets.token_bytes(KEY_BYTES)
    temp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(temp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    _write_fd(fd, _key_file_json(masters, new_version, index_key), cleanup=temp)
    try:
        os.replace(temp, path)
    except OSError:
        temp.unlink(missing_ok=True)
        raise
    return new_version


def keyring_from_secrets(master_key_b64: str, index_key_b64: str) -> FileKeyRing:
    """A key ring from base64 keys given in settings, as master key version 1."""
    master = _decode_key(master_key_b64, "master_key")
    index_key = _decode_key(index_key_b64, "index_key")
    return FileKeyRing({1: master}, 1, index_key)


def _decode_key(value: object, name: str) -> bytes:
    if not isinstance(value, str):
        raise KeyUnavailable(f"{name} must be a base64 string")
    try:
        key = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise KeyUnavailable(f"{name} is not valid base64") from exc
    if len(key) != KEY_BYTES:
        raise KeyUnavailable(f"{name} must decode to {KEY_BYTES} bytes, not {len(key)}")
    return key


def _read_key_file(path: Path) -> bytes:
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError as exc:
        raise KeyUnavailable(f"key file {path} not found; create one first") from exc
    except OSError as exc:
        raise KeyUnavailable(f"key file {path} cannot be opened: {exc.strerror}") from exc
    with os.fdopen(fd, "rb") as handle:
        # Checked on the open descriptor so the file cannot be swapped between check and read.
        # Windows has no POSIX mode bits (its ACLs are not reflected in st_mode).
        if os.name == "posix" and os.fstat(handle.fileno()).st_mode & 0o077:
            raise KeyUnavailable(
                f"key file {path} is accessible by group or others; run chmod 600 on it"
            )
        return handle.read()


def _parse_key_file(raw: bytes, path: Path) -> tuple[dict[int, bytes], int, bytes]:
    try:
        data: Any = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise KeyUnavailable(f"key file {path} is not valid JSON") from exc
    if not isinstance(data, dict) or data.get("format") != KEY_FILE_FORMAT:
        raise KeyUnavailable(f"key file {path} is not a format {KEY_FILE_FORMAT} key file")
    active, entries = data.get("active"), data.get("master_keys")
    if type(active) is not int or not isinstance(entries, dict) or not entries:
        raise KeyUnavailable(f"key file {path} lacks an active version or master keys")
    masters: dict[int, bytes] = {}
    for version, encoded in entries.items():
        if not (isinstance(version, str) and version.isdecimal()):
            raise KeyUnavailable(f"key file {path} has a non-numeric master key version")
        masters[int(version)] = _decode_key(encoded, f"master key {version}")
    return masters, active, _decode_key(data.get("index_key"), "index_key")


def _key_file_json(masters: dict[int, bytes], active: int, index_key: bytes) -> bytes:
    document = {
        "format": KEY_FILE_FORMAT,
        "active": active,
        "master_keys": {
            str(v): base64.b64encode(k).decode("ascii") for v, k in sorted(masters.items())
        },
        "index_key": base64.b64encode(index_key).decode("ascii"),
    }
    return (json.dumps(document, indent=2) + "\n").encode("ascii")


def _write_fd(fd: int, content: bytes, *, cleanup: Path) -> None:
    """Write and fsync ``content``; remove the half-written file if anything fails."""
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        cleanup.unlink(missing_ok=True)
        raise
