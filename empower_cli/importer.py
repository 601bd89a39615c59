"""Batch import of historical cases (SPEC §7): validate each record read by import_read
through the live path (validate_proposal + evaluate), record good rows in chunks with
their hash-chained events, and give every bad row a reason and its line number.

Memory stays flat: one chunk of rows at a time.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from empower_cli.config import Identity
from empower_cli.errors import EmpowerError, InvalidInput, NotFound
from empower_cli.evaluate import clean_id, evaluate, validate_proposal
from empower_cli.import_read import CsvReader, Format, JsonlReader, Record, RowProblem
from empower_cli.models import PENDING, STATUSES, BudgetState, Policy, Role
from empower_cli.money import format_money, parse_money
from empower_cli.services import facts_as_text
from empower_cli.store import Store, canonical_json
from empower_cli.timeutil import iso, parse_iso

CHUNK_ROWS = 10_000
_TRUE = ("true", "yes", "y", "1")
_FALSE = ("false", "no", "n", "0")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# Encoders made once: json.dumps(..., ensure_ascii=False) builds a new encoder per call.
# _canonical gives exactly store.canonical_json's text.
_plain = json.JSONEncoder(ensure_ascii=False).encode
_canonical = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode
_CACHE_LIMIT = 4096


def _iso(moment: dt.datetime) -> str:
    """timeutil.iso for a datetime already in UTC, without strftime (the hot loop)."""
    return moment.isoformat(timespec="microseconds")[:-6] + "Z"


@dataclass
class Prepared:
    """A validated row, ready to be numbered and written."""

    line: int
    raw: str
    external_id: str
    content_hash: str
    content_json: str
    case: tuple[Any, ...]  # CASE_COLUMNS without id, external_id and content_hash
    customer: tuple[str, str | None, str]
    today_status: str
    today_discretionary: str


@dataclass
class Summary:
    read: int = 0
    imported: int = 0
    skipped: int = 0
    rejected: int = 0
    elapsed: float = 0.0
    rows_per_second: float = 0.0
    file: str = ""
    format: str = ""
    dry_run: bool = False
    rejects_file: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "read": self.read, "imported": self.imported, "skipped": self.skipped,
            "rejected": self.rejected, "elapsed": round(self.elapsed, 3),
            "rows_per_second": round(self.rows_per_second, 1), "file": self.file,
            "format": self.format, "dry_run": self.dry_run, "rejects_file": self.rejects_file,
        }  # fmt: skip


# -- validating ---------------------------------------------------------------------


class RowValidator:
    """Turn one record into a Prepared row with the live validation and evaluation."""

    def __init__(self, policy: Policy, *, now: dt.datetime) -> None:
        self.policy = policy
        self.now = now
        self.digits = policy.digits
        self.hold = dt.timedelta(hours=policy.cosign.hold_hours)
        self.roles: dict[str, Role | None] = {}
        self.budgets: dict[str | None, BudgetState] = {}
        # Rule results and reasons repeat across rows: their JSON is cached (bounded).
        self.rules_json: dict[tuple[str, ...], str] = {}
        self.reasons_json: dict[tuple[str, ...], str] = {}

    def _rules_json(self, case_type: str, evaluation: Any) -> str:
        key = (case_type, *(r.result for r in evaluation.rules))
        text = self.rules_json.get(key)
        if text is None:
            text = _plain([{"id": r.id, "result": r.result, "text": r.text} for r in evaluation.rules])
            self.rules_json[key] = text
        return text

    def _reasons_json(self, reasons: tuple[str, ...]) -> str:
        text = self.reasons_json.get(reasons)
        if text is None:
            if len(self.reasons_json) >= _CACHE_LIMIT:
                self.reasons_json.clear()
            text = self.reasons_json[reasons] = _plain(list(reasons))
        return text

    def role(self, agent: str) -> Role:
        if agent not in self.roles:
            self.roles[agent] = self.policy.role_of(agent)
        role = self.roles[agent]
        if role is None:
            raise RowProblem(f"agent: login {agent!r} has no role in today's policy and it has no default_role")
        return role

    def budget(self, segment: str | None) -> BudgetState:
        # Today's decision is evaluated against the customer's full limit for the segment:
        # the documented approximation (see the README), identical for every row.
        state = self.budgets.get(segment)
        if state is None:
            state = self.budgets[segment] = BudgetState(limit=self.policy.budget.limit_for(segment))
        return state

    def prepare(self, rec: Record) -> Prepared:
        f = rec.fields
        policy, digits = self.policy, self.digits
        external_id = clean_id(f.get("external_id"), field="external_id")
        if "opened_at" not in f:
            raise InvalidInput("opened_at", "is required")
        opened = parse_iso(f["opened_at"], field="opened_at")
        if opened > self.now:
            raise InvalidInput("opened_at", f"{iso(opened)} is in the future")
        proposal = validate_proposal(
            policy, agent=f.get("agent") or "", customer_id=f.get("customer_id"),
            case_type=f.get("case_type"), facts=rec.facts, action=f.get("action"),
            amount=f.get("amount"), segment=f.get("segment"),
            justification=f.get("justification"), reaction=f.get("reaction"),
        )  # fmt: skip
        status = f.get("status", "approved")
        if status not in STATUSES:
            raise InvalidInput("status", f"expected one of {', '.join(STATUSES)}, got {status[:40]!r}")
        agent = proposal.agent
        cosigner = clean_id(f["cosigner"], field="cosigner") if "cosigner" in f else None
        supervisor = clean_id(f["supervisor"], field="supervisor") if "supervisor" in f else None
        if cosigner == agent:
            raise RowProblem(f"cosigner: {agent!r} is the case's own agent (four-eyes rule)")
        if supervisor == agent:
            raise RowProblem(f"supervisor: {agent!r} is the case's own agent (four-eyes rule)")
        retained = _retained(f.get("retained"))
        pending = status in PENDING
        settled = None
        if "settled_at" in f:
            if pending:
                raise InvalidInput("settled_at", f"a {status} case is not settled yet; leave it empty")
            settled = parse_iso(f["settled_at"], field="settled_at")
            if settled < opened:
                raise InvalidInput("settled_at", "is before opened_at")
        given = f.get("discretionary_amount")
        evaluation = evaluate(proposal, policy, role=self.role(agent), budget=self.budget(proposal.segment), now=opened)
        if given is not None:
            discretion = parse_money(given, field="discretionary_amount", digits=digits)
            if discretion > proposal.amount:
                raise InvalidInput("discretionary_amount", "is more than the amount")
        else:
            discretion = evaluation.discretionary_amount
        opened_iso = _iso(opened)
        facts = facts_as_text(proposal, policy)
        content = {
            "external_id": external_id, "customer_id": proposal.customer_id, "segment": proposal.segment,
            "agent": agent, "opened_at": opened_iso, "settled_at": _iso(settled) if settled else None,
            "case_type": proposal.case_type, "action": proposal.action,
            "amount": format_money(proposal.amount, digits), "facts": facts, "status": status,
            "discretionary_amount": None if given is None else format_money(discretion, digits),
            "justification": proposal.justification or None, "reaction": proposal.reaction,
            "retained": retained, "cosigner": cosigner, "supervisor": supervisor,
        }  # fmt: skip
        content_json = _canonical(content)
        digest = hashlib.sha256(content_json.encode("utf-8")).hexdigest()
        case = (
            1, opened_iso, agent, proposal.customer_id, proposal.segment, proposal.case_type,
            proposal.action, proposal.amount, discretion, discretion if pending else 0,
            int(discretion == 0), status, _iso(opened + self.hold) if pending else None,
            None if pending else (_iso(settled) if settled else opened_iso), 0,
            _plain(facts), self._rules_json(proposal.case_type, evaluation),
            self._reasons_json(evaluation.reasons),
            proposal.justification or None, proposal.reaction,
            None if retained is None else int(retained), cosigner, supervisor, 0,
            policy.version, policy.sha256, evaluation.status, evaluation.discretionary_amount,
        )  # fmt: skip
        return Prepared(
            line=rec.line, raw=rec.raw, external_id=external_id, content_hash=digest,
            content_json=content_json, case=case,
            customer=(proposal.customer_id, proposal.segment, opened_iso),
            today_status=evaluation.status,
            today_discretionary=format_money(evaluation.discretionary_amount, digits),
        )  # fmt: skip


# validate_proposal names fields as `case new` flags do; the file's columns are named so.
_COLUMN_OF = {"customer": "customer_id", "type": "case_type"}


def _reason(error: Exception) -> str:
    if isinstance(error, InvalidInput) and error.field in _COLUMN_OF:
        return f"{_COLUMN_OF[error.field]}: {error.problem}"
    return str(error)


def _retained(value: object) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise InvalidInput("retained", f"expected yes or no, got {str(value)[:40]!r}")


# -- writing ------------------------------------------------------------------------


class RejectsFile:
    """line, external_id, reason, record: one row per rejected record, in line order per chunk.
    Cells that a spreadsheet would run as a formula are prefixed with ' (as audit CSV is)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.handle: IO[str] | None = None
        self.writer: Any = None

    def open(self) -> None:
        """Called once the header is read: a file refused at once leaves no rejects file."""
        if self.path is None:
            return
        try:
            self.handle = self.path.open("w", encoding="utf-8", newline="")
        except OSError as e:
            raise InvalidInput("--rejects", f"cannot write {self.path} ({e.strerror})") from None
        self.writer = csv.writer(self.handle)
        self.writer.writerow(["line", "external_id", "reason", "record"])

    def write(self, rows: list[tuple[int, str, str, str]]) -> None:
        if self.writer is None or not rows:
            return
        rows.sort(key=lambda r: r[0])
        self.writer.writerows(
            (line, _cell(ext), _cell(reason), _cell(raw.rstrip("\r\n"))) for line, ext, reason, raw in rows
        )
        assert self.handle is not None
        self.handle.flush()

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()


