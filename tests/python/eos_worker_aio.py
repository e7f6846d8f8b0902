#!/usr/bin/env python3
"""An exactly-once consume-transform-produce worker (aiokafka) that survives broker crashes,
for crates/strom-cli/tests/txn_crash.rs.

Usage: eos_worker_aio.py BOOTSTRAP INPUT OUTPUT GROUP TRANSACTIONAL_ID EXPECTED SECONDS BATCH PACE_MS

At most BATCH records per transaction, and a pause of PACE_MS after each commit, so that a
crash test's kills land in the middle of the work.

Reads INPUT (read_committed) in group GROUP, writes each record's value with "in-" replaced by
"out-" to OUTPUT in the same partition, and commits the consumed offsets in the same
transaction. Any error aborts the transaction (or, if the abort fails too, replaces the
producer: a new one with the same transactional id fences the old one and has its open
transaction aborted) and rewinds the consumer to the committed offsets, so a batch is either
committed with its offsets or redone. Exits 0 once the committed offsets cover EXPECTED input
records, 1 after SECONDS. Prints a line per event and a closing "worker done" line.

(librdkafka 2.16's send_offsets_to_transaction can stay blocked past its timeout after the
broker restarts, never sending the TxnOffsetCommit, so this worker uses aiokafka.)
"""

import asyncio
import sys
import time

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

BOOTSTRAP, INPUT, OUTPUT, GROUP, TXN_ID = sys.argv[1:6]
EXPECTED = int(sys.argv[6])
DEADLINE = time.time() + float(sys.argv[7])
BATCH = int(sys.argv[8])
PACE = int(sys.argv[9]) / 1000
PARTITIONS = 2


def log(message):
    print(f"{time.time():.3f} {message}", flush=True)


async def new_producer():
    while time.time() < DEADLINE:
        p = AIOKafkaProducer(
            bootstrap_servers=BOOTSTRAP,
            transactional_id=TXN_ID,
            transaction_timeout_ms=30000,
            request_timeout_ms=10000,
            retry_backoff_ms=100,
        )
        try:
            await asyncio.wait_for(p.start(), 20)
            log("producer initialised")
            return p
        except Exception as e:
            log(f"producer start failed: {type(e).__name__}: {e}")
            try:
                await asyncio.wait_for(p.stop(), 5)
            except Exception:
                pass
            await asyncio.sleep(0.2)
    sys.exit("no producer before the deadline")


async def committed_total(consumer):
    total = 0
    for p in range(PARTITIONS):
        try:
            offset = await asyncio.wait_for(consumer.committed(TopicPartition(INPUT, p)), 10)
        except Exception as e:
            log(f"committed() failed: {type(e).__name__}: {e}")
            return None
        total += max(offset or 0, 0)
    return total


async def rewind(consumer):
    for _ in range(100):
        try:
            for tp in consumer.assignment():
                offset = await asyncio.wait_for(consumer.committed(tp), 10)
                consumer.seek(tp, max(offset or 0, 0))
            return
        except Exception as e:
            log(f"rewind failed: {type(e).__name__}: {e}")
            await asyncio.sleep(0.2)


async def main():
    consumer = AIOKafkaConsumer(
        INPUT,
        bootstrap_servers=BOOTSTRAP,
        group_id=GROUP,
        isolation_level="read_committed",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=45000,
        request_timeout_ms=10000,
        retry_backoff_ms=100,
    )
    await consumer.start()
    producer = await new_producer()
    commits = aborts = replaced = 0
    while time.time() < DEADLINE:
        batch = await consumer.getmany(timeout_ms=500, max_records=BATCH)
        records = [(tp, m) for tp, ms in batch.items() for m in ms]
        if not records:
            total = await committed_total(consumer)
            if total is not None and total >= EXPECTED:
                break
            continue
        try:
            await asyncio.wait_for(producer.begin_transaction(), 10)
            futures = []
            positions = {}
            for tp, m in records:
                value = m.value.replace(b"in-", b"out-")
                futures.append(await producer.send(OUTPUT, value=value, partition=tp.partition))
                positions[tp] = m.offset + 1
            for f in futures:
                await asyncio.wait_for(f, 30)
            await asyncio.wait_for(producer.send_offsets_to_transaction(positions, GROUP), 30)
            await asyncio.wait_for(producer.commit_transaction(), 30)
            commits += 1
            log(f"committed {len(records)} records")
            await asyncio.sleep(PACE)
        except Exception as e:
            log(f"transaction failed: {type(e).__name__}: {e}")
            try:
                await asyncio.wait_for(producer.abort_transaction(), 15)
                aborts += 1
                log("aborted")
            except Exception as abort_error:
                log(f"abort failed: {type(abort_error).__name__}: {abort_error}; new producer")
                try:
                    await asyncio.wait_for(producer.stop(), 5)
                except Exception:
                    pass
                producer = await new_producer()
                replaced += 1
            await rewind(consumer)
    total = await committed_total(consumer)
    await producer.stop()
    await consumer.stop()
    log(
        f"worker done: committed offsets {total} of {EXPECTED}, {commits} commits, "
        f"{aborts} aborts, {replaced} new producers"
    )
    return 0 if total is not None and total >= EXPECTED else 1


sys.exit(asyncio.run(main()))
