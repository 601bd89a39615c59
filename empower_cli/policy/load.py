"""Load and validate `policies.toml` into a frozen `Policy`.

Every problem is collected and reported at once, each with file:line:column: TOML
syntax errors carry their own position, and semantic problems are located by finding
the offending key in the source text.
"""

from __future__ import annotations

import difflib
import re
import stat
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, cast

from empower_cli.core.digest import sha256_hex
from empower_cli.core.errors import InvalidInput, InvalidPolicy, PolicyError
from empower_cli.core.models import (
    FACT_TYPES,
    RISKS,
    Action,
    BudgetPolicy,
    CaseType,
    CosignPolicy,
    Fact,
    FactType,
    FactValue,
    Policy,
    Risk,
    Role,
    Rule,
    RuleOp,
)
from empower_cli.core.money import format_money, minor_digits, parse_money
from empower_cli.core.text import clean_id
from empower_cli.policy.locate import KeyPath, Problems, toml_error

MAX_POLICY_BYTES = 1024 * 1024
MAX_DAYS = 36_500  # windows and holds beyond a century are typos (and overflow dates)
# A justification may run to text.MAX_TEXT_CHARS (1,000,000); a policy demanding more
# than this before any discretion is a typo that would block every frontline decision.
MAX_MIN_JUSTIFICATION_CHARS = 10_000

_KNOWN: dict[str, tuple[str, ...]] = {
    "": ("policy", "budget", "roles", "agents", "cosign", "actions", "case_types"),
    "policy": ("name", "version", "currency", "min_justification_chars"),
    "budget": ("per_customer", "window_days", "supervisor_may_exceed", "max_cases", "segments"),
    "role": ("max_discretion", "can_approve", "can_import"),
    "cosign": ("above", "hold_hours", "objection_escalates"),
    "action": ("title", "always_discretionary", "frontline"),
    "case_type": ("title", "risk", "actions", "facts", "rules"),
    "fact": ("name", "type", "ask", "min", "max", "choices"),
    "rule": (
        "id", "text", "fact", "hard", "max", "bend_max", "min", "bend_min",
        "equals", "one_of", "max_age_days", "bend_max_age_days",
    ),
}  # fmt: skip
_BEND_OF: dict[str, str] = {"max": "bend_max", "min": "bend_min", "max_age_days": "bend_max_age_days"}
_OPS: tuple[RuleOp, ...] = ("max", "min", "equals", "one_of", "max_age_days")


def read_policy_bytes(path: Path) -> bytes:
    """Read the file, refusing one that anyone but its owner may rewrite, or too large."""
    try:
        st = path.stat()
    except FileNotFoundError:
        raise PolicyError(f"{path}: policy file not found") from None
    except OSError as e:
        raise PolicyError(f"{path}: cannot read the policy file ({e.strerror})") from None
    if not stat.S_ISREG(st.st_mode):
        raise PolicyError(f"{path}: the policy is not a regular file")
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise PolicyError(
            f"{path}: the policy file is group- or world-writable "
            f"(mode {stat.S_IMODE(st.st_mode):o}); it decides who may spend money, "
            f"so run: chmod go-w {path}"
        )
    if st.st_size > MAX_POLICY_BYTES:
        raise PolicyError(f"{path}: the policy file is larger than 1 MiB ({st.st_size} bytes)")
    try:
        return path.read_bytes()
    except OSError as e:
        raise PolicyError(f"{path}: cannot read the policy file ({e.strerror})") from None


def load_policy(path: Path) -> Policy:
    """Read, parse and validate the policy file; raise PolicyError listing every problem."""
    return parse_policy(read_policy_bytes(path), str(path))


def parse_policy(data: bytes, filename: str = "policies.toml") -> Policy:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - exercised on Python 3.10 only
        import tomli as tomllib
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise InvalidPolicy(f"{filename}:{line}:1: the file is not valid UTF-8 text") from None
    text = text.removeprefix("\ufeff")  # a byte-order mark some editors add
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise InvalidPolicy(toml_error(filename, str(e), text)) from None
    problems = Problems(filename, text)
    policy = _Builder(problems).policy(raw)
    if problems.items or policy is None:
        count = len(problems.items)
        raise InvalidPolicy(
            f"{filename}: {count} problem{'s' if count != 1 else ''} in the policy",
            tuple(problems.items),
        )
    return _with_identity(policy, sha256_hex(data), filename)


def _with_identity(policy: Policy, sha256: str, path: str) -> Policy:
    from dataclasses import replace

    return replace(policy, sha256=sha256, path=path)


