"""Bench plans: many boards and sessions from one TOML plan, each session in its own worker process."""
