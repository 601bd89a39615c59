"""The pure core: models, money, time, errors, identifiers and text, the evaluation.

Imports nothing above it: no store, services, cli, render, rich, typer or sqlite3."""
