#!/usr/bin/env sh
# Installs Python packages from PyPI for the tests: `scripts/pip-install.sh PACKAGE...`.
# Installs pip first where it is missing (Debian's python3-pip), and tells Debian's own Python
# that packages from outside apt are wanted (PEP 668) where it refuses them.
set -eu

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
if ! python3 -m pip --version >/dev/null 2>&1; then
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3-pip >/dev/null
fi
python3 -m pip install --quiet "$@" 2>/dev/null ||
    python3 -m pip install --quiet --break-system-packages "$@"
