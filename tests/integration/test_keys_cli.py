"""`beanpole keys create|list|revoke` against a real server (issue 10): the secret is printed
by `create` only, `list` shows ids and state, `revoke` refuses an unknown id naming the fix."""

from __future__ import annotations

import json
import re


def test_create_list_and_revoke_a_key(beanpole):
    created = json.loads(beanpole.cli("keys", "create", "--json", "--description", "tf").stdout)
    assert set(created) == {"access_key_id", "secret_access_key"}
    key_id, secret = created["access_key_id"], created["secret_access_key"]
    assert re.fullmatch(r"AKIA[A-Z0-9]{16}", key_id)
    assert len(secret) == 40

    human = beanpole.cli("keys", "create").stdout
    assert secret not in human
    assert re.search(r"Access key id:\s+AKIA[A-Z0-9]{16}", human)
    assert "not shown again" in human

    listed = json.loads(beanpole.cli("keys", "list", "--json").stdout)
    assert listed[0]["access_key_id"] == key_id  # oldest first
    assert len(listed) == 2
    assert listed[0]["description"] == "tf"
    assert not listed[0]["revoked"]
    table = beanpole.cli("keys", "list").stdout
    assert key_id in table
    assert secret not in table
    assert secret not in json.dumps(listed)

    revoked = beanpole.cli("keys", "revoke", key_id)
    assert f"Revoked access key {key_id}" in revoked.stdout
    listed = {
        k["access_key_id"]: k for k in json.loads(beanpole.cli("keys", "list", "--json").stdout)
    }
    assert listed[key_id]["revoked"]
    assert sum(not k["revoked"] for k in listed.values()) == 1


def test_revoking_an_unknown_key_fails_naming_the_list_command(beanpole):
    proc = beanpole.cli("keys", "revoke", "AKIA0000000000000000", check=False)
    assert proc.returncode == 1
    assert proc.stderr.startswith("Error: No access key 'AKIA0000000000000000'.")
    assert "beanpole keys list" in proc.stderr
