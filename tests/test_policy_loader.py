"""SPEC §3: the policy file loads, and every rejection names file:line:column and the problem.

Several problems are reported at once; `empower policy check` exits 3 listing them, and
every command refuses a missing, unsafe (group/world-writable) or oversized policy file.
"""

from __future__ import annotations

import os
import re
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from empower_cli.cli.app import app
from empower_cli.core.errors import PolicyError
from empower_cli.policy.load import load_policy, parse_policy
from tests.conftest import ROOT, training_policy_text, write_policy

SHIPPED = (ROOT / "policies.toml").read_text(encoding="utf-8")


def edited(*pairs: tuple[str, str], text: str = SHIPPED) -> str:
    """The shipped policy with each `old` replaced by `new` (each `old` must be there)."""
    for old, new in pairs:
        assert old in text, old
        text = text.replace(old, new, 1)
    return text


def problems(text: str) -> list[str]:
    with pytest.raises(PolicyError) as caught:
        parse_policy(text.encode("utf-8"), "p.toml")
    return list(caught.value.problems) or [str(caught.value)]


def line_of(text: str, snippet: str, nth: int = 0) -> int:
    lines = [i + 1 for i, line in enumerate(text.splitlines()) if snippet in line]
    return lines[nth]


def the_problem(text: str, needle: str) -> tuple[int, int, str]:
    """The one reported problem containing `needle`, as (line, column, message)."""
    found = [p for p in problems(text) if needle in p]
    assert len(found) == 1, problems(text)
    m = re.fullmatch(r"p\.toml:(\d+):(\d+): (.*)", found[0])
    assert m, found[0]
    return int(m.group(1)), int(m.group(2)), m.group(3)


# -- the shipped file --------------------------------------------------------------


def test_the_shipped_policy_loads_with_exact_money_and_every_section() -> None:
    policy = load_policy(ROOT / "policies.toml")
    assert policy.version == "2026.11"
    assert policy.currency == "USD"
    assert policy.budget.per_customer == 200000
    assert policy.budget.window_days == 365
    assert policy.budget.max_cases == 6
    assert dict(policy.budget.segments) == {"vip": 500000}
    assert {r.name: r.max_discretion for r in policy.roles.values()} == {
        "agent": 20000, "senior": 50000, "supervisor": 200000,
    }  # fmt: skip
    assert policy.roles["supervisor"].can_approve
    assert not policy.roles["agent"].can_approve
    assert policy.agents == {"carol": "supervisor", "dave": "senior"}
    assert policy.default_role == "agent"
    assert policy.allow_identity_override is False
    assert policy.cosign.above == 10000
    assert policy.cosign.hold_hours == 24
    assert policy.actions["goodwill_credit"].always_discretionary
    assert policy.actions["full_stay_refund"].frontline is False
    assert set(policy.case_types) == {
        "late_return", "expired_warranty", "missed_flight", "hotel_complaint", "financial_advice",
    }  # fmt: skip
    window = policy.case_types["late_return"].rules[0]
    assert (window.id, window.op, window.standard, window.bend) == ("return-window", "max", 15, 30)
    assert window.bendable
    receipt = policy.case_types["late_return"].rules[1]
    assert (receipt.op, receipt.standard, receipt.bendable) == ("equals", True, False)
    assert policy.case_types["financial_advice"].risk == "high"
    assert len(policy.sha256) == 64


def test_the_packaged_example_is_the_shipped_policy() -> None:
    from empower_cli.services.admin import default_policy_text

    assert default_policy_text() == SHIPPED


def test_money_given_as_a_toml_number_is_parsed_exactly() -> None:
    policy = parse_policy(edited(('per_customer = "2000.00"', "per_customer = 1999.99")).encode())
    assert policy.budget.per_customer == 199999


# -- each rejection of SPEC §3, located ---------------------------------------------


def test_bad_toml_is_reported_with_the_line_and_column_from_tomllib() -> None:
    text = edited(('window_days = 365', 'window_days = = 365'))
    [message] = problems(text)
    assert message.startswith(f"p.toml:{line_of(text, 'window_days')}:15: invalid TOML: Invalid value")


def test_bad_toml_at_the_end_of_the_file_points_at_the_last_line() -> None:
    text = SHIPPED + "\nextra = [1,\n"
    [message] = problems(text)
    assert message.startswith(f"p.toml:{len(text.split(chr(10)))}:1: invalid TOML")


