"""The command line: `cli/main.py` builds the Typer app and is the console script's entry
point; each command group lives in its own module and registers its commands when asked."""
