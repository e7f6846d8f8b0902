"""Debian 12's python3-kafka (kafka-python 2.0.2), run by Debian's /usr/bin/python3, against a
broker: produce N records, consume them in a consumer group, commit, read the committed
offsets back with a fresh consumer. Run by crates/strom-cli/tests/old_clients.rs:

    /usr/bin/python3 old_kafka_python.py BOOTSTRAP TOPIC GROUP N

Prints one RESULT line and exits 0, or raises."""

import sys

import kafka
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

bootstrap, topic, group, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
assert kafka.__version__ == "2.0.2", f"expected Debian's kafka-python 2.0.2, got {kafka.__version__}"


def value(i):
    """The payload of record i (the same function is in the Rust test)."""
    return ("python-%06d-" % i + chr(ord("a") + i % 26) * (i % 50)).encode()


producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", client_id="old-kafka-python")
where = {}
for i in range(n):
    meta = producer.send(topic, key=b"key-%d" % i, value=value(i)).get(timeout=30)
    assert (meta.partition, meta.offset) not in where, f"offset given twice: {meta}"
    where[(meta.partition, meta.offset)] = i
producer.flush(timeout=30)
producer.close(timeout=30)
ends = {}
for (p, off) in where:
    ends[p] = max(ends.get(p, 0), off + 1)

consumer = KafkaConsumer(
    topic,
    bootstrap_servers=bootstrap,
    group_id=group,
    client_id="old-kafka-python",
    auto_offset_reset="earliest",
    enable_auto_commit=False,
    consumer_timeout_ms=30000,
)
seen = set()
last = {}
for m in consumer:
    i = where.get((m.partition, m.offset))
    assert i is not None, f"consumed {m.partition}/{m.offset}, which nobody produced"
    assert m.value == value(i) and m.key == b"key-%d" % i, f"record {i}: {m}"
    assert m.offset > last.get(m.partition, -1), f"out of order: {m}"
    assert i not in seen, f"record {i} twice"
    last[m.partition] = m.offset
    seen.add(i)
    if len(seen) == n:
        break
assert len(seen) == n, f"consumed {len(seen)} of {n}"
consumer.commit()
consumer.close()

reader = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
committed = {p: reader.committed(TopicPartition(topic, p)) for p in sorted(ends)}
reader.close()
for p, end in ends.items():
    assert committed[p] == end, f"partition {p}: committed {committed[p]}, end {end}"
print(
    "RESULT produced=%d consumed=%d committed=%s"
    % (n, len(seen), ",".join("%d:%d" % (p, committed[p]) for p in sorted(committed)))
)
