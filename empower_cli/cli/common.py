"""What every command shares: option types, the global settings, error handling and
the session (policy, store, identity) a command works in.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from typer.core import TyperGroup

from empower_cli.core.errors import EmpowerError, PolicyError

if TYPE_CHECKING:
    from empower_cli.core.models import Policy
    from empower_cli.services.governance import Applied, PolicySource
    from empower_cli.services.identity import Identity
    from empower_cli.store.backend import Location
    from empower_cli.store.sqlite import Store

PolicyOption = Annotated[
    Path | None,
    typer.Option("--policy", envvar="EMPOWER_POLICY", show_default=False,
                 help="Policy file (default: policies.toml here or in the nearest parent)."),
]  # fmt: skip
DbOption = Annotated[
    str | None,
    typer.Option("--db", envvar="EMPOWER_DB", show_default=False,
                 help="SQLite file or postgresql://user@host/dbname URL (default: data/empower.db beside "
                      "the policy file)."),
]  # fmt: skip
JsonOption = Annotated[
    bool, typer.Option("--json", help="Machine-readable JSON on stdout.")
]


class ListFormat(str, Enum):
    """How a list leaves the program: a table for people, TSV or CSV for scripts, or JSON."""

    table = "table"
    tsv = "tsv"
    csv = "csv"
    json = "json"


ListFormatOption = Annotated[
    ListFormat | None,
    typer.Option("--format", case_sensitive=False, show_default=False,
                 help="table, tsv, csv or json (default: table on a terminal, tsv in a pipe; json with --json)."),
]  # fmt: skip


class CaseStatus(str, Enum):
    """A case's status (core.models.STATUSES, which a test holds equal), as a declared choice."""

    approved = "approved"
    pending_cosign = "pending_cosign"
    pending_supervisor = "pending_supervisor"
    denied = "denied"
    expired = "expired"


class ReactionChoice(str, Enum):
    """The customer's reaction (core.models.REACTIONS), as a declared choice."""

    satisfied = "satisfied"
    neutral = "neutral"
    dissatisfied = "dissatisfied"


ReactionOption = Annotated[
    ReactionChoice | None,
    typer.Option("--reaction", case_sensitive=False, show_default=False, help="The customer's reaction."),
]


def _completion_policy(ctx: typer.Context) -> Policy | None:
    """The policy file a command line would find (--policy, EMPOWER_POLICY or the nearest
    policies.toml), for shell completion only: nothing is decided with it."""
    from empower_cli.policy.load import load_policy
    from empower_cli.policy.paths import find_policy

    try:
        explicit = ctx.find_root().params.get("policy") or os.environ.get("EMPOWER_POLICY")
        return load_policy(find_policy(Path(explicit) if explicit else None))
    except Exception:  # a shell completing a word must never see an error
        return None


def complete_case_type(ctx: typer.Context, incomplete: str) -> list[tuple[str, str]]:
    """`--type <TAB>`: the case types of the policy file, with their titles."""
    policy = _completion_policy(ctx)
    types = policy.case_types.values() if policy is not None else ()
    return [(t.id, t.title) for t in types if t.id.startswith(incomplete)]


def complete_action(ctx: typer.Context, incomplete: str) -> list[tuple[str, str]]:
    """`--action <TAB>`: the actions of the case type given with --type (every action without one)."""
    policy = _completion_policy(ctx)
    if policy is None:
        return []
    chosen = policy.case_types.get(ctx.params.get("case_type") or "")
    ids = chosen.actions if chosen is not None else tuple(policy.actions)
    return [(a, policy.actions[a].title) for a in ids if a.startswith(incomplete) and a in policy.actions]


WHEN = "an ISO date/time, or a duration ago: 30d, 12h, 5m (s, m = minutes, h, d, w)"
MAX_SQL_INT = 2**63 - 1  # SQLite's largest integer: a bigger id or limit is refused (exit 2), not a crash
CaseId = Annotated[int, typer.Argument(help="The case number, as printed by `case new`.", min=1, max=MAX_SQL_INT)]


