#!/usr/bin/env python3
"""Round trip through Strom with an unmodified Python Kafka client.

    python3 tests/python/clients_roundtrip.py BOOTSTRAP CLIENT [--debug]

CLIENT is one of kafka-python, confluent-kafka, aiokafka. For each phase (a compression codec,
an acks setting, idempotence on or off, a topic made through the admin API or auto-created by
metadata) this creates a topic, produces N records with keys, headers and explicit timestamps,
waits for the acks, reads everything back with manual partition assignment (Strom has no
consumer groups yet, so nothing here joins a group or commits), and checks count, order per
partition, offsets, keys, values, headers and timestamps exactly. Then it checks ListOffsets
(earliest, latest, offsets for times) and, where the client can, DescribeConfigs.

Exits 0 only if everything matched; otherwise prints each mismatch and exits 1 (2 when the
client package is missing: ./scripts/test installs it).
"""

import asyncio
import hashlib
import logging
import os
import sys
import time
import traceback

N = 500
PARTITIONS = 3
TIMEOUT_S = 60
RUN = os.urandom(3).hex()  # topic names are new on every run, even against a reused broker
# ListOffsets-by-timestamp must name the exact record even inside a compressed batch, as Kafka
# does (FileRecords.searchForTimestamp decompresses it; so does strom-log for this lookup).

FAILURES = []


def fail(msg):
    FAILURES.append(msg)
    print(f"FAIL: {msg}", flush=True)


def info(msg):
    print(msg, flush=True)


