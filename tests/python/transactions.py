#!/usr/bin/env python3
"""Transactions through an unmodified Python Kafka client against a Strom broker.

Usage: transactions.py BOOTSTRAP CLIENT [SCENARIO ...]
CLIENT is kafka-python, confluent-kafka or aiokafka. Scenarios (all by default):

  commit-abort  committed records are visible to read_committed, aborted ones never; control
                records take offsets; read_uncommitted sees both
  lso           an open transaction holds read_committed consumers back (last stable offset)
                until it commits; ListOffsets(read_committed) answers the LSO
  fencing       a second producer with the same transactional.id fences the first, whose
                open transaction is aborted
  timeout       a transaction left open past transaction.timeout.ms is aborted by the
                coordinator and the producer's commit fails (needs the broker's
                transaction.abort.timed.out.transaction.cleanup.interval.ms small)
  eos           consume-transform-produce with send_offsets_to_transaction: an aborted batch
                neither outputs nor commits, a restarted consumer resumes at the committed
                offsets, every input record is output exactly once

Every scenario checks exact counts and values and exits non-zero with a message on the first
mismatch. Each consumer loop is bounded in time. The last line is "all scenarios matched".
"""

import asyncio
import sys
import time
import uuid

BOOTSTRAP = sys.argv[1]
CLIENT = sys.argv[2]
SCENARIOS = sys.argv[3:] or ["commit-abort", "lso", "fencing", "timeout", "eos"]
RUN = uuid.uuid4().hex[:6]


def fail(message):
    print(f"MISMATCH [{CLIENT}]: {message}", flush=True)
    sys.exit(1)


def expect(what, got, want):
    if got != want:
        fail(f"{what}: got {got!r}, want {want!r}")
    print(f"ok [{CLIENT}] {what}", flush=True)


# --- topics and a reference reader (confluent-kafka's admin and ListOffsets) -----------------

from confluent_kafka import Consumer as CkConsumer  # noqa: E402
from confluent_kafka import IsolationLevel  # noqa: E402
from confluent_kafka import TopicPartition as CkTP  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic, OffsetSpec  # noqa: E402

ADMIN = AdminClient({"bootstrap.servers": BOOTSTRAP})


def create_topic(name, partitions):
    for future in ADMIN.create_topics([NewTopic(name, partitions, 1)]).values():
        future.result(30)


def list_offsets(topic, partition, committed):
    level = IsolationLevel.READ_COMMITTED if committed else IsolationLevel.READ_UNCOMMITTED
    futures = ADMIN.list_offsets(
        {CkTP(topic, partition): OffsetSpec.latest()}, isolation_level=level, request_timeout=30
    )
    return next(iter(futures.values())).result(30).offset


def eventually_lso(topic, partition, want, seconds=10):
    """The read_committed end offset once it is `want`, or the last one seen after `seconds`."""
    deadline = time.time() + seconds
    while True:
        got = list_offsets(topic, partition, True)
        if got == want or time.time() > deadline:
            return got
        time.sleep(0.05)


# --- the client under test -------------------------------------------------------------------


