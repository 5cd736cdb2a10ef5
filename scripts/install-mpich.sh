#!/usr/bin/env sh
# Installs MPICH beside Open MPI (Debian's mpich and libmpich-dev), for the data-parallel tests
# built against it (`MPICC=mpicc.mpich`, launched by `WGFIT_MPIRUN=mpirun.mpich`; docs/MPI.md).
# Open MPI stays the default `mpirun` and `mpicc`. Does nothing where MPICH is installed.
set -eu

if command -v mpirun.mpich >/dev/null 2>&1 && command -v mpicc.mpich >/dev/null 2>&1; then
    exit 0
fi
echo "wgfit: installing MPICH (apt-get install mpich libmpich-dev)" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq mpich libmpich-dev >/dev/null
