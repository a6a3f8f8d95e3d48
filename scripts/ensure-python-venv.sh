#!/usr/bin/env bash
# Makes the virtual environment of the Python test peers (.venv-peers in the checkout) with the
# pinned packages of test/peers/requirements.txt from PyPI. Runs after ensure-system-deps.sh
# (python3-venv). It does nothing when the environment already holds exactly those pins.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
venv="$root/.venv-peers"
req="$root/test/peers/requirements.txt"
stamp="$venv/.requirements.sha256"
want="$(sha256sum "$req" | cut -d' ' -f1)"
if [ -x "$venv/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
py="$(command -v /usr/bin/python3 || command -v python3)"
echo "making the Python peers' virtual environment $venv" >&2
rm -rf "$venv"
"$py" -m venv "$venv"
"$venv/bin/pip" install -q --disable-pip-version-check --no-input -r "$req"
echo "$want" >"$stamp"
