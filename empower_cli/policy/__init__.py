"""Loading and validating policies.toml: the loader, problem locations, where the file is."""