def value_for(i):
    """A deterministic value; a few records carry a null value and a few an empty one."""
    if i % 101 == 50:
        return None
    if i % 101 == 51:
        return b""
    length = (i * 37) % 3000 + (40000 if i % 250 == 7 else 0)
    seed = hashlib.sha256(f"value-{i}".encode()).digest()
    return (seed * (length // len(seed) + 1))[:length]


def key_for(i):
    return None if i % 89 == 3 else f"key-{i}".encode()


def headers_for(i):
    if i % 5 == 0:
        return []
    hs = [("idx", str(i).encode()), ("bin", bytes([i % 256, 0, 255, (i * 7) % 256]))]
    if i % 3 == 0:
        hs.append(("dup", b"first"))
        hs.append(("dup", b"second"))
    if i % 7 == 0:
        hs.append(("empty", b""))
    return hs


def make_records(base_ts, partitions):
    """N records, spread round-robin over explicit partitions, timestamps rising per partition."""
    out = []
    for i in range(N):
        out.append(
            dict(
                i=i,
                partition=i % partitions,
                key=key_for(i),
                value=value_for(i),
                headers=headers_for(i),
                timestamp=base_ts + i * 7,
            )
        )
    return out


def digest(v):
    return None if v is None else f"{len(v)}:{hashlib.sha256(v).hexdigest()[:16]}"


def norm_headers(hs):
    if not hs:
        return []
    return [(k if isinstance(k, str) else k.decode(), b"" if v is None else bytes(v)) for k, v in hs]


def verify(phase, sent, acked, got, partitions):
    """sent: produced records; acked: list of (partition, offset) or None (acks=0);
    got: consumed records as dicts (partition, offset, key, value, headers, timestamp, ts_type)."""
    bad = 0

    def mismatch(msg):
        nonlocal bad
        bad += 1
        if bad <= 10:
            fail(f"[{phase}] {msg}")

    if len(got) != len(sent):
        mismatch(f"consumed {len(got)} records, produced {len(sent)}")
    by_part = {p: [] for p in range(partitions)}
    for r in sent:
        by_part[r["partition"]].append(r)
    got_by_part = {p: [] for p in range(partitions)}
    for g in got:
        if g["partition"] not in got_by_part:
            mismatch(f"record from unexpected partition {g['partition']}")
            continue
        got_by_part[g["partition"]].append(g)
    expected_offset = {}
    for p in range(partitions):
        exp, act = by_part[p], got_by_part[p]
        if len(exp) != len(act):
            mismatch(f"partition {p}: consumed {len(act)}, produced {len(exp)}")
        for n, (e, a) in enumerate(zip(exp, act)):
            expected_offset[e["i"]] = (p, n)
            where = f"partition {p} offset {a['offset']} (record {e['i']})"
            if a["offset"] != n:
                mismatch(f"{where}: offset {a['offset']}, expected {n} (order or gap)")
            if a["key"] != e["key"]:
                mismatch(f"{where}: key {a['key']!r}, expected {e['key']!r}")
            if digest(a["value"]) != digest(e["value"]):
                mismatch(f"{where}: value {digest(a['value'])}, expected {digest(e['value'])}")
            if norm_headers(a["headers"]) != norm_headers(e["headers"]):
                mismatch(f"{where}: headers {a['headers']!r}, expected {e['headers']!r}")
            if a["timestamp"] != e["timestamp"]:
                mismatch(f"{where}: timestamp {a['timestamp']}, expected {e['timestamp']}")
            if a["ts_type"] != "create":
                mismatch(f"{where}: timestamp type {a['ts_type']}, expected CreateTime")
    if acked is not None:
        for r, ack in zip(sent, acked):
            want = expected_offset.get(r["i"])
            if want is not None and tuple(ack) != want:
                mismatch(f"record {r['i']} acked at {ack}, consumed at {want}")
    if bad > 10:
        fail(f"[{phase}] ... {bad - 10} more mismatches")
    return bad == 0


def verify_offsets(phase, sent, partitions, earliest, latest, for_times):
    """earliest/latest: {p: offset}; for_times: {(p, ts): offset or None} for the queries
    from offset_queries()."""
    ok = True
    for p in range(partitions):
        count = sum(1 for r in sent if r["partition"] == p)
        if earliest.get(p) != 0:
            fail(f"[{phase}] earliest offset of partition {p}: {earliest.get(p)}, expected 0")
            ok = False
        if latest.get(p) != count:
            fail(f"[{phase}] latest offset of partition {p}: {latest.get(p)}, expected {count}")
            ok = False
    for (p, ts), want in offset_queries(sent, partitions).items():
        got = for_times.get((p, ts), "missing")
        if got != want:
            fail(f"[{phase}] offsets_for_times partition {p} ts {ts}: {got}, expected {want}")
            ok = False
    return ok


def offset_queries(sent, partitions):
    """{(partition, timestamp): expected offset or None}."""
    q = {}
    for p in range(partitions):
        recs = [r for r in sent if r["partition"] == p]
        if not recs:
            continue
        q[(p, recs[0]["timestamp"] - 1000)] = 0
        mid = len(recs) // 2
        q[(p, recs[mid]["timestamp"])] = mid
        q[(p, recs[mid]["timestamp"] - 1)] = mid
        q[(p, recs[-1]["timestamp"])] = len(recs) - 1
        q[(p, recs[-1]["timestamp"] + 1)] = None
    return q


def check_retention(phase, configs):
    if configs is None:
        return
    if "retention.ms" not in configs:
        fail(f"[{phase}] DescribeConfigs has no retention.ms; got {sorted(configs)[:20]}")
    elif not str(configs["retention.ms"]).lstrip("-").isdigit():
        fail(f"[{phase}] retention.ms is {configs['retention.ms']!r}")
    else:
        info(f"[{phase}] DescribeConfigs: retention.ms={configs['retention.ms']} ({len(configs)} entries)")


def resp_errors(obj, path=""):
    """Non-zero error codes anywhere in a kafka-python/aiokafka response's to_object() tree."""
    out = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k == "error_code" and v:
                out.append((path, v, obj.get("error_message") or obj.get("error_msg")))
            else:
                out.extend(resp_errors(v, f"{path}.{k}"))
    elif isinstance(obj, (list, tuple)):
        for n, v in enumerate(obj):
            out.extend(resp_errors(v, f"{path}[{n}]"))
    return out


def configs_from_response(obj):
    """{name: value} from a DescribeConfigs response's to_object()."""
    out = {}
    for res in obj.get("resources", []):
        if res.get("error_code"):
            raise RuntimeError(f"DescribeConfigs resource error {res.get('error_code')}: {res.get('error_message')}")
        for e in res.get("config_entries", []):
            name = e.get("config_names", e.get("config_name", e.get("name")))
            out[name] = e.get("config_value", e.get("value"))
    return out


# --- kafka-python ---------------------------------------------------------------------------


class KafkaPython:
    name = "kafka-python"

    def __init__(self, bootstrap):
        import kafka
        import kafka.codec

        self.kafka = kafka
        self.bootstrap = bootstrap
        self.codecs = [None, "gzip"]
        for codec, has in [("snappy", kafka.codec.has_snappy), ("lz4", kafka.codec.has_lz4), ("zstd", kafka.codec.has_zstd)]:
            if has():
                self.codecs.append(codec)
            else:
                fail(f"kafka-python codec {codec} is not installed (requirements.txt lists it)")
        info(f"kafka-python {kafka.__version__}, codecs {self.codecs}")
        self.admin = kafka.KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=30000)

    def create_topic(self, topic, partitions):
        from kafka.admin import NewTopic

        resp = self.admin.create_topics([NewTopic(topic, partitions, 1)], timeout_ms=10000)
        errs = resp_errors(resp.to_object())
        if errs:
            raise RuntimeError(f"CreateTopics errors: {errs}")

    def produce(self, topic, records, codec, acks, idempotent):
        p = self.kafka.KafkaProducer(
            bootstrap_servers=self.bootstrap,
            acks=acks,
            compression_type=codec,
            enable_idempotence=idempotent,
            linger_ms=5,
            max_request_size=2 * 1024 * 1024,
        )
        futs = [
            p.send(topic, value=r["value"], key=r["key"], headers=r["headers"], partition=r["partition"], timestamp_ms=r["timestamp"])
            for r in records
        ]
        p.flush(timeout=TIMEOUT_S)
        if acks == 0:
            # kafka-python 2.3.x bug, not the broker's: a request that expects no response
            # (Produce with acks=0) is queued on the connection but the connection is only
            # marked for writing when the request's future is still pending
            # (KafkaClient.send: `if not future.is_done: self._sending.add(conn)`), so the bytes
            # sit in the buffer until some other request goes out on that connection; close()
            # then drops them. A metadata request on the same connection pushes them out.
            update = p._metadata.request_update()
            p._sender.wakeup()
            deadline = time.time() + TIMEOUT_S
            while not update.is_done and time.time() < deadline:
                time.sleep(0.05)
            if not update.succeeded():
                raise RuntimeError(f"metadata refresh to push out acks=0 requests failed: {update.exception}")
        acked = []
        for f in futs:
            md = f.get(timeout=TIMEOUT_S)
            acked.append((md.partition, md.offset))
        p.close(timeout=10)
        return acked

    def _consumer(self):
        return self.kafka.KafkaConsumer(
            bootstrap_servers=self.bootstrap,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=200,
        )

    def consume(self, topic, partitions, expected):
        from kafka import TopicPartition

        c = self._consumer()
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        c.assign(tps)
        c.seek_to_beginning(*tps)
        out = []
        deadline = time.time() + TIMEOUT_S
        while len(out) < expected and time.time() < deadline:
            for tp, msgs in c.poll(timeout_ms=500).items():
                for m in msgs:
                    out.append(
                        dict(
                            partition=m.partition,
                            offset=m.offset,
                            key=m.key,
                            value=m.value,
                            headers=list(m.headers or []),
                            timestamp=m.timestamp,
                            ts_type="create" if m.timestamp_type == 0 else f"type {m.timestamp_type}",
                        )
                    )
        # Anything beyond what was produced would be a duplicate: look a little longer.
        for tp, msgs in c.poll(timeout_ms=300).items():
            for m in msgs:
                out.append(dict(partition=m.partition, offset=m.offset, key=m.key, value=m.value, headers=[], timestamp=m.timestamp, ts_type="extra"))
        c.close()
        return sorted(out, key=lambda r: (r["partition"], r["offset"]))

    def partitions_for(self, topic):
        c = self._consumer()
        deadline = time.time() + 20
        parts = None
        while time.time() < deadline:
            parts = c.partitions_for_topic(topic)
            if parts:
                break
            time.sleep(0.2)
        c.close()
        return sorted(parts or [])

    def list_offsets(self, topic, partitions, queries):
        from kafka import TopicPartition

        c = self._consumer()
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        earliest = {tp.partition: o for tp, o in c.beginning_offsets(tps).items()}
        latest = {tp.partition: o for tp, o in c.end_offsets(tps).items()}
        for_times = {}
        for p, ts in queries:
            r = c.offsets_for_times({TopicPartition(topic, p): ts})[TopicPartition(topic, p)]
            for_times[(p, ts)] = None if r is None else r.offset
        c.close()
        return earliest, latest, for_times

    def describe_configs(self, topic):
        from kafka.admin import ConfigResource, ConfigResourceType

        resps = self.admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
        out = {}
        for r in resps:
            out.update(configs_from_response(r.to_object()))
        return out

    def close(self):
        self.admin.close()


# --- confluent-kafka ------------------------------------------------------------------------


class ConfluentKafka:
    name = "confluent-kafka"
    codecs = ["none", "gzip", "snappy", "lz4", "zstd"]

    def __init__(self, bootstrap):
        import confluent_kafka
        from confluent_kafka.admin import AdminClient

        self.ck = confluent_kafka
        self.bootstrap = bootstrap
        info(f"confluent-kafka {confluent_kafka.version()[0]}, librdkafka {confluent_kafka.libversion()[0]}")
        self.base = {"bootstrap.servers": bootstrap, "broker.address.family": "v4"}
        self.admin = AdminClient(dict(self.base))

    def create_topic(self, topic, partitions):
        from confluent_kafka.admin import NewTopic

        for _, f in self.admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)], operation_timeout=10).items():
            f.result(timeout=TIMEOUT_S)

    def produce(self, topic, records, codec, acks, idempotent):
        conf = dict(self.base)
        conf.update({"acks": str(acks), "compression.type": codec or "none", "enable.idempotence": idempotent, "linger.ms": 5, "message.max.bytes": 2 * 1024 * 1024})
        p = self.ck.Producer(conf)
        acked = [None] * len(records)
        errors = []

        def cb(n):
            def on_delivery(err, msg):
                if err is not None:
                    errors.append(f"record {n}: {err}")
                else:
                    acked[n] = (msg.partition(), msg.offset())

            return on_delivery

        for n, r in enumerate(records):
            while True:
                try:
                    p.produce(topic, value=r["value"], key=r["key"], partition=r["partition"], timestamp=r["timestamp"], headers=r["headers"], on_delivery=cb(n))
                    break
                except BufferError:
                    p.poll(0.1)
            p.poll(0)
        left = p.flush(TIMEOUT_S)
        if left:
            raise RuntimeError(f"{left} records not delivered after {TIMEOUT_S}s")
        if errors:
            raise RuntimeError(f"delivery errors: {errors[:5]}")
        return acked

    def _consumer(self):
        conf = dict(self.base)
        # librdkafka wants a group.id for a consumer; with assign() and no commits it never
        # needs the group coordinator.
        conf.update({"group.id": "strom-python-test", "enable.auto.commit": False, "enable.auto.offset.store": False, "auto.offset.reset": "earliest", "fetch.wait.max.ms": 200})
        return self.ck.Consumer(conf)

    def consume(self, topic, partitions, expected):
        c = self._consumer()
        c.assign([self.ck.TopicPartition(topic, p, self.ck.OFFSET_BEGINNING) for p in range(partitions)])
        out = []
        deadline = time.time() + TIMEOUT_S
        extra_until = None
        while time.time() < deadline:
            if len(out) >= expected:
                extra_until = extra_until or time.time() + 0.3
                if time.time() > extra_until:
                    break
            for m in c.consume(num_messages=500, timeout=0.3):
                if m.error():
                    fail(f"consumer error: {m.error()}")
                    continue
                tstype, ts = m.timestamp()
                out.append(
                    dict(
                        partition=m.partition(),
                        offset=m.offset(),
                        key=m.key(),
                        value=m.value(),
                        headers=list(m.headers() or []),
                        timestamp=ts,
                        ts_type="create" if tstype == self.ck.TIMESTAMP_CREATE_TIME else f"type {tstype}",
                    )
                )
        c.close()
        return sorted(out, key=lambda r: (r["partition"], r["offset"]))

    def partitions_for(self, topic):
        deadline = time.time() + 20
        while time.time() < deadline:
            md = self.admin.list_topics(topic=topic, timeout=10)
            t = md.topics.get(topic)
            if t is not None and t.error is None and t.partitions:
                return sorted(t.partitions)
            time.sleep(0.2)
        return []

    def list_offsets(self, topic, partitions, queries):
        TP = self.ck.TopicPartition
        c = self._consumer()
        earliest, latest = {}, {}
        for p in range(partitions):
            lo, hi = c.get_watermark_offsets(TP(topic, p), timeout=10, cached=False)
            earliest[p], latest[p] = lo, hi
        for_times = {}
        for p, ts in queries:
            [r] = c.offsets_for_times([TP(topic, p, ts)], timeout=10)
            if r.error:
                raise RuntimeError(f"offsets_for_times error: {r.error}")
            for_times[(p, ts)] = None if r.offset < 0 else r.offset
        c.close()

        # The same through the admin API's ListOffsets.
        from confluent_kafka.admin import OffsetSpec

        for spec_name, spec, want in [("earliest", OffsetSpec.earliest(), earliest), ("latest", OffsetSpec.latest(), latest)]:
            res = self.admin.list_offsets({TP(topic, p): spec for p in range(partitions)}, request_timeout=10)
            for tp, f in res.items():
                got = f.result(timeout=TIMEOUT_S).offset
                if got != want[tp.partition]:
                    fail(f"admin list_offsets {spec_name} partition {tp.partition}: {got}, consumer said {want[tp.partition]}")
        for p, ts in queries:
            res = self.admin.list_offsets({TP(topic, p): OffsetSpec.for_timestamp(ts)}, request_timeout=10)
            got = list(res.values())[0].result(timeout=TIMEOUT_S).offset
            got = None if got < 0 else got
            if got != for_times[(p, ts)]:
                fail(f"admin list_offsets for_timestamp partition {p} ts {ts}: {got}, consumer said {for_times[(p, ts)]}")
        return earliest, latest, for_times

    def describe_configs(self, topic):
        from confluent_kafka.admin import ConfigResource, ResourceType

        out = {}
        for _, f in self.admin.describe_configs([ConfigResource(ResourceType.TOPIC, topic)], request_timeout=10).items():
            for name, entry in f.result(timeout=TIMEOUT_S).items():
                out[name] = entry.value
        return out

    def close(self):
        pass


