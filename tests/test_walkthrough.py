"""The interactive walk-through of `empower case new`, driven in a real pseudo-terminal."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pexpect
import pytest

from tests.conftest import JUSTIFICATION, write_policy

TIMEOUT = 10  # shared, slow machines

BENT_RETURN = [
    ("Customer id:", "C-1"),
    ("Case type (number or id):", "1"),
    ("Days since purchase", "20"),
    ("receipt?", "yes"),
    ("Action (number or id):", "refund"),
]


@pytest.fixture
def term(tmp_path: Path) -> Iterator[Terminal]:
    terminal = Terminal(tmp_path)
    yield terminal
    if terminal.child.isalive():  # a failed test must not leave its walk-through running
        terminal.child.close(force=True)


class Terminal:
    """`empower case new` on a pseudo-terminal, against a tmp policy and database."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.db = folder / "data" / "empower.db"
        env = {k: v for k, v in os.environ.items() if not k.startswith("EMPOWER_")}
        env.update(EMPOWER_POLICY=str(write_policy(folder)), EMPOWER_DB=str(self.db),
                   EMPOWER_AGENT="alice", NO_COLOR="1", TERM="dumb", COLUMNS="200")  # fmt: skip
        self.env = env
        self.child = pexpect.spawn(sys.executable, ["-m", "empower_cli", "case", "new"], env=env,
                                   cwd=str(folder), encoding="utf-8", timeout=TIMEOUT)  # fmt: skip

    def meanwhile(self, agent: str, *args: str) -> Any:
        """`empower ARGS --json` as another agent, in its own process, on the same database."""
        done = subprocess.run([sys.executable, "-m", "empower_cli", *args, "--json"],
                              env={**self.env, "EMPOWER_AGENT": agent}, cwd=str(self.folder),
                              capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    def answer(self, script: Sequence[tuple[str, str]]) -> None:
        """For each (prompt, reply): wait for the prompt text, then type the reply."""
        for prompt, reply in script:
            self.child.expect_exact(prompt)
            self.child.sendline(reply)

    def see(self, text: str) -> None:
        self.child.expect_exact(text)

    def finish(self) -> tuple[int, str]:
        """Wait for the end; the exit code and everything shown since the last match."""
        self.child.expect(pexpect.EOF)
        rest = self.child.before or ""
        # Wait for the process itself: EOF comes when it closes the terminal, and close()
        # alone sends SIGHUP and SIGINT to a process still finishing after 0.1 s (closing
        # the database, whose last connection checkpoints the WAL, can take longer).
        self.child.wait()
        self.child.close()
        assert self.child.exitstatus is not None, f"killed by signal {self.child.signalstatus}"
        return self.child.exitstatus, rest

    def cases(self) -> list[dict[str, Any]]:
        if not self.db.exists():
            return []
        with sqlite3.connect(self.db) as conn:
            conn.row_factory = sqlite3.Row
            return [dict(r) for r in conn.execute("SELECT * FROM cases ORDER BY id")]


def test_a_bent_return_is_walked_through_and_recorded_as_approved(term: Terminal) -> None:
    term.answer([("Customer id:", "C-1")])
    term.see("limit 2000.00 · spent 0.00 · held 0.00 · remaining 2000.00 USD")
    term.answer([*BENT_RETURN[1:], ("Amount in USD", "89.90")])
    term.see("return-window  bent")
    term.see("verdict: approved")
    term.answer([
        ("Justification (at least 20 characters):", JUSTIFICATION),
        ("Customer's reaction", "1"),
        ("Record this case? (y/n)", "y"),
    ])  # fmt: skip
    term.see("recorded case 1: approved")
    code, rest = term.finish()
    assert code == 0, rest
    [case] = term.cases()
    assert (case["status"], case["amount"], case["discretionary_amount"]) == ("approved", 8990, 8990)
    assert (case["customer_id"], case["agent"], case["reaction"]) == ("C-1", "alice", "satisfied")
    assert case["justification"] == JUSTIFICATION


def test_bad_answers_are_re_asked_with_a_one_line_error(term: Terminal) -> None:
    term.answer([("Customer id:", "")])
    term.see("error: customer: is required")
    term.answer([("Customer id:", "[red]R-1")])
    term.see("budget of [red]R-1:")  # markup in user text is shown literally
    term.answer([("Case type (number or id):", "9")])
    term.see("error: type: expected a number from 1 to 5")
    term.answer([("Case type (number or id):", "late_return"), ("Days since purchase", "abc")])
    term.see("error: fact days_since_purchase: expected a whole number")
    term.answer([("Days since purchase", "-3")])
    term.see("must be at least 0")
    term.answer([("Days since purchase", "20"), ("receipt?", "maybe")])
    term.see("error: fact has_receipt: expected yes or no")
    term.answer([("receipt?", "y"), ("Action (number or id):", "0")])
    term.see("error: action: expected a number from 1 to 3")
    term.answer([("Action (number or id):", "2"), ("Amount in USD", "1e3")])
    term.see("error: amount: expected an exact amount")
    term.answer([("Amount in USD", "12.345")])
    term.see("error: amount:")
    term.answer([("Amount in USD", "40"), ("Justification (at least 20 characters):", "too short")])
    term.see("error: justification: needs at least 20 characters (got 9)")
    term.answer([
        ("Justification (at least 20 characters):", JUSTIFICATION),
        ("Customer's reaction", "grumpy"),
    ])  # fmt: skip
    term.see("error: reaction: expected")
    term.answer([("Customer's reaction", ""), ("Record this case? (y/n)", "perhaps")])
    term.see("error: answer: expected y or n")
    term.answer([("Record this case? (y/n)", "yes")])
    code, rest = term.finish()
    assert code == 0, rest
    [case] = term.cases()
    assert (case["customer_id"], case["action"], case["amount"]) == ("[red]R-1", "exchange", 4000)
    assert case["reaction"] is None


def test_ctrl_c_mid_way_records_nothing_and_exits_130(term: Terminal) -> None:
    term.answer(BENT_RETURN[:2])
    term.see("Days since purchase")
    term.child.sendcontrol("c")
    term.see("cancelled: nothing was recorded")
    code, rest = term.finish()
    assert code == 130, rest
    assert term.cases() == []


def test_ctrl_c_at_the_confirmation_records_nothing(term: Terminal) -> None:
    term.answer([*BENT_RETURN, ("Amount in USD", "50"), ("Justification", JUSTIFICATION),
                 ("Customer's reaction", "")])  # fmt: skip
    term.see("Record this case? (y/n)")
    term.child.sendcontrol("c")
    term.see("cancelled: nothing was recorded")
    code, rest = term.finish()
    assert code == 130, rest
    assert term.cases() == []


def test_end_of_input_records_nothing_and_exits_130(term: Terminal) -> None:
    term.answer(BENT_RETURN)
    term.see("Amount in USD")
    term.child.sendeof()
    term.see("cancelled: nothing was recorded")
    code, rest = term.finish()
    assert code == 130, rest
    assert term.cases() == []


def test_a_case_above_the_cosign_threshold_tells_the_agent_to_ask_a_colleague(term: Terminal) -> None:
    term.answer([*BENT_RETURN, ("Amount in USD", "150.00")])
    term.see("verdict: pending_cosign")
    term.see("needs: a justification of at least 20 characters; a colleague's co-sign")
    term.answer([("Justification", JUSTIFICATION), ("Customer's reaction", "neutral"),
                 ("Record this case? (y/n)", "y")])  # fmt: skip
    term.see("recorded case 1: pending_cosign")
    assert "changed" not in (term.child.before or ""), "nothing changed since the preview, so nothing is said"
    term.see("next step: ask a colleague to run: empower case cosign 1")
    code, rest = term.finish()
    assert code == 0, rest
    [case] = term.cases()
    assert (case["status"], case["held_amount"], case["reaction"]) == ("pending_cosign", 15000, "neutral")


def test_a_dissatisfied_customer_is_offered_a_supervisor_and_accepting_escalates(term: Terminal) -> None:
    term.answer([*BENT_RETURN, ("Amount in USD", "60")])
    term.see("verdict: approved")
    term.answer([("Justification", JUSTIFICATION), ("Customer's reaction", "dissatisfied")])
    term.answer([("Send the case to a supervisor? (y/n)", "y")])
    term.see("verdict: pending_supervisor")
    term.see("the agent asked to escalate to a supervisor")
    term.answer([("Record this case? (y/n)", "y")])
    term.see("recorded case 1: pending_supervisor")
    code, rest = term.finish()
    assert code == 0, rest
    [case] = term.cases()
    assert (case["status"], case["escalated"], case["reaction"]) == ("pending_supervisor", 1, "dissatisfied")
    assert case["held_amount"] == 6000


def test_an_in_policy_case_asks_no_justification_and_declining_records_nothing(term: Terminal) -> None:
    term.answer([("Customer id:", "C-1"), ("Case type (number or id):", "1"), ("Days since purchase", "10"),
                 ("receipt?", "yes"), ("Action (number or id):", "1"), ("Amount in USD", "20")])  # fmt: skip
    term.see("verdict: approved")
    term.see("needs: nothing more")
    index = term.child.expect_exact(["Justification", "Customer's reaction"])
    assert index == 1, "an in-policy case needs no justification"
    term.child.sendline("satisfied")
    term.answer([("Record this case? (y/n)", "n")])
    term.see("not recorded: nothing was saved")
    code, rest = term.finish()
    assert code == 0, rest
    assert term.cases() == []


def spend_meanwhile(term: Terminal, amount: str) -> int:
    """Bob grants C-1 a goodwill credit beyond his role's limit and Carol, a supervisor, approves it."""
    opened = term.meanwhile("bob", "case", "new", "--customer", "C-1", "--type", "hotel_complaint",
                            "--fact", "nights=3", "--action", "goodwill_credit", "--amount", amount,
                            "--justification", "Flooded room, the whole stay was ruined")  # fmt: skip
    assert opened["status"] == "pending_supervisor", opened
    approved = term.meanwhile("carol", "case", "approve", str(opened["case_id"]), "--note", "Fair, the room flooded")
    assert approved["status"] == "approved", approved
    return int(opened["case_id"])


def confirm_a_150_refund_after(term: Terminal, amount: str) -> str:
    """Preview a 150.00 refund for C-1 (co-sign), let Bob and Carol spend AMOUNT, then confirm.

    Returns what the terminal showed between the confirmation and the recorded case id,
    its lines and their wrapping at the terminal's width joined by single spaces.
    """
    term.answer([*BENT_RETURN, ("Amount in USD", "150.00")])
    term.see("remaining 1850.00 USD")
    term.see("verdict: pending_cosign")
    term.answer([("Justification", JUSTIFICATION), ("Customer's reaction", "neutral")])
    term.see("Record this case? (y/n)")
    spend_meanwhile(term, amount)
    term.child.sendline("y")
    term.see("recorded case 2: ")
    return " ".join((term.child.before or "").split())


def budget_remaining(term: Terminal, customer: str) -> int:
    """Limit minus spent and live holds, read back from the database (cents)."""
    with sqlite3.connect(term.db) as conn:
        spent, held = conn.execute(
            "SELECT COALESCE(SUM(CASE WHEN status = 'approved' THEN discretionary_amount END), 0), "
            "COALESCE(SUM(CASE WHEN status != 'approved' THEN held_amount END), 0) "
            "FROM cases WHERE customer_id = ?", (customer,)).fetchone()  # fmt: skip
    return int(200000 - spent - held)


def test_a_budget_spent_by_other_agents_before_confirming_shows_what_changed_in_the_verdict(
    term: Terminal,
) -> None:
    shown = confirm_a_150_refund_after(term, "1950.00")
    term.see("pending_supervisor")
    code, rest = term.finish()
    assert code == 0, rest
    assert "the customer's budget changed between the preview and recording" in shown
    assert "another agent may have used it meanwhile" in shown
    assert ("what changed: status: pending_cosign → pending_supervisor "
            "budget effect: holds 150.00 → does not touch the budget "
            "budget spent after: 0.00 → 1950.00 "
            "budget held after: 150.00 → 0.00 "
            "remaining budget after: 1850.00 → 50.00 "
            "- reason: discretion 150.00 is above the co-sign threshold of 100.00: a colleague must co-sign "
            "+ reason: discretion 150.00 exceeds the customer's remaining budget of 50.00") in shown, shown
    _, case = term.cases()
    assert (case["agent"], case["status"], case["held_amount"]) == ("alice", "pending_supervisor", 0)
    reasons = json.loads(case["reasons"])
    assert "discretion 150.00 exceeds the customer's remaining budget of 50.00" in reasons
    assert not any("co-sign threshold" in r for r in reasons)
    assert budget_remaining(term, "C-1") == 5000


def test_a_budget_that_shrank_under_the_same_status_still_shows_the_new_remaining(term: Terminal) -> None:
    shown = confirm_a_150_refund_after(term, "500.00")
    term.see("pending_cosign")
    code, rest = term.finish()
    assert code == 0, rest
    assert "the customer's budget changed between the preview and recording" in shown, shown
    assert shown.endswith("what changed: budget spent after: 0.00 → 500.00 "
                          "remaining budget after: 1850.00 → 1350.00"), shown  # and nothing else
    _, case = term.cases()
    assert (case["agent"], case["status"], case["held_amount"]) == ("alice", "pending_cosign", 15000)
    assert budget_remaining(term, "C-1") == 135000


# -- the walk-through shows the numbers (issue 14) ------------------------------------------


def test_it_opens_with_who_is_recording_and_the_customers_cases_in_the_window(term: Terminal) -> None:
    term.see("recording as alice · agent · up to 200.00 USD without a supervisor")
    term.meanwhile("bob", "case", "new", "--customer", "C-1", "--type", "late_return", "--fact",
                   "days_since_purchase=20", "--fact", "has_receipt=yes", "--action", "refund", "--amount", "20",
                   "--justification", JUSTIFICATION)  # fmt: skip
    term.answer([("Customer id:", "C-1")])
    term.see("discretionary cases in the last 365 days: 1 of 6")
    term.child.sendcontrol("c")
    code, _ = term.finish()
    assert code == 130


def test_each_rule_shows_the_customers_value_against_its_limits(term: Terminal) -> None:
    term.answer([("Customer id:", "C-1"), ("Case type (number or id):", "1"), ("Days since purchase", "40"),
                 ("receipt?", "yes"), ("Action (number or id):", "refund"), ("Amount in USD", "20")])  # fmt: skip
    term.see("return-window  blocked")
    term.see("needs:")
    panel = " ".join((term.child.before or "").replace("│", " ").split())  # as read, whatever the wrapping
    assert "Returns are accepted within 15 days. days_since_purchase 40 · standard ≤ 15 · bendable ≤ 30" in panel
    assert "A receipt is required. has_receipt yes · must be yes" in panel
    term.child.sendcontrol("c")
    assert term.finish()[0] == 130


def test_menus_take_any_case_and_a_unique_start_of_a_choice(term: Terminal) -> None:
    term.answer([("Customer id:", "C-1"), ("Case type (number or id):", "MISSED")])  # any case, a unique start
    term.answer([("Minutes late at the gate", "30")])
    term.answer([("Cause (number or name):", "m")])  # medical is the only choice starting with m
    term.answer([("Action (number or id):", "Re")])  # rebook
    term.answer([("Amount in USD", "0"), ("Customer's reaction", "SAT"), ("Record this case? (y/n)", "y")])
    term.see("recorded case 1: approved")
    assert term.finish()[0] == 0
    [case] = term.cases()
    assert (case["case_type"], case["action"], case["reaction"]) == ("missed_flight", "rebook", "satisfied")
    assert json.loads(case["facts"])["cause"] == "medical"


def test_an_ambiguous_start_is_re_asked(term: Terminal) -> None:
    term.answer([("Customer id:", "C-1"), ("Case type (number or id):", "late_return"),
                 ("Days since purchase", "20"), ("receipt?", "yes")])  # fmt: skip
    term.answer([("Action (number or id):", "goodwill_credit_x")])
    term.see("error: action: expected a number from 1 to 3")
    term.child.sendcontrol("c")
    assert term.finish()[0] == 130


def test_a_justification_once_given_is_not_asked_for_again(term: Terminal) -> None:
    term.answer([*BENT_RETURN, ("Amount in USD", "60")])
    term.see("needs: a justification of at least 20 characters")
    term.answer([("Justification", JUSTIFICATION), ("Customer's reaction", "dissatisfied"),
                 ("Send the case to a supervisor? (y/n)", "y")])  # fmt: skip
    term.see("verdict: pending_supervisor")
    term.see(f"justification given ({len(JUSTIFICATION)} characters)")
    term.see("needs: a supervisor's approval")
    term.answer([("Record this case? (y/n)", "y")])
    term.see("recorded case 1: pending_supervisor")
    code, rest = term.finish()
    assert code == 0, rest
    assert "needs a justification" not in rest
