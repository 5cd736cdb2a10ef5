#!/usr/bin/env sh
# Installs the S3-compatible server the object-storage tests start (`moto_server`, from the
# Python package moto) when it is missing. Does nothing where it is on the PATH.
set -eu

if command -v moto_server >/dev/null 2>&1; then
    exit 0
fi
echo "wgfit: moto_server not found; installing it (pip install 'moto[server]')" >&2
"$(dirname "$0")/pip-install.sh" 'moto[server]'