# --- aiokafka -------------------------------------------------------------------------------


class AioKafka:
    """aiokafka behind a synchronous face: each call runs to completion on one event loop."""

    name = "aiokafka"

    def __init__(self, bootstrap):
        import aiokafka
        import aiokafka.codec

        self.aiokafka = aiokafka
        self.bootstrap = bootstrap
        self.loop = asyncio.new_event_loop()
        self.codecs = [None, "gzip"]
        for codec, has in [("snappy", aiokafka.codec.has_snappy), ("lz4", aiokafka.codec.has_lz4), ("zstd", aiokafka.codec.has_zstd)]:
            if has():
                self.codecs.append(codec)
            else:
                fail(f"aiokafka codec {codec} is not available (requirements.txt lists cramjam)")
        info(f"aiokafka {aiokafka.__version__}, codecs {self.codecs}")
        from aiokafka.admin import AIOKafkaAdminClient

        async def start_admin():
            admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=30000)
            await admin.start()
            return admin

        self.admin = self.run(start_admin())

    def run(self, coro):
        return self.loop.run_until_complete(asyncio.wait_for(coro, TIMEOUT_S * 2))

    def create_topic(self, topic, partitions):
        from aiokafka.admin import NewTopic

        resp = self.run(self.admin.create_topics([NewTopic(topic, partitions, 1)], timeout_ms=10000))
        errs = resp_errors(resp.to_object())
        if errs:
            raise RuntimeError(f"CreateTopics errors: {errs}")

    def produce(self, topic, records, codec, acks, idempotent):
        async def go():
            p = self.aiokafka.AIOKafkaProducer(
                bootstrap_servers=self.bootstrap,
                acks=acks,
                compression_type=codec,
                enable_idempotence=idempotent,
                linger_ms=5,
                max_request_size=2 * 1024 * 1024,
            )
            await p.start()
            try:
                futs = [
                    await p.send(topic, value=r["value"], key=r["key"], headers=r["headers"], partition=r["partition"], timestamp_ms=r["timestamp"])
                    for r in records
                ]
                await p.flush()
                mds = await asyncio.gather(*futs)
                # With acks=0 aiokafka resolves each send to None: there is no offset to check.
                return [None if md is None else (md.partition, md.offset) for md in mds]
            finally:
                await p.stop()

        return self.run(go())

    def _consumer(self):
        return self.aiokafka.AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=200,
        )

    def consume(self, topic, partitions, expected):
        from aiokafka import TopicPartition

        async def go():
            c = self._consumer()
            await c.start()
            try:
                tps = [TopicPartition(topic, p) for p in range(partitions)]
                c.assign(tps)
                await c.seek_to_beginning(*tps)
                out = []
                deadline = time.time() + TIMEOUT_S
                extra = False
                while time.time() < deadline:
                    if len(out) >= expected:
                        if extra:
                            break
                        extra = True
                    batch = await c.getmany(timeout_ms=300 if extra else 500)
                    for tp, msgs in batch.items():
                        for m in msgs:
                            out.append(
                                dict(
                                    partition=m.partition,
                                    offset=m.offset,
                                    key=m.key,
                                    value=m.value,
                                    headers=list(m.headers or []),
                                    timestamp=m.timestamp,
                                    ts_type="create" if m.timestamp_type == 0 else f"type {m.timestamp_type}",
                                )
                            )
                return sorted(out, key=lambda r: (r["partition"], r["offset"]))
            finally:
                await c.stop()

        return self.run(go())

    def partitions_for(self, topic):
        async def go():
            c = self._consumer()
            await c.start()
            try:
                deadline = time.time() + 20
                while time.time() < deadline:
                    parts = await c.partitions_for_topic(topic) if asyncio.iscoroutinefunction(c.partitions_for_topic) else c.partitions_for_topic(topic)
                    if parts:
                        return sorted(parts)
                    await c._client.force_metadata_update()
                    await asyncio.sleep(0.2)
                return []
            finally:
                await c.stop()

        return self.run(go())

    def list_offsets(self, topic, partitions, queries):
        from aiokafka import TopicPartition

        async def go():
            c = self._consumer()
            await c.start()
            try:
                tps = [TopicPartition(topic, p) for p in range(partitions)]
                earliest = {tp.partition: o for tp, o in (await c.beginning_offsets(tps)).items()}
                latest = {tp.partition: o for tp, o in (await c.end_offsets(tps)).items()}
                for_times = {}
                for p, ts in queries:
                    tp = TopicPartition(topic, p)
                    r = (await c.offsets_for_times({tp: ts}))[tp]
                    for_times[(p, ts)] = None if r is None else r.offset
                return earliest, latest, for_times
            finally:
                await c.stop()

        return self.run(go())

    def describe_configs(self, topic):
        from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

        resps = self.run(self.admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)]))
        out = {}
        for r in resps:
            out.update(configs_from_response(r.to_object()))
        return out

    def close(self):
        self.run(self.admin.close())
        self.loop.close()


