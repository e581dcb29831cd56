#!/usr/bin/env bash
# Install what Beanpole needs on a fresh Debian machine, idempotently:
# HAProxy, Node.js, wrk (the load-balancer benchmark's load generator), iproute2 and
# nftables (an instance's own network namespace, when Beanpole runs as root) and chromium
# (the console's browser tests) from Debian, Beanpole itself (and its tools) in .venv, the
# web console's libraries (Preact, htm, uPlot) from npm, and the eb CLI in .venv-ebcli.
#
# --docker: also Docker's engine (docker.io, from Debian), started when it does not run, for
# the Docker runtime (`beanpole server start --runtime docker`, docs/docker.md), and the image
# registry (docker-registry) a Docker Swarm's nodes pull from. `make test`
# asks for it, so the Docker tests run; where the engine cannot start here, they are skipped
# with the reason.
set -euo pipefail
cd "$(dirname "$0")/.."

with_docker=0
for arg in "$@"; do
  case "$arg" in
    --docker) with_docker=1 ;;
    *) echo "usage: scripts/bootstrap.sh [--docker]" >&2; exit 2 ;;
  esac
done

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
if [ "$with_docker" = 1 ]; then
  command -v dockerd >/dev/null 2>&1 || need+=(docker.io)
  command -v debootstrap >/dev/null 2>&1 || need+=(debootstrap)
  # The image registry a Swarm's nodes pull versions' images from (adapters/registry.py), and
  # busybox-static, which the Swarm test bed script needs.
  command -v docker-registry >/dev/null 2>&1 || need+=(docker-registry)
  test -x /bin/busybox || need+=(busybox-static)
fi
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

# Docker's engine, started here when it is installed but not running (there is no init
# system to do it on these machines; where there is one, it has started it already).
if [ "$with_docker" = 1 ]; then
  engine_up() { .venv/bin/python -c 'import sys; from beanpole.adapters.runtime import docker; why = docker.unavailable(); print(why or "", file=sys.stderr); sys.exit(why is not None)' 2>/dev/null; }
  if ! engine_up; then
    if [ "$(id -u)" -eq 0 ] && command -v dockerd >/dev/null 2>&1; then
      echo "bootstrap: starting Docker's engine (dockerd; its log: /var/log/beanpole-dockerd.log)"
      setsid dockerd </dev/null >>/var/log/beanpole-dockerd.log 2>&1 &
      for _ in $(seq 1 60); do engine_up && break; sleep 0.5; done
    fi
    engine_up || echo "bootstrap: Docker's engine is not running here; the Docker tests will be skipped (see /var/log/beanpole-dockerd.log)" >&2
  fi
  # A Debian base image made from Debian's packages (no registry is needed or reached):
  # beanpole/debian:bookworm, with python3, for Dockerfiles to start FROM (docs/docker.md).
  if engine_up && ! docker image inspect beanpole/debian:bookworm >/dev/null 2>&1 && [ "$(id -u)" -eq 0 ]; then
    echo "bootstrap: making the base image beanpole/debian:bookworm from Debian's packages (debootstrap, about a minute)"
    rootfs=$(mktemp -d /var/tmp/beanpole-rootfs.XXXXXX)
    if debootstrap --variant=minbase --include=python3,ca-certificates bookworm "$rootfs" http://deb.debian.org/debian >"$rootfs.log" 2>&1; then
      rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
      tar -C "$rootfs" -c . | docker import - beanpole/debian:bookworm >/dev/null
      rm -f "$rootfs.log"
    else
      echo "bootstrap: debootstrap failed (see $rootfs.log); the tests that build Dockerfiles will be skipped" >&2
    fi
    rm -rf "$rootfs"
  fi
fi