@dataclass
class Settings:
    """The global options, kept on the root context for every command."""

    policy: Path | None = None
    db: str | None = None
    json: bool = False


def settings(ctx: typer.Context) -> Settings:
    obj = ctx.find_root().obj
    return obj if isinstance(obj, Settings) else Settings()


def wants_json(ctx: typer.Context, local: bool) -> bool:
    return local or settings(ctx).json


def chosen_format(ctx: typer.Context, fmt: Enum | None, local_json: bool) -> str:
    """--format wins; --json (global or local) means json; otherwise a table for a person at a
    terminal and tab-separated full values for a pipe or a file (as `gh` does)."""
    from empower_cli.core.errors import InvalidInput

    as_json = wants_json(ctx, local_json)
    if fmt is None:
        return "json" if as_json else "table" if sys.stdout.isatty() else "tsv"
    if as_json and fmt.value != "json":
        raise InvalidInput("--format", f"--json asks for JSON but --format asks for {fmt.value}")
    return str(fmt.value)


def print_rows(fmt: str, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """A list as TSV or CSV on stdout, with its header."""
    from empower_cli.render.tabular import delimited

    sys.stdout.write(delimited(fmt, header, rows))


@contextmanager
def handle_errors(as_json: Callable[[], bool] = lambda: False) -> Iterator[None]:
    """Turn every failure of a command into a one-line message on stderr and the SPEC §5 exit
    code (under --json, AS_JSON, one line of JSON: `{"error": {"code", "message", ...}}`).
    Used once, by the root group around every command (`Root.invoke`)."""
    try:
        yield
    except (typer.Exit, typer.Abort, typer.TyperException):
        raise  # an exit code already chosen, or a usage error (exit 2) that `Root.main` prints
    except BrokenPipeError:
        reader_gone()
    except EmpowerError as e:
        fail(str(e), e.exit_code, as_json=as_json(), problems=e.problems if isinstance(e, PolicyError) else ())
    except KeyboardInterrupt:
        fail("interrupted: nothing was recorded", 130, as_json=as_json())
    except Exception as e:  # the last resort of SPEC §5: exit 1, one line
        if os.environ.get("EMPOWER_DEBUG") == "1":
            raise
        sqlite3 = sys.modules.get("sqlite3")
        if sqlite3 is not None and isinstance(e, sqlite3.Error):  # a failing disk is not a bug
            fail(f"the database failed: {e}; nothing more was recorded", 1, as_json=as_json())
        fail(f"internal error: {type(e).__name__}: {e} (set EMPOWER_DEBUG=1 for details)", 1, as_json=as_json())


def fail(message: str, exit_code: int, *, as_json: bool, problems: Sequence[str] = (),
         usage: bool = False) -> NoReturn:  # fmt: skip
    """Say why the command failed, on stderr (a line, or JSON under --json), and exit."""
    if as_json:
        from empower_cli.core.text import visible
        from empower_cli.render.json import error_json

        shown = error_json(visible(message), exit_code, [visible(p) for p in problems], usage=usage)
        sys.stderr.write(json.dumps(shown, ensure_ascii=False) + "\n")
        sys.stderr.flush()
    else:
        print_error(message)
        for problem in problems:
            print_error(problem, prefix="  ")
    raise typer.Exit(exit_code)


def reader_gone() -> NoReturn:
    """stdout's reader went away (`| head -1`, `| head -0`): it has what it wanted. End quietly
    with 0, as git and gh do: no message, no traceback (Click alone would exit 1)."""
    from empower_cli.cli.entry import stdout_to_devnull

    stdout_to_devnull()
    raise typer.Exit(0) from None


class Group(TyperGroup):
    """A command group that, run without arguments, shows its help and exits 2.

    Click does this by raising its help as a usage error, which `Root.main` could tell apart
    from the others only by a private class; here it happens before any error is raised.
    """

    # The overrides take Typer's Context (what Typer passes); Typer declares its private Click's.
    def parse_args(self, ctx: typer.Context, args: list[str]) -> list[str]:  # type: ignore[override]
        if not args and self.no_args_is_help and not ctx.resilient_parsing:
            text = ctx.get_help()  # Typer's rich help prints itself and returns ""
            if text:
                typer.echo(text)
            raise typer.Exit(2)
        return super().parse_args(ctx, args)


class Root(Group):
    """The root group, the edge of the program: an `EmpowerError` from any command becomes its
    exit code here, and a usage error (bad option value, missing option, unknown command) is
    one line on stderr with exit 2, like every other refusal (SPEC §5, §9)."""

    def invoke(self, ctx: typer.Context) -> Any:  # type: ignore[override]
        rest = [*getattr(ctx, "_protected_args", ()), *ctx.args]  # the command's own arguments

        def as_json() -> bool:  # the global --json, or the command's
            return settings(ctx).json or "--json" in rest

        from empower_cli.cli.entry import resume_collector

        resume_collector()  # start-up is over (cli/entry.py)
        with handle_errors(as_json):
            return super().invoke(ctx)

    def make_context(self, info_name: str | None, args: list[str], parent: Any = None, **extra: Any) -> Any:
        try:  # `empower --help | head -1`: the root's help is printed while parsing, before invoke
            return super().make_context(info_name, args, parent, **extra)
        except BrokenPipeError:
            reader_gone()

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True,
             windows_expand_args: bool = True, **extra: Any) -> Any:  # fmt: skip
        def run() -> Any:
            return super(Root, self).main(args, prog_name, complete_var, False, windows_expand_args, **extra)

        if not standalone_mode:
            return run()
        from empower_cli.cli.entry import stdout_to_devnull

        before = _stdout_file()
        try:
            rv = run()
        except SystemExit as e:
            # rich (a table, Typer's help) answers a closed pipe by pointing stdout at /dev/null
            # and exiting 1: the reader went away, which is no error here (see `reader_gone`).
            if e.code == 1 and _stdout_file() != before and _stdout_file() == _devnull_file():
                sys.exit(0)
            raise
        except typer.TyperException as e:  # Click's errors: Typer 0.28+ ships its own Click, built on this
            message = " ".join(e.format_message().split())
            ctx = getattr(e, "ctx", None)  # usage errors carry the command they are about
            where = f" (see: {ctx.command_path} --help)" if ctx is not None else ""
            as_json = "--json" in (sys.argv[1:] if args is None else args)
            try:
                fail(_shorten(message, 300) + where, e.exit_code, as_json=as_json, usage=True)
            except typer.Exit as done:
                sys.exit(done.exit_code)
        except typer.Abort:
            print_error("aborted: nothing was recorded")
            sys.exit(1)
        try:
            sys.stdout.flush()  # a closed pipe shows here, not in Python's own flush at exit
        except BrokenPipeError:
            stdout_to_devnull()  # the command ran to its end: its exit code stands
        sys.exit(rv if isinstance(rv, int) and not isinstance(rv, bool) else 0)


