//! The watermark wait against a real broker's partitions (a temporary data directory, no
//! listener). Test code: it opens the broker's wiring to get the services.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::Notify;

use super::partition::Partition;
use crate::broker::Broker;

fn open(dir: &std::path::Path) -> Broker {
    let sets = [format!("log.dirs={}", dir.display())];
    let config = strom_meta::config::BrokerConfig::load(None, &sets).expect("test config is valid");
    Broker::open(config, Vec::new()).expect("broker opens")
}

fn append(partition: &Partition, value: &[u8]) -> i64 {
    let batch = strom_log::records::encode_batch(&[(Some(&b"k"[..]), Some(value))], 0);
    let info = partition
        .append(Bytes::from(batch), crate::clock::now_ms())
        .expect("append");
    info.last_offset + 1
}

/// A durable partition's high watermark moves only when a sync covers the append; the produce
/// wait and a parked fetch are woken by the same move.
#[test]
fn acks_all_and_long_polls_share_one_watermark_wait() {
    let dir = tempfile::tempdir().unwrap();
    let broker = open(dir.path());
    let services = broker.services.clone();
    services
        .topics
        .create_topic("t", 2, 1, Default::default(), false)
        .expect("created");
    let p0 = services.replicas.partition("t", 0).expect("hosted");
    let p1 = services.replicas.partition("t", 1).expect("hosted");
    assert!(p0.is_durable(), "flush.messages=1 is the default");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let fetch = Arc::new(Notify::new());
        p0.add_waiter(&fetch);
        let end = append(&p0, b"one");
        let (high_watermark, _, log_end) = p0.offsets();
        assert_eq!(
            (high_watermark, log_end),
            (0, end),
            "not visible before a sync"
        );
        tokio::time::timeout(Duration::from_secs(10), p0.wait_high_watermark(end))
            .await
            .expect("the sync driver moves the high watermark")
            .expect("the sync succeeds");
        assert_eq!(p0.offsets().0, end);
        tokio::time::timeout(Duration::from_secs(1), fetch.notified())
            .await
            .expect("the parked fetch was woken by the same move");

        let ends = [append(&p0, b"two"), append(&p1, b"three")];
        let waits = [(p0.clone(), ends[0]), (p1.clone(), ends[1])];
        let outcomes = tokio::time::timeout(
            Duration::from_secs(10),
            Partition::wait_all_high_watermarks(&waits),
        )
        .await
        .expect("both move");
        assert!(outcomes.iter().all(Result::is_ok), "{outcomes:?}");
        assert_eq!((p0.offsets().0, p1.offsets().0), (ends[0], ends[1]));
    });
}