# --- the run --------------------------------------------------------------------------------

CLIENTS = {"kafka-python": (KafkaPython, "kafka"), "confluent-kafka": (ConfluentKafka, "confluent_kafka"), "aiokafka": (AioKafka, "aiokafka")}


def phases(client):
    """(label, codec, acks, idempotent, create_through_admin)."""
    codecs = client.codecs
    acks_cycle = ["all", 1, 0]
    out = []
    for n, codec in enumerate(codecs):
        acks = acks_cycle[n % 3]
        out.append((f"{codec or 'none'}-acks{acks}", codec, acks, False, True))
    # Every acks setting uncompressed, then an idempotent producer, then auto-create.
    for acks in acks_cycle:
        label = f"none-acks{acks}"
        if label not in [p[0] for p in out]:
            out.append((label, codecs[0], acks, False, True))
    out.append(("idempotent-" + (codecs[-1] or "none"), codecs[-1], "all", True, True))
    out.append(("autocreate", codecs[1], 1, False, False))
    return out


def run_phase(client, phase, codec, acks, idempotent, create):
    topic = f"py-{client.name}-{phase}-{RUN}"
    t0 = time.time()
    if create:
        client.create_topic(topic, PARTITIONS)
        partitions = client.partitions_for(topic)
        if partitions != list(range(PARTITIONS)):
            fail(f"[{phase}] topic {topic} has partitions {partitions}, expected {PARTITIONS}")
            return
        n_parts = PARTITIONS
    else:
        n_parts = None
    base_ts = int(time.time() * 1000) - 3_600_000
    if n_parts is None:
        # Auto-create through Metadata: produce one record without a partition first so the
        # client's metadata request creates the topic, then learn the partition count.
        n_parts = 1
    records = make_records(base_ts, n_parts)
    acked = client.produce(topic, records, codec, acks, idempotent)
    if not create:
        partitions = client.partitions_for(topic)
        if not partitions:
            fail(f"[{phase}] topic {topic} was not auto-created")
            return
    got = client.consume(topic, n_parts, len(records))
    ok = verify(phase, records, None if acks == 0 else acked, got, n_parts)
    queries = list(offset_queries(records, n_parts))
    earliest, latest, for_times = client.list_offsets(topic, n_parts, queries)
    ok = verify_offsets(phase, records, n_parts, earliest, latest, for_times) and ok
    if create and hasattr(client, "describe_configs"):
        check_retention(phase, client.describe_configs(topic))
    info(f"[{phase}] {'ok' if ok else 'MISMATCH'}: {len(records)} records, codec {codec or 'none'}, acks={acks}, idempotent={idempotent}, {n_parts} partition(s), {time.time() - t0:.1f}s")


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    if len(args) != 2 or args[1] not in CLIENTS:
        print(__doc__, file=sys.stderr)
        return 64
    bootstrap, name = args
    logging.basicConfig(
        level=logging.DEBUG if "--debug" in sys.argv else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    cls, module = CLIENTS[name]
    try:
        __import__(module)
    except ImportError as e:
        print(f"FAIL: the Python package for {name} is not installed ({e}); ./scripts/test installs it (python3 -m pip install -r tests/python/requirements.txt)")
        return 2
    client = cls(bootstrap)
    try:
        only = [a.split("=", 1)[1] for a in sys.argv[1:] if a.startswith("--only=")]
        for label, codec, acks, idempotent, create in phases(client):
            if only and label not in only:
                continue
            try:
                run_phase(client, label, codec, acks, idempotent, create)
            except Exception as e:  # noqa: BLE001 - report and go on with the next phase
                fail(f"[{label}] {type(e).__name__}: {e}")
                traceback.print_exc()
    finally:
        client.close()
    if FAILURES:
        print(f"{name}: {len(FAILURES)} failure(s)")
        return 1
    print(f"{name}: all phases matched")
    return 0


if __name__ == "__main__":
    sys.exit(main())
