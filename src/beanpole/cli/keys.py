"""`beanpole keys create|list|revoke`: the access keys AWS clients sign requests with."""

from __future__ import annotations

import json
import time

import click
from rich.table import Table
from rich.text import Text

from beanpole.cli.console import out
from beanpole.client import Client


def _when(at: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(at)) if at is not None else "-"


@click.group()
def keys() -> None:
    """Access keys for the Elastic Beanstalk and S3 API (Terraform, boto3, the eb CLI)."""


@keys.command("create")
@click.option("--description", default="", help="What the key is for (up to 200 characters).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def create(description: str, as_json: bool) -> None:
    """Create an access key and print its id and secret.

    The secret is shown this once: `beanpole keys list` never shows it. Give both to the
    client as AWS credentials (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY).
    """
    key = Client.discover().create_key(description)
    if as_json:
        data = {"access_key_id": key.access_key_id, "secret_access_key": key.secret_access_key}
        click.echo(json.dumps(data, indent=2))
        return
    out.print(f"Access key id:     {key.access_key_id}", markup=False)
    out.print(f"Secret access key: {key.secret_access_key}", markup=False)
    out.print(
        "Store the secret now: it is not shown again (beanpole keys list shows ids only). "
        "Revoke the key with: beanpole keys revoke " + key.access_key_id,
        style="yellow",
        markup=False,
    )


@keys.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_keys(as_json: bool) -> None:
    """List the access keys, revoked ones too (never their secrets)."""
    rows = Client.discover().keys()
    if as_json:
        click.echo(json.dumps([r.model_dump(mode="json") for r in rows], indent=2))
        return
    table = Table("access key id", "status", "created", "last used", "description")
    for r in rows:
        table.add_row(
            r.access_key_id,
            Text("revoked", style="red") if r.revoked else Text("active", style="green"),
            _when(r.created_at),
            _when(r.last_used_at),
            Text(r.description),
        )
    out.print(table)


@keys.command("revoke")
@click.argument("key_id")
def revoke(key_id: str) -> None:
    """Revoke the access key KEY_ID: requests signed with it are refused from now on."""
    revoked = Client.discover().revoke_key(key_id)
    out.print(
        f"Revoked access key {revoked.access_key_id}; requests signed with it are refused.",
        markup=False,
    )