def _stdout_file() -> tuple[int, int] | None:
    """What file descriptor 1 is (device, inode), to see whether something redirected it."""
    try:
        st = os.fstat(1)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _devnull_file() -> tuple[int, int] | None:
    try:
        st = os.stat(os.devnull)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def print_error(message: str, *, prefix: str = "error: ") -> None:
    from empower_cli.core.text import visible

    sys.stderr.write(f"{prefix}{visible(message)}\n")
    sys.stderr.flush()


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, ensure_ascii=False, indent=2) + "\n")


def warn_if_network_filesystem(path: Path) -> None:
    """SQLite's locking is unreliable on network filesystems: say so, then carry on."""
    from empower_cli.store.files import network_filesystem

    kind = network_filesystem(path)
    if kind is not None:
        print_error(f"{path} is on a network filesystem ({kind}); SQLite's locking is unreliable there, "
                    "so concurrent writers may corrupt it: keep the database on a local disk",
                    prefix="warning: ")  # fmt: skip


@dataclass
class Session:
    """The database, the policy that governs it and the acting identity of one command run.

    The policy applied to the database governs (SPEC §5a); the policy file only locates the
    default database, is applied to a new one, and is compared with the applied policy.
    """

    policy_path: Path | None  # the policy file found or named (None: none, with --db given)
    db_path: Location  # a SQLite file, or a PostgreSQL URL
    now: dt.datetime
    writes: bool = True  # False: never create, migrate or apply anything (a dry run)
    _store: Store | None = None
    _governing: Applied | None = None

    @property
    def store(self) -> Store:
        if self._store is None:
            from empower_cli.store.backend import open_store

            self._store = open_store(self.db_path)
            if isinstance(self.db_path, Path):
                warn_if_network_filesystem(self.db_path)
        return self._store

    @property
    def applied(self) -> Applied:
        """The applied policy (applying the file first on a database that has none), saying on
        stderr when the file on disk differs from it."""
        if self._governing is None:
            from empower_cli.services.governance import PolicySource, drift_note

            # A missing, unsafe or oversized file is refused (exit 3) by every command.
            source = PolicySource.read(self.policy_path) if self.policy_path is not None else None
            self._governing = self._governing_policy(source)
            note = drift_note(source, self._governing) if source is not None else None
            if note is not None:
                print_error(note, prefix="note: ")
        return self._governing

    def _governing_policy(self, source: PolicySource | None) -> Applied:
        """The applied policy; on a database with none yet, the file (which must then be valid:
        exit 3 otherwise), applied to it unless this is a dry run, which writes nothing."""
        from empower_cli.services.governance import applied_policy, ensure_applied, proposed

        found = self._applied_read_only() if not self.writes else applied_policy(self.store)
        if found is not None:
            return found
        if source is None:
            where = self._store.location if self._store else self.db_path
            raise PolicyError(f"{where}: no policy has been applied to this database and no policy "
                              "file was found; run `empower init` or pass --policy PATH")  # fmt: skip
        file = source.parsed()
        return ensure_applied(self.store, file, now=self.now) if self.writes else proposed(file)

    def _applied_read_only(self) -> Applied | None:
        from empower_cli.services.governance import read_applied
        from empower_cli.store.backend import describe, open_view

        view = open_view(self.db_path)
        try:
            return read_applied(view, describe(self.db_path))
        finally:
            view.close()

    @property
    def policy(self) -> Policy:
        return self.applied.policy

    def identity(self) -> Identity:
        from empower_cli.services.identity import identify

        return identify(self.policy, login=self._login())

    def _login(self) -> str | None:
        """The database login on PostgreSQL (None on SQLite, where the OS account acts); a dry
        run asks a read-only session, which creates nothing."""
        if not isinstance(self.db_path, str):
            return None
        if self.writes or self._store is not None:
            return self.store.login()
        from empower_cli.store.backend import open_view

        view = open_view(self.db_path)
        try:
            return view.login()
        finally:
            view.close()

    def close(self) -> None:
        if self._store is not None:
            self._store.close()


