#!/usr/bin/env sh
# Installs Python packages from PyPI for the tests: `scripts/pip-install.sh PACKAGE...`.
# Installs pip first where it is missing (Debian's python3-pip), and tells Debian's own Python
# that packages from outside apt are wanted (PEP 668) where it refuses them.
set -eu

if ! python3 -m pip --version >/dev/null 2>&1; then
    "$(dirname "$0")/apt-install.sh" python3-pip
fi
python3 -m pip install --quiet "$@" 2>/dev/null ||
    python3 -m pip install --quiet --break-system-packages "$@"
