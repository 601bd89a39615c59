"""Run the CLI as `python -m empower_cli`."""

from empower_cli.cli.entry import main

main()
