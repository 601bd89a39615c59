"""The views for other tools (`cases_now`, `budgets_now`, store.views) follow the applied
policy: written from it the first time a command reads it, rewritten when another governs."""

from __future__ import annotations

import contextlib

from empower_cli.core.errors import DatabaseBusy, StoreError
from empower_cli.core.models import Policy
from empower_cli.store.sqlite import Store
from empower_cli.store.views import ViewPolicy, ensure_views


def view_policy(policy: Policy) -> ViewPolicy:
    names: dict[str, None] = {}
    for ctype in policy.case_types.values():
        names.update((f.name, None) for f in ctype.facts)
    b = policy.budget
    return ViewPolicy(sha256=policy.sha256, version=policy.version, currency=policy.currency, digits=policy.digits,
                      per_customer=b.per_customer, segments=dict(b.segments), window_days=b.window_days,
                      facts=tuple(names))  # fmt: skip


def keep_views_current(store: Store, policy: Policy) -> None:
    """Views for other tools never stop a command: a database that cannot be written now (read
    only, a full disk, busy past the retries) keeps its views until a later command."""
    with contextlib.suppress(StoreError, DatabaseBusy):
        ensure_views(store, view_policy(policy))
