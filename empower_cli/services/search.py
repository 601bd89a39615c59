"""Finding past cases by what people wrote in them (`empower case search TEXT`): the words of
the query, checked, and the store's full-text matches, best first."""

from __future__ import annotations

import datetime as dt
import re

from empower_cli.core.errors import InvalidInput
from empower_cli.core.text import clean_text
from empower_cli.core.timeutil import iso
from empower_cli.store.search import Hit, search
from empower_cli.store.sqlite import Store

MAX_QUERY_CHARS = 1_000
MAX_TERMS = 32
# What the index splits words on (FTS5's unicode61 tokenizer): letters and digits make words.
_WORD = re.compile(r"\w", flags=re.UNICODE)


def query_terms(text: str) -> list[str]:
    """The words of a query, each to be found (in any order). Refused (exit 2): a blank query,
    one with no letter or digit, control characters, or more than MAX_TERMS words."""
    cleaned = clean_text(text, field="TEXT", max_chars=MAX_QUERY_CHARS)
    terms = [t for t in cleaned.split() if _WORD.search(t)]
    if not terms:
        raise InvalidInput("TEXT", "give at least one word to search for")
    if len(terms) > MAX_TERMS:
        raise InvalidInput("TEXT", f"at most {MAX_TERMS} words, got {len(terms)}")
    return terms


def search_cases(text: str, *, store: Store, now: dt.datetime, limit: int | None) -> list[Hit]:
    """Justifications, notes and objection reasons holding every word of TEXT, best first."""
    return search(store, query_terms(text), limit=limit, now=iso(now))
