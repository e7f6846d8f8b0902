//! The progress `strom partition reassign --verify` and `--wait` show per plan partition: its
//! replicas, ISR and adding/removing replicas (ListPartitionReassignments from the controller,
//! Metadata), the target replicas in the ISR, and how far each copy has come in bytes: a
//! replica's log size against its leader's, both from DescribeLogDirs on their brokers (what
//! Kafka's `kafka-log-dirs.sh` reports). Kafka's own tool shows no bytes; Cruise Control and
//! operators compare these same two sizes.
//!
//! Whose copy is shown: for a partition still moving, each adding replica; for one that has
//! reached its target, each target replica other than the leader, so the last reading of a
//! finished move shows what the copy left (100 % unless the leader has grown since).
//! A percentage is rounded down, so 100 % means every byte is there.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use anyhow::bail;
use kafka_protocol::messages::ListPartitionReassignmentsRequest;
use serde::Serialize;
use strom_meta::replication::{BrokerId, TopicPartition};
use strom_meta::zk::ReassignmentEntry;

use crate::client::ClientOptions;
use crate::output::{join_ids, print_json, Table};
use crate::txn::wire::error_name;

/// One partition's state in `--verify`/`--wait`.
#[derive(Debug, Serialize)]
pub(super) struct ProgressRow {
    pub(super) topic: String,
    pub(super) partition: i32,
    target: Vec<BrokerId>,
    replicas: Vec<BrokerId>,
    isr: Vec<BrokerId>,
    pub(super) adding: Vec<BrokerId>,
    removing: Vec<BrokerId>,
    pub(super) leader: BrokerId,
    /// Target replicas in the ISR / target replicas.
    pub(super) in_sync: String,
    /// `in progress`, `complete` or `different` (the replicas are neither target nor moving).
    pub(super) status: String,
    /// Bytes copied to each replica being filled (see the module comment for which).
    pub(super) copies: Vec<ReplicaCopy>,
}

/// How far one replica's copy has come.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(super) struct ReplicaCopy {
    /// The replica's broker.
    broker: BrokerId,
    /// Its log's size (0 while it has no log yet); null if its broker did not answer.
    copied_bytes: Option<i64>,
    /// The leader's log size; null if the partition has no leader or the leader did not
    /// answer.
    to_copy_bytes: Option<i64>,
    /// `copied / to copy` in percent, rounded down to a tenth, at most 100 (100 when there is
    /// nothing to copy); null when either size is unknown.
    percent: Option<f64>,
}

/// `copied / to_copy` in percent, rounded down to a tenth and capped at 100; 100 when there is
/// nothing to copy (an empty leader, or a leader whose log retention shrank below the copy).
pub(super) fn percent(copied_bytes: i64, to_copy_bytes: i64) -> f64 {
    if to_copy_bytes <= 0 || copied_bytes >= to_copy_bytes {
        return 100.0;
    }
    let tenths = i128::from(copied_bytes.max(0)) * 1000 / i128::from(to_copy_bytes);
    tenths as f64 / 10.0
}

/// The replicas whose copy a row shows: the adding ones while the partition moves, the
/// target's followers once it is complete, none when it is neither.
pub(super) fn copy_brokers(
    status: &str,
    adding: &[BrokerId],
    target: &[BrokerId],
    leader: BrokerId,
) -> Vec<BrokerId> {
    match status {
        "in progress" => adding.to_vec(),
        "complete" => target.iter().copied().filter(|&b| b != leader).collect(),
        _ => Vec::new(),
    }
}

/// Each plan partition's progress: ListPartitionReassignments from the controller, replicas
/// and ISR from Metadata, log sizes from DescribeLogDirs on the leaders and copying brokers.
///
/// The controller forgets a finished move before every broker has its UpdateMetadata, so for
/// a moment a partition can be listed as not moving while the metadata still shows the
/// moving replicas: a "different" row is read again (up to 2 s) before it is believed.
pub(super) async fn progress(
    options: &ClientOptions,
    plan: &[ReassignmentEntry],
) -> anyhow::Result<Vec<ProgressRow>> {
    let mut rows = progress_once(options, plan).await?;
    for _ in 0..20 {
        if rows.iter().all(|r| r.status != "different") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        rows = progress_once(options, plan).await?;
    }
    Ok(rows)
}

