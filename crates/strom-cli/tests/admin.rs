//! Topic administration through librdkafka's admin client and raw requests: create (with
//! configs and validate_only), describe/alter configs with effect, partitions, DeleteRecords,
//! retention, deletion, ListOffsets.

mod common;

use std::time::Duration;

use common::*;
use kafka_protocol::messages::{self as km};
use rdkafka::admin::{
    AdminOptions, AlterConfig, ConfigSource, NewPartitions, NewTopic, ResourceSpecifier,
    TopicReplication,
};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::FutureRecord;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::TopicPartitionList;

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Produces `count` records one at a time; record i has timestamp `base_ts + 1000 * (i + 1)`.
fn fill(bootstrap: &str, topic: &str, partition: i32, count: u64, size: usize, base_ts: i64) {
    let producer = producer(
        bootstrap,
        &[("linger.ms", "0"), ("batch.num.messages", "1")],
    );
    client_runtime().block_on(async {
        for i in 0..count {
            let value = payload(i, size);
            producer
                .send(
                    FutureRecord::<(), _>::to(topic)
                        .partition(partition)
                        .payload(&value)
                        .timestamp(base_ts + 1_000 * (i as i64 + 1)),
                    Duration::from_secs(10),
                )
                .await
                .expect("delivery");
        }
    });
}

fn watermarks(bootstrap: &str, topic: &str, partition: i32) -> (i64, i64) {
    let consumer: BaseConsumer = client_config(bootstrap, &[]).create().unwrap();
    consumer
        .fetch_watermarks(topic, partition, Duration::from_secs(5))
        .unwrap()
}

fn segment_files(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .ends_with(".log")
            })
            .count()
        })
        .unwrap_or(0)
}

#[test]
fn create_topics_with_configs_validate_only_and_errors() {
    let broker = TestBroker::start(&[]);
    let bootstrap = broker.bootstrap();
    let admin = admin(&bootstrap);
    let rt = client_runtime();
    let validate = AdminOptions::new().validate_only(true);
    let r = rt
        .block_on(admin.create_topics(
            &[NewTopic::new(
                "only-validated",
                3,
                TopicReplication::Fixed(1),
            )],
            &validate,
        ))
        .unwrap();
    assert!(r[0].is_ok(), "validate_only succeeds: {r:?}");
    let consumer: BaseConsumer =
        client_config(&bootstrap, &[("allow.auto.create.topics", "false")])
            .create()
            .unwrap();
    let md = consumer
        .fetch_metadata(None, Duration::from_secs(5))
        .unwrap();
    assert!(
        md.topics().iter().all(|t| t.name() != "only-validated"),
        "validate_only created nothing"
    );
    assert!(!broker.dir.join("only-validated-0").exists());

    let with_configs = NewTopic::new("configured", 2, TopicReplication::Fixed(1))
        .set("retention.ms", "3600000")
        .set("cleanup.policy", "delete");
    let r = rt
        .block_on(admin.create_topics(&[with_configs], &AdminOptions::new()))
        .unwrap();
    assert!(r[0].is_ok());
    let described = rt
        .block_on(admin.describe_configs(
            &[ResourceSpecifier::Topic("configured")],
            &AdminOptions::new(),
        ))
        .unwrap();
    let resource = described[0].as_ref().unwrap();
    let retention = resource.get("retention.ms").unwrap();
    assert_eq!(retention.value.as_deref(), Some("3600000"));
    assert_eq!(retention.source, ConfigSource::DynamicTopic);
    let segment = resource.get("segment.bytes").unwrap();
    assert_eq!(segment.value.as_deref(), Some("1073741824"));
    assert_eq!(
        segment.source,
        ConfigSource::Default,
        "a default is not shown as an override"
    );

    let cases: Vec<(NewTopic, RDKafkaErrorCode)> = vec![
        (
            NewTopic::new("configured", 1, TopicReplication::Fixed(1)),
            RDKafkaErrorCode::TopicAlreadyExists,
        ),
        (
            NewTopic::new("bad name!", 1, TopicReplication::Fixed(1)),
            RDKafkaErrorCode::InvalidTopic,
        ),
        (
            NewTopic::new("too-many-replicas", 1, TopicReplication::Fixed(3)),
            RDKafkaErrorCode::InvalidReplicationFactor,
        ),
        (
            NewTopic::new("bad-config", 1, TopicReplication::Fixed(1)).set("retention.ms", "soon"),
            RDKafkaErrorCode::InvalidConfig,
        ),
        (
            NewTopic::new("unknown-config", 1, TopicReplication::Fixed(1))
                .set("retention.mss", "1"),
            RDKafkaErrorCode::InvalidConfig,
        ),
    ];
    for (topic, expected) in cases {
        let name = topic.name.to_string();
        let r = rt
            .block_on(admin.create_topics(&[topic], &AdminOptions::new()))
            .unwrap();
        match &r[0] {
            Err((_, code)) => assert_eq!(*code, expected, "{name}"),
            Ok(_) => panic!("{name} should have been refused"),
        }
    }
}

