#!/bin/sh
# Bench set-up: the PyTorch peer (bench/peers/torch_cam.py) runs on Debian's CPU builds of torch and
# torchvision with the system interpreter /usr/bin/python3. Installs them when missing (needs root and apt).
# `npm run bench` runs this when the peer's imports fail; run it yourself with `sh bench/setup.sh`.
set -e
if /usr/bin/python3 -c 'import torch, torchvision' 2>/dev/null; then
  echo "bench/setup.sh: torch and torchvision already importable by /usr/bin/python3"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  SUDO=sudo
else
  SUDO=
fi
$SUDO apt-get update
$SUDO apt-get install -y --no-install-recommends python3-torch python3-torchvision
/usr/bin/python3 -c 'import torch, torchvision; print("bench/setup.sh: torch", torch.__version__, "torchvision", torchvision.__version__)'
