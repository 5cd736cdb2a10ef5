#!/usr/bin/env sh
# Installs the Python clients that check wgfit's model files (tests/keras_files.rs,
# tests/onnx_torch_files.rs, tests/keras_round_trip.rs): Keras 3 on JAX (CPU), h5py,
# onnxruntime and safetensors, and pytest for the Python package's tests (python/tests),
# from PyPI. Does nothing where they all import.
set -eu

MODULES="keras jax h5py onnxruntime safetensors pytest"
if KERAS_BACKEND=jax python3 -c "import keras, jax, h5py, onnxruntime, safetensors, pytest" >/dev/null 2>&1; then
    exit 0
fi
echo "wgfit: installing the Python clients the interchange tests use ($MODULES)" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
if ! python3 -m pip --version >/dev/null 2>&1; then
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3-pip >/dev/null
fi
# Keras 3 (its .weights.h5 and .keras formats), JAX as its CPU backend.
# Debian's own Python refuses packages outside apt unless told it may (PEP 668).
python3 -m pip install --quiet 'keras>=3' 'jax[cpu]' h5py onnxruntime safetensors numpy pytest 2>/dev/null ||
    python3 -m pip install --quiet --break-system-packages 'keras>=3' 'jax[cpu]' h5py onnxruntime safetensors numpy pytest
