//! The broker catalogue: every `server.properties` key Strom understands, with Kafka's type,
//! default and rule, plus the aliases it accepts and the Kafka keys it accepts but ignores.
//!
//! Defaults are Kafka's except where a comment on the entry says why Strom differs. This table
//! is data only; [`super::BrokerConfig`] interprets it.

use super::rule::{KeySpec, Rule, Synonym};
use super::ConfigType::{self, Boolean, Double, Int, List, Long, Short, String as Text};

/// Kafka's `Long.MAX_VALUE`, the "never" of time and count limits.
pub const LONG_MAX: &str = "9223372036854775807";

/// The compression codecs a topic or broker may name.
pub const COMPRESSION_TYPES: &[&str] =
    &["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"];

/// The cleanup policies a topic or broker may list.
pub const CLEANUP_POLICIES: &[&str] = &["delete", "compact"];

/// The timestamp types a topic or broker may name.
pub const TIMESTAMP_TYPES: &[&str] = &["CreateTime", "LogAppendTime"];

/// The `replica.selector.class` values Strom knows: Kafka's two selectors, by class name.
pub const REPLICA_SELECTORS: &[&str] = &[
    "org.apache.kafka.common.replica.LeaderSelector",
    "org.apache.kafka.common.replica.RackAwareReplicaSelector",
];

/// Shorthand for a table row.
const fn key(
    name: &'static str,
    config_type: ConfigType,
    default: Option<&'static str>,
    rule: Rule,
    doc: &'static str,
) -> KeySpec {
    KeySpec {
        name,
        config_type,
        default,
        rule,
        doc,
    }
}