def test_a_file_that_is_not_utf8_is_refused_with_its_line() -> None:
    data = SHIPPED.encode() + b"\nname = \"\xff\"\n"
    with pytest.raises(PolicyError, match=r"p\.toml:\d+:1: the file is not valid UTF-8"):
        parse_policy(data, "p.toml")


def test_an_unknown_key_is_named_with_the_nearest_valid_one() -> None:
    text = edited(("window_days = 365", "windows_days = 365"))
    line, col, message = the_problem(text, "windows_days")
    assert (line, col) == (line_of(text, "windows_days"), 1)
    assert message == "budget.windows_days: unknown key 'windows_days'; did you mean 'window_days'?"


def test_an_unknown_key_inside_an_inline_rule_points_at_that_rule() -> None:
    text = edited(("fact = \"has_receipt\", equals = true", "fact = \"has_receipt\", equal = true, equals = true"))
    line, col, message = the_problem(text, "unknown key")
    assert line == line_of(text, 'id = "receipt"')
    assert col == text.splitlines()[line - 1].index("equal =") + 1
    assert "rules[1].equal: unknown key 'equal'; did you mean 'equals'?" in message


def test_an_unknown_key_with_no_close_match_lists_the_valid_keys() -> None:
    _, _, message = the_problem(edited(("can_approve = true", "can_approve = true\ncolour = 1")), "colour")
    valid = "max_discretion, can_approve, can_import"
    assert message == f"roles.supervisor.colour: unknown key 'colour'; valid keys: {valid}"


def test_a_rule_on_an_undeclared_fact_is_refused_at_its_fact_key() -> None:
    text = edited(('fact = "has_receipt"', 'fact = "has_recipt"'))
    line, col, message = the_problem(text, "has_recipt")
    assert line == line_of(text, "has_recipt")
    assert col == text.splitlines()[line - 1].index('fact = "has_recipt"') + 1
    assert message == (
        "case_types.late_return.rules[1].fact: fact 'has_recipt' is not declared in this "
        "case type's facts; did you mean 'has_receipt'?"
    )


def test_an_undeclared_action_in_a_case_type_is_refused() -> None:
    text = edited(('actions = ["rebook", "fee_waiver"', 'actions = ["rebook", "fee_wavier"'))
    line, _, message = the_problem(text, "fee_wavier")
    assert line == line_of(text, "fee_wavier")
    assert "action 'fee_wavier' is not declared in [actions]; did you mean 'fee_waiver'?" in message


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ('"2000.001"', "at most 2 decimals"),
        ("2000.001", "at most 2 decimals"),
        ('"2,000.00"', "at most 2 decimals"),
        ('"2e3"', "at most 2 decimals"),
        ("2e3", "no exponent"),
        ("0x7D0", "no exponent, sign, separator or hex"),
        ("+2000", "no exponent, sign, separator or hex"),
        ("2_000", "no exponent, sign, separator or hex"),
        ('"twenty"', "at most 2 decimals"),
        ("nan", "plain decimal text"),
        ("inf", "plain decimal text"),
        ("true", "expected an amount"),
    ],
)
def test_money_that_is_not_exact_plain_decimal_text_is_refused(written: str, expected: str) -> None:
    text = edited(('per_customer = "2000.00"', f"per_customer = {written}"))
    line, col, message = the_problem(text, "per_customer")
    assert (line, col) == (line_of(text, "per_customer"), 1)
    assert expected in message


def test_money_with_the_currencys_minor_digits_follows_the_currency() -> None:
    yen = edited(('currency = "USD"', 'currency = "JPY"'), ('"2000.00"', '"2000"'), ('"5000.00"', '"5000"'),
                 ('"200.00"', '"200"'), ('"500.00"', '"500"'), ('"2000.00"', '"2000"'),
                 ('"100.00"', '"100"'))  # fmt: skip
    assert parse_policy(yen.encode()).budget.per_customer == 2000
    _, _, message = the_problem(yen.replace('above = "100"', 'above = "100.5"'), "above")
    assert "a whole amount with no decimals" in message


@pytest.mark.parametrize(
    ("old", "new", "needle"),
    [
        ('max_discretion = "200.00"', 'max_discretion = "-200.00"', "roles.agent.max_discretion"),
        ('max_discretion = "200.00"', "max_discretion = -200", "roles.agent.max_discretion"),
        ('vip = "5000.00"', "vip = -1.5", "budget.segments.vip"),
        ('above = "100.00"', 'above = "-1"', "cosign.above"),
        ("max = 15, bend_max = 30", "max = -15, bend_max = 30", "rules[0].max"),
    ],
)
def test_negative_limits_are_refused(old: str, new: str, needle: str) -> None:
    text = edited((old, new))
    line, _, message = the_problem(text, needle)
    assert line == line_of(text, new)
    assert "limits cannot be negative" in message


