#!/usr/bin/env sh
# Installs Open MPI and what the `mpi` crate's build needs (libclang for its bindings), for
# the data-parallel tests (docs/MPI.md). Does nothing where mpirun, mpicc and libclang exist.
set -eu

if command -v mpirun >/dev/null 2>&1 && command -v mpicc >/dev/null 2>&1 &&
    ls /usr/lib/llvm-*/lib/libclang*.so* >/dev/null 2>&1; then
    exit 0
fi
echo "wgfit: installing Open MPI and libclang (apt-get install openmpi-bin libopenmpi-dev libclang-dev)" >&2
"$(dirname "$0")/apt-install.sh" openmpi-bin libopenmpi-dev libclang-dev
