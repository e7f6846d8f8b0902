//! The read side of transactions through the handlers, against a real broker's services (a
//! temporary data directory, no listener), with markers written by
//! `Partition::append_txn_marker` as WriteTxnMarkers will: read_committed Fetch bounded by the
//! last stable offset with its aborted transactions (decoded by kafka-protocol at several
//! versions), a parked read_committed fetch woken by a marker, ListOffsets at both isolation
//! levels, and DescribeProducers.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::{
    ApiKey, BrokerId, DescribeProducersRequest, FetchRequest, FetchResponse, ListOffsetsRequest,
    ResponseHeader, TopicName,
};
use kafka_protocol::protocol::Decodable;
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use strom_log::control::TxnMarker;

use crate::broker::Broker;
use crate::protocol::frame::Reply;
use crate::protocol::request::RequestContext;
use crate::services::replica::partition::Partition;
use crate::services::Services;

fn open(dir: &std::path::Path) -> Broker {
    let sets = [format!("log.dirs={}", dir.display())];
    let config = strom_meta::config::BrokerConfig::load(None, &sets).expect("test config is valid");
    Broker::open(config, Vec::new()).expect("broker opens")
}

fn ctx(api: ApiKey, version: i16) -> RequestContext {
    RequestContext {
        api,
        version,
        correlation_id: 77,
        client_id: "txn-read-test".into(),
        client_host: Arc::from(""),
    }
}

/// A batch of `count` records with timestamps from 1000; transactional (and idempotent) for
/// `producer` `(id, base sequence)`.
fn batch(count: usize, producer: Option<(i64, i32)>) -> Bytes {
    batch_at(count, producer, 1_000)
}

