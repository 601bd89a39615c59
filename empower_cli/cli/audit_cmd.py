"""`empower audit summary|agents|rules|customers|pairs|outcomes|head|verify`: supervisor
reports over the recorded cases, and the check of the tamper-evident log (SPEC §6, §8).
"""

from __future__ import annotations

import sys
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any

import typer

from empower_cli.cli.common import WHEN, JsonOption, chosen_format, print_json, session, wants_json

if TYPE_CHECKING:
    from empower_cli.audit.reports import Period
    from empower_cli.cli.common import Session

Opt = typer.Option
SinceOption = Annotated[
    str | None, Opt("--since", help=f"Cases opened at or after WHEN: {WHEN}.", show_default=False)
]
UntilOption = Annotated[
    str | None, Opt("--until", help=f"Cases opened before WHEN: {WHEN}.", show_default=False)
]


class ReportFormat(str, Enum):
    """How a report leaves the program (SPEC §8), and TSV: what a pipe gets by default."""

    table = "table"
    tsv = "tsv"
    json = "json"
    csv = "csv"
    markdown = "markdown"


FormatOption = Annotated[
    ReportFormat | None,
    Opt("--format", help="table, tsv, json, csv or markdown (default: table on a terminal, tsv in a pipe; "
                         "json with --json).", show_default=False, case_sensitive=False),
]  # fmt: skip


def register(group: typer.Typer) -> None:
    """Add the reports, `head` and `verify` to the `audit` group."""
    group.command("summary")(summary)
    group.command("agents")(agents)
    group.command("rules")(rules)
    group.command("customers")(customers)
    group.command("pairs")(pairs)
    group.command("outcomes")(outcomes)
    group.command("head")(head)
    group.command("verify")(verify)


def output_format(ctx: typer.Context, fmt: ReportFormat | None, local_json: bool) -> str:
    """--format wins; the global or local --json means --format json (SPEC §5); otherwise a
    table on a terminal and full values, tab-separated, in a pipe."""
    return chosen_format(ctx, fmt, local_json)


def period_of(s: Session, since: str | None, until: str | None) -> Period:
    from empower_cli.audit.reports import Period
    from empower_cli.core.errors import InvalidInput
    from empower_cli.core.timeutil import parse_when

    start = parse_when(since, now=s.now, field="--since") if since is not None else None
    end = parse_when(until, now=s.now, field="--until") if until is not None else None
    if start is not None and end is not None and start >= end:
        raise InvalidInput("--until", "must be later than --since")
    return Period(now=s.now, since=start, until=end)


def describe(period: Period) -> str:
    if period.since is None and period.until is None:
        return "all recorded cases"
    since = f"from {period.since:%Y-%m-%d %H:%M}" if period.since else "from the start"
    until = f" until {period.until:%Y-%m-%d %H:%M}" if period.until else " until now"
    return since + until + " UTC"


def run_report(ctx: typer.Context, name: str, since: str | None, until: str | None, fmt: ReportFormat | None,
               local_json: bool, limit: int | None = None) -> None:  # fmt: skip
    with session(ctx) as s:
        chosen = output_format(ctx, fmt, local_json)
        period = period_of(s, since, until)
        from empower_cli.audit import reports as audit

        _note_deferred_indexes(s)
        from empower_cli.render.json import period_json, report_json, report_with_period

        data = report_json(name, audit.report(name, s.store, period, policy=s.policy, limit=limit), s.policy.digits)
        if chosen == "json":  # a script learns the period it asked for from the answer itself
            data = report_with_period(name, data, period_json(period))
        emit(name, data, chosen, currency=s.policy.currency, period=describe(period))


def _note_deferred_indexes(s: Session) -> None:
    """Reports stay correct without the indexes a large import defers, only slower: say why."""
    if s.store.indexes_deferred():
        print("note: some report indexes are not built yet (an import is running or was interrupted); "
              "reports are slower until it completes or `empower init` builds them", file=sys.stderr)  # fmt: skip


def emit(name: str, data: Any, fmt: str, *, currency: str, period: str) -> None:
    from empower_cli.render import reports as audit_render

    if fmt == "json":
        print_json(data)
    elif fmt in ("csv", "tsv"):
        from empower_cli.render.tabular import delimited

        sys.stdout.write(delimited(fmt, *audit_render.rows_of(name, data)))
    elif fmt == "markdown":
        from empower_cli.render.markdown import report_markdown

        sys.stdout.write(report_markdown(name, data, currency=currency, period=period))
    else:
        from empower_cli.render.terminal import console

        console().print(audit_render.table(name, data, currency=currency, period=period))


