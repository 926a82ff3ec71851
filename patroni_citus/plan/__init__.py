"""The plan: pure functions from validated settings to plain records (names, addresses, files,
commands, labels) that the resources declare as they are. Nothing here imports Pulumi
(tests/unit/test_layers.py): every decision is testable without an engine or mocks."""
