"""The terminal every command prints to.

Its own module so that command modules (health, server, …) and the group in `main` share
one console without importing each other.
"""

from __future__ import annotations

from rich.console import Console

out = Console(highlight=False, soft_wrap=True)
