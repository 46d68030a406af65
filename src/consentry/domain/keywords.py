"""SMS keywords: which replies mean "stop", "start again" or "help", per language.

The matching rule (one rule for every language, so that a person's "no" is read the same way
wherever it arrives):

1. The text is normalised: Unicode compatibility form, accents dropped, case folded, apostrophes
   removed ("don't" -> "dont"), every other character that is not a letter or digit (punctuation,
   emoji, hyphens) becomes a space. "Opt-Out!!! 🛑" reads as the words ``opt out``.
2. The text **is a keyword** when, after leaving out the language's filler words (politeness and
   the words people put around a keyword: "please", "me", "texting", "all", "thanks" ...), what
   remains is one or more keyword phrases and nothing else. So "stop please", "please stop",
   "STOP!!!", "stop all", "unsubscribe me", "stop texting me" and "opt-out" are opt-outs, while
   "Don't stop sending me deals" and "please cancel my appointment" are not: "dont", "deals",
   "my" and "appointment" are neither keywords nor fillers.
3. When the remaining phrases are of different kinds the safer reading wins: an opt-out over
   everything, then help (which changes nothing), then opt-in. A person who writes "start stop"
   is not resubscribed.
4. Otherwise the text **reads like a refusal** (``REFUSAL_LIKE``, for human review) when it
   contains one of the language's refusal phrases ("leave me alone", "remove me", "dont text",
   "no more messages", or a strong opt-out word such as "stop" or "unsubscribe" inside a longer
   sentence) that is not directly preceded by a negation ("dont stop sending" is not a refusal).
5. Anything else is ``OTHER``.

Languages are tried in the order of the mapping given; the first whose lists make the text a
keyword decides it, then the first in which it reads like a refusal. Lists and reply texts are
configurable per tenant and language (``KeywordLists``); ``DEFAULT_KEYWORDS`` holds English
(the carrier-standard CTIA words), Spanish, French and German. Reply templates use ``$brand``,
``$support_contact`` and ``$frequency`` (``string.Template``: no attribute access, unknown
placeholders are left as they are).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from functools import lru_cache
from string import Template

from consentry.domain.errors import InvalidInput
from consentry.domain.signals import KeywordKind

# The default reply texts stay within the GSM-7 alphabet (it has ä, ö, ü and é, not á or ê):
# a text that needs UCS-2 fits 70 characters a segment instead of 160.
# ', right single quotation mark, modifier letter apostrophe, grave and acute accents.
_APOSTROPHES = str.maketrans("", "", "'\u2019\u02bc`\u00b4")
# Safer reading first: an opt-out beats help, help beats an opt-in.
_PRECEDENCE = (KeywordKind.OPT_OUT, KeywordKind.HELP, KeywordKind.OPT_IN)
DEFAULT_LANGUAGE = "en"


@dataclass(frozen=True, slots=True)
class KeywordLists:
    """The keywords, filler words, refusal phrases and reply texts of one language.

    Every list entry is a word or a phrase of words, matched after normalisation (so case,
    accents and punctuation in the entries do not matter).
    """

    language: str
    opt_out: tuple[str, ...]
    opt_in: tuple[str, ...]
    help: tuple[str, ...]
    fillers: tuple[str, ...] = ()  # words allowed around a keyword without changing it
    refusal: tuple[str, ...] = ()  # phrases that make a non-keyword text worth a human look
    negators: tuple[str, ...] = ()  # a refusal phrase right after one of these is not a refusal
    help_reply: str = (
        "$brand: Help at $support_contact. Msg&data rates may apply. Reply STOP to opt out."
    )
    opt_out_reply: str = (
        "$brand: You are unsubscribed and will receive no further messages. "
        "Reply START to resubscribe."
    )
    opt_in_reply: str = (
        "$brand: You are subscribed again. $frequency Msg&data rates may apply. "
        "Reply STOP to opt out, HELP for help."
    )


DEFAULT_KEYWORDS: Mapping[str, KeywordLists] = {
    "en": KeywordLists(
        language="en",
        opt_out=("stop", "stopall", "unsubscribe", "cancel", "end", "quit", "revoke", "optout",
                 "opt out"),
        opt_in=("start", "yes", "unstop"),
        help=("help", "info"),
        fillers=("please", "pls", "plz", "thanks", "thank", "you", "thx", "ty", "now", "me",
                 "all", "ok", "okay", "just", "texting", "texts", "text", "messaging", "messages",
                 "message", "sending", "sms", "from", "this", "list", "hi", "hello", "immediately"),
        refusal=("stop", "stopall", "unsubscribe", "optout", "opt out", "revoke",
                 "leave me alone", "remove me", "take me off", "dont text", "dont message",
                 "dont contact", "dont send", "do not text", "do not message", "do not contact",
                 "do not send", "no more messages", "no more texts", "no more text",
                 "stop texting", "stop messaging", "stop sending", "stop contacting",
                 "not interested", "wrong number", "lose my number", "go away"),
        negators=("dont", "not", "never", "didnt", "doesnt", "wont", "cant"),
    ),
    "es": KeywordLists(
        language="es",
        opt_out=("baja", "alto", "parar", "para", "detener", "cancelar", "stop", "darme de baja",
                 "dar de baja"),
        opt_in=("alta", "comenzar", "empezar", "iniciar", "si", "start"),
        help=("ayuda", "informacion", "info"),
        fillers=("por", "favor", "porfa", "gracias", "ya", "me", "ahora", "los", "mensajes",
                 "todo", "todos", "quiero"),
        refusal=("baja", "dejen de", "deja de", "no me escriban", "no me envien", "no quiero",
                 "no mas mensajes", "no me interesa", "numero equivocado", "eliminenme"),
        negators=("no", "nunca"),
        help_reply="$brand: Ayuda en $support_contact. Pueden aplicarse tarifas. "
        "Responda STOP o BAJA para darse de baja.",
        opt_out_reply="$brand: Se ha dado de baja y no recibira mas mensajes. "
        "Responda ALTA para volver a suscribirse.",
        opt_in_reply="$brand: Se ha vuelto a suscribir. $frequency Pueden aplicarse tarifas. "
        "Responda STOP o BAJA para darse de baja, AYUDA para ayuda.",
    ),
    "fr": KeywordLists(
        language="fr",
        opt_out=("arret", "arreter", "stop", "desabonner", "desinscrire", "desinscription",
                 "annuler"),
        opt_in=("demarrer", "commencer", "oui", "start"),
        help=("aide", "info"),
        fillers=("svp", "stp", "sil", "vous", "te", "plait", "merci", "moi", "me", "je", "veux",
                 "maintenant", "tout", "tous", "messages", "sms", "se", "de"),
        refusal=("arretez", "arrete", "desabonnez moi", "laissez moi tranquille",
                 "plus de messages", "pas interesse", "mauvais numero", "retirez moi"),
        negators=("pas", "ne", "jamais"),
        help_reply="$brand : aide au $support_contact. Des frais peuvent s'appliquer. "
        "Repondez STOP pour vous desabonner.",
        opt_out_reply="$brand : vous etes desabonne et ne recevrez plus de messages. "
        "Repondez START pour vous reabonner.",
        opt_in_reply="$brand : vous etes de nouveau abonne. $frequency Des frais peuvent "
        "s'appliquer. Repondez STOP pour vous desabonner, AIDE pour l'aide.",
    ),
    "de": KeywordLists(
        language="de",
        opt_out=("stopp", "stop", "abmelden", "abbestellen", "austragen", "kundigen", "ende",
                 "beenden"),
        opt_in=("start", "ja", "anmelden"),
        help=("hilfe", "info"),
        fillers=("bitte", "danke", "mich", "jetzt", "sofort", "alle", "alles", "sms",
                 "nachrichten"),
        refusal=("keine nachrichten", "keine sms", "lasst mich in ruhe", "nicht interessiert",
                 "falsche nummer", "entfernen sie mich", "nicht mehr schreiben"),
        negators=("nicht", "nie", "kein"),
        help_reply="$brand: Hilfe unter $support_contact. Es können Gebühren anfallen. "
        "Antworten Sie STOPP zum Abmelden.",
        opt_out_reply="$brand: Sie sind abgemeldet und erhalten keine Nachrichten mehr. "
        "Antworten Sie START, um sich wieder anzumelden.",
        opt_in_reply="$brand: Sie sind wieder angemeldet. $frequency Es können Gebühren "
        "anfallen. STOPP zum Abmelden, HILFE für Hilfe.",
    ),
}  # fmt: skip


def normalise(text: str) -> tuple[str, ...]:
    """The words of ``text`` as the classifier compares them (see the module docstring)."""
    decomposed = unicodedata.normalize("NFKD", text.translate(_APOSTROPHES))
    folded = "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold()
    cleaned = "".join(ch if ch.isalnum() else " " for ch in folded)
    return tuple(cleaned.split())


@dataclass(frozen=True, slots=True)
class _Compiled:
    phrases: tuple[tuple[tuple[str, ...], KeywordKind], ...]  # longest first
    fillers: frozenset[str]
    refusal: tuple[tuple[str, ...], ...]
    negators: tuple[tuple[str, ...], ...]


def _phrases(entries: Iterable[str]) -> list[tuple[str, ...]]:
    return [words for words in map(normalise, entries) if words]


@lru_cache(maxsize=256)
def _compile(lists: KeywordLists) -> _Compiled:
    kinds = (
        (KeywordKind.OPT_OUT, lists.opt_out),
        (KeywordKind.OPT_IN, lists.opt_in),
        (KeywordKind.HELP, lists.help),
    )
    phrases = [(words, kind) for kind, entries in kinds for words in _phrases(entries)]
    phrases.sort(key=lambda item: -len(item[0]))
    return _Compiled(
        phrases=tuple(phrases),
        fillers=frozenset(word for words in _phrases(lists.fillers) for word in words),
        refusal=tuple(_phrases(lists.refusal)),
        negators=tuple(_phrases(lists.negators)),
    )


def _keyword_kind(words: tuple[str, ...], compiled: _Compiled) -> KeywordKind | None:
    """The kind when ``words`` are keyword phrases and fillers only, else None."""
    found: set[KeywordKind] = set()
    i = 0
    while i < len(words):
        for phrase, kind in compiled.phrases:
            if words[i : i + len(phrase)] == phrase:
                found.add(kind)
                i += len(phrase)
                break
        else:
            if words[i] not in compiled.fillers:
                return None
            i += 1
    return next((kind for kind in _PRECEDENCE if kind in found), None)


def _reads_like_refusal(words: tuple[str, ...], compiled: _Compiled) -> bool:
    for phrase in compiled.refusal:
        size = len(phrase)
        for start in range(len(words) - size + 1):
            if words[start : start + size] != phrase:
                continue
            if not any(
                start >= len(neg) and words[start - len(neg) : start] == neg
                for neg in compiled.negators
            ):
                return True
    return False


def classify(
    text: str, lists: Mapping[str, KeywordLists] | None = None
) -> tuple[KeywordKind, str | None]:
    """What an inbound text means, and the language whose lists matched (None for OTHER)."""
    languages = DEFAULT_KEYWORDS if lists is None else lists
    words = normalise(text)
    if not words:
        return KeywordKind.OTHER, None
    compiled = [(code, _compile(entry)) for code, entry in languages.items()]
    for code, entry in compiled:
        kind = _keyword_kind(words, entry)
        if kind is not None:
            return kind, code
    for code, entry in compiled:
        if _reads_like_refusal(words, entry):
            return KeywordKind.REFUSAL_LIKE, code
    return KeywordKind.OTHER, None


def _lists_for(language: str | None, lists: Mapping[str, KeywordLists] | None) -> KeywordLists:
    languages = DEFAULT_KEYWORDS if lists is None else lists
    found = languages.get(language or DEFAULT_LANGUAGE) or languages.get(DEFAULT_LANGUAGE)
    return found or DEFAULT_KEYWORDS[DEFAULT_LANGUAGE]


def _render(template: str, **values: str) -> str:
    return " ".join(Template(template).safe_substitute(values).split())


def opt_out_reply(
    brand: str, *, language: str | None = None, lists: Mapping[str, KeywordLists] | None = None
) -> str:
    """The one confirmation of an opt-out: the brand and how to come back, no marketing."""
    return _render(_lists_for(language, lists).opt_out_reply, brand=brand)


def help_reply(
    brand: str,
    support_contact: str,
    *,
    language: str | None = None,
    lists: Mapping[str, KeywordLists] | None = None,
) -> str:
    """The answer to HELP/INFO: the brand, where to get help, and the STOP instruction."""
    return _render(
        _lists_for(language, lists).help_reply, brand=brand, support_contact=support_contact
    )


def opt_in_reply(
    brand: str,
    frequency: str,
    *,
    language: str | None = None,
    lists: Mapping[str, KeywordLists] | None = None,
) -> str:
    """The confirmation of an opt-in: the brand, the message frequency, STOP and HELP."""
    return _render(_lists_for(language, lists).opt_in_reply, brand=brand, frequency=frequency)


@dataclass(frozen=True, slots=True)
class KeywordReplyTexts:
    """The reply texts of one deployment (support contact and frequency fixed), answering per
    brand in the language whose keyword matched (its reply texts; ``language`` when it is not
    known): the shape ``services.signals.KeywordReplies`` expects."""

    support_contact: str
    frequency: str
    language: str = DEFAULT_LANGUAGE
    lists: Mapping[str, KeywordLists] | None = None

    def opt_out(self, brand: str, language: str | None = None) -> str:
        return opt_out_reply(brand, language=language or self.language, lists=self.lists)

    def opt_in(self, brand: str, language: str | None = None) -> str:
        return opt_in_reply(
            brand, self.frequency, language=language or self.language, lists=self.lists
        )

    def help(self, brand: str, language: str | None = None) -> str:
        return help_reply(
            brand, self.support_contact, language=language or self.language, lists=self.lists
        )

    def with_lists(self, lists: Mapping[str, KeywordLists]) -> KeywordReplyTexts:
        """The same replies answered from ``lists`` (a tenant's own texts where it has them)."""
        return replace(self, lists=lists)


_LIST_FIELDS = ("opt_out", "opt_in", "help", "fillers", "refusal", "negators")
_REPLY_FIELDS = ("help_reply", "opt_out_reply", "opt_in_reply")
_MAX_ENTRIES = 500
_MAX_TEXT = 320  # two SMS segments
_MAX_STOP_TEXT = 140  # one segment, with room for the business's name in place of $brand


def extend_keywords(
    custom: Mapping[str, object], base: Mapping[str, KeywordLists] = DEFAULT_KEYWORDS
) -> dict[str, KeywordLists]:
    """``base`` with a deployment's own words and replies (the parsed JSON of a keywords file).

    ``custom`` maps a language code to an object with any of the list fields (``opt_out``,
    ``opt_in``, ``help``, ``fillers``, ``refusal``, ``negators``: lists of words or phrases) and
    reply texts (``help_reply``, ``opt_out_reply``, ``opt_in_reply``). Words are **added** to a
    known language's lists, so the carrier-standard words can never be configured away; reply
    texts replace the defaults. A new language needs at least one opt-out word. InvalidInput
    names the first thing wrong.
    """
    out = dict(base)
    stops = _stop_phrases(base)
    for code, entry in custom.items():
        where = f"keywords.{code}"
        if not isinstance(entry, Mapping) or not code.isascii() or not 1 <= len(code) <= 16:
            raise InvalidInput(f"{where}: an object per language code", field=where)
        unknown = set(entry) - {*_LIST_FIELDS, *_REPLY_FIELDS}
        if unknown:
            raise InvalidInput(f"{where}: unknown field {sorted(unknown)[0]}", field=where)
        changes: dict[str, object] = {}
        known = out.get(code)
        for name in _LIST_FIELDS:
            words = entry.get(name, [])
            if (
                not isinstance(words, list)
                or len(words) > _MAX_ENTRIES
                or not all(
                    isinstance(w, str) and normalise(w) and len(w) <= _MAX_TEXT for w in words
                )
            ):
                raise InvalidInput(f"{where}.{name}: a list of words or phrases", field=where)
            if name in _NEVER_STOP:
                for phrase in words:
                    if _contains(normalise(phrase), stops):
                        raise InvalidInput(
                            f"{where}.{name}: {phrase!r} contains an opt-out word, which must "
                            "keep meaning stop",
                            field=where,
                        )
            have: tuple[str, ...] = getattr(known, name) if known else ()
            changes[name] = have + tuple(w for w in words if w not in have)
        for name in _REPLY_FIELDS:
            if name in entry:
                text = entry[name]
                if not isinstance(text, str) or not text.strip() or len(text) > _MAX_TEXT:
                    raise InvalidInput(f"{where}.{name}: a text of at most {_MAX_TEXT} characters",
                                       field=where)  # fmt: skip
                _check_reply(f"{where}.{name}", name, text)
                changes[name] = text
        if known is None:
            if not changes["opt_out"]:
                raise InvalidInput(f"{where}: a new language needs opt_out words", field=where)
            out[code] = KeywordLists(language=code, **changes)  # type: ignore[arg-type]
        else:
            out[code] = replace(known, **changes)  # type: ignore[arg-type]
    return out


_LINK = re.compile(r"https?://|www\.|\b[a-z0-9-]+\.(com|net|org|ly|io|co)\b", re.IGNORECASE)


def _check_reply(where: str, name: str, text: str) -> None:
    """Every reply names the business (``$brand``); the opt-out confirmation is one short
    message with no link in it: it confirms the stop and carries nothing else."""
    if "$brand" not in text:
        raise InvalidInput(f"{where}: a reply must name the business with $brand", field=where)
    if name == "opt_out_reply":
        if _LINK.search(text):
            raise InvalidInput(
                f"{where}: the opt-out confirmation may not carry a link", field=where
            )
        if len(text) > _MAX_STOP_TEXT:
            raise InvalidInput(
                f"{where}: the opt-out confirmation is one message of at most "
                f"{_MAX_STOP_TEXT} characters",
                field=where,
            )


# Lists whose words could otherwise turn a "stop" into something else: an opt-out word inside
# an opt-in or help phrase would out-match it (longest phrase first), and as a filler it would
# be ignored. Refusal phrases and negators only ever lead to a human review.
_NEVER_STOP = frozenset({"opt_in", "help", "fillers"})


def _stop_phrases(base: Mapping[str, KeywordLists]) -> frozenset[tuple[str, ...]]:
    lists = [*base.values(), *DEFAULT_KEYWORDS.values()]
    return frozenset(normalise(p) for entry in lists for p in entry.opt_out if normalise(p))


def _contains(words: tuple[str, ...], phrases: frozenset[tuple[str, ...]]) -> bool:
    return any(words[i : i + len(p)] == p for p in phrases for i in range(len(words) - len(p) + 1))


__all__ = [
    "DEFAULT_KEYWORDS",
    "KeywordLists",
    "KeywordReplyTexts",
    "classify",
    "extend_keywords",
    "help_reply",
    "normalise",
    "opt_in_reply",
    "opt_out_reply",
]
