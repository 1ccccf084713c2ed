"""Runtime test fixtures: the tiny models live in tests/conftest.py (shared with tests/robust)."""
