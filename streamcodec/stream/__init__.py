"""Live streaming over MQTT: asyncio sender and receiver, jitter buffer, embedded broker.
Imports speech and bitstream; nothing below imports stream."""
