"""Deployments, pure: the plan of each policy."""
