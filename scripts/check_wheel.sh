#!/usr/bin/env bash
# The package as a user gets it: build the wheel, install it (not editable) into a fresh venv with
# no torch (nor scipy), report the installed size, and run encode, decode, info, a send/recv over a real
# Mosquitto and the demo from it, outside the checkout (the models must come from the wheel).
#   bash scripts/check_wheel.sh      # after scripts/setup.sh (uses .venv to build, Debian's mosquitto)
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
"$repo/.venv/bin/python" -m pip wheel --no-deps --no-build-isolation -q -w "$work/dist" "$repo"
python3 -m venv "$work/venv"
"$work/venv/bin/pip" install -q "$work"/dist/streamcodec-*.whl
bin="$work/venv/bin"
cd "$work"
for heavy in torch scipy; do  # training and reference-only dependencies
    if "$bin/python" -c "import $heavy" 2>/dev/null; then echo "check_wheel: $heavy came with the wheel" >&2; exit 1; fi
done
echo "check_wheel: installed venv $(du -sm "$work/venv" | cut -f1) MB ($(du -sm "$work"/venv/lib/python3*/site-packages/{numba,llvmlite} | awk '{s+=$1} END {print s}') MB of it numba + llvmlite)"
sample="$("$bin/python" -c 'from streamcodec.stream.app import sample_path; print(sample_path())')"
case "$sample" in "$repo"*) echo "check_wheel: the sample came from the checkout, not the wheel" >&2; exit 1 ;; esac
"$bin/streamcodec" --version
"$bin/streamcodec" encode "$sample" sample.scf --iters 4
"$bin/streamcodec" info sample.scf
"$bin/streamcodec" decode sample.scf sample.wav
"$bin/python" -c 'import numpy as np; from PIL import Image; y, x = np.mgrid[:200, :300]; Image.fromarray(np.stack([x % 256, y, (x + y) % 256], -1).astype(np.uint8)).save("photo.png")'
"$bin/streamcodec" image compress photo.png photo.sci --model image-rd --bpp 0.5  # numpy only
"$bin/streamcodec" info photo.sci
"$bin/streamcodec" image decompress photo.sci photo-out.png
if "$bin/streamcodec" image compress photo.png x.sci 2> image.err; then
    echo "check_wheel: the image-photo model ran without torch" >&2; exit 1
fi
grep -q "streamcodec\[image\]" image.err  # says which extra to install
port="$("$bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
mosquitto -p "$port" > mosquitto.log 2>&1 &
sleep 1
"$bin/streamcodec" recv --broker "mqtt://127.0.0.1:$port" --channel wheel --out rx > recv.log 2>&1 &
recv=$!
sleep 3
"$bin/streamcodec" send --file "$sample" --fast --iters 4 --broker "mqtt://127.0.0.1:$port" --channel wheel --node n1
"$bin/python" - <<'EOF'
import glob, time, soundfile as sf
deadline = time.monotonic() + 60
while time.monotonic() < deadline:  # the receiver writes as frames come; the sample is 13.15 s
    wavs = glob.glob("rx/*.wav")
    if wavs and sf.info(wavs[0]).duration > 13:
        break
    time.sleep(0.5)
(wav,) = glob.glob("rx/*.wav")
assert sf.info(wav).duration > 13, sf.info(wav).duration
print(f"check_wheel: send/recv over Mosquitto: {sf.info(wav).duration:.2f} s received")
EOF
kill -INT "$recv"; wait "$recv" || true
"$bin/streamcodec" demo --fast --out demo-out
echo "check_wheel: ok"
