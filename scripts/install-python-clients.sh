#!/usr/bin/env sh
# Installs the Python clients that check wgfit's model files (tests/keras_files.rs,
# tests/onnx_torch_files.rs, tests/keras_round_trip.rs): Keras 3 on JAX (CPU), h5py,
# onnxruntime and safetensors, and pytest, ipykernel and jupyter_client (a notebook kernel
# the progress test drives) for the Python package's tests (python/tests),
# from PyPI. Does nothing where they all import.
set -eu

if KERAS_BACKEND=jax python3 -c "import keras, jax, h5py, onnxruntime, safetensors, pytest, ipykernel, jupyter_client" >/dev/null 2>&1; then
    exit 0
fi
echo "wgfit: installing the Python clients the interchange tests use (keras, jax, h5py, onnxruntime, safetensors, pytest, ipykernel, jupyter_client)" >&2
"$(dirname "$0")/pip-install.sh" 'keras>=3' 'jax[cpu]' h5py onnxruntime safetensors numpy pytest ipykernel jupyter_client
