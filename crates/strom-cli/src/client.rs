//! What every client command shares: the connection options, building librdkafka clients from
//! them, and turning librdkafka's terse errors into messages a person can act on.
//!
//! This module does not talk to a broker itself, except for [`ClientOptions::raw_metadata`];
//! the command modules do.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use anyhow::{bail, Context};
use kafka_protocol::messages::{
    metadata_request::MetadataRequestTopic, MetadataRequest, MetadataResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::metadata::Metadata;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use strom_broker::interbroker::peer::PeerConnection;

/// Connection options given on the command line, shared by every client command.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// `host:port[,host:port..]`, passed to librdkafka as `bootstrap.servers`.
    pub brokers: String,
    /// How long one request (metadata, admin operation, offset lookup) may take.
    pub timeout_ms: u64,
    /// Extra librdkafka properties (`--prop k=v`), applied last so they override ours.
    pub props: Vec<(String, String)>,
    /// Print JSON instead of tables.
    pub json: bool,
}

impl ClientOptions {
    /// The per-request timeout as a [`Duration`].
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }

    /// A librdkafka configuration with `bootstrap.servers`, the timeouts, and `extra`
    /// followed by the user's `--prop` overrides.
    pub fn config(&self, extra: &[(&str, &str)]) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.brokers);
        config.set("client.id", "strom-cli");
        for (key, value) in extra {
            config.set(*key, *value);
        }
        for (key, value) in &self.props {
            config.set(key, value);
        }
        config
    }

    /// One Metadata request (v12) sent over a plain Kafka-protocol connection to the first
    /// bootstrap broker that answers, for what librdkafka's metadata leaves out (racks,
    /// offline replicas, per-partition errors). `topics: None` asks for every topic.
    pub fn raw_metadata(&self, topics: Option<&[String]>) -> anyhow::Result<MetadataResponse> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("could not start the async runtime")?;
        runtime.block_on(self.raw_metadata_async(topics))
    }

    /// [`ClientOptions::raw_metadata`] inside an async command.
    pub async fn raw_metadata_async(
        &self,
        topics: Option<&[String]>,
    ) -> anyhow::Result<MetadataResponse> {
        let mut request = MetadataRequest::default();
        request.allow_auto_topic_creation = false;
        request.topics = topics.map(|names| {
            names
                .iter()
                .map(|name| {
                    let mut topic = MetadataRequestTopic::default();
                    topic.name = Some(TopicName(StrBytes::from_string(name.clone())));
                    topic
                })
                .collect()
        });
        let timeout = self.timeout();
        let mut failures = Vec::new();
        for server in self
            .brokers
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            let answer = async {
                let peer = PeerConnection::connect(server, "strom-cli", timeout).await?;
                let answer = peer.call(&request, 12, timeout).await;
                peer.close();
                answer
            }
            .await;
            match answer {
                Ok(answer) => return Ok(answer),
                Err(error) => failures.push(error.to_string()),
            }
        }
        bail!(
            "no broker of {} answered a metadata request: {}",
            self.brokers,
            failures.join("; ")
        )
    }

    /// A consumer used only for metadata and offset lookups: no group, no commits, and no
    /// topic auto-creation as a side effect of asking about a topic.
    pub fn metadata_consumer(&self) -> anyhow::Result<BaseConsumer> {
        self.config(&[
            ("enable.auto.commit", "false"),
            ("allow.auto.create.topics", "false"),
        ])
        .create()
        .context("could not create the Kafka client (check --prop values)")
    }

    /// An admin client for topic and config operations.
    pub fn admin(&self) -> anyhow::Result<AdminClient<DefaultClientContext>> {
        self.config(&[])
            .create()
            .context("could not create the Kafka admin client (check --prop values)")
    }

    /// Admin options carrying our timeout as both the request and the operation timeout.
    pub fn admin_options(&self) -> AdminOptions {
        AdminOptions::new()
            .request_timeout(Some(self.timeout()))
            .operation_timeout(Some(self.timeout()))
    }

    /// Fetches cluster metadata (for one topic, or all when `topic` is `None`), with an error
    /// that says which brokers were tried and how to point the CLI elsewhere.
    pub fn fetch_metadata(
        &self,
        consumer: &BaseConsumer,
        topic: Option<&str>,
    ) -> anyhow::Result<Metadata> {
        consumer
            .fetch_metadata(topic, self.timeout())
            .map_err(|error| self.unreachable(error))
    }

    /// The topic's partition ids, ascending; `None` when the topic does not exist (or has an
    /// error or no partitions).
    pub fn partitions_of(
        &self,
        consumer: &BaseConsumer,
        topic: &str,
    ) -> anyhow::Result<Option<BTreeSet<i32>>> {
        let metadata = self.fetch_metadata(consumer, Some(topic))?;
        Ok(metadata
            .topics()
            .iter()
            .find(|found| found.name() == topic)
            .filter(|found| found.error().is_none() && !found.partitions().is_empty())
            .map(|found| found.partitions().iter().map(|p| p.id()).collect()))
    }

    /// As [`ClientOptions::partitions_of`], with a missing topic as an error that says so.
    pub fn existing_partitions(
        &self,
        consumer: &BaseConsumer,
        topic: &str,
    ) -> anyhow::Result<BTreeSet<i32>> {
        self.partitions_of(consumer, topic)?.ok_or_else(|| {
            anyhow::anyhow!("topic {topic:?} does not exist (use `strom topic list`)")
        })
    }

    /// Looks up one offset per partition with ListOffsets: `timestamp` is a time in
    /// milliseconds, or `-2` for the log start offset, or `-1` for the high watermark. Returns
    /// the offset (`None` when there is none, e.g. no record at or after the time) and the
    /// leader epoch the broker reported, per partition.
    pub fn list_offsets(
        &self,
        consumer: &BaseConsumer,
        topic: &str,
        partitions: &[i32],
        timestamp: i64,
    ) -> anyhow::Result<BTreeMap<i32, ListedOffset>> {
        // librdkafka's offset sentinels are ListOffsets' timestamp sentinels (-2 earliest,
        // -1 latest), so `from_raw` carries both kinds of request.
        let mut request = TopicPartitionList::with_capacity(partitions.len());
        for &partition in partitions {
            request
                .add_partition_offset(topic, partition, Offset::from_raw(timestamp))
                .context("could not build the ListOffsets request")?;
        }
        let response = consumer
            .offsets_for_times(request, self.timeout())
            .map_err(|error| self.unreachable(error))?;
        let epochs = crate::native::leader_epochs(&response);
        let mut offsets = BTreeMap::new();
        for element in response.elements() {
            let offset = match (element.error(), element.offset()) {
                (Ok(()), Offset::Offset(offset)) => Some(offset),
                _ => None,
            };
            let leader_epoch = epochs
                .get(&element.partition())
                .copied()
                .filter(|&epoch| epoch >= 0);
            offsets.insert(
                element.partition(),
                ListedOffset {
                    offset,
                    leader_epoch,
                },
            );
        }
        Ok(offsets)
    }

    /// Wraps an error from a request that needs a broker with a hint about `--brokers`.
    pub fn unreachable(&self, error: rdkafka::error::KafkaError) -> anyhow::Error {
        anyhow::anyhow!(
            "no answer from the cluster at {} within {} ms: {error} \
             (is a broker listening there? set --brokers/-b or STROM_BROKERS, \
             or raise --timeout-ms)",
            self.brokers,
            self.timeout_ms
        )
    }
}

