"""The image registry's CA, for `beanpole nodes ca`: made if missing, then named.

Every node of a swarm pulls images from the registry Beanpole runs, over TLS with a
certificate from a CA Beanpole makes (`adapters.registry`); each node must trust that CA
before the server first starts instances there. The CLI imports no adapter (docs/
architecture.md, Layers), so it runs this in a child process, as it runs
`beanpole.server.dataplane`::

    python -m beanpole.server.registry_ca   # {"ca_file": "/…/registry/ca.crt",
                                             #  "registry": "10.0.0.5:5000"}

It reads ``BEANPOLE_HOME``'s config (`beanpole server start --registry-address/--registry-port`)
and needs no server running. A failure prints ``Error: …`` on stderr and exits 1.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path

from beanpole.adapters.registry import Registry
from beanpole.adapters.runtime.swarm import registry_address
from beanpole.core.errors import BeanpoleError, InvalidInput
from beanpole.home import Home

USAGE = "usage: python -m beanpole.server.registry_ca"


def registry_ca(home: Home) -> tuple[Path, str]:
    """The CA certificate's path (made when missing) and the registry's ``host:port``, as
    the server's `choose_runtime` makes its registry."""
    config = home.load_config()
    if config.registry:
        raise InvalidInput(
            f"This server's images go to the registry you named ({config.registry}), not "
            "one Beanpole runs: there is no CA of Beanpole's to install. Each node must be "
            "able to pull from it."
        )
    address = registry_address(config.docker_host or None, config)
    home.root.mkdir(parents=True, exist_ok=True, mode=0o700)
    registry = Registry(home.root / "registry", address=address, port=config.registry_port)
    return registry.ensure_ca(), registry.host


def main(argv: Sequence[str] | None = None) -> int:
    if list(sys.argv[1:] if argv is None else argv):
        print(USAGE, file=sys.stderr)
        return 2
    try:
        ca_file, host = registry_ca(Home.default())
    except BeanpoleError as exc:
        print(f"Error: {exc.message}", file=sys.stderr)
        return 1
    print(json.dumps({"ca_file": str(ca_file), "registry": host}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