def _cell(text: str) -> str:
    return "'" + text if text.startswith(_FORMULA_START) else text


def default_rejects_path(path: Path) -> Path:
    return path.with_name(path.name + ".rejects.csv")


@dataclass
class Importer:
    """One run of `empower import cases`: read, validate, write chunk by chunk."""

    policy: Policy
    identity: Identity
    now: dt.datetime
    store: Store | None  # None for a dry run
    dry_conn: Any = None  # read-only connection for a dry run (None: no database yet)
    chunk_rows: int = CHUNK_ROWS
    summary: Summary = field(default_factory=Summary)
    rejects: RejectsFile = field(default_factory=lambda: RejectsFile(None))
    on_progress: Callable[[int], None] | None = None

    def run(self, path: Path, fmt: Format) -> Summary:
        from empower_cli.store_import import SeenIds

        started = time.perf_counter()
        self.summary.file, self.summary.format, self.summary.dry_run = str(path), fmt, self.store is None
        try:
            stream = path.open("rb")
        except FileNotFoundError:
            raise NotFound(f"{path}: no such file") from None
        except OSError as e:
            raise InvalidInput(str(path), f"cannot read the file ({e.strerror})") from None
        self.seen = SeenIds() if self.store is None else None
        self._prefix()
        validator = RowValidator(self.policy, now=self.now)
        with stream:
            reader: CsvReader | JsonlReader = (CsvReader if fmt == "csv" else JsonlReader)(stream, str(path))
            self.rejects.open()
            chunk: list[Prepared] = []
            bad: list[tuple[int, str, str, str]] = []
            prepare = validator.prepare
            for rec in reader:
                self.summary.read += 1
                if rec.problem is not None:
                    bad.append((rec.line, str(rec.fields.get("external_id", "")), rec.problem, rec.raw))
                else:
                    try:
                        chunk.append(prepare(rec))
                    except (EmpowerError, RowProblem) as e:
                        bad.append((rec.line, str(rec.fields.get("external_id", "")), _reason(e), rec.raw))
                if len(chunk) + len(bad) >= self.chunk_rows:
                    self._flush(chunk, bad, reader.bytes_read)
                    chunk, bad = [], []
            self._flush(chunk, bad, reader.bytes_read)
        if self.seen is not None:
            self.seen.close()
        self.summary.elapsed = time.perf_counter() - started
        self.summary.rows_per_second = self.summary.read / self.summary.elapsed if self.summary.elapsed else 0.0
        return self.summary

    def _prefix(self) -> None:
        ident = self.identity
        self.event_head = (
            '{"actor":' + json.dumps(ident.agent, ensure_ascii=False) + ',"at":' + json.dumps(iso(self.now))
            + ',"case_id":'
        )  # fmt: skip
        self.event_mid = ',"kind":"imported","os_user":' + json.dumps(ident.os_user, ensure_ascii=False) + ',"payload":'
        tail = canonical_json({"policy_sha256": self.policy.sha256, "policy_version": self.policy.version})
        self.payload_tail = tail[1:-1]  # the keys without braces, spliced in by _payload

    def _payload(self, p: Prepared) -> str:
        """Canonical JSON of the event payload, composed without re-serialising the content:
        the keys are in sorted order (content, content_hash, policy_*, today_*)."""
        return (
            '{"content":' + p.content_json + ',"content_hash":"' + p.content_hash + '",'
            + self.payload_tail + ',"today_discretionary":"' + p.today_discretionary
            + '","today_status":"' + p.today_status + '"}'
        )  # fmt: skip

    def _flush(self, chunk: list[Prepared], bad: list[tuple[int, str, str, str]], done_bytes: int) -> None:
        if self.store is None:
            self._flush_dry(chunk, bad)
        elif chunk:
            self._flush_write(chunk, bad)
        self.summary.rejected += len(bad)
        self.rejects.write(bad)
        if self.on_progress is not None:
            self.on_progress(done_bytes)

    def _classify(self, chunk: list[Prepared], known: dict[str, str | None],
                  bad: list[tuple[int, str, str, str]]) -> list[Prepared]:  # fmt: skip
        """Drop rows already recorded (skipped) and conflicting ones (rejected)."""
        fresh: list[Prepared] = []
        in_chunk: dict[str, str] = {}
        for p in chunk:
            ext = p.external_id
            if ext in known:
                digest = known[ext]
            elif ext in in_chunk:
                digest = in_chunk[ext]
            else:
                in_chunk[ext] = p.content_hash
                fresh.append(p)
                continue
            if digest == p.content_hash:
                self.summary.skipped += 1
            else:
                why = "a live case" if digest is None else "a different content"
                bad.append((p.line, ext, f"conflict: external_id {ext!r} is already recorded with {why}; "
                            "not overwritten", p.raw))  # fmt: skip
        return fresh

    def _flush_dry(self, chunk: list[Prepared], bad: list[tuple[int, str, str, str]]) -> None:
        from empower_cli.store_import import known_external

        ids = [p.external_id for p in chunk]
        assert self.seen is not None
        known = self.seen.lookup(ids)
        if self.dry_conn is not None:
            known.update(known_external(self.dry_conn, ids))
        fresh = self._classify(chunk, known, bad)
        self.seen.add((p.external_id, p.content_hash) for p in fresh)
        self.summary.imported += len(fresh)

    def _flush_write(self, chunk: list[Prepared], bad: list[tuple[int, str, str, str]]) -> None:
        from empower_cli.store_import import known_external, next_case_id, write_chunk

        store = self.store
        assert store is not None
        sha256 = hashlib.sha256
        with store.write():
            known = known_external(store.conn, [p.external_id for p in chunk])
            conflicts: list[tuple[int, str, str, str]] = []
            fresh = self._classify(chunk, known, conflicts)
            head = store.head()
            seq, prev = head.seq, head.hash
            case_id = next_case_id(store.conn)
            cases, events = [], []
            at = iso(self.now)
            actor, os_user = self.identity.agent, self.identity.os_user
            for p in fresh:
                seq += 1
                payload = self._payload(p)
                body = f'{self.event_head}{case_id}{self.event_mid}{payload},"seq":{seq}}}'
                digest = sha256((prev + body).encode("utf-8")).hexdigest()
                cases.append((case_id, p.external_id, *p.case, p.content_hash))
                events.append((seq, at, case_id, "imported", actor, os_user, payload, prev, digest))
                prev = digest
                case_id += 1
            write_chunk(store, cases, events, (p.customer for p in fresh))
        # Counted only once the chunk is committed.
        self.summary.imported += len(fresh)
        bad.extend(conflicts)
