"""Small checks on names and values shared by the domain modules."""

from __future__ import annotations

import functools
import posixpath
import re
import unicodedata
from datetime import UTC, datetime

from .errors import BadRequest

SLUG_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")
SLUG_MAX = 64


def check_slug(value: str, field: str) -> str:
    if not SLUG_RE.fullmatch(value) or "--" in value:
        raise BadRequest(
            f"{field}: '{value}' is not a valid slug (1-64 characters: lowercase letters, "
            "digits and single hyphens, not starting or ending with a hyphen)",
            code="invalid_field",
        )
    return value


def slugify(text: str, fallback: str = "project") -> str:
    """A URL-safe slug made from any display name ('My Project!' -> 'my-project'); ``fallback``
    when nothing of it is left ('日本語')."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    slug = slug[:SLUG_MAX].rstrip("-")
    return slug or fallback


DB_ID_MAX = 2**31 - 1  # ids are 32-bit integers in the database


def db_id(text: str) -> int | None:
    """``text`` as a row id when it can be one (ASCII digits, within 32 bits), else None."""
    if text.isascii() and text.isdigit() and len(text) <= 10 and int(text) <= DB_ID_MAX:
        return int(text)
    return None


def check_text(value: str, field: str, *, max_length: int, allow_empty: bool = False) -> str:
    value = value.strip()
    if not value and not allow_empty:
        raise BadRequest(f"{field}: must not be empty", code="invalid_field")
    if len(value) > max_length:
        raise BadRequest(
            f"{field}: is {len(value)} characters long, at most {max_length} allowed",
            code="invalid_field",
        )
    if any(unicodedata.category(ch) == "Cc" and ch not in "\n\t" for ch in value):
        raise BadRequest(f"{field}: must not contain control characters", code="invalid_field")
    return value


# characters that reorder the text shown around them ('report\u202eexe.txt' shows as
# 'reporttxt.exe'): fine inside prose, a spoofing tool inside a name
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def check_name(value: str, field: str, *, max_length: int) -> str:
    """A display name: text on one line, without characters that reorder how it shows."""
    value = check_text(value, field, max_length=max_length)
    if "\n" in value or "\t" in value:
        raise BadRequest(
            f"{field}: must be one line (no line breaks or tabs)", code="invalid_field"
        )
    if any(ch in BIDI_CONTROLS for ch in value):
        raise BadRequest(
            f"{field}: must not contain bidirectional control characters (U+202A-U+202E, "
            "U+2066-U+2069)",
            code="invalid_field",
        )
    return value


def parse_time(value: str, field: str) -> datetime:
    """An ISO 8601 date or date-time as an aware UTC datetime (no zone: UTC)."""
    shown = repr(value[:40])
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest(
            f"{field}: {shown} is not an ISO 8601 date or date-time (e.g. 2026-01-31 or "
            "2026-01-31T12:00:00Z)",
            code="invalid_parameter",
        ) from None
    if not parsed.tzinfo:
        return parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)  # (as the database stores it)
    except OverflowError:  # e.g. 0001-01-01T00:00+01:00 is in the year 0 in UTC
        raise BadRequest(
            f"{field}: {shown} is out of range in UTC", code="invalid_parameter"
        ) from None


def parse_bool(value: str, field: str) -> bool:
    lowered = value.lower()
    if lowered in ("1", "true", "yes"):
        return True
    if lowered in ("0", "false", "no"):
        return False
    raise BadRequest(f"{field}: '{value}' is not a boolean (true/false)", code="invalid_parameter")


# MLflow's rule for metric, param and tag names (``mlflow.utils.validation``): what it would
# refuse through its own API is refused on ours too, so a run reads the same in every client
_RUN_KEY_CHARACTERS = re.compile(r"[/\w.\- :]+")


@functools.lru_cache(maxsize=4096)  # a run logs the same few names at every step
def run_key_problem(name: str) -> str | None:
    """Why MLflow would refuse ``name`` as a metric, param or tag name, or None when it would
    not (the length and emptiness are checked with the rest of the request)."""
    if not _RUN_KEY_CHARACTERS.fullmatch(name):
        return "may only contain letters, digits, spaces and the characters _ - . : /"
    if name == "." or name.startswith(("..", "/")):
        return "must not be '.' nor start with '..' or '/'"
    norm = posixpath.normpath(name)
    if norm != name:
        return f"must not read as another name when taken as a path (it reads as {norm!r})"
    return None
