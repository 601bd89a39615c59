"""Use cases, one transaction each: cases, workflow steps, governance, identity, simulate."""
