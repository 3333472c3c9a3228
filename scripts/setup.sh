#!/usr/bin/env bash
# Set up streamcodec on a fresh Debian machine, as root: the system packages it needs, a virtual
# environment in .venv and the package with its development extras. Safe to run again.
#   bash scripts/setup.sh              # library, CLI and tests
#   bash scripts/setup.sh bench train  # also the benchmark baselines/metrics and the corpus TTS voices
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
apt=(python3 python3-venv libportaudio2 libsndfile1 mosquitto ffmpeg espeak-ng sox openssl ca-certificates
     build-essential cmake python3-dev libfftw3-dev liblapack-dev libblas-dev)  # these build ltfatpy (dev extra) from source
extras=dev
for extra in "$@"; do
    case "$extra" in
        bench) apt+=(libopus0 speex); extras+=",bench" ;;
        train) apt+=(flite festival festvox-kallpc16k festvox-kdlpc16k); extras+=",train" ;;
        *) echo "unknown extra: $extra (use bench, train)" >&2; exit 2 ;;
    esac
done
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${apt[@]}" >/dev/null
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install -q -e ".[$extras]"
