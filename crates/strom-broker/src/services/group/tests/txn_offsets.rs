//! Offsets committed inside transactions: pending until the marker, applied by log order,
//! cancelled by deletes, kept from expiry, and moved from a replay in order. The seeded test
//! checks the table against a reference that replays the same log by offsets, and checks
//! that a table rebuilt from that log (as a partition load does) then behaves the same; a
//! failure prints its seed, `STROM_TXN_OFFSETS_SEED=<seed>` replays it.

use std::collections::BTreeMap;

use super::Rng;
use crate::services::group::{CommittedOffset, OffsetTable};

fn at(offset: i64) -> CommittedOffset {
    CommittedOffset {
        offset,
        leader_epoch: -1,
        metadata: None,
        commit_timestamp_ms: 0,
        expire_timestamp_ms: None,
    }
}

fn offset_of(table: &OffsetTable, group: &str, partition: i32) -> Option<i64> {
    table.get(group, "t", partition).map(|o| o.offset)
}

fn all(_: &str) -> bool {
    true
}

#[test]
fn pending_until_commit_and_dropped_by_abort() {
    let mut table = OffsetTable::new();
    table.commit("g", "t", 0, at(5));
    table.stage_txn(
        "g",
        7,
        vec![("t".into(), 0, at(10)), ("t".into(), 1, at(11))],
    );
    table.stage_txn("g", 8, vec![("t".into(), 0, at(20))]);
    assert_eq!(
        offset_of(&table, "g", 0),
        Some(5),
        "pending offsets are invisible"
    );
    assert_eq!(offset_of(&table, "g", 1), None);
    assert!(table.has_pending_txn("g", "t", 0) && table.has_pending_txn("g", "t", 1));

    let aborted = table.complete_txn(8, false, &all);
    assert_eq!(
        (aborted.applied, aborted.groups),
        (0, vec!["g".to_string()])
    );
    assert_eq!(offset_of(&table, "g", 0), Some(5));
    assert!(
        table.has_pending_txn("g", "t", 0),
        "producer 7's offset is still pending"
    );

    assert_eq!(table.complete_txn(7, true, &all).applied, 2);
    assert_eq!(offset_of(&table, "g", 0), Some(10));
    assert_eq!(offset_of(&table, "g", 1), Some(11));
    assert!(!table.has_pending_txn("g", "t", 0) && !table.has_pending_txn("g", "t", 1));
    let again = table.complete_txn(7, true, &all);
    assert!(again.groups.is_empty(), "a second marker finds nothing");
    let aborted_again = table.complete_txn(8, true, &all);
    assert!(
        aborted_again.groups.is_empty(),
        "the aborted offsets are gone"
    );
    assert_eq!(offset_of(&table, "g", 0), Some(10));
    table.check_invariants();
}

#[test]
fn a_marker_completes_only_the_groups_of_its_partition() {
    let mut table = OffsetTable::new();
    table.stage_txn("a", 7, vec![("t".into(), 0, at(1))]);
    table.stage_txn("b", 7, vec![("t".into(), 0, at(2))]);
    assert_eq!(table.complete_txn(7, true, &|g| g == "a").groups, ["a"]);
    assert_eq!(offset_of(&table, "a", 0), Some(1));
    assert_eq!(offset_of(&table, "b", 0), None);
    assert!(
        table.has_pending_txn("b", "t", 0),
        "group b waits for its own marker"
    );
    assert_eq!(table.txn_groups(), ["b"]);
    table.check_invariants();
}

/// Kafka's rule: a committed transaction replaces an offset only if its record came later in
/// the log; plain commits staged around it keep their place too.
#[test]
fn a_commit_replaces_only_offsets_written_before_it() {
    let mut table = OffsetTable::new();
    table.stage_txn(
        "g",
        7,
        vec![("t".into(), 0, at(10)), ("t".into(), 1, at(11))],
    );
    table.commit("g", "t", 0, at(50));
    table.complete_txn(7, true, &all);
    assert_eq!(
        offset_of(&table, "g", 0),
        Some(50),
        "written after the transaction's"
    );
    assert_eq!(offset_of(&table, "g", 1), Some(11));

    // A plain commit received before the transaction's record completes after its COMMIT:
    // it is older in the log and does not win; one received after it does.
    let before = table.stage("g", vec![("t".into(), 2, at(1))]);
    table.stage_txn("g", 8, vec![("t".into(), 2, at(2)), ("t".into(), 3, at(3))]);
    let after = table.stage("g", vec![("t".into(), 3, at(4))]);
    table.complete_txn(8, true, &all);
    table.complete(after, true);
    table.complete(before, true);
    assert_eq!(offset_of(&table, "g", 2), Some(2));
    assert_eq!(offset_of(&table, "g", 3), Some(4));
    table.check_invariants();
}

