"""Logs, metrics and health signals of worker processes."""
