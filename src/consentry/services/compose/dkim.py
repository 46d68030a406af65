"""DKIM signatures (RFC 6376), rsa-sha256 with relaxed/relaxed canonicalisation.

Signed here rather than with dkimpy because a campaign signs every message: dkimpy costs about
7.3 ms a signature, the RSA operation itself about 0.3 ms. The signed header list always names
the headers that carry meaning to the recipient and to mailbox providers, each once more than
it occurs, absent ones included ("over-signing", RFC 6376 section 8.15): a From, Subject,
Reply-To or List-Unsubscribe header added in transit breaks the signature instead of riding
on it.
"""

from __future__ import annotations

import base64
import hashlib
import re
import time
from datetime import datetime

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

SIGNED_HEADERS = (
    "from",
    "to",
    "subject",
    "date",
    "message-id",
    "mime-version",
    "content-type",
    "reply-to",
    "list-unsubscribe",
    "list-unsubscribe-post",
)
_WSP_RUN = re.compile(rb"[ \t]+")
_TRAILING_WSP = re.compile(rb"[ \t]+(?=\r\n)")
_FOLD = re.compile(rb"\r\n(?=[ \t])")
_SELECTOR = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?")


def relaxed_body(body: bytes) -> bytes:
    """The relaxed body canonicalisation (RFC 6376 section 3.4.4). A last line without CRLF
    loses its trailing whitespace too: SMTP ends it with CRLF, so that is what verifiers see."""
    body = _WSP_RUN.sub(b" ", _TRAILING_WSP.sub(b"", body))
    if body.endswith((b" ", b"\t")):
        body = body.rstrip(b" \t")  # the last line may lack its CRLF
    while body.endswith(b"\r\n"):
        body = body[:-2]
    return body + b"\r\n" if body else b""


def relaxed_header(name: bytes, value: bytes) -> bytes:
    """One header, relaxed (section 3.4.2): lower-case name, value unfolded, runs of
    whitespace made one space, no whitespace around the colon or at the end."""
    value = _WSP_RUN.sub(b" ", _FOLD.sub(b"", value)).strip(b" \t")
    return name.strip(b" \t").lower() + b":" + value


def split_headers(head: bytes) -> list[tuple[bytes, bytes]]:
    """The header block as (name, raw value) pairs, continuation lines kept in the value."""
    fields: list[tuple[bytes, bytes]] = []
    for line in head.split(b"\r\n"):
        if line[:1] in (b" ", b"\t") and fields:
            name, value = fields[-1]
            fields[-1] = (name, value + b"\r\n" + line)
        elif line:
            name, _, value = line.partition(b":")
            fields.append((name, value))
    return fields


def _fold_names(names: list[str]) -> str:
    lines, line = [], ""
    for name in names:
        if line and len(line) + len(name) > 66:
            lines.append(line)
            line = ""
        line += f"{name}:"
    lines.append(line)
    return "\r\n\t".join(lines).removesuffix(":")


def _fold_b64(value: str) -> str:
    return "\r\n\t".join(value[i : i + 72] for i in range(0, len(value), 72))


class DkimSigner:
    """Signs messages for one domain and selector with an RSA private key (PEM)."""

    def __init__(self, domain: str, selector: str, private_key_pem: bytes) -> None:
        key = serialization.load_pem_private_key(private_key_pem, password=None)
        if not isinstance(key, rsa.RSAPrivateKey) or key.key_size < 1024:
            raise ValueError("a DKIM key is an RSA key of at least 1024 bits (2048 advised)")
        if _SELECTOR.fullmatch(selector) is None or _SELECTOR.fullmatch(domain) is None:
            raise ValueError("selector and domain must be plain DNS labels")
        self.domain = domain.lower()
        self.selector = selector
        self._key = key

    def sign(self, message: bytes, *, now: datetime | None = None) -> bytes:
        """``message`` (CRLF line ends) with a DKIM-Signature header prepended (and a final
        CRLF appended to a body that lacks one)."""
        head, sep, body = message.partition(b"\r\n\r\n")
        if not sep:  # headers only: the body is empty
            head, body = message.removesuffix(b"\r\n"), b""
        elif body and not body.endswith(b"\r\n"):
            # End the last line as SMTP would, so every verifier hashes the same bytes.
            message, body = message + b"\r\n", body + b"\r\n"
        body_hash = base64.b64encode(hashlib.sha256(relaxed_body(body)).digest()).decode("ascii")
        fields = split_headers(head)
        by_name: dict[bytes, list[bytes]] = {}
        for raw_name, raw_value in fields:
            by_name.setdefault(raw_name.strip(b" \t").lower(), []).append(raw_value)
        signed: list[str] = []
        hashed: list[bytes] = []
        for header_name in SIGNED_HEADERS:
            key = header_name.encode("ascii")
            values = by_name.get(key, [])
            # Bottom-up, as verifiers pick instances (section 5.4.2); then once more, unmatched.
            hashed.extend(relaxed_header(key, v) + b"\r\n" for v in reversed(values))
            signed.extend([header_name] * (len(values) + 1))
        stamp = int(now.timestamp() if now is not None else time.time())
        header = (
            f"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d={self.domain};\r\n"
            f"\ts={self.selector}; t={stamp};\r\n"
            f"\th={_fold_names(signed)};\r\n"
            f"\tbh={body_hash};\r\n"
            "\tb="
        )
        name, _, value = header.encode("ascii").partition(b":")
        hashed.append(relaxed_header(name, value))
        signature = self._key.sign(b"".join(hashed), padding.PKCS1v15(), hashes.SHA256())
        b64 = base64.b64encode(signature).decode("ascii")
        return (header + _fold_b64(b64) + "\r\n").encode("ascii") + message


def generate_dkim_key(bits: int = 2048) -> tuple[bytes, str]:
    """A new RSA key: its PKCS#8 PEM, and the TXT record to publish at
    ``<selector>._domainkey.<domain>`` (``v=DKIM1; k=rsa; p=<base64 DER public key>``)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return pem, f"v=DKIM1; k=rsa; p={base64.b64encode(der).decode('ascii')}"
