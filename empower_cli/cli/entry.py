"""The console script `empower`: answers `empower --version` without importing Typer, and
hands every other command line to the Typer app (cli/main.py).
"""

import sys


def main() -> None:
    """Console-script entry point."""
    if sys.argv[1:] == ["--version"]:
        from empower_cli import __version__

        try:
            sys.stdout.write(f"empower {__version__}\n")
            sys.stdout.flush()
        except BrokenPipeError:  # `empower --version | head -0`: the reader wanted nothing
            stdout_to_devnull()
        return
    from empower_cli.cli.main import main as run

    run()


def stdout_to_devnull() -> None:
    """Point file descriptor 1 at /dev/null, so that Python's last flush of a closed pipe
    (`| head -1`) at exit writes nowhere instead of printing "Exception ignored ..."."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # no real descriptor (a test runner's buffer): nothing to flush later
        pass
