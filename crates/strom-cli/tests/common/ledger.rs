//! The acknowledged-records checker of the crash and failover tests: a producer that notes every
//! record the broker acknowledged (partition, offset, id, checksum), and a reader that checks a
//! topic against those notes.
//!
//! Each record's key is its id (8 bytes, big-endian) and its value is `payload(id, len)` with a
//! length derived from the id, so the reader can tell a changed byte from a moved record. Ids
//! only grow, so "in production order" is "ids increase along a partition".

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::FutureRecord;

use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::producer::FutureProducer;

use super::{client_config, client_runtime, consume, payload};

/// The ledger producer's client context: with `STROM_RDKAFKA_DEBUG` set (librdkafka debug
/// contexts, e.g. `eos,topic,broker`), librdkafka's log lines go to stderr with a timestamp.
struct LoggingContext {
    on: bool,
}

impl ClientContext for LoggingContext {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        if !self.on {
            return;
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        eprintln!(
            "rdkafka {}.{:03} {level:?} {facility}: {message}",
            now.as_secs(),
            now.subsec_millis()
        );
    }
}

/// The length of record `id`'s value: 100..3000 bytes, fixed by the id.
pub fn payload_len(id: u64) -> usize {
    100 + (id.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40) as usize % 2900
}

/// How many records [`Ledger::produce_until`] keeps outstanding at most.
pub const WINDOW: usize = 2000;

/// (partition, offset) → (id, checksum).
type Positions = HashMap<(i32, i64), (u64, u32)>;

/// Every acknowledged record, shared between the producer's delivery callbacks and the test.
#[derive(Clone, Default)]
pub struct Ledger {
    acked: Arc<Mutex<Positions>>,
    /// When each acknowledged record was sent and when its acknowledgement arrived.
    times: Arc<Mutex<Vec<(Instant, Instant)>>>,
}

/// What [`Ledger::verify`] found.
#[derive(Debug)]
pub struct Verified {
    /// Acknowledged records, all found intact.
    pub acknowledged: usize,
    /// Records in the topic (acknowledged or not).
    pub in_log: usize,
}

impl Ledger {
    /// The first acknowledgement of a record sent at or after `t` (how long a client waits
    /// for a failover started at `t`), if any arrived yet.
    pub fn first_ack_of_send_after(&self, t: Instant) -> Option<Instant> {
        let times = self.times.lock().unwrap();
        times
            .iter()
            .filter(|(sent, _)| *sent >= t)
            .map(|(_, acked)| *acked)
            .min()
    }

    /// How many records have been acknowledged so far.
    pub fn len(&self) -> usize {
        self.acked.lock().unwrap().len()
    }

    /// Produces to `topic` with an idempotent `acks=all` producer (plus `extra` settings) until
    /// `stop` is set, ids from `first_id` on; notes each acknowledgement. Returns the next
    /// unused id. Failed sends are expected (the broker may be dead) and not noted.
    ///
    /// At most [`WINDOW`] records are outstanding: a producer that queued faster than the
    /// cluster acknowledges would see its own backlog time out, and librdkafka answers timed-out
    /// records by bumping the producer epoch, after which a record that was in flight may be
    /// written twice (under the old and the new epoch) — Kafka promises idempotence only within
    /// an epoch. The default `message.timeout.ms` (30 s) is above any failover the tests allow,
    /// so a duplicate found here is the broker's.
    pub fn produce_until(
        &self,
        bootstrap: &str,
        topic: &str,
        stop: Arc<AtomicBool>,
        first_id: u64,
        extra: &[(&str, &str)],
    ) -> u64 {
        self.produce_at(bootstrap, topic, stop, first_id, extra, None)
    }

