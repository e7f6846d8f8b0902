//! The invariants checked after every event, and counters that show what a run exercised.

use std::collections::{BTreeMap, BTreeSet};

use strom_meta::replication::{BrokerId, LeaderAndIsr, TopicPartition, NO_LEADER};

use super::log::{Log, Record};

/// What a run (or many) exercised.
#[derive(Clone, Copy, Debug, Default)]
pub struct Stats {
    pub events: u64,
    pub acknowledged: u64,
    pub refused_not_enough_replicas: u64,
    pub after_append_errors: u64,
    pub leader_changes: u64,
    pub fenced: u64,
    pub isr_writes: u64,
    pub isr_conflicts: u64,
    pub controller_elections: u64,
    pub kills: u64,
    pub expiries: u64,
    pub truncations: u64,
    pub deletions: u64,
    /// Preferred elections an admin's ElectLeaders started.
    pub preferred_elections: u64,
    /// `/admin/preferred_replica_election` requests a controller served.
    pub preferred_znode_elections: u64,
    /// Brokers stopped by controlled shutdown, and of those, the ones the controller answered
    /// with no partition left to move.
    pub controlled_stops: u64,
    pub controlled_clean: u64,

    /// Reassignments an admin's AlterPartitionReassignments started, and reassignment steps
    /// written.
    pub reassignments: u64,
    pub reassign_steps: u64,
}

impl Stats {
    pub fn add(&mut self, other: &Stats) {
        self.events += other.events;
        self.acknowledged += other.acknowledged;
        self.refused_not_enough_replicas += other.refused_not_enough_replicas;
        self.after_append_errors += other.after_append_errors;
        self.leader_changes += other.leader_changes;
        self.fenced += other.fenced;
        self.isr_writes += other.isr_writes;
        self.isr_conflicts += other.isr_conflicts;
        self.controller_elections += other.controller_elections;
        self.kills += other.kills;
        self.expiries += other.expiries;
        self.truncations += other.truncations;
        self.deletions += other.deletions;
        self.preferred_elections += other.preferred_elections;
        self.preferred_znode_elections += other.preferred_znode_elections;
        self.controlled_stops += other.controlled_stops;
        self.controlled_clean += other.controlled_clean;

        self.reassignments += other.reassignments;
        self.reassign_steps += other.reassign_steps;
    }
}

#[derive(Debug, Default)]
pub struct Checker {
    /// Topics with unclean leader election: acknowledged records may be lost there.
    pub unclean: BTreeSet<String>,
    /// Every acknowledged record: offset → (leader epoch, payload).
    pub acked: BTreeMap<TopicPartition, BTreeMap<i64, Record>>,
    /// The records below the highest high watermark any leader exposed, each with the epoch
    /// of the leader that first exposed it.
    committed: BTreeMap<TopicPartition, Vec<(Record, i32)>>,
    /// Which broker took leadership of each (partition, leader epoch).
    leaders: BTreeMap<(TopicPartition, i32), BrokerId>,
    /// Which leader ZooKeeper recorded for each (partition, leader epoch).
    written: BTreeMap<(TopicPartition, i32), BrokerId>,
    /// The high watermark of each broker's current uninterrupted leadership.
    leader_high_watermark: BTreeMap<(BrokerId, TopicPartition), i64>,
    pub stats: Stats,
}

impl Checker {
    /// A partition state reached ZooKeeper: one leader per epoch, ISR within the replicas,
    /// leader within the ISR.
    pub fn state_written(
        &mut self,
        partition: &TopicPartition,
        state: &LeaderAndIsr,
        replicas: &[BrokerId],
    ) {
        assert!(
            state.isr.iter().all(|r| replicas.contains(r)),
            "{partition}: ISR {:?} not within the replicas {replicas:?}",
            state.isr
        );
        if state.leader == NO_LEADER {
            return;
        }
        assert!(
            state.isr.contains(&state.leader),
            "{partition}: leader outside the ISR: {state:?}"
        );
        let first = *self
            .written
            .entry((partition.clone(), state.leader_epoch))
            .or_insert(state.leader);
        assert_eq!(
            first, state.leader,
            "{partition}: two leaders written for leader epoch {}",
            state.leader_epoch
        );
    }

