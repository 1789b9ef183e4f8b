"""Sandboxes: where agent code runs. Knows nothing about models, jobs or the UI."""
