"""`beanpole user add|list|remove`: who may sign in to the web console with a password."""

from __future__ import annotations

import json
import sys
import time

import click
from rich.table import Table

from beanpole.cli.console import out
from beanpole.client import Client


def _when(at: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(at)) if at is not None else "-"


@click.group()
def user() -> None:
    """Web console users (the console also takes the API token)."""


@user.command("add")
@click.argument("name")
@click.option(
    "--password-stdin",
    is_flag=True,
    help="Read the password from standard input (one line) instead of asking for it.",
)
def add(name: str, password_stdin: bool) -> None:
    """Add a user who signs in to the web console with NAME and a password.

    The password is asked for twice (at least 8 characters) and stored as an Argon2id hash.
    """
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    added = Client.discover().add_user(name, password)
    out.print(
        f"User {added.name} added: sign in to the console with this name and password.",
        markup=False,
    )


@user.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_users(as_json: bool) -> None:
    """List the console's users."""
    rows = Client.discover().users()
    if as_json:
        click.echo(json.dumps([r.model_dump(mode="json") for r in rows], indent=2))
        return
    table = Table("user", "created", "last sign-in")
    for r in rows:
        table.add_row(r.name, _when(r.created_at), _when(r.last_sign_in_at))
    out.print(table)


@user.command("remove")
@click.argument("name")
def remove(name: str) -> None:
    """Remove a user and end their console sessions."""
    Client.discover().remove_user(name)
    out.print(f"User {name} removed.", markup=False)
