"""Makes the project importable as the Pulumi runtime sees it (program directory on sys.path)."""
