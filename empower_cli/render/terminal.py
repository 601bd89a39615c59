"""Everything the terminal shows: verdicts, cases, budgets, the policy as tables.

User text is never interpreted: rich markup is escaped and control characters
(terminal escapes, bidi overrides) are shown as visible codes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from empower_cli.core.text import visible

if TYPE_CHECKING:
    from rich.console import Console, ConsoleOptions, RenderableType
    from rich.table import Table

    from empower_cli.core.models import BudgetState, Evaluation, Policy, Proposal
    from empower_cli.services.workflow import QueueItem

RESULT_STYLE = {"pass": "green", "bent": "yellow", "blocked": "bold red"}
INLINE_TEXT_CHARS = 60  # longer free text, or text with a line break or tab, is shown below the panel
STATUS_STYLE = {
    "approved": "bold green", "pending_cosign": "bold yellow", "pending_supervisor": "bold magenta",
    "denied": "bold red", "expired": "dim",
}  # fmt: skip


def safe(text: object) -> str:
    """Visible and markup-escaped: for text placed inside rich markup."""
    from rich.markup import escape

    return escape(visible(str(text)))


def console(*, stderr: bool = False) -> Console:
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=False, emoji=False)


def money_line(budget: BudgetState, digits: int, currency: str) -> str:
    from empower_cli.core.money import format_money

    def m(c: int) -> str:

        return format_money(c, digits)

    return (f"limit {m(budget.limit)} · spent {m(budget.spent)} · held {m(budget.held)} · "
            f"[bold]remaining {m(budget.remaining)} {currency}[/]")  # fmt: skip


def recorded_text(case_id: int, status: str) -> str:
    """What a recorded case prints on stdout: its id and status, then the next step, each whole
    on one line (a terminal wraps it where it must; no command is broken by us)."""
    from empower_cli.render.json import next_step

    return f"recorded case {case_id}: {status}\nnext step: {visible(next_step(case_id, status))}\n"


def rules_table(rules: Sequence[Mapping[str, Any]]) -> RenderableType:
    """Each rule's result and text and, when the rule carries them (`render.json.rules_json`),
    the customer's value against its limits: `days_since_purchase 40 · standard ≤ 15 · bendable ≤ 30`."""
    from rich.table import Column, Table

    table = Table("rule", "result", Column("text", overflow="fold"), show_header=True, header_style="bold",
                  box=None, pad_edge=False)  # fmt: skip
    for r in rules:
        style = RESULT_STYLE.get(r["result"], "")
        measure = measure_text(r)  # under the text: at 80 columns it has the room of a line
        text = safe(r["text"]) + (f"\n[dim]{safe(measure)}[/]" if measure else "")
        table.add_row(safe(r["id"]), f"[{style}]{r['result']}[/]", text)
    return table


def measure_text(rule: Mapping[str, Any]) -> str:
    """The numbers behind a rule result, in words a person reads at a glance."""
    if "fact" not in rule:
        return ""

    def show(value: Any) -> str:
        return "yes" if value is True else "no" if value is False else str(value)

    op, limit = rule["op"], rule["limit"]
    head = f"{rule['fact']} {show(rule['value'])}"
    if op == "equals":
        return f"{head} · must be {show(limit)}"
    if op == "one_of":
        return f"{head} · must be one of {', '.join(show(v) for v in limit)}"
    sign = "≥" if op == "min" else "≤"
    unit = " days old" if op == "max_age_days" else ""
    bend = f" · bendable {sign} {show(rule['bend_limit'])}{unit}" if "bend_limit" in rule else " · cannot be bent"
    return f"{head} · standard {sign} {show(limit)}{unit}{bend}"


def evaluation_panel(ev: Evaluation, policy: Policy, *, title: str = "Evaluation",
                     proposal: Proposal | None = None) -> RenderableType:  # fmt: skip
    """The verdict: each rule (with the numbers, given the PROPOSAL), the budget effect, the
    status and its reasons, and whether the justification it needs is still missing."""
    from rich.console import Group
    from rich.panel import Panel

    from empower_cli.core.money import format_money
    from empower_cli.core.verdict import budget_effect
    from empower_cli.render.json import rules_json

    digits = policy.digits
    parts: list[RenderableType] = []
    if ev.rules:
        rules = rules_json(ev, proposal, policy) if proposal is not None else [r.as_dict() for r in ev.rules]
        parts.append(rules_table(rules))
    else:
        parts.append("[dim]no rules for this case type[/]")
    kind = "in policy" if ev.in_policy else "out of policy"
    parts.append(f"\n[bold]{kind}[/]; discretionary amount "
                 f"[bold]{format_money(ev.discretionary_amount, digits)} {policy.currency}[/]")  # fmt: skip
    parts.append(f"budget effect: {budget_effect(ev, digits)}")
    parts.append("after: " + money_line(ev.budget_after, digits, policy.currency))
    style = STATUS_STYLE.get(ev.status, "")
    parts.append(f"\nverdict: [{style}]{ev.status}[/]")
    for reason in ev.reasons:
        parts.append(f"  • {safe(reason)}")
    if ev.justification_required:
        given = len(proposal.justification.strip()) if proposal is not None else 0
        parts.append(f"[green]justification given ({given} characters)[/]" if given >= policy.min_justification_chars
                     else f"[yellow]needs a justification of at least {policy.min_justification_chars} characters[/]")
    return Panel(Group(*parts), title=title, expand=False)


