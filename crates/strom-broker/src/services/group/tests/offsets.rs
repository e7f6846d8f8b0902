//! The offset table, including Kafka's expiry rules.

use crate::services::group::{CommittedOffset, OffsetTable};

fn at(offset: i64, commit_timestamp_ms: i64) -> CommittedOffset {
    CommittedOffset {
        offset,
        leader_epoch: -1,
        metadata: None,
        commit_timestamp_ms,
        expire_timestamp_ms: None,
    }
}

#[test]
fn commit_get_delete() {
    let mut table = OffsetTable::new();
    table.commit("g", "b", 1, at(10, 0));
    table.commit("g", "a", 2, at(20, 0));
    table.commit("g", "a", 0, at(30, 0));
    table.commit("g", "a", 0, at(31, 1));
    table.commit("h", "a", 0, at(5, 0));
    assert_eq!(
        table.get("g", "a", 0).map(|o| o.offset),
        Some(31),
        "last commit wins"
    );
    assert_eq!(table.get("g", "a", 1), None);
    let keys: Vec<(String, i32)> = table
        .group_offsets("g")
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(keys, [("a".into(), 0), ("a".into(), 2), ("b".into(), 1)]);
    assert_eq!(table.groups(), ["g", "h"]);
    assert!(table.delete("h", "a", 0));
    assert!(!table.delete("h", "a", 0));
    assert_eq!(table.groups(), ["g"], "a group without offsets disappears");
    assert_eq!(
        table.delete_group("g"),
        [("a".into(), 0), ("a".into(), 2), ("b".into(), 1)]
    );
    assert!(table.delete_group("g").is_empty());
    assert!(table.groups().is_empty());
}

#[test]
fn expiry_only_for_empty_groups_after_retention() {
    let retention = 1_000;
    let mut table = OffsetTable::new();
    table.commit("empty", "t", 0, at(1, 100));
    table.commit("empty", "t", 1, at(1, 5_000)); // committed after the group emptied
    table.commit("active", "t", 0, at(1, 0));
    table.commit("manual", "t", 0, at(1, 2_000));
    table.commit("manual", "t", 1, at(1, 2_500));
    let mut explicit = at(1, 0);
    explicit.expire_timestamp_ms = Some(3_000);
    table.commit("v1", "t", 0, explicit);

    let empty_since = |group: &str| match group {
        "empty" => Some(2_000),
        "active" => None,
        "manual" | "v1" => Some(i64::MIN),
        other => panic!("unexpected group {other}"),
    };
    assert!(
        table.expire(2_999, retention, &empty_since).is_empty(),
        "within retention"
    );
    let expired = table.expire(3_000, retention, &empty_since);
    assert_eq!(
        expired,
        [
            ("empty".into(), "t".into(), 0),
            ("manual".into(), "t".into(), 0),
            ("v1".into(), "t".into(), 0),
        ]
    );
    assert!(
        table.get("empty", "t", 1).is_some(),
        "recent commit survives"
    );
    assert!(
        table.get("active", "t", 0).is_some(),
        "groups with members never expire"
    );
    let expired = table.expire(i64::MAX, retention, &empty_since);
    assert_eq!(expired.len(), 2);
    assert_eq!(table.groups(), ["active"]);
}

/// Replaying `__consumer_offsets` at startup calls `commit` once per record. It must cost
/// about one map insertion each: 20,000 groups and 200,000 records take well under a second
/// here, in a debug build. When every `commit` staged, completed and then checked every
/// invariant of the whole table (O(groups) each), the same replay walked 20,000 groups
/// 200,000 times, minutes in a debug build.
#[test]
fn replaying_many_records_costs_one_insertion_each() {
    const GROUPS: usize = 20_000;
    const RECORDS: usize = 200_000;
    let names: Vec<String> = (0..GROUPS).map(|g| format!("group-{g}")).collect();
    let started = std::time::Instant::now();
    let mut table = OffsetTable::new();
    for record in 0..RECORDS {
        let group = &names[record % GROUPS];
        table.commit(
            group,
            "t",
            (record / GROUPS % 3) as i32,
            at(record as i64, 0),
        );
    }
    let elapsed = started.elapsed();
    assert_eq!(table.groups().len(), GROUPS);
    assert_eq!(
        table.get("group-7", "t", 0).map(|c| c.offset),
        Some((9 * GROUPS + 7) as i64),
        "the last record of a partition wins"
    );
    table.check_invariants();
    assert!(
        elapsed < std::time::Duration::from_secs(5),
        "replaying {RECORDS} records of {GROUPS} groups took {elapsed:?}"
    );
}

/// A commit in flight has its record in the log already: deleting its partition, or its
/// group, must write a tombstone for it even though the table holds no offset yet, or the
/// offset comes back when the log is replayed after a restart.
#[test]
fn deleting_a_commit_in_flight_asks_for_a_tombstone() {
    let mut table = OffsetTable::new();
    let first = table.stage("g", vec![("t".into(), 0, at(5, 0))]);
    assert!(
        table.has_group("g"),
        "a group whose only commit is in flight exists"
    );
    assert!(
        table.delete("g", "t", 0),
        "the in-flight commit needs a tombstone"
    );
    assert!(!table.has_group("g"));
    table.complete(first, true);
    assert_eq!(table.get("g", "t", 0), None, "cancelled");

    table.commit("g", "t", 1, at(1, 0));
    let second = table.stage(
        "g",
        vec![("t".into(), 2, at(7, 0)), ("u".into(), 0, at(8, 0))],
    );
    let other = table.stage("h", vec![("t".into(), 0, at(9, 0))]);
    assert_eq!(
        table.delete_group("g"),
        [("t".into(), 1), ("t".into(), 2), ("u".into(), 0)]
    );
    table.complete(second, true);
    assert!(table.group_offsets("g").is_empty());
    assert!(
        table.is_pending("h", "t", 0),
        "another group's commit is untouched"
    );
    table.complete(other, true);
    assert_eq!(table.get("h", "t", 0).map(|c| c.offset), Some(9));
}

/// An OffsetFetch asks whether its group has commits in flight before its barrier, on every
/// wake-up. With 40,000 groups each with a commit in flight, asking for every group takes a
/// few milliseconds; scanning every staged commit for each question (as before) was
/// 1.6·10⁹ comparisons, many seconds in a debug build.
#[test]
fn whether_a_group_has_commits_in_flight_does_not_scan_other_groups() {
    const GROUPS: usize = 40_000;
    let names: Vec<String> = (0..GROUPS).map(|g| format!("group-{g}")).collect();
    let mut table = OffsetTable::new();
    let ids: Vec<_> = names
        .iter()
        .map(|group| table.stage(group, vec![("t".into(), 0, at(1, 0))]))
        .collect();
    let barrier = table.last_staged();
    let started = std::time::Instant::now();
    let waiting = names
        .iter()
        .filter(|group| table.has_staged(group, barrier))
        .count();
    let elapsed = started.elapsed();
    assert_eq!(waiting, GROUPS);
    assert!(
        !table.has_staged("group-1", ids[0]),
        "a later commit is not waited for"
    );
    assert!(table.has_staged("group-1", ids[1]));
    table.complete(ids[1], true);
    assert!(!table.has_staged("group-1", barrier));
    assert!(table.has_staged("group-2", barrier));
    table.check_invariants();
    assert!(
        elapsed < std::time::Duration::from_secs(2),
        "{GROUPS} checks took {elapsed:?}"
    );
}