@contextmanager
def session(ctx: typer.Context, *, writes: bool = True, governed: bool = True) -> Iterator[Session]:
    """Locate the policy file and the database for a command (errors handled by caller).

    `governed`: the command decides or reads under the applied policy, which a new database
    gets first. `audit head` and `verify` need none: they must work on any log, even one
    whose policy event was damaged. `writes`: False for a dry run (nothing created or applied).
    """
    from empower_cli.core.timeutil import utcnow
    from empower_cli.policy.paths import database_path, find_policy

    opts = settings(ctx)
    try:
        policy_path: Path | None = find_policy(opts.policy)
    except PolicyError:
        if opts.db is None:
            raise  # no file and no --db: nowhere to look
        policy_path = None  # the database alone knows its policy
    if opts.db is not None:
        from empower_cli.store.backend import parse_location

        db: Location = parse_location(opts.db)
    else:
        assert policy_path is not None
        db = database_path(None, policy_path)
    s = Session(policy_path, db, utcnow(), writes=writes)
    try:
        if governed:
            s.applied  # noqa: B018  (the policy file is checked, and a new database governed, before anything else)
        elif policy_path is not None:
            from empower_cli.services.governance import PolicySource

            PolicySource.read(policy_path)  # only a missing or unsafe file is refused here
        yield s
    finally:
        s.close()
