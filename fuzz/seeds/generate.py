#!/usr/bin/env python3
"""Writes the seed inputs of the fuzz targets (run from anywhere; rewrites the files next to it).

Seeds give libFuzzer valid inputs to mutate from, so it reaches the code past the first
checks (body decoding, CRC-valid batches, known config keys) within seconds rather than hours.
Encoded by hand from the Kafka protocol spec, independent of the code under test.
"""
import json
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def crc32c(data):
    # Castagnoli, reflected polynomial 0x82F63B78: what Kafka v2 batches use.
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def uvarint(n):
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def varint(n):  # zig-zag, as record fields use
    return uvarint((n << 1) ^ (n >> 63))


def compact_string(s):
    return uvarint(len(s) + 1) + s


def header_v2(api_key, version, correlation_id, client_id):
    # Request header v2: key, version, correlation id, nullable (non-compact) client id, tags.
    return struct.pack(">hhih", api_key, version, correlation_id, len(client_id)) + client_id + b"\0"


def header_v1(api_key, version, correlation_id, client_id):
    return struct.pack(">hhih", api_key, version, correlation_id, len(client_id)) + client_id


def record_batch(values, base_timestamp=1_700_000_000_000, producer=(-1, -1, -1)):
    records = bytearray()
    for i, value in enumerate(values):
        body = b"\0" + varint(i) + varint(i) + varint(-1) + varint(len(value)) + value + varint(0)
        records += varint(len(body)) + body
    producer_id, producer_epoch, base_sequence = producer
    after_crc = struct.pack(
        ">hiqqqhii", 0, len(values) - 1, base_timestamp, base_timestamp + len(values) - 1,
        producer_id, producer_epoch, base_sequence, len(values)) + records
    crc = crc32c(after_crc)
    batch_length = 4 + 1 + 4 + len(after_crc)  # leader epoch, magic, crc, then the rest
    return struct.pack(">qiibI", 0, batch_length, -1, 2, crc) + after_crc


def legacy_message(offset, magic, attributes, key, value, timestamp=1_700_000_000_000):
    # Message format v0/v1: offset, size, CRC-32 (IEEE) over magic..end, magic, attributes,
    # [timestamp], key, value (i32 lengths, -1 for null).
    import zlib
    body = struct.pack(">bb", magic, attributes)
    if magic == 1:
        body += struct.pack(">q", timestamp)
    for field in (key, value):
        body += struct.pack(">i", -1) if field is None else struct.pack(">i", len(field)) + field
    message = struct.pack(">I", zlib.crc32(body)) + body
    return struct.pack(">qi", offset, len(message)) + message


def write(target, name, data):
    directory = os.path.join(HERE, target)
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, name), "wb") as f:
        f.write(data)


