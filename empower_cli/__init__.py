"""empower: frontline decision support for fair, pro-customer exceptions.

The package is split into a pure core (money, models, policy, evaluate) and a thin
shell (cli, store, services); see the README for the layout.
"""

__version__ = "0.1.0"
