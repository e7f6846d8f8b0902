//! kill -9 during `acks=all` produce: after every restart each acknowledged record is present
//! exactly once, in order, with an identical payload checksum.
//!
//! The broker is the real `strom` binary in a child process. Each round starts it on the same
//! data directory (recovering from the previous kill), produces with an idempotent `acks=all`
//! producer, and kills it with SIGKILL at a random moment. The seed is printed; set
//! `STROM_CRASH_SEED` to replay a run and `STROM_CRASH_ROUNDS` to change the number of rounds.

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::FutureRecord;

const TOPIC: &str = "crash";
const PARTITIONS: i32 = 3;

fn spawn_broker(dir: &Path, round: usize) -> BrokerProcess {
    let segment = "log.segment.bytes=262144".to_string();
    let partitions = format!("num.partitions={PARTITIONS}");
    spawn_broker_process(
        &dir.join("data"),
        &dir.join(format!("broker-round-{round}.log")),
        &[&segment, &partitions],
    )
}

/// The test's seeded generator (replayable from its seed).
struct Rng(rand_chacha::ChaCha8Rng);
impl Rng {
    fn new(seed: u64) -> Rng {
        use rand_core::SeedableRng as _;
        Rng(rand_chacha::ChaCha8Rng::seed_from_u64(seed))
    }
    fn next(&mut self) -> u64 {
        rand_core::Rng::next_u64(&mut self.0)
    }
    fn range(&mut self, low: u64, high: u64) -> u64 {
        low + self.next() % (high - low)
    }
}

fn checksum(bytes: &[u8]) -> u32 {
    crc32c::crc32c(bytes)
}

/// (partition, offset) → (id, checksum) of every acknowledged record.
type Acked = Arc<Mutex<HashMap<(i32, i64), (u64, u32)>>>;

fn produce_until_killed(
    bootstrap: &str,
    stop: Arc<AtomicBool>,
    first_id: u64,
    size_seed: u64,
    acked: Acked,
) -> u64 {
    let producer = producer(
        bootstrap,
        &[
            ("acks", "all"),
            ("enable.idempotence", "true"),
            ("linger.ms", "2"),
            ("message.timeout.ms", "4000"),
            ("request.timeout.ms", "2000"),
        ],
    );
    let rt = client_runtime();
    let mut id = first_id;
    rt.block_on(async {
        let mut rng = Rng::new(size_seed);
        let mut pending = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            let value = payload(id, rng.range(100, 3000) as usize);
            let key = id.to_be_bytes();
            let sum = checksum(&value);
            match producer.send_result(FutureRecord::to(TOPIC).key(&key).payload(&value)) {
                Ok(delivery) => {
                    let acked = acked.clone();
                    let this_id = id;
                    pending.push(tokio::spawn(async move {
                        if let Ok(Ok(d)) = delivery.await {
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

#[test]
fn acknowledged_records_survive_sigkill() {
    let seed: u64 = std::env::var("STROM_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    let rounds: usize = std::env::var("STROM_CRASH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    eprintln!("crash test seed {seed} ({rounds} rounds); replay with STROM_CRASH_SEED={seed}");
    let mut rng = Rng::new(seed);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let acked: Acked = Arc::new(Mutex::new(HashMap::new()));
    let mut next_id = 0u64;
    for round in 0..rounds {
        let mut broker = spawn_broker(dir, round);
        let bootstrap = broker.bootstrap();
        if round == 0 {
            create_topic(&bootstrap, TOPIC, PARTITIONS, &[]);
        }
        let stop = Arc::new(AtomicBool::new(false));
        let producer = {
            let (bootstrap, stop, acked) = (bootstrap.clone(), stop.clone(), acked.clone());
            let first = next_id;
            let size_seed = rng.next();
            std::thread::spawn(move || {
                produce_until_killed(&bootstrap, stop, first, size_seed, acked)
            })
        };
        let before = acked.lock().unwrap().len();
        std::thread::sleep(Duration::from_millis(rng.range(400, 2500)));
        broker.child.kill().expect("SIGKILL the broker");
        broker.child.wait().unwrap();
        stop.store(true, Ordering::Relaxed);
        next_id = producer.join().unwrap() + 1_000_000; // ids stay increasing across rounds
        let after = acked.lock().unwrap().len();
        eprintln!(
            "round {round}: {} records acknowledged before the kill",
            after - before
        );
    }

    // Final restart: everything acknowledged must be there, once, in order, intact.
    let mut broker = spawn_broker(dir, rounds);
    let bootstrap = broker.bootstrap();
    let consumer: BaseConsumer = client_config(&bootstrap, &[]).create().unwrap();
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() > 100,
        "the test acknowledged too little to mean anything ({})",
        acked.len()
    );
    let mut total = 0usize;
    let mut ends = HashMap::new();
    for p in 0..PARTITIONS {
        let (low, high) = consumer
            .fetch_watermarks(TOPIC, p, Duration::from_secs(60))
            .unwrap();
        assert_eq!(low, 0);
        ends.insert(p, high);
        total += high as usize;
    }
    let partitions: Vec<i32> = (0..PARTITIONS).collect();
    let records = consume(
        &bootstrap,
        TOPIC,
        &partitions,
        total,
        Duration::from_secs(120),
    );
    let mut seen_ids: HashMap<u64, usize> = HashMap::new();
    let mut by_position = HashMap::new();
    let mut last: HashMap<i32, (i64, u64)> = HashMap::new();
    for r in &records {
        let id = u64::from_be_bytes(r.key.clone().unwrap().try_into().unwrap());
        let value = r.value.clone().unwrap();
        assert_eq!(
            value,
            payload(id, value.len()),
            "record {id} at {}/{} has the payload it was sent with",
            r.partition,
            r.offset
        );
        *seen_ids.entry(id).or_default() += 1;
        by_position.insert((r.partition, r.offset), (id, checksum(&value)));
        if let Some((offset, previous_id)) = last.insert(r.partition, (r.offset, id)) {
            assert_eq!(
                r.offset,
                offset + 1,
                "offsets are contiguous in partition {}",
                r.partition
            );
            assert!(
                id > previous_id,
                "records are in production order in partition {}",
                r.partition
            );
        }
    }
    for ((partition, offset), (id, sum)) in &acked {
        let found = by_position.get(&(*partition, *offset));
        assert_eq!(
            found,
            Some(&(*id, *sum)),
            "acknowledged record {id} at {partition}/{offset} is present and intact"
        );
        assert_eq!(
            seen_ids[id], 1,
            "acknowledged record {id} appears exactly once"
        );
    }
    eprintln!(
        "{} acknowledged records verified among {} in the log",
        acked.len(),
        records.len()
    );
    broker.child.kill().unwrap();
    broker.child.wait().unwrap();
}
