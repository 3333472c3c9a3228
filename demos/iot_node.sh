#!/usr/bin/env bash
# Stream this node's microphone (or the file given as $3) to a broker, store-and-forward (QoS 1).
# Usage: demos/iot_node.sh mqtt://broker:1883 CHANNEL [FILE]
set -euo pipefail
broker=${1:?broker URL, e.g. mqtt://broker:1883}
channel=${2:?channel}
source=(--mic)
[ $# -ge 3 ] && source=(--file "$3")
exec streamcodec send "${source[@]}" --broker "$broker" --channel "$channel" --qos 1 --deadline 0.25 --backlog 600
