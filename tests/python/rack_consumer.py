"""A confluent-kafka (librdkafka) consumer with `client.rack` reads partition 0 of a topic
from the start and checks every record: value `<prefix>-<offset>`, in offset order, none
missing. librdkafka's statistics name the broker it fetched from (`broker`) next to the
partition's leader (`leader`); the script prints which brokers served it, so the test can
check that a consumer in a follower's rack was sent there (KIP-392).

Usage: rack_consumer.py BOOTSTRAP TOPIC RACK COUNT PREFIX
"""

import json
import sys
import time
import zlib

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition


def main():
    bootstrap, topic, rack, count, prefix = sys.argv[1:6]
    count = int(count)
    fetched_from = set()
    leaders = set()

    def on_stats(text):
        stats = json.loads(text)
        partition = stats.get("topics", {}).get(topic, {}).get("partitions", {}).get("0")
        if partition:
            if partition.get("broker", -1) >= 0:
                fetched_from.add(partition["broker"])
            if partition.get("leader", -1) >= 0:
                leaders.add(partition["leader"])

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"rack-{rack}-{time.time_ns()}",
            "client.rack": rack,
            "enable.auto.commit": False,
            "statistics.interval.ms": 200,
            "stats_cb": on_stats,
            "fetch.wait.max.ms": 200,
        }
    )
    consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
    checksum = 0
    next_offset = 0
    deadline = time.monotonic() + 90
    while next_offset < count and time.monotonic() < deadline:
        message = consumer.poll(0.5)
        if message is None:
            continue
        if message.error():
            print(f"error: {message.error()}", file=sys.stderr)
            continue
        expected = f"{prefix}-{next_offset}".encode()
        if message.offset() != next_offset or message.value() != expected:
            print(
                f"record at offset {message.offset()} is {message.value()!r}; expected "
                f"offset {next_offset} with {expected!r}"
            )
            sys.exit(1)
        checksum = zlib.crc32(message.value(), checksum)
        next_offset += 1
    # One more statistics interval, so the last fetches are in the stats.
    end = time.monotonic() + 0.5
    while time.monotonic() < end:
        consumer.poll(0.1)
    consumer.close()
    print(f"consumed {next_offset} of {count} records in order, crc32 {checksum:08x}")
    print(f"fetched from brokers {sorted(fetched_from)}, leaders seen {sorted(leaders)}")
    if next_offset < count:
        print("not every record arrived within 90 s")
        sys.exit(1)
    print("rack consumer matched")


if __name__ == "__main__":
    main()
