//! A broker's client connection to another broker: the controller's channel to each broker
//! (LeaderAndIsr, UpdateMetadata, StopReplica) and a follower's channel to a leader (Fetch,
//! OffsetForLeaderEpoch).
//!
//! This module owns the framing of requests a broker *sends*: correlation ids, pipelining
//! (requests are written as they come and answered in order, as Kafka guarantees per
//! connection), per-call timeouts, and telling every waiting caller when the connection dies. It
//! also owns [`probe`], the liveness check behind fast failure detection (see
//! `docs/replication.md`). It does not own what the requests mean, reconnection policy, or which
//! broker to talk to: callers hold a [`PeerConnection`] and open a new one when it closes.
//!
//! Requests are typed with either `kafka-protocol` (current APIs) or `kafka-protocol-3x` (the
//! ZooKeeper-era inter-broker APIs Kafka 4 removed); both go through [`PeerConnection::send_raw`].

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, watch};

/// The largest response frame a peer connection accepts (a follower fetch answers at most
/// `replica.fetch.response.max.bytes`, 10 MiB by default, plus framing).
pub const MAX_RESPONSE_BYTES: usize = 256 * 1024 * 1024;

/// Why a call to a peer failed.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    /// Connecting failed.
    #[error("cannot connect to broker at {addr}: {source}")]
    Connect {
        /// The address tried.
        addr: String,
        /// The socket error.
        #[source]
        source: io::Error,
    },
    /// The connection closed (or failed) before the answer arrived.
    #[error("connection to broker at {addr} closed: {reason}")]
    Closed {
        /// The peer's address.
        addr: String,
        /// What closed it.
        reason: String,
    },
    /// No answer within the call's timeout; the connection is closed, since a late answer
    /// would be matched to the wrong request.
    #[error("broker at {addr} did not answer within {timeout:?}")]
    Timeout {
        /// The peer's address.
        addr: String,
        /// The call's timeout.
        timeout: Duration,
    },
    /// The request could not be encoded, or the answer could not be decoded.
    #[error("bad message to or from broker at {addr}: {message}")]
    Codec {
        /// The peer's address.
        addr: String,
        /// What was wrong.
        message: String,
    },
}

/// One request waiting for its answer.
struct Pending {
    correlation_id: i32,
    reply: oneshot::Sender<Result<Bytes, PeerError>>,
}

/// State shared between the handle, the writer and the reader.
struct Shared {
    addr: String,
    /// Requests written (or about to be), oldest first; answers arrive in this order.
    pending: Mutex<VecDeque<Pending>>,
    closed: AtomicBool,
    /// Flips to `true` once, when the connection is gone.
    closed_tx: watch::Sender<bool>,
}

impl Shared {
    /// Marks the connection dead and fails every waiting call with `reason`.
    fn close(&self, reason: &str) {
        self.closed.store(true, Ordering::SeqCst);
        let waiting: Vec<Pending> = self
            .pending
            .lock()
            .expect("peer pending lock")
            .drain(..)
            .collect();
        for pending in waiting {
            let _ = pending.reply.send(Err(PeerError::Closed {
                addr: self.addr.clone(),
                reason: reason.to_string(),
            }));
        }
        self.closed_tx.send_replace(true);
    }
}

/// A pipelined connection to one broker. Cheap to clone; dropping the last clone closes it.
#[derive(Clone)]
pub struct PeerConnection {
    shared: Arc<Shared>,
    next_correlation_id: Arc<AtomicI32>,
    frames: mpsc::UnboundedSender<Bytes>,
    client_id: StrBytes,
    closed_rx: watch::Receiver<bool>,
}

impl PeerConnection {
    /// Connects to `addr` (`host:port`) within `timeout`; `client_id` names this broker in the
    /// peer's request logs (e.g. `strom-broker-2-controller`).
    pub async fn connect(
        addr: &str,
        client_id: &str,
        timeout: Duration,
    ) -> Result<PeerConnection, PeerError> {
        let connect_error = |source| PeerError::Connect {
            addr: addr.to_string(),
            source,
        };
        let stream = tokio::time::timeout(timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| connect_error(io::Error::from(io::ErrorKind::TimedOut)))?
            .map_err(connect_error)?;
        stream.set_nodelay(true).map_err(connect_error)?;
        let (closed_tx, closed_rx) = watch::channel(false);
        let shared = Arc::new(Shared {
            addr: addr.to_string(),
            pending: Mutex::new(VecDeque::new()),
            closed: AtomicBool::new(false),
            closed_tx,
        });
        let (frames, frames_rx) = mpsc::unbounded_channel();
        let (read_half, write_half) = stream.into_split();
        tokio::spawn(write_frames(shared.clone(), write_half, frames_rx));
        tokio::spawn(read_frames(shared.clone(), read_half));
        Ok(PeerConnection {
            shared,
            next_correlation_id: Arc::new(AtomicI32::new(0)),
            frames,
            client_id: StrBytes::from_string(client_id.to_string()),
            closed_rx,
        })
    }

