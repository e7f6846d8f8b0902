//! The request versions Kafka 4 removed (KIP-896) and Kafka 3.9 still accepted, sent with
//! Kafka 3.9's message types (`kafka-protocol-3x`): every advertised one answers, and ListOffsets
//! v0, OffsetCommit v0/v1 and OffsetFetch v0 keep their old semantics.

use super::*;
use kafka_protocol_3x::messages as k3;

fn topic3(name: &str) -> k3::TopicName {
    k3::TopicName(name.to_string().into())
}

/// ListOffsets v0 for one partition: (error, old_style_offsets).
fn list_offsets_v0(
    raw: &mut RawClient,
    topic: &str,
    partition: i32,
    timestamp: i64,
    max: i32,
) -> (i16, Vec<i64>) {
    let mut p = k3::list_offsets_request::ListOffsetsPartition::default();
    p.partition_index = partition;
    p.timestamp = timestamp;
    p.max_num_offsets = max;
    let mut t = k3::list_offsets_request::ListOffsetsTopic::default();
    t.name = topic3(topic);
    t.partitions = vec![p];
    let mut request = k3::ListOffsetsRequest::default();
    request.replica_id = k3::BrokerId(-1);
    request.topics = vec![t];
    let response = raw.send3(0, &request);
    let p = &response.topics[0].partitions[0];
    assert_eq!(p.partition_index, partition);
    (p.error_code, p.old_style_offsets.clone())
}

/// OffsetCommit v0/v1 of `(partition, offset, commit timestamp)` for one topic: the error codes.
pub(crate) fn offset_commit_old(
    raw: &mut RawClient,
    version: i16,
    group: &str,
    generation_and_member: (i32, &str),
    topic: &str,
    partitions: &[(i32, i64, i64)],
) -> Vec<i16> {
    let mut t = k3::offset_commit_request::OffsetCommitRequestTopic::default();
    t.name = topic3(topic);
    for &(partition, offset, timestamp) in partitions {
        let mut p = k3::offset_commit_request::OffsetCommitRequestPartition::default();
        p.partition_index = partition;
        p.committed_offset = offset;
        p.committed_metadata = Some(format!("meta-{offset}").into());
        if version == 1 {
            p.commit_timestamp = timestamp;
        }
        t.partitions.push(p);
    }
    let mut request = k3::OffsetCommitRequest::default();
    request.group_id = k3::GroupId(group.to_string().into());
    if version == 1 {
        request.generation_id_or_member_epoch = generation_and_member.0;
        request.member_id = generation_and_member.1.to_string().into();
    }
    request.topics = vec![t];
    let response = raw.send3(version, &request);
    response.topics[0]
        .partitions
        .iter()
        .map(|p| p.error_code)
        .collect()
}

/// OffsetFetch v0 of `partitions`: (partition, offset, metadata, error) each.
pub(crate) fn offset_fetch_v0(
    raw: &mut RawClient,
    group: &str,
    topic: &str,
    partitions: &[i32],
) -> Vec<(i32, i64, String, i16)> {
    let mut t = k3::offset_fetch_request::OffsetFetchRequestTopic::default();
    t.name = topic3(topic);
    t.partition_indexes = partitions.to_vec();
    let mut request = k3::OffsetFetchRequest::default();
    request.group_id = k3::GroupId(group.to_string().into());
    request.topics = Some(vec![t]);
    let response = raw.send3(0, &request);
    response.topics[0]
        .partitions
        .iter()
        .map(|p| {
            (
                p.partition_index,
                p.committed_offset,
                p.metadata.as_deref().unwrap_or("").to_string(),
                p.error_code,
            )
        })
        .collect()
}

