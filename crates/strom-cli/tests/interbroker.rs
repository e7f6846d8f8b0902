//! The controller's requests (LeaderAndIsr, StopReplica, UpdateMetadata) reach a broker over
//! the Kafka protocol: a single node answers them with INVALID_REQUEST and keeps serving, and a
//! version Strom brokers do not speak closes the connection like any malformed request.

mod common;

use common::*;
use kafka_protocol::messages::ApiVersionsRequest;
use kafka_protocol_3x::messages::{
    BrokerId, LeaderAndIsrRequest, StopReplicaRequest, UpdateMetadataRequest,
};

#[test]
fn a_single_node_refuses_controller_requests_and_keeps_serving() {
    let broker = TestBroker::start(&[]);
    let bootstrap = broker.bootstrap();
    let mut raw = RawClient::connect(&bootstrap);
    let mut leader_and_isr = LeaderAndIsrRequest::default();
    leader_and_isr.controller_id = BrokerId(5);
    leader_and_isr.controller_epoch = 3;
    for version in 5..=7 {
        let answer = raw.send3(version, &leader_and_isr);
        assert_eq!(answer.error_code, 42, "LeaderAndIsr v{version}");
    }
    for version in 3..=4 {
        let answer = raw.send3(version, &StopReplicaRequest::default());
        assert_eq!(answer.error_code, 42, "StopReplica v{version}");
    }
    for version in 7..=8 {
        let answer = raw.send3(version, &UpdateMetadataRequest::default());
        assert_eq!(answer.error_code, 42, "UpdateMetadata v{version}");
    }
    // The connection still serves clients.
    let versions = raw.send(3, &ApiVersionsRequest::default());
    assert_eq!(versions.error_code, 0);
    // Controller APIs are not advertised: only Strom controllers send them.
    assert!(versions
        .api_keys
        .iter()
        .all(|key| !(4..=6).contains(&key.api_key)));

    // A version no Strom controller sends: the connection closes, the broker keeps serving.
    let mut old = RawClient::connect(&bootstrap);
    std::io::Write::write_all(&mut old.stream, &leader_and_isr_frame(4)).unwrap();
    assert!(old.is_closed(), "LeaderAndIsr v4 closes the connection");
    let mut again = RawClient::connect(&bootstrap);
    assert_eq!(again.send(3, &ApiVersionsRequest::default()).error_code, 0);
}

/// A whole LeaderAndIsr request frame at `version`, built with the 0.14 types (which still
/// know every version).
fn leader_and_isr_frame(version: i16) -> Vec<u8> {
    use kafka_protocol_3x::messages::RequestHeader;
    use kafka_protocol_3x::protocol::{Encodable, HeaderVersion};
    let mut header = RequestHeader::default();
    header.request_api_key = 4;
    header.request_api_version = version;
    header.correlation_id = 1;
    let mut buf = bytes::BytesMut::new();
    header
        .encode(&mut buf, LeaderAndIsrRequest::header_version(version))
        .unwrap();
    LeaderAndIsrRequest::default()
        .encode(&mut buf, version)
        .unwrap();
    let mut frame = (buf.len() as i32).to_be_bytes().to_vec();
    frame.extend_from_slice(&buf);
    frame
}
