//! The channel against a scripted broker that drops the first connection mid-request.

use std::time::Duration;

use bytes::{Buf, BufMut, BytesMut};
use kafka_protocol_3x::messages::{RequestHeader, ResponseHeader, StopReplicaResponse};
use kafka_protocol_3x::protocol::{Decodable, Encodable, HeaderVersion};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::*;
use crate::interbroker::{stop_replica_request, ControllerHeader, STOP_REPLICA_VERSION};
use strom_meta::replication::TopicPartition;

async fn read_request(socket: &mut TcpStream) -> Option<(i32, String)> {
    let mut length = [0u8; 4];
    socket.read_exact(&mut length).await.ok()?;
    let mut frame = vec![0u8; i32::from_be_bytes(length) as usize];
    socket.read_exact(&mut frame).await.ok()?;
    let mut bytes = bytes::Bytes::from(frame);
    let api_version = (&bytes[2..4]).get_i16();
    let header =
        RequestHeader::decode(&mut bytes, StopReplicaRequest::header_version(api_version)).ok()?;
    let request = StopReplicaRequest::decode(&mut bytes, api_version).ok()?;
    let topic = request.topic_states[0].topic_name.0.to_string();
    Some((header.correlation_id, topic))
}

async fn answer(socket: &mut TcpStream, correlation_id: i32) {
    let mut body = BytesMut::new();
    body.put_i32(0);
    let mut header = ResponseHeader::default();
    header.correlation_id = correlation_id;
    header
        .encode(
            &mut body,
            StopReplicaResponse::header_version(STOP_REPLICA_VERSION),
        )
        .unwrap();
    StopReplicaResponse::default()
        .encode(&mut body, STOP_REPLICA_VERSION)
        .unwrap();
    let length = (body.len() - 4) as i32;
    body[..4].copy_from_slice(&length.to_be_bytes());
    socket.write_all(&body).await.unwrap();
}

#[tokio::test]
async fn requests_arrive_in_order_and_a_dropped_one_is_resent() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let server = tokio::spawn(async move {
        // First connection: read one request and hang up without answering.
        let (mut first, _) = listener.accept().await.unwrap();
        let dropped = read_request(&mut first).await.unwrap().1;
        drop(first);
        // Second connection: answer everything, noting the order.
        let (mut second, _) = listener.accept().await.unwrap();
        let mut seen = vec![dropped];
        while seen.len() < 4 {
            let (correlation_id, topic) = read_request(&mut second).await.unwrap();
            seen.push(topic);
            answer(&mut second, correlation_id).await;
        }
        seen
    });
    let (events_tx, mut events) = mpsc::unbounded_channel();
    let mut channel = ControllerChannel::new(
        ChannelSettings {
            controller_id: 1,
            request_timeout: Duration::from_secs(5),
            retry_backoff: Duration::from_millis(20),
        },
        events_tx,
    );
    channel.add_broker(2, addr);
    let header = ControllerHeader {
        controller_id: 1,
        controller_epoch: 1,
        broker_epoch: 1,
    };
    for topic in ["a", "b", "c"] {
        let request = stop_replica_request(header, &[(TopicPartition::new(topic, 0), 1, true)]);
        assert!(channel.send(
            2,
            ControllerRequest::StopReplica {
                request,
                topic: topic.to_string(),
            },
        ));
    }
    assert!(!channel.send(9, ControllerRequest::UpdateMetadata(Default::default())));
    let mut done = Vec::new();
    let mut lost = 0;
    while done.len() < 3 {
        let event = tokio::time::timeout(Duration::from_secs(10), events.recv())
            .await
            .expect("events keep coming")
            .unwrap();
        match event {
            ChannelEvent::StopReplicaDone { broker, topic } => {
                assert_eq!(broker, 2);
                done.push(topic);
            }
            ChannelEvent::ConnectionLost { broker, .. } => {
                assert_eq!(broker, 2);
                lost += 1;
            }
            ChannelEvent::Answered { error_code, .. } => assert_eq!(error_code, 0),
        }
    }
    assert_eq!(done, ["a", "b", "c"]);
    assert!(lost >= 1, "the dropped connection was reported");
    // The server saw "a" twice (dropped, then resent) and then b and c, in order.
    assert_eq!(server.await.unwrap(), ["a", "a", "b", "c"]);
    channel.shutdown();
    assert!(channel.brokers().is_empty());
}

/// Answers a StopReplica whose only partition failed with `partition_error`.
async fn answer_partition_error(socket: &mut TcpStream, correlation_id: i32, partition_error: i16) {
    use kafka_protocol_3x::messages::stop_replica_response::StopReplicaPartitionError;
    let mut body = BytesMut::new();
    body.put_i32(0);
    let mut header = ResponseHeader::default();
    header.correlation_id = correlation_id;
    header
        .encode(
            &mut body,
            StopReplicaResponse::header_version(STOP_REPLICA_VERSION),
        )
        .unwrap();
    let mut response = StopReplicaResponse::default();
    let mut error = StopReplicaPartitionError::default();
    error.error_code = partition_error;
    response.partition_errors.push(error);
    response.encode(&mut body, STOP_REPLICA_VERSION).unwrap();
    let length = (body.len() - 4) as i32;
    body[..4].copy_from_slice(&length.to_be_bytes());
    socket.write_all(&body).await.unwrap();
}

#[tokio::test]
async fn a_partition_that_failed_to_stop_does_not_confirm_the_deletion() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let (correlation_id, _) = read_request(&mut socket).await.unwrap();
        // KAFKA_STORAGE_ERROR: the log could not be deleted.
        answer_partition_error(&mut socket, correlation_id, 56).await;
        let (correlation_id, _) = read_request(&mut socket).await.unwrap();
        answer_partition_error(&mut socket, correlation_id, 0).await;
    });
    let (events_tx, mut events) = mpsc::unbounded_channel();
    let mut channel = ControllerChannel::new(
        ChannelSettings {
            controller_id: 1,
            request_timeout: Duration::from_secs(5),
            retry_backoff: Duration::from_millis(20),
        },
        events_tx,
    );
    channel.add_broker(2, addr);
    let header = ControllerHeader {
        controller_id: 1,
        controller_epoch: 1,
        broker_epoch: 1,
    };
    for topic in ["bad", "good"] {
        let request = stop_replica_request(header, &[(TopicPartition::new(topic, 0), -2, true)]);
        assert!(channel.send(
            2,
            ControllerRequest::StopReplica {
                request,
                topic: topic.to_string(),
            },
        ));
    }
    let mut seen = Vec::new();
    while seen.len() < 3 {
        let event = tokio::time::timeout(Duration::from_secs(10), events.recv())
            .await
            .expect("events keep coming")
            .unwrap();
        match event {
            ChannelEvent::StopReplicaDone { topic, .. } => seen.push(format!("done {topic}")),
            ChannelEvent::Answered { error_code, .. } => {
                seen.push(format!("answered {error_code}"))
            }
            ChannelEvent::ConnectionLost { .. } => panic!("the connection stays"),
        }
    }
    assert_eq!(seen, ["answered 56", "done good", "answered 0"]);
    channel.shutdown();
}
