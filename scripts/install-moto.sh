#!/usr/bin/env sh
# Installs the S3-compatible server the object-storage tests start (`moto_server`, from the
# Python package moto) when it is missing. Does nothing where it is on the PATH.
set -eu

if command -v moto_server >/dev/null 2>&1; then
    exit 0
fi
echo "wgfit: moto_server not found; installing it (pip install 'moto[server]')" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
if ! python3 -m pip --version >/dev/null 2>&1; then
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3-pip >/dev/null
fi
# Debian's own Python refuses packages outside apt unless told it may (PEP 668).
python3 -m pip install --quiet 'moto[server]' 2>/dev/null ||
    python3 -m pip install --quiet --break-system-packages 'moto[server]'