#[test]
fn deletes_cancel_pending_offsets_and_ask_for_tombstones() {
    let mut table = OffsetTable::new();
    table.stage_txn(
        "g",
        7,
        vec![("t".into(), 0, at(10)), ("t".into(), 1, at(11))],
    );
    assert!(
        table.has_group("g"),
        "a group known only by pending offsets exists"
    );
    assert!(
        table.delete("g", "t", 0),
        "its record is in the log: a tombstone"
    );
    assert!(!table.delete("g", "t", 0));
    table.stage_txn("h", 9, vec![("u".into(), 4, at(1))]);
    assert_eq!(table.delete_group("h"), [("u".to_string(), 4)]);
    assert!(!table.has_group("h"));
    table.complete_txn(7, true, &all);
    table.complete_txn(9, true, &all);
    assert_eq!(
        offset_of(&table, "g", 0),
        None,
        "a deleted offset does not come back"
    );
    assert_eq!(offset_of(&table, "g", 1), Some(11));
    assert_eq!(table.group_offsets("h"), []);
    table.check_invariants();
}

#[test]
fn a_failed_write_drops_only_its_own_offsets() {
    let mut table = OffsetTable::new();
    let first = table.stage_txn("g", 7, vec![("t".into(), 0, at(10))]);
    let second = table.stage_txn("g", 7, vec![("t".into(), 1, at(11))]);
    table.fail_txn(7, second);
    assert!(table.has_pending_txn("g", "t", 0) && !table.has_pending_txn("g", "t", 1));
    table.fail_txn(7, second);
    table.complete_txn(7, true, &all);
    assert_eq!(offset_of(&table, "g", 0), Some(10));
    assert_eq!(offset_of(&table, "g", 1), None);
    // A write that failed after its transaction ended has nothing left to drop.
    table.fail_txn(7, first);
    assert_eq!(offset_of(&table, "g", 0), Some(10));
    table.check_invariants();
}

#[test]
fn a_partition_with_a_pending_offset_does_not_expire() {
    let mut table = OffsetTable::new();
    table.commit("g", "t", 0, at(1));
    table.commit("g", "t", 1, at(2));
    table.stage_txn("g", 7, vec![("t".into(), 0, at(3))]);
    let expired = table.expire(1_000_000, 10, &|_| Some(0));
    assert_eq!(expired, [("g".to_string(), "t".to_string(), 1)]);
    assert_eq!(offset_of(&table, "g", 0), Some(1));
    table.check_invariants();
}

/// A replayed table moved into the live one keeps the log order between its offsets and its
/// pending transactional offsets.
#[test]
fn absorbing_a_replay_keeps_log_order() {
    let mut replayed = OffsetTable::new();
    replayed.stage_txn("g", 7, vec![("t".into(), 0, at(10))]);
    replayed.commit("g", "t", 0, at(50));
    replayed.commit("g", "t", 1, at(60));
    replayed.stage_txn("g", 7, vec![("t".into(), 1, at(70))]);
    let mut live = OffsetTable::new();
    live.commit("other", "t", 0, at(1));
    live.absorb(replayed);
    assert_eq!(offset_of(&live, "g", 0), Some(50));
    assert!(live.has_pending_txn("g", "t", 0));
    live.complete_txn(7, true, &all);
    assert_eq!(
        offset_of(&live, "g", 0),
        Some(50),
        "the transaction's record is older"
    );
    assert_eq!(
        offset_of(&live, "g", 1),
        Some(70),
        "the transaction's record is newer"
    );
    assert_eq!(offset_of(&live, "other", 0), Some(1));
    live.check_invariants();
}

/// One event of the seeded log over group "g", topic "t", partitions 0..3, producers 1..3.
#[derive(Clone, Debug)]
enum Event {
    Plain(i32, i64),
    Txn(i64, i32, i64),
    Marker(i64, bool),
    Delete(i32),
}

