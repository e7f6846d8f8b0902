//! The coordinator's shell against a real broker (a temporary data directory, no listener).
//! Test code: it opens the broker's wiring to get the services, which production code of a
//! service never does.

use std::sync::Arc;

use super::GroupCoordinator;
use crate::broker::Broker;
use crate::services::group::CommittedOffset;

fn open_coordinator(dir: &std::path::Path) -> Arc<GroupCoordinator> {
    let sets = [
        format!("log.dirs={}", dir.display()),
        "offsets.retention.minutes=1".to_string(),
    ];
    let config = strom_meta::config::BrokerConfig::load(None, &sets).expect("test config is valid");
    let broker = Broker::open(config, Vec::new()).expect("broker opens");
    broker.services.groups.clone()
}

fn simple_commit(coordinator: &Arc<GroupCoordinator>, group: &str, partition: i32, now_ms: i64) {
    let offsets = vec![(
        "t".to_string(),
        partition,
        CommittedOffset {
            offset: 5,
            leader_epoch: -1,
            metadata: None,
            commit_timestamp_ms: now_ms,
            expire_timestamp_ms: None,
        },
    )];
    let pending = coordinator
        .begin_commit(group, ("", None, -1), offsets, now_ms)
        .expect("a simple commit of a group without members is allowed");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime.block_on(pending.finish()).expect("commit durable");
}

/// A group known only by its simple commits has an `empty_since` entry (its offsets expire
/// by it). Once its last offset expires, or is deleted, nothing is left of the group and the
/// entry goes too; before, such entries stayed forever, one per group ever committed to.
#[test]
fn a_group_known_only_by_its_offsets_is_forgotten_when_they_go() {
    let dir = tempfile::tempdir().unwrap();
    let coordinator = &open_coordinator(dir.path());
    let now = crate::clock::now_ms();
    simple_commit(coordinator, "expires", 0, now);
    // Committed later: still within retention at the expiry check below.
    simple_commit(coordinator, "deleted", 0, now + 30_000);
    simple_commit(coordinator, "deleted", 1, now + 30_000);
    let has_entry = |group: &str| {
        coordinator
            .state
            .lock()
            .unwrap()
            .empty_since
            .contains_key(group)
    };
    assert!(has_entry("expires") && has_entry("deleted"));

    coordinator.expire_offsets(now + 60_000);
    assert_eq!(coordinator.group_offsets("expires"), []);
    assert!(!has_entry("expires"), "forgotten once its offsets expired");
    assert_eq!(coordinator.group_offsets("deleted").len(), 2);

    let (codes, appended) = coordinator
        .delete_offsets("deleted", vec![("t".into(), 0)], now)
        .expect("known group");
    assert_eq!(codes, [0]);
    drop(appended);
    assert!(has_entry("deleted"), "partition 1 still has an offset");
    let (_, appended) = coordinator
        .delete_offsets("deleted", vec![("t".into(), 1)], now)
        .expect("known group");
    drop(appended);
    assert!(
        !has_entry("deleted"),
        "forgotten once its last offset was deleted"
    );
}
