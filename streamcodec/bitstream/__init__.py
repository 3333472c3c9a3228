"""Packet and container formats (docs/bitstream.md). Standard library only: these bytes cross
machines and versions, so parsing them depends on nothing else."""

from streamcodec.bitstream.container import Container, ContainerWriter, Damage, read_container, write_container
from streamcodec.bitstream.packet import (
    FLAG_FIRST, FLAG_FIXED, FLAG_LAST, FORMAT_VERSION, Packet, encode_packet, parse_packet, read_packet_at,
)

__all__ = [
    "FLAG_FIRST", "FLAG_FIXED", "FLAG_LAST", "FORMAT_VERSION", "Container", "ContainerWriter", "Damage", "Packet",
    "encode_packet", "parse_packet", "read_container", "read_packet_at", "write_container",
]
