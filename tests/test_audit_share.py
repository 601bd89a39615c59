"""`empower audit report --html FILE` and the Markdown reports: one self-contained file whose
every figure equals the `audit … --json` value, checked in the file and in a real headless
Chromium (no console errors, a screenshot of a sensible size, the DOM's numbers); Markdown
with the terminal's labels and formatted values."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import struct
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from tests.audit_support import Spec, seed
from tests.conftest import CliFn, as_json, report_rows
from tests.test_audit_reports import REPORTS, history

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (.ci/run installs it)")


class Figures(HTMLParser):
    """Every element's data-path -> data-value (JSON text), and the tags and links seen."""

    def __init__(self) -> None:
        super().__init__()
        self.figures: dict[str, list[str]] = {}
        self.tags: set[str] = set()
        self.links: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        found = dict(attrs)
        if found.get("data-path"):
            self.figures.setdefault(found["data-path"] or "", []).append(found.get("data-value") or "")
        self.links += [v or "" for k, v in attrs if k in ("src", "href", "action", "srcset", "xlink:href")]

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(html: str) -> Figures:
    f = Figures()
    f.feed(html)
    return f


def reports_json(cli: CliFn, *args: str) -> dict[str, Any]:
    out = {}
    for name in REPORTS:
        r = cli("audit", name, "--json", *args)
        assert r.exit_code == 0, r.output
        out[name] = report_rows(name, as_json(r))
    return out


def leaves(value: Any, path: str = "") -> dict[str, Any]:
    """Every number, string, boolean or null in a JSON value, by dotted path; a row's `flags`
    (a list of {code, text}) is one figure, shown as its texts."""
    if isinstance(value, dict):
        return {k: v for key, sub in value.items() for k, v in leaves(sub, f"{path}.{key}" if path else key).items()}
    if isinstance(value, list) and not path.endswith(".flags"):
        return {k: v for i, sub in enumerate(value) for k, v in leaves(sub, f"{path}.{i}").items()}
    return {path: value}


def check_figures(figures: dict[str, list[str]], data: dict[str, Any]) -> None:
    """Every figure shown is the JSON value at its path, and every figure of the JSON is shown."""
    import json

    expected = leaves(data)
    for path, values in figures.items():
        assert path in expected, f"{path} is not in the reports' JSON"
        for v in values:
            assert json.loads(v) == expected[path], path
    # Not figures: the period (in the title), each week's date (the chart's labels), a flag
    # that is not raised.
    missing = [p for p, v in expected.items() if p not in figures and not (p.endswith(".flags") and v == [])
               and not p.startswith("summary.period.") and not re.fullmatch(r"summary\.weekly_spend\.\d+\.week", p)]
    assert missing == [], f"JSON figures missing from the HTML: {missing[:10]}"


@pytest.fixture
def seeded(cli: CliFn, db_path: Path) -> None:
    specs = history(120, seed_value=5)
    specs += [Spec(agent="<script>alert(1)</script>", customer="C-&amp;\x1b[31m", amount=12_345_678)]
    seed(db_path, specs)


def write_report(cli: CliFn, target: Path, *args: str) -> str:
    r = cli("audit", "report", "--html", str(target), *args)
    assert r.exit_code == 0, r.output
    assert f"wrote {target}" in r.stdout
    return target.read_text(encoding="utf-8")


def test_every_figure_in_the_html_equals_the_json_reports(cli: CliFn, seeded: None, tmp_path: Path) -> None:
    html = write_report(cli, tmp_path / "report.html")
    check_figures(parse(html).figures, reports_json(cli))


def test_the_period_bounds_the_html_as_it_bounds_the_json(cli: CliFn, seeded: None, tmp_path: Path) -> None:
    html = write_report(cli, tmp_path / "month.html", "--since", "30d", "--until", "5d")
    data = reports_json(cli, "--since", "30d", "--until", "5d")
    check_figures(parse(html).figures, data)
    assert parse(html).figures["summary.cases"] == [str(data["summary"]["cases"])]


def test_the_html_is_self_contained_with_no_script_and_user_text_escaped(
    cli: CliFn, seeded: None, tmp_path: Path
) -> None:
    html = write_report(cli, tmp_path / "report.html")
    page = parse(html)
    assert "script" not in page.tags, "no script element"
    assert all(link.startswith("data:") for link in page.links), page.links
    assert not re.search(r"url\(|@import|https?://(?!www\.w3\.org/2000/svg)", html)
    assert "<svg" in html
    assert "<style>" in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html  # the agent's name, shown as text
    assert "C-&amp;amp;\\x1b[31m" in html  # escaped, its control character made visible
    assert "\x1b" not in html
    # The weekly chart: one bar per week of the summary's weekly spend.
    weeks = as_json(cli("audit", "summary", "--json"))["weekly_spend"]
    assert html.count("<rect class=\"bar\"") >= len(weeks) > 0


def test_an_empty_database_gives_a_report_that_says_so(cli: CliFn, tmp_path: Path) -> None:
    html = write_report(cli, tmp_path / "empty.html")
    assert "No cases in this period." in html
    check_figures(parse(html).figures, reports_json(cli))


