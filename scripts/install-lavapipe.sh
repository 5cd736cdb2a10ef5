#!/usr/bin/env sh
# Installs Mesa's software Vulkan driver (lavapipe) when no Vulkan driver is present, so that
# wgfit runs on machines without a GPU. Does nothing where a Vulkan driver is installed.
set -eu

if ls /usr/share/vulkan/icd.d/*.json /etc/vulkan/icd.d/*.json >/dev/null 2>&1; then
    exit 0
fi
echo "wgfit: no Vulkan driver found; installing lavapipe (apt-get install mesa-vulkan-drivers)" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq mesa-vulkan-drivers >/dev/null
