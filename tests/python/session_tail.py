"""kafka-python tailing partitions through a fetch session (KIP-227).

Usage: session_tail.py BOOTSTRAP METRICS_HOST:PORT

A consumer assigned to 8 partitions of `tail` polls while a producer writes in phases: three
partitions busy and five idle, then all eight, then one. kafka-python 2.1+ fetches in
incremental sessions, so after the first fetch the broker answers only the partitions that
moved. Every record must arrive once, in offset order per partition, with its value; the
broker's /metrics must show the session. Prints "tail matched" on success.
"""
import hashlib
import sys
import threading
import time
import urllib.request

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic

bootstrap, metrics = sys.argv[1], sys.argv[2]
PARTITIONS = 8
admin = KafkaAdminClient(bootstrap_servers=bootstrap)
admin.create_topics([NewTopic("tail", PARTITIONS, 1)])
admin.close()

consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                         auto_offset_reset="earliest", fetch_max_wait_ms=200)
assert consumer.config["enable_incremental_fetch_sessions"], "sessions are kafka-python's default"
consumer.assign([TopicPartition("tail", p) for p in range(PARTITIONS)])

phases = [[0, 3, 5]] * 150 + [list(range(PARTITIONS))] * 200 + [[6]] * 50
total = len(phases)
got = []
done = threading.Event()


def consume():
    deadline = time.time() + 60
    while time.time() < deadline and len(got) < total:
        for tp, records in consumer.poll(timeout_ms=200).items():
            got.extend((tp.partition, r.offset, r.value) for r in records)
    done.set()


reader = threading.Thread(target=consume)
reader.start()
producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
sent = {}
for i, busy in enumerate(phases):
    partition = busy[i % len(busy)]
    value = hashlib.sha256(b"%d" % i).hexdigest().encode()
    offset = producer.send("tail", value, partition=partition).get(timeout=10).offset
    sent[(partition, offset)] = value
    if i % 25 == 0:
        time.sleep(0.1)  # the consumer's fetches go idle in between
producer.close()
reader.join()

assert len(got) == total, "got %d of %d records" % (len(got), total)
by_partition = {}
for partition, offset, value in got:
    by_partition.setdefault(partition, []).append(offset)
    assert sent[(partition, offset)] == value, "wrong value at %d/%d" % (partition, offset)
for partition, offsets in by_partition.items():
    assert offsets == list(range(len(offsets))), "partition %d out of order: %s" % (partition, offsets)
assert sorted(by_partition) == list(range(PARTITIONS)), sorted(by_partition)

lines = urllib.request.urlopen("http://%s/metrics" % metrics).read().decode().splitlines()
gauges = {l.split()[0]: float(l.split()[1]) for l in lines
          if l.startswith("kafka_server_fetchsessioncache_")}
assert gauges["kafka_server_fetchsessioncache_numincrementalfetchsessions"] >= 1, gauges
assert gauges["kafka_server_fetchsessioncache_numincrementalfetchpartitionscached"] >= PARTITIONS, gauges
consumer.close()
print("tail matched: %d records over %d partitions, %s" % (total, PARTITIONS, gauges))