def test_the_report_never_replaces_the_database_the_policy_or_an_existing_file(
    cli: CliFn, db_path: Path, policy_path: Path, tmp_path: Path
) -> None:
    cli("case", "list")  # creates the database
    before = db_path.read_bytes()
    for target in (db_path, policy_path, Path(f"{db_path}-wal"), tmp_path / "." / "policies.toml"):
        r = cli("audit", "report", "--html", str(target), "--force")
        assert r.exit_code == 2, r.output
        assert "--html" in r.output
    assert db_path.read_bytes() == before
    existing = tmp_path / "old.html"
    existing.write_text("keep me", encoding="utf-8")
    r = cli("audit", "report", "--html", str(existing))
    assert r.exit_code == 2, r.output
    assert "already exists" in r.output
    assert existing.read_text(encoding="utf-8") == "keep me"
    r = cli("audit", "report", "--html", str(existing), "--force")
    assert r.exit_code == 0, r.output
    assert "<!DOCTYPE html>" in existing.read_text(encoding="utf-8")
    assert not list(tmp_path.glob(".*.part")), "no temporary file left behind"
    r = cli("audit", "report", "--html", str(tmp_path / "no" / "such" / "dir.html"))
    assert r.exit_code == 2, r.output


def test_the_template_ships_with_the_package() -> None:
    from importlib.resources import files

    assert (files("empower_cli.render") / "templates" / "report.html.j2").is_file()
    pyproject = (Path(__file__).resolve().parent.parent / "pyproject.toml").read_text(encoding="utf-8")
    assert '"empower_cli.render" = ["templates/*.j2"]' in pyproject
    assert "Jinja2" in pyproject


# -- in a real browser -------------------------------------------------------------------------


def chromium(*args: str, profile: Path) -> subprocess.CompletedProcess[str]:
    """Run headless Chromium once, in its own process group (killed whole on a timeout)."""
    assert CHROMIUM is not None
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions",
           f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0", *args]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=90)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # helpers that outlive the browser
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def console_messages(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


@needs_chromium
def test_chromium_sees_a_console_error_when_there_is_one(tmp_path: Path) -> None:
    """The check below is meaningful: the same run on a page that logs an error reports it."""
    bad = tmp_path / "bad.html"
    bad.write_text('<!DOCTYPE html><html><body><script>console.error("boom")</script></body></html>', "utf-8")
    run = chromium("--dump-dom", bad.as_uri(), profile=tmp_path / "profile")
    assert any("boom" in line for line in console_messages(run.stderr)), run.stderr[-2000:]


@needs_chromium
def test_the_report_loads_in_chromium_without_errors_and_its_dom_matches_the_json(
    cli: CliFn, seeded: None, tmp_path: Path
) -> None:
    target = tmp_path / "report.html"
    write_report(cli, target)
    run = chromium("--dump-dom", target.as_uri(), profile=tmp_path / "profile")
    assert run.returncode == 0, run.stderr[-2000:]
    assert console_messages(run.stderr) == []
    dom = parse(run.stdout)
    assert "summary.cases" in dom.figures
    check_figures(dom.figures, reports_json(cli))
    shot = tmp_path / "shot.png"
    run = chromium(f"--screenshot={shot}", "--window-size=1024,1600", "--hide-scrollbars", target.as_uri(),
                   profile=tmp_path / "profile")  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    assert console_messages(run.stderr) == []
    assert png_size(shot) == (1024, 1600)
    assert shot.stat().st_size > 30_000, "a blank page compresses to almost nothing"


# -- Markdown speaks like the terminal ----------------------------------------------------------


def test_markdown_uses_the_terminal_labels_and_formatted_values(cli: CliFn, seeded: None) -> None:
    from empower_cli.render.columns import COLUMNS, SUMMARY

    for name in REPORTS:
        md = cli("audit", name, "--format", "markdown").stdout
        terminal = cli("audit", name, "--format", "table").stdout
        labels = [line.label for line in SUMMARY] if name == "summary" else [
            c.label for c in COLUMNS[name] if c.key != "flags"]  # fmt: skip
        for label in labels:
            assert label in md, (name, label)
            assert label in terminal, f"the terminal's {name} table no longer says {label!r}"
        raw = {k for k in ("discretion_rate", "spend_share", "bent_share", "budget_used_share", "retention")
               if k in md.split("\n\n", 1)[-1].splitlines()[0]}  # fmt: skip
        assert raw == set(), f"{name}: raw field names in the Markdown header"
    summary = as_json(cli("audit", "summary", "--json"))
    md = cli("audit", "summary", "--format", "markdown").stdout
    whole, _, cents = summary["discretion_spent"].partition(".")
    assert f"| discretion spent | {int(whole):,}.{cents} | USD |" in md
    assert f"| in policy | {summary['in_policy_cases']:,} | {summary['in_policy_share']:.0%} |" in md
    agents = cli("audit", "agents", "--format", "markdown").stdout
    assert "| agent | cases | discr. | spent |" in agents
    assert "%" in agents


def test_json_says_where_the_report_went(cli: CliFn, seeded: None, tmp_path: Path) -> None:
    target = tmp_path / "r.html"
    r = cli("audit", "report", "--html", str(target), "--since", "30d", "--json")
    assert r.exit_code == 0, r.output
    got = as_json(r)
    assert got["file"] == str(target.resolve())
    assert got["bytes"] == len(target.read_bytes())
    assert got["cases"] == as_json(cli("audit", "summary", "--since", "30d", "--json"))["cases"]
    assert set(got["period"]) == {"since", "until"}
