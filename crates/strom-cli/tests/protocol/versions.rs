//! Every supported API, and every group API, answers at every supported version with a
//! response that decodes: a field set in a version that lacks it fails the encoder and would
//! leave the client without an answer.

use super::*;

/// Every supported API answers at every supported version with a response that decodes. A
/// response field set in a version that lacks it makes the encoder fail, and the client would
/// get no answer: this catches that for each handler and version.
#[test]
fn every_api_answers_at_every_supported_version() {
    let broker = TestBroker::start(&[]);
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "versions", 1, &[]);
    let mut raw = RawClient::connect(&bootstrap);
    assert_eq!(
        produce(
            &mut raw,
            "versions",
            record_batch(&[(None, b"v")], -1, -1, -1, 1)
        )
        .error_code,
        0
    );
    let topic = || km::TopicName("versions".to_string().into());
    for v in range(ApiKey::ApiVersions) {
        let mut request = km::ApiVersionsRequest::default();
        if v >= 3 {
            request.client_software_name = "strom-test".to_string().into();
            request.client_software_version = "1".to_string().into();
        }
        assert_eq!(raw.send(v, &request).error_code, 0, "ApiVersions v{v}");
    }
    for v in range(ApiKey::Metadata) {
        let mut request = km::MetadataRequest::default();
        let mut t = km::metadata_request::MetadataRequestTopic::default();
        t.name = Some(topic());
        request.topics = Some(vec![t]);
        let response = raw.send(v, &request);
        assert_eq!(response.topics[0].error_code, 0, "Metadata v{v}");
        assert_eq!(response.topics[0].partitions.len(), 1, "Metadata v{v}");
        // All topics: null list from v1, empty list in v0.
        let mut all = km::MetadataRequest::default();
        all.topics = if v == 0 { Some(vec![]) } else { None };
        assert!(
            !raw.send(v, &all).topics.is_empty(),
            "Metadata v{v} all topics"
        );
    }
    // Produce v0-v2 and Fetch v0-v3 (message sets, kafka-protocol 0.14's shapes) are sent by
    // tests/legacy_formats.rs at every version.
    for v in range(ApiKey::Produce).filter(|v| *v >= 3) {
        let mut request = produce_request(
            "versions",
            0,
            record_batch(&[(None, b"p")], -1, -1, -1, 1),
            -1,
        );
        if v >= 13 {
            let id = raw
                .send(12, &{
                    let mut m = km::MetadataRequest::default();
                    let mut t = km::metadata_request::MetadataRequestTopic::default();
                    t.name = Some(topic());
                    m.topics = Some(vec![t]);
                    m
                })
                .topics[0]
                .topic_id;
            request.topic_data[0].name = km::TopicName(Default::default());
            request.topic_data[0].topic_id = id;
        }
        request.transactional_id = None;
        let response = raw.send(v, &request);
        assert_eq!(
            response.responses[0].partition_responses[0].error_code, 0,
            "Produce v{v}"
        );
    }
    for v in range(ApiKey::Fetch).filter(|v| *v >= 4) {
        if v >= 13 {
            continue; // topic ids: covered by topic_ids_in_metadata_and_fetch
        }
        let mut p = km::fetch_request::FetchPartition::default();
        p.fetch_offset = 0;
        p.partition_max_bytes = 1 << 20;
        p.current_leader_epoch = -1;
        let mut t = km::fetch_request::FetchTopic::default();
        t.topic = topic();
        t.partitions = vec![p];
        let mut request = km::FetchRequest::default();
        request.replica_id = km::BrokerId(-1);
        request.max_bytes = 1 << 20;
        request.session_epoch = -1;
        request.topics = vec![t];
        let response = raw.send(v, &request);
        assert_eq!(
            response.responses[0].partitions[0].error_code, 0,
            "Fetch v{v}"
        );
        assert!(
            response.responses[0].partitions[0]
                .records
                .as_ref()
                .is_some_and(|r| !r.is_empty()),
            "Fetch v{v} returns data"
        );
    }
    for v in range(ApiKey::ListOffsets) {
        let mut request = km::ListOffsetsRequest::default();
        request.replica_id = km::BrokerId(-1);
        let mut t = km::list_offsets_request::ListOffsetsTopic::default();
        t.name = topic();
        let mut p = km::list_offsets_request::ListOffsetsPartition::default();
        p.timestamp = -1;
        p.current_leader_epoch = -1;
        t.partitions = vec![p];
        request.topics = vec![t];
        let response = raw.send(v, &request);
        assert_eq!(
            response.topics[0].partitions[0].error_code, 0,
            "ListOffsets v{v}"
        );
        assert!(
            response.topics[0].partitions[0].offset > 0,
            "ListOffsets v{v}"
        );
    }
    for v in range(ApiKey::CreateTopics) {
        let mut t = km::create_topics_request::CreatableTopic::default();
        t.name = km::TopicName(format!("created-v{v}").into());
        t.num_partitions = 1;
        t.replication_factor = 1;
        let mut request = km::CreateTopicsRequest::default();
        request.topics = vec![t];
        request.timeout_ms = 5000;
        let response = raw.send(v, &request);
        assert_eq!(response.topics[0].error_code, 0, "CreateTopics v{v}");
    }
    for v in range(ApiKey::DeleteTopics) {
        let mut request = km::DeleteTopicsRequest::default();
        let name = km::TopicName(format!("created-v{}", v + 1).into());
        if v >= 6 {
            let mut state = km::delete_topics_request::DeleteTopicState::default();
            state.name = Some(name);
            request.topics = vec![state];
        } else {
            request.topic_names = vec![name];
        }
        request.timeout_ms = 5000;
        let response = raw.send(v, &request);
        assert_eq!(response.responses[0].error_code, 0, "DeleteTopics v{v}");
    }
    for v in range(ApiKey::DescribeConfigs) {
        let mut r = km::describe_configs_request::DescribeConfigsResource::default();
        r.resource_type = 2;
        r.resource_name = "versions".to_string().into();
        r.configuration_keys = None;
        let mut request = km::DescribeConfigsRequest::default();
        request.resources = vec![r];
        request.include_synonyms = true;
        request.include_documentation = v >= 3;
        let response = raw.send(v, &request);
        assert_eq!(response.results[0].error_code, 0, "DescribeConfigs v{v}");
        assert!(
            response.results[0]
                .configs
                .iter()
                .any(|c| c.name.as_str() == "retention.ms"),
            "DescribeConfigs v{v}"
        );
    }
    for v in range(ApiKey::AlterConfigs) {
        let mut c = km::alter_configs_request::AlterableConfig::default();
        c.name = "retention.ms".to_string().into();
        c.value = Some(format!("{}", 1_000_000 + v as i64).into());
        let mut r = km::alter_configs_request::AlterConfigsResource::default();
        r.resource_type = 2;
        r.resource_name = "versions".to_string().into();
        r.configs = vec![c];
        let mut request = km::AlterConfigsRequest::default();
        request.resources = vec![r];
        assert_eq!(
            raw.send(v, &request).responses[0].error_code,
            0,
            "AlterConfigs v{v}"
        );
    }
    for v in range(ApiKey::IncrementalAlterConfigs) {
        let mut c = km::incremental_alter_configs_request::AlterableConfig::default();
        c.name = "segment.ms".to_string().into();
        c.value = Some("600000".to_string().into());
        let mut r = km::incremental_alter_configs_request::AlterConfigsResource::default();
        r.resource_type = 2;
        r.resource_name = "versions".to_string().into();
        r.configs = vec![c];
        let mut request = km::IncrementalAlterConfigsRequest::default();
        request.resources = vec![r];
        assert_eq!(
            raw.send(v, &request).responses[0].error_code,
            0,
            "IncrementalAlterConfigs v{v}"
        );
    }
    for v in range(ApiKey::CreatePartitions) {
        let mut t = km::create_partitions_request::CreatePartitionsTopic::default();
        t.name = topic();
        t.count = 2 + v as i32;
        t.assignments = None;
        let mut request = km::CreatePartitionsRequest::default();
        request.topics = vec![t];
        request.timeout_ms = 5000;
        assert_eq!(
            raw.send(v, &request).results[0].error_code,
            0,
            "CreatePartitions v{v}"
        );
    }
    for v in range(ApiKey::DeleteRecords) {
        let mut p = km::delete_records_request::DeleteRecordsPartition::default();
        p.offset = 1 + v as i64;
        let mut t = km::delete_records_request::DeleteRecordsTopic::default();
        t.name = topic();
        t.partitions = vec![p];
        let mut request = km::DeleteRecordsRequest::default();
        request.topics = vec![t];
        request.timeout_ms = 5000;
        let response = raw.send(v, &request);
        assert_eq!(
            response.topics[0].partitions[0].error_code, 0,
            "DeleteRecords v{v}"
        );
        assert_eq!(response.topics[0].partitions[0].low_watermark, 1 + v as i64);
    }
    for v in range(ApiKey::InitProducerId) {
        let mut request = km::InitProducerIdRequest::default();
        request.transactional_id = None;
        request.transaction_timeout_ms = 60_000;
        request.producer_id = km::ProducerId(-1);
        request.producer_epoch = -1;
        let response = raw.send(v, &request);
        assert_eq!(response.error_code, 0, "InitProducerId v{v}");
        assert!(response.producer_id.0 >= 0);
    }
    for v in range(ApiKey::DescribeCluster) {
        let response = raw.send(v, &km::DescribeClusterRequest::default());
        assert_eq!(response.error_code, 0, "DescribeCluster v{v}");
        assert_eq!(response.brokers.len(), 1);
    }
}

