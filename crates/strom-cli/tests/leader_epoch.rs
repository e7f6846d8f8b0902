//! OffsetForLeaderEpoch against a real broker: where each epoch ends, the fencing answers, and
//! the answer librdkafka's consumers rely on after a leader change (KIP-320).

mod common;

use common::*;
use kafka_protocol::messages::offset_for_leader_epoch_request::{
    OffsetForLeaderPartition, OffsetForLeaderTopic,
};
use kafka_protocol::messages::{BrokerId, OffsetForLeaderEpochRequest, ProduceRequest, TopicName};
use kafka_protocol::protocol::StrBytes;

/// `(error, epoch, end offset)` for one partition.
fn end_of_epoch(
    raw: &mut RawClient,
    version: i16,
    topic: &str,
    partition: i32,
    current_leader_epoch: i32,
    leader_epoch: i32,
) -> (i16, i32, i64) {
    let mut p = OffsetForLeaderPartition::default();
    p.partition = partition;
    p.current_leader_epoch = current_leader_epoch;
    p.leader_epoch = leader_epoch;
    let mut t = OffsetForLeaderTopic::default();
    t.topic = TopicName(StrBytes::from_string(topic.to_string()));
    t.partitions = vec![p];
    let mut request = OffsetForLeaderEpochRequest::default();
    request.replica_id = BrokerId(-1);
    request.topics = vec![t];
    let response = raw.send(version, &request);
    let answer = &response.topics[0].partitions[0];
    assert_eq!(answer.partition, partition);
    (answer.error_code, answer.leader_epoch, answer.end_offset)
}

fn produce_three(raw: &mut RawClient, topic: &str) {
    let records: Vec<(Option<&[u8]>, &[u8])> = vec![(None, b"a"), (None, b"b"), (None, b"c")];
    let batch = record_batch(&records, -1, -1, -1, 1);
    let mut partition = kafka_protocol::messages::produce_request::PartitionProduceData::default();
    partition.index = 0;
    partition.records = Some(batch);
    let mut data = kafka_protocol::messages::produce_request::TopicProduceData::default();
    data.name = TopicName(StrBytes::from_string(topic.to_string()));
    data.partition_data = vec![partition];
    let mut request = ProduceRequest::default();
    request.acks = -1;
    request.timeout_ms = 5000;
    request.topic_data = vec![data];
    let response = raw.send(9, &request);
    assert_eq!(
        response.responses[0].partition_responses[0].error_code, 0,
        "produce"
    );
}

#[test]
fn end_offsets_per_epoch_and_fencing() {
    let broker = TestBroker::start(&[]);
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "ep", 1, &[]);
    let mut raw = RawClient::connect(&bootstrap);
    for version in 2..=4 {
        // An empty log knows no epoch yet.
        if version == 2 {
            assert_eq!(end_of_epoch(&mut raw, version, "ep", 0, -1, 0), (0, -1, -1));
        }
        produce_three(&mut raw, "ep");
        let end = 3 * (version as i64 - 1);
        // The single node leads with epoch 0: epoch 0 ends at the log end; an epoch above
        // every known one is undefined, as in Kafka's LeaderEpochFileCache.
        assert_eq!(end_of_epoch(&mut raw, version, "ep", 0, -1, 0), (0, 0, end));
        assert_eq!(end_of_epoch(&mut raw, version, "ep", 0, 0, 7), (0, -1, -1));
        // A caller ahead of the broker's epoch: UNKNOWN_LEADER_EPOCH (75).
        assert_eq!(end_of_epoch(&mut raw, version, "ep", 0, 1, 0), (75, -1, -1));
        // An unknown partition: UNKNOWN_TOPIC_OR_PARTITION (3).
        assert_eq!(end_of_epoch(&mut raw, version, "ep", 5, -1, 0).0, 3);
        assert_eq!(end_of_epoch(&mut raw, version, "nope", 0, -1, 0).0, 3);
    }
}
