"""One JSON vocabulary (issue 14): every key any `--json` output prints is listed, with its
meaning, in the README's "JSON vocabulary" table, so a script reads one table to know them
all; durations come as numbers beside their text; paths are absolute; errors are JSON too."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.conftest import JUSTIFICATION, ROOT, CliFn, as_json, write_policy

# Objects whose keys are data (names from the policy, logins, fact names, kinds of change),
# not vocabulary: only their values are walked. An event's `payload` is described with the
# events in docs/schema.md.
DATA_MAPS = {"roles", "actions", "case_types", "agents", "segments", "facts", "not_replayable_reasons", "examples",
             "rows"}  # `rows` of `db copy` (table -> count); a list's `rows` are objects again  # fmt: skip
OPAQUE = {"payload"}


def keys_of(value: Any, parent: str = "") -> Iterator[str]:
    """The vocabulary keys of VALUE, the value of key PARENT (a list's items are objects again)."""
    if isinstance(value, dict):
        data = parent in DATA_MAPS
        for key, inner in value.items():
            if not data:
                yield key
            if (key if not data else "") not in OPAQUE:
                yield from keys_of(inner, "" if data else key)
    elif isinstance(value, list):
        for item in value:
            yield from keys_of(item)


def documented() -> set[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## JSON vocabulary", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"`([a-z_0-9]+)`", section))


def every_json_output(cli: CliFn, folder: Path, db: Path) -> Iterator[Any]:
    """The JSON of every command, on a database where each has something to say."""
    new = ("case", "new", "--justification", JUSTIFICATION, "--json")
    late = ("--type", "late_return", "--fact", "days_since_purchase=20", "--fact", "has_receipt=yes",
            "--action", "refund")  # fmt: skip
    for customer, amount, extra in (("C-1", "50.00", ()), ("C-2", "150.00", ()), ("C-3", "150.00", ()),
                                    ("C-4", "20.00", ("--escalate",)), ("C-5", "150.00", ())):  # fmt: skip
        r = cli(*new, "--customer", customer, *late, "--amount", amount, *extra)
        assert r.exit_code == 0, r.output
        yield as_json(r)
    steps = [(("case", "cosign", "2"), "dave"), (("case", "object", "3", "--reason", "Too generous"), "dave"),
             (("case", "approve", "3", "--note", "Fair"), "carol"), (("case", "deny", "4", "--note", "No"), "carol"),
             (("case", "outcome", "1", "--reaction", "satisfied", "--retained"), "bob"),
             (("customer", "segment", "C-1", "vip", "--note", "Gold card"), "carol"),
             (("policy", "apply", "--note", "the same file"), "carol")]  # fmt: skip
    for args, agent in steps:
        r = cli(*args, "--json", agent=agent)
        assert r.exit_code == 0, r.output
        yield as_json(r)
    history = folder / "history.csv"
    history.write_text("external_id,customer_id,agent,opened_at,case_type,action,amount,fact.days_since_purchase,"
                       "fact.has_receipt\nH-1,C-9,bob,2026-01-05,late_return,refund,10.00,20,yes\n",
                       encoding="utf-8")  # fmt: skip
    write_policy(folder, name="new.toml")
    for args, agent in [(("case", "show", "2"), "alice"), (("case", "list"), "alice"), (("case", "queue"), "carol"),
                        (("customer", "show", "C-1"), "alice"), (("policy", "show"), "alice"),
                        (("policy", "log"), "alice"), (("policy", "simulate", str(folder / "new.toml")), "alice"),
                        (("import", "cases", str(history)), "carol"), (("audit", "head"), "alice"),
                        (("audit", "verify"), "alice"),
                        *((("audit", report), "alice") for report in
                          ("summary", "agents", "rules", "customers", "pairs", "outcomes"))]:  # fmt: skip
        r = cli(*args, "--json", agent=agent)
        assert r.exit_code == 0, r.output
        yield as_json(r)
    r = cli("case", "show", "99", "--json")
    assert r.exit_code == 5, r.output
    yield json.loads(r.stderr)
    r = cli("init", str(folder / "shop"), "--json")
    assert r.exit_code == 0, r.output
    yield as_json(r)
    r = cli("db", "copy", str(db), str(folder / "copy.db"), "--json")
    assert r.exit_code == 0, r.output
    yield as_json(r)


def test_every_key_of_every_json_output_is_in_the_readme_vocabulary(cli: CliFn, tmp_path: Path,
                                                                       db_path: Path) -> None:  # fmt: skip
    seen = {key for output in every_json_output(cli, tmp_path, db_path) for key in keys_of(output)}
    missing = sorted(seen - documented())
    assert missing == [], f"add these keys to the README's JSON vocabulary: {missing}"


# One concept, one key (issue 14): the names these concepts had before, which no output may
# print any more (README "JSON vocabulary", "Renamed keys").
RETIRED = {"rule_id": "id (of a rule)", "customer_budget": "budget", "actor": "by", "applied_by": "by",
           "flag": "flags ([{code, text}])"}  # fmt: skip


def values_of(value: Any, key: str) -> Iterator[Any]:
    """Every value of KEY anywhere in VALUE."""
    if isinstance(value, dict):
        for k, inner in value.items():
            if k == key:
                yield inner
            if k not in OPAQUE:
                yield from values_of(inner, key)
    elif isinstance(value, list):
        for item in value:
            yield from values_of(item, key)


def test_one_concept_has_one_key_and_one_type(cli: CliFn, tmp_path: Path, db_path: Path) -> None:
    outputs = list(every_json_output(cli, tmp_path, db_path))
    seen = {key for output in outputs for key in keys_of(output)}
    assert sorted(seen & set(RETIRED)) == [], {k: RETIRED[k] for k in seen & set(RETIRED)}
    in_policy = [v for output in outputs for v in values_of(output, "in_policy")]
    assert in_policy, "no output printed in_policy"
    assert all(isinstance(v, bool) for v in in_policy), in_policy  # a count is in_policy_cases
    by = [v for output in outputs for v in values_of(output, "by")]
    assert {"dave", "carol"} <= set(by), by  # who acted, in the steps, the history and the policy log


def test_case_show_types_facts_as_the_policy_does(cli: CliFn) -> None:
    """`--fact days_since_purchase=20` is an int fact: 20, not "20"; a bool fact is true or
    false; a choice stays its text; the rule's value is typed the same way."""
    for args in (("--type", "late_return", "--fact", "days_since_purchase=20", "--fact", "has_receipt=Yes",
                  "--action", "refund", "--amount", "50.00"),
                 ("--type", "missed_flight", "--fact", "minutes_late=45", "--fact", "cause=Medical",
                  "--action", "rebook", "--amount", "40.00")):  # fmt: skip
        r = cli("case", "new", "--customer", "C-1", *args, "--justification", JUSTIFICATION, "--json")
        assert r.exit_code == 0, r.output
    late, flight = (as_json(cli("case", "show", str(n), "--json")) for n in (1, 2))
    assert late["facts"] == {"days_since_purchase": 20, "has_receipt": True}
    assert flight["facts"] == {"minutes_late": 45, "cause": "medical"}
    made = as_json(cli("case", "new", "--customer", "C-2", "--type", "late_return", "--fact",
                       "days_since_purchase=3", "--fact", "has_receipt=no", "--action", "refund", "--amount",
                       "5.00", "--justification", JUSTIFICATION, "--json"))  # fmt: skip
    assert {r["value"] for r in made["rules"] if r["fact"] == "days_since_purchase"} == {3}
    assert as_json(cli("case", "show", str(made["case_id"]), "--json"))["facts"]["has_receipt"] is False


def test_case_show_types_facts_by_the_policy_that_decided_the_case(cli: CliFn, tmp_path: Path) -> None:
    """A case decided while `nights` was an int fact keeps its number after a new policy makes
    the fact text: the facts are read with the policy that decided the case."""
    r = cli("case", "new", "--customer", "C-1", "--type", "hotel_complaint", "--fact", "nights=3",
            "--action", "free_night", "--amount", "40.00", "--justification", JUSTIFICATION, "--json")  # fmt: skip
    assert r.exit_code == 0, r.output
    policy = tmp_path / "policies.toml"
    text = policy.read_text(encoding="utf-8")
    changed = text.replace('{ name = "nights", type = "int", ask = "Nights in the stay", min = 1 }',
                           '{ name = "nights", type = "text", ask = "Nights in the stay" }')
    assert changed != text
    policy.write_text(changed.replace('version = "', 'version = "9-', 1), encoding="utf-8")
    assert cli("policy", "apply", "--note", "nights as text", agent="carol").exit_code == 0
    assert as_json(cli("case", "show", "1", "--json"))["facts"] == {"nights": 3}


def test_the_queue_gives_durations_as_seconds_beside_their_text(cli: CliFn) -> None:
    r = cli("case", "new", "--customer", "C-1", "--type", "late_return", "--fact", "days_since_purchase=20",
            "--fact", "has_receipt=yes", "--action", "refund", "--amount", "150.00", "--justification",
            JUSTIFICATION, "--json")  # fmt: skip
    assert r.exit_code == 0, r.output
    [item] = as_json(cli("case", "queue", "--json", agent="bob"))
    assert item["time_left"] == "23h"
    assert 23 * 3600 < item["time_left_seconds"] <= 24 * 3600
    assert 0 <= item["age_seconds"] < 600


def test_case_show_names_the_budget_as_every_other_command_does(cli: CliFn) -> None:
    r = cli("case", "new", "--customer", "C-1", "--type", "late_return", "--fact", "days_since_purchase=20",
            "--fact", "has_receipt=yes", "--action", "refund", "--amount", "50.00", "--justification",
            JUSTIFICATION, "--json")  # fmt: skip
    assert r.exit_code == 0, r.output
    shown = as_json(cli("case", "show", "1", "--json"))
    assert shown["budget"] == {"limit": "2000.00", "spent": "50.00", "held": "0.00", "remaining": "1950.00"}
    assert "customer_budget" not in shown  # its older name, retired: one key per concept


def test_init_gives_absolute_paths(cli: CliFn, tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.chdir(tmp_path)
    r = cli("init", "shop", "--json")
    assert r.exit_code == 0, r.output
    out = as_json(r)
    assert out["policy"] == str(tmp_path / "shop" / "policies.toml")
    assert Path(out["db"]).is_absolute()


def test_import_gives_absolute_paths(cli: CliFn, tmp_path: Path, monkeypatch: Any) -> None:
    """`import cases history.csv --json` names the file and its rejects report absolutely, so a
    script that changes folder can still open them."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "history.csv").write_text(
        "external_id,customer_id,agent,opened_at,case_type,action,amount,fact.days_since_purchase,fact.has_receipt\n"
        "H-1,C-9,bob,2026-01-05,late_return,refund,10.00,20,yes\nH-2,C-9,bob,2026-01-05,late_return,bogus,1.00,1,yes\n",
        encoding="utf-8")  # fmt: skip
    out = as_json(cli("import", "cases", "history.csv", "--json", agent="carol"))
    assert (out["imported"], out["rejected"]) == (1, 1)
    assert out["file"] == str(tmp_path / "history.csv")
    assert out["rejects_file"] is not None
    assert Path(out["rejects_file"]).is_absolute()
    assert Path(out["rejects_file"]).exists()