/// Every broker key, sorted by name.
#[rustfmt::skip]
pub static BROKER_KEYS: &[KeySpec] = &[
    key("advertised.listeners", Text, None, Rule::Listeners,
        "The listeners clients are told to connect to, as NAME://host:port. Defaults to \
         `listeners`; the host must be routable, so 0.0.0.0 is refused."),
    key("auto.create.topics.enable", Boolean, Some("true"), Rule::Any,
        "Whether a Metadata request or produce for an unknown topic creates it with the broker \
         defaults."),
    // Strom runs single-node by default, so id 0 rather than Kafka's -1 (auto-generate).
    key("auto.leader.rebalance.enable", Boolean, Some("true"), Rule::Any,
        "Whether the controller moves leadership back to preferred replicas when a broker leads \
         too few of the partitions it is preferred for (checked every \
         `leader.imbalance.check.interval.seconds`)."),
    key("broker.id", Int, Some("0"), Rule::AtLeast(0),
        "This broker's id in the cluster; `node.id` is accepted as an alias. Strom defaults to 0."),
    key("broker.rack", Text, None, Rule::Any,
        "The rack (or zone) of this broker, used to spread a partition's replicas across racks."),
    key("cluster.id", Text, None, Rule::NonEmpty,
        "Overrides the cluster id clients see; by default one is generated when the metadata \
         store is first created and kept from then on."),
    key("compression.type", Text, Some("producer"), Rule::OneOf(COMPRESSION_TYPES),
        "The default final compression of topic data; `producer` keeps whatever codec the \
         producer used."),
    key("controlled.shutdown.enable", Boolean, Some("true"), Rule::Any,
        "Whether a cluster broker asks the controller to move its partitions' leadership away \
         (ControlledShutdown) before it stops on SIGTERM."),
    key("controlled.shutdown.max.retries", Int, Some("3"), Rule::AtLeast(0),
        "How many times a stopping broker asks the controller again while partitions it leads \
         could not be moved yet."),
    key("controlled.shutdown.retry.backoff.ms", Long, Some("5000"), Rule::AtLeast(0),
        "The pause between two ControlledShutdown attempts."),
    key("controller.socket.timeout.ms", Int, Some("30000"), Rule::AtLeast(1),
        "How long the controller waits for a broker to answer a LeaderAndIsr, UpdateMetadata or \
         StopReplica request before it retries on a new connection."),
    key("default.replication.factor", Int, Some("1"), Rule::Between(1, 32767),
        "The replication factor of automatically created topics and of CreateTopics requests \
         that leave it to the broker."),
    key("delete.topic.enable", Boolean, Some("true"), Rule::Any,
        "Whether DeleteTopics is allowed; when false, deletion requests are refused."),
    // Kafka's dynamic-only quota (DynamicConfig.Broker); Strom also reads it from the file.
    key("follower.replication.throttled.rate", Long, Some(LONG_MAX), Rule::AtLeast(0),
        "The bytes per second this broker's replica fetchers may copy for the partitions a \
         topic's follower.replication.throttled.replicas lists for it; set it dynamically \
         (AlterConfigs on the broker) during a reassignment."),
    key("group.initial.rebalance.delay.ms", Int, Some("3000"), Rule::AtLeast(0),
        "How long the coordinator waits for more members to join a new consumer group before \
         its first rebalance."),
    key("group.max.session.timeout.ms", Int, Some("1800000"), Rule::AtLeast(1),
        "The largest session timeout a consumer group member may ask for."),
    key("group.min.session.timeout.ms", Int, Some("6000"), Rule::AtLeast(1),
        "The smallest session timeout a consumer group member may ask for."),
    key("inter.broker.listener.name", Text, None, Rule::NonEmpty,
        "The listener brokers use to reach each other (replica fetches, controller requests); \
         defaults to the first of `advertised.listeners`."),
    key("leader.imbalance.check.interval.seconds", Long, Some("300"), Rule::AtLeast(1),
        "How often the controller checks the leadership balance."),
    key("leader.imbalance.per.broker.percentage", Int, Some("10"), Rule::Between(0, 100),
        "The share of a broker's preferred partitions led by others, in percent, above which \
         the controller elects the preferred replicas."),
    key("leader.replication.throttled.rate", Long, Some(LONG_MAX), Rule::AtLeast(0),
        "The bytes per second this broker may serve to followers outside the ISR for the \
         partitions a topic's leader.replication.throttled.replicas lists for it."),
    // Kafka binds all interfaces on its default port; Strom binds loopback so a first run is not
    // exposed to the network.
    key("listeners", Text, Some("PLAINTEXT://127.0.0.1:9092"), Rule::Listeners,
        "The addresses the broker listens on, as a comma-separated list of NAME://host:port. \
         Only PLAINTEXT is supported; port 0 picks a free port."),
    key("log.cleaner.backoff.ms", Long, Some("15000"), Rule::AtLeast(0),
        "How often the log cleaner looks for compacted topics (cleanup.policy=compact) with \
         enough uncleaned data to compact."),
    key("log.cleaner.delete.retention.ms", Long, Some("86400000"), Rule::AtLeast(0),
        "The default for the topic key delete.retention.ms: how long tombstones are kept on \
         compacted topics."),
    key("log.cleaner.enable", Boolean, Some("true"), Rule::Any,
        "Whether compacted topics (cleanup.policy=compact, such as __consumer_offsets) are \
         compacted; when false they keep every record."),
    key("log.cleaner.io.max.bytes.per.second", Double, Some("1.7976931348623157E308"), Rule::Any,
        "Kafka's limit on the cleaner's reads and writes. Accepted (and dynamic) for \
         compatibility; Strom's compaction pass is not throttled."),
    key("log.cleaner.max.compaction.lag.ms", Long, Some(LONG_MAX), Rule::AtLeast(1),
        "The default for the topic key max.compaction.lag.ms."),
    key("log.cleaner.min.cleanable.ratio", Double, Some("0.5"), Rule::Fraction(0.0, 1.0),
        "The default for the topic key min.cleanable.dirty.ratio."),
    key("log.cleaner.min.compaction.lag.ms", Long, Some("0"), Rule::AtLeast(0),
        "The default for the topic key min.compaction.lag.ms."),
    key("log.cleaner.threads", Int, Some("1"), Rule::AtLeast(0),
        "Kafka's cleaner thread count. Accepted (and dynamic) for compatibility; Strom compacts \
         in one background pass at a time."),
    key("log.cleanup.policy", List, Some("delete"), Rule::SubsetOf(CLEANUP_POLICIES),
        "The default for the topic key cleanup.policy: delete old segments, compact by key, or \
         both."),
    // Kafka's default is /tmp/kafka-logs; Strom keeps data next to where it was started.
    key("log.dir", Text, Some("strom-data"), Rule::NonEmpty,
        "The data directory, used when log.dirs is not set. Strom defaults to `strom-data`."),
    key("log.dirs", List, None, Rule::NonEmpty,
        "A comma-separated list of data directories; takes precedence over log.dir."),
    // Kafka's default is Long.MAX (leave flushing to the OS). Strom fdatasyncs every append
    // before acknowledging it (with group commit), so an acknowledged write survives power loss.
    key("log.flush.interval.messages", Long, Some("1"), Rule::AtLeast(1),
        "How many messages a partition accepts before its log is flushed to disk; `flush.messages` \
         is accepted as an alias. Strom defaults to 1 (every append is fdatasync'd before it is \
         acknowledged, with group commit), where Kafka defaults to 9223372036854775807 and \
         relies on replication instead."),
    key("log.flush.interval.ms", Long, Some(LONG_MAX), Rule::AtLeast(0),
        "The longest a message may sit unflushed; `flush.ms` is accepted as an alias."),
    // Kafka's default is 60000; Strom checkpoints recovery points every second so that recovery
    // after kill -9 re-reads little.
    key("log.flush.offset.checkpoint.interval.ms", Int, Some("1000"), Rule::AtLeast(0),
        "How often the recovery-point checkpoint is written. Strom defaults to 1000 (Kafka: \
         60000) so recovery after a crash re-reads little."),
    key("log.index.interval.bytes", Int, Some("4096"), Rule::AtLeast(0),
        "The default for the topic key index.interval.bytes."),
    key("log.index.size.max.bytes", Int, Some("10485760"), Rule::AtLeast(4),
        "The default for the topic key segment.index.bytes."),
    key("log.message.downconversion.enable", Boolean, Some("true"), Rule::Any,
        "The default for the topic key message.downconversion.enable."),
    key("log.message.timestamp.after.max.ms", Long, Some(LONG_MAX), Rule::AtLeast(0),
        "The default for the topic key message.timestamp.after.max.ms."),
    key("log.message.timestamp.before.max.ms", Long, Some(LONG_MAX), Rule::AtLeast(0),
        "The default for the topic key message.timestamp.before.max.ms."),
    key("log.message.timestamp.type", Text, Some("CreateTime"), Rule::OneOf(TIMESTAMP_TYPES),
        "The default for the topic key message.timestamp.type."),
    key("log.preallocate", Boolean, Some("false"), Rule::Any,
        "The default for the topic key preallocate."),
    key("log.retention.bytes", Long, Some("-1"), Rule::Any,
        "The default for the topic key retention.bytes; -1 means no size limit."),
    key("log.retention.check.interval.ms", Long, Some("300000"), Rule::AtLeast(1),
        "How often the broker looks for segments to delete under the retention rules."),
    key("log.retention.hours", Int, Some("168"), Rule::Any,
        "How long to keep data, in hours; used when log.retention.ms and log.retention.minutes \
         are not set."),
    key("log.retention.minutes", Int, None, Rule::Any,
        "How long to keep data, in minutes; used when log.retention.ms is not set."),
    key("log.retention.ms", Long, None, Rule::AtLeast(-1),
        "How long to keep data, in milliseconds; -1 keeps it forever. Takes precedence over \
         log.retention.minutes and log.retention.hours."),
    key("log.roll.hours", Int, Some("168"), Rule::AtLeast(1),
        "The longest a segment stays active before a new one is rolled, in hours; used when \
         log.roll.ms is not set."),
    key("log.roll.jitter.hours", Int, Some("0"), Rule::AtLeast(0),
        "The largest random amount, in hours, subtracted from the roll time so segments of many \
         partitions do not all roll at once."),
    key("log.roll.jitter.ms", Long, None, Rule::AtLeast(0),
        "Like log.roll.jitter.hours, in milliseconds; takes precedence."),
    key("log.roll.ms", Long, None, Rule::AtLeast(1),
        "The longest a segment stays active before a new one is rolled, in milliseconds; takes \
         precedence over log.roll.hours."),
    key("log.segment.bytes", Int, Some("1073741824"), Rule::AtLeast(14),
        "The largest size of one segment file; the default for the topic key segment.bytes."),
    key("log.segment.delete.delay.ms", Long, Some("60000"), Rule::AtLeast(0),
        "How long a deleted segment's files linger before removal; the default for the topic \
         key file.delete.delay.ms."),
    key("max.incremental.fetch.session.cache.slots", Int, Some("1000"), Rule::AtLeast(0),
        "The fetch sessions (KIP-227) the broker keeps; 0 answers every fetch without one."),
    key("message.max.bytes", Int, Some("1048588"), Rule::AtLeast(0),
        "The largest record batch the broker accepts; the default for the topic key \
         max.message.bytes."),
    key("min.insync.replicas", Int, Some("1"), Rule::AtLeast(1),
        "The fewest in-sync replicas that must hold a write for an acks=all produce to succeed."),
    key("num.io.threads", Int, Some("8"), Rule::AtLeast(1),
        "Threads that process requests. Accepted for compatibility; Strom sizes its runtime \
         itself."),
    key("num.network.threads", Int, Some("3"), Rule::AtLeast(1),
        "Threads that read and write the network. Accepted for compatibility; Strom sizes its \
         runtime itself."),
    key("num.partitions", Int, Some("1"), Rule::AtLeast(1),
        "The partition count of automatically created topics and of CreateTopics requests that \
         leave it to the broker."),
    key("num.recovery.threads.per.data.dir", Int, Some("2"), Rule::AtLeast(1),
        "Threads per data directory that recover logs at startup and flush them at shutdown."),
    key("num.replica.fetchers", Int, Some("1"), Rule::AtLeast(1),
        "Fetcher connections per source broker that copy partitions this broker follows."),
    key("offsets.retention.check.interval.ms", Long, Some("600000"), Rule::AtLeast(1),
        "How often the group coordinator looks for committed offsets to expire."),
    key("offsets.retention.minutes", Int, Some("10080"), Rule::AtLeast(1),
        "How long committed offsets of an empty consumer group are kept."),
    key("offsets.topic.num.partitions", Int, Some("50"), Rule::AtLeast(1),
        "The partition count of __consumer_offsets; fixed once the topic exists."),
    key("offsets.topic.replication.factor", Short, Some("3"), Rule::Between(1, 32767),
        "The replication factor of `__consumer_offsets`, capped at creation by the number of \
         live brokers (a single node creates it with 1)."),
    key("offsets.topic.segment.bytes", Int, Some("104857600"), Rule::AtLeast(1),
        "The segment size of __consumer_offsets, set when the topic is created; smaller \
         segments are compacted sooner."),
    key("replica.fetch.backoff.ms", Int, Some("1000"), Rule::AtLeast(0),
        "How long a follower waits before fetching again after a fetch error."),
    key("replica.fetch.max.bytes", Int, Some("8388608"), Rule::AtLeast(0),
        "The bytes a follower asks for per partition in one fetch (at least one whole batch is \
         always returned). 8 MiB, not Kafka's 1 MiB: a Strom follower fdatasyncs what it fetched \
         before its next fetch, so each round trip pays a sync, and 1 MiB per partition capped \
         3-broker RF 3 acks=all at about 0.44x a single node (8 MiB: about 0.75x, bench/cluster)."),
    key("replica.fetch.min.bytes", Int, Some("1"), Rule::AtLeast(1),
        "The bytes a follower's fetch waits for before the leader answers it."),
    key("replica.fetch.wait.max.ms", Int, Some("500"), Rule::AtLeast(0),
        "The longest a leader holds a follower's fetch waiting for data; must be below \
         `replica.lag.time.max.ms`."),
    key("replica.high.watermark.checkpoint.interval.ms", Long, Some("5000"), Rule::AtLeast(1),
        "How often the high watermarks are written to `replication-offset-checkpoint`."),
    key("replica.lag.time.max.ms", Long, Some("30000"), Rule::AtLeast(1),
        "A follower that has not caught up to the leader's log end for this long is removed \
         from the ISR."),
    key("replica.selector.class", Text, None, Rule::OneOf(REPLICA_SELECTORS),
        "Which replica a consumer that names its `client.rack` (Fetch v11+) is sent to read from \
         (KIP-392): unset or Kafka's `LeaderSelector` keeps every consumer on the leader; \
         `org.apache.kafka.common.replica.RackAwareReplicaSelector` names an in-sync replica in \
         the consumer's rack. Followers serve such consumers up to their high watermark."),
    key("replica.socket.timeout.ms", Int, Some("30000"), Rule::AtLeast(1),
        "How long a follower waits for a fetch response before it reconnects."),
    key("replication.quota.window.num", Int, Some("11"), Rule::AtLeast(1),
        "How many windows the replication throttles average their byte rate over."),
    key("replication.quota.window.size.seconds", Int, Some("1"), Rule::AtLeast(1),
        "The length of one window of the replication throttles' byte rate."),
    key("socket.request.max.bytes", Int, Some("104857600"), Rule::AtLeast(1),
        "The largest request the broker reads; a bigger one closes the connection."),
    key("strom.metrics.listener", Text, Some("127.0.0.1:9644"), Rule::HostPortOrEmpty,
        "Where the broker serves its metrics for Prometheus over HTTP (GET /metrics), as \
         host:port; port 0 picks a free port, empty turns the endpoint off. Strom's own key."),
    key("transaction.abort.timed.out.transaction.cleanup.interval.ms", Int, Some("10000"),
        Rule::AtLeast(1),
        "How often the transaction coordinator aborts transactions open longer than their \
         transaction.timeout.ms."),
    key("transaction.max.timeout.ms", Int, Some("900000"), Rule::AtLeast(1),
        "The largest transaction.timeout.ms a producer may ask for; InitProducerId with a larger \
         one is refused with INVALID_TRANSACTION_TIMEOUT."),
    key("transaction.partition.verification.enable", Boolean, Some("true"), Rule::Any,
        "KIP-890: a partition leader asks the transaction coordinator whether the partition is \
         in the producer's ongoing transaction before appending the transaction's first batch \
         there, so a late or stray transactional batch cannot open a transaction nobody ends."),
    key("transaction.remove.expired.transaction.cleanup.interval.ms", Int, Some("3600000"),
        Rule::AtLeast(1),
        "How often the transaction coordinator removes transactional ids idle for longer than \
         transactional.id.expiration.ms."),
    key("transaction.state.log.min.isr", Int, Some("2"), Rule::AtLeast(1),
        "min.insync.replicas of __transaction_state, capped at creation by its replication \
         factor."),
    key("transaction.state.log.num.partitions", Int, Some("50"), Rule::AtLeast(1),
        "The partition count of __transaction_state; fixed once the topic exists."),
    key("transaction.state.log.replication.factor", Short, Some("3"), Rule::Between(1, 32767),
        "The replication factor of __transaction_state, capped at creation by the number of \
         live brokers (a single node creates it with 1)."),
    key("transaction.state.log.segment.bytes", Int, Some("104857600"), Rule::AtLeast(1),
        "The segment size of __transaction_state, set when the topic is created."),
    key("transactional.id.expiration.ms", Int, Some("604800000"), Rule::AtLeast(1),
        "How long a transactional id whose producer sends nothing is kept before the \
         coordinator removes it."),
    key("unclean.leader.election.enable", Boolean, Some("false"), Rule::Any,
        "The default for the topic key unclean.leader.election.enable: whether a replica outside \
         the ISR may become leader, at the cost of losing data."),
    key("zookeeper.connect", Text, None, Rule::NonEmpty,
        "The ZooKeeper ensemble of a cluster, `host:port[,host:port...][/chroot]`. Unset, the \
         broker is a single node with embedded metadata."),
    key("zookeeper.connection.timeout.ms", Int, None, Rule::AtLeast(1),
        "How long the broker waits to connect to ZooKeeper; defaults to \
         `zookeeper.session.timeout.ms`."),
    key("zookeeper.session.timeout.ms", Int, Some("18000"), Rule::AtLeast(1),
        "The ZooKeeper session timeout: a broker whose session expires loses its registration \
         and its leaderships."),
];

