"""Model families from model and system names (which vendor's models a name belongs to), for the
self-preference check: a judge may favour outputs of its own family. Pure functions."""

from __future__ import annotations

import re

from review_app.errors import InputError

# First match wins; matched against the model part of a name ("openai/gpt-4o" -> "gpt-4o").
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), family)
    for pattern, family in (
        (r"^(gpt|chatgpt|o[1-9]|davinci|babbage|text-davinci)(\b|[-_.]|$)", "openai"),
        (r"^claude", "anthropic"),
        (r"^(gemini|gemma|palm|bard)", "google"),
        (r"^(llama|meta-llama|codellama)", "meta"),
        (r"^(mistral|mixtral|codestral|ministral|magistral)", "mistral"),
        (r"^(qwen|qwq)", "qwen"),
        (r"^deepseek", "deepseek"),
        (r"^(command|c4ai|aya)", "cohere"),
        (r"^grok", "xai"),
        (r"^phi", "microsoft"),
    )
)
SETTING = "REVIEW_APP_MODEL_FAMILIES"


def parse_overrides(text: str) -> dict[str, str]:
    """`name=family, name=family` (the REVIEW_APP_MODEL_FAMILIES setting) as a dict; the names
    are systems, judges (`openai/gpt-4o`) or judge labels."""
    out: dict[str, str] = {}
    for number, entry in enumerate(text.split(","), start=1):
        entry = entry.strip()
        if not entry:
            continue
        name, sep, family = entry.rpartition("=")
        if not sep or not name.strip() or not family.strip():
            raise InputError(
                f"{SETTING}: entry {number} ({entry!r}) is not NAME=FAMILY, e.g. my-finetune=openai"
            )
        out[name.strip()] = family.strip().lower()
    return out


def family_of(name: str, overrides: dict[str, str] | None = None) -> str | None:
    """The family of a system, judge (`provider/model`) or judge label (`provider/model ·
    rubric vN`), from `overrides` first, else from the model name; None when unknown."""
    overrides = overrides or {}
    if name in overrides:
        return overrides[name]
    base = name.split(" · ", 1)[0].strip()
    if base in overrides:
        return overrides[base]
    model = base.rsplit("/", 1)[-1].strip().lower()
    for pattern, family in _PATTERNS:
        if pattern.search(model):
            return family
    return None
