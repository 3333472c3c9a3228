"""The embedded broker (amqtt) for one-machine use: `streamcodec broker`, and `streamcodec demo`."""

import logging

from amqtt.broker import Broker


def broker_config(host: str = "127.0.0.1", port: int = 1883) -> dict:
    return {
        "listeners": {"default": {"type": "tcp", "bind": f"{host}:{port}"}},
        "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
    }


async def start_broker(host: str = "127.0.0.1", port: int = 1883) -> Broker:
    """Start an anonymous MQTT 3.1.1 broker in this event loop; `await broker.shutdown()` ends it."""
    logging.getLogger("amqtt").setLevel(logging.WARNING)
    broker = Broker(broker_config(host, port))
    await broker.start()
    return broker
