"""Message content: SMS length in segments, and the review every message passes before it goes.

The review has two halves. Content checks (deceptive subjects, link shorteners, spam-trigger
and disrespectful phrases, shouting) apply to anything a tenant writes. Required-element checks
apply to a *composed* message, after the system has added the compliance parts: a marketing
email needs one-click unsubscribe headers (RFC 8058, required by Gmail and Yahoo for bulk
senders since 2024), a visible unsubscribe link and the sender's postal address (CAN-SPAM
15 U.S.C. 7704(a)(5)); a marketing SMS names its sender and says how to opt out (CTIA Messaging
Principles, TCPA). A failed review denies the message with ``CONTENT_NOT_COMPLIANT``.
"""

from __future__ import annotations

import html as html_lib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from consentry.domain.model import Category, Channel

# -- SMS segments ------------------------------------------------------------------------------

# GSM 03.38 default alphabet (3GPP TS 23.038 section 6.2.1), row by row; 0x1B (escape) is left
# out because it introduces the extension table below and is never text by itself.
GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞÆæßÉ"
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# The extension table: each is sent as escape + character, two septets.
GSM_EXTENSION = frozenset("\f^{}\\[~]|€")
SMS_MAX_SEGMENTS = 10

Encoding = Literal["GSM-7", "UCS-2"]


@dataclass(frozen=True, slots=True)
class SmsEncoding:
    """How an SMS text is sent: its encoding, length in units, and the segments it needs."""

    encoding: Encoding
    units: int  # GSM septets, or UTF-16 code units for UCS-2
    segments: int
    per_segment: int  # units that fit in one segment at this length


def _pack(sizes: list[int], capacity: int) -> int:
    """Segments needed when no character may straddle two segments (handsets drop a split
    escape sequence or surrogate pair), so a boundary case can need one more than ceil()."""
    segments, used = 1, 0
    for size in sizes:
        if used + size > capacity:
            segments, used = segments + 1, 0
        used += size
    return segments


def sms_segments(text: str) -> SmsEncoding:
    """The encoding, length and segment count of ``text`` as an SMS.

    GSM-7 when every character is in the GSM 03.38 alphabet (extension characters count two
    septets), else UCS-2 in UTF-16 code units. One segment holds 160 septets or 70 units; a
    concatenated message loses 7 septets or 3 units per segment to its header (153 and 67).
    """
    if all(c in GSM_BASIC or c in GSM_EXTENSION for c in text):
        sizes = [2 if c in GSM_EXTENSION else 1 for c in text]
        encoding: Encoding = "GSM-7"
        single, multi = 160, 153
    else:
        sizes = [2 if ord(c) > 0xFFFF else 1 for c in text]
        encoding = "UCS-2"
        single, multi = 70, 67
    units = sum(sizes)
    if units == 0:
        return SmsEncoding(encoding, 0, 0, single)
    if units <= single:
        return SmsEncoding(encoding, units, 1, single)
    return SmsEncoding(encoding, units, _pack(sizes, multi), multi)


# -- content review ----------------------------------------------------------------------------

Severity = Literal["error", "warning"]


@dataclass(frozen=True, slots=True)
class Finding:
    code: str  # stable, e.g. LINK_SHORTENER
    severity: Severity
    message: str
    field: str  # subject, text, html, headers


@dataclass(frozen=True, slots=True)
class Review:
    findings: tuple[Finding, ...]

    @property
    def passed(self) -> bool:
        """True when no finding is an error (warnings are shown to the author, not enforced)."""
        return not any(f.severity == "error" for f in self.findings)

    @property
    def codes(self) -> frozenset[str]:
        return frozenset(f.code for f in self.findings)


