#!/usr/bin/env sh
# Installs Debian packages the tests need: `scripts/apt-install.sh PACKAGE...`, through sudo
# when not root. The install-*.sh scripts call it once they found a package missing.
set -eu

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@" >/dev/null
