"""MQTT conventions and connection settings.

Topics (one stream per node):
    streamcodec/<channel>/<node>/audio   packets, one MQTT message per 1.024 s frame
    streamcodec/<channel>/<node>/meta    retained JSON: model id, format version, sample rate,
                                         stream id and start time (what packets no longer repeat)
    streamcodec/<channel>/<node>/status  retained "online" / "offline" (the last will)
"""

import json
import logging
import os
import socket
import ssl
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import aiomqtt
from aiomqtt.exceptions import MqttConnectError
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from streamcodec.bitstream.speech import MAX_PACKET, VERSION
from streamcodec.dsp.params import SAMPLE_RATE
from streamcodec.errors import BitstreamError, StreamcodecError

log = logging.getLogger("streamcodec.mqtt")

ROOT = "streamcodec"
PASSWORD_ENV = "STREAMCODEC_MQTT_PASSWORD"


class BrokerError(StreamcodecError):
    """The broker cannot be reached, refused us, or its address is wrong."""


def topic(channel: str, node: str, kind: str) -> str:
    """The topic of one node's stream; node "+" subscribes to every node of the channel."""
    check_name("channel", channel)
    if node != "+":
        check_name("node", node)
    return f"{ROOT}/{channel}/{node}/{kind}"


def check_name(what: str, value: str) -> None:
    if not value or any(c in value for c in "/+#"):
        raise StreamcodecError(f"{what} {value!r} must be non-empty and free of '/', '+' and '#'")


def parse_topic(name: str) -> tuple[str, str, str] | None:
    """(channel, node, kind) of a streamcodec topic, or None for any other topic, and for one whose
    channel or node a sender could not have used (empty, or with a wildcard character)."""
    parts = name.split("/")
    if len(parts) != 4 or parts[0] != ROOT:
        return None
    if any(not part or "+" in part or "#" in part for part in parts[1:3]):
        return None
    return parts[1], parts[2], parts[3]


MAX_META_BYTES = 1024


@dataclass(frozen=True)
class StreamMeta:
    """A node's per-stream constants, published once (retained) instead of in every packet."""

    model_id: bytes
    stream_id: int  # u32, random per stream: a new value means the node started a new stream
    start_us: int  # capture time of the stream's first sample, microseconds since the epoch
    sample_rate: int = SAMPLE_RATE
    format_version: int = VERSION
    uplink_framing: int | None = None  # bytes of MQTT framing the sender's link adds to each frame, if known

    def same_stream(self, other: "StreamMeta") -> bool:
        """The same stream constants (what a sender republishes on every connection)."""
        return (self.model_id, self.stream_id, self.start_us, self.sample_rate, self.format_version) == \
            (other.model_id, other.stream_id, other.start_us, other.sample_rate, other.format_version)

    def payload(self) -> bytes:
        d = {"model_id": self.model_id.hex(), "format_version": self.format_version, "sample_rate": self.sample_rate,
             "stream_id": self.stream_id, "start_us": self.start_us}
        if self.uplink_framing is not None:
            d["uplink_framing"] = self.uplink_framing
        return json.dumps(d).encode()


def parse_meta(payload: bytes) -> StreamMeta:
    """A meta message from the network; anything malformed raises BitstreamError."""
    if len(payload) > MAX_META_BYTES:
        raise BitstreamError(f"meta message of {len(payload)} bytes exceeds {MAX_META_BYTES}")
    # One flat object, and json.loads never nests: a deep [[[... would end in a RecursionError.
    if payload.count(b"{") > 1 or b"[" in payload:
        raise BitstreamError("malformed meta message: not one flat JSON object")
    try:
        d = json.loads(payload.decode())
        if not isinstance(d, dict):
            raise TypeError(f"a JSON {type(d).__name__}, not an object")
        model_id = bytes.fromhex(d["model_id"])
        fields = [d["format_version"], d["sample_rate"], d["stream_id"], d["start_us"]]
    except (UnicodeDecodeError, ValueError, KeyError, TypeError, RecursionError) as exc:
        raise BitstreamError(f"malformed meta message: {exc}") from exc
    if len(model_id) != 4 or not all(type(v) is int for v in fields):
        raise BitstreamError("malformed meta message: model_id must be 4 bytes and the other fields integers")
    version, rate, stream_id, start_us = fields
    if version != VERSION:
        raise BitstreamError(f"the node sends format version {version}, this receiver reads version {VERSION}: "
                             "use the same streamcodec release at both ends")
    if rate != SAMPLE_RATE or not 0 <= stream_id < 1 << 32 or not 0 <= start_us < 1 << 62:
        raise BitstreamError("malformed meta message: sample rate, stream id or start time out of range")
    framing = d.get("uplink_framing")
    if framing is not None and (type(framing) is not int or not 0 <= framing <= 1024):
        raise BitstreamError("malformed meta message: uplink_framing must be an integer of 0 to 1024 bytes")
    return StreamMeta(model_id, stream_id, start_us, rate, version, framing)


