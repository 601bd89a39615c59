"""What a failed command said on stderr, as a person reads it: under --json the failure is one
line of JSON (`{"error": {"code", "message", "exit_code"}}`, issue 14), otherwise `error: …`."""

from __future__ import annotations

import json

from typer.testing import Result


def said(result: Result) -> str:
    """stderr with a JSON failure turned back into its `error: MESSAGE` line (problems indented)."""
    return said_text(result.stderr)


def said_text(stderr: str) -> str:
    """`said` of stderr's text."""
    lines = []
    for line in stderr.splitlines():
        if line.startswith('{"error": '):
            error = json.loads(line)["error"]
            lines.append(f"error: {error['message']}")
            lines += [f"  {p}" for p in error.get("problems", ())]
        else:
            lines.append(line)
    return "".join(line + "\n" for line in lines)