/// Every version Strom advertises below kafka-protocol 0.18's floor answers, with Kafka 3.9's
/// message types on the wire. The list of such APIs is checked against SUPPORTED, so a newly
/// advertised old version without a case here fails this test. (Produce v0–2 and Fetch v0–3,
/// with their message formats, have their own tests.)
#[test]
fn removed_versions_answer_at_every_advertised_version() {
    let covered = [
        ApiKey::ListOffsets,
        ApiKey::OffsetCommit,
        ApiKey::OffsetFetch,
        ApiKey::CreateTopics,
        ApiKey::DeleteTopics,
        ApiKey::DescribeConfigs,
        ApiKey::DescribeLogDirs,
    ];
    for &(api, min, _) in strom_broker::protocol::request::SUPPORTED {
        if min < api.valid_versions().min && !matches!(api, ApiKey::Produce | ApiKey::Fetch) {
            assert!(covered.contains(&api), "{api:?} v{min} has no case here");
        }
    }
    let old = |api: ApiKey| {
        let (min, _) = strom_broker::protocol::request::supported_range(api).unwrap();
        min..api.valid_versions().min
    };
    // Kafka 3.9's ranges, from its own message specs: exactly what is advertised below 0.18's.
    assert_eq!(old(ApiKey::ListOffsets), 0..1);
    assert_eq!(old(ApiKey::OffsetCommit), 0..2);
    assert_eq!(old(ApiKey::OffsetFetch), 0..1);
    assert_eq!(old(ApiKey::CreateTopics), 0..2);
    assert_eq!(old(ApiKey::DeleteTopics), 0..1);
    assert_eq!(old(ApiKey::DescribeConfigs), 0..1);
    assert_eq!(old(ApiKey::DescribeLogDirs), 0..1);

    let broker = TestBroker::start(&["group.initial.rebalance.delay.ms=0"]);
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "old", 2, &[("retention.ms", "86400000")]);
    let mut raw = RawClient::connect(&bootstrap);
    for _ in 0..3 {
        let batch = record_batch(&[(None, b"x")], -1, -1, -1, 1);
        assert_eq!(produce(&mut raw, "old", batch).error_code, 0);
    }
    for v in old(ApiKey::ListOffsets) {
        assert_eq!(
            list_offsets_v0(&mut raw, "old", 0, -1, 1),
            (0, vec![3]),
            "ListOffsets v{v}"
        );
    }
    for v in old(ApiKey::OffsetCommit) {
        let codes = offset_commit_old(
            &mut raw,
            v,
            "g-old",
            (-1, ""),
            "old",
            &[(1, 10 + v as i64, -1)],
        );
        assert_eq!(codes, vec![0], "OffsetCommit v{v}");
        assert_eq!(
            offset_fetch_v0(&mut raw, "g-old", "old", &[1]),
            vec![(1, 10 + v as i64, format!("meta-{}", 10 + v), 0)],
            "OffsetCommit v{v} read back with OffsetFetch v0"
        );
    }
    for v in old(ApiKey::CreateTopics) {
        let mut t = k3::create_topics_request::CreatableTopic::default();
        t.name = topic3(&format!("old-created-v{v}"));
        t.num_partitions = 1;
        t.replication_factor = 1;
        let mut request = k3::CreateTopicsRequest::default();
        request.topics = vec![t.clone()];
        request.timeout_ms = 5000;
        let response = raw.send3(v, &request);
        assert_eq!(response.topics[0].error_code, 0, "CreateTopics v{v}");
        // Again: TOPIC_ALREADY_EXISTS, with a message from v1.
        let response = raw.send3(v, &request);
        assert_eq!(response.topics[0].error_code, 36, "CreateTopics v{v}");
        if v >= 1 {
            let message = response.topics[0].error_message.as_deref().unwrap_or("");
            assert!(message.contains("exists"), "CreateTopics v{v}: {message}");
        }
        if v == 1 {
            // validate_only (v1+) creates nothing.
            let mut t = t.clone();
            t.name = topic3("old-validate-only");
            let mut request = request.clone();
            request.topics = vec![t];
            request.validate_only = true;
            assert_eq!(raw.send3(1, &request).topics[0].error_code, 0);
        }
    }
    let mut metadata = km::MetadataRequest::default();
    metadata.topics = None;
    let names: Vec<String> = raw
        .send(1, &metadata)
        .topics
        .iter()
        .filter_map(|t| t.name.as_ref().map(|n| n.0.to_string()))
        .collect();
    assert!(names.contains(&"old-created-v0".to_string()), "{names:?}");
    assert!(
        !names.contains(&"old-validate-only".to_string()),
        "{names:?}"
    );
    for v in old(ApiKey::DeleteTopics) {
        let mut request = k3::DeleteTopicsRequest::default();
        request.topic_names = vec![topic3("old-created-v0"), topic3("no-such-topic")];
        request.timeout_ms = 5000;
        let response = raw.send3(v, &request);
        let codes: Vec<(String, i16)> = response
            .responses
            .iter()
            .map(|r| (r.name.as_ref().unwrap().0.to_string(), r.error_code))
            .collect();
        assert_eq!(
            codes,
            vec![
                ("old-created-v0".to_string(), 0),
                ("no-such-topic".to_string(), 3)
            ],
            "DeleteTopics v{v}"
        );
    }
    for v in old(ApiKey::DescribeLogDirs) {
        // Every replica (a null topic list): the topic's two partitions, each holding bytes.
        let mut request = k3::DescribeLogDirsRequest::default();
        request.topics = None;
        let response = raw.send3(v, &request);
        assert_eq!(
            response.results.len(),
            1,
            "DescribeLogDirs v{v}: one log dir"
        );
        let dir = &response.results[0];
        assert_eq!(dir.error_code, 0, "DescribeLogDirs v{v}");
        let mut sizes: Vec<(i32, bool)> = dir
            .topics
            .iter()
            .filter(|t| t.name.as_str() == "old")
            .flat_map(|t| &t.partitions)
            .map(|p| (p.partition_index, p.partition_size > 0))
            .collect();
        sizes.sort();
        // The three batches went to partition 0; partition 1 is empty.
        assert_eq!(sizes, vec![(0, true), (1, false)], "DescribeLogDirs v{v}");
    }
    for v in old(ApiKey::DescribeConfigs) {
        let mut r = k3::describe_configs_request::DescribeConfigsResource::default();
        r.resource_type = 2;
        r.resource_name = "old".to_string().into();
        r.configuration_keys = Some(vec![
            "retention.ms".to_string().into(),
            "segment.bytes".to_string().into(),
        ]);
        let mut request = k3::DescribeConfigsRequest::default();
        request.resources = vec![r];
        let response = raw.send3(v, &request);
        assert_eq!(response.results[0].error_code, 0, "DescribeConfigs v{v}");
        let configs: Vec<(String, Option<String>, bool)> = response.results[0]
            .configs
            .iter()
            .map(|c| {
                (
                    c.name.to_string(),
                    c.value.as_ref().map(|v| v.to_string()),
                    c.is_default,
                )
            })
            .collect();
        assert_eq!(
            configs,
            vec![
                (
                    "retention.ms".to_string(),
                    Some("86400000".to_string()),
                    false
                ),
                (
                    "segment.bytes".to_string(),
                    Some("1073741824".to_string()),
                    true
                ),
            ],
            "DescribeConfigs v{v}"
        );
    }
}