/// [`batch`] with timestamps from `timestamp`.
fn batch_at(count: usize, producer: Option<(i64, i32)>, timestamp: i64) -> Bytes {
    let records: Vec<Record> = (0..count)
        .map(|i| Record {
            transactional: producer.is_some(),
            control: false,
            partition_leader_epoch: -1,
            producer_id: producer.map_or(-1, |p| p.0),
            producer_epoch: if producer.is_some() { 0 } else { -1 },
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: producer.map_or(-1, |p| p.1 + i as i32),
            timestamp: timestamp + i as i64,
            key: None,
            value: Some(Bytes::from(vec![b'v'; 20])),
            headers: Default::default(),
            delete_horizon: false,
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &records,
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .unwrap();
    buf.freeze()
}

/// Appends and waits until the high watermark covers it (durable mode, the default).
async fn append(partition: &Arc<Partition>, records: Bytes) -> i64 {
    let info = partition.append(records, 0).expect("append");
    partition
        .wait_high_watermark(info.last_offset + 1)
        .await
        .unwrap();
    info.first_offset
}

async fn end_txn(partition: &Arc<Partition>, producer_id: i64, commit: bool, wait: bool) -> i64 {
    let marker = TxnMarker {
        producer_id,
        producer_epoch: 0,
        coordinator_epoch: 0,
        commit,
    };
    let info = partition.append_txn_marker(&marker, 0).expect("marker");
    if wait {
        partition
            .wait_high_watermark(info.last_offset + 1)
            .await
            .unwrap();
    }
    info.first_offset
}

fn fetch_request(
    offset: i64,
    read_committed: bool,
    min_bytes: i32,
    max_wait_ms: i32,
) -> FetchRequest {
    let mut p = FetchPartition::default();
    p.fetch_offset = offset;
    p.partition_max_bytes = 1 << 20;
    p.current_leader_epoch = -1;
    let mut t = FetchTopic::default();
    t.topic = TopicName("t".to_string().into());
    t.partitions = vec![p];
    let mut request = FetchRequest::default();
    request.replica_id = BrokerId(-1);
    request.max_bytes = 50 << 20;
    request.min_bytes = min_bytes;
    request.max_wait_ms = max_wait_ms;
    request.session_epoch = -1;
    request.isolation_level = i8::from(read_committed);
    request.topics = vec![t];
    request
}

/// Runs a Fetch through the handler (naming the topic by id from v13) and decodes the response
/// as a client would.
async fn fetch(services: &Arc<Services>, version: i16, mut request: FetchRequest) -> FetchResponse {
    if version >= 13 {
        request.topics[0].topic_id = services.metadata.cluster().topics["t"].topic_id;
    }
    let Reply::LaterFrame(task) =
        super::fetch::handle(services, ctx(ApiKey::Fetch, version), request)
    else {
        panic!("a fetch answers with a frame");
    };
    let frame = task.await.unwrap();
    let mut body = frame.to_bytes().unwrap().slice(4..);
    let header =
        ResponseHeader::decode(&mut body, ApiKey::Fetch.response_header_version(version)).unwrap();
    assert_eq!(header.correlation_id, 77);
    let response = FetchResponse::decode(&mut body, version).unwrap();
    assert!(body.is_empty(), "v{version}: bytes left over");
    response
}

/// Base offsets of the whole batches in a partition's records.
fn batch_offsets(response: &FetchResponse) -> Vec<i64> {
    let Some(mut records) = response.responses[0].partitions[0].records.clone() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    while records.len() >= 12 {
        let base = i64::from_be_bytes(records[..8].try_into().unwrap());
        let len = i32::from_be_bytes(records[8..12].try_into().unwrap()) as usize;
        if records.len() < 12 + len {
            break;
        }
        out.push(base);
        records = records.slice(12 + len..);
    }
    out
}

/// (high watermark, last stable offset, aborted transactions) of the one partition.
fn offsets(response: &FetchResponse) -> (i64, i64, Option<Vec<(i64, i64)>>) {
    let p = &response.responses[0].partitions[0];
    assert_eq!(p.error_code, 0);
    let aborted = p.aborted_transactions.as_ref().map(|list| {
        list.iter()
            .map(|a| (a.producer_id.0, a.first_offset))
            .collect()
    });
    (p.high_watermark, p.last_stable_offset, aborted)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn read_committed_fetch_stops_at_the_lso_and_lists_the_aborts_it_overlaps() {
    let dir = tempfile::tempdir().unwrap();
    let broker = open(dir.path());
    let services = broker.services.clone();
    services
        .topics
        .create_topic("t", 1, 1, Default::default(), false)
        .expect("created");
    let partition = services.replicas.partition("t", 0).expect("hosted");
    runtime().block_on(async {
        assert_eq!(append(&partition, batch(1, None)).await, 0);
        assert_eq!(append(&partition, batch(2, Some((1000, 0)))).await, 1); // 1-2
        assert_eq!(append(&partition, batch(1, Some((1001, 0)))).await, 3);
        assert_eq!(append(&partition, batch(1, None)).await, 4);
        for version in [4, 11, 12, 16] {
            let all = fetch(&services, version, fetch_request(0, false, 0, 0)).await;
            assert_eq!(batch_offsets(&all), vec![0, 1, 3, 4], "v{version}");
            assert_eq!(
                offsets(&all),
                (5, 1, None),
                "v{version}: null for read_uncommitted"
            );
            let committed = fetch(&services, version, fetch_request(0, true, 0, 0)).await;
            assert_eq!(batch_offsets(&committed), vec![0], "v{version}");
            assert_eq!(
                offsets(&committed),
                (5, 1, Some(vec![])),
                "v{version}: empty, not null"
            );
        }
        // Producer 1000 aborts: the LSO moves to producer 1001's open transaction.
        assert_eq!(end_txn(&partition, 1000, false, true).await, 5);
        let committed = fetch(&services, 12, fetch_request(0, true, 0, 0)).await;
        assert_eq!(batch_offsets(&committed), vec![0, 1]);
        assert_eq!(offsets(&committed), (6, 3, Some(vec![(1000, 1)])));
        // Producer 1001 commits: everything is stable.
        assert_eq!(end_txn(&partition, 1001, true, true).await, 6);
        let committed = fetch(&services, 12, fetch_request(0, true, 0, 0)).await;
        assert_eq!(batch_offsets(&committed), vec![0, 1, 3, 4, 5, 6]);
        assert_eq!(offsets(&committed), (7, 7, Some(vec![(1000, 1)])));
        // From past the ABORT marker nothing is reported; before the aborted transaction's
        // first record neither, when the read ends there.
        let after = fetch(&services, 12, fetch_request(6, true, 0, 0)).await;
        assert_eq!(offsets(&after), (7, 7, Some(vec![])));
        let mut short = fetch_request(0, true, 0, 0);
        short.topics[0].partitions[0].partition_max_bytes = 1;
        let short = fetch(&services, 12, short).await;
        assert_eq!(batch_offsets(&short), vec![0], "one batch: min_one_message");
        assert_eq!(offsets(&short).2, Some(vec![]));

        // ListOffsets LATEST: the high watermark, or for read_committed the LSO.
        assert_eq!(
            append(&partition, batch_at(1, Some((1002, 0)), 5_000)).await,
            7
        );
        assert_eq!(append(&partition, batch(1, None)).await, 8);
        let latest = |isolation_level: i8, timestamp: i64| {
            let mut p = ListOffsetsPartition::default();
            p.partition_index = 0;
            p.timestamp = timestamp;
            p.current_leader_epoch = -1;
            let mut t = ListOffsetsTopic::default();
            t.name = TopicName("t".to_string().into());
            t.partitions = vec![p];
            let mut request = ListOffsetsRequest::default();
            request.replica_id = BrokerId(-1);
            request.isolation_level = isolation_level;
            request.topics = vec![t];
            let response =
                super::list_offsets::handle(&services, &ctx(ApiKey::ListOffsets, 7), request);
            let p = &response.topics[0].partitions[0];
            assert_eq!(p.error_code, 0);
            p.offset
        };
        assert_eq!(latest(0, -1), 9, "read_uncommitted: the high watermark");
        assert_eq!(latest(1, -1), 7, "read_committed: the LSO");
        // Timestamp lookups are bounded the same way: offset 7's batch is not stable.
        assert_eq!(latest(0, 1_000), 0);
        assert_eq!(latest(1, 1_000), 0);
        assert_eq!(latest(0, 5_000), 7);
        assert_eq!(latest(1, 5_000), -1, "offset 7 is above the LSO");
        assert_eq!(latest(0, -3), 7, "max timestamp");
        assert_eq!(latest(1, -3), -1, "max timestamp above the LSO");

        // DescribeProducers: the three producers; 1002's transaction is open at 7.
        let request: DescribeProducersRequest = describe_request("t", &[0, 1, -1]);
        let response = super::producers::describe_producers(&services, request);
        let partitions = &response.topics[0].partitions;
        assert_eq!(partitions[0].error_code, 0);
        let producers: Vec<(i64, i32, i32, i64, i32, i64)> = partitions[0]
            .active_producers
            .iter()
            .map(|p| {
                (
                    p.producer_id.0,
                    p.producer_epoch,
                    p.last_sequence,
                    p.last_timestamp,
                    p.coordinator_epoch,
                    p.current_txn_start_offset,
                )
            })
            .collect();
        assert_eq!(
            producers,
            vec![
                (1000, 0, 1, 1_001, 0, -1),
                (1001, 0, 0, 1_000, 0, -1),
                (1002, 0, 0, 5_000, -1, 7),
            ]
        );
        let unknown = kafka_protocol::error::ResponseError::UnknownTopicOrPartition.code();
        assert_eq!(partitions[1].error_code, unknown, "no partition 1");
        assert_eq!(partitions[2].error_code, unknown, "no partition -1");
        let response =
            super::producers::describe_producers(&services, describe_request("missing", &[0]));
        assert_eq!(response.topics[0].partitions[0].error_code, unknown);
    });
}

/// A DescribeProducers request for `partitions` of `topic`.
fn describe_request(topic: &str, partitions: &[i32]) -> DescribeProducersRequest {
    let mut t = kafka_protocol::messages::describe_producers_request::TopicRequest::default();
    t.name = TopicName(topic.to_string().into());
    t.partition_indexes = partitions.to_vec();
    let mut request = DescribeProducersRequest::default();
    request.topics = vec![t];
    request
}

/// A read_committed fetch parked on an open transaction wakes when the marker is appended,
/// before the high watermark moves: in durable mode the marker is not synced yet, but the
/// transaction's records below the high watermark became stable.
#[test]
fn a_parked_read_committed_fetch_wakes_on_the_marker() {
    let dir = tempfile::tempdir().unwrap();
    let broker = open(dir.path());
    let services = broker.services.clone();
    services
        .topics
        .create_topic("t", 1, 1, Default::default(), false)
        .expect("created");
    let partition = services.replicas.partition("t", 0).expect("hosted");
    runtime().block_on(async {
        append(&partition, batch(3, Some((2000, 0)))).await; // 0-2, open
        let parked = tokio::spawn({
            let services = services.clone();
            async move { fetch(&services, 12, fetch_request(0, true, 1, 20_000)).await }
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!parked.is_finished(), "nothing is stable yet");
        let started = std::time::Instant::now();
        end_txn(&partition, 2000, true, false).await;
        let (high_watermark, _, log_end) = partition.offsets();
        assert_eq!(
            (high_watermark, log_end),
            (3, 4),
            "the marker is not synced yet"
        );
        let response = tokio::time::timeout(Duration::from_secs(5), parked)
            .await
            .expect("woken by the marker, not the 20 s max wait")
            .unwrap();
        assert!(started.elapsed() < Duration::from_secs(5));
        assert_eq!(batch_offsets(&response), vec![0]);
        let (_, last_stable_offset, aborted) = offsets(&response);
        assert!(last_stable_offset >= 3, "{last_stable_offset}");
        assert_eq!(aborted, Some(vec![]));
    });
}
