"""Reads partition 0 of a topic from the beginning with one Python client at one isolation
level until no record arrives for a quiet period, and prints one line per record:
`offset value`. Used by crates/strom-cli/tests/txn_read.rs, which wrote the topic and checks
what each client read.

    python3 read_committed.py BOOTSTRAP TOPIC CLIENT ISOLATION

CLIENT is kafka-python, aiokafka or confluent-kafka; ISOLATION is read_committed or
read_uncommitted.
"""

import asyncio
import sys
import time

QUIET_S = 2.0
LIMIT_S = 30.0


def kafka_python(bootstrap, topic, isolation):
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        isolation_level=isolation,
        enable_auto_commit=False,
        fetch_max_wait_ms=100,
    )
    tp = TopicPartition(topic, 0)
    consumer.assign([tp])
    consumer.seek_to_beginning(tp)
    out = []
    start = last = time.monotonic()
    while time.monotonic() - last < QUIET_S and time.monotonic() - start < LIMIT_S:
        for records in consumer.poll(timeout_ms=100).values():
            for r in records:
                out.append((r.offset, r.value.decode()))
                last = time.monotonic()
    consumer.close()
    return out


def aiokafka_client(bootstrap, topic, isolation):
    from aiokafka import AIOKafkaConsumer, TopicPartition

    async def run():
        consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap,
            isolation_level=isolation,
            enable_auto_commit=False,
            fetch_max_wait_ms=100,
        )
        await consumer.start()
        try:
            tp = TopicPartition(topic, 0)
            consumer.assign([tp])
            await consumer.seek_to_beginning(tp)
            out = []
            start = last = time.monotonic()
            while time.monotonic() - last < QUIET_S and time.monotonic() - start < LIMIT_S:
                batches = await consumer.getmany(timeout_ms=100)
                for records in batches.values():
                    for r in records:
                        out.append((r.offset, r.value.decode()))
                        last = time.monotonic()
            return out
        finally:
            await consumer.stop()

    return asyncio.run(run())


def confluent(bootstrap, topic, isolation):
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "read-committed-py",
            "enable.auto.commit": False,
            "isolation.level": isolation,
            "fetch.wait.max.ms": 100,
        }
    )
    consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
    out = []
    start = last = time.monotonic()
    while time.monotonic() - last < QUIET_S and time.monotonic() - start < LIMIT_S:
        m = consumer.poll(0.1)
        if m is None:
            continue
        if m.error():
            raise RuntimeError(m.error())
        out.append((m.offset(), m.value().decode()))
        last = time.monotonic()
    consumer.close()
    return out


def main():
    bootstrap, topic, client, isolation = sys.argv[1:5]
    read = {"kafka-python": kafka_python, "aiokafka": aiokafka_client, "confluent-kafka": confluent}[
        client
    ]
    for offset, value in read(bootstrap, topic, isolation):
        print(offset, value)


if __name__ == "__main__":
    main()
