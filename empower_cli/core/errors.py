"""Errors named after the business, each carrying the exit code of SPEC §5.

The CLI catches `EmpowerError` in one place and turns it into a one-line message.
"""

from __future__ import annotations


class EmpowerError(Exception):
    """Base class: a one-line message for the user and the exit code to use."""

    exit_code = 1


class InvalidInput(EmpowerError):
    """Bad usage or input (exit 2). The message names the field."""

    exit_code = 2

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        self.problem = problem
        super().__init__(f"{field}: {problem}")


class PolicyError(EmpowerError):
    """The policy file is missing, unsafe or invalid (exit 3)."""

    exit_code = 3

    def __init__(self, message: str, problems: tuple[str, ...] = ()) -> None:
        self.problems = problems
        super().__init__(message)


class InvalidPolicy(PolicyError):
    """The policy file was read but is not valid TOML or not a valid policy (exit 3)."""


class NotAllowed(EmpowerError):
    """The acting login may not do this (exit 4)."""

    exit_code = 4


class UnknownLogin(NotAllowed):
    def __init__(self, login: str) -> None:
        super().__init__(
            f"login {login!r} has no role in [agents] and the policy has no default_role"
        )


class SelfCosign(NotAllowed):
    def __init__(self, *, imported: bool = False) -> None:
        super().__init__(f"You cannot co-sign or object to {_whose(imported)}.")


class SelfApproval(NotAllowed):
    def __init__(self, *, imported: bool = False) -> None:
        super().__init__(f"You cannot approve or deny {_whose(imported)}.")


def _whose(imported: bool) -> str:
    """Four eyes: the case's agent, or the account that imported it (it is not theirs)."""
    return "a case you imported" if imported else "your own case"


class SegmentNotGranted(NotAllowed):
    def __init__(self, customer: str, wanted: str, current: str | None) -> None:
        now = f"segment {current!r}" if current else "no segment"
        super().__init__(
            f"--segment: customer {customer!r} has {now}; only a role with can_approve may put them in "
            f"{wanted!r} (ask a supervisor to run: empower customer segment {customer} {wanted} --note TEXT)"
        )


class NotFound(EmpowerError):
    """An unknown case, customer or file (exit 5)."""

    exit_code = 5


class Conflict(EmpowerError):
    """The case's state does not allow this, or the database stayed busy (exit 6)."""

    exit_code = 6


class DatabaseBusy(Conflict):
    def __init__(self) -> None:
        super().__init__(
            "the database stayed busy past the retry limit; nothing was recorded, try again"
        )


class StoreError(EmpowerError):
    """The database file cannot be used (corrupt, newer schema, read-only): exit 1."""

    exit_code = 1


class ImportInterrupted(EmpowerError):
    """Ctrl-C stopped an import (exit 130, as a shell reports SIGINT). The chunks committed
    before it stay recorded, and a re-run skips them: say how many, never "nothing"."""

    exit_code = 130

    def __init__(self, committed: int, *, dry_run: bool = False) -> None:
        self.committed = committed
        if dry_run:
            message = "interrupted: a dry run, nothing was written"
        elif committed == 0:
            message = "interrupted: no rows were committed (re-run the same command to import them)"
        else:
            rows = "1 row was" if committed == 1 else f"{committed:,} rows were"
            message = (f"interrupted: {rows} committed (re-run the same command to import the rest; "
                       "committed rows are skipped)")  # fmt: skip
        super().__init__(message)
