"""Properties that must hold for every input, checked with Hypothesis.

The decision is monotone in the amount, in-policy cases never touch the budget, no
sequence of decisions and settlements takes a budget below zero, money text round-trips,
the store gives back exactly what it was given, and the policy loader never crashes.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import tempfile
import unicodedata
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from empower_cli.core.errors import InvalidInput, PolicyError
from empower_cli.core.evaluate import evaluate, validate_proposal
from empower_cli.core.models import BudgetState, Evaluation, Policy, Proposal
from empower_cli.core.money import MAX_MINOR_UNITS, format_money, parse_money
from empower_cli.policy.load import parse_policy
from empower_cli.services.cases import CaseInput, open_case
from empower_cli.services.identity import Identity
from empower_cli.store.sqlite import Store
from tests.conftest import ROOT
from tests.test_evaluate import EVAL_POLICY, NOW, TODAY

POLICY = parse_policy(EVAL_POLICY.encode(), "eval.toml")
SHIPPED = (ROOT / "policies.toml").read_text(encoding="utf-8")
SHIPPED_POLICY = parse_policy(SHIPPED.encode(), "policies.toml")

# -- strategies ----------------------------------------------------------------------

facts_t = st.fixed_dictionaries({
    "days": st.integers(0, 40).map(str),
    "score": st.integers(30, 70).map(str),
    "ok": st.sampled_from(["yes", "no"]),
    "tier": st.sampled_from(["gold", "silver", "bronze"]),
    "bought": st.integers(-5, 70).map(lambda d: (TODAY - dt.timedelta(days=d)).isoformat()),
    "price": st.integers(0, 20000).map(format_money),
    "note": st.just("n"),
})  # fmt: skip


@st.composite
def proposals(draw: st.DrawFn, amount: int | None = None) -> Proposal:
    case_type = draw(st.sampled_from(["t", "hard", "risky"]))
    if case_type == "t":
        facts = draw(facts_t)
    else:
        facts = {"n": str(draw(st.integers(0, 40))), "m": str(draw(st.integers(0, 9)))}
    if case_type == "risky":
        facts.pop("m")
    action = draw(st.sampled_from(POLICY.case_types[case_type].actions))
    cents = draw(st.integers(0, 300000)) if amount is None else amount
    return validate_proposal(
        POLICY, agent="alice", customer_id="C-1", case_type=case_type, facts=facts, action=action,
        amount=format_money(cents), escalate=draw(st.booleans()),
    )  # fmt: skip


@st.composite
def budgets(draw: st.DrawFn) -> BudgetState:
    limit = draw(st.integers(0, 300000))
    spent = draw(st.integers(0, limit))
    held = draw(st.integers(0, limit - spent))
    return BudgetState(limit=limit, spent=spent, held=held, count=draw(st.integers(0, 5)))


roles = st.sampled_from(sorted(POLICY.roles))


def decide(proposal: Proposal, role: str, budget: BudgetState) -> Evaluation:
    return evaluate(proposal, POLICY, role=POLICY.roles[role], budget=budget, now=NOW)


# -- the decision ----------------------------------------------------------------------


@given(proposals(), st.integers(1, 300000), roles, budgets())
def test_a_larger_amount_never_turns_a_pending_case_into_an_approved_one(
    proposal: Proposal, more: int, role: str, budget: BudgetState
) -> None:
    from dataclasses import replace

    before = decide(proposal, role, budget)
    after = decide(replace(proposal, amount=proposal.amount + more), role, budget)
    if before.status == "pending_supervisor":
        assert after.status == "pending_supervisor"
    if before.status != "approved":
        assert after.status != "approved"


@given(proposals(), roles, budgets())
def test_in_policy_cases_never_spend_or_hold_budget(proposal: Proposal, role: str, budget: BudgetState) -> None:
    ev = decide(proposal, role, budget)
    if ev.in_policy:
        assert (ev.discretionary_amount, ev.held, ev.spent) == (0, 0, 0)
        assert ev.budget_after == budget
    else:
        assert ev.discretionary_amount == proposal.amount


@given(proposals(), roles, budgets())
def test_a_decision_spends_or_holds_only_what_fits_and_only_its_discretion(
    proposal: Proposal, role: str, budget: BudgetState
) -> None:
    ev = decide(proposal, role, budget)
    assert ev.held == 0 or ev.spent == 0
    assert ev.held + ev.spent in (0, ev.discretionary_amount)
    assert ev.budget_after.remaining >= 0
    assert ev.budget_after.spent - budget.spent == ev.spent
    assert ev.budget_after.held - budget.held == ev.held
    if ev.status == "approved":
        assert ev.spent == ev.discretionary_amount
    if ev.status == "pending_cosign":
        assert ev.held == ev.discretionary_amount > POLICY.cosign.above


# A step: open a case (amount, role) or settle / void the k-th live hold.
steps = st.lists(
    st.one_of(
        st.tuples(st.just("open"), proposals(), roles),
        st.tuples(st.just("settle"), st.integers(0, 20), st.none()),
        st.tuples(st.just("void"), st.integers(0, 20), st.none()),
    ),
    max_size=40,
)


@given(st.integers(0, 200000), steps)
def test_no_sequence_of_decisions_takes_the_remaining_budget_below_zero(limit: int, ops: list[Any]) -> None:
    budget = BudgetState(limit=limit)
    holds: list[int] = []
    for kind, arg, role in ops:
        if kind == "open":
            ev = decide(arg, role, budget)
            budget = ev.budget_after
            if ev.held:
                holds.append(ev.held)
        elif holds:
            amount = holds.pop(arg % len(holds))
            spent = amount if kind == "settle" else 0  # co-signed or approved / denied or expired
            budget = BudgetState(budget.limit, budget.spent + spent, budget.held - amount, budget.count)
        assert budget.remaining >= 0
        assert budget.spent + budget.held <= budget.limit
        assert budget.held == sum(holds)


# -- money -------------------------------------------------------------------------------


@given(st.integers(0, MAX_MINOR_UNITS), st.sampled_from([0, 2, 3]))
def test_money_formats_and_parses_back_to_the_same_minor_units(cents: int, digits: int) -> None:
    text = format_money(cents, digits)
    assert parse_money(text, field="amount", digits=digits) == cents
    assert re.fullmatch(r"\d+" + (rf"\.\d{{{digits}}}" if digits else ""), text)


@given(st.from_regex(r"\A[0-9]{1,13}(\.[0-9]{1,2})?\Z"))
def test_plain_decimal_text_parses_exactly_up_to_the_cap(text: str) -> None:
    whole, _, frac = text.partition(".")
    exact = int(whole) * 100 + int(frac.ljust(2, "0") or 0)
    if exact > MAX_MINOR_UNITS:
        with pytest.raises(InvalidInput, match=r"^amount: at most 100000000\.00, got "):
            parse_money(text, field="amount")
        return
    cents = parse_money(text, field="amount")
    assert cents == exact
    assert format_money(cents) == f"{int(whole)}.{frac.ljust(2, '0')}"


@given(st.one_of(st.text(max_size=30), st.floats(), st.integers(), st.booleans(), st.none()))
def test_parse_money_either_returns_exact_cents_or_refuses_with_the_field_named(value: object) -> None:
    try:
        cents = parse_money(value, field="amount")
    except InvalidInput as e:
        assert e.field == "amount"  # noqa: PT017 (either refused or exact: both are checked)
        return
    assert isinstance(cents, int)
    assert 0 <= cents <= MAX_MINOR_UNITS


# -- the store gives back what it was given ----------------------------------------------

free_text = st.text(
    alphabet=st.characters(blacklist_categories=["Cs"]),
    max_size=60,
) | st.sampled_from(["O'Brien", 'say "hi"', "Robert'); DROP TABLE cases;--", "😀🎉", "naïve ß 東京",
                      "[red]x[/]", "\u202eevil", "  spaced  ", "\\", "%s %d {}"])  # fmt: skip


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(customer=free_text, segment=st.none() | free_text, justification=free_text, note=free_text)
def test_what_is_written_to_the_store_reads_back_equal(
    customer: str, segment: str | None, justification: str, note: str
) -> None:
    policy = SHIPPED_POLICY
    identity = Identity(agent="alice", os_user="alice", role=policy.roles["agent"])
    with tempfile.TemporaryDirectory() as tmp, Store(Path(tmp) / "e.db") as store:
        inputs = CaseInput(
            customer_id=customer, case_type="financial_advice", facts={"topic": note},
            action="goodwill_credit", amount="10.00", segment=segment,
            justification=justification + " and a long enough justification",
        )  # fmt: skip
        try:
            decision = open_case(inputs, policy=policy, store=store, identity=identity, now=NOW)
        except InvalidInput as e:
            assert e.field in ("customer", "segment", "justification", "fact topic")  # noqa: PT017
            assert store.conn.execute("SELECT COUNT(*) FROM events").fetchone() == (0,)
            assert store.conn.execute("SELECT COUNT(*) FROM cases").fetchone() == (0,)
            return
        case = store.get_case(decision.case_id, now=NOW)
        assert case is not None
        assert case["customer_id"] == customer
        assert case["segment"] == segment
        assert case["justification"] == justification + " and a long enough justification"
        assert json.loads(case["facts"]) == {"topic": note}
        [event] = store.events(decision.case_id)
        payload = json.loads(event["payload"])
        assert (payload["customer_id"], payload["segment"]) == (customer, segment)
        assert payload["facts"] == {"topic": note}
        assert payload["justification"] == inputs.justification
        assert store.customer_segment(customer) == segment


@given(st.text(max_size=30))
def test_a_customer_id_is_refused_exactly_when_it_breaks_the_identifier_rule(value: str) -> None:
    """SPEC §9: surrounding spaces, a character of category Cc, Cf, Co, Cn, Zl or Zp, a lone
    surrogate (not UTF-8), or a spelling other than NFC — and nothing else."""
    assume(value.strip())
    breaks = (
        value != value.strip()
        or any(unicodedata.category(c) in ("Cc", "Cf", "Co", "Cn", "Zl", "Zp", "Cs") for c in value)
        or not unicodedata.is_normalized("NFC", value)
    )
    try:
        validate_proposal(
            SHIPPED_POLICY, agent="alice", customer_id=value, case_type="hotel_complaint",
            facts={"nights": "1"}, action="free_night", amount="1",
        )  # fmt: skip
    except InvalidInput as e:
        assert e.field == "customer"  # noqa: PT017
        assert breaks, e  # noqa: PT017
    else:
        assert not breaks


# -- the policy loader never crashes ---------------------------------------------------

scalars = st.one_of(
    st.integers(-(2**40), 2**40), st.floats(allow_nan=False, allow_infinity=False), st.booleans(),
    st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=0x2FFF, blacklist_characters="\x7f"), max_size=12),
    st.sampled_from(["100.00", "-1", "1e3", "agent", "late_return", "refund", "days_since_purchase", "max"]),
)  # fmt: skip
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(["id", "max", "name", "x", "fact"]),
                                                                inner, max_size=3),
    max_leaves=6,
)  # fmt: skip


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return "{ " + ", ".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items()) + " }"


def toml_document(doc: dict[str, Any], prefix: str = "") -> str:
    lines = [f"{json.dumps(k)} = {toml_value(v)}" for k, v in doc.items() if not isinstance(v, dict)]
    for k, v in doc.items():
        if isinstance(v, dict):
            name = f"{prefix}.{json.dumps(k)}" if prefix else json.dumps(k)
            lines.append(f"\n[{name}]\n{toml_document(v, name)}")
    return "\n".join(lines)


def paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += paths(v, (*prefix, i))
    return out


@st.composite
def mutated_policies(draw: st.DrawFn) -> str:
    import tomllib

    doc = tomllib.loads(SHIPPED)
    for _ in range(draw(st.integers(1, 4))):
        target = draw(st.sampled_from(paths(doc)))
        parent: Any = doc
        for part in target[:-1]:
            parent = parent[part]
        how = draw(st.sampled_from(["replace", "delete", "add"]))
        if how == "delete" and isinstance(parent, dict):
            del parent[target[-1]]
        elif how == "add" and isinstance(parent, dict):
            parent[draw(st.sampled_from(["colour", "bend_max", "max", "hard", "title"]))] = draw(values)
        else:
            parent[target[-1]] = draw(values)
    return toml_document(doc)


@settings(max_examples=300, deadline=None)
@given(mutated_policies())
def test_the_policy_loader_never_crashes_and_locates_every_problem(text: str) -> None:
    try:
        policy = parse_policy(text.encode("utf-8"), "p.toml")
    except PolicyError as e:
        for problem in e.problems or (str(e),):
            assert re.match(r"p\.toml:\d+:\d+: \S", problem), problem
            assert "\n" not in problem
        return
    assert isinstance(policy, Policy)


def test_the_toml_writer_used_above_writes_the_shipped_policy_faithfully() -> None:
    import tomllib

    doc = tomllib.loads(SHIPPED)
    assert tomllib.loads(toml_document(doc)) == doc
    assert parse_policy(toml_document(doc).encode()).case_types == SHIPPED_POLICY.case_types


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300) | st.text(max_size=300).map(lambda t: t.encode("utf-8", "surrogatepass")))
def test_the_policy_loader_turns_any_bytes_into_a_policy_or_located_problems(data: bytes) -> None:
    try:
        parse_policy(SHIPPED.encode() + b"\n" + data, "p.toml")
    except PolicyError as e:
        for problem in e.problems or (str(e),):
            assert re.match(r"p\.toml:\d+:\d+: \S", problem), problem


@given(st.data())
def test_a_fact_stored_as_text_parses_back_to_the_same_value(data: st.DataObject) -> None:
    """Replays (simulate, import) re-read stored facts: text → value → text must be stable."""
    from empower_cli.core.facts import fact_to_text, parse_fact_value

    fact = data.draw(st.sampled_from(POLICY.case_types["t"].facts))
    raw = data.draw({
        "int": st.integers(0, 10**17).map(str),
        "money": st.integers(0, 10**7).map(format_money),
        "bool": st.sampled_from(["yes", "no", "TRUE", "n", "1", "0"]),
        "choice": st.sampled_from(["gold", "Silver", "BRONZE"]),
        "date": st.dates().map(lambda d: d.isoformat()),
        "text": free_text.filter(lambda t: t.strip() and not re.search(r"[\x00-\x08\x0b-\x1f\x7f]", t)),
    }[fact.type])  # fmt: skip
    try:
        value = parse_fact_value(fact, raw)
    except InvalidInput:
        return
    text = fact_to_text(value, fact)
    assert parse_fact_value(fact, text) == value
    assert fact_to_text(parse_fact_value(fact, text), fact) == text


# -- import files: the block reader ---------------------------------------------------

_IMPORT_HEADER = b"external_id,customer_id,agent,opened_at,case_type,action,amount,fact.x\n"
_import_bytes = st.lists(st.sampled_from([
    b"a", b"b,", b",", b'"', b'""', b"\n", b"\r\n", b"\r", b"\x00", b"\xff", b"\xc3\xa9", b"\xe2\x80\xa8",
    b" ", b"1,2,3,4,5,6,7\n", b"\xef\xbb\xbf", b"\x0b", b"\xc2\x85",
]), max_size=60).map(b"".join)  # fmt: skip


def _read_all(data: bytes, block: int, fmt: str) -> list[Any]:
    import io

    from empower_cli.imports import read as import_read

    out: list[Any] = []
    original = import_read._Lines.BLOCK_BYTES
    import_read._Lines.BLOCK_BYTES = block
    try:
        reader = (import_read.CsvReader if fmt == "csv" else import_read.JsonlReader)(io.BytesIO(data), "f")
        out.extend((r.line, r.raw, r.problem, r.cells, dict(r.fields), dict(r.facts)) for r in reader)
        out.append(reader.bytes_read)
    except InvalidInput as e:
        out.append(str(e))
    finally:
        import_read._Lines.BLOCK_BYTES = original
    return out


@settings(max_examples=300, suppress_health_check=list(HealthCheck), deadline=None)
@given(st.booleans(), _import_bytes, st.integers(1, 48))
def test_import_records_do_not_depend_on_where_the_file_is_cut_into_blocks(bom: bool, body: bytes,
                                                                           block: int) -> None:  # fmt: skip
    """Lines, raw text, problems and cells are the same whether a record spans blocks or not."""
    csv_data = (b"\xef\xbb\xbf" if bom else b"") + _IMPORT_HEADER + body
    whole = _read_all(csv_data, 1 << 20, "csv")
    assert _read_all(csv_data, block, "csv") == whole
    assert whole[-1] == len(csv_data) or isinstance(whole[-1], str)  # every byte read, or the header refused
    jsonl_data = (b"\xef\xbb\xbf" if bom else b"") + body.replace(b"a", b'{"external_id": "a"}')
    assert _read_all(jsonl_data, block, "jsonl") == _read_all(jsonl_data, 1 << 20, "jsonl")
