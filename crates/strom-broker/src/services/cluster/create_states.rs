//! The controller's partition-state creations, performed together: a new topic's step asks for
//! one [`Effect::WriteState`] create per partition, and performing them one by one costs a
//! ZooKeeper round trip and transaction-log sync each, then (each answer being its own step)
//! one LeaderAndIsr and one UpdateMetadata per partition and broker. Here the creates at the
//! front of the effect queue go in `multi`s of [`PARTITION_STATES_PER_MULTI`] partitions and
//! are answered with one [`Input::StatesWritten`], as Kafka's controller batches a new topic.
//! At 10,000 partitions on three brokers that is 20 ZooKeeper requests and one request per
//! broker and kind, where it was 10,000 and 60,000.
//!
//! It decides nothing: which states to create is the [`strom_meta::controller::Controller`]'s.

use std::collections::{BTreeMap, VecDeque};

use strom_meta::controller::{Effect, Input};
use strom_meta::replication::{LeaderAndIsr, TopicPartition};
use strom_meta::zk::{ControllerFence, ZkError, ZkStore, PARTITION_STATES_PER_MULTI};

/// Performs `first` (a create: `WriteState` without an expected version) and every create
/// behind it at the front of `queue` with the same `/controller_epoch` version; returns the
/// answers to step, in order.
pub(super) async fn perform(
    store: &ZkStore,
    controller_epoch: i32,
    first: Effect,
    queue: &mut VecDeque<Effect>,
) -> Vec<Input> {
    let Some((partition, state, epoch_version)) = as_create(first) else {
        unreachable!("the caller passes a create");
    };
    let mut creates: BTreeMap<String, BTreeMap<i32, LeaderAndIsr>> = BTreeMap::new();
    creates
        .entry(partition.topic)
        .or_default()
        .insert(partition.partition, state);
    while is_create(queue.front(), epoch_version) {
        let (partition, state, _) =
            as_create(queue.pop_front().expect("front exists")).expect("is_create checked it");
        creates
            .entry(partition.topic)
            .or_default()
            .insert(partition.partition, state);
    }
    let fence = ControllerFence {
        epoch: controller_epoch,
        epoch_zk_version: epoch_version,
    };
    let mut written = Vec::new();
    let mut conflicts = Vec::new();
    for (topic, states) in creates {
        let states: Vec<(i32, LeaderAndIsr)> = states.into_iter().collect();
        for chunk in states.chunks(PARTITION_STATES_PER_MULTI) {
            let chunk: BTreeMap<i32, LeaderAndIsr> = chunk.iter().cloned().collect();
            match store.create_partition_states(&topic, &chunk, &fence).await {
                Ok(versions) => written.extend(chunk.keys().map(|p| {
                    let version = versions.get(p).copied().unwrap_or(0);
                    (TopicPartition::new(topic.clone(), *p), version)
                })),
                Err(ZkError::ControllerMoved { .. }) => {
                    return vec![Input::ControllerEpochMismatch]
                }
                // One existing znode fails the whole `multi`: create one by one to learn which.
                Err(_) => {
                    for (p, state) in chunk {
                        let one = BTreeMap::from([(p, state)]);
                        let partition = TopicPartition::new(topic.clone(), p);
                        match store.create_partition_states(&topic, &one, &fence).await {
                            Ok(versions) => {
                                written.push((partition, versions.get(&p).copied().unwrap_or(0)))
                            }
                            Err(ZkError::ControllerMoved { .. }) => {
                                return vec![Input::ControllerEpochMismatch]
                            }
                            Err(error) => {
                                tracing::debug!(%error, topic, partition = p,
                                    "partition state write conflicted");
                                conflicts.push(Input::StateWriteConflict { partition });
                            }
                        }
                    }
                }
            }
        }
    }
    let mut inputs = Vec::with_capacity(conflicts.len() + 1);
    if !written.is_empty() {
        inputs.push(Input::StatesWritten { written });
    }
    inputs.extend(conflicts);
    inputs
}

/// Whether `effect` is a create at this `/controller_epoch` version.
pub(super) fn is_create(effect: Option<&Effect>, epoch_version: i32) -> bool {
    matches!(effect, Some(Effect::WriteState {
        expected_version: None,
        controller_epoch_version,
        ..
    }) if *controller_epoch_version == epoch_version)
}

fn as_create(effect: Effect) -> Option<(TopicPartition, LeaderAndIsr, i32)> {
    match effect {
        Effect::WriteState {
            partition,
            expected_version: None,
            state,
            controller_epoch_version,
        } => Some((partition, state, controller_epoch_version)),
        _ => None,
    }
}