#[test]
fn alter_configs_take_effect_and_retention_deletes_segments() {
    let broker = TestBroker::start(&["log.retention.check.interval.ms=200"]);
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "retained", 1, &[("segment.bytes", "4096")]);
    fill(&bootstrap, "retained", 0, 60, 1000, now_ms() - 120_000);
    let dir = broker.dir.join("retained-0");
    let before = segment_files(&dir);
    assert!(
        before >= 10,
        "segment.bytes=4096 rolled many segments ({before})"
    );
    assert_eq!(watermarks(&bootstrap, "retained", 0), (0, 60));

    // Size-based retention, set with AlterConfigs (which replaces all overrides, so keep segment.bytes).
    let admin = admin(&bootstrap);
    let rt = client_runtime();
    let change = AlterConfig::new(ResourceSpecifier::Topic("retained"))
        .set("retention.bytes", "16384")
        .set("segment.bytes", "4096");
    let r = rt
        .block_on(admin.alter_configs(&[change], &AdminOptions::new()))
        .unwrap();
    assert!(r[0].is_ok(), "{r:?}");
    wait_until(
        "retention.bytes deletes old segments",
        Duration::from_secs(10),
        || watermarks(&bootstrap, "retained", 0).0 > 0,
    );
    let (low, high) = watermarks(&bootstrap, "retained", 0);
    assert_eq!(high, 60);
    assert!(
        segment_files(&dir) < before,
        "segment files were deleted from disk"
    );
    let remaining = consume(
        &bootstrap,
        "retained",
        &[0],
        (high - low) as usize,
        Duration::from_secs(10),
    );
    assert_eq!(
        remaining[0].offset, low,
        "consumption from the beginning starts at the new log start offset"
    );

    // Time-based retention: every record is at least a minute old.
    let change = AlterConfig::new(ResourceSpecifier::Topic("retained"))
        .set("retention.ms", "30000")
        .set("segment.bytes", "4096");
    assert!(rt
        .block_on(admin.alter_configs(&[change], &AdminOptions::new()))
        .unwrap()[0]
        .is_ok());
    wait_until(
        "retention.ms deletes every segment",
        Duration::from_secs(10),
        || watermarks(&bootstrap, "retained", 0).0 == 60,
    );
    let described = rt
        .block_on(admin.describe_configs(
            &[ResourceSpecifier::Topic("retained")],
            &AdminOptions::new(),
        ))
        .unwrap();
    let resource = described[0].as_ref().unwrap();
    assert_eq!(
        resource.get("retention.ms").unwrap().value.as_deref(),
        Some("30000")
    );
    assert_eq!(
        resource.get("retention.bytes").unwrap().source,
        ConfigSource::Default,
        "AlterConfigs replaced the whole override set"
    );
}

