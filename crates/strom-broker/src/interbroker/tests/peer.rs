//! The peer connection against a real in-process broker and against scripted sockets.

use std::time::Duration;

use kafka_protocol::messages::{ApiVersionsRequest, MetadataRequest};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::*;
use crate::BrokerConfig;

const WAIT: Duration = Duration::from_secs(10);

async fn broker(dir: &std::path::Path) -> crate::BrokerHandle {
    let config = BrokerConfig::load(
        None,
        &[
            "listeners=PLAINTEXT://127.0.0.1:0".to_string(),
            format!("log.dirs={}", dir.display()),
            "broker.id=7".to_string(),
        ],
    )
    .expect("test config");
    crate::start(config).await.expect("broker starts")
}

#[tokio::test]
async fn pipelined_calls_get_their_own_answers() {
    let dir = tempfile::tempdir().unwrap();
    let handle = broker(dir.path()).await;
    let peer = PeerConnection::connect(&handle.bootstrap(), "peer-test", WAIT)
        .await
        .unwrap();
    // 50 calls in flight at once, two kinds interleaved: each must decode as its own kind.
    let mut calls = Vec::new();
    for index in 0..50 {
        let peer = peer.clone();
        calls.push(tokio::spawn(async move {
            if index % 2 == 0 {
                let answer = peer
                    .call(&ApiVersionsRequest::default(), 3, WAIT)
                    .await
                    .unwrap();
                assert_eq!(answer.error_code, 0);
                assert!(answer.api_keys.iter().any(|key| key.api_key == 1));
                None
            } else {
                let answer = peer
                    .call(&MetadataRequest::default(), 12, WAIT)
                    .await
                    .unwrap();
                Some(
                    answer
                        .brokers
                        .iter()
                        .map(|b| b.node_id.0)
                        .collect::<Vec<_>>(),
                )
            }
        }));
    }
    let mut metadata_answers = 0;
    for call in calls {
        if let Some(brokers) = call.await.unwrap() {
            assert_eq!(brokers, vec![7]);
            metadata_answers += 1;
        }
    }
    assert_eq!(metadata_answers, 25);
    assert!(!peer.is_closed());
    handle.shutdown().await.unwrap();
    tokio::time::timeout(WAIT, peer.closed())
        .await
        .expect("the connection reports its close");
    let error = peer
        .call(&ApiVersionsRequest::default(), 3, WAIT)
        .await
        .unwrap_err();
    assert!(matches!(error, PeerError::Closed { .. }), "{error}");
}

/// A scripted peer that reads one request and answers with `answer` (a whole frame).
async fn scripted(answer: Vec<u8>) -> (String, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let task = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut length = [0u8; 4];
        socket.read_exact(&mut length).await.unwrap();
        let mut request = vec![0u8; i32::from_be_bytes(length) as usize];
        socket.read_exact(&mut request).await.unwrap();
        socket.write_all(&answer).await.unwrap();
        // Hold the socket open until the client gives up.
        let mut rest = Vec::new();
        let _ = socket.read_to_end(&mut rest).await;
    });
    (addr, task)
}

#[tokio::test]
async fn a_wrong_correlation_id_or_a_huge_frame_closes_the_connection() {
    // Correlation id 99 where 0 is expected.
    let mut wrong = 4i32.to_be_bytes().to_vec();
    wrong.extend_from_slice(&99i32.to_be_bytes());
    // A frame length far beyond the limit.
    let huge = (i32::MAX).to_be_bytes().to_vec();
    for answer in [wrong, huge] {
        let (addr, task) = scripted(answer).await;
        let peer = PeerConnection::connect(&addr, "peer-test", WAIT)
            .await
            .unwrap();
        let error = peer
            .call(&ApiVersionsRequest::default(), 3, WAIT)
            .await
            .unwrap_err();
        assert!(matches!(error, PeerError::Closed { .. }), "{error}");
        assert!(peer.is_closed());
        drop(peer);
        task.abort();
    }
}

#[tokio::test]
async fn a_timeout_fails_the_call_and_closes_the_connection() {
    // A peer that reads and never answers.
    let (addr, task) = scripted(Vec::new()).await;
    let peer = PeerConnection::connect(&addr, "peer-test", WAIT)
        .await
        .unwrap();
    let error = peer
        .call(
            &ApiVersionsRequest::default(),
            3,
            Duration::from_millis(200),
        )
        .await
        .unwrap_err();
    assert!(matches!(error, PeerError::Timeout { .. }), "{error}");
    assert!(peer.is_closed());
    task.abort();
}

#[tokio::test]
async fn probe_tells_a_listening_port_from_a_closed_one() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    assert_eq!(probe(addr, WAIT).await, Probe::Listening);
    drop(listener);
    assert_eq!(probe(addr, WAIT).await, Probe::Refused);
}