/// Alternative spellings accepted for a key, as (alias, canonical key). The topic-level names
/// `flush.messages` and `flush.ms` are accepted in `server.properties` because users copy them
/// from topic configurations.
pub static BROKER_ALIASES: &[(&str, &str)] = &[
    ("node.id", "broker.id"),
    ("flush.messages", "log.flush.interval.messages"),
    ("flush.ms", "log.flush.interval.ms"),
];

/// A synonym in the target's own unit.
pub const fn same(key: &'static str) -> Synonym {
    Synonym { key, scale: 1 }
}

/// A synonym counted in minutes, for a target in milliseconds.
pub const fn minutes(key: &'static str) -> Synonym {
    Synonym { key, scale: 60_000 }
}

/// A synonym counted in hours, for a target in milliseconds.
pub const fn hours(key: &'static str) -> Synonym {
    Synonym {
        key,
        scale: 3_600_000,
    }
}

/// Broker keys that set the same thing in different units, highest precedence first: the
/// first one set wins, else the first one with a default.
pub static BROKER_SYNONYM_CHAINS: &[&[Synonym]] = &[
    &[
        same("log.retention.ms"),
        minutes("log.retention.minutes"),
        hours("log.retention.hours"),
    ],
    &[same("log.roll.ms"), hours("log.roll.hours")],
    &[same("log.roll.jitter.ms"), hours("log.roll.jitter.hours")],
    &[same("log.dirs"), same("log.dir")],
];