#[test]
fn incremental_alter_configs_set_delete_append() {
    let broker = TestBroker::start(&[]);
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "incremental", 1, &[("retention.ms", "1000000")]);
    let mut raw = RawClient::connect(&bootstrap);
    use km::incremental_alter_configs_request::{AlterConfigsResource, AlterableConfig};
    let op = |name: &str, op: i8, value: Option<&str>| {
        let mut c = AlterableConfig::default();
        c.name = name.to_string().into();
        c.config_operation = op;
        c.value = value.map(|v| v.to_string().into());
        c
    };
    let mut resource = AlterConfigsResource::default();
    resource.resource_type = 2;
    resource.resource_name = "incremental".to_string().into();
    resource.configs = vec![
        op("segment.ms", 0, Some("600000")),
        op("retention.ms", 1, None),
        op("cleanup.policy", 2, Some("compact")),
    ];
    let mut request = km::IncrementalAlterConfigsRequest::default();
    request.resources = vec![resource.clone()];
    let response = raw.send(1, &request);
    assert_eq!(
        response.responses[0].error_code, 0,
        "{:?}",
        response.responses[0].error_message
    );

    let mut describe = km::DescribeConfigsRequest::default();
    let mut r = km::describe_configs_request::DescribeConfigsResource::default();
    r.resource_type = 2;
    r.resource_name = "incremental".to_string().into();
    r.configuration_keys = None;
    describe.resources = vec![r];
    let described = raw.send(4, &describe);
    let get = |name: &str| {
        described.results[0]
            .configs
            .iter()
            .find(|c| c.name.as_str() == name)
            .unwrap()
            .clone()
    };
    assert_eq!(get("segment.ms").value.unwrap().as_str(), "600000");
    assert_eq!(get("segment.ms").config_source, 1, "DYNAMIC_TOPIC_CONFIG");
    assert_eq!(
        get("retention.ms").config_source,
        5,
        "deleted override falls back to the default"
    );
    assert_eq!(
        get("cleanup.policy").value.unwrap().as_str(),
        "delete,compact"
    );

    // APPEND on a non-list config is refused with INVALID_CONFIG and changes nothing.
    resource.configs = vec![op("segment.ms", 2, Some("1"))];
    request.resources = vec![resource];
    let response = raw.send(1, &request);
    assert_eq!(response.responses[0].error_code, 40);
}

#[test]
fn create_partitions_and_delete_records() {
    let broker = TestBroker::start(&[]);
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "grow", 1, &[]);
    let admin = admin(&bootstrap);
    let rt = client_runtime();
    let r = rt
        .block_on(admin.create_partitions(&[NewPartitions::new("grow", 4)], &AdminOptions::new()))
        .unwrap();
    assert!(r[0].is_ok(), "{r:?}");
    let r = rt
        .block_on(admin.create_partitions(&[NewPartitions::new("grow", 2)], &AdminOptions::new()))
        .unwrap();
    assert!(
        matches!(&r[0], Err((_, RDKafkaErrorCode::InvalidPartitions))),
        "shrinking is refused: {r:?}"
    );
    fill(&bootstrap, "grow", 3, 20, 50, now_ms());
    assert_eq!(watermarks(&bootstrap, "grow", 3), (0, 20));

    let mut offsets = TopicPartitionList::new();
    offsets
        .add_partition_offset("grow", 3, rdkafka::Offset::Offset(5))
        .unwrap();
    let deleted = rt
        .block_on(admin.delete_records(&offsets, &AdminOptions::new()))
        .unwrap();
    let element = deleted.find_partition("grow", 3).unwrap();
    assert_eq!(
        element.offset(),
        rdkafka::Offset::Offset(5),
        "low watermark after DeleteRecords"
    );
    assert_eq!(watermarks(&bootstrap, "grow", 3), (5, 20));
    let got = consume(&bootstrap, "grow", &[3], 15, Duration::from_secs(10));
    assert_eq!(got[0].offset, 5);

    let mut beyond = TopicPartitionList::new();
    beyond
        .add_partition_offset("grow", 3, rdkafka::Offset::Offset(50))
        .unwrap();
    let refused = rt
        .block_on(admin.delete_records(&beyond, &AdminOptions::new()))
        .unwrap();
    assert_eq!(
        refused
            .find_partition("grow", 3)
            .unwrap()
            .error()
            .unwrap_err()
            .rdkafka_error_code(),
        Some(RDKafkaErrorCode::OffsetOutOfRange)
    );

    // The new log start offset survives a restart.
    let broker = broker.restart();
    assert_eq!(watermarks(&broker.bootstrap(), "grow", 3), (5, 20));
}

