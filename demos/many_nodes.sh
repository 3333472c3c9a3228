#!/usr/bin/env bash
# Receive every node of a channel; one WAV per stream in the output folder.
# Usage: demos/many_nodes.sh mqtt://broker:1883 CHANNEL OUT_DIR
set -euo pipefail
exec streamcodec recv --broker "${1:?broker URL}" --channel "${2:?channel}" --out "${3:?output folder}" --qos 1
