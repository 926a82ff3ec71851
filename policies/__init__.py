"""Policy pack for the Patroni + Citus cluster (see README.md). Importable as `policies` for tests."""
