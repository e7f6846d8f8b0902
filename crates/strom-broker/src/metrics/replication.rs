//! The replication metrics of a broker (issue 8): ISR changes, the controller's gauges and
//! counts, under-replicated and offline partitions, follower lag. Names are what the
//! Prometheus JMX exporter's standard Kafka rules (`lowercaseOutputName: true`) make of
//! Kafka's MBeans; the mapping is in ARCHITECTURE.md ("Metrics").
//!
//! It keeps only the ISR counters; everything else is read at scrape time through
//! [`super::Gauges`] (the controller's state as the cluster runtime last published it, the
//! partitions' states from the metadata cache, the fetchers' last lag per partition).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use super::{family, label, PartitionGauges};

/// Counters of ISR changes this broker made as a leader (Kafka's `IsrShrinksPerSec` and
/// `IsrExpandsPerSec` meters, of which the exporter keeps the count).
#[derive(Debug, Default)]
pub struct IsrCounters {
    shrinks: AtomicU64,
    expands: AtomicU64,
}

impl IsrCounters {
    /// This broker, leading a partition, wrote an ISR of `after` members over one of `before`.
    pub fn changed(&self, before: usize, after: usize) {
        match after.cmp(&before) {
            std::cmp::Ordering::Less => self.shrinks.fetch_add(1, Ordering::Relaxed),
            std::cmp::Ordering::Greater => self.expands.fetch_add(1, Ordering::Relaxed),
            std::cmp::Ordering::Equal => 0,
        };
    }
}

/// The controller's side, read at scrape time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ControllerGauges {
    /// True on the active controller (a single node is its own).
    pub active: bool,
    /// Partitions without a live leader (reported by the active controller only, as Kafka).
    pub offline_partitions: u64,
    /// Leader elections this broker's controller wrote, over all its terms.
    pub leader_elections: u64,
    /// Of those, unclean ones.
    pub unclean_leader_elections: u64,
}

