"""Looking at a stored dataset: ``newswatch sql`` and ``newswatch report`` (DuckDB views)."""