ALIAS = 1  # the topic alias a sender gives its audio topic (MQTT 5)


def publish_overhead(topic_name: str, qos: int, protocol: int, alias: bool = False, payload: int = MAX_PACKET) -> int:
    """Bytes an MQTT PUBLISH of `payload` bytes adds to them: topic length and name (empty once
    aliased), packet id at QoS > 0, in MQTT 5 the properties length and a topic alias (3 bytes) if
    it carries one, and the fixed header (type byte and the remaining length, 1 byte up to 127 and
    2 up to 16,383: a full speech packet takes 2)."""
    rest = 2 + len(topic_name.encode()) + (2 if qos else 0) + (1 if protocol == 5 else 0) + (3 if alias else 0)
    return 1 + (1 if rest + payload < 128 else 2) + rest


class Client(aiomqtt.Client):
    """aiomqtt's client, counting the publishes the broker refused: an MQTT 5 broker says so in the
    PUBACK of a QoS 1 publish (e.g. "Not authorized" from an ACL), and aiomqtt drops that answer."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.refused = 0
        self.last_refusal = ""
        self.alias_maximum = 0  # topic aliases the broker accepts (MQTT 5 CONNACK; none otherwise)
        self._aliased: str | None = None

    def _on_connect(self, client, userdata, flags, reason_code, properties=None) -> None:
        self.alias_maximum = int(getattr(properties, "TopicAliasMaximum", 0) or 0)
        super()._on_connect(client, userdata, flags, reason_code, properties)

    async def publish_stream(self, topic_name: str, payload: bytes, qos: int) -> int:
        """Publish one message of a stream's topic; returns the bytes of MQTT framing it took. Where
        the broker takes topic aliases (MQTT 5; Mosquitto does by default) the topic name crosses
        the link once per connection and every later message carries a 3-byte alias instead:
        about 40 bytes, 0.3 kbit/s, less per 1.024 s frame."""
        if not self.alias_maximum:
            await self.publish(topic_name, payload, qos=qos)
            return publish_overhead(topic_name, qos, self._client.protocol, payload=len(payload))
        properties = Properties(PacketTypes.PUBLISH)
        properties.TopicAlias = ALIAS
        sent = "" if self._aliased == topic_name else topic_name
        await self.publish(sent, payload, qos=qos, properties=properties)
        self._aliased = topic_name
        return publish_overhead(sent, qos, 5, alias=True, payload=len(payload))

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:
        if getattr(reason_code, "is_failure", False):
            self.refused += 1
            self.last_refusal = str(reason_code)
        super()._on_publish(client, userdata, mid, reason_code, properties)


@dataclass
class BrokerConfig:
    """Where the broker is and how to log in. The password comes from the environment variable
    STREAMCODEC_MQTT_PASSWORD or from a file, never from the command line."""

    host: str = "127.0.0.1"
    port: int = 1883
    tls: bool = False
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    username: str | None = None
    password: str | None = None
    first_timeout: float = 15.0  # seconds a first connection may take before we give up (exit 2)
    protocol: int = 4  # MQTT 3.1.1, or 5 (a sender asks for 5 and falls back when the broker lacks it)

    @classmethod
    def from_url(cls, url: str, *, ca_file=None, cert_file=None, key_file=None, username=None,
                 password_file=None) -> "BrokerConfig":
        parts = urlsplit(url if "://" in url else f"mqtt://{url}")
        if parts.scheme not in ("mqtt", "mqtts"):
            raise BrokerError(f"broker URL {url!r} must start with mqtt:// or mqtts://")
        if not parts.hostname:
            raise BrokerError(f"broker URL {url!r} has no host")
        tls = parts.scheme == "mqtts"
        try:
            port = parts.port or (8883 if tls else 1883)
        except ValueError as exc:
            raise BrokerError(f"broker URL {url!r} has an invalid port") from exc
        if parts.password is not None:  # a command line is visible to every user of the machine
            raise BrokerError(f"put the broker password in {PASSWORD_ENV} or a file given with --password-file, "
                              "not in the broker URL")
        password = os.environ.get(PASSWORD_ENV)
        if password_file:
            try:
                password = Path(password_file).read_text().strip()
            except OSError as exc:
                raise BrokerError(f"cannot read the password file {password_file}: {exc.strerror}") from exc
        return cls(parts.hostname, port, tls, ca_file, cert_file, key_file, username or parts.username, password)

    def client(self, identifier: str | None = None, will: aiomqtt.Will | None = None,
               persistent: bool = False) -> Client:
        """A client; `persistent` asks the broker to keep this client id's session (its
        subscriptions and the QoS 1 messages for it) across disconnections, for a day."""
        tls_context = None
        if self.tls:
            tls_context = ssl.create_default_context(cafile=self.ca_file)
            if self.cert_file:
                tls_context.load_cert_chain(self.cert_file, self.key_file)
        session: dict = {}
        if self.protocol == 5:
            properties = Properties(PacketTypes.CONNECT)
            if persistent:
                properties.SessionExpiryInterval = 86400
            session = {"protocol": aiomqtt.ProtocolVersion.V5, "clean_start": not persistent, "properties": properties}
        else:
            session = {"protocol": aiomqtt.ProtocolVersion.V311, "clean_session": not persistent}
        # paho never sets TCP_NODELAY; without it Nagle's algorithm adds 10-15 ms per small packet.
        return Client(self.host, self.port, username=self.username, password=self.password, identifier=identifier,
                      will=will, tls_context=tls_context, timeout=10,
                      socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)], **session)

    def describe(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"


def _refused_login(exc: Exception) -> bool:
    rc = str(getattr(exc, "rc", ""))
    return isinstance(exc, MqttConnectError) and (
        "authori" in rc.lower() or "password" in rc.lower() or rc in ("4", "5"))


def _tls_failure(exc: Exception) -> bool:
    return isinstance(exc, ssl.SSLError) or isinstance(exc.__cause__, ssl.SSLError) or any(
        s in str(exc) for s in ("SSL", "certificate", "TLS"))


def _closed_in_handshake(exc: Exception) -> bool:
    text = str(exc)
    return any(s in text for s in ("reset by peer", "EOF", "closed"))


class Retry:
    """The reconnection policy of sender and receiver: back off from 0.5 s to 8 s between tries.
    Give up with a clear BrokerError when retrying cannot help: a refused login, a TLS failure, an
    unknown host name, a broker that keeps closing the connection during the handshake, or a first
    connection that has not worked within the config's `first_timeout` seconds (a wrong port, a firewall, plain
    MQTT to a TLS port). A broker that worked and went away is retried for as long as it takes, and
    the loss and the return are logged once each (`announce`: a helper connection stays quiet)."""

    def __init__(self, config: BrokerConfig, announce: bool = True) -> None:
        self.config = config
        self.count = 0
        self.lost_since: float | None = None  # monotonic time the working connection was lost
        self._delay = 0.5
        self._connected_once = False
        self._announce = announce
        self._deadline = time.monotonic() + config.first_timeout

    def connected(self) -> None:
        if self.lost_since is not None and self._announce:
            log.warning("reconnected to %s after %.1f s", self.config.describe(), time.monotonic() - self.lost_since)
        self.lost_since = None
        self._delay = 0.5
        self._connected_once = True

    async def failed(self, exc: Exception) -> None:
        import asyncio

        if _unsupported_protocol(exc) and self.config.protocol == 5:
            self.config.protocol = 4  # an MQTT 3.1.1 broker (e.g. the embedded one): speak that from now on
            return
        self.count += 1
        first = not self._connected_once
        handshake = first and _closed_in_handshake(exc)
        if _refused_login(exc) or _tls_failure(exc) or (first and _unknown_host(exc)) \
                or (handshake and (self.config.tls or self.count >= 3)):
            raise explain(exc, self.config) from exc
        if first and time.monotonic() + self._delay > self._deadline:
            raise BrokerError(f"could not connect to {self.config.describe()} within {self.config.first_timeout:g} s "
                              f"({self.count} tries; last: {exc}): check the host and port, that the broker "
                              "runs, and mqtt:// vs mqtts:// (TLS ports are usually 8883)") from exc
        if self._connected_once and self.lost_since is None:
            self.lost_since = time.monotonic()
            if self._announce:
                log.warning("lost the connection to %s (%s): reconnecting", self.config.describe(), exc)
        await asyncio.sleep(self._delay)
        self._delay = min(self._delay * 2, 8.0)


def _unsupported_protocol(exc: Exception) -> bool:
    return isinstance(exc, MqttConnectError) and (getattr(exc, "rc", None) in (1, 132) or
                                                  "protocol version" in str(exc).lower())


def _unknown_host(exc: Exception) -> bool:
    return any(isinstance(e, socket.gaierror) for e in (exc, exc.__cause__, exc.__context__))


def explain(exc: Exception, config: BrokerConfig) -> BrokerError:
    """A BrokerError that says what went wrong in words a user can act on."""
    if _refused_login(exc):
        return BrokerError(f"{config.describe()} refused the login ({exc.rc}): check the user name and "
                           f"{PASSWORD_ENV} (or --password-file)")
    if _tls_failure(exc) or (config.tls and _closed_in_handshake(exc)):
        return BrokerError(f"TLS with {config.describe()} failed ({exc}): check --ca-file, the client "
                           f"certificate, and that the broker speaks TLS on this port")
    if _unknown_host(exc):
        return BrokerError(f"cannot resolve the broker's host name {config.host!r} ({exc}): check --broker")
    if _closed_in_handshake(exc):
        return BrokerError(f"{config.describe()} closed the connection during the handshake ({exc}): if the "
                           f"broker uses TLS on this port, connect with mqtts:// and --ca-file")
    return BrokerError(f"cannot reach the broker at {config.describe()}: {exc}")