def summary(ctx: typer.Context, since: SinceOption = None, until: UntilOption = None,
            fmt: FormatOption = None, json: JsonOption = False) -> None:  # fmt: skip
    """The period at a glance: cases, discretion and spend per week, escalations, retention.

    Cases, in-policy share, discretion cases and spend (with a weekly sparkline), escalations,
    co-signs, objections, denials, expiries, dissatisfied reactions, and retention after
    discretion vs after a denial.

    Example: empower audit summary --since 90d
    """
    run_report(ctx, "summary", since, until, fmt, json)


def agents(ctx: typer.Context, since: SinceOption = None, until: UntilOption = None,
           fmt: FormatOption = None, json: JsonOption = False) -> None:  # fmt: skip
    """Per agent: discretion rate and spend; flags agents far from their peers either way.

    Cases, discretion rate, spend, mean amount, escalations and objections received per
    agent; agents far from their peers (median and MAD) are flagged as too lenient or too harsh.

    Example: empower audit agents --since 2026-01-01 --format markdown
    """
    run_report(ctx, "agents", since, until, fmt, json)


def rules(ctx: typer.Context, since: SinceOption = None, until: UntilOption = None,
          fmt: FormatOption = None, json: JsonOption = False) -> None:  # fmt: skip
    """Per rule: times bent and blocked, spend, and which rules should become policy.

    A policy candidate is a rule bent often, mostly approved, with good outcomes; the
    suggested limit would cover 90 % of the bent cases.

    Example: empower audit rules --since 365d
    """
    run_report(ctx, "rules", since, until, fmt, json)


def customers(
    ctx: typer.Context, since: SinceOption = None, until: UntilOption = None, fmt: FormatOption = None,
    limit: Annotated[int, Opt("--limit", min=0, help="At most this many customers, most spent first; 0 for all.")] = 50,
    json: JsonOption = False,
) -> None:  # fmt: skip
    """Customers who received discretion, most spent first; repeat exceptions flagged.

    Shows the share of each customer's budget used; customers with far more exceptions
    than others are flagged as possible abuse.

    Example: empower audit customers --since 365d --limit 20
    """
    run_report(ctx, "customers", since, until, fmt, json, limit=limit or None)


def pairs(ctx: typer.Context, since: SinceOption = None, until: UntilOption = None,
          fmt: FormatOption = None, json: JsonOption = False) -> None:  # fmt: skip
    """Who co-signs whose cases; flags an agent whose co-signs mostly come from one peer.

    The share is the part of the agent's co-signed cases that this colleague signed.

    Example: empower audit pairs --format csv > pairs.csv
    """
    run_report(ctx, "pairs", since, until, fmt, json)


def outcomes(ctx: typer.Context, since: SinceOption = None, until: UntilOption = None,
             fmt: FormatOption = None, json: JsonOption = False) -> None:  # fmt: skip
    """Customer reactions and retention by decision kind.

    Kinds: in policy, discretion (an approved exception), denied, expired, pending.

    Example: empower audit outcomes --since 180d
    """
    run_report(ctx, "outcomes", since, until, fmt, json)


def head(ctx: typer.Context, json: JsonOption = False) -> None:
    """Print the latest event as SEQ:HASH, to keep somewhere else for `verify --expect`.

    On an empty log it prints 0 and the genesis hash (64 zeros).

    Example: empower audit head >> ~/empower-heads.txt
    """
    with session(ctx, governed=False) as s:
        top = s.store.head()
        if wants_json(ctx, json):
            print_json({"seq": top.seq, "hash": top.hash, "head": str(top)})
        else:
            print(top)


def verify(
    ctx: typer.Context,
    expect: Annotated[str | None, Opt("--expect", help="A head kept earlier (SEQ:HASH from `audit head`) "
                                      "that must still be in the log.", show_default=False)] = None,
    json: JsonOption = False,
) -> None:  # fmt: skip
    """Recompute the hash chain and check the tables against it; exit 6 naming what does not match.

    Every case row is re-derived from its events, every customer's segment and every applied
    policy too: a row changed, deleted or added outside empower is named. With --expect, an
    earlier head must still be in the log with the same hash, so a truncated or rewritten log
    fails too.

    Example: empower audit verify --expect 1042:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
    """
    with session(ctx, governed=False) as s:
        from empower_cli.audit.verify import parse_head, verify
        from empower_cli.core.errors import Conflict

        kept = parse_head(expect) if expect is not None else None
        result = verify(s.store, expect=kept)
        if wants_json(ctx, json):
            from empower_cli.render.json import verification_json

            print_json(verification_json(result))
        else:
            state = result.state
            tables = (f", {state.cases} cases, {state.customers} customer segments and {state.policies} applied "
                      "policies against them" if state else "")  # fmt: skip
            print(f"checked {result.checked} events{tables}; last good head {result.head}")
            if kept is not None and result.ok:
                print(f"the kept head {kept.seq} is in the log, unchanged")
        if not result.ok:
            raise Conflict(f"the log does not verify: {result.problem}")
        if not wants_json(ctx, json):
            print("ok: the chain verifies")