/// The synonym chain starting at broker key `name`: the rest of its chain from its own
/// position, with scales converted to `name`'s unit (from `log.retention.minutes`, hours
/// count 60), or just itself.
pub fn broker_chain(name: &'static str) -> Vec<Synonym> {
    for chain in BROKER_SYNONYM_CHAINS {
        if let Some(position) = chain.iter().position(|synonym| synonym.key == name) {
            let unit = chain[position].scale;
            return chain[position..]
                .iter()
                .map(|synonym| Synonym {
                    key: synonym.key,
                    scale: synonym.scale / unit,
                })
                .collect();
        }
    }
    vec![same(name)]
}

/// Kafka broker keys Strom accepts and ignores, so an existing `server.properties` loads.
/// The broker logs one warning listing the ones a file set.
pub static IGNORED_BROKER_KEYS: &[&str] = &[
    "background.threads",
    "connections.max.idle.ms",
    "fetch.purgatory.purge.interval.requests",
    "group.coordinator.rebalance.protocols",
    "inter.broker.protocol.version",
    "kafka.metrics.polling.interval.secs",
    "kafka.metrics.reporters",
    "listener.security.protocol.map",
    "log.cleaner.dedupe.buffer.size",
    "log.cleaner.io.buffer.load.factor",
    "log.cleaner.io.buffer.size",
    "log.flush.scheduler.interval.ms",
    "log.flush.start.offset.checkpoint.interval.ms",
    "log.message.format.version",
    "max.connections",
    "max.connections.per.ip",
    "metric.reporters",
    "metrics.num.samples",
    "metrics.recording.level",
    "metrics.sample.window.ms",
    "num.replica.alter.log.dirs.threads",
    "offsets.commit.timeout.ms",
    "offsets.load.buffer.size",
    "offsets.topic.compression.codec",
    "process.roles",
    "producer.purgatory.purge.interval.requests",
    "queued.max.requests",
    "replica.socket.receive.buffer.bytes",
    "request.timeout.ms",
    "security.inter.broker.protocol",
    "socket.listen.backlog.size",
    "socket.receive.buffer.bytes",
    "socket.send.buffer.bytes",
    "zookeeper.max.in.flight.requests",
    "zookeeper.set.acl",
];