@dataclass(frozen=True, slots=True)
class ContentUnderReview:
    """One message to review. With ``composed`` set, the message is the final one (compliance
    parts added) and its required elements are checked too; ``brand_name``,
    ``postal_address`` and ``unsubscribe_url`` say what it should contain."""

    channel: Channel
    category: Category
    text: str
    subject: str | None = None
    html: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    in_reply_thread: bool = False
    composed: bool = False
    brand_name: str | None = None
    postal_address: str | None = None
    unsubscribe_url: str | None = None


@dataclass(frozen=True, slots=True)
class ReviewRules:
    spam_phrases: tuple[str, ...] = (
        "act now",
        "100% free",
        "risk-free",
        "winner",
        "guaranteed",
        "click here",
        "cash bonus",
        "limited time only",
        "no strings attached",
    )
    disrespectful_phrases: tuple[str, ...] = ("you idiot", "stupid customer", "shut up")
    # Service messages still reach people who opted out of marketing: they may not carry an
    # offer. These phrases mark one; a service message containing any fails its review.
    promotional_phrases: tuple[str, ...] = (
        "% off", "percent off", "discount code", "promo code", "coupon", "buy now", "shop now",
        "special offer", "limited time offer", "flash sale", "exclusive deal", "order now",
        "save up to",
    )  # fmt: skip
    link_shorteners: tuple[str, ...] = (
        "bit.ly", "tinyurl.com", "t.co", "goo.gl", "ow.ly", "is.gd", "buff.ly", "rebrand.ly",
        "cutt.ly", "shorturl.at", "tiny.cc", "rb.gy", "s.id", "t.ly", "bl.ink",
    )  # fmt: skip
    # Prefixes mail clients add to replies and forwards, English and localised (German AW/WG,
    # French TR, Scandinavian SV/VS).
    reply_prefixes: tuple[str, ...] = ("re", "fw", "fwd", "aw", "wg", "tr", "sv", "vs")
    capitals_threshold: float = 0.5  # share of upper-case among cased letters
    capitals_min_letters: int = 12  # short texts ("OK", "VW") say nothing about shouting
    all_caps_subject_min_letters: int = 4
    max_subject_exclamations: int = 1


DEFAULT_RULES = ReviewRules()

_TAG = re.compile(r"<[^>]*>")
_STOP = re.compile(r"\bSTOP\b|(?i:\b(?:reply|text|txt|send)\s+stop\b)")
_URL_START = re.compile(r"(?i)(?:https?:)?//")
_HOST = re.compile(r"(?i)(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+[a-z]{2,63}")
_TOKEN_SPLIT = re.compile(r"[\s\"'<>()\[\]{}|\\^`,]+")


def _phrase_pattern(phrase: str) -> re.Pattern[str]:
    words = (re.escape(w) for w in phrase.split())
    return re.compile(r"(?<!\w)" + r"\s+".join(words) + r"(?!\w)", re.IGNORECASE)


def html_text(markup: str) -> str:
    """The visible text of an HTML part, roughly: tags become spaces, entities are decoded."""
    return html_lib.unescape(_TAG.sub(" ", markup))


def has_opt_out_instruction(text: str) -> bool:
    """True when an SMS tells the reader how to opt out ("Reply STOP", "Text STOP" ...)."""
    return _STOP.search(text) is not None


def _hosts(text: str) -> list[str]:
    """Hostnames of links in ``text``: after http://, https:// or //, and bare ``host/path``
    or ``host`` tokens; e-mail addresses without a scheme are not links."""
    found = []
    for token in _TOKEN_SPLIT.split(text):
        starts = [m.end() for m in _URL_START.finditer(token)]
        if not token.startswith(("/", "@")) and "@" not in token.split("/", 1)[0]:
            starts.insert(0, 0)
        for start in starts:
            authority = re.split(r"[/?#]", token[start:], maxsplit=1)[0].rsplit("@", 1)[-1]
            host = authority.split(":", 1)[0].rstrip(".,;:!?").lower()
            if _HOST.fullmatch(host):
                found.append(host)
    return found


