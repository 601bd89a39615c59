"""Batch import of history: read files, validate rows on worker processes, write chunks."""
