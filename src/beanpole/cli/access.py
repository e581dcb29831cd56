"""`beanpole tokens create|list|revoke` and `beanpole audit`: who may call the API, and
what they did with it (`docs/access.md`)."""

from __future__ import annotations

import json
import time

import click
from rich.table import Table
from rich.text import Text

from beanpole.cli.console import out
from beanpole.client import Client


def _when(at: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(at)) if at is not None else "-"


@click.group()
def tokens() -> None:
    """API tokens with a role (read, deploy, admin), maybe limited to one application."""


@tokens.command("create")
@click.option(
    "--role",
    type=click.Choice(["read", "deploy", "admin"]),
    required=True,
    help="read: look only; deploy: also change applications and environments; admin: "
    "also tokens, certificates, keys, users and the audit log.",
)
@click.option("--app", "application", help="Limit the token to this application.")
@click.option("--name", default="", help="What the token is for (up to 64 characters).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def create(role: str, application: str | None, name: str, as_json: bool) -> None:
    """Create a token and print it (this once: the server keeps only its hash).

    Use it as BEANPOLE_TOKEN for the CLI, or as `Authorization: Bearer TOKEN`.
    """
    made = Client.discover().create_token(role, application, name)
    if as_json:
        click.echo(json.dumps(made.model_dump(mode="json"), indent=2))
        return
    scope = f" for application {made.application}" if made.application else ""
    out.print(f"Token {made.id} ({made.role}{scope}):", markup=False)
    out.print(made.token, markup=False)
    out.print(
        "Store it now: it is not shown again. Use it as BEANPOLE_TOKEN; revoke it with: "
        f"beanpole tokens revoke {made.id}",
        style="yellow",
        markup=False,
    )


@tokens.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_tokens(as_json: bool) -> None:
    """List the tokens, revoked ones too (never the tokens themselves)."""
    rows = Client.discover().tokens()
    if as_json:
        click.echo(json.dumps([r.model_dump(mode="json") for r in rows], indent=2))
        return
    table = Table("id", "role", "application", "status", "created", "last used", "name")
    for r in rows:
        table.add_row(
            r.id,
            r.role,
            r.application or "(all)",
            Text("revoked", style="red") if r.revoked else Text("active", style="green"),
            _when(r.created_at),
            _when(r.last_used_at),
            Text(r.name),
        )
    out.print(table)


@tokens.command("revoke")
@click.argument("token_id")
def revoke(token_id: str) -> None:
    """Revoke the token TOKEN_ID: requests with it are refused from now on."""
    revoked = Client.discover().revoke_token(token_id)
    out.print(f"Revoked token {revoked.id}; requests with it are refused.", markup=False)


@click.command()
@click.option("--app", "application", help="Only what was done to this application.")
@click.option("-n", "--limit", default=50, show_default=True, help="The newest N entries.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def audit(application: str | None, limit: int, as_json: bool) -> None:
    """Who changed what, when and from where (and every refused credential)."""
    view = Client.discover().audit(application, limit)
    if as_json:
        click.echo(json.dumps(view.model_dump(mode="json"), indent=2))
        return
    table = Table("time", "who", "action", "status", "application", "from")
    for e in view.entries:
        table.add_row(
            _when(e.time),
            Text(e.actor + (f" [{e.role}]" if e.role else "")),
            Text(e.action),
            Text(str(e.status), style="green" if e.status < 400 else "red"),
            e.application or "-",
            Text(e.source),
        )
    out.print(table)
