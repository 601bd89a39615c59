"""The console script `empower`: answers `empower --version` without importing Typer, and
hands every other command line to the Typer app (cli/main.py).
"""

import gc
import sys


def main() -> None:
    """Console-script entry point."""
    pause_collector()
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


_collector_paused = False


def pause_collector() -> None:
    """Start-up (importing Typer and ours, building the commands) allocates some 100,000
    objects that live as long as the process and leaves no garbage in cycles: the cyclic
    collector would run ~45 times and find nothing (~4 ms of a decision's ~100). It stays
    off until the command runs (`resume_collector`, called by `cli.common.Root.invoke`)."""
    global _collector_paused
    if gc.isenabled():
        gc.disable()
        _collector_paused = True


def resume_collector() -> None:
    """Start-up is over: what it built is moved out of the collector's sight (`gc.freeze`,
    which also spares a long import or report rescanning it) and the collector runs again."""
    global _collector_paused
    if _collector_paused:
        _collector_paused = False
        gc.freeze()
        gc.enable()


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