/// ListOffsets v0 answers Kafka's `max_num_offsets` semantics: segment base offsets (and the
/// log end) in descending order, chosen by the segment files' modification times.
#[test]
fn list_offsets_v0_answers_segment_offsets() {
    let broker = TestBroker::start(&[]);
    let bootstrap = broker.bootstrap();
    // Small segments: each 3-record batch below fills one.
    create_topic(&bootstrap, "lo0", 1, &[("segment.bytes", "1024")]);
    let mut raw = RawClient::connect(&bootstrap);
    let value = vec![7u8; 300];
    let records: Vec<(Option<&[u8]>, &[u8])> = vec![(None, &value), (None, &value), (None, &value)];
    for _ in 0..3 {
        let batch = record_batch(&records, -1, -1, -1, 1);
        assert_eq!(produce(&mut raw, "lo0", batch).error_code, 0);
    }
    // Segments at 0, 3, 6 (the last one active, holding data), log end 9.
    assert_eq!(latest(&mut raw, "lo0"), 9);
    let far_future = 32_503_680_000_000; // the year 3000
    assert_eq!(list_offsets_v0(&mut raw, "lo0", 0, -1, 1), (0, vec![9]));
    assert_eq!(
        list_offsets_v0(&mut raw, "lo0", 0, -1, 100),
        (0, vec![9, 6, 3, 0])
    );
    assert_eq!(list_offsets_v0(&mut raw, "lo0", 0, -2, 100), (0, vec![0]));
    assert_eq!(
        list_offsets_v0(&mut raw, "lo0", 0, far_future, 2),
        (0, vec![9, 6])
    );
    // Before any file was written: nothing.
    assert_eq!(list_offsets_v0(&mut raw, "lo0", 0, 1_000, 100), (0, vec![]));
    assert_eq!(list_offsets_v0(&mut raw, "lo0", 0, -1, 0), (0, vec![]));
    // Kafka 3.9 failed on a negative count with UNKNOWN_SERVER_ERROR.
    assert_eq!(list_offsets_v0(&mut raw, "lo0", 0, -1, -1), (-1, vec![]));
    assert_eq!(list_offsets_v0(&mut raw, "lo0", 7, -1, 1), (3, vec![]));
    assert_eq!(list_offsets_v0(&mut raw, "nope", 0, -1, 1), (3, vec![]));
    // The log start offset raises the first segment's base offset.
    let mut p = km::delete_records_request::DeleteRecordsPartition::default();
    p.offset = 4;
    let mut t = km::delete_records_request::DeleteRecordsTopic::default();
    t.name = km::TopicName("lo0".to_string().into());
    t.partitions = vec![p];
    let mut request = km::DeleteRecordsRequest::default();
    request.topics = vec![t];
    request.timeout_ms = 5000;
    assert_eq!(raw.send(2, &request).topics[0].partitions[0].error_code, 0);
    assert_eq!(list_offsets_v0(&mut raw, "lo0", 0, -2, 100), (0, vec![4]));
    assert_eq!(
        list_offsets_v0(&mut raw, "lo0", 0, -1, 100),
        (0, vec![9, 6, 4])
    );
}