def _capitals(value: str) -> tuple[int, int]:
    cased = [c for c in value if c.isupper() or c.islower()]
    return sum(c.isupper() for c in cased), len(cased)


def _fields(msg: ContentUnderReview) -> list[tuple[str, str]]:
    out = [("subject", msg.subject)] if msg.subject else []
    out.append(("text", msg.text))
    if msg.html:
        out.append(("html", html_text(msg.html)))
    return out


def _error(code: str, message: str, field: str) -> Finding:
    return Finding(code, "error", message, field)


def _warning(code: str, message: str, field: str) -> Finding:
    return Finding(code, "warning", message, field)


def _check_subject(subject: str, msg: ContentUnderReview, rules: ReviewRules) -> list[Finding]:
    out = []
    prefixes = "|".join(re.escape(p) for p in rules.reply_prefixes)
    # An optional reply counter ("Re[2]:") and the full-width colon of CJK mail clients.
    reply_like = re.match(rf"(?i)\s*(?:{prefixes})(?:\[\d+\])?\s*[:\uff1a]", subject)
    if reply_like and not msg.in_reply_thread:
        out.append(
            _error("DECEPTIVE_SUBJECT", "the subject poses as a reply or forward", "subject")
        )
    upper, letters = _capitals(subject)
    if letters >= rules.all_caps_subject_min_letters and upper == letters:
        out.append(_error("EXCESSIVE_CAPITALS", "the subject is all capitals", "subject"))
    if subject.count("!") > rules.max_subject_exclamations:
        limit = rules.max_subject_exclamations
        out.append(
            _error("EXCESSIVE_EXCLAMATION", f"more than {limit} '!' in the subject", "subject")
        )
    return out


def _check_text(name: str, value: str, rules: ReviewRules, errored: set[str]) -> list[Finding]:
    out = [
        _warning("SPAM_PHRASE", f"spam-trigger phrase {phrase!r}", name)
        for phrase in rules.spam_phrases
        if _phrase_pattern(phrase).search(value)
    ]
    out += [
        _error("DISRESPECTFUL_PHRASE", f"disrespectful phrase {phrase!r}", name)
        for phrase in rules.disrespectful_phrases
        if _phrase_pattern(phrase).search(value)
    ]
    upper, letters = _capitals(value)
    shouting = letters >= rules.capitals_min_letters and upper / letters > rules.capitals_threshold
    if shouting and "EXCESSIVE_CAPITALS" not in errored:
        share = f"{upper * 100 // letters}%"
        out.append(_warning("EXCESSIVE_CAPITALS", f"{share} of the letters are capitals", name))
    if "!!" in value and "EXCESSIVE_EXCLAMATION" not in errored:
        out.append(_warning("EXCESSIVE_EXCLAMATION", "repeated exclamation marks", name))
    return out


def _check_service_content(msg: ContentUnderReview, rules: ReviewRules) -> list[Finding]:
    """A service message (allowed after a marketing opt-out) carrying an offer is marketing."""
    out = []
    for name, value in _fields(msg):
        folded = value.casefold()
        for phrase in rules.promotional_phrases:
            hit = (
                phrase in folded
                if phrase.startswith("%")
                else _phrase_pattern(phrase).search(value)
            )
            if hit:
                out.append(
                    _error(
                        "PROMOTIONAL_IN_SERVICE",
                        f"{phrase!r} makes this an offer: service messages reach people who "
                        "opted out of marketing, so offers go under a marketing topic",
                        name,
                    )
                )
    return out


def _shortener(host: str, rules: ReviewRules) -> str | None:
    return next((s for s in rules.link_shorteners if host == s or host.endswith("." + s)), None)


def _check_links(msg: ContentUnderReview, rules: ReviewRules) -> list[Finding]:
    out = []
    parts = [("text", msg.text)] + ([("html", msg.html)] if msg.html else [])
    for name, value in parts:
        for host in dict.fromkeys(_hosts(value)):
            short = _shortener(host, rules)
            if short is not None:
                out.append(_error("LINK_SHORTENER", f"a link through the shortener {short}", name))
    return out