def case_detail(case: Mapping[str, Any], events: Sequence[Mapping[str, Any]], *,
                policy: Policy, budget: BudgetState) -> RenderableType:  # fmt: skip
    from rich.console import Group
    from rich.panel import Panel
    from rich.table import Column, Table

    head = Table.grid(padding=(0, 2))
    head.add_column(style="bold")
    head.add_column(overflow="fold")  # an unbroken run (a long customer id) folds, never "…"
    for key, value in _case_rows(case, policy):
        head.add_row(key, value)
    fact_table = Table("fact", Column("value", overflow="fold"), box=None, header_style="bold", pad_edge=False)
    for name, value in json.loads(case["facts"]).items():
        fact_table.add_row(safe(name), safe(value))
    parts: list[RenderableType] = [head, "", fact_table, "", rules_table(json.loads(case["rules"]))]
    parts += ["", "[bold]reasons[/]"] + [f"  • {safe(r)}" for r in json.loads(case["reasons"])]
    parts += ["", "[bold]history[/]", _history(events), "",
              "customer budget now: " + money_line(budget, policy.digits, policy.currency)]  # fmt: skip
    return Panel(Group(*parts), title=f"case {case['id']}", expand=False)


def _case_rows(case: Mapping[str, Any], policy: Policy) -> list[tuple[str, str]]:
    """The case's head: (label, value) for what it holds."""
    m = policy.money
    status = case["effective_status"]
    rows: list[tuple[str, str]] = [
        ("status", f"[{STATUS_STYLE.get(status, '')}]{status}[/]"),
        ("customer", safe(case["customer_id"]) + (f" ({safe(case['segment'])})" if case["segment"] else "")),
        ("agent", safe(case["agent"])),
        ("opened", case["opened_at"]),
        ("type", safe(case["case_type"])),
        ("action", safe(case["action"])),
        ("amount", m(case["amount"])),
        ("discretion", m(case["discretionary_amount"]) + (" (in policy)" if case["in_policy"] else "")),
    ]
    if status in ("pending_cosign", "pending_supervisor"):
        rows.append(("hold", f"{m(case['held_amount'])} until {case['expires_at']}"))
    if case.get("justification"):
        rows.append(("justification", _inline_or_below(case["justification"])))
    rows += [(key, safe(case[key])) for key in ("cosigner", "supervisor", "reaction") if case.get(key)]
    if case.get("retained") is not None:
        rows.append(("retained", "yes" if case["retained"] else "no"))
    if case.get("imported"):
        rows.append(("imported", f"yes ({safe(case.get('external_id') or '')}); today's policy: "
                                 f"{case.get('today_status') or '?'}"))  # fmt: skip
    note = "" if case.get("policy_sha256") in (None, policy.sha256) else (
        f" [yellow](the policy has changed since: now {safe(policy.version)}; "
        "the case is settled under the recorded evaluation)[/]")  # fmt: skip
    rows.append(("policy", safe(case.get("policy_version") or "?") + note))
    return rows


def _history(events: Sequence[Mapping[str, Any]]) -> RenderableType:
    from rich.table import Column, Table

    history = Table("seq", "at", "event", "by", Column("details", overflow="fold"), box=None, header_style="bold",
                    pad_edge=False)  # fmt: skip
    for e in events:
        detail = _event_detail(json.loads(e["payload"]))
        shown = safe(detail) if e["kind"] in ("opened", "imported") else _inline_or_below(detail)
        history.add_row(str(e["seq"]), e["at"][:19], e["kind"], safe(e["actor"]), shown)
    return history


