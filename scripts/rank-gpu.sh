#!/usr/bin/env bash
# Under mpirun: give this rank exactly one GPU (local rank mod $NGPU), then run the command.
export CUDA_VISIBLE_DEVICES=$(( ${OMPI_COMM_WORLD_LOCAL_RANK:-0} % ${NGPU:-1} ))
exec "$@"