#[test]
fn delete_topic_removes_data() {
    let broker = TestBroker::start(&[]);
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "doomed", 2, &[]);
    fill(&bootstrap, "doomed", 0, 10, 100, now_ms());
    assert!(broker.dir.join("doomed-0").exists());
    let admin = admin(&bootstrap);
    let rt = client_runtime();
    let r = rt
        .block_on(admin.delete_topics(&["doomed"], &AdminOptions::new()))
        .unwrap();
    assert!(r[0].is_ok());
    wait_until(
        "partition directories are removed",
        Duration::from_secs(10),
        || {
            std::fs::read_dir(&broker.dir).unwrap().all(|e| {
                !e.unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with("doomed")
            })
        },
    );
    let r = rt
        .block_on(admin.delete_topics(&["doomed"], &AdminOptions::new()))
        .unwrap();
    assert!(
        matches!(&r[0], Err((_, RDKafkaErrorCode::UnknownTopicOrPartition))),
        "{r:?}"
    );
    // Recreating the name starts from an empty log.
    create_topic(&bootstrap, "doomed", 1, &[]);
    assert_eq!(watermarks(&bootstrap, "doomed", 0), (0, 0));
    // And the deletion survives a restart.
    let broker = broker.restart();
    assert_eq!(watermarks(&broker.bootstrap(), "doomed", 0), (0, 0));
}

#[test]
fn list_offsets_earliest_latest_timestamp_max() {
    let broker = TestBroker::start(&[]);
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "times", 1, &[]);
    let base = now_ms() - 60_000;
    fill(&bootstrap, "times", 0, 10, 10, base); // timestamps base+1000 .. base+10000
    let consumer: BaseConsumer = client_config(&bootstrap, &[]).create().unwrap();
    let mut query = TopicPartitionList::new();
    query
        .add_partition_offset("times", 0, rdkafka::Offset::Offset(base + 2500))
        .unwrap();
    let found = consumer
        .offsets_for_times(query, Duration::from_secs(5))
        .unwrap();
    assert_eq!(
        found.find_partition("times", 0).unwrap().offset(),
        rdkafka::Offset::Offset(2),
        "first record with timestamp >= 2500 is the one at 3000"
    );
    let mut late = TopicPartitionList::new();
    late.add_partition_offset("times", 0, rdkafka::Offset::Offset(base + 99_999))
        .unwrap();
    let found = consumer
        .offsets_for_times(late, Duration::from_secs(5))
        .unwrap();
    assert_eq!(
        found.find_partition("times", 0).unwrap().offset(),
        rdkafka::Offset::End,
        "no record that late"
    );

    let mut raw = RawClient::connect(&bootstrap);
    let mut request = km::ListOffsetsRequest::default();
    request.replica_id = km::BrokerId(-1);
    let mut topic = km::list_offsets_request::ListOffsetsTopic::default();
    topic.name = km::TopicName("times".to_string().into());
    for ts in [-1i64, -2, -3, base + 5000] {
        let mut p = km::list_offsets_request::ListOffsetsPartition::default();
        p.partition_index = 0;
        p.timestamp = ts;
        p.current_leader_epoch = -1;
        topic.partitions = vec![p];
        request.topics = vec![topic.clone()];
        let response = raw.send(8, &request);
        let p = &response.topics[0].partitions[0];
        assert_eq!(p.error_code, 0);
        let expected = match ts {
            -1 => (10, -1),
            -2 => (0, -1),
            -3 => (9, base + 10_000),
            _ => (4, base + 5_000),
        };
        assert_eq!(
            (p.offset, p.timestamp),
            expected,
            "ListOffsets timestamp {ts}"
        );
    }
}

