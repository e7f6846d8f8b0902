"""A kafka-python consumer-group member for the cross-client group test.

Usage: group_member.py BOOTSTRAP GROUP TOPIC SECONDS

Joins GROUP, consumes TOPIC for SECONDS (committing after each record), and prints one JSON
line per event to stdout: {"assigned": [partitions]} whenever its assignment changes, and
{"p": partition, "o": offset, "v": value} per record. Then leaves the group cleanly.
"""
import json
import sys
import time

from kafka import KafkaConsumer


def main():
    bootstrap, group, topic, seconds = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        client_id="kafka-python-member",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=6000,
        heartbeat_interval_ms=500,
    )
    deadline = time.time() + seconds
    last = None
    while time.time() < deadline:
        batches = consumer.poll(timeout_ms=200)
        assigned = sorted(tp.partition for tp in consumer.assignment())
        if assigned != last:
            print(json.dumps({"assigned": assigned}), flush=True)
            last = assigned
        for records in batches.values():
            for r in records:
                print(json.dumps({"p": r.partition, "o": r.offset, "v": r.value.decode()}), flush=True)
        if batches:
            consumer.commit()
    consumer.close()


if __name__ == "__main__":
    main()
