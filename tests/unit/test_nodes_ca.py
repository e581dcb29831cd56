"""`beanpole nodes ca` (issue 13 part 4): the registry's CA is made from the home's config
without a server, kept across calls, and printed with where each node installs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from beanpole.home import Home, ServerConfig


def nodes_ca(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BEANPOLE_")}
    return subprocess.run(
        [sys.executable, "-m", "beanpole.cli.main", "nodes", "ca", *args],
        env={**env, "BEANPOLE_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_ca_is_made_once_from_the_config_and_its_install_commands_name_the_registry(
    tmp_path,
):
    home = Home(tmp_path / "home")
    home.save_config(ServerConfig(registry_address="10.1.2.3", registry_port=5999))

    first = nodes_ca(home.root, "--json")
    assert first.returncode == 0, first.stderr
    answer = json.loads(first.stdout)
    ca_file = home.root / "registry" / "ca.crt"
    assert answer == {"ca_file": str(ca_file), "registry": "10.1.2.3:5999"}
    made = ca_file.read_bytes()
    assert made.startswith(b"-----BEGIN CERTIFICATE-----")
    assert (home.root / "registry" / "ca.key").stat().st_mode & 0o077 == 0

    shown = nodes_ca(home.root)
    assert shown.returncode == 0, shown.stderr
    assert ca_file.read_bytes() == made  # the nodes' copies stay valid
    assert f"Registry CA certificate: {ca_file}" in shown.stdout
    assert "cp ca.crt /etc/docker/certs.d/10.1.2.3:5999/ca.crt" in shown.stdout
    # no server answers: the commands name NODE
    assert (
        "ssh root@NODE 'mkdir -p /etc/docker/certs.d/10.1.2.3:5999 && cat > "
        f"/etc/docker/certs.d/10.1.2.3:5999/ca.crt' < {ca_file}"
    ) in shown.stdout


def test_a_registry_address_that_is_not_an_ip_address_is_refused_naming_the_fix(tmp_path):
    home = Home(tmp_path / "home")
    home.save_config(ServerConfig(registry_address="registry.example"))
    refused = nodes_ca(home.root)
    assert refused.returncode == 1
    assert refused.stderr.startswith("Error: Could not make the registry's CA: The registry")
    assert "'registry.example' is not an IP address" in refused.stderr
    assert not (home.root / "registry" / "ca.crt").exists()
