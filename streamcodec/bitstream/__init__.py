"""Packet and container formats (docs/bitstream.md). Standard library only: these bytes cross
machines and versions, so parsing them depends on nothing else. Speech uses format v2
(`speech.py`); images the generic v1 packet and container (`packet.py`, `container.py`)."""

from streamcodec.bitstream.container import Container, ContainerWriter, Damage, read_container, write_container
from streamcodec.bitstream.packet import (
    FLAG_FIRST, FLAG_FIXED, FLAG_LAST, FORMAT_VERSION, Packet, encode_packet, parse_packet, read_packet_at,
)
from streamcodec.bitstream.speech import SpeechFile, SpeechPacket, parse_speech_packet, read_speech_file

__all__ = [
    "FLAG_FIRST", "FLAG_FIXED", "FLAG_LAST", "FORMAT_VERSION", "Container", "ContainerWriter", "Damage", "Packet",
    "SpeechFile", "SpeechPacket", "encode_packet", "parse_packet", "parse_speech_packet", "read_container",
    "read_packet_at", "read_speech_file", "write_container",
]