def main():
    batch = record_batch([b"hello", b"strom"])
    idempotent = record_batch([b"x"], producer=(4000, 0, 17))

    # ApiVersions v3 (flexible): client software name and version.
    write("request_frame", "api_versions_v3",
          header_v2(18, 3, 1, b"seed") + compact_string(b"strom-seed") + compact_string(b"1.0") + b"\0")
    # ApiVersions v0 (empty body) and v9, newer than supported.
    write("request_frame", "api_versions_v0", header_v1(18, 0, 2, b"seed"))
    write("request_frame", "api_versions_v9", header_v2(18, 9, 3, b"seed") + b"\0\0\0")
    # Metadata v12: one topic by name (zero topic id), no auto-creation.
    topic = b"\0" * 16 + compact_string(b"events") + b"\0"
    write("request_frame", "metadata_v12",
          header_v2(3, 12, 4, b"seed") + uvarint(2) + topic + b"\0\0\0")
    # Metadata v1 (non-flexible): null topic array = all topics.
    write("request_frame", "metadata_v1", header_v1(3, 1, 5, b"seed") + struct.pack(">i", -1))
    # Produce v9 (flexible): acks=-1, one topic, one partition, one valid batch.
    partition = struct.pack(">i", 0) + uvarint(len(batch) + 1) + batch + b"\0"
    topic_data = compact_string(b"events") + uvarint(2) + partition + b"\0"
    write("request_frame", "produce_v9",
          header_v2(0, 9, 6, b"seed") + b"\0" + struct.pack(">hi", -1, 30000)
          + uvarint(2) + topic_data + b"\0")
    # Produce v3 (non-flexible) with an idempotent batch.
    partition = struct.pack(">ii", 0, len(idempotent)) + idempotent
    topic_data = struct.pack(">h", 6) + b"events" + struct.pack(">i", 1) + partition
    write("request_frame", "produce_v3",
          header_v1(0, 3, 7, b"seed") + struct.pack(">hhii", -1, 1, 30000, 1) + topic_data)

    # Versions Kafka 4 removed, converted by compat.rs. ListOffsets v0: replica -1, one
    # partition, LATEST, max_num_offsets 10.
    def string(b):
        return struct.pack(">h", len(b)) + b
    write("request_frame", "list_offsets_v0",
          header_v1(2, 0, 8, b"seed") + struct.pack(">ii", -1, 1) + string(b"events")
          + struct.pack(">iiqi", 1, 0, -1, 10))
    # OffsetCommit v1: group, generation, member, one partition with a commit timestamp.
    write("request_frame", "offset_commit_v1",
          header_v1(8, 1, 9, b"seed") + string(b"group") + struct.pack(">i", 3) + string(b"m-1")
          + struct.pack(">i", 1) + string(b"events") + struct.pack(">iiqq", 1, 0, 42, 1_700_000_000_000)
          + string(b"meta"))
    # DescribeConfigs v0: one topic, all keys (null key array).
    write("request_frame", "describe_configs_v0",
          header_v1(32, 0, 10, b"seed") + struct.pack(">ib", 1, 2) + string(b"events")
          + struct.pack(">i", -1))

    write("record_batch", "two_records", batch)
    write("record_batch", "idempotent", idempotent)
    write("record_batch", "two_batches", batch + idempotent)

    import gzip
    import io
    v0 = legacy_message(0, 0, 0, b"k", b"v0") + legacy_message(1, 0, 0, None, b"hello")
    v1 = legacy_message(0, 1, 0, b"k", b"v1") + legacy_message(1, 1, 0, b"t", None)
    write("message_set", "magic0", v0)
    write("message_set", "magic1", v1)
    inner = legacy_message(0, 1, 0, b"a", b"x") + legacy_message(1, 1, 0, None, b"y")
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as f:
        f.write(inner)
    write("message_set", "magic1_gzip", legacy_message(1, 1, 1, None, buffer.getvalue()))
    # Produce v2 with the magic 1 set.
    partition = struct.pack(">ii", 0, len(v1)) + v1
    topic_data = struct.pack(">h", 6) + b"events" + struct.pack(">i", 1) + partition
    write("request_frame", "produce_v2",
          header_v1(0, 2, 8, b"seed") + struct.pack(">hii", 1, 30000, 1) + topic_data)
    # produce_validator: a configuration byte (1 compacted, 2 bounds, 4 LogAppendTime), the
    # broker's clock (i64), then one batch; the target fixes length, magic and CRC itself.
    now = struct.pack(">q", 1_700_000_000_000)
    lying = bytearray(record_batch([b"a", b"bb", b"ccc"]))
    lying[35:43] = struct.pack(">q", -1)  # maxTimestamp -1, as sarama 1.22 writes it
    write("produce_validator", "plain", b"\0" + now + batch)
    write("produce_validator", "max_minus_one", b"\0" + now + bytes(lying))
    write("produce_validator", "compacted_bounded", b"\3" + now + batch)
    write("produce_validator", "log_append_time", b"\4" + now + bytes(lying))

    # follower_append: operations (opcode, length byte, payload). The target's log starts with
    # three one-record leader batches at epochs 0, 0, 1 (log end offset 3). Opcode 0 appends the
    # payload raw, 1 with every batch fixed up (lengths, magic, offsets, epochs, CRC), both with
    # the length in 16-byte units; 2 truncate_to, 3 truncate_fully_and_start_at (u64 LE
    # payloads), 4 a leader append, 5 a reopen (even length: clean), 6 an epoch lookup.
    def stored(batch, base_offset, epoch):
        out = bytearray(batch)
        out[0:8] = struct.pack(">q", base_offset)
        out[12:16] = struct.pack(">i", epoch)
        return bytes(out)

    def append(opcode, blob):
        blob = blob + b"\0" * (-len(blob) % 16)
        return bytes([opcode, len(blob) // 16]) + blob

    def op(opcode, payload):
        return bytes([opcode, len(payload)]) + payload

    follower = stored(batch, 3, 1) + stored(idempotent, 5, 2)
    write("follower_append", "raw_append", append(0, follower))
    write("follower_append", "fixed_append_truncate_reopen",
          append(1, batch + idempotent + batch) + op(2, struct.pack("<q", 4))
          + append(1, idempotent) + op(5, b"u") + op(6, struct.pack("<i", 1))
          + op(4, b"\3") + op(5, b"cl"))
    write("follower_append", "restart_inside_a_batch",
          op(3, struct.pack("<q", 7)) + append(0, stored(record_batch([b"a"] * 4), 5, 3)))

    # txn_index: a .txnindex file (version i16 0, producer id, first offset, last offset,
    # last stable offset), and a COMMIT marker batch (control + transactional attributes; key
    # version 0 + type 1, value version 0 + coordinator epoch 5).
    def aborted(pid, first, last, lso):
        return struct.pack(">hqqqq", 0, pid, first, last, lso)
    write("txn_index", "two_entries", aborted(7, 0, 4, 2) + aborted(9, 2, 8, 9))
    key = struct.pack(">hh", 0, 1)
    value = struct.pack(">hi", 0, 5)
    body = b"\0" + varint(0) + varint(0) + varint(len(key)) + key + varint(len(value)) + value + varint(0)
    record = varint(len(body)) + body
    after_crc = struct.pack(">hiqqqhii", 0x30, 0, 1000, 1000, 42, 3, -1, 1) + record
    crc = crc32c(after_crc)
    marker = struct.pack(">qiibI", 0, 9 + 4 + len(after_crc), 0, 2, crc) + after_crc
    write("txn_index", "commit_marker", marker)

    write("broker_config", "server.properties", b"""# a small server.properties
node.id=1
log.dirs=/var/lib/strom
listeners=PLAINTEXT://0.0.0.0:9092
num.partitions : 3
log.retention.hours 168
log.segment.bytes=1073741824
auto.create.topics.enable=true
# a Kafka key Strom ignores, an escape and a continuation line
num.network.threads=3
log.cleaner.enable=\\u0066alse
advertised.listeners=PLAINTEXT://\\
    localhost:9092
""")

    # znode_json: the data of each znode kind as Kafka 3.x writes it (ZkData.scala).
    znodes = {
        "broker_v5": '{"features":{},"listener_security_protocol_map":{"PLAINTEXT":"PLAINTEXT"},'
                     '"endpoints":["PLAINTEXT://localhost:9091"],"jmx_port":-1,"port":9091,'
                     '"host":"localhost","version":5,"timestamp":"1707276552023","rack":"r1"}',
        "controller": '{"version":2,"brokerid":0,"timestamp":"1685460739018","kraftControllerEpoch":-1}',
        "controller_epoch": '7',
        "topic": '{"partitions":{"0":[2,3,1],"1":[3,1,2]},"topic_id":"cMr3GpVESX2L3byPGf93lQ",'
                 '"adding_replicas":{"1":[2]},"removing_replicas":{},"version":3}',
        "partition_state": '{"controller_epoch":1,"leader":2,"version":1,"leader_epoch":0,"isr":[2,3,1]}',
        "topic_config": '{"version":1,"config":{"retention.ms":"100000"}}',
        "config_change": '{"version":2,"entity_path":"topics/my-topic"}',
        "isr_change": '{"version":1,"partitions":[{"topic":"orders","partition":0}]}',
        "cluster_id": '{"version":"1","id":"Sfr7YvlkRHSHrmSrwq9mug"}',
        "producer_id_block": '{"version":1,"broker":0,"block_start":"0","block_end":"999"}',
    }
    for name, text in znodes.items():
        write("znode_json", name, text.encode())

    # txn_log: __transaction_state records (TransactionLogKey v0, TransactionLogValue v0 and v1).
    def kstring(b):
        return struct.pack(">h", len(b)) + b
    write("txn_log", "key", struct.pack(">h", 0) + kstring(b"my-txn"))
    fields = struct.pack(">qhib", 4000, 2, 60000, 1)  # producer id, epoch, timeout, Ongoing
    stamps = struct.pack(">qq", 1_700_000_000_500, 1_700_000_000_000)
    v0_partitions = struct.pack(">i", 1) + kstring(b"orders") + struct.pack(">iii", 2, 0, 3)
    write("txn_log", "value_v0", struct.pack(">h", 0) + fields + v0_partitions + stamps)
    v1_partitions = uvarint(2) + compact_string(b"orders") + uvarint(3) + struct.pack(">ii", 0, 3) + b"\0"
    tags = uvarint(2) + uvarint(0) + uvarint(8) + struct.pack(">q", 17) + uvarint(2) + uvarint(2) + struct.pack(">h", 1)
    write("txn_log", "value_v1", struct.pack(">h", 1) + fields + v1_partitions + stamps + tags)
    write("txn_log", "value_v1_null_partitions",
          struct.pack(">h", 1) + struct.pack(">qhib", 4000, 3, 60000, 4) + b"\0" + stamps + b"\0")

    # mesos_events: a Mesos v1 event stream (RecordIO-framed JSON, as docs/scheduler-http-api.md
    # shows it); the first byte is the chunk size the target feeds the decoder with.
    def recordio(event):
        text = json.dumps(event).encode()
        return str(len(text)).encode() + b"\n" + text
    reserved = {"type": "DYNAMIC", "role": "r", "principal": "p", "labels": {"labels": [
        {"key": "resource_id", "value": "6f1c8f0e-0b8e-4a8f-9d2b-2f1d3c4b5a69"}]}}
    write("mesos_events", "subscribed", b"\x07" + recordio({"type": "SUBSCRIBED", "subscribed": {
        "framework_id": {"value": "fw-1"}, "heartbeat_interval_seconds": 15}}))
    write("mesos_events", "offers", b"\x40" + recordio({"type": "OFFERS", "offers": {"offers": [{
        "id": {"value": "o-1"}, "agent_id": {"value": "a-1"}, "hostname": "h", "resources": [
            {"name": "cpus", "type": "SCALAR", "scalar": {"value": 2}},
            {"name": "disk", "type": "SCALAR", "scalar": {"value": 50}, "reservations": [reserved],
             "disk": {"source": {"type": "MOUNT", "mount": {"root": "/mnt/d"}},
                      "persistence": {"id": "v"}, "volume": {"mode": "RW", "container_path": "data"}}},
            {"name": "ports", "type": "RANGES", "ranges": {"range": [{"begin": 31000, "end": 31005}]}}]}]}}))
    write("mesos_events", "update_heartbeat", b"\x01" + recordio({"type": "UPDATE", "update": {"status": {
        "task_id": {"value": "t"}, "agent_id": {"value": "a"}, "state": "TASK_RUNNING", "uuid": "AAEC",
        "check_status": {"type": "COMMAND", "command": {"exit_code": 0}}}}}) + recordio({"type": "HEARTBEAT"}))


if __name__ == "__main__":
    main()
