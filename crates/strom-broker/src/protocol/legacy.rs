//! Decoding Produce v0–v2 and Fetch v0–v3, which kafka-protocol 0.18 lacks (Kafka 4 removed
//! them): their bodies are decoded with the crate's 0.14 release (`kafka_protocol_3x`, Kafka
//! 3.9's specs) and turned into the 0.18 request types the handlers take. What the handlers do
//! with such requests' records is [`crate::handlers::legacy`].

use bytes::Bytes;
use kafka_protocol::messages::{
    fetch_request, produce_request, BrokerId, FetchRequest, ProduceRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol_3x::protocol::Decodable as _;

/// The lowest Produce version kafka-protocol 0.18 decodes; below it is this module's.
pub const PRODUCE_MODERN_MIN: i16 = 3;
/// The lowest Fetch version kafka-protocol 0.18 decodes; below it is this module's.
pub const FETCH_MODERN_MIN: i16 = 4;
/// Decodes a Produce v0–v2 body into the request type the handler takes.
pub fn decode_produce(body: &mut Bytes, version: i16) -> Result<ProduceRequest, String> {
    let old = kafka_protocol_3x::messages::ProduceRequest::decode(body, version)
        .map_err(|e| format!("{e:#}"))?;
    let mut request = ProduceRequest::default();
    request.acks = old.acks;
    request.timeout_ms = old.timeout_ms;
    for topic in old.topic_data {
        let mut data = produce_request::TopicProduceData::default();
        data.name = TopicName(StrBytes::from_string(topic.name.0.to_string()));
        for partition in topic.partition_data {
            let mut p = produce_request::PartitionProduceData::default();
            p.index = partition.index;
            p.records = partition.records;
            data.partition_data.push(p);
        }
        request.topic_data.push(data);
    }
    Ok(request)
}

/// Decodes a Fetch v0–v3 body into the request type the handler takes (read uncommitted, no
/// session, no leader epoch: what these versions mean).
pub fn decode_fetch(body: &mut Bytes, version: i16) -> Result<FetchRequest, String> {
    let old = kafka_protocol_3x::messages::FetchRequest::decode(body, version)
        .map_err(|e| format!("{e:#}"))?;
    let mut request = FetchRequest::default();
    request.replica_id = BrokerId(old.replica_id.0);
    request.max_wait_ms = old.max_wait_ms;
    request.min_bytes = old.min_bytes;
    // Before v3 there is no response limit (Kafka uses Int.MaxValue).
    request.max_bytes = if version >= 3 {
        old.max_bytes
    } else {
        i32::MAX
    };
    request.isolation_level = 0;
    request.session_id = 0;
    request.session_epoch = -1;
    for topic in old.topics {
        let mut t = fetch_request::FetchTopic::default();
        t.topic = TopicName(StrBytes::from_string(topic.topic.0.to_string()));
        for partition in topic.partitions {
            let mut p = fetch_request::FetchPartition::default();
            p.partition = partition.partition;
            p.current_leader_epoch = -1;
            p.fetch_offset = partition.fetch_offset;
            p.last_fetched_epoch = -1;
            p.log_start_offset = -1;
            p.partition_max_bytes = partition.partition_max_bytes;
            t.partitions.push(p);
        }
        request.topics.push(t);
    }
    Ok(request)
}