class Confluent:
    def __init__(self):
        import confluent_kafka

        self.ck = confluent_kafka

    def producer(self, txn_id, timeout_ms=60000):
        p = self.ck.Producer(
            {
                "bootstrap.servers": BOOTSTRAP,
                "transactional.id": txn_id,
                "transaction.timeout.ms": timeout_ms,
            }
        )
        p.init_transactions(30)
        return ConfluentProducer(p)

    def consume(self, topic, partitions, committed, want, group=None, seconds=20):
        conf = {
            "bootstrap.servers": BOOTSTRAP,
            "group.id": group or f"reader-{uuid.uuid4().hex[:6]}",
            "isolation.level": "read_committed" if committed else "read_uncommitted",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
        c = self.ck.Consumer(conf)
        c.assign([self.ck.TopicPartition(topic, p, 0) for p in range(partitions)])
        out = []
        deadline = time.time() + seconds
        settle = None
        while time.time() < deadline:
            m = c.poll(0.2)
            if m is not None and m.error() is None:
                out.append((m.partition(), m.value().decode()))
            if len(out) >= want and settle is None:
                settle = time.time() + 1.0
            if settle is not None and time.time() > settle:
                break
        c.close()
        return out

    def eos_consumer(self, topic, group):
        return ConfluentEos(self.ck, topic, group)


class ConfluentProducer:
    def __init__(self, p):
        self.p = p

    def begin(self):
        self.p.begin_transaction()

    def send(self, topic, partition, value):
        self.p.produce(topic, value=value.encode(), partition=partition)

    def flush(self):
        self.p.flush(30)

    def commit(self):
        self.p.commit_transaction(30)

    def abort(self):
        self.p.abort_transaction(30)

    def send_offsets(self, eos, offsets):
        tps = [eos.ck.TopicPartition(t, p, o) for (t, p), o in offsets.items()]
        self.p.send_offsets_to_transaction(tps, eos.consumer.consumer_group_metadata(), 30)

    def close(self):
        self.p.flush(5)


class ConfluentEos:
    def __init__(self, ck, topic, group):
        self.ck = ck
        self.consumer = ck.Consumer(
            {
                "bootstrap.servers": BOOTSTRAP,
                "group.id": group,
                "isolation.level": "read_committed",
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
            }
        )
        self.consumer.subscribe([topic])

    def poll(self, max_records, seconds=10):
        out = []
        deadline = time.time() + seconds
        while len(out) < max_records and time.time() < deadline:
            m = self.consumer.poll(0.2)
            if m is not None and m.error() is None:
                out.append((m.topic(), m.partition(), m.offset(), m.value().decode()))
        return out

    def close(self):
        self.consumer.close()


class KafkaPython:
    def __init__(self):
        import kafka

        self.kafka = kafka

    def producer(self, txn_id, timeout_ms=60000):
        p = self.kafka.KafkaProducer(
            bootstrap_servers=BOOTSTRAP, transactional_id=txn_id, transaction_timeout_ms=timeout_ms
        )
        p.init_transactions()
        return KafkaPythonProducer(self.kafka, p)

    def consume(self, topic, partitions, committed, want, group=None, seconds=20):
        c = self.kafka.KafkaConsumer(
            bootstrap_servers=BOOTSTRAP,
            group_id=None,
            isolation_level="read_committed" if committed else "read_uncommitted",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )
        tps = [self.kafka.TopicPartition(topic, p) for p in range(partitions)]
        c.assign(tps)
        c.seek_to_beginning(*tps)
        out = []
        deadline = time.time() + seconds
        settle = None
        while time.time() < deadline:
            for tp, records in c.poll(timeout_ms=200).items():
                out.extend((tp.partition, r.value.decode()) for r in records)
            if len(out) >= want and settle is None:
                settle = time.time() + 1.0
            if settle is not None and time.time() > settle:
                break
        c.close()
        return out

    def eos_consumer(self, topic, group):
        return KafkaPythonEos(self.kafka, topic, group)


class KafkaPythonProducer:
    def __init__(self, kafka, p):
        self.kafka = kafka
        self.p = p

    def begin(self):
        self.p.begin_transaction()

    def send(self, topic, partition, value):
        self.p.send(topic, value=value.encode(), partition=partition)

    def flush(self):
        self.p.flush(30)

    def commit(self):
        self.p.commit_transaction()

    def abort(self):
        # kafka-python 2.3.3's abort_transaction raises in its I/O thread (and then spins)
        # when records of the transaction are still unsent (RecordAccumulator.
        # abort_undrained_batches removes a batch twice): send them first.
        self.p.flush(30)
        self.p.abort_transaction()

    def send_offsets(self, eos, offsets):
        from kafka.structs import OffsetAndMetadata

        converted = {
            self.kafka.TopicPartition(t, p): OffsetAndMetadata(o, "", -1)
            for (t, p), o in offsets.items()
        }
        self.p.send_offsets_to_transaction(converted, eos.group)

    def close(self):
        self.p.close(5)


class KafkaPythonEos:
    def __init__(self, kafka, topic, group):
        self.group = group
        self.consumer = kafka.KafkaConsumer(
            topic,
            bootstrap_servers=BOOTSTRAP,
            group_id=group,
            isolation_level="read_committed",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )

    def poll(self, max_records, seconds=10):
        out = []
        deadline = time.time() + seconds
        while len(out) < max_records and time.time() < deadline:
            got = self.consumer.poll(timeout_ms=200, max_records=max_records - len(out))
            for tp, records in got.items():
                out.extend((tp.topic, tp.partition, r.offset, r.value.decode()) for r in records)
        return out

    def close(self):
        self.consumer.close()


class AioKafka:
    """aiokafka behind the same synchronous interface, on one event loop."""

    def __init__(self):
        import aiokafka

        self.aiokafka = aiokafka
        self.loop = asyncio.new_event_loop()

    def run(self, coro):
        return self.loop.run_until_complete(coro)

    def producer(self, txn_id, timeout_ms=60000):
        async def make():
            p = self.aiokafka.AIOKafkaProducer(
                bootstrap_servers=BOOTSTRAP,
                transactional_id=txn_id,
                transaction_timeout_ms=timeout_ms,
            )
            await p.start()
            return p

        return AioProducer(self, self.run(make()))

    def consume(self, topic, partitions, committed, want, group=None, seconds=20):
        async def go():
            c = self.aiokafka.AIOKafkaConsumer(
                bootstrap_servers=BOOTSTRAP,
                isolation_level="read_committed" if committed else "read_uncommitted",
                enable_auto_commit=False,
                auto_offset_reset="earliest",
            )
            await c.start()
            tps = [self.aiokafka.TopicPartition(topic, p) for p in range(partitions)]
            c.assign(tps)
            await c.seek_to_beginning(*tps)
            out = []
            deadline = time.time() + seconds
            settle = None
            while time.time() < deadline:
                got = await c.getmany(timeout_ms=200)
                for tp, records in got.items():
                    out.extend((tp.partition, r.value.decode()) for r in records)
                if len(out) >= want and settle is None:
                    settle = time.time() + 1.0
                if settle is not None and time.time() > settle:
                    break
            await c.stop()
            return out

        return self.run(go())

    def eos_consumer(self, topic, group):
        return AioEos(self, topic, group)


class AioProducer:
    def __init__(self, client, p):
        self.client = client
        self.p = p
        self.pending = []

    def begin(self):
        self.client.run(self.p.begin_transaction())

    def send(self, topic, partition, value):
        fut = self.client.run(self.p.send(topic, value=value.encode(), partition=partition))
        self.pending.append(fut)

    def flush(self):
        async def wait():
            for fut in self.pending:
                await fut
            self.pending.clear()

        self.client.run(wait())

    def commit(self):
        self.flush()
        self.client.run(self.p.commit_transaction())

    def abort(self):
        self.pending.clear()
        self.client.run(self.p.abort_transaction())

    def send_offsets(self, eos, offsets):
        tp = self.client.aiokafka.TopicPartition
        converted = {tp(t, p): o for (t, p), o in offsets.items()}
        self.client.run(self.p.send_offsets_to_transaction(converted, eos.group))

    def close(self):
        self.client.run(self.p.stop())


class AioEos:
    def __init__(self, client, topic, group):
        self.client = client
        self.group = group

        async def make():
            c = client.aiokafka.AIOKafkaConsumer(
                topic,
                bootstrap_servers=BOOTSTRAP,
                group_id=group,
                isolation_level="read_committed",
                enable_auto_commit=False,
                auto_offset_reset="earliest",
            )
            await c.start()
            return c

        self.consumer = client.run(make())

    def poll(self, max_records, seconds=10):
        async def go():
            out = []
            deadline = time.time() + seconds
            while len(out) < max_records and time.time() < deadline:
                got = await self.consumer.getmany(timeout_ms=200, max_records=max_records - len(out))
                for tp, records in got.items():
                    out.extend((tp.topic, tp.partition, r.offset, r.value.decode()) for r in records)
            return out

        return self.client.run(go())

    def close(self):
        self.client.run(self.consumer.stop())


CLIENTS = {"confluent-kafka": Confluent, "kafka-python": KafkaPython, "aiokafka": AioKafka}


# --- scenarios -------------------------------------------------------------------------------


def commit_abort(client):
    topic = f"txn-ca-{CLIENT}-{RUN}"
    create_topic(topic, 3)
    p = client.producer(f"ca-{CLIENT}-{RUN}")
    p.begin()
    for i in range(30):
        p.send(topic, i % 3, f"c1-{i}")
    p.commit()
    p.begin()
    for i in range(20):
        p.send(topic, i % 3, f"a-{i}")
    p.flush()
    p.abort()
    p.begin()
    for i in range(10):
        p.send(topic, i % 3, f"c2-{i}")
    p.commit()
    p.close()
    committed = client.consume(topic, 3, True, 40)
    want = sorted([(i % 3, f"c1-{i}") for i in range(30)] + [(i % 3, f"c2-{i}") for i in range(10)])
    expect("read_committed sees the 40 committed records, none aborted", sorted(committed), want)
    per_partition = {}
    for partition, value in committed:
        per_partition.setdefault(partition, []).append(value)
    expect(
        "read_committed keeps each partition's order",
        per_partition.get(0, [])[:3],
        ["c1-0", "c1-3", "c1-6"],
    )
    everything = client.consume(topic, 3, False, 60)
    expect("read_uncommitted sees all 60 data records", len(everything), 60)
    # Each partition: 10 + 7 (or 6) + 4 (or 3) data records and three control records.
    ends = [list_offsets(topic, p, False) for p in range(3)]
    data = [sum(1 for (q, _) in everything if q == p) for p in range(3)]
    expect("each transaction's marker takes an offset", [e - d for e, d in zip(ends, data)], [3, 3, 3])


def lso(client):
    topic = f"txn-lso-{CLIENT}-{RUN}"
    create_topic(topic, 1)
    p = client.producer(f"lso-{CLIENT}-{RUN}")
    p.begin()
    for i in range(5):
        p.send(topic, 0, f"first-{i}")
    p.commit()
    p.begin()
    for i in range(5):
        p.send(topic, 0, f"open-{i}")
    p.flush()
    expect("ListOffsets read_uncommitted while open", list_offsets(topic, 0, False), 11)
    expect("ListOffsets read_committed answers the LSO", list_offsets(topic, 0, True), 6)
    held = client.consume(topic, 1, True, 5, seconds=6)
    expect("read_committed stops at the open transaction", sorted(v for _, v in held), [f"first-{i}" for i in range(5)])
    p.commit()
    # EndTxn is answered once the decision is durable; the markers follow (as in Kafka).
    expect("ListOffsets read_committed after the commit", eventually_lso(topic, 0, 12), 12)
    released = client.consume(topic, 1, True, 10)
    expect("read_committed reads on after the commit", len(released), 10)
    p.close()


def fencing(client):
    topic = f"txn-fence-{CLIENT}-{RUN}"
    create_topic(topic, 1)
    txn_id = f"fence-{CLIENT}-{RUN}"
    old = client.producer(txn_id)
    old.begin()
    old.send(topic, 0, "zombie")
    old.flush()
    new = client.producer(txn_id)
    fenced = False
    try:
        old.send(topic, 0, "zombie-2")
        old.commit()
    except Exception as e:  # each client raises its own fenced/epoch error
        fenced = True
        print(f"ok [{CLIENT}] the old producer's commit failed: {type(e).__name__}: {e}", flush=True)
    expect("the fenced producer could not commit", fenced, True)
    new.begin()
    new.send(topic, 0, "survivor")
    new.commit()
    new.close()
    seen = client.consume(topic, 1, True, 1)
    expect("read_committed sees only the new producer's record", [v for _, v in seen], ["survivor"])


def timeout(client):
    topic = f"txn-timeout-{CLIENT}-{RUN}"
    create_topic(topic, 1)
    p = client.producer(f"timeout-{CLIENT}-{RUN}", timeout_ms=1500)
    p.begin()
    p.send(topic, 0, "late")
    p.flush()
    time.sleep(4)
    failed = False
    try:
        p.commit()
    except Exception as e:
        failed = True
        print(f"ok [{CLIENT}] commit after the timeout failed: {type(e).__name__}: {e}", flush=True)
    expect("a commit after transaction.timeout.ms fails", failed, True)
    expect("the aborted transaction's LSO moved past it", eventually_lso(topic, 0, 2), 2)
    seen = client.consume(topic, 1, True, 0, seconds=3)
    expect("read_committed sees nothing of the timed-out transaction", seen, [])


def eos(client):
    source = f"txn-in-{CLIENT}-{RUN}"
    sink = f"txn-out-{CLIENT}-{RUN}"
    group = f"eos-{CLIENT}-{RUN}"
    create_topic(source, 2)
    create_topic(sink, 2)
    feeder = client.producer(f"feed-{CLIENT}-{RUN}")
    feeder.begin()
    for i in range(100):
        feeder.send(source, i % 2, f"in-{i}")
    feeder.commit()
    feeder.close()

    def run_batches(consumer, producer, batches, abort_last=False):
        done = 0
        for n in range(batches):
            records = consumer.poll(10)
            if not records:
                break
            producer.begin()
            positions = {}
            for topic, partition, offset, value in records:
                producer.send(sink, partition, value.replace("in-", "out-"))
                positions[(topic, partition)] = offset + 1
            producer.send_offsets(consumer, positions)
            if abort_last and n == batches - 1:
                producer.abort()
            else:
                producer.commit()
                done += len(records)
        return done

    consumer = client.eos_consumer(source, group)
    producer = client.producer(f"eos-{CLIENT}-{RUN}")
    first = run_batches(consumer, producer, 4)
    run_batches(consumer, producer, 1, abort_last=True)
    consumer.close()
    producer.close()
    # A new instance resumes from the committed offsets: the aborted batch is redone.
    consumer = client.eos_consumer(source, group)
    producer = client.producer(f"eos-{CLIENT}-{RUN}")
    rest = 0
    for _ in range(40):
        got = run_batches(consumer, producer, 1)
        rest += got
        if first + rest >= 100:
            break
    consumer.close()
    producer.close()
    expect("every input record was processed once in committed transactions", first + rest, 100)
    out = client.consume(sink, 2, True, 100)
    values = sorted(v for _, v in out)
    expect("the output holds each input once", values, sorted(f"out-{i}" for i in range(100)))


def main():
    client = CLIENTS[CLIENT]()
    table = {"commit-abort": commit_abort, "lso": lso, "fencing": fencing, "timeout": timeout, "eos": eos}
    for name in SCENARIOS:
        started = time.time()
        table[name](client)
        print(f"scenario {name} passed in {time.time() - started:.1f} s", flush=True)
    print("all scenarios matched", flush=True)


if __name__ == "__main__":
    main()
