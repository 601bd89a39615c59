"""Who governs (SPEC §5a): the policy applied to the database decides every case; a policy
file only proposes. Applying a policy, the first application, the log, and the file's drift.

The governing policy is read from the newest `policy_applied` event, which holds the full
text: the `policies` table is a readable copy that `audit verify` checks against the events.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from empower_cli.core.digest import sha256_hex
from empower_cli.core.errors import Conflict, InvalidPolicy, NotAllowed, PolicyError, StoreError
from empower_cli.core.models import Policy
from empower_cli.services.identity import Identity, os_account
from empower_cli.store.sqlite import Store

if TYPE_CHECKING:
    from empower_cli.store.backend import ReadOnly

POLICY_APPLIED = "policy_applied"


@dataclass(frozen=True)
class PolicyFile:
    """A policy file as read: its parsed policy and its exact text (the SHA-256 is of its bytes)."""

    path: Path
    policy: Policy
    text: str


@dataclass(frozen=True)
class Applied:
    """One applied policy: its number in the log, the policy, and who applied it when."""

    number: int
    policy: Policy
    applied_by: str
    applied_at: str
    seq: int


@dataclass(frozen=True)
class PolicyApplication:
    """What `policy apply` did: the policy that governs now, the one before, and whether it changed."""

    applied: Applied
    previous_sha256: str
    changed: bool


def read_policy_file(path: Path) -> PolicyFile:
    """Read and validate a policy file (exit 3 when unsafe, unreadable or invalid)."""
    return PolicySource.read(path).parsed()


class PolicySource:
    """A policy file's bytes, read and checked for safety (exit 3 when missing, unsafe or too
    large), parsed only when needed: a command whose file is the applied policy compares
    hashes and never parses it twice."""

    def __init__(self, path: Path, data: bytes) -> None:
        self.path = path
        self.data = data
        self.sha256 = sha256_hex(data)
        self._parsed: PolicyFile | None = None

    @classmethod
    def read(cls, path: Path) -> PolicySource:
        from empower_cli.policy.load import read_policy_bytes

        return cls(path, read_policy_bytes(path))

    def parsed(self) -> PolicyFile:
        """The validated policy (InvalidPolicy, exit 3, listing every problem otherwise)."""
        if self._parsed is None:
            from empower_cli.policy.load import parse_policy

            self._parsed = PolicyFile(self.path, parse_policy(self.data, str(self.path)), self.data.decode("utf-8"))
        return self._parsed


def applied_policy(store: Store) -> Applied | None:
    """The governing policy, from the newest `policy_applied` event (None before the first);
    the views for other tools are brought in line with it (services.views)."""
    found = read_applied(store, store.location)
    if found is not None:
        from empower_cli.services.views import keep_views_current

        keep_views_current(store, found.policy)
    return found


def read_applied(source: Store | ReadOnly, path: str) -> Applied | None:
    """`applied_policy` on a store or a read-only view of one (a dry run writes nothing)."""
    from empower_cli.policy.load import parse_policy

    event = source.latest_event(POLICY_APPLIED)
    if event is None:
        return None
    try:
        payload = json.loads(event["payload"])
        text: str = payload["text"]
        data = text.encode("utf-8")
        intact = sha256_hex(data) == payload["policy_sha256"] and _chained(source, event, payload)
    except (ValueError, KeyError, TypeError, AttributeError):
        intact = False
    if not intact:
        raise StoreError(f"{path}: the applied policy (event {event['seq']}) does not match its SHA-256; the log was "
                         "changed outside empower (run: empower audit verify)")  # fmt: skip
    try:
        policy = parse_policy(data, f"applied policy #{payload['number']}")
    except InvalidPolicy as e:  # only a newer empower's policy keys could do this
        raise StoreError(f"{path}: the applied policy #{payload['number']} cannot be read by this "
                         f"empower ({e}); upgrade empower") from None  # fmt: skip
    return Applied(payload["number"], policy, event["actor"], event["at"], event["seq"])


def deciding_policy(store: Store, sha256: str | None, governing: Policy) -> Policy:
    """The applied policy a case was decided under (by its SHA-256), for reading the case as
    that policy typed it; the governing policy when it is that one, or when no intact copy
    is on record (the `policies` table is a readable copy: its text must hash to SHA256)."""
    if sha256 is None or sha256 == governing.sha256:
        return governing
    from empower_cli.core.digest import sha256_hex
    from empower_cli.policy.load import parse_policy

    for row in store.policy_rows():
        data = row["text"].encode("utf-8")
        if row["sha256"] == sha256 and sha256_hex(data) == sha256:
            try:
                return parse_policy(data, f"applied policy #{row['number']}")
            except InvalidPolicy:
                break
    return governing


def _chained(source: Store | ReadOnly, event: dict[str, Any], payload: dict[str, Any]) -> bool:
    """The policy event still hashes to its own hash, and the next event links to it: an edit
    in place is refused at once (a whole recomputed chain takes `audit verify --expect`)."""
    from empower_cli.store.chain import event_hash

    if event_hash(event["prev_hash"], {**event, "payload": payload}) != event["hash"]:
        return False
    following = source.next_prev_hash(event["seq"])
    return following is None or following == event["hash"]


def proposed(file: PolicyFile) -> Applied:
    """What would govern a database that has no policy yet: the file (a dry run writes nothing,
    so it does not apply it)."""
    return Applied(0, file.policy, "(not applied yet)", "", 0)


def ensure_applied(store: Store, file: PolicyFile | None, *, now: dt.datetime) -> Applied:
    """The governing policy; on a database that has none yet, the file is applied first.

    A new database (no events) takes it from whoever uses it first, recorded as applied by
    that OS account. A database that already holds history from before policies were applied
    is migrated only by the account that owns the file: anyone else could otherwise make
    their own copy of the policy govern it.
    """
    found = applied_policy(store)
    if found is not None:
        return found
    if file is None:
        raise PolicyError(f"{store.location}: no policy has been applied to this database and no policy file was "
                          "found; run `empower init` or pass --policy PATH")  # fmt: skip
    account = os_account()
    login = store.login()  # on PostgreSQL, the database login applies the first policy
    with store.write():
        if store.latest_event(POLICY_APPLIED) is None:  # re-read under the lock: another may have won
            if store.path is not None and store.has_events() and not _owns(store.path):
                raise NotAllowed(
                    f"{store.location} holds history but no applied policy yet; its owner must apply the first "
                    "one (run `empower init` as the account that owns the database file)"
                )
            _append(store, file, actor=login or account, os_user=account, now=now, note="first policy", previous=None)
    found = applied_policy(store)
    assert found is not None
    return found


def apply_policy(file: PolicyFile, *, store: Store, governing: Applied, identity: Identity, now: dt.datetime,
                 note: str | None) -> PolicyApplication:  # fmt: skip
    """`empower policy apply`: make the file govern. Only a role with can_approve under the
    policy applied now may; a currency change is refused while the database holds cases."""
    if not identity.role.can_approve:
        raise NotAllowed(f"{identity.agent} ({identity.role.name}) may not apply a policy; only a role with "
                         "can_approve under the applied policy may")  # fmt: skip
    current = governing.policy
    new = file.policy
    if new.sha256 == current.sha256:
        return PolicyApplication(governing, current.sha256, changed=False)
    with store.write():
        latest = store.latest_event(POLICY_APPLIED)
        if latest is None or latest["seq"] != governing.seq:
            raise Conflict("another policy was applied meanwhile; check `empower policy log` and run again")
        if (new.currency, new.digits) != (current.currency, current.digits) and store.has_cases():
            raise PolicyError(
                f"{file.path}: currency {new.currency} ({new.digits} minor digits) differs from the applied "
                f"policy's {current.currency} ({current.digits}); refused while the database holds cases, "
                "whose amounts are stored in the applied currency's minor units"
            )
        _append(store, file, actor=identity.agent, os_user=identity.os_user, now=now, note=note,
                previous=current.sha256)  # fmt: skip
    found = applied_policy(store)
    assert found is not None
    return PolicyApplication(found, current.sha256, changed=True)


def drift_note(source: PolicySource, governing: Applied) -> str | None:
    """One line when the policy file on disk is not the one that governs (None when it is)."""
    if source.sha256 == governing.policy.sha256:
        return None
    applied = (f"the applied policy (version {governing.policy.version}, #{governing.number}, "
               f"sha256 {governing.policy.sha256[:12]}…)")  # fmt: skip
    path = source.path
    try:
        version = source.parsed().policy.version
    except InvalidPolicy:
        what = f"{path} is not a valid policy (see `empower policy check`) and not {applied}"
    else:
        what = f"{path} (version {version}, sha256 {source.sha256[:12]}…) is not {applied}"
    return f"{what}; deciding under the applied one (a supervisor makes a file govern with: empower policy apply)"


def _append(store: Store, file: PolicyFile, *, actor: str, os_user: str, now: dt.datetime, note: str | None,
            previous: str | None) -> None:  # fmt: skip
    policy = file.policy
    number = store.policy_count() + 1
    payload = {"number": number, "policy_version": policy.version, "policy_sha256": policy.sha256,
               "previous_sha256": previous, "currency": policy.currency, "source": str(file.path),
               "note": note, "text": file.text}  # fmt: skip
    head = store.append_event(kind=POLICY_APPLIED, case_id=None, actor=actor, os_user=os_user, payload=payload, at=now)
    store.record_policy(number=number, version=policy.version, sha256=policy.sha256, currency=policy.currency,
                        text=file.text, applied_by=actor, os_user=os_user, at=now, note=note, seq=head.seq)  # fmt: skip


def _owns(path: Path) -> bool:
    try:
        return path.stat().st_uid == os.getuid()
    except OSError:
        return False
