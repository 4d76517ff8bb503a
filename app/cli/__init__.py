"""The `ragtune` command line."""