/// Writes the replication families.
pub(super) fn render(
    out: &mut String,
    isr: &IsrCounters,
    partitions: &[PartitionGauges],
    controller: ControllerGauges,
) {
    let gauge = |out: &mut String, name: &str, help: &str, value: u64| {
        family(out, name, "gauge", help);
        let _ = writeln!(out, "{name} {value}");
    };
    let counter = |out: &mut String, name: &str, help: &str, value: u64| {
        family(out, name, "counter", help);
        let _ = writeln!(out, "{name} {value}");
    };
    gauge(
        out,
        "kafka_server_replicamanager_underreplicatedpartitions",
        "Partitions this broker leads whose ISR is smaller than their replicas.",
        partitions
            .iter()
            .filter(|p| p.leader && p.under_replicated)
            .count() as u64,
    );
    gauge(
        out,
        "kafka_server_replicamanager_underminisrpartitioncount",
        "Partitions this broker leads whose ISR is smaller than min.insync.replicas (acks=all \
         is refused).",
        partitions
            .iter()
            .filter(|p| p.leader && p.under_min_isr)
            .count() as u64,
    );
    counter(
        out,
        "kafka_server_replicamanager_isrshrinks_total",
        "ISR shrinks this broker wrote as a partition's leader.",
        isr.shrinks.load(Ordering::Relaxed),
    );
    counter(
        out,
        "kafka_server_replicamanager_isrexpands_total",
        "ISR expansions this broker wrote as a partition's leader.",
        isr.expands.load(Ordering::Relaxed),
    );
    gauge(
        out,
        "kafka_controller_kafkacontroller_activecontrollercount",
        "1 on the active controller, else 0 (sums to 1 over a healthy cluster).",
        u64::from(controller.active),
    );
    gauge(
        out,
        "kafka_controller_kafkacontroller_offlinepartitionscount",
        "Partitions without a live leader (reported by the active controller).",
        controller.offline_partitions,
    );
    counter(
        out,
        "kafka_controller_controllerstats_leaderelectionrateandtimems_count",
        "Partition leader elections this broker's controller wrote.",
        controller.leader_elections,
    );
    counter(
        out,
        "kafka_controller_controllerstats_uncleanleaderelections_total",
        "Leader elections of a replica outside the ISR this broker's controller wrote.",
        controller.unclean_leader_elections,
    );
    let following: Vec<&PartitionGauges> = partitions
        .iter()
        .filter(|p| !p.leader && p.follower_lag.is_some())
        .collect();
    family(
        out,
        "kafka_server_replicafetchermanager_maxlag",
        "gauge",
        "The largest lag, in records behind the leader's high watermark, over the partitions \
         this broker follows.",
    );
    let max = following
        .iter()
        .filter_map(|p| p.follower_lag)
        .max()
        .unwrap_or(0);
    let _ = writeln!(
        out,
        "kafka_server_replicafetchermanager_maxlag{{clientId=\"Replica\"}} {max}"
    );
    family(
        out,
        "kafka_server_fetcherlagmetrics_consumerlag",
        "gauge",
        "Records this broker's fetcher is behind the leader's high watermark, per partition.",
    );
    for p in following {
        let _ = writeln!(
            out,
            "kafka_server_fetcherlagmetrics_consumerlag{{clientId=\"ReplicaFetcherThread-0-{}\",topic=\"{}\",partition=\"{}\"}} {}",
            p.leader_id,
            label(&p.topic),
            p.partition,
            p.follower_lag.unwrap_or(0)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn partition(leader: bool, under_replicated: bool, lag: Option<u64>) -> PartitionGauges {
        PartitionGauges {
            topic: "t\"x".into(),
            partition: 3,
            size_bytes: 0,
            log_end_offset: 0,
            log_start_offset: 0,
            segments: 1,
            leader,
            leader_id: if leader { 1 } else { 2 },
            under_replicated,
            under_min_isr: under_replicated && leader,
            follower_lag: lag,
        }
    }

    fn sample(body: &str, series: &str) -> Option<u64> {
        body.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
    }

    #[test]
    fn under_replicated_counts_led_partitions_and_lag_followed_ones() {
        let isr = IsrCounters::default();
        isr.changed(3, 2);
        isr.changed(2, 2);
        isr.changed(2, 3);
        isr.changed(3, 1);
        let partitions = [
            partition(true, true, None),
            partition(false, true, Some(7)),
            partition(false, false, Some(40)),
            // A lag left from when this broker followed a partition it now leads.
            partition(true, false, Some(900)),
        ];
        let controller = ControllerGauges {
            active: true,
            offline_partitions: 2,
            leader_elections: 5,
            unclean_leader_elections: 1,
        };
        let mut out = String::new();
        render(&mut out, &isr, &partitions, controller);
        let value =
            |series: &str| sample(&out, series).unwrap_or_else(|| panic!("{series}:\n{out}"));
        assert_eq!(
            value("kafka_server_replicamanager_underreplicatedpartitions"),
            1
        );
        assert_eq!(value("kafka_server_replicamanager_isrshrinks_total"), 2);
        assert_eq!(value("kafka_server_replicamanager_isrexpands_total"), 1);
        assert_eq!(
            value("kafka_controller_kafkacontroller_activecontrollercount"),
            1
        );
        assert_eq!(
            value("kafka_controller_kafkacontroller_offlinepartitionscount"),
            2
        );
        assert_eq!(
            value("kafka_controller_controllerstats_leaderelectionrateandtimems_count"),
            5
        );
        assert_eq!(
            value("kafka_controller_controllerstats_uncleanleaderelections_total"),
            1
        );
        assert_eq!(
            value("kafka_server_replicafetchermanager_maxlag{clientId=\"Replica\"}"),
            40
        );
        assert_eq!(
            value("kafka_server_fetcherlagmetrics_consumerlag{clientId=\"ReplicaFetcherThread-0-2\",topic=\"t\\\"x\",partition=\"3\"}"),
            7
        );
        assert_eq!(
            out.matches("kafka_server_fetcherlagmetrics_consumerlag{")
                .count(),
            2
        );
        assert!(out.contains("# TYPE kafka_server_replicamanager_isrshrinks_total counter"));
    }
}