/// GET `path` from the metrics endpoint; (status line, body).
/// The value of the sample `name{labels}` (labels exactly as rendered), if present.
fn sample(body: &str, series: &str) -> Option<f64> {
    body.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// The Prometheus endpoint counts what real clients did: records and bytes in and out per topic,
/// requests per API, fdatasyncs; and reports the log of every partition and the groups.
#[test]
fn prometheus_metrics_count_produce_fetch_and_syncs() {
    let broker = TestBroker::start(&[]);
    let bootstrap = broker.bootstrap();
    let addr = broker
        .handle
        .as_ref()
        .unwrap()
        .metrics_addr
        .expect("metrics on");
    create_topic(&bootstrap, "measured", 2, &[]);
    let producer = producer(&bootstrap, &[("acks", "all"), ("linger.ms", "5")]);
    let rt = client_runtime();
    let records = 500u64;
    rt.block_on(async {
        let mut futures = Vec::new();
        for i in 0..records {
            let value = payload(i, 200);
            futures.push(
                producer
                    .send_result(
                        rdkafka::producer::FutureRecord::<(), _>::to("measured")
                            .partition((i % 2) as i32)
                            .payload(&value),
                    )
                    .map_err(|(e, _)| e)
                    .unwrap(),
            );
        }
        for f in futures {
            f.await.unwrap().unwrap();
        }
    });
    let got = consume(
        &bootstrap,
        "measured",
        &[0, 1],
        records as usize,
        std::time::Duration::from_secs(30),
    );
    assert_eq!(got.len(), records as usize);

    let (status, body) = http_get(addr, "GET /metrics HTTP/1.1\r\nHost: strom\r\n\r\n");
    assert_eq!(status, "HTTP/1.1 200 OK");
    let topic = "{topic=\"measured\"}";
    assert_eq!(
        sample(
            &body,
            &format!("kafka_server_brokertopicmetrics_messagesin_total{topic}")
        ),
        Some(records as f64)
    );
    let bytes_in = sample(
        &body,
        &format!("kafka_server_brokertopicmetrics_bytesin_total{topic}"),
    )
    .expect("bytes in");
    assert!(bytes_in > (records * 200) as f64, "{bytes_in}");
    let bytes_out = sample(
        &body,
        &format!("kafka_server_brokertopicmetrics_bytesout_total{topic}"),
    )
    .expect("bytes out");
    assert!(
        bytes_out >= bytes_in,
        "everything was read once: {bytes_out} < {bytes_in}"
    );
    let ends: f64 = (0..2)
        .map(|p| {
            sample(
                &body,
                &format!("kafka_log_log_logendoffset{{topic=\"measured\",partition=\"{p}\"}}"),
            )
            .expect("log end offset")
        })
        .sum();
    assert_eq!(ends, records as f64);
    assert!(
        sample(
            &body,
            "kafka_network_requestmetrics_requests_total{request=\"Produce\"}"
        )
        .unwrap()
            >= 1.0
    );
    assert!(
        sample(
            &body,
            "kafka_network_requestmetrics_requests_total{request=\"Fetch\"}"
        )
        .unwrap()
            >= 1.0
    );
    assert!(sample(&body, "strom_log_fdatasync_seconds_count").unwrap() >= 1.0);
    // Two of ours, and __consumer_offsets if the consumer's group id created it.
    let partitions = sample(&body, "kafka_server_replicamanager_partitioncount").unwrap();
    assert!(partitions == 2.0 || partitions == 52.0, "{partitions}");
    assert_eq!(
        body.lines()
            .filter(|l| l.starts_with("kafka_log_log_size{"))
            .count() as f64,
        partitions,
        "one log size per partition"
    );
    assert!(sample(&body, "process_resident_memory_bytes").unwrap() > 0.0);
    assert!(body.contains("# TYPE kafka_log_log_size gauge"));
    // A single node is its own controller, leads everything and has nothing offline.
    for (series, value) in [
        (
            "kafka_controller_kafkacontroller_activecontrollercount",
            1.0,
        ),
        (
            "kafka_controller_kafkacontroller_offlinepartitionscount",
            0.0,
        ),
        ("kafka_server_replicamanager_underreplicatedpartitions", 0.0),
        ("kafka_server_replicamanager_leadercount", partitions),
        (
            "kafka_server_replicafetchermanager_maxlag{clientId=\"Replica\"}",
            0.0,
        ),
    ] {
        assert_eq!(sample(&body, series), Some(value), "{series}");
    }

    // Anything else is refused politely; a hostile request gets 400 and the endpoint lives on.
    assert_eq!(
        http_get(addr, "GET / HTTP/1.1\r\n\r\n").0,
        "HTTP/1.1 404 Not Found"
    );
    assert_eq!(
        http_get(addr, "DELETE /metrics HTTP/1.1\r\n\r\n").0,
        "HTTP/1.1 405 Method Not Allowed"
    );
    assert_eq!(
        http_get(addr, "\u{1}\u{2}garbage\r\n\r\n").0,
        "HTTP/1.1 400 Bad Request"
    );
    let huge = format!("GET /metrics HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(20_000));
    assert_eq!(
        http_get(addr, &huge).0,
        "HTTP/1.1 431 Request Header Fields Too Large"
    );
    assert_eq!(
        http_get(addr, "GET /metrics HTTP/1.0\r\n\r\n").0,
        "HTTP/1.0 200 OK",
        "an HTTP/1.0 client is answered in its version"
    );
}

/// An override that is valid alone but conflicts with a broker default (Kafka's rule
/// min.compaction.lag.ms <= max.compaction.lag.ms) is refused with INVALID_CONFIG by CreateTopics
/// and AlterConfigs (validate-only too), and nothing is stored: before, such a topic was written
/// and then could not be opened.
#[test]
fn overrides_that_conflict_with_broker_defaults_are_refused() {
    let broker = TestBroker::start(&["log.cleaner.max.compaction.lag.ms=5000"]);
    let bootstrap = broker.bootstrap();
    let admin = admin(&bootstrap);
    let rt = client_runtime();
    let lagging = NewTopic::new("lagging", 1, TopicReplication::Fixed(1))
        .set("min.compaction.lag.ms", "10000");
    let r = rt
        .block_on(admin.create_topics(&[lagging], &AdminOptions::new()))
        .unwrap();
    assert!(
        matches!(&r[0], Err((_, RDKafkaErrorCode::InvalidConfig))),
        "{r:?}"
    );
    create_topic(&bootstrap, "lagged", 1, &[]);
    // Raw requests: the rdkafka crate drops per-resource AlterConfigs errors.
    let mut raw = RawClient::connect(&bootstrap);
    for validate_only in [false, true] {
        let mut entry = km::alter_configs_request::AlterableConfig::default();
        entry.name = "min.compaction.lag.ms".to_string().into();
        entry.value = Some("10000".to_string().into());
        let mut resource = km::alter_configs_request::AlterConfigsResource::default();
        resource.resource_type = 2; // TOPIC
        resource.resource_name = "lagged".to_string().into();
        resource.configs = vec![entry];
        let mut request = km::AlterConfigsRequest::default();
        request.resources = vec![resource];
        request.validate_only = validate_only;
        let response = raw.send(2, &request);
        assert_eq!(
            response.responses[0].error_code, 40,
            "INVALID_CONFIG (validate_only {validate_only})"
        );
    }
    // Nothing was stored: the broker restarts and has only the valid topic.
    let broker = broker.restart();
    let consumer: BaseConsumer = client_config(&broker.bootstrap(), &[]).create().unwrap();
    let metadata = consumer
        .fetch_metadata(None, Duration::from_secs(10))
        .unwrap();
    let names: Vec<&str> = metadata.topics().iter().map(|t| t.name()).collect();
    assert_eq!(names, ["lagged"]);
}
