"""Which MQTT client for the gateway: receive our message mix at QoS 1, run the gateway's core on each
message (decode, validate, de-duplicate, line protocol) and acknowledge by hand.

    python -m bench.gateway_clients [--messages 50000]

No InfluxDB here: this isolates the client's cost per message. Prints msg/s per client.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable

from bench.command import arguments
from bench.gateway_common import message_mix, stack
from gateway.core import Ingest
from gateway.dedup import Dedup
from harness.publisher import publish_with_c_clients
from lauks.topics import Topics

FILTER = "lauks/v1/+/+/readings"


async def timed(publish: threading.Thread, done: asyncio.Event, total: int) -> float:
    """Start the publishers (the client has its SUBACK); msg/s until ``done``."""
    started = time.monotonic()
    publish.start()
    await asyncio.wait_for(done.wait(), 300)
    return total / (time.monotonic() - started)


def run_gmqtt(port: int, total: int, publish: threading.Thread) -> float:
    import gmqtt
    from gmqtt.mqtt.constants import MQTTv50

    ingest = Ingest(Topics("lauks"), Dedup(None))

    async def main() -> float:
        done = asyncio.Event()
        count = 0

        async def on_message(client: object, topic: str, payload: bytes, qos: int, properties: object) -> int:
            nonlocal count
            ingest.message(topic, payload, time.time())
            count += 1
            if count >= total:
                done.set()
            return 0

        subscribed = asyncio.Event()
        client = gmqtt.Client("bench-gmqtt", optimistic_acknowledgement=False, receive_maximum=1000)
        client.on_message = on_message
        client.on_subscribe = lambda *_: subscribed.set()
        await client.connect("127.0.0.1", port, version=MQTTv50)
        client.subscribe(FILTER, qos=1)
        await asyncio.wait_for(subscribed.wait(), 30)
        rate = await timed(publish, done, total)
        await client.disconnect()
        return rate

    return asyncio.run(main())


def run_own(port: int, total: int, publish: threading.Thread) -> float:
    """The gateway's own client (gateway.mqtt): a synchronous handler per message, and the PUBACKs of
    one event-loop turn sent in one write (the gateway sends them per durable batch instead)."""
    from gateway.mqtt import Ack, MqttSource
    from gateway.settings import GatewaySettings

    ingest = Ingest(Topics("lauks"), Dedup(None))

    async def main() -> float:
        done = asyncio.Event()
        count = 0

        def on_message(topic: str, payload: bytes, retained: bool, ack: Ack | None) -> None:
            nonlocal count
            ingest.message(topic, payload, time.time())
            if ack is not None:
                source.acknowledge_soon(ack)
            count += 1
            if count >= total:
                done.set()

        config = GatewaySettings(mqtt_port=port, topic_root="lauks", gateway_client_id="bench-own",
                                 gateway_max_inflight=1000)
        source = MqttSource(config, [FILTER], on_message)
        task = asyncio.create_task(source.run())
        deadline = time.monotonic() + 30
        while not source.connected and time.monotonic() < deadline:  # noqa: ASYNC110 (a flag, not an event)
            await asyncio.sleep(0.01)
        rate = await timed(publish, done, total)
        await source.close()
        await task
        return rate

    return asyncio.run(main())


def run_paho(port: int, total: int, publish: threading.Thread) -> float:
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    ingest = Ingest(Topics("lauks"), Dedup(None))
    done = threading.Event()
    count = 0

    def on_message(client: paho.Client, userdata: object, message: paho.MQTTMessage) -> None:
        nonlocal count
        ingest.message(message.topic, bytes(message.payload), time.time())
        client.ack(message.mid, message.qos)
        count += 1
        if count >= total:
            done.set()

    subscribed = threading.Event()
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="bench-paho", manual_ack=True)
    client.max_inflight_messages_set(1000)
    client.on_message = on_message
    client.on_subscribe = lambda *_: subscribed.set()
    client.connect("127.0.0.1", port)
    client.subscribe(FILTER, qos=1)
    client.loop_start()
    if not subscribed.wait(30):
        raise RuntimeError("paho got no SUBACK")
    started = time.monotonic()
    publish.start()
    done.wait(300)
    elapsed = time.monotonic() - started
    client.loop_stop()
    client.disconnect()
    return total / elapsed


def main() -> None:
    parser = arguments(__doc__)
    parser.add_argument("--messages", type=int, default=50_000)
    args = parser.parse_args()
    per_kit, _ = message_mix(20, args.messages)
    with stack() as s:
        def publisher() -> threading.Thread:
            return threading.Thread(target=publish_with_c_clients, args=(s.broker.port, per_kit, s.directory))

        clients: list[tuple[str, Callable[[threading.Thread], float]]] = [
            ("paho-mqtt 2, manual_ack, threaded loop", lambda t: run_paho(s.broker.port, args.messages, t)),
            ("gmqtt 0.8, ack after the async handler", lambda t: run_gmqtt(s.broker.port, args.messages, t)),
            ("our own MQTT 5 client (gateway.mqtt), PUBACKs per loop turn (the gateway)",
             lambda t: run_own(s.broker.port, args.messages, t)),
        ]
        for name, run in clients:
            thread = publisher()
            rate = run(thread)
            thread.join()
            print(f"{name}: {rate:,.0f} msg/s")


if __name__ == "__main__":
    main()