def test_a_bend_limit_below_the_standard_limit_is_refused_at_the_bend_key() -> None:
    text = edited(("max = 120, bend_max = 720", "max = 120, bend_max = 100"))
    line, col, message = the_problem(text, "bend_max")
    assert line == line_of(text, "bend_max = 100")
    assert col == text.splitlines()[line - 1].index("bend_max = 100") + 1
    assert message == "case_types.missed_flight.rules[0].bend_max: bend_max (100) is below max (120)"


def test_a_bend_min_above_the_min_is_refused() -> None:
    text = edited(("max = 0, bend_max = 90", "min = 0, bend_min = 5"))
    _, _, message = the_problem(text, "bend_min")
    assert "bend_min (5) is above min (0)" in message


def test_an_unknown_role_in_agents_is_refused_with_a_suggestion() -> None:
    text = edited(('dave = "senior"', 'dave = "senoir"'))
    line, col, message = the_problem(text, "agents.dave")
    assert (line, col) == (line_of(text, "dave ="), 1)
    assert message == "agents.dave: unknown role 'senoir'; did you mean 'senior'?"


def test_an_unknown_default_role_is_refused() -> None:
    _, _, message = the_problem(edited(('default_role = "agent"', 'default_role = "agnet"')), "default_role")
    assert "unknown role 'agnet'" in message


def test_duplicate_rule_ids_are_refused_at_the_second_one() -> None:
    text = edited(('{ id = "warranty"', '{ id = "return-window"'))
    line, _, message = the_problem(text, "duplicate")
    assert line == line_of(text, 'id = "return-window"', nth=1)
    assert "duplicate rule id 'return-window' (also in case type 'late_return')" in message


def test_duplicate_rule_ids_in_arrays_of_tables_point_at_the_second_table() -> None:
    text = edited(
        ('rules = [{ id = "warranty", text = "Free repair only under warranty.", fact = "days_past_warranty", '
         'max = 0, bend_max = 90 }]', ""),
    ) + (
        '\n[[case_types.expired_warranty.rules]]\nid = "w"\nfact = "days_past_warranty"\nmax = 0\n'
        '\n[[case_types.expired_warranty.rules]]\nid = "w"\nfact = "days_past_warranty"\nmax = 0\n'
    )  # fmt: skip
    line, col, _ = the_problem(text, "duplicate")
    assert (line, col) == (len(text.splitlines()) - 2, 1)


def test_every_problem_is_reported_at_once_in_file_order() -> None:
    text = edited(
        ('per_customer = "2000.00"', 'per_customer = "2000.001"'),
        ("window_days = 365", "windows_days = 365"),
        ('dave = "senior"', 'dave = "boss"'),
        ("max = 15, bend_max = 30", "max = 15, bend_max = 10"),
        ('fact = "has_receipt"', 'fact = "receipt"'),
        ('"refund", "exchange"', '"refund", "swap"'),
    )
    found = problems(text)
    assert len(found) == 6, found
    lines = [int(p.split(":")[1]) for p in found]
    assert lines == sorted(lines)
    assert all(re.match(r"p\.toml:\d+:\d+: \S", p) for p in found)


def test_a_rule_that_names_no_operator_or_two_is_refused() -> None:
    _, _, message = the_problem(edited(("equals = true, hard = true", "hard = true")), "rules[1]")
    assert "exactly one of max, min, equals, one_of, max_age_days (found none)" in message


def test_a_rule_operator_that_does_not_fit_the_fact_type_is_refused() -> None:
    _, _, message = the_problem(edited(("equals = true, hard = true", "max = 3")), "rules[1].max")
    assert "'max' applies to int and money facts, not bool" in message


def test_missing_tables_are_reported() -> None:
    found = problems('[policy]\nversion = "1"\n')
    assert any("missing the [budget] table" in p for p in found)
    assert any("missing the [roles] table" in p for p in found)
    assert any("missing the [case_types] table" in p for p in found)


