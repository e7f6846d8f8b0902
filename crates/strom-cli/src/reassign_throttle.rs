//! `strom partition reassign --throttle RATE`: Kafka's replication throttles for a move, set and
//! removed with IncrementalAlterConfigs as `kafka-reassign-partitions.sh` does. On execute:
//! `leader.replication.throttled.rate` and `follower.replication.throttled.rate` (bytes/s) on
//! every broker holding or receiving a moved replica (each broker's own resource, sent to that
//! broker), and on each moved topic `leader.replication.throttled.replicas` (the replicas it
//! has now, which serve the copy) and `follower.replication.throttled.replicas` (the replicas
//! being added), as `partition:broker` lists. `--verify`, once every partition is moved, deletes
//! all four from every broker and the plan's topics. The brokers' fetchers honour them (the
//! dynamic broker configuration's part, not this module's).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::IncrementalAlterConfigsRequest;
use kafka_protocol::protocol::StrBytes;
use strom_broker::interbroker::peer::PeerConnection;
use strom_meta::replication::BrokerId;
use strom_meta::zk::ReassignmentEntry;

use crate::client::ClientOptions;
use crate::txn::wire::error_name;

const BROKER: i8 = 4;
const TOPIC: i8 = 2;
const SET: i8 = 0;
const DELETE: i8 = 1;
const RATE_KEYS: [&str; 2] = [
    "leader.replication.throttled.rate",
    "follower.replication.throttled.rate",
];
const REPLICA_KEYS: [&str; 2] = [
    "leader.replication.throttled.replicas",
    "follower.replication.throttled.replicas",
];

fn resource(kind: i8, name: String, configs: Vec<(&str, Option<String>)>) -> AlterConfigsResource {
    let mut resource = AlterConfigsResource::default();
    resource.resource_type = kind;
    resource.resource_name = StrBytes::from_string(name);
    resource.configs = configs
        .into_iter()
        .map(|(key, value)| {
            let mut config = AlterableConfig::default();
            config.name = StrBytes::from_string(key.to_string());
            config.config_operation = if value.is_some() { SET } else { DELETE };
            config.value = value.map(StrBytes::from_string);
            config
        })
        .collect();
    resource
}

/// Sends one IncrementalAlterConfigs (v1) to `address`; fails naming any refused resource.
async fn alter(
    options: &ClientOptions,
    address: &str,
    resources: Vec<AlterConfigsResource>,
) -> anyhow::Result<()> {
    let mut request = IncrementalAlterConfigsRequest::default();
    request.resources = resources;
    let timeout = options.timeout();
    let peer = PeerConnection::connect(address, "strom-cli", timeout)
        .await
        .with_context(|| format!("could not connect to {address}"))?;
    let answer = peer
        .call(&request, 1, timeout + Duration::from_secs(5))
        .await;
    peer.close();
    let answer =
        answer.with_context(|| format!("{address} did not answer IncrementalAlterConfigs"))?;
    for r in &answer.responses {
        if r.error_code != 0 {
            bail!(
                "setting the replication throttle on {} failed: {} {}",
                r.resource_name,
                error_name(r.error_code),
                r.error_message
                    .as_ref()
                    .map(|m| m.to_string())
                    .unwrap_or_default()
            );
        }
    }
    Ok(())
}

/// Each broker's address, from Metadata.
async fn addresses(
    options: &ClientOptions,
) -> anyhow::Result<(BTreeMap<BrokerId, String>, BrokerId)> {
    let metadata = options.raw_metadata_async(Some(&[])).await?;
    let brokers = metadata
        .brokers
        .iter()
        .map(|b| (b.node_id.0, format!("{}:{}", b.host, b.port)))
        .collect();
    Ok((brokers, metadata.controller_id.0))
}

/// Sets the throttles for moving `current` to `plan` at `rate` bytes/s.
pub async fn set(
    options: &ClientOptions,
    rate: u64,
    current: &[ReassignmentEntry],
    plan: &[ReassignmentEntry],
) -> anyhow::Result<()> {
    let (addresses, controller) = addresses(options).await?;
    let mut involved = BTreeSet::new();
    let mut leaders: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    let mut followers: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for ((tp, now), (_, target)) in current.iter().zip(plan) {
        involved.extend(now.iter().chain(target).copied());
        for b in now {
            leaders
                .entry(&tp.topic)
                .or_default()
                .push(format!("{}:{b}", tp.partition));
        }
        for b in target.iter().filter(|b| !now.contains(b)) {
            followers
                .entry(&tp.topic)
                .or_default()
                .push(format!("{}:{b}", tp.partition));
        }
    }
    for broker in involved {
        let address = addresses
            .get(&broker)
            .ok_or_else(|| anyhow!("broker {broker} is not in the cluster's metadata"))?;
        let configs = RATE_KEYS
            .iter()
            .map(|k| (*k, Some(rate.to_string())))
            .collect();
        alter(
            options,
            address,
            vec![resource(BROKER, broker.to_string(), configs)],
        )
        .await?;
    }
    let topics: BTreeSet<&str> = leaders.keys().chain(followers.keys()).copied().collect();
    let resources = topics
        .into_iter()
        .map(|topic| {
            let list = |m: &BTreeMap<&str, Vec<String>>| m.get(topic).map(|l| l.join(","));
            let configs = vec![
                (REPLICA_KEYS[0], Some(list(&leaders).unwrap_or_default())),
                (REPLICA_KEYS[1], Some(list(&followers).unwrap_or_default())),
            ];
            resource(TOPIC, topic.to_string(), configs)
        })
        .collect();
    let address = addresses
        .get(&controller)
        .ok_or_else(|| anyhow!("the cluster names no controller now"))?;
    alter(options, address, resources).await
}

/// Removes the throttles from every broker and from the plan's topics.
pub async fn remove(options: &ClientOptions, plan: &[ReassignmentEntry]) -> anyhow::Result<()> {
    let (addresses, controller) = addresses(options).await?;
    for (broker, address) in &addresses {
        let configs = RATE_KEYS.iter().map(|k| (*k, None)).collect();
        alter(
            options,
            address,
            vec![resource(BROKER, broker.to_string(), configs)],
        )
        .await?;
    }
    let topics: BTreeSet<&str> = plan.iter().map(|(tp, _)| tp.topic.as_str()).collect();
    let resources = topics
        .into_iter()
        .map(|t| {
            resource(
                TOPIC,
                t.to_string(),
                REPLICA_KEYS.iter().map(|k| (*k, None)).collect(),
            )
        })
        .collect();
    let address = addresses
        .get(&controller)
        .ok_or_else(|| anyhow!("the cluster names no controller now"))?;
    alter(options, address, resources).await
}
