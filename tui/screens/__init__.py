"""The TUI's screens: the jobs list, one job, and the dialogs over them."""