    /// The peer's address as given to [`PeerConnection::connect`].
    pub fn addr(&self) -> &str {
        &self.shared.addr
    }

    /// True once the connection has failed or closed.
    pub fn is_closed(&self) -> bool {
        self.shared.closed.load(Ordering::SeqCst)
    }

    /// Resolves when the connection fails or closes (at once if it already has).
    pub async fn closed(&self) {
        let mut rx = self.closed_rx.clone();
        let _ = rx.wait_for(|closed| *closed).await;
    }

    /// Closes the connection; waiting calls fail with [`PeerError::Closed`].
    pub fn close(&self) {
        self.shared.close("closed by this broker");
    }

    /// Sends one request with a `kafka-protocol` type and waits up to `timeout` for its answer.
    pub async fn call<R>(
        &self,
        request: &R,
        version: i16,
        timeout: Duration,
    ) -> Result<R::Response, PeerError>
    where
        R: kafka_protocol::protocol::Request,
    {
        let mut body = BytesMut::new();
        request
            .encode(&mut body, version)
            .map_err(|e| self.codec(format!("encoding api {} v{version}: {e}", R::KEY)))?;
        let header_version =
            <R as kafka_protocol::protocol::HeaderVersion>::header_version(version);
        let response_header_version =
            <R::Response as kafka_protocol::protocol::HeaderVersion>::header_version(version);
        let mut answer = self
            .send_raw(
                R::KEY,
                version,
                header_version,
                response_header_version,
                body.freeze(),
                timeout,
            )
            .await?;
        R::Response::decode(&mut answer, version)
            .map_err(|e| self.codec(format!("decoding api {} v{version} answer: {e}", R::KEY)))
    }

    /// Like [`PeerConnection::call`], for the `kafka-protocol-3x` types of the ZooKeeper-era
    /// inter-broker APIs (LeaderAndIsr, UpdateMetadata, StopReplica).
    pub async fn call_3x<R>(
        &self,
        request: &R,
        version: i16,
        timeout: Duration,
    ) -> Result<<R as kafka_protocol_3x::protocol::Request>::Response, PeerError>
    where
        R: kafka_protocol_3x::protocol::Request,
    {
        use kafka_protocol_3x::protocol::HeaderVersion;
        let mut body = BytesMut::new();
        request
            .encode(&mut body, version)
            .map_err(|e| self.codec(format!("encoding api {} v{version}: {e}", R::KEY)))?;
        let mut answer = self
            .send_raw(
                R::KEY,
                version,
                <R as HeaderVersion>::header_version(version),
                <<R as kafka_protocol_3x::protocol::Request>::Response as HeaderVersion>::header_version(version),
                body.freeze(),
                timeout,
            )
            .await?;
        <<R as kafka_protocol_3x::protocol::Request>::Response as kafka_protocol_3x::protocol::Decodable>::decode(&mut answer, version)
            .map_err(|e| self.codec(format!("decoding api {} v{version} answer: {e}", R::KEY)))
    }

    /// Sends an encoded request body under a fresh correlation id and returns the answer's body
    /// (its response header checked and removed). A timeout closes the connection.
    pub async fn send_raw(
        &self,
        api_key: i16,
        api_version: i16,
        header_version: i16,
        response_header_version: i16,
        body: Bytes,
        timeout: Duration,
    ) -> Result<Bytes, PeerError> {
        let correlation_id = self.next_correlation_id.fetch_add(1, Ordering::Relaxed);
        let mut header = RequestHeader::default();
        header.request_api_key = api_key;
        header.request_api_version = api_version;
        header.correlation_id = correlation_id;
        header.client_id = Some(self.client_id.clone());
        let mut frame = BytesMut::with_capacity(body.len() + 64);
        frame.put_i32(0);
        header
            .encode(&mut frame, header_version)
            .map_err(|e| self.codec(format!("encoding request header: {e}")))?;
        frame.extend_from_slice(&body);
        let length = i32::try_from(frame.len() - 4)
            .map_err(|_| self.codec("request larger than 2 GiB".to_string()))?;
        frame[..4].copy_from_slice(&length.to_be_bytes());

        let (reply, answer) = oneshot::channel();
        {
            // Queue and send under one lock so the pending order is the wire order.
            let mut pending = self.shared.pending.lock().expect("peer pending lock");
            if self.is_closed() || self.frames.send(frame.freeze()).is_err() {
                return Err(PeerError::Closed {
                    addr: self.shared.addr.clone(),
                    reason: "connection already closed".to_string(),
                });
            }
            pending.push_back(Pending {
                correlation_id,
                reply,
            });
        }
        let mut body = match tokio::time::timeout(timeout, answer).await {
            Ok(Ok(result)) => result?,
            Ok(Err(_)) => {
                return Err(PeerError::Closed {
                    addr: self.shared.addr.clone(),
                    reason: "reader stopped".to_string(),
                })
            }
            Err(_) => {
                self.shared.close("a call timed out");
                return Err(PeerError::Timeout {
                    addr: self.shared.addr.clone(),
                    timeout,
                });
            }
        };
        ResponseHeader::decode(&mut body, response_header_version)
            .map_err(|e| self.codec(format!("decoding response header: {e}")))?;
        Ok(body)
    }

