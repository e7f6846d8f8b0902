//! The two pieces of librdkafka state that the `rdkafka` crate does not wrap, read through its
//! raw bindings: the leader epoch that ListOffsets returns per partition, and the controller id
//! from cluster metadata.
//!
//! Every `unsafe` block in the CLI lives here, each with the reason it is sound.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::bindings;
use rdkafka::client::{Client, ClientContext};
use rdkafka::TopicPartitionList;

/// The leader epoch librdkafka stored on each element of `list` (from a ListOffsets v4+
/// response), by partition; `-1` where the broker sent none.
pub fn leader_epochs(list: &TopicPartitionList) -> BTreeMap<i32, i32> {
    let mut epochs = BTreeMap::new();
    // SAFETY: `list.ptr()` is a valid, non-null `rd_kafka_topic_partition_list_t` owned by
    // `list`, which we borrow for the whole block; `elems` holds `cnt` initialised elements,
    // and `rd_kafka_topic_partition_get_leader_epoch` only reads the element it is given.
    unsafe {
        let native = &*list.ptr();
        let count = usize::try_from(native.cnt).unwrap_or(0);
        for index in 0..count {
            let element = native.elems.add(index);
            let epoch = bindings::rd_kafka_topic_partition_get_leader_epoch(element);
            epochs.insert((*element).partition, epoch);
        }
    }
    epochs
}

/// The id of the cluster's controller as librdkafka learnt it from metadata, waiting up to
/// `timeout` for a metadata response; `None` when unknown.
pub fn controller_id<C: ClientContext>(client: &Client<C>, timeout: Duration) -> Option<i32> {
    let timeout_ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
    // SAFETY: `client.native_ptr()` is the live `rd_kafka_t` handle owned by `client`, which
    // outlives this call; `rd_kafka_controllerid` is thread-safe and only reads metadata.
    let id = unsafe { bindings::rd_kafka_controllerid(client.native_ptr(), timeout_ms) };
    (id >= 0).then_some(id)
}
