"""Consumer-group figures with confluent-kafka (librdkafka) at its default settings.

Usage: python3 bench/group_bench.py BOOTSTRAP failover
       python3 bench/group_bench.py BOOTSTRAP throughput RECORDS

failover:   two members of one group on a 6-partition topic; one is killed with SIGKILL; prints
            the seconds from the kill until the survivor owns all six partitions (this is
            bounded below by session.timeout.ms, librdkafka's default 45000 ms).
throughput: produces RECORDS records of 1 KiB to a 6-partition topic, then three member
            processes of one group consume them; prints records/s and MB/s from the first
            member start to the last record.
"""
import multiprocessing as mp
import os
import signal
import sys
import time
import uuid

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic


def create(bootstrap, topic):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for f in admin.create_topics([NewTopic(topic, 6, 1)]).values():
        f.result()


def member(bootstrap, group, topic, report, stop_after=None):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest"})
    assigned = []

    def on_assign(consumer, partitions):
        assigned[:] = sorted(set(assigned) | {p.partition for p in partitions})
        report.put(("assigned", os.getpid(), list(assigned), time.time()))

    def on_revoke(consumer, partitions):
        assigned[:] = sorted(set(assigned) - {p.partition for p in partitions})
        report.put(("assigned", os.getpid(), list(assigned), time.time()))

    c.subscribe([topic], on_assign=on_assign, on_revoke=on_revoke)
    count = 0
    while True:
        msgs = c.consume(num_messages=1000, timeout=0.2)
        count += sum(1 for m in msgs if m.error() is None)
        if msgs:
            report.put(("count", os.getpid(), count, time.time()))


def failover(bootstrap):
    topic, group = "failover-" + uuid.uuid4().hex[:6], "g-" + uuid.uuid4().hex[:6]
    create(bootstrap, topic)
    report = mp.Queue()
    survivor = mp.Process(target=member, args=(bootstrap, group, topic, report))
    victim = mp.Process(target=member, args=(bootstrap, group, topic, report))
    survivor.start()
    victim.start()
    owned = {}
    while not (len(owned.get(survivor.pid, [])) == 3 and len(owned.get(victim.pid, [])) == 3):
        kind, pid, value, _ = report.get(timeout=120)
        if kind == "assigned":
            owned[pid] = value
    os.kill(victim.pid, signal.SIGKILL)
    killed = time.time()
    while True:
        kind, pid, value, at = report.get(timeout=180)
        if kind == "assigned" and pid == survivor.pid and len(value) == 6:
            print(f"failover: the survivor owned all 6 partitions {at - killed:.1f} s after SIGKILL of the other member")
            break
    survivor.kill()


def throughput(bootstrap, records):
    topic, group = "tput-" + uuid.uuid4().hex[:6], "g-" + uuid.uuid4().hex[:6]
    create(bootstrap, topic)
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "acks": "all"})
    value = b"x" * 1024
    for i in range(records):
        while True:
            try:
                p.produce(topic, value, partition=i % 6)
                break
            except BufferError:
                p.poll(0.01)
    p.flush()
    report = mp.Queue()
    started = time.time()
    members = [mp.Process(target=member, args=(bootstrap, group, topic, report)) for _ in range(3)]
    for m in members:
        m.start()
    counts, last = {}, started
    while sum(counts.values()) < records:
        kind, pid, value, at = report.get(timeout=120)
        if kind == "count":
            counts[pid] = value
            last = at
    seconds = last - started
    print(f"throughput: {records} records of 1 KiB by 3 members in {seconds:.2f} s: "
          f"{records / seconds:,.0f} records/s, {records * 1024 / seconds / 1e6:.0f} MB/s "
          f"(per member: {sorted(counts.values())})")
    for m in members:
        m.kill()


if __name__ == "__main__":
    if sys.argv[2] == "failover":
        failover(sys.argv[1])
    else:
        throughput(sys.argv[1], int(sys.argv[3]))
