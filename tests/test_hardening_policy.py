"""Fuzzing the policy loader: Hypothesis-generated TOML documents and mutations of the
shipped file. Never a crash (only PolicyError), and every problem has file:line:col.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from empower_cli.cli.app import app
from empower_cli.core.errors import PolicyError
from empower_cli.policy.load import parse_policy
from empower_cli.services.admin import default_policy_text

GENERATED_EXAMPLES = 150  # Hypothesis-built TOML documents
MUTANT_EXAMPLES = 400  # mutations of the shipped policies.toml
BYTES_EXAMPLES = 300  # random bytes
CLI_MUTANTS = 40
NAME = "fuzz.toml"
LOCATED = re.compile(rf"^{re.escape(NAME)}:\d+:\d+: ")
SHIPPED = default_policy_text()
VOCABULARY = sorted(set(re.findall(r"[a-z_]+", SHIPPED)))[:200]
HOSTILE = ["'; DROP TABLE cases; --", "\x1b[31m", "\u202e", "😀", "A" * 5000, "", " ", "1e999", "NaN",
           "-1", "0x10", "2026-13-45", "\\", '"', "\n"]  # fmt: skip
_tally = {"documents": 0}


def _check(data: bytes) -> None:
    """The property: a Policy, or a PolicyError whose every problem is located."""
    _tally["documents"] += 1
    try:
        parse_policy(data, NAME)
    except PolicyError as e:
        lines = list(e.problems) or [str(e)]
        for line in lines:
            assert LOCATED.match(line), f"problem without file:line:col: {line[:200]!r}"
            assert "\n" not in line, f"a problem spans lines: {line[:200]!r}"


# -- generated documents -----------------------------------------------------------------

keys = st.one_of(st.sampled_from(VOCABULARY), st.text(min_size=0, max_size=12), st.sampled_from(HOSTILE))
scalars = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.text(max_size=40),
    st.sampled_from(HOSTILE),
    st.sampled_from(["1979-05-27T07:32:00Z", "1979-05-27", "07:32:00"]).map(lambda s: _Raw(s)),
)


class _Raw(str):
    """A TOML literal written as is (dates and times)."""


def _value(v: Any) -> str:
    if isinstance(v, _Raw):
        return str(v)
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        text = repr(v)
        return text if any(c in text for c in ".e") else text + ".0"
    if isinstance(v, str):
        return json.dumps(v)  # JSON string escapes are valid TOML basic-string escapes
    if isinstance(v, list):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(v)


values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=4)),
    max_leaves=8,
)
tables = st.dictionaries(keys, st.dictionaries(keys, values, max_size=6), max_size=8)


def _document(doc: dict[str, dict[str, Any]]) -> str:
    out = []
    for table, body in doc.items():
        out.append(f"[{json.dumps(table)}]")
        out += [f"{json.dumps(k)} = {_value(v)}" for k, v in body.items()]
    return "\n".join(out) + "\n"


@settings(max_examples=GENERATED_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(tables)
def test_generated_toml_is_a_policy_or_a_located_policy_error(doc: dict[str, dict[str, Any]]) -> None:
    _check(_document(doc).encode("utf-8"))


# -- mutations of the shipped file ----------------------------------------------------------

SHIPPED_LINES = SHIPPED.splitlines(keepends=True)
VALUE_LINE = re.compile(r"^(\s*[\w.\"-]+\s*=\s*)(.+)$")


@st.composite
def mutants(draw: st.DrawFn) -> bytes:
    lines = list(SHIPPED_LINES)
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(lines) - 1))
        op = draw(st.sampled_from(["value", "value", "delete", "duplicate", "swap", "bytes", "truncate", "char"]))
        if op == "value" and (m := VALUE_LINE.match(lines[i].rstrip("\n"))):
            lines[i] = m.group(1) + _value(draw(values)) + "\n"
        elif op == "delete":
            del lines[i]
        elif op == "duplicate":
            lines.insert(i, lines[i])
        elif op == "swap":
            j = draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
        elif op == "truncate":
            lines[i] = lines[i][: draw(st.integers(0, len(lines[i])))]
        elif op == "char" and lines[i]:
            k = draw(st.integers(0, len(lines[i]) - 1))
            lines[i] = lines[i][:k] + draw(st.characters()) + lines[i][k + 1 :]
        if not lines:
            break
    data = "".join(lines).encode("utf-8", "surrogatepass")
    if draw(st.booleans()) and data:
        k = draw(st.integers(0, len(data) - 1))
        data = data[:k] + draw(st.binary(min_size=1, max_size=4)) + data[k:]
    return data


@settings(max_examples=MUTANT_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(mutants())
def test_a_mutated_shipped_policy_is_a_policy_or_a_located_policy_error(data: bytes) -> None:
    _check(data)


@settings(max_examples=BYTES_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.binary(max_size=400))
def test_random_bytes_are_a_located_policy_error(data: bytes) -> None:
    _check(data)


@settings(max_examples=CLI_MUTANTS, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=mutants())
def test_policy_check_on_a_mutant_exits_0_or_3_with_located_lines(tmp_path_factory: Any, data: bytes) -> None:
    import os

    folder = tmp_path_factory.mktemp("mutant")
    path = folder / "policies.toml"
    path.write_bytes(data)
    os.chmod(path, 0o644)
    r = CliRunner().invoke(app, ["policy", "check", str(path)], env={"EMPOWER_POLICY": None, "EMPOWER_DB": None})
    _tally["documents"] += 1
    assert r.exit_code in (0, 3), r.output
    assert "Traceback" not in r.output
    if r.exit_code == 3:
        for line in r.stderr.splitlines():
            assert re.match(rf"^(error: |  ){re.escape(str(path))}:\d+:\d+: ", line) or line.startswith(
                f"error: {path}: "
            ), line