/// One partition's answer to a ListOffsets lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ListedOffset {
    /// The offset found, if any.
    pub offset: Option<i64>,
    /// The leader epoch the broker returned with it (ListOffsets v4+), if any.
    pub leader_epoch: Option<i32>,
}

/// Splits a `key=value` argument at the first `=`; `what` names the flag for the error.
pub fn parse_key_value(argument: &str, what: &str) -> anyhow::Result<(String, String)> {
    match argument.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
        _ => bail!("{what} expects KEY=VALUE, got {argument:?}"),
    }
}

/// librdkafka's default `message.timeout.ms`.
const LIBRDKAFKA_MESSAGE_TIMEOUT_MS: u64 = 300_000;

/// How long to flush a producer built from `config`: long enough for every record to be
/// acknowledged or to time out by its `message.timeout.ms` (or the alias `delivery.timeout.ms`;
/// librdkafka's default when neither is set), plus a margin.
pub fn flush_timeout(config: &ClientConfig) -> Duration {
    let message_timeout_ms = ["message.timeout.ms", "delivery.timeout.ms"]
        .iter()
        .find_map(|key| config.get(key).and_then(|value| value.parse::<u64>().ok()))
        .unwrap_or(LIBRDKAFKA_MESSAGE_TIMEOUT_MS);
    Duration::from_millis(message_timeout_ms.saturating_add(10_000))
}

/// Parses every `key=value` argument of one flag, keeping their order.
pub fn parse_key_values(arguments: &[String], what: &str) -> anyhow::Result<Vec<(String, String)>> {
    arguments
        .iter()
        .map(|argument| parse_key_value(argument, what))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_value_splits_at_the_first_equals_sign() {
        assert_eq!(
            parse_key_value("a=b=c", "--set").unwrap(),
            ("a".to_owned(), "b=c".to_owned())
        );
        assert_eq!(
            parse_key_value("a=", "--set").unwrap(),
            ("a".to_owned(), String::new())
        );
    }

    #[test]
    fn key_value_without_a_key_is_refused_with_the_flag_name() {
        let error = parse_key_value("=x", "--header").unwrap_err().to_string();
        assert!(error.contains("--header"), "{error}");
        assert!(parse_key_value("novalue", "--set").is_err());
    }
}
