"""SQLite persistence with named migrations."""