class _Builder:
    """Turns the raw TOML mapping into a Policy, reporting every problem on the way."""

    def __init__(self, problems: Problems) -> None:
        self.p = problems
        self.digits = 2

    # -- small typed getters; each reports and returns a fallback on a bad value -----

    def table(self, raw: Any, path: KeyPath, kind: str | None) -> dict[str, Any]:
        if not isinstance(raw, dict):
            self.p.add(path, f"expected a table, got {_tname(raw)}")
            return {}
        if kind is not None:
            known = _KNOWN[kind]
            for key in raw:
                if key not in known:
                    self.p.add((*path, key), _unknown_key(key, known))
        return raw

    def get(self, raw: Mapping[str, Any], path: KeyPath, key: str, types: tuple[type, ...],
            expected: str, default: Any = None, required: bool = False) -> Any:  # fmt: skip
        if key not in raw:
            if required:
                self.p.add(path, f"missing required key {key!r}")
            return default
        value = raw[key]
        if (isinstance(value, bool) and bool not in types) or not isinstance(value, types):
            self.p.add((*path, key), f"expected {expected}, got {_tname(value)} {_short(value)}")
            return default
        return value

    def text(self, raw: Mapping[str, Any], path: KeyPath, key: str, default: str | None = None,
             required: bool = False) -> str | None:  # fmt: skip
        return cast(str | None, self.get(raw, path, key, (str,), "text", default, required))

    def integer(self, raw: Mapping[str, Any], path: KeyPath, key: str, default: int | None = None,
                required: bool = False, minimum: int = 0, maximum: int = 10**9) -> int | None:  # fmt: skip
        value = self.get(raw, path, key, (int,), "a whole number", default, required)
        if key not in raw or value is None:
            return cast(int | None, value)
        if value < minimum:
            self.p.add((*path, key), f"must be at least {minimum}, got {value}")
            return default
        if value > maximum:
            self.p.add((*path, key), f"must be at most {maximum}, got {value}")
            return default
        return cast(int | None, value)

    def flag(self, raw: Mapping[str, Any], path: KeyPath, key: str, default: bool) -> bool:
        return cast(bool, self.get(raw, path, key, (bool,), "true or false", default))

    def identifier(self, name: str, path: KeyPath) -> bool:
        """A login or segment name follows the identifier rule of the names typed at the CLI:
        one that no login or segment typed there could ever match is a problem to report."""
        try:
            clean_id(name, field=str(path[-1]))
        except InvalidInput as e:
            self.p.add(path, e.problem)
            return False
        return True

    def money(self, raw: Mapping[str, Any], path: KeyPath, key: str,
              required: bool = False) -> int | None:  # fmt: skip
        if key not in raw:
            if required:
                self.p.add(path, f"missing required key {key!r}")
            return None
        return self.money_value(raw[key], (*path, key))

    def money_value(self, value: Any, path: KeyPath) -> int | None:
        negative = value < 0 if isinstance(value, (int, float)) else str(value).strip().startswith("-")
        if not isinstance(value, bool) and negative:
            self.p.add(path, f"limits cannot be negative, got {value}")
            return None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            # TOML reads 1e3 or 0x3E8 as a number: ask for the plain decimal text of SPEC §2.
            raw = self.p.raw_value(path)
            if raw is not None and not re.fullmatch(r"\d+(\.\d+)?", raw, flags=re.ASCII):
                self.p.add(path, f"write money as plain decimal text like 12.50 (no exponent, sign, "
                                 f"separator or hex), got {raw[:40]}")  # fmt: skip
                return None
        try:
            return parse_money(value, field=str(path[-1]), digits=self.digits)
        except InvalidInput as e:
            self.p.add(path, e.problem)
            return None

    # -- sections -------------------------------------------------------------------

    def policy(self, raw: dict[str, Any]) -> Policy | None:
        self.table(raw, (), "")
        meta = self.table(raw.get("policy", {}), ("policy",), "policy")
        if "policy" not in raw:
            self.p.add((), "missing the [policy] table")
        currency = self.text(meta, ("policy",), "currency", "USD") or "USD"
        if not re.fullmatch(r"[A-Z]{3}", currency):
            self.p.add(("policy", "currency"), f"expected a 3-letter ISO code like USD, got {currency!r}")
        self.digits = minor_digits(currency)
        roles = self.roles(raw.get("roles"))
        actions = self.actions(raw.get("actions"))
        agents, default_role, override = self.agents(raw.get("agents", {}), roles)
        policy = Policy(
            name=self.text(meta, ("policy",), "name", "") or "",
            version=self.text(meta, ("policy",), "version", required=True) or "",
            currency=currency,
            digits=self.digits,
            min_justification_chars=self.integer(meta, ("policy",), "min_justification_chars", 20,
                                                 maximum=MAX_MIN_JUSTIFICATION_CHARS)
            or 0,
            budget=self.budget(raw.get("budget")),
            roles=roles,
            agents=agents,
            default_role=default_role,
            allow_identity_override=override,
            cosign=self.cosign(raw.get("cosign", {})),
            actions=actions,
            case_types=self.case_types(raw.get("case_types"), actions),
        )
        return policy

    def budget(self, raw: Any) -> BudgetPolicy:
        path: KeyPath = ("budget",)
        if raw is None:
            self.p.add((), "missing the [budget] table")
            raw = {}
        b = self.table(raw, path, "budget")
        segments: dict[str, int] = {}
        for name, value in self.table(b.get("segments", {}), (*path, "segments"), None).items():
            self.identifier(name, (*path, "segments", name))
            cents = self.money_value(value, (*path, "segments", name))
            if cents is not None:
                segments[name] = cents
        max_cases = self.integer(b, path, "max_cases", None, minimum=1, maximum=10**6)
        return BudgetPolicy(
            per_customer=self.money(b, path, "per_customer", required=True) or 0,
            window_days=self.integer(b, path, "window_days", 365, minimum=1, maximum=MAX_DAYS) or 365,
            supervisor_may_exceed=self.flag(b, path, "supervisor_may_exceed", False),
            max_cases=max_cases,
            segments=segments,
        )

    def roles(self, raw: Any) -> dict[str, Role]:
        if raw is None:
            self.p.add((), "missing the [roles] table: at least one role is needed")
            return {}
        roles: dict[str, Role] = {}
        for name, body in self.table(raw, ("roles",), None).items():
            path: KeyPath = ("roles", name)
            r = self.table(body, path, "role")
            roles[name] = Role(
                name=name,
                max_discretion=self.money(r, path, "max_discretion", required=True) or 0,
                can_approve=self.flag(r, path, "can_approve", False),
                can_import=self.flag(r, path, "can_import", False),
            )
        return roles

    def agents(self, raw: Any, roles: Mapping[str, Role]) -> tuple[dict[str, str], str | None, bool]:
        a = self.table(raw, ("agents",), None)
        agents: dict[str, str] = {}
        default_role: str | None = None
        override = False
        for login, value in a.items():
            path: KeyPath = ("agents", login)
            if login == "allow_identity_override":
                override = self.flag(a, ("agents",), login, False)
                continue
            if not isinstance(value, str):
                self.p.add(path, f"expected a role name, got {_tname(value)} {_short(value)}")
                continue
            if roles and value not in roles:
                self.p.add(path, f"unknown role {value!r}{_suggest(value, roles)}")
                continue
            if login == "default_role":
                default_role = value
            elif self.identifier(login, path):
                agents[login] = value
        return agents, default_role, override

    def cosign(self, raw: Any) -> CosignPolicy:
        path: KeyPath = ("cosign",)
        c = self.table(raw, path, "cosign")
        above = self.money(c, path, "above")
        return CosignPolicy(
            above=above if above is not None else 0,
            hold_hours=self.integer(c, path, "hold_hours", 24, minimum=1, maximum=MAX_DAYS * 24) or 24,
            objection_escalates=self.flag(c, path, "objection_escalates", True),
        )

    def actions(self, raw: Any) -> dict[str, Action]:
        if raw is None:
            self.p.add((), "missing the [actions] table")
            return {}
        actions: dict[str, Action] = {}
        for name, body in self.table(raw, ("actions",), None).items():
            path: KeyPath = ("actions", name)
            a = self.table(body, path, "action")
            actions[name] = Action(
                id=name,
                title=self.text(a, path, "title", name) or name,
                always_discretionary=self.flag(a, path, "always_discretionary", False),
                frontline=self.flag(a, path, "frontline", True),
            )
        return actions

    def case_types(self, raw: Any, actions: Mapping[str, Action]) -> dict[str, CaseType]:
        if raw is None:
            self.p.add((), "missing the [case_types] table: at least one case type is needed")
            return {}
        seen_rules: dict[str, str] = {}
        types: dict[str, CaseType] = {}
        for name, body in self.table(raw, ("case_types",), None).items():
            path: KeyPath = ("case_types", name)
            t = self.table(body, path, "case_type")
            risk = self.text(t, path, "risk", "low") or "low"
            if risk not in RISKS:
                self.p.add((*path, "risk"), f"expected one of {', '.join(RISKS)}, got {risk!r}")
            action_ids = self.action_list(t, path, actions)
            facts = self.facts(t.get("facts", []), (*path, "facts"))
            rules = self.rules(t.get("rules", []), (*path, "rules"), facts, seen_rules, name)
            types[name] = CaseType(
                id=name,
                title=self.text(t, path, "title", name) or name,
                risk=cast(Risk, risk),
                actions=action_ids,
                facts=tuple(facts.values()),
                rules=rules,
            )
        return types

    def action_list(self, t: Mapping[str, Any], path: KeyPath,
                    actions: Mapping[str, Action]) -> tuple[str, ...]:  # fmt: skip
        raw = t.get("actions")
        if not isinstance(raw, list) or not raw:
            self.p.add(path, "'actions' must be a non-empty list of action names")
            return ()
        out: list[str] = []
        for i, a in enumerate(raw):
            if not isinstance(a, str):
                self.p.add((*path, "actions", i), f"expected an action name, got {_tname(a)}")
            elif actions and a not in actions:
                self.p.add((*path, "actions"), f"action {a!r} is not declared in [actions]{_suggest(a, actions)}")
            else:
                out.append(a)
        return tuple(out)

    def facts(self, raw: Any, path: KeyPath) -> dict[str, Fact]:
        facts: dict[str, Fact] = {}
        if not isinstance(raw, list):
            self.p.add(path, f"expected a list of facts, got {_tname(raw)}")
            return facts
        for i, body in enumerate(raw):
            fpath = (*path, i)
            f = self.table(body, fpath, "fact")
            name = self.text(f, fpath, "name", required=True)
            ftype = self.text(f, fpath, "type", required=True)
            if name is None or ftype is None:
                continue
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
                self.p.add((*fpath, "name"), f"fact names are letters, digits and _, got {name!r}")
            if ftype not in FACT_TYPES:
                self.p.add((*fpath, "type"), f"unknown fact type {ftype!r}{_suggest(ftype, FACT_TYPES)}")
                continue
            if name in facts:
                self.p.add((*fpath, "name"), f"duplicate fact {name!r}")
            facts[name] = self.fact(f, fpath, name, cast(FactType, ftype))
        return facts

    def fact(self, f: Mapping[str, Any], path: KeyPath, name: str, ftype: FactType) -> Fact:
        bounds: list[int | None] = []
        for key in ("min", "max"):
            if key in f and ftype not in ("int", "money"):
                self.p.add((*path, key), f"'{key}' applies to int and money facts, not {ftype}")
                bounds.append(None)
            elif ftype == "money":
                bounds.append(self.money(f, path, key))
            else:
                bounds.append(cast(int | None, self.get(f, path, key, (int,), "a whole number")))
        if bounds[0] is not None and bounds[1] is not None and bounds[0] > bounds[1]:
            self.p.add((*path, "max"), "max is below min: no answer could be valid")
        choices: tuple[str, ...] = ()
        if ftype == "choice":
            raw = f.get("choices")
            if not isinstance(raw, list) or not raw or not all(isinstance(c, str) for c in raw):
                self.p.add(path, "a choice fact needs 'choices', a non-empty list of text")
            else:
                choices = tuple(raw)
        elif "choices" in f:
            self.p.add((*path, "choices"), f"'choices' applies to choice facts, not {ftype}")
        return Fact(name=name, type=ftype, ask=self.text(f, path, "ask", name) or name,
                    min=bounds[0], max=bounds[1], choices=choices)  # fmt: skip

    def rules(self, raw: Any, path: KeyPath, facts: Mapping[str, Fact],
              seen: dict[str, str], case_type: str) -> tuple[Rule, ...]:  # fmt: skip
        if not isinstance(raw, list):
            self.p.add(path, f"expected a list of rules, got {_tname(raw)}")
            return ()
        rules: list[Rule] = []
        for i, body in enumerate(raw):
            rpath = (*path, i)
            r = self.table(body, rpath, "rule")
            rule_id = self.text(r, rpath, "id", required=True)
            fact_name = self.text(r, rpath, "fact", required=True)
            if rule_id is None or fact_name is None:
                continue
            if rule_id in seen:
                where = "earlier in this case type" if seen[rule_id] == case_type else f"in case type {seen[rule_id]!r}"
                self.p.add((*rpath, "id"), f"duplicate rule id {rule_id!r} (also {where})")
            seen[rule_id] = case_type
            fact = facts.get(fact_name)
            if fact is None:
                hint = _suggest(fact_name, facts)
                self.p.add((*rpath, "fact"), f"fact {fact_name!r} is not declared in this case type's facts{hint}")
                continue
            rule = self.rule(r, rpath, rule_id, fact)
            if rule is not None:
                rules.append(rule)
        return tuple(rules)

    def rule(self, r: Mapping[str, Any], path: KeyPath, rule_id: str, fact: Fact) -> Rule | None:
        ops = [op for op in _OPS if op in r]
        if len(ops) != 1:
            found = ", ".join(ops) or "none"
            self.p.add(path, f"a rule needs exactly one of max, min, equals, one_of, max_age_days (found {found})")
            return None
        op = ops[0]
        for key, base in (("bend_max", "max"), ("bend_min", "min"), ("bend_max_age_days", "max_age_days")):
            if key in r and op != base:
                self.p.add((*path, key), f"'{key}' goes with '{base}', but this rule uses '{op}'")
        standard = self.limit(r[op], (*path, op), op, fact)
        bend_key = _BEND_OF.get(op)
        bend = self.limit(r[bend_key], (*path, bend_key), op, fact) if bend_key and bend_key in r else None
        if standard is None:
            return None
        if isinstance(standard, int) and isinstance(bend, int) and bend_key:
            shown, limit = self.show(bend, fact), self.show(standard, fact)
            if op in ("max", "max_age_days") and bend < standard:
                self.p.add((*path, bend_key), f"{bend_key} ({shown}) is below {op} ({limit})")
            if op == "min" and bend > standard:
                self.p.add((*path, bend_key), f"bend_min ({shown}) is above min ({limit})")
        return Rule(
            id=rule_id,
            text=self.text(r, path, "text", rule_id) or rule_id,
            fact=fact.name,
            op=op,
            standard=standard,
            bend=cast(FactValue | None, bend),
            hard=self.flag(r, path, "hard", False),
        )

    def show(self, value: int, fact: Fact) -> str:
        return format_money(value, self.digits) if fact.type == "money" else str(value)

    def limit(self, value: Any, path: KeyPath, op: RuleOp,
              fact: Fact) -> FactValue | tuple[FactValue, ...] | None:  # fmt: skip
        if op == "max_age_days":
            if fact.type != "date":
                self.p.add(path, f"'max_age_days' applies to date facts, not {fact.type}")
                return None
            return self.whole(value, path)
        if op in ("max", "min"):
            if fact.type == "money":
                return self.money_value(value, path)
            if fact.type == "int":
                return self.whole(value, path)
            self.p.add(path, f"'{op}' applies to int and money facts, not {fact.type}")
            return None
        values = value if op == "one_of" else [value]
        if op == "one_of" and (not isinstance(value, list) or not value):
            self.p.add(path, "'one_of' needs a non-empty list")
            return None
        out = [self.fact_constant(v, (*path, i) if op == "one_of" else path, fact)
               for i, v in enumerate(values)]  # fmt: skip
        if any(v is None for v in out):
            return None
        clean = [v for v in out if v is not None]
        return tuple(clean) if op == "one_of" else clean[0]

    def whole(self, value: Any, path: KeyPath) -> int | None:
        if isinstance(value, bool) or not isinstance(value, int):
            self.p.add(path, f"expected a whole number, got {_tname(value)} {_short(value)}")
            return None
        if value < 0:
            self.p.add(path, f"limits cannot be negative, got {value}")
            return None
        return value

    def fact_constant(self, value: Any, path: KeyPath, fact: Fact) -> FactValue | None:
        from empower_cli.core.facts import parse_fact_value

        if fact.type in ("int", "money", "date") and not isinstance(value, str):
            value = str(value).lower() if isinstance(value, bool) else str(value)
        if fact.type == "bool" and isinstance(value, bool):
            return value
        if not isinstance(value, str):
            self.p.add(path, f"expected a {fact.type} value, got {_tname(value)}")
            return None
        try:
            return parse_fact_value(fact, value, digits=self.digits)
        except InvalidInput as e:
            self.p.add(path, e.problem)
            return None


def _unknown_key(key: str, known: tuple[str, ...]) -> str:
    return f"unknown key {key!r}{_suggest(key, known) or '; valid keys: ' + ', '.join(known)}"


def _suggest(word: str, options: Mapping[str, Any] | tuple[str, ...]) -> str:
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def _tname(value: Any) -> str:
    names: dict[type, str] = {str: "text", int: "a number", float: "a decimal number",
                              bool: "a boolean", list: "a list", dict: "a table"}  # fmt: skip
    return names.get(type(value), type(value).__name__)


def _short(value: Any) -> str:
    text = repr(value)
    return f"({text[:40]}…)" if len(text) > 40 else f"({text})"


PolicyLoader = Callable[[Path], Policy]
