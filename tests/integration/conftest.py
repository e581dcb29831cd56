"""Fixtures for the integration tests: a real HAProxy (``lb``) and real HTTP instances."""

from lbkit import apps, lb

__all__ = ["apps", "lb"]