def print_case_detail(out: Console, case: Mapping[str, Any], events: Sequence[Mapping[str, Any]], *,
                      policy: Policy, budget: BudgetState) -> None:  # fmt: skip
    """`case show`: the panel, then every justification, note or reason too long for it, whole.

    Free text may run to a million characters (text.MAX_TEXT_CHARS): inside a panel rich
    would wrap it between borders and cut an unbroken run short with "…". Written below it
    as it was typed (control characters made visible), the terminal wraps it and nothing is lost.
    """
    out.print(case_detail(case, events, policy=policy, budget=budget))
    texts: list[tuple[str, str]] = []
    if case.get("justification") and not _fits_inline(case["justification"]):
        texts.append(("justification", case["justification"]))
    for e in events:
        detail = _event_detail(json.loads(e["payload"]))
        if e["kind"] not in ("opened", "imported") and not _fits_inline(detail):
            texts.append((f"{e['kind']} by {e['actor']}, event {e['seq']}", detail))
    for heading, text in texts:
        out.print(f"\n[bold]{safe(heading)}[/] ({len(text):,} characters)")
        # Written past rich: it would expand tabs and wrap; the text must come out as typed.
        out.file.write(visible(text) + "\n")
        out.file.flush()


def _fits_inline(text: str) -> bool:
    return len(text) <= INLINE_TEXT_CHARS and "\n" not in text and "\t" not in text


def _inline_or_below(text: str) -> str:
    if _fits_inline(text):
        return safe(text)
    return f"[dim]{len(text):,} characters, in full below[/]"


def _event_detail(payload: Mapping[str, Any]) -> str:
    """The one line of an event worth showing in a case's history."""
    if "reaction" in payload and "retained" in payload:
        kept = {True: "retained", False: "lost"}.get(payload["retained"], "")
        return f"{payload['reaction']}, {kept}".strip(", ")
    return str(payload.get("note") or payload.get("reason") or payload.get("status") or "")


def list_table(title: str | None = None) -> Table:
    """A list for a terminal: no box drawing, so a terminal of 80 columns has room for the values."""
    from rich.table import Table

    return Table(title=title, header_style="bold underline", box=None, pad_edge=False, padding=(0, 1, 0, 0))


def add_columns(table: Table, columns: Sequence[str]) -> None:
    """COLUMNS as `name`, `name:r` (a number: right-aligned) or `name:w` (text that may wrap).
    Only text wraps (folding an unbroken id): a date, an amount, an id or a time left is never
    cut or wrapped while the terminal has room for them (80 columns and more)."""
    for col in columns:
        name, _, how = col.partition(":")
        table.add_column(name, justify="right" if how == "r" else "left", no_wrap=how != "w", overflow="fold",
                         min_width=len(name) if how == "w" else None)  # a header is not folded mid-word


WRAP_AT_LEAST = 10  # a text column keeps this many characters (or its widest value) before rows become records


class Fitted:
    """A list table where the terminal has room for its whole values; in a narrower terminal
    the same rows as records, one `label  value` line per column (as `psql \\x` does), so no
    column is dropped and no id, date, amount or time left is cut at any width.

    Room means every column that does not wrap (`no_wrap`: ids, dates, amounts, time left)
    at its widest value, and every text column at WRAP_AT_LEAST characters (its header at
    least; less when its widest value is shorter), with the padding and rules. The text
    columns then share what is left, each up to its widest value: the widths are set here,
    because rich, short of room, would take it from every column and crop the last one."""

    def __init__(self, table: Table) -> None:
        self.table = table

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> Iterator[RenderableType]:
        widths = self.widths(console, options)
        if widths is None:
            yield from self.records()
            return
        for column, width in zip(self.table.columns, widths, strict=True):
            column.width = width
        yield self.table

    def widths(self, console: Console, options: ConsoleOptions) -> list[int | None] | None:
        """Each column's width (all None: the table fits as it is), or None when it cannot fit."""
        from rich.measure import Measurement

        def widest(*cells: RenderableType) -> int:
            return max(Measurement.get(console, options, cell).maximum for cell in cells)

        columns = self.table.columns
        natural = [widest(c.header, *c.cells) for c in columns]
        room = options.max_width - self.frame()
        if sum(natural) <= room:
            return [None] * len(columns)
        least = [n if c.no_wrap else min(n, max(WRAP_AT_LEAST, c.min_width or 0, widest(c.header)))
                 for c, n in zip(columns, natural, strict=True)]  # fmt: skip
        if sum(least) > room:
            return None
        widths = list(least)
        text = [i for i, c in enumerate(columns) if not c.no_wrap]
        for _ in range(room - sum(least)):  # one character at a time to the text column short of the most
            i = max(text, key=lambda k: natural[k] - widths[k])
            if widths[i] >= natural[i]:
                break
            widths[i] += 1
        return list(widths)

    def frame(self) -> int:
        """The table's width beside its cells: padding (none outside the edge columns when
        `pad_edge` is off) and the box's rules between columns and at its edges."""
        t = self.table
        n = len(t.columns)
        _, right, _, left = t.padding
        edge = 0 if t.pad_edge else left + right
        rules = (n - 1 + (2 if t.show_edge else 0)) if t.box is not None else 0
        return (left + right) * n - edge + rules

    def records(self) -> Iterator[RenderableType]:
        from rich.table import Table

        t = self.table
        if t.title:
            yield t.title
        cells = [list(c.cells) for c in t.columns]
        for row in range(t.row_count):
            record = Table.grid(padding=(0, 2))
            record.add_column(style="bold", no_wrap=True)
            record.add_column(overflow="fold")
            for column, values in zip(t.columns, cells, strict=True):
                record.add_row(column.header, values[row])
            yield record
            if row < t.row_count - 1:
                yield ""


