//! kill -9 during `acks=all` produce: after every restart each acknowledged record is present
//! exactly once, in order, with an identical payload checksum.
//!
//! The broker is the real `strom` binary in a child process. Each round starts it on the same
//! data directory (recovering from the previous kill), produces with an idempotent `acks=all`
//! producer, and kills it with SIGKILL at a random moment. The seed is printed; set
//! `STROM_CRASH_SEED` to replay a run and `STROM_CRASH_ROUNDS` to change the number of rounds.

mod common;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::ledger::Ledger;
use common::*;

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
    let ledger = Ledger::default();
    let mut next_id = 0u64;
    for round in 0..rounds {
        let mut broker = spawn_broker(dir, round);
        let bootstrap = broker.bootstrap();
        if round == 0 {
            create_topic(&bootstrap, TOPIC, PARTITIONS, &[]);
        }
        let stop = Arc::new(AtomicBool::new(false));
        let producer = {
            let (bootstrap, stop, ledger) = (bootstrap.clone(), stop.clone(), ledger.clone());
            let first = next_id;
            std::thread::spawn(move || {
                ledger.produce_until(
                    &bootstrap,
                    TOPIC,
                    stop,
                    first,
                    // The broker stays dead until the next round: records in flight fail fast.
                    &[("message.timeout.ms", "4000")],
                )
            })
        };
        let before = ledger.len();
        std::thread::sleep(Duration::from_millis(rng.range(400, 2500)));
        broker.child.kill().expect("SIGKILL the broker");
        broker.child.wait().unwrap();
        stop.store(true, Ordering::Relaxed);
        next_id = producer.join().unwrap() + 1_000_000; // ids stay increasing across rounds
        let after = ledger.len();
        eprintln!(
            "round {round}: {} records acknowledged before the kill",
            after - before
        );
    }

    // Final restart: everything acknowledged must be there, once, in order, intact.
    let mut broker = spawn_broker(dir, rounds);
    let bootstrap = broker.bootstrap();
    assert!(
        ledger.len() > 100,
        "the test acknowledged too little to mean anything ({})",
        ledger.len()
    );
    let partitions: Vec<i32> = (0..PARTITIONS).collect();
    let verified = ledger.verify(&bootstrap, TOPIC, &partitions);
    eprintln!(
        "{} acknowledged records verified among {} in the log",
        verified.acknowledged, verified.in_log
    );
    broker.child.kill().unwrap();
    broker.child.wait().unwrap();
}