/// The reference: a replay of the log by position, written from Kafka's rules directly.
#[derive(Default)]
struct Reference {
    /// partition → (offset, log position of its record).
    applied: BTreeMap<i32, (i64, usize)>,
    /// producer → partition → (offset, log position).
    pending: BTreeMap<i64, BTreeMap<i32, (i64, usize)>>,
}

impl Reference {
    fn apply(&mut self, position: usize, event: &Event) {
        match *event {
            Event::Plain(p, v) => {
                self.applied.insert(p, (v, position));
            }
            Event::Txn(producer, p, v) => {
                self.pending
                    .entry(producer)
                    .or_default()
                    .insert(p, (v, position));
            }
            Event::Marker(producer, commit) => {
                for (p, (v, at)) in self.pending.remove(&producer).unwrap_or_default() {
                    let older = self.applied.get(&p).is_none_or(|(_, was)| *was < at);
                    if commit && older {
                        self.applied.insert(p, (v, at));
                    }
                }
            }
            Event::Delete(p) => {
                self.applied.remove(&p);
                for pending in self.pending.values_mut() {
                    pending.remove(&p);
                }
            }
        }
    }
}

fn apply(table: &mut OffsetTable, event: &Event) {
    match *event {
        Event::Plain(p, v) => table.commit("g", "t", p, at(v)),
        Event::Txn(producer, p, v) => {
            table.stage_txn("g", producer, vec![("t".into(), p, at(v))]);
        }
        Event::Marker(producer, commit) => {
            table.complete_txn(producer, commit, &all);
        }
        Event::Delete(p) => {
            table.delete("g", "t", p);
        }
    }
}

fn random_event(rng: &mut Rng) -> Event {
    let p = rng.below(3) as i32;
    let producer = 1 + rng.below(3) as i64;
    let value = rng.below(1_000) as i64;
    match rng.below(10) {
        0..=2 => Event::Plain(p, value),
        3..=6 => Event::Txn(producer, p, value),
        7..=8 => Event::Marker(producer, rng.percent(60)),
        _ => Event::Delete(p),
    }
}

fn assert_same(table: &OffsetTable, reference: &Reference, what: &str) {
    for p in 0..3 {
        let expected = reference.applied.get(&p).map(|(v, _)| *v);
        assert_eq!(offset_of(table, "g", p), expected, "{what}: partition {p}");
        let pending = reference.pending.values().any(|m| m.contains_key(&p));
        assert_eq!(
            table.has_pending_txn("g", "t", p),
            pending,
            "{what}: pending {p}"
        );
    }
    table.check_invariants();
}

fn run(seed: u64) {
    let mut rng = Rng::new(seed);
    let events: Vec<Event> = (0..80).map(|_| random_event(&mut rng)).collect();
    let cut = rng.below(events.len() as u64) as usize;
    let mut live = OffsetTable::new();
    let mut reference = Reference::default();
    let mut replayed = OffsetTable::new();
    for (position, event) in events.iter().enumerate() {
        apply(&mut live, event);
        reference.apply(position, event);
        assert_same(&live, &reference, &format!("seed {seed}, after {event:?}"));
        apply(&mut replayed, event);
        if position + 1 == cut {
            // A load at this point: replay into a table, move it into a fresh one, and carry
            // on with the rest of the log there.
            let mut loaded = OffsetTable::new();
            loaded.absorb(std::mem::take(&mut replayed));
            replayed = loaded;
            assert_same(
                &replayed,
                &reference,
                &format!("seed {seed}, loaded at {cut}"),
            );
        }
    }
    assert_same(
        &replayed,
        &reference,
        &format!("seed {seed}, the loaded table"),
    );
}

#[test]
fn transactional_offsets_match_a_replay_by_log_position() {
    if let Ok(seed) = std::env::var("STROM_TXN_OFFSETS_SEED") {
        return run(seed.parse().expect("STROM_TXN_OFFSETS_SEED is a u64"));
    }
    for seed in 0..500 {
        let outcome = std::panic::catch_unwind(|| run(seed));
        if let Err(panic) = outcome {
            eprintln!("failed: replay with STROM_TXN_OFFSETS_SEED={seed}");
            std::panic::resume_unwind(panic);
        }
    }
}
