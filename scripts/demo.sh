#!/usr/bin/env bash
# Start Beanpole and deploy examples/python with 2 instances; print the URL.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
export PATH="$PWD/.venv/bin:$PATH"
LB_PORT="${LB_PORT:-8080}"
HTTPS_PORT="${HTTPS_PORT:-8443}"

beanpole server start --lb-port "$LB_PORT" --https-port "$HTTPS_PORT"
if beanpole status demo >/dev/null 2>&1; then
  beanpole deploy demo --source examples/python
else
  beanpole create demo --app demo --source examples/python --scale 2
fi
url=$(beanpole status demo --json | .venv/bin/python -c 'import json,sys; print(json.load(sys.stdin)["url"])')
code=$(curl -s -o /dev/null -w '%{http_code}' "$url/")
console=$(beanpole server status --json | .venv/bin/python -c 'import json,sys; print(json.load(sys.stdin)["console_url"])')
echo
echo "Demo environment is Ready: $url  (HTTP $code)"
echo "Web console: $console"
echo "  sign in with the API token: $(cat "$(beanpole server status --json | .venv/bin/python -c 'import json,sys; print(json.load(sys.stdin)["token_file"])')")"
echo "  (or add a user with a password: .venv/bin/beanpole user add NAME)"
# The example as a zip, for the console's Create environment page (it takes zips).
mkdir -p build
.venv/bin/python -c 'import shutil; shutil.make_archive("build/demo-python", "zip", "examples/python")'
echo "  to create an environment from the console, upload $PWD/build/demo-python.zip"