/// Prefixes of Kafka key families Strom accepts and ignores. TLS and SASL settings are safe to
/// ignore only because `listeners` refuses every protocol but PLAINTEXT, so none can be
/// mistaken for enabled.
pub static IGNORED_BROKER_KEY_PREFIXES: &[&str] = &[
    "confluent.",
    "controller.",
    "listener.name.",
    "metadata.",
    "quorum.",
    "remote.log.",
    "sasl.",
    "ssl.",
    "zookeeper.",
];

/// The broker key named `name`, if it exists (aliases are not resolved here).
pub fn broker_key(name: &str) -> Option<&'static KeySpec> {
    BROKER_KEYS
        .binary_search_by(|spec| spec.name.cmp(name))
        .ok()
        .map(|index| &BROKER_KEYS[index])
}

/// The canonical key for `name`: itself, or what it is an alias of.
pub fn canonical_broker_key(name: &str) -> &str {
    BROKER_ALIASES
        .iter()
        .find(|(alias, _)| *alias == name)
        .map_or(name, |(_, canonical)| canonical)
}

/// True if Strom accepts and ignores `name`.
pub fn is_ignored_broker_key(name: &str) -> bool {
    broker_key(name).is_none()
        && (IGNORED_BROKER_KEYS.contains(&name)
            || IGNORED_BROKER_KEY_PREFIXES
                .iter()
                .any(|prefix| name.starts_with(prefix)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_and_unique() {
        for pair in BROKER_KEYS.windows(2) {
            assert!(
                pair[0].name < pair[1].name,
                "{} / {}",
                pair[0].name,
                pair[1].name
            );
        }
    }

    #[test]
    fn every_default_obeys_its_own_rule() {
        for spec in BROKER_KEYS {
            if let Some(default) = spec.default {
                spec.check(default).unwrap_or_else(|e| panic!("{e}"));
            }
        }
    }

    #[test]
    fn chains_name_known_keys() {
        for chain in BROKER_SYNONYM_CHAINS {
            for synonym in chain.iter() {
                assert!(broker_key(synonym.key).is_some(), "{}", synonym.key);
            }
        }
        let chain: Vec<_> = broker_chain("log.retention.minutes")
            .iter()
            .map(|synonym| (synonym.key, synonym.scale))
            .collect();
        assert_eq!(
            chain,
            [("log.retention.minutes", 1), ("log.retention.hours", 60)]
        );
        assert_eq!(broker_chain("num.partitions"), vec![same("num.partitions")]);
    }

    #[test]
    fn aliases_and_ignored_keys_do_not_shadow_known_keys() {
        for (alias, canonical) in BROKER_ALIASES {
            assert!(broker_key(alias).is_none(), "{alias}");
            assert!(broker_key(canonical).is_some(), "{canonical}");
        }
        for name in IGNORED_BROKER_KEYS {
            assert!(broker_key(name).is_none(), "{name}");
        }
        for spec in BROKER_KEYS {
            assert!(!is_ignored_broker_key(spec.name), "{}", spec.name);
        }
    }
}