    /// `broker` took leadership of `partition` at `epoch` with `log`.
    pub fn became_leader(
        &mut self,
        broker: BrokerId,
        partition: &TopicPartition,
        epoch: i32,
        log: &Log,
    ) {
        let first = *self
            .leaders
            .entry((partition.clone(), epoch))
            .or_insert(broker);
        assert_eq!(
            first, broker,
            "{partition}: brokers {first} and {broker} both lead epoch {epoch}"
        );
        self.stats.leader_changes += 1;
        self.check_log(broker, partition, epoch, log);
    }

    /// The high watermark of a leader after a step (`continuing`: it led before the step).
    pub fn leader_high_watermark(
        &mut self,
        broker: BrokerId,
        partition: &TopicPartition,
        continuing: bool,
        high_watermark: i64,
    ) {
        let key = (broker, partition.clone());
        if continuing {
            if let Some(&before) = self.leader_high_watermark.get(&key) {
                assert!(
                    high_watermark >= before,
                    "{partition}: leader {broker}'s high watermark went from {before} to {high_watermark}"
                );
            }
        }
        self.leader_high_watermark.insert(key, high_watermark);
    }

    pub fn not_leader(&mut self, broker: BrokerId, partition: &TopicPartition) {
        self.leader_high_watermark
            .remove(&(broker, partition.clone()));
    }

    pub fn forget_broker(&mut self, broker: BrokerId) {
        self.leader_high_watermark.retain(|(b, _), _| *b != broker);
    }

    /// A record was acknowledged by a leader at `record.0`.
    pub fn acknowledged(&mut self, partition: &TopicPartition, offset: i64, record: Record) {
        self.stats.acknowledged += 1;
        let previous = self
            .acked
            .entry(partition.clone())
            .or_default()
            .insert(offset, record);
        assert!(
            previous.is_none()
                || previous == Some(record)
                || self.unclean.contains(&partition.topic),
            "{partition}: offset {offset} acknowledged as {previous:?} and then as {record:?}"
        );
    }

    /// The leader of `epoch` exposed `high_watermark`: its log below agrees with every record
    /// any leader exposed before, and the new ones join them.
    pub fn high_watermark_exposed(
        &mut self,
        broker: BrokerId,
        partition: &TopicPartition,
        epoch: i32,
        high_watermark: i64,
        log: &Log,
    ) {
        if self.unclean.contains(&partition.topic) {
            return;
        }
        let high_watermark = high_watermark as usize;
        assert!(
            high_watermark <= log.durable,
            "{partition}: broker {broker} exposed high watermark {high_watermark} past its durable end {}",
            log.durable
        );
        let committed = self.committed.entry(partition.clone()).or_default();
        for (offset, (record, _)) in committed.iter().enumerate().take(high_watermark) {
            assert_eq!(
                &log.records[offset], record,
                "{partition}: offset {offset} below the high watermark changed (leader {broker}, epoch {epoch})"
            );
        }
        for offset in committed.len()..high_watermark {
            committed.push((log.records[offset], epoch));
        }
    }

    /// Every acknowledged record, and every record below a high watermark, of `partition`
    /// from epochs up to `epoch` is in the log of the leader of `epoch`, unchanged.
    pub fn check_log(&self, broker: BrokerId, partition: &TopicPartition, epoch: i32, log: &Log) {
        if self.unclean.contains(&partition.topic) {
            return;
        }
        let acked = self.acked.get(partition).into_iter().flatten();
        for (&offset, &record) in acked {
            if record.0 > epoch {
                continue;
            }
            let held = log.records.get(offset as usize);
            assert_eq!(
                held,
                Some(&record),
                "{partition}: acknowledged offset {offset} {record:?} is {held:?} in the log of broker {broker}, leader at epoch {epoch}"
            );
        }
        let committed = self.committed.get(partition).map_or(&[][..], Vec::as_slice);
        for (offset, (record, exposed_at)) in committed.iter().enumerate() {
            if *exposed_at > epoch {
                continue;
            }
            let held = log.records.get(offset);
            assert_eq!(
                held,
                Some(record),
                "{partition}: offset {offset} below a high watermark (exposed at epoch {exposed_at}) is {held:?} in the log of broker {broker}, leader at epoch {epoch}"
            );
        }
    }
}