def _words(value: str) -> list[str]:
    return re.findall(r"\w+", value.casefold())


def _contains_words(haystack: str, needle: str) -> bool:
    """True when the words of ``needle`` appear in order, side by side, in ``haystack``
    (punctuation, line breaks and markup between them do not matter)."""
    return f" {' '.join(_words(needle))} " in f" {' '.join(_words(haystack))} "


def _list_unsubscribe_ok(headers: Mapping[str, str]) -> bool:
    value = re.sub(r"\r?\n[ \t]", " ", headers.get("list-unsubscribe", ""))
    uris = [u.strip() for u in re.findall(r"<([^>]*)>", value)]
    return any(u.startswith("https://") for u in uris) and any(
        u.lower().startswith("mailto:") for u in uris
    )


def _unsubscribe_visible(value: str, url: str | None, *, markup: bool) -> bool:
    if url is None:
        return re.search(r"(?i)unsubscribe", value) is not None and "https://" in value
    if markup:
        href = r"""href\s*=\s*["']?""" + re.escape(html_lib.escape(url))
        return re.search(href, value) is not None
    return url in value


def _check_email_elements(msg: ContentUnderReview) -> list[Finding]:
    out = []
    headers = {k.lower(): v for k, v in msg.headers.items()}
    visible = _unsubscribe_visible(msg.text, msg.unsubscribe_url, markup=False) and (
        msg.html is None or _unsubscribe_visible(msg.html, msg.unsubscribe_url, markup=True)
    )
    if not _list_unsubscribe_ok(headers) or not visible:
        why = "List-Unsubscribe (https and mailto) and a visible unsubscribe link are required"
        out.append(_error("MISSING_UNSUBSCRIBE", why, "headers"))
    if headers.get("list-unsubscribe-post", "").strip() != "List-Unsubscribe=One-Click":
        why = "List-Unsubscribe-Post: List-Unsubscribe=One-Click is missing"
        out.append(_error("MISSING_ONE_CLICK", why, "headers"))
    address = msg.postal_address
    parts = [v for name, v in _fields(msg) if name != "subject"]
    if not address or not _words(address) or not all(_contains_words(v, address) for v in parts):
        out.append(
            _error("MISSING_POSTAL_ADDRESS", "the sender's postal address is missing", "text")
        )
    return out


def _check_sms_elements(msg: ContentUnderReview) -> list[Finding]:
    out = []
    if not has_opt_out_instruction(msg.text):
        why = "a marketing SMS says how to opt out (Reply STOP)"
        out.append(_error("MISSING_OPT_OUT_INSTRUCTION", why, "text"))
    if not msg.brand_name or not _contains_words(msg.text, msg.brand_name):
        out.append(_error("MISSING_SENDER_IDENTITY", "a marketing SMS names its sender", "text"))
    return out


def review_message(msg: ContentUnderReview, rules: ReviewRules = DEFAULT_RULES) -> Review:
    """Review one message: content checks always, required elements when it is composed and
    marketing. Errors fail the review; warnings are advice."""
    findings: list[Finding] = []
    errored: set[str] = set()
    if msg.subject:
        subject_findings = _check_subject(msg.subject, msg, rules)
        findings += subject_findings
        errored = {f.code for f in subject_findings}
    for name, value in _fields(msg):
        findings += _check_text(name, value, rules, errored if name == "subject" else set())
    findings += _check_links(msg, rules)
    if msg.category is Category.SERVICE:
        findings += _check_service_content(msg, rules)
    if msg.composed and msg.category is Category.MARKETING:
        if msg.channel is Channel.EMAIL:
            findings += _check_email_elements(msg)
        elif msg.channel is Channel.SMS:
            findings += _check_sms_elements(msg)
    return Review(tuple(findings))