@pytest.mark.parametrize(
    "garbage",
    ["", "[policy]\nversion = 1", "budget = 3", "[case_types]\nx = 1", "[case_types.x]\nrules = 'no'",
     "[[case_types.x.facts]]\nname = 1", "roles = [1, 2]", "[agents]\nbob = 7"],
)  # fmt: skip
def test_nonsense_of_the_right_syntax_is_a_policy_error_never_a_crash(garbage: str) -> None:
    assert problems(garbage)


# -- through the CLI ---------------------------------------------------------------


def run(*args: str, cwd: Path | None = None) -> tuple[int, str, str]:
    env = {"EMPOWER_POLICY": None, "EMPOWER_DB": None, "EMPOWER_AGENT": "alice"}
    old = Path.cwd()
    if cwd is not None:
        os.chdir(cwd)
    try:
        r = CliRunner().invoke(app, list(args), env=env)
    finally:
        os.chdir(old)
    return r.exit_code, r.stdout, r.stderr


def test_policy_check_exits_0_on_the_shipped_policy() -> None:
    code, out, err = run("policy", "check", str(ROOT / "policies.toml"))
    assert code == 0, err
    assert "ok" in out


def test_policy_check_exits_3_listing_every_problem(tmp_path: Path) -> None:
    text = edited(("window_days = 365", "windows_days = 365"), ('dave = "senior"', 'dave = "boss"'))
    path = write_policy(tmp_path, text)
    code, out, err = run("policy", "check", str(path))
    assert code == 3, out + err
    assert "2 problems" in err
    assert f"{path}:{line_of(text, 'windows_days')}:1: budget.windows_days: unknown key" in err
    assert f"{path}:{line_of(text, 'dave =')}:1: agents.dave: unknown role 'boss'" in err
    assert "Traceback" not in out + err


def test_policy_check_json_lists_the_problems(tmp_path: Path) -> None:
    import json

    path = write_policy(tmp_path, edited(("window_days = 365", "windows_days = 365")))
    code, out, _ = run("--json", "policy", "check", str(path))
    assert code == 3
    report = json.loads(out)
    assert report["ok"] is False
    assert len(report["problems"]) == 1


def test_a_missing_policy_exits_3(tmp_path: Path) -> None:
    code, _, err = run("case", "list", cwd=tmp_path)
    assert code == 3, err
    assert "no policies.toml" in err
    code, _, err = run("--policy", str(tmp_path / "nope.toml"), "case", "list")
    assert code == 3, err
    assert "policy file not found" in err


def _installed(path: tuple[str, ...]) -> bool:
    import typer.main

    command = typer.main.get_command(app)
    for name in path:
        commands = getattr(command, "commands", {})
        if name not in commands:
            return False
        command = commands[name]
    return True


EVERY_COMMAND = [
    ("case", "new", "--customer", "C-1", "--type", "hotel_complaint", "--fact", "nights=2",
     "--action", "goodwill_credit", "--amount", "10", "--justification", "A fair goodwill gesture here"),
    ("case", "show", "1"), ("case", "list"), ("case", "queue"), ("case", "cosign", "1"),
    ("case", "object", "1", "--reason", "too generous"), ("case", "approve", "1", "--note", "fine"),
    ("case", "deny", "1", "--note", "no"), ("case", "outcome", "1", "--reaction", "satisfied", "--retained"),
    ("customer", "show", "C-1"), ("policy", "check"), ("policy", "show"),
    ("audit", "summary"), ("audit", "head"), ("audit", "verify"),
]  # fmt: skip


@pytest.mark.parametrize("mode", [0o664, 0o646, 0o666])
@pytest.mark.parametrize("args", EVERY_COMMAND, ids=lambda a: " ".join(a[:2]))
def test_a_group_or_world_writable_policy_is_refused_by_every_command(
    tmp_path: Path, args: tuple[str, ...], mode: int
) -> None:
    assert _installed(args[:2]), f"empower {' '.join(args[:2])} is not a command"
    path = write_policy(tmp_path, training_policy_text())
    os.chmod(path, mode)
    code, out, err = run("--policy", str(path), "--db", str(tmp_path / "e.db"), *args)
    assert code == 3, out + err
    assert "group- or world-writable" in err
    assert err.count("\n") == 1
    assert not (tmp_path / "e.db").exists()


