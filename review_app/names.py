"""What a name may be (a system, judge, reviewer, study or eval set): NFC-normalised text with no
control, format (zero-width, bidi) or line-separator character, and not in a namespace the app
reserves for what it computes itself (`baseline/`, `jury/`)."""

from __future__ import annotations

import unicodedata

from review_app.errors import InputError

__all__ = ["RESERVED_PREFIXES", "checked_name", "name_problem", "normal_name"]

# Judges the app computes: a name under these would pass for one of them.
RESERVED_PREFIXES = ("baseline/", "jury/")
# Control (Cc), format (Cf: zero-width spaces and joiners, bidi marks, soft hyphen), line and
# paragraph separators, unassigned and private-use characters: invisible or misleading in a name,
# so two different names could look the same.
_REFUSED = {"Cc", "Cf", "Zl", "Zp", "Cn", "Co", "Cs"}


def normal_name(value: str) -> str:
    """`value` as stored: NFC-normalised, surrounding whitespace removed."""
    return unicodedata.normalize("NFC", value).strip()


def name_problem(value: str, reserved: bool = True) -> str | None:
    """Why `value` (already normalised) cannot be a name, or None. With `reserved`, names under
    a reserved prefix are refused too."""
    for char in value:
        if unicodedata.category(char) in _REFUSED:
            return (
                f"contains the invisible or control character U+{ord(char):04X}; names must be "
                "plain visible text"
            )
    if reserved:
        for prefix in RESERVED_PREFIXES:
            if value.casefold().startswith(prefix):
                return f"starts with {prefix!r}, which is reserved for the app's own judges"
    return None


def checked_name(value: str, what: str) -> str:
    """`value` normalised, or InputError naming `what` (e.g. "study name") and the problem."""
    name = normal_name(value)
    if not name:
        raise InputError(f"{what} is empty")
    problem = name_problem(name)
    if problem:
        raise InputError(f"{what} {name!r} {problem}")
    return name
