"""Every audit report for one period, together: what `empower audit report --html` shares.

Each part is the very value `empower audit NAME --format json` prints for the same period
(the customers report with its default limit), so the shared file cannot disagree with it.
"""

from __future__ import annotations

from empower_cli.audit.reports import REPORTS, Period, Report, report
from empower_cli.core.models import Policy
from empower_cli.store.sqlite import Store

CUSTOMERS_LIMIT = 50  # the default of `empower audit customers`


def all_reports(store: Store, period: Period, *, policy: Policy) -> dict[str, Report]:
    """{report name: its rows} for summary, agents, rules, customers, pairs, outcomes
    (render.json.report_json gives each the value `audit NAME --format json` prints)."""
    return {name: report(name, store, period, policy=policy, limit=CUSTOMERS_LIMIT if name == "customers" else None)
            for name in REPORTS}  # fmt: skip