    /// [`Ledger::produce_until`] at no more than `rate` records per second (unbounded with
    /// `None`): a load a follower restarted under it can catch up with on a small machine.
    pub fn produce_at(
        &self,
        bootstrap: &str,
        topic: &str,
        stop: Arc<AtomicBool>,
        first_id: u64,
        extra: &[(&str, &str)],
        rate: Option<u32>,
    ) -> u64 {
        let mut settings = vec![
            ("acks", "all"),
            ("enable.idempotence", "true"),
            ("linger.ms", "2"),
            ("message.timeout.ms", "30000"),
            ("request.timeout.ms", "2000"),
        ];
        settings.extend_from_slice(extra);
        let debug = std::env::var("STROM_RDKAFKA_DEBUG").unwrap_or_default();
        if !debug.is_empty() {
            settings.push(("debug", &debug));
        }
        let mut config = client_config(bootstrap, &settings);
        if !debug.is_empty() {
            config.set_log_level(RDKafkaLogLevel::Debug);
        }
        let producer: FutureProducer<LoggingContext> = config
            .create_with_context(LoggingContext {
                on: !debug.is_empty(),
            })
            .expect("producer");
        let rt = client_runtime();
        let mut id = first_id;
        let started = Instant::now();
        rt.block_on(async {
            let mut pending = VecDeque::new();
            while !stop.load(Ordering::Relaxed) {
                if let Some(rate) = rate {
                    let due =
                        started + Duration::from_secs_f64((id - first_id) as f64 / f64::from(rate));
                    let now = Instant::now();
                    if due > now {
                        tokio::time::sleep(due - now).await;
                        continue;
                    }
                }
                if pending.len() >= WINDOW {
                    let oldest: tokio::task::JoinHandle<()> = pending.pop_front().unwrap();
                    let _ = oldest.await;
                    continue;
                }
                let value = payload(id, payload_len(id));
                let key = id.to_be_bytes();
                let sum = crc32c::crc32c(&value);
                match producer.send_result(FutureRecord::to(topic).key(&key).payload(&value)) {
                    Ok(delivery) => {
                        let (acked, times) = (self.acked.clone(), self.times.clone());
                        let this_id = id;
                        let sent = Instant::now();
                        pending.push_back(tokio::spawn(async move {
                            if let Ok(Ok(d)) = delivery.await {
                                times.lock().unwrap().push((sent, Instant::now()));
                                acked
                                    .lock()
                                    .unwrap()
                                    .insert((d.partition, d.offset), (this_id, sum));
                            }
                        }));
                        id += 1;
                    }
                    Err(_) => tokio::time::sleep(Duration::from_millis(2)).await,
                }
                if pending.len() % 64 == 0 {
                    tokio::task::yield_now().await;
                }
            }
            for p in pending {
                let _ = p.await;
            }
        });
        id
    }

    /// Reads `partitions` of `topic` from the start to their ends and checks that every
    /// acknowledged record is at its acknowledged offset with its bytes, exactly once (Kafka
    /// promises nothing about a record whose send failed), that offsets are contiguous from 0
    /// and that acknowledged ids increase along each partition. Panics naming the first
    /// violation.
    pub fn verify(&self, bootstrap: &str, topic: &str, partitions: &[i32]) -> Verified {
        let consumer: BaseConsumer = client_config(bootstrap, &[]).create().unwrap();
        let acked = self.acked.lock().unwrap().clone();
        let mut total = 0usize;
        for p in partitions {
            let (low, high) = consumer
                .fetch_watermarks(topic, *p, Duration::from_secs(60))
                .unwrap();
            assert_eq!(low, 0, "partition {p} starts at 0");
            total += high as usize;
        }
        let records = consume(
            bootstrap,
            topic,
            partitions,
            total,
            Duration::from_secs(120),
        );
        let mut seen_ids: HashMap<u64, usize> = HashMap::new();
        let mut by_position = HashMap::new();
        let mut last: HashMap<i32, (i64, u64)> = HashMap::new();
        let mut last_acked: HashMap<i32, u64> = HashMap::new();
        let mut last_any: HashMap<i32, u64> = HashMap::new();
        let mut unacknowledged_out_of_order = 0usize;
        for r in &records {
            let id = u64::from_be_bytes(r.key.clone().unwrap().try_into().unwrap());
            let value = r.value.clone().unwrap();
            assert_eq!(
                value,
                payload(id, payload_len(id)),
                "record {id} at {}/{} has the payload it was sent with",
                r.partition,
                r.offset
            );
            *seen_ids.entry(id).or_default() += 1;
            by_position.insert((r.partition, r.offset), (id, crc32c::crc32c(&value)));
            let first = last.insert(r.partition, (r.offset, id));
            match first {
                None => assert_eq!(r.offset, 0, "partition {} starts at 0", r.partition),
                Some((offset, _)) => assert_eq!(
                    r.offset,
                    offset + 1,
                    "offsets are contiguous in partition {}",
                    r.partition
                ),
            }
            // Production order is checked among acknowledged records (what Kafka promises an
            // idempotent producer); a record whose send failed is only counted when it is out
            // of order, so a run shows it.
            if acked.contains_key(&(r.partition, r.offset)) {
                if let Some(previous) = last_acked.insert(r.partition, id) {
                    assert!(
                        id > previous,
                        "acknowledged records are in production order in partition {} (id \
                         {id} after {previous})",
                        r.partition
                    );
                }
            } else if last_any
                .get(&r.partition)
                .is_some_and(|previous| id < *previous)
            {
                unacknowledged_out_of_order += 1;
            }
            let newest = last_any.entry(r.partition).or_insert(id);
            *newest = (*newest).max(id);
        }
        if unacknowledged_out_of_order > 0 {
            eprintln!(
                "note: {unacknowledged_out_of_order} records whose send failed sit after records \
                 produced later"
            );
        }
        for ((partition, offset), (id, sum)) in &acked {
            assert_eq!(
                seen_ids[id], 1,
                "acknowledged record {id} appears exactly once"
            );
            assert_eq!(
                by_position.get(&(*partition, *offset)),
                Some(&(*id, *sum)),
                "acknowledged record {id} at {partition}/{offset} is present and intact"
            );
        }
        Verified {
            acknowledged: acked.len(),
            in_log: records.len(),
        }
    }
}