async fn progress_once(
    options: &ClientOptions,
    plan: &[ReassignmentEntry],
) -> anyhow::Result<Vec<ProgressRow>> {
    let request = ListPartitionReassignmentsRequest::default();
    let listed = super::send_to_controller(options, &request, 0, |r| r.error_code).await?;
    if listed.error_code != 0 {
        bail!(
            "the controller refused the listing: {}",
            error_name(listed.error_code)
        );
    }
    let mut moving: BTreeMap<TopicPartition, (Vec<BrokerId>, Vec<BrokerId>)> = BTreeMap::new();
    for topic in &listed.topics {
        for p in &topic.partitions {
            moving.insert(
                TopicPartition::new(topic.name.0.as_str(), p.partition_index),
                (
                    p.adding_replicas.iter().map(|r| r.0).collect(),
                    p.removing_replicas.iter().map(|r| r.0).collect(),
                ),
            );
        }
    }
    let metadata = options
        .raw_metadata_async(Some(&super::plan_topics(plan)))
        .await?;
    let known = super::assignments(&metadata);
    let mut rows = Vec::new();
    for (tp, target) in plan {
        let (replicas, isr, leader) = known.get(tp).cloned().unwrap_or_default();
        let (adding, removing) = moving.get(tp).cloned().unwrap_or_default();
        let in_isr = target.iter().filter(|r| isr.contains(r)).count();
        let status = if moving.contains_key(tp) {
            "in progress"
        } else if &replicas == target {
            "complete"
        } else {
            "different"
        };
        rows.push(ProgressRow {
            topic: tp.topic.clone(),
            partition: tp.partition,
            target: target.clone(),
            replicas,
            isr,
            adding,
            removing,
            leader,
            in_sync: format!("{in_isr}/{}", target.len()),
            status: status.to_string(),
            copies: Vec::new(),
        });
    }
    // One DescribeLogDirs per broker involved, for the partitions it leads or receives.
    let mut asked: BTreeMap<BrokerId, BTreeSet<TopicPartition>> = BTreeMap::new();
    for row in &rows {
        let tp = TopicPartition::new(row.topic.as_str(), row.partition);
        let copying = copy_brokers(&row.status, &row.adding, &row.target, row.leader);
        if copying.is_empty() {
            continue;
        }
        if row.leader >= 0 {
            asked.entry(row.leader).or_default().insert(tp.clone());
        }
        for broker in copying {
            asked.entry(broker).or_default().insert(tp.clone());
        }
    }
    let addresses: BTreeMap<BrokerId, String> = metadata
        .brokers
        .iter()
        .map(|b| (b.node_id.0, format!("{}:{}", b.host, b.port)))
        .collect();
    let (sizes, failures) = crate::log_dirs::replica_sizes(options, &addresses, &asked).await;
    for (broker, reason) in &failures {
        eprintln!("warning: no log sizes from broker {broker}: {reason}");
    }
    for row in &mut rows {
        let tp = TopicPartition::new(row.topic.as_str(), row.partition);
        let to_copy = sizes.get(&(row.leader, tp.clone())).copied();
        row.copies = copy_brokers(&row.status, &row.adding, &row.target, row.leader)
            .into_iter()
            .map(|broker| {
                // A broker that answered but holds no log yet has copied nothing.
                let copied = sizes
                    .get(&(broker, tp.clone()))
                    .copied()
                    .or_else(|| (!failures.contains_key(&broker)).then_some(0));
                ReplicaCopy {
                    broker,
                    copied_bytes: copied,
                    to_copy_bytes: to_copy,
                    percent: copied.zip(to_copy).map(|(c, t)| percent(c, t)),
                }
            })
            .collect();
    }
    Ok(rows)
}

/// `4: 1200000/3400000 B (35.2%)`, one entry per copying replica, `-` for none.
pub(super) fn describe_copies(copies: &[ReplicaCopy]) -> String {
    if copies.is_empty() {
        return "-".to_string();
    }
    let bytes = |b: Option<i64>| b.map_or_else(|| "?".to_string(), |b| b.to_string());
    copies
        .iter()
        .map(|c| {
            let percent = c
                .percent
                .map_or_else(|| "?".to_string(), |p| format!("{p:.1}%"));
            format!(
                "{}: {}/{} B ({percent})",
                c.broker,
                bytes(c.copied_bytes),
                bytes(c.to_copy_bytes)
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Prints the rows as a table or JSON.
pub(super) fn show(options: &ClientOptions, rows: &[ProgressRow]) -> anyhow::Result<()> {
    if options.json {
        return print_json(&rows);
    }
    let mut table = Table::new(&[
        "TOPIC",
        "PARTITION",
        "TARGET",
        "REPLICAS",
        "ISR",
        "ADDING",
        "REMOVING",
        "IN_SYNC",
        "COPIED",
        "STATUS",
    ]);
    for r in rows {
        table.row(vec![
            r.topic.clone(),
            r.partition.to_string(),
            join_ids(&r.target),
            join_ids(&r.replicas),
            join_ids(&r.isr),
            join_ids(&r.adding),
            join_ids(&r.removing),
            r.in_sync.clone(),
            describe_copies(&r.copies),
            r.status.clone(),
        ]);
    }
    table.print()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_is_rounded_down_and_capped() {
        assert_eq!(percent(0, 1_000), 0.0);
        assert_eq!(percent(999, 1_000), 99.9);
        assert_eq!(percent(9_999, 10_000), 99.9, "not rounded up to 100");
        assert_eq!(percent(1_000, 1_000), 100.0);
        assert_eq!(percent(1_200, 1_000), 100.0, "a leader shrunk by retention");
        assert_eq!(percent(0, 0), 100.0, "nothing to copy");
        assert_eq!(percent(1, 3), 33.3);
        assert_eq!(percent(i64::MAX - 1, i64::MAX), 99.9, "no overflow");
    }

    #[test]
    fn adding_replicas_while_moving_and_the_targets_followers_when_done() {
        assert_eq!(copy_brokers("in progress", &[4], &[4, 3, 2], 1), vec![4]);
        assert_eq!(copy_brokers("complete", &[], &[4, 3, 2], 3), vec![4, 2]);
        assert_eq!(
            copy_brokers("different", &[], &[4, 3], 1),
            Vec::<i32>::new()
        );
    }

    #[test]
    fn copies_are_described_per_broker() {
        let copies = vec![
            ReplicaCopy {
                broker: 4,
                copied_bytes: Some(1_200),
                to_copy_bytes: Some(3_400),
                percent: Some(percent(1_200, 3_400)),
            },
            ReplicaCopy {
                broker: 5,
                copied_bytes: None,
                to_copy_bytes: Some(3_400),
                percent: None,
            },
        ];
        assert_eq!(
            describe_copies(&copies),
            "4: 1200/3400 B (35.2%); 5: ?/3400 B (?)"
        );
        assert_eq!(describe_copies(&[]), "-");
    }
}
