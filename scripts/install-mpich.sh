#!/usr/bin/env sh
# Installs MPICH beside Open MPI (Debian's mpich and libmpich-dev), for the data-parallel tests
# built against it (`MPICC=mpicc.mpich`, launched by `WGFIT_MPIRUN=mpirun.mpich`; docs/MPI.md).
# Open MPI stays the default `mpirun` and `mpicc`. Does nothing where MPICH is installed.
set -eu

if command -v mpirun.mpich >/dev/null 2>&1 && command -v mpicc.mpich >/dev/null 2>&1; then
    exit 0
fi
echo "wgfit: installing MPICH (apt-get install mpich libmpich-dev)" >&2
"$(dirname "$0")/apt-install.sh" mpich libmpich-dev