/// The group APIs answer at every supported version (see the test above for why).
#[test]
fn every_group_api_answers_at_every_supported_version() {
    let broker = TestBroker::start(&["group.initial.rebalance.delay.ms=0"]);
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "gv", 1, &[]);
    let mut raw = RawClient::connect(&bootstrap);
    let gid = |s: &str| km::GroupId(s.to_string().into());
    for v in range(ApiKey::FindCoordinator) {
        let mut request = km::FindCoordinatorRequest::default();
        if v >= 4 {
            request.coordinator_keys = vec!["g".to_string().into()];
            let response = raw.send(v, &request);
            assert_eq!(
                response.coordinators[0].error_code, 0,
                "FindCoordinator v{v}"
            );
        } else {
            request.key = "g".to_string().into();
            let response = raw.send(v, &request);
            assert_eq!(response.error_code, 0, "FindCoordinator v{v}");
            assert!(response.port > 0);
        }
    }
    // Joins a fresh one-member group at JoinGroup version `v`; returns (member id, generation).
    let join = |raw: &mut RawClient, group: &str, v: i16| -> (String, i32) {
        let mut request = km::JoinGroupRequest::default();
        request.group_id = gid(group);
        request.session_timeout_ms = 10_000;
        if v >= 1 {
            request.rebalance_timeout_ms = 10_000;
        }
        request.protocol_type = "consumer".to_string().into();
        let mut protocol = km::join_group_request::JoinGroupRequestProtocol::default();
        protocol.name = "range".to_string().into();
        protocol.metadata = Bytes::from_static(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        request.protocols = vec![protocol];
        let mut response = raw.send(v, &request);
        if v >= 4 {
            assert_eq!(
                response.error_code, 79,
                "JoinGroup v{v} asks for a member id"
            );
            request.member_id = response.member_id.clone();
            response = raw.send(v, &request);
        }
        assert_eq!(response.error_code, 0, "JoinGroup v{v}");
        assert_eq!(
            response.members.len(),
            1,
            "JoinGroup v{v}: the leader gets the members"
        );
        (response.member_id.to_string(), response.generation_id)
    };
    for v in range(ApiKey::JoinGroup) {
        join(&mut raw, &format!("join-v{v}"), v);
    }
    for v in range(ApiKey::SyncGroup) {
        let group = format!("sync-v{v}");
        let (member, generation) = join(&mut raw, &group, 5);
        let mut request = km::SyncGroupRequest::default();
        request.group_id = gid(&group);
        request.member_id = member.clone().into();
        request.generation_id = generation;
        if v >= 5 {
            request.protocol_type = Some("consumer".to_string().into());
            request.protocol_name = Some("range".to_string().into());
        }
        let mut a = km::sync_group_request::SyncGroupRequestAssignment::default();
        a.member_id = member.clone().into();
        a.assignment = Bytes::from_static(b"x");
        request.assignments = vec![a];
        let response = raw.send(v, &request);
        assert_eq!(
            (response.error_code, &response.assignment[..]),
            (0, &b"x"[..]),
            "SyncGroup v{v}"
        );
    }
    for v in range(ApiKey::Heartbeat) {
        let group = format!("hb-v{v}");
        let (member, generation) = join(&mut raw, &group, 5);
        let mut request = km::HeartbeatRequest::default();
        request.group_id = gid(&group);
        request.member_id = member.into();
        request.generation_id = generation;
        let code = raw.send(v, &request).error_code;
        assert_eq!(code, 0, "Heartbeat v{v}");
    }
    for v in range(ApiKey::ListGroups) {
        let response = raw.send(v, &km::ListGroupsRequest::default());
        assert!(response.groups.len() >= 10, "ListGroups v{v}");
    }
    for v in range(ApiKey::DescribeGroups) {
        let mut request = km::DescribeGroupsRequest::default();
        let group = format!("describe-v{v}");
        join(&mut raw, &group, 5);
        request.groups = vec![gid(&group)];
        let response = raw.send(v, &request);
        assert_eq!(response.groups[0].members.len(), 1, "DescribeGroups v{v}");
    }
    for v in range(ApiKey::LeaveGroup) {
        let group = format!("leave-v{v}");
        let (member, _) = join(&mut raw, &group, 5);
        let mut request = km::LeaveGroupRequest::default();
        request.group_id = gid(&group);
        if v >= 3 {
            let mut identity = km::leave_group_request::MemberIdentity::default();
            identity.member_id = member.into();
            request.members = vec![identity];
            let response = raw.send(v, &request);
            assert_eq!(response.members[0].error_code, 0, "LeaveGroup v{v}");
        } else {
            request.member_id = member.into();
            assert_eq!(raw.send(v, &request).error_code, 0, "LeaveGroup v{v}");
        }
    }
    for v in range(ApiKey::OffsetCommit) {
        let mut request = km::OffsetCommitRequest::default();
        request.group_id = gid("committer");
        request.generation_id_or_member_epoch = -1;
        let mut t = km::offset_commit_request::OffsetCommitRequestTopic::default();
        t.name = km::TopicName("gv".to_string().into());
        let mut p = km::offset_commit_request::OffsetCommitRequestPartition::default();
        p.committed_offset = 10 + v as i64;
        p.committed_leader_epoch = -1;
        p.committed_metadata = Some("m".to_string().into());
        t.partitions = vec![p];
        request.topics = vec![t];
        assert_eq!(
            raw.send(v, &request).topics[0].partitions[0].error_code,
            0,
            "OffsetCommit v{v}"
        );
    }
    for v in range(ApiKey::OffsetFetch) {
        let mut request = km::OffsetFetchRequest::default();
        if v >= 8 {
            let mut g = km::offset_fetch_request::OffsetFetchRequestGroup::default();
            g.group_id = gid("committer");
            g.topics = None;
            request.groups = vec![g];
            let response = raw.send(v, &request);
            assert_eq!(
                response.groups[0].topics[0].partitions[0].committed_offset, 19,
                "OffsetFetch v{v}"
            );
        } else {
            request.group_id = gid("committer");
            let mut t = km::offset_fetch_request::OffsetFetchRequestTopic::default();
            t.name = km::TopicName("gv".to_string().into());
            t.partition_indexes = vec![0];
            request.topics = Some(vec![t]);
            let response = raw.send(v, &request);
            assert_eq!(
                response.topics[0].partitions[0].committed_offset, 19,
                "OffsetFetch v{v}"
            );
        }
    }
    for v in range(ApiKey::OffsetDelete) {
        let mut request = km::OffsetDeleteRequest::default();
        request.group_id = gid("committer");
        let mut t = km::offset_delete_request::OffsetDeleteRequestTopic::default();
        t.name = km::TopicName("gv".to_string().into());
        t.partitions = vec![km::offset_delete_request::OffsetDeleteRequestPartition::default()];
        request.topics = vec![t];
        assert_eq!(raw.send(v, &request).error_code, 0, "OffsetDelete v{v}");
    }
    for v in range(ApiKey::DeleteGroups) {
        let mut request = km::DeleteGroupsRequest::default();
        request.groups_names = vec![gid(&format!("leave-v{v}"))];
        assert_eq!(
            raw.send(v, &request).results[0].error_code,
            0,
            "DeleteGroups v{v}"
        );
    }
}
