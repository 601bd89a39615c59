"""The interactive walk-through of `empower case new`, driven in a real pseudo-terminal."""

from __future__ import annotations

import os
import sqlite3
import sys
from collections.abc import Sequence
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
def term(tmp_path: Path) -> Terminal:
    return Terminal(tmp_path)


class Terminal:
    """`empower case new` on a pseudo-terminal, against a tmp policy and database."""

    def __init__(self, folder: Path) -> None:
        self.db = folder / "data" / "empower.db"
        env = {k: v for k, v in os.environ.items() if not k.startswith("EMPOWER_")}
        env.update(EMPOWER_POLICY=str(write_policy(folder)), EMPOWER_DB=str(self.db),
                   EMPOWER_AGENT="alice", NO_COLOR="1", TERM="dumb", COLUMNS="200")  # fmt: skip
        self.child = pexpect.spawn(sys.executable, ["-m", "empower_cli", "case", "new"], env=env,
                                   cwd=str(folder), encoding="utf-8", timeout=TIMEOUT)  # fmt: skip

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
