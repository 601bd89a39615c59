"""Supervisor reports and the check of the log and the tables against it."""
