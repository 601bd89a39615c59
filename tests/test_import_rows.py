"""The import composes each row's JSON by hand (imports.rows.RowValidator.prepare): it must be,
text for text, what json.dumps writes, or re-importing a file would no longer find its rows'
content hashes."""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import json
import sqlite3
import unicodedata
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from empower_cli.imports.read import Record
from empower_cli.imports.rows import RowValidator
from empower_cli.policy.load import parse_policy
from empower_cli.services.admin import default_policy_text
from empower_cli.store.chain import canonical_json

POLICY = parse_policy(default_policy_text().encode(), "policies.toml")
NOW = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.timezone.utc)

# Any text the validation accepts: quotes, backslashes, emoji, U+2028... but no control
# characters or surrogates (those rows are refused).
visible = st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=30)
# Any identifier it accepts: visible, in NFC, without invisible or unassigned characters.
identifier = (
    st.text(st.characters(blacklist_categories=("Cs", "Cc", "Cf", "Co", "Cn", "Zl", "Zp")), min_size=1, max_size=30)
    .map(lambda s: unicodedata.normalize("NFC", s).strip())
    .filter(bool)
)
multi_line = st.text(st.characters(blacklist_categories=("Cs", "Cc")) | st.sampled_from("\n\t"), max_size=60)


@given(
    external_id=identifier, customer=identifier, agent=identifier, topic=visible.filter(str.strip),
    justification=multi_line, cosigner=st.none() | identifier, segment=st.sampled_from([None, "vip"]),
    status=st.sampled_from(["approved", "pending_cosign", "denied"]),
    retained=st.sampled_from([None, "yes", "no"]), reaction=st.sampled_from([None, "satisfied"]),
    amount=st.sampled_from(["0", "12.5", "150.00", "4999.99"]), settled=st.booleans(),
)  # fmt: skip
def test_an_imported_rows_json_is_canonical_and_its_hash_is_its_contents(
    external_id: str, customer: str, agent: str, topic: str, justification: str, cosigner: str | None,
    segment: str | None, status: str, retained: str | None, reaction: str | None, amount: str, settled: bool,
) -> None:  # fmt: skip
    if cosigner is not None and cosigner.casefold() == agent.casefold():
        cosigner = None  # the four-eyes rule refuses the row; not what this test is about
    settled &= status != "pending_cosign"
    fields = {
        "external_id": external_id, "customer_id": customer, "agent": agent, "case_type": "financial_advice",
        "action": "goodwill_credit", "amount": amount, "status": status, "opened_at": "2026-05-05T10:00:00+02:00",
        "settled_at": "2026-05-06T09:30:00.25Z" if settled else None, "justification": justification or None,
        "cosigner": cosigner, "segment": segment, "retained": retained, "reaction": reaction,
    }  # fmt: skip
    row = RowValidator(POLICY, now=NOW).prepare(
        Record(1, "raw", {k: v for k, v in fields.items() if v is not None}, {"topic": topic})
    )

    payload = json.loads(row.payload)
    assert canonical_json(payload) == row.payload
    cents = int(amount.partition(".")[0]) * 100 + int(amount.partition(".")[2].ljust(2, "0"))
    assert payload["content"] == {
        "external_id": external_id, "customer_id": customer, "segment": segment, "agent": agent,
        "opened_at": "2026-05-05T08:00:00.000000Z",
        "settled_at": "2026-05-06T09:30:00.250000Z" if settled else None,
        "case_type": "financial_advice", "action": "goodwill_credit", "amount": f"{cents // 100}.{cents % 100:02d}",
        "facts": {"topic": topic}, "status": status, "discretionary_amount": None,
        "justification": justification or None, "reaction": reaction,
        "retained": None if retained is None else retained == "yes", "cosigner": cosigner, "supervisor": None,
    }  # fmt: skip
    content_hash = hashlib.sha256(canonical_json(payload["content"]).encode("utf-8")).hexdigest()
    assert row.content_hash == payload["content_hash"] == content_hash
    facts_json, reasons_json = row.columns().facts, row.columns().reasons
    assert facts_json == json.dumps({"topic": topic}, ensure_ascii=False)
    assert reasons_json == json.dumps(json.loads(reasons_json), ensure_ascii=False)



def test_every_stored_column_is_what_audit_verify_derives_from_the_event(tmp_path: Path) -> None:
    """prepare fills ImportedCase (whose fields name the table's columns) in field order; `audit
    verify` re-derives each column by name from the row's event, so a value put in another
    column fails it. The rows tell every two columns apart: no swap could pass unseen."""
    from empower_cli.audit.state import check_state
    from empower_cli.imports.run import Importer, WriteInto
    from empower_cli.services.identity import Identity
    from empower_cli.store.bulk import CASE_COLUMNS
    from empower_cli.store.sqlite import Store

    common = {"case_type": "late_return", "action": "refund", "justification": "Loyal customer, receipt at hand"}
    records = [
        {**common, "external_id": "N-1", "customer_id": "C-9", "agent": "bob", "amount": "80.00",
         "opened_at": "2026-05-05T10:00:00+02:00", "status": "pending_cosign", "cosigner": "dave",
         "supervisor": "carol", "reaction": "satisfied", "retained": "yes", "segment": "vip",
         "discretionary_amount": "30.00", "facts": {"days_since_purchase": "45", "has_receipt": "yes"}},
        {**common, "external_id": "N-2", "customer_id": "C-8", "agent": "erin", "amount": "12.50",
         "opened_at": "2026-06-01T09:00:00Z", "settled_at": "2026-06-03T09:00:00Z", "status": "approved",
         "retained": "no", "facts": {"days_since_purchase": "3", "has_receipt": "yes"}},
        {**common, "external_id": "N-3", "customer_id": "C-7", "agent": "frank", "amount": "20.00",
         "opened_at": "2026-07-01T09:00:00Z", "status": "denied", "supervisor": "grace",
         "facts": {"days_since_purchase": "20", "has_receipt": "no"}},
    ]  # fmt: skip
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    role = POLICY.role_of("carol")
    assert role is not None
    with Store(tmp_path / "empower.db") as store:
        with Importer(path, "jsonl", policy=POLICY, identity=Identity("carol", "carol", role), now=NOW,
                      target=WriteInto(store)) as importer:  # fmt: skip
            assert (importer.run().imported, importer.summary.rejected) == (3, 0)
        state = check_state(store)
    assert (state.problem, state.cases) == (None, 3)
    conn = sqlite3.connect(tmp_path / "empower.db")
    conn.row_factory = sqlite3.Row
    stored = [dict(r) for r in conn.execute("SELECT * FROM cases ORDER BY id")]
    conn.close()
    assert [list(r) for r in stored] == [list(CASE_COLUMNS)] * 3
    for a, b in itertools.combinations(CASE_COLUMNS, 2):
        if {a, b} != {"escalated", "objections"}:  # 0 in every imported case: a swap changes nothing
            assert any(r[a] != r[b] for r in stored), f"these rows cannot tell {a} from {b}"
    validator = RowValidator(POLICY, now=NOW)
    for record, row in zip(records, stored, strict=True):
        fields = {k: v for k, v in record.items() if k != "facts"}
        prepared = validator.prepare(Record(1, "raw", fields, record["facts"]))  # type: ignore[arg-type]
        assert row == {"id": row["id"], **prepared.columns()._asdict(), "imported_by": "carol"}