def cases_table(cases: Sequence[Mapping[str, Any]], *, digits: int) -> RenderableType:
    from empower_cli.core.money import format_money

    table = list_table()
    add_columns(table, ("id:r", "opened", "customer:w", "agent:w", "type:w", "action:w", "discretion:r", "status"))
    for c in cases:
        status = c["effective_status"]
        table.add_row(str(c["id"]), c["opened_at"][:16].replace("T", " "), safe(c["customer_id"]),
                      safe(c["agent"]), safe(c["case_type"]), safe(c["action"]),
                      format_money(c["discretionary_amount"], digits),
                      f"[{STATUS_STYLE.get(status, '')}]{status}[/]")  # fmt: skip
    return Fitted(table)


def queue_table(items: Sequence[QueueItem], *, agent: str, role: str, digits: int) -> RenderableType:
    """`case queue` for a person: what waits, oldest first, with its rules and time left."""
    from empower_cli.core.money import format_money

    table = list_table(title=f"waiting for {safe(agent)} ({safe(role)})")
    add_columns(table, ("id:r", "needs", "age:r", "customer:w", "agent:w", "action:w", "amount:r", "rules bent:w",
                        "left:r"))  # fmt: skip
    for i in items:
        c = i.case
        needs = "co-sign" if i.waiting_for == "cosign" else "[magenta]supervisor[/]"
        if c["objections"]:
            needs += f" [red]✗{c['objections']}[/]"
        rules = [safe(r) for r in i.rules_bent] + [f"[red]{safe(r)}![/]" for r in i.rules_blocked]
        table.add_row(str(c["id"]), needs, i.age, safe(c["customer_id"]), safe(c["agent"]), safe(c["action"]),
                      format_money(c["amount"], digits), "\n".join(rules) or "[dim]—[/]", i.time_left)  # fmt: skip
    return Fitted(table)


def policy_tables(policy: Policy) -> RenderableType:
    from rich.console import Group
    from rich.table import Table

    m = policy.money

    b = policy.budget
    head = (f"[bold]{safe(policy.name)}[/] version {safe(policy.version)} ({policy.currency}); "
            f"sha256 {policy.sha256[:12]}…\n"
            f"budget {m(b.per_customer)} per customer per {b.window_days} days"
            + "".join(f"; {safe(k)} {m(v)}" for k, v in b.segments.items())
            + (f"; at most {b.max_cases} discretionary cases" if b.max_cases else "")
            + f"\nco-sign above {m(policy.cosign.above)}; holds expire after "
              f"{policy.cosign.hold_hours} h; justification ≥ {policy.min_justification_chars} chars")  # fmt: skip
    roles = Table("role", "max discretion", "can approve", "logins", title="Roles", header_style="bold")
    for r in policy.roles.values():
        logins = [safe(k) for k, v in policy.agents.items() if v == r.name]
        if policy.default_role == r.name:
            logins.append("[dim](default)[/]")
        roles.add_row(safe(r.name), m(r.max_discretion), "yes" if r.can_approve else "", ", ".join(logins))
    actions = Table("action", "title", "discretionary", "frontline", title="Actions", header_style="bold")
    for a in policy.actions.values():
        actions.add_row(safe(a.id), safe(a.title), "always" if a.always_discretionary else "",
                        "" if a.frontline else "supervisor only")  # fmt: skip
    types = Table("case type", "risk", "facts", "rules", "actions", title="Case types",
                  header_style="bold")  # fmt: skip
    for t in policy.case_types.values():
        facts = ", ".join(f"{safe(f.name)}:{f.type}" for f in t.facts)
        rules = "\n".join(f"{safe(r.id)}: {safe(r.text)}" + (" [red](hard)[/]" if not r.bendable else "")
                          for r in t.rules) or "[dim]none[/]"  # fmt: skip
        types.add_row(f"{safe(t.id)}\n[dim]{safe(t.title)}[/]", t.risk, facts, rules, ", ".join(t.actions))
    return Group(head, roles, actions, types)
