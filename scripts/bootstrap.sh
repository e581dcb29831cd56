#!/usr/bin/env bash
# Install what Beanpole needs on a fresh Debian machine, idempotently:
# HAProxy, Node.js, wrk (the load-balancer benchmark's load generator), iproute2 and
# nftables (an instance's own network namespace, when Beanpole runs as root) and chromium
# (the console's browser tests) from Debian, Beanpole itself (and its tools) in .venv, the
# web console's libraries (Preact, htm, uPlot) from npm, and the eb CLI in .venv-ebcli.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v haproxy >/dev/null 2>&1 || need+=(haproxy)
command -v node >/dev/null 2>&1 || need+=(nodejs)
command -v npm >/dev/null 2>&1 || need+=(npm)
command -v curl >/dev/null 2>&1 || need+=(curl)
command -v wrk >/dev/null 2>&1 || need+=(wrk)
command -v ip >/dev/null 2>&1 || need+=(iproute2)
command -v nft >/dev/null 2>&1 || need+=(nftables)
# The web console's browser tests drive Debian's chromium through Playwright (no browser is
# downloaded: Playwright is pointed at /usr/bin/chromium).
command -v chromium >/dev/null 2>&1 || need+=(chromium)
if [ ${#need[@]} -gt 0 ]; then
  echo "bootstrap: installing ${need[*]} from Debian's packages"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  echo "bootstrap: creating .venv"
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "bootstrap: installing Beanpole into .venv"
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null
  .venv/bin/python -m pip install -q -e '.[dev]'
  touch "$stamp"
fi

# The web console's libraries, at the versions package-lock.json pins; served by the server
# from src/beanpole/console/node_modules (nothing is fetched by a browser from elsewhere).
console=src/beanpole/console
if [ ! -f "$console/node_modules/.package-lock.json" ] || \
   [ "$console/package-lock.json" -nt "$console/node_modules/.package-lock.json" ]; then
  echo "bootstrap: installing the web console's libraries (npm ci)"
  (cd "$console" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi

# The eb CLI (awsebcli pins its own botocore) in a virtualenv of its own, for the tests that
# drive it against Beanpole's Elastic Beanstalk endpoint (tests/e2e/test_eb_cli.py).
if [ ! -x .venv-ebcli/bin/eb ]; then
  echo "bootstrap: installing the eb CLI (awsebcli) into .venv-ebcli"
  "$PYTHON" -m venv .venv-ebcli
  .venv-ebcli/bin/python -m pip install -q --upgrade pip >/dev/null
  .venv-ebcli/bin/pip install -q awsebcli
fi
