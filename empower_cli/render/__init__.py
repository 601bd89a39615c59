"""Terminal and report output: tables, panels, CSV and Markdown."""
