//! Exactly-once across crashes: a consume-transform-produce worker (aiokafka,
//! `tests/python/eos_worker_aio.py`) commits its output and its input offsets in transactions
//! while the test SIGKILLs the broker at seeded moments and restarts it on the same data and
//! port, ten times. Afterwards a read_committed consumer must find every input record in the
//! output exactly once (values and per-partition order checked), none of an aborted or
//! half-done transaction, and the group's committed offsets at the input's end.
//!
//! `STROM_TXN_KILL_SEED=n` replays one kill schedule.

mod common;

use std::time::Duration;

use common::txn::Running;
use common::*;
use rand_chacha::ChaCha8Rng;
use rand_core::{Rng as _, SeedableRng as _};

const RECORDS: usize = 3000;
const ROUNDS: usize = 10;

fn seed() -> u64 {
    std::env::var("STROM_TXN_KILL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis() as u64
        })
}

#[test]
fn exactly_once_through_ten_broker_kills() {
    let seed = seed();
    println!("kill schedule seed {seed} (replay with STROM_TXN_KILL_SEED={seed})");
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let sets = ["transaction.abort.timed.out.transaction.cleanup.interval.ms=500"];
    let mut starts = 0;
    let mut start = |port: u16| {
        starts += 1;
        let log = dir.path().join(format!("broker.{starts}.log"));
        let mut all: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
        if port != 0 {
            all.push(format!("listeners=PLAINTEXT://127.0.0.1:{port}"));
        }
        let refs: Vec<&str> = all.iter().map(String::as_str).collect();
        Running(spawn_broker_process(&data, &log, &refs))
    };
    let mut broker = start(0);
    let port = broker.0.port;
    let bootstrap = broker.0.bootstrap();
    create_topic(&bootstrap, eos::INPUT, 2, &[]);
    create_topic(&bootstrap, eos::OUTPUT, 2, &[]);
    eos::feed(&bootstrap, RECORDS);

    let worker_log = dir.path().join("worker.log");
    // 20 records per transaction and 50 ms between them: about 150 transactions, so the
    // kills land among them.
    let mut worker = eos::spawn_worker(&bootstrap, RECORDS, 20, 50, &worker_log);
    let mut kills = 0;
    for round in 0..ROUNDS {
        // Kill once the worker is committing again, a seeded moment later.
        if !eos::wait_for_commit(&worker_log, &mut worker, Duration::from_secs(30)) {
            println!("the worker made no progress or finished before round {round}");
            break;
        }
        std::thread::sleep(Duration::from_millis(rng.next_u64() % 400));
        broker.0.child.kill().expect("SIGKILL the broker");
        broker.0.child.wait().expect("reap the broker");
        std::thread::sleep(Duration::from_millis(rng.next_u64() % 300));
        broker = start(port);
        kills += 1;
        println!("round {round}: killed and restarted the broker");
    }
    let what = format!("seed {seed}");
    eos::wait_for_worker(&mut worker, &worker_log, Duration::from_secs(240), &what);
    assert_eq!(
        kills, ROUNDS,
        "every kill landed while the worker was still working ({what})"
    );
    eos::check_output(&bootstrap, RECORDS, &what);
    drop(broker);
}