/// OffsetCommit v0 (no generation), v1 (generation, member, commit timestamp) and OffsetFetch
/// v0 against the group coordinator: round trips, the generation checks of v1, and expiry
/// counted from v1's client-supplied commit timestamp.
#[test]
fn offset_commit_v0_v1_and_offset_fetch_v0() {
    let broker = TestBroker::start(&[
        "group.initial.rebalance.delay.ms=0",
        "offsets.retention.minutes=1440",
        "offsets.retention.check.interval.ms=100",
    ]);
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "oc", 3, &[]);
    let mut raw = RawClient::connect(&bootstrap);

    // v0: a commit without generation or member, read back by v0 and by a modern version.
    assert_eq!(
        offset_commit_old(&mut raw, 0, "g0", (-1, ""), "oc", &[(0, 5, -1), (2, 7, -1)]),
        vec![0, 0]
    );
    assert_eq!(
        offset_fetch_v0(&mut raw, "g0", "oc", &[0, 1, 2]),
        vec![
            (0, 5, "meta-5".to_string(), 0),
            (1, -1, String::new(), 0),
            (2, 7, "meta-7".to_string(), 0)
        ]
    );
    let mut fetch = km::OffsetFetchRequest::default();
    fetch.group_id = km::GroupId("g0".to_string().into());
    fetch.topics = None;
    let modern = raw.send(7, &fetch);
    let offsets: Vec<(i32, i64)> = modern.topics[0]
        .partitions
        .iter()
        .map(|p| (p.partition_index, p.committed_offset))
        .collect();
    assert_eq!(offsets, vec![(0, 5), (2, 7)]);
    // Unknown partitions are refused per partition.
    assert_eq!(
        offset_commit_old(&mut raw, 0, "g0", (-1, ""), "oc", &[(9, 1, -1)]),
        vec![3]
    );

    // v1 in a live group: its generation and member id are checked.
    let (member, generation) = join_and_sync_v0(&mut raw, "g1");
    assert_eq!(
        offset_commit_old(
            &mut raw,
            1,
            "g1",
            (generation, &member),
            "oc",
            &[(0, 11, -1)]
        ),
        vec![0]
    );
    assert_eq!(
        offset_commit_old(
            &mut raw,
            1,
            "g1",
            (generation + 5, &member),
            "oc",
            &[(0, 12, -1)]
        ),
        vec![22],
        "ILLEGAL_GENERATION"
    );
    assert_eq!(
        offset_commit_old(
            &mut raw,
            1,
            "g1",
            (generation, "stranger"),
            "oc",
            &[(0, 13, -1)]
        ),
        vec![25],
        "UNKNOWN_MEMBER_ID"
    );
    // v0 carries no member: a group with members refuses it, and keeps its offset.
    assert_ne!(
        offset_commit_old(&mut raw, 0, "g1", (-1, ""), "oc", &[(0, 14, -1)]),
        vec![0]
    );
    assert_eq!(offset_fetch_v0(&mut raw, "g1", "oc", &[0])[0].1, 11);

    // v1 commit timestamps: Kafka keeps the client's as the commit time, and expiry
    // (offsets.retention.minutes = 1 day here, checked every 100 ms) counts from it.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let day = 86_400_000;
    assert_eq!(
        offset_commit_old(
            &mut raw,
            1,
            "g-ts",
            (-1, ""),
            "oc",
            &[
                (0, 100, now - 2 * day),
                (1, 101, -1),
                (2, 102, now - day + 3_000)
            ]
        ),
        vec![0, 0, 0]
    );
    let present = |raw: &mut RawClient| -> Vec<i64> {
        offset_fetch_v0(raw, "g-ts", "oc", &[0, 1, 2])
            .into_iter()
            .map(|(_, offset, _, _)| offset)
            .collect()
    };
    wait_until(
        "the two-day-old commit expires",
        Duration::from_secs(10),
        || present(&mut raw)[0] == -1,
    );
    assert_eq!(present(&mut raw), vec![-1, 101, 102]);
    wait_until(
        "the commit dated a day minus 3 s ago expires",
        Duration::from_secs(15),
        || present(&mut raw)[2] == -1,
    );
    assert_eq!(present(&mut raw), vec![-1, 101, -1]);
}
