"""The import composes each row's JSON by hand (imports.rows.RowValidator.prepare): it must be,
text for text, what json.dumps writes, or re-importing a file would no longer find its rows'
content hashes."""

from __future__ import annotations

import datetime as dt
import hashlib
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
    assert row.case.content_hash == payload["content_hash"] == content_hash
    facts_json, reasons_json = row.case.facts, row.case.reasons
    assert facts_json == json.dumps({"topic": topic}, ensure_ascii=False)
    assert reasons_json == json.dumps(json.loads(reasons_json), ensure_ascii=False)


def test_each_value_is_stored_in_the_column_its_field_names(tmp_path: Path) -> None:
    """ImportedCase names the table's columns (store.bulk.CASE_COLUMNS is derived from it):
    what an import stores under each name is what the validation gave that name."""
    from empower_cli.imports.run import Importer, WriteInto
    from empower_cli.services.identity import Identity
    from empower_cli.store.sqlite import Store

    fields = {
        "external_id": "N-1", "customer_id": "C-9", "agent": "bob", "opened_at": "2026-05-05T10:00:00+02:00",
        "case_type": "late_return", "action": "refund", "amount": "80.00", "status": "pending_cosign",
        "justification": "Loyal customer, receipt at hand", "cosigner": "dave", "supervisor": "carol",
        "reaction": "satisfied", "retained": "yes", "segment": "vip", "discretionary_amount": "30.00",
    }  # fmt: skip
    facts = {"days_since_purchase": "45", "has_receipt": "yes"}
    prepared = RowValidator(POLICY, now=NOW).prepare(Record(1, "raw", fields, facts))
    path = tmp_path / "one.jsonl"
    path.write_text(json.dumps({**fields, "facts": facts}) + "\n", encoding="utf-8")
    role = POLICY.role_of("carol")
    assert role is not None
    with Store(tmp_path / "empower.db") as store, Importer(
        path, "jsonl", policy=POLICY, identity=Identity("carol", "carol", role), now=NOW, target=WriteInto(store)
    ) as importer:  # fmt: skip
        assert importer.run().imported == 1
    conn = sqlite3.connect(tmp_path / "empower.db")
    conn.row_factory = sqlite3.Row
    stored = dict(conn.execute("SELECT * FROM cases").fetchone())
    conn.close()
    assert stored == {"id": 1, **prepared.case._asdict(), "imported_by": "carol"}
