#!/usr/bin/env bash
# Installs Open MPI (Debian's libopenmpi-dev + openmpi-bin, 4.1) for the multi-rank tests of @kstar/collective-mpi
# and @kstar/shard-zero (they start `mpirun --oversubscribe`). Idempotent and quiet; needs root (or sudo).
set -euo pipefail
if command -v mpirun >/dev/null && ldconfig -p | grep -q 'libmpi.so.40'; then
  echo "setup-mpi: Open MPI already installed ($(mpirun --version 2>/dev/null | head -1))"; exit 0
fi
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null
$SUDO apt-get install -y -qq libopenmpi-dev openmpi-bin >/dev/null
echo "setup-mpi: installed $(mpirun --version 2>/dev/null | head -1)"