@pytest.mark.parametrize("args", EVERY_COMMAND, ids=lambda a: " ".join(a[:2]))
def test_a_policy_larger_than_1_mib_is_refused_by_every_command(tmp_path: Path, args: tuple[str, ...]) -> None:
    assert _installed(args[:2]), f"empower {' '.join(args[:2])} is not a command"
    path = write_policy(tmp_path, training_policy_text() + "\n" + "#" * (1024 * 1024) + "\n")
    code, out, err = run("--policy", str(path), "--db", str(tmp_path / "e.db"), *args)
    assert code == 3, out + err
    assert "larger than 1 MiB" in err
    assert not (tmp_path / "e.db").exists()


def test_an_unsafe_policy_records_nothing_in_an_existing_database(tmp_path: Path) -> None:
    path = write_policy(tmp_path)
    db = tmp_path / "e.db"
    code, _, err = run("--policy", str(path), "--db", str(db), *EVERY_COMMAND[0])
    assert code == 0, err
    os.chmod(path, 0o666)
    code, _, err = run("--policy", str(path), "--db", str(db), *EVERY_COMMAND[0])
    assert code == 3, err
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM events WHERE case_id IS NOT NULL").fetchone() == (1,)
        assert conn.execute("SELECT COUNT(*) FROM cases").fetchone() == (1,)


@pytest.mark.parametrize(
    ("old", "new", "needle", "problem"),
    [
        ("window_days = 365", "window_days = 999999999", "budget.window_days", "must be at most 36500"),
        ("window_days = 365", "window_days = 0", "budget.window_days", "must be at least 1"),
        ("hold_hours = 24", "hold_hours = 99999999", "cosign.hold_hours", "must be at most 876000"),
        ("min_justification_chars = 20", "min_justification_chars = 20000", "min_justification_chars",
         "must be at most 10000"),
        ("min_justification_chars = 20", "min_justification_chars = -1", "min_justification_chars",
         "must be at least 0"),
        ("max_cases = 6", "max_cases = 0", "budget.max_cases", "must be at least 1"),
        ("max_cases = 6", 'max_cases = "6"', "budget.max_cases", "expected a whole number"),
    ],
)  # fmt: skip
def test_durations_and_counts_out_of_range_are_refused(old: str, new: str, needle: str, problem: str) -> None:
    text = edited((old, new))
    line, _, message = the_problem(text, needle)
    assert line == line_of(text, new)
    assert problem in message


def test_a_century_long_window_still_works_end_to_end(tmp_path: Path) -> None:
    path = write_policy(tmp_path, training_policy_text().replace("window_days = 365", "window_days = 36500"))
    code, _, err = run("--policy", str(path), "--db", str(tmp_path / "e.db"), "customer", "show", "C-1")
    assert code == 0, err


def test_problems_are_located_in_dotted_keys_inline_tables_and_arrays_of_tables() -> None:
    text = "\n".join([
        'policy.version = "1"',
        'policy.name = "x"  # [not a header]',
        'budget = { per_customer = "1.001", window_days = 30 }',
        'roles.agent.max_discretion = "5"',
        "roles.agent.colour = 1",
        "roles.boss.max_discretion = 1e3",
        'agents = { "jean.dupont" = "agnet", default_role = "agent" }',
        "[actions.refund]",
        'title = "R"',
        "[[case_types.t.facts]]",
        'name = "n"',
        'type = "int"',
        "[[case_types.t.facts]]",
        'name = "m"',
        'type = "intt"',
        "[case_types.t]",
        'actions = ["refund"]',
        "rules = [",
        '  { id = "a", fact = "n", max = 5, bend_max = 1 },',
        '  { id = "b", fact = "zz", max = 1 },',
        "]",
    ])  # fmt: skip
    where = [p.split(": ")[0] + ": " + p.split(": ")[1] for p in problems(text)]
    assert where == [
        "p.toml:3:12: budget.per_customer",
        "p.toml:5:13: roles.agent.colour",
        "p.toml:6:12: roles.boss.max_discretion",
        'p.toml:7:12: agents."jean.dupont"',
        "p.toml:15:1: case_types.t.facts[1].type",
        "p.toml:19:36: case_types.t.rules[0].bend_max",
        "p.toml:20:15: case_types.t.rules[1].fact",
    ]


def test_a_fact_whose_max_is_below_its_min_is_refused() -> None:
    text = edited(('{ name = "nights", type = "int", ask = "Nights in the stay", min = 1 }',
                   '{ name = "nights", type = "int", ask = "Nights in the stay", min = 5, max = 2 }'))  # fmt: skip
    line, _, message = the_problem(text, "max is below min")
    assert line == line_of(text, "max = 2")
    assert message == "case_types.hotel_complaint.facts[0].max: max is below min: no answer could be valid"
