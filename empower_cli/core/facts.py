"""Facts as the policy types them: parsed from what an agent types (a flag, a prompt answer, a
CSV cell) and written back as the text a case stores and shows. Pure."""

from __future__ import annotations

import datetime as dt
import re

from empower_cli.core.errors import InvalidInput
from empower_cli.core.models import Fact, FactValue, Policy, Proposal
from empower_cli.core.money import format_money, parse_money
from empower_cli.core.text import clean_text, show

TRUE_WORDS = ("true", "yes", "y", "1")
FALSE_WORDS = ("false", "no", "n", "0")
_YES_NO_WORDS = TRUE_WORDS + FALSE_WORDS
_WHOLE_NUMBER = re.compile(r"[+-]?\d{1,18}", flags=re.ASCII)
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}", flags=re.ASCII)


def parse_fact_value(fact: Fact, raw: str, *, digits: int = 2) -> FactValue:
    """Parse one fact typed as text (a flag, a prompt answer, a CSV cell)."""
    field = f"fact {fact.name}"
    text = raw.strip()
    value: FactValue
    if fact.type == "int":
        if not _WHOLE_NUMBER.fullmatch(text):
            raise InvalidInput(field, f"expected a whole number, got {show(text)}")
        value = int(text)
    elif fact.type == "money":
        value = parse_money(text, field=field, digits=digits)
    elif fact.type == "bool":
        word = text.lower()
        if word not in _YES_NO_WORDS:
            raise InvalidInput(field, f"expected yes or no, got {show(text)}")
        return word in TRUE_WORDS
    elif fact.type == "choice":
        word = text.lower()
        match = [c for c in fact.choices if c.lower() == word]
        if not match:
            raise InvalidInput(field, f"expected one of {', '.join(fact.choices)}, got {show(text)}")
        return match[0]
    elif fact.type == "date":
        if not _DATE.fullmatch(text):
            raise InvalidInput(field, f"expected a date YYYY-MM-DD, got {show(text)}")
        try:
            return dt.date.fromisoformat(text)
        except ValueError:
            raise InvalidInput(field, f"{text} is not a real date") from None
    else:
        if not text:  # a required answer left blank is missing, not an answer
            raise InvalidInput(field, f"is required ({fact.ask})")
        return clean_text(raw, field=field, max_chars=2000)
    assert isinstance(value, int)
    if fact.min is not None and value < fact.min:
        least, got = _fact_number(fact, fact.min, digits), _fact_number(fact, value, digits)
        raise InvalidInput(field, f"must be at least {least}, got {got}")
    if fact.max is not None and value > fact.max:
        most, got = _fact_number(fact, fact.max, digits), _fact_number(fact, value, digits)
        raise InvalidInput(field, f"must be at most {most}, got {got}")
    return value


def _fact_number(fact: Fact, value: int, digits: int) -> str:
    """An int or money fact's value (or limit) as an error message shows it."""
    return format_money(value, digits) if fact.type == "money" else str(value)


def fact_to_text(value: FactValue, fact: Fact, digits: int = 2) -> str:
    """The inverse of parse_fact_value: how a fact is stored in JSON and shown."""
    if fact.type == "money" and isinstance(value, int) and not isinstance(value, bool):
        return format_money(value, digits)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def typed_fact(text: str, fact: Fact | None) -> int | bool | str:
    """A stored fact (the text `fact_to_text` wrote) as JSON types it: an int fact a number, a
    bool fact true or false; money, dates (YYYY-MM-DD), choices and text stay strings. A fact
    the policy no longer knows, or text that does not fit its type, stays as stored."""
    if fact is not None and fact.type == "int" and _WHOLE_NUMBER.fullmatch(text):
        return int(text)
    if fact is not None and fact.type == "bool" and text.lower() in _YES_NO_WORDS:
        return text.lower() in TRUE_WORDS
    return text


def facts_as_text(proposal: Proposal, policy: Policy) -> dict[str, str]:
    """The proposal's facts as text, in the policy's order: as a case stores them."""
    ctype = policy.case_types[proposal.case_type]
    return {f.name: fact_to_text(proposal.facts[f.name], f, policy.digits) for f in ctype.facts}
