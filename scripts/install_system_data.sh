#!/usr/bin/env bash
# Fashion-MNIST from Debian (the demo falls back to scikit-learn's digits without it).
set -u
dir=/usr/share/datasets/fashion-mnist
if [ -d "$dir" ]; then exit 0; fi
if [ "$(id -u)" != 0 ]; then
  echo "note: Fashion-MNIST is not installed; as root run: apt-get install -y dataset-fashion-mnist" >&2
  echo "      (make demo uses scikit-learn's digits until then)" >&2
  exit 0
fi
echo "installing dataset-fashion-mnist (Debian)"
if ! apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1; then
  apt-get update -q >/dev/null 2>&1 && apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1 \
    || echo "warning: apt-get could not install dataset-fashion-mnist; make demo will use scikit-learn's digits" >&2
fi
exit 0
