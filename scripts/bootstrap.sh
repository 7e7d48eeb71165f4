#!/usr/bin/env bash
# Installs what a fresh Debian/Ubuntu machine lacks for development: hatch (from PyPI) and
# redis-server (from apt, used by the tests and by the CLI's embedded Redis). Idempotent.
set -euo pipefail

HATCH_VERSION="1.18.2"

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    echo "bootstrap: need root to run: $*" >&2; return 1
  fi
}

apt_install() {
  if [ -z "${_APT_UPDATED:-}" ]; then
    as_root apt-get update -qq
    _APT_UPDATED=1
  fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

if ! command -v redis-server >/dev/null; then
  echo "bootstrap: installing redis-server (apt)" >&2
  apt_install redis-server
fi

if ! python3 -m hatch --version 2>/dev/null | grep -q "$HATCH_VERSION"; then
  echo "bootstrap: installing hatch $HATCH_VERSION (pip)" >&2
  python3 -m pip install -q --disable-pip-version-check "hatch==$HATCH_VERSION" \
    || python3 -m pip install -q --disable-pip-version-check --break-system-packages "hatch==$HATCH_VERSION"
fi
