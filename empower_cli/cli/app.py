"""The complete `empower` app, every group's commands loaded, for tests and documentation
walkers: `from empower_cli.cli.app import app` (the console script builds only the group it runs).
"""

from empower_cli.cli.main import build_app

app = build_app()
