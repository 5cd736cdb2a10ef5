#!/usr/bin/env sh
# Installs Mesa's software Vulkan driver (lavapipe) when no Vulkan driver is present, so that
# wgfit runs on machines without a GPU. Does nothing where a Vulkan driver is installed.
set -eu

for icd in /usr/share/vulkan/icd.d/*.json /etc/vulkan/icd.d/*.json; do
    # A glob that matches nothing stays as written: only an existing file counts.
    if [ -e "$icd" ]; then
        exit 0
    fi
done
echo "wgfit: no Vulkan driver found; installing lavapipe (apt-get install mesa-vulkan-drivers)" >&2
"$(dirname "$0")/apt-install.sh" mesa-vulkan-drivers
