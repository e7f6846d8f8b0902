//! Two replicas through random leader changes: in each epoch one of them leads (recording its
//! epoch, then appending), the other reconciles with it as Kafka's follower does (truncation
//! rounds of `end_offset_for_epoch` on the leader and `truncation_point` on itself, then
//! fetches of random sizes that end mid-batch) for a random number of fetches, possibly none,
//! so logs diverge. After a last full reconciliation the follower must hold the leader's log
//! byte for byte, with every batch's epoch in its cache and the leader's producer state.

use proptest::prelude::*;

use super::{read_all, small_config, stored_batch};
use crate::Log;

#[derive(Debug, Clone)]
struct Epoch {
    a_leads: bool,
    /// Fetches the follower makes before the leader appends (`None`: it does not reconcile).
    fetches_before: Option<usize>,
    /// `(records, bytes per record, idempotent)` of each leader append.
    appends: Vec<(usize, usize, bool)>,
    /// Fetches the follower makes after the appends (`None`: none at all).
    fetches_after: Option<usize>,
    fetch_bytes: usize,
}

fn epoch() -> impl Strategy<Value = Epoch> {
    (
        any::<bool>(),
        proptest::option::of(0usize..4),
        proptest::collection::vec((1usize..4, 0usize..80, any::<bool>()), 0..6),
        proptest::option::of(0usize..6),
        100usize..600,
    )
        .prop_map(
            |(a_leads, fetches_before, appends, fetches_after, fetch_bytes)| Epoch {
                a_leads,
                fetches_before,
                appends,
                fetches_after,
                fetch_bytes,
            },
        )
}

/// Kafka's follower: truncation rounds until complete, then up to `fetches` fetches.
fn reconcile(follower: &mut Log, leader: &Log, fetches: usize, fetch_bytes: usize) {
    for round in 0.. {
        assert!(round < 10, "truncation does not converge");
        let point = match follower.latest_leader_epoch() {
            Some(epoch) => {
                let (leader_epoch, end) = leader.end_offset_for_epoch(epoch);
                follower.truncation_point(leader_epoch, end)
            }
            // No epochs (an empty log): nothing of ours to check.
            None => break,
        };
        follower.truncate_to(point.offset).unwrap();
        if point.complete {
            break;
        }
    }
    for _ in 0..fetches {
        let offset = follower.log_end_offset();
        if offset >= leader.log_end_offset() {
            break;
        }
        let info = leader
            .read(offset, fetch_bytes, leader.log_end_offset(), true)
            .expect("after truncation the follower fetches within the leader's log");
        let bytes = info.slice.unwrap().read_to_bytes().unwrap();
        follower.append_as_follower(&bytes, 0).unwrap();
    }
}

fn run(epochs: Vec<Epoch>) {
    let dir = tempfile::tempdir().unwrap();
    let open = |name: &str| Log::open(&dir.path().join(name), small_config(), 0, 0, true, 0);
    let mut a = open("a-0").unwrap();
    let mut b = open("b-0").unwrap();
    let mut last_a_leads = true;
    for (number, e) in epochs.into_iter().enumerate() {
        let epoch = number as i32 + 1;
        let (leader, follower, replica) = if e.a_leads {
            (&mut a, &mut b, 0i64)
        } else {
            (&mut b, &mut a, 1i64)
        };
        last_a_leads = e.a_leads;
        // A replica that falls behind an epoch it never heard of still leads when elected
        // (an unclean election): its epoch only has to be newer than what it holds.
        if leader
            .latest_leader_epoch()
            .is_some_and(|latest| latest >= epoch)
        {
            continue;
        }
        leader.start_leader_epoch(epoch).unwrap();
        if let Some(fetches) = e.fetches_before {
            reconcile(follower, leader, fetches, e.fetch_bytes);
        }
        for (i, (records, size, idempotent)) in e.appends.into_iter().enumerate() {
            // Each replica's own producer, continuing from what its log remembers.
            let producer = idempotent.then(|| {
                let id = 10 + replica;
                let next = leader
                    .producer_state()
                    .get(id)
                    .and_then(|entry| entry.batches.back())
                    .map_or(0, |batch| batch.last_sequence + 1);
                (id, 0, next)
            });
            let bytes = stored_batch(0, 0, records, size, (number * 8 + i) as u8, 7, producer);
            leader.append(bytes.into(), epoch, 0).unwrap();
        }
        if let Some(fetches) = e.fetches_after {
            reconcile(follower, leader, fetches, e.fetch_bytes);
        }
    }
    let (leader, follower) = if last_a_leads {
        (&a, &mut b)
    } else {
        (&b, &mut a)
    };
    reconcile(follower, leader, usize::MAX, 500);
    let (ours, theirs) = (read_all(follower), read_all(leader));
    assert_eq!(ours.len(), theirs.len(), "batch count");
    for (i, (mine, leaders)) in ours.iter().zip(&theirs).enumerate() {
        assert_eq!(mine.1, leaders.1, "batch {i}");
    }
    assert_eq!(follower.log_end_offset(), leader.log_end_offset());
    assert_eq!(follower.producer_state(), leader.producer_state());
    let entries = follower.leader_epoch_entries();
    for (header, _) in &ours {
        let floor = entries
            .iter()
            .rev()
            .find(|(_, start)| *start <= header.base_offset);
        assert_eq!(floor.map(|e| e.0), Some(header.partition_leader_epoch));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
    #[test]
    fn a_follower_converges_to_its_leader(epochs in proptest::collection::vec(epoch(), 1..12)) {
        run(epochs);
    }
}
