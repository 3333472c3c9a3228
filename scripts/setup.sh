#!/usr/bin/env bash
# Set up streamcodec on a fresh Debian machine, as root: the system packages it needs, a virtual
# environment in .venv and the package with its development extras. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends \
    libportaudio2 libsndfile1 mosquitto ffmpeg espeak-ng sox ca-certificates >/dev/null
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install -q -e ".[dev]"