    fn codec(&self, message: String) -> PeerError {
        PeerError::Codec {
            addr: self.shared.addr.clone(),
            message,
        }
    }
}

/// Writes queued frames in order until the queue or the socket closes.
async fn write_frames(
    shared: Arc<Shared>,
    mut socket: tokio::net::tcp::OwnedWriteHalf,
    mut frames: mpsc::UnboundedReceiver<Bytes>,
) {
    let mut closed_rx = shared.closed_tx.subscribe();
    loop {
        let frame = tokio::select! {
            frame = frames.recv() => frame,
            _ = closed_rx.wait_for(|closed| *closed) => None,
        };
        let Some(frame) = frame else {
            let _ = socket.shutdown().await;
            return;
        };
        if let Err(error) = socket.write_all(&frame).await {
            shared.close(&format!("write failed: {error}"));
            return;
        }
    }
}

/// Reads answer frames and hands each to the oldest waiting call, checking that the
/// correlation ids match; any mismatch, oversize frame or socket error closes the connection.
async fn read_frames(shared: Arc<Shared>, mut socket: tokio::net::tcp::OwnedReadHalf) {
    let mut closed_rx = shared.closed_tx.subscribe();
    loop {
        let mut length = [0u8; 4];
        let read = tokio::select! {
            read = socket.read_exact(&mut length) => read,
            _ = closed_rx.wait_for(|closed| *closed) => return,
        };
        if let Err(error) = read {
            let reason = if error.kind() == io::ErrorKind::UnexpectedEof {
                "the peer closed the connection".to_string()
            } else {
                format!("read failed: {error}")
            };
            shared.close(&reason);
            return;
        }
        let length = i32::from_be_bytes(length);
        let Ok(length) = usize::try_from(length) else {
            shared.close(&format!("negative frame length {length}"));
            return;
        };
        if !(4..=MAX_RESPONSE_BYTES).contains(&length) {
            shared.close(&format!("answer frame of {length} bytes"));
            return;
        }
        let mut frame = BytesMut::zeroed(length);
        if let Err(error) = socket.read_exact(&mut frame).await {
            shared.close(&format!("read failed: {error}"));
            return;
        }
        let correlation_id = (&frame[..4]).get_i32();
        let waiting = shared
            .pending
            .lock()
            .expect("peer pending lock")
            .pop_front();
        match waiting {
            Some(pending) if pending.correlation_id == correlation_id => {
                let _ = pending.reply.send(Ok(frame.freeze()));
            }
            Some(pending) => {
                let expected = pending.correlation_id;
                shared
                    .pending
                    .lock()
                    .expect("peer pending lock")
                    .push_front(pending);
                shared.close(&format!(
                    "answer for correlation id {correlation_id}, expected {expected}"
                ));
                return;
            }
            None => {
                shared.close(&format!(
                    "unrequested answer with correlation id {correlation_id}"
                ));
                return;
            }
        }
    }
}

/// What a liveness probe found at a broker's address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Probe {
    /// A TCP connection was accepted: something listens there.
    Listening,
    /// The connection was refused: no process listens on that port (on loopback, or from a
    /// host that answers), so the broker that did is gone.
    Refused,
    /// Neither within the timeout (a partition, a hung host): nothing can be concluded.
    Unknown,
}

/// Probes `addr` with a plain TCP connect (closed at once), the check that turns "my connection
/// to broker N closed" into "broker N's process is gone" without waiting for its ZooKeeper
/// session to expire.
pub async fn probe(addr: SocketAddr, timeout: Duration) -> Probe {
    match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
        Ok(Ok(_)) => Probe::Listening,
        Ok(Err(error)) if error.kind() == io::ErrorKind::ConnectionRefused => Probe::Refused,
        Ok(Err(_)) | Err(_) => Probe::Unknown,
    }
}

#[cfg(test)]
#[path = "tests/peer.rs"]
mod tests;
