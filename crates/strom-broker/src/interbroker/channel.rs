//! The controller's channel to every live broker (Kafka's `ControllerChannelManager`): one
//! queue and one sending task per broker, requests delivered in order, each retried on a new
//! connection until it is answered or the broker leaves the channel.
//!
//! This module owns delivery: connecting, ordering, retrying, timeouts, and reporting answers
//! and lost connections back to the controller runtime as [`ChannelEvent`]s. A lost connection
//! is the first sign of a dead broker (see `docs/replication.md`, "Finding a dead broker"); the
//! runtime decides what it means. It does not own what to send (the controller's effects) or
//! how requests are encoded ([`super`]).

use std::collections::BTreeMap;
use std::time::Duration;

use kafka_protocol_3x::messages::{LeaderAndIsrRequest, StopReplicaRequest, UpdateMetadataRequest};
use strom_meta::replication::BrokerId;
use tokio::sync::mpsc;

use super::peer::PeerConnection;
use super::{LEADER_AND_ISR_VERSION, STOP_REPLICA_VERSION, UPDATE_METADATA_VERSION};

/// One request for a broker.
#[derive(Clone, Debug)]
pub enum ControllerRequest {
    /// Become leader or follower of partitions.
    LeaderAndIsr(LeaderAndIsrRequest),
    /// The live brokers and changed partition states.
    UpdateMetadata(UpdateMetadataRequest),
    /// Stop (and maybe delete) replicas of `topic`.
    StopReplica {
        /// The request.
        request: StopReplicaRequest,
        /// The topic it is about, reported back when answered.
        topic: String,
    },
}

impl ControllerRequest {
    fn name(&self) -> &'static str {
        match self {
            ControllerRequest::LeaderAndIsr(_) => "LeaderAndIsr",
            ControllerRequest::UpdateMetadata(_) => "UpdateMetadata",
            ControllerRequest::StopReplica { .. } => "StopReplica",
        }
    }
}

/// What the channel reports to the controller runtime.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChannelEvent {
    /// `broker` answered a request with a top-level error code (0 = none).
    Answered {
        /// The broker.
        broker: BrokerId,
        /// Which request.
        request: &'static str,
        /// Its top-level error code.
        error_code: i16,
    },
    /// `broker` answered a StopReplica for `topic` without a top-level error.
    StopReplicaDone {
        /// The broker.
        broker: BrokerId,
        /// The topic.
        topic: String,
    },
    /// The connection to `broker` at `addr` closed or could not be opened.
    ConnectionLost {
        /// The broker.
        broker: BrokerId,
        /// The address it was registered with.
        addr: String,
    },
}

/// Timing of the channel.
#[derive(Clone, Copy, Debug)]
pub struct ChannelSettings {
    /// This broker's id (names the connections in peers' logs).
    pub controller_id: BrokerId,
    /// How long a request may wait for its answer (`controller.socket.timeout.ms`).
    pub request_timeout: Duration,
    /// The pause before reconnecting after a failure.
    pub retry_backoff: Duration,
}

/// The channel: a sending task per broker.
pub struct ControllerChannel {
    settings: ChannelSettings,
    events: mpsc::UnboundedSender<ChannelEvent>,
    brokers: BTreeMap<BrokerId, BrokerQueue>,
}

struct BrokerQueue {
    addr: String,
    requests: mpsc::UnboundedSender<ControllerRequest>,
    task: tokio::task::JoinHandle<()>,
}

impl ControllerChannel {
    /// A channel reporting to `events`.
    pub fn new(
        settings: ChannelSettings,
        events: mpsc::UnboundedSender<ChannelEvent>,
    ) -> ControllerChannel {
        ControllerChannel {
            settings,
            events,
            brokers: BTreeMap::new(),
        }
    }

    /// Adds `broker` at `addr` (replacing an older entry with another address: a restarted
    /// broker on a new port).
    pub fn add_broker(&mut self, broker: BrokerId, addr: String) {
        if self.brokers.get(&broker).is_some_and(|q| q.addr == addr) {
            return;
        }
        self.remove_broker(broker);
        let (requests, queue) = mpsc::unbounded_channel();
        let task = tokio::spawn(send_loop(
            self.settings,
            broker,
            addr.clone(),
            queue,
            self.events.clone(),
        ));
        self.brokers.insert(
            broker,
            BrokerQueue {
                addr,
                requests,
                task,
            },
        );
    }

    /// Drops `broker` and everything queued for it.
    pub fn remove_broker(&mut self, broker: BrokerId) {
        if let Some(queue) = self.brokers.remove(&broker) {
            queue.task.abort();
        }
    }

    /// The brokers in the channel.
    pub fn brokers(&self) -> Vec<BrokerId> {
        self.brokers.keys().copied().collect()
    }

    /// Queues `request` for `broker`; false if the broker is not in the channel.
    pub fn send(&self, broker: BrokerId, request: ControllerRequest) -> bool {
        self.brokers
            .get(&broker)
            .is_some_and(|queue| queue.requests.send(request).is_ok())
    }

    /// Stops every sending task (the controller resigned).
    pub fn shutdown(&mut self) {
        for (_, queue) in std::mem::take(&mut self.brokers) {
            queue.task.abort();
        }
    }
}

impl Drop for ControllerChannel {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// One broker's sender: connect, then deliver requests in order; on any failure report the
/// lost connection, back off, reconnect, and send the same request again.
async fn send_loop(
    settings: ChannelSettings,
    broker: BrokerId,
    addr: String,
    mut queue: mpsc::UnboundedReceiver<ControllerRequest>,
    events: mpsc::UnboundedSender<ChannelEvent>,
) {
    let client_id = format!("strom-controller-{}", settings.controller_id);
    let mut connection: Option<PeerConnection> = None;
    let mut current: Option<ControllerRequest> = None;
    loop {
        let peer = match &connection {
            Some(peer) if !peer.is_closed() => peer.clone(),
            _ => {
                if connection.take().is_some() {
                    let _ = events.send(ChannelEvent::ConnectionLost {
                        broker,
                        addr: addr.clone(),
                    });
                    tokio::time::sleep(settings.retry_backoff).await;
                }
                match PeerConnection::connect(&addr, &client_id, settings.request_timeout).await {
                    Ok(peer) => {
                        connection = Some(peer.clone());
                        peer
                    }
                    Err(error) => {
                        tracing::debug!(broker, %error, "controller cannot reach broker");
                        let _ = events.send(ChannelEvent::ConnectionLost {
                            broker,
                            addr: addr.clone(),
                        });
                        tokio::time::sleep(settings.retry_backoff).await;
                        continue;
                    }
                }
            }
        };
        let request = match current.take() {
            Some(request) => request,
            None => {
                tokio::select! {
                    request = queue.recv() => match request {
                        Some(request) => request,
                        None => return,
                    },
                    _ = peer.closed() => continue,
                }
            }
        };
        let timeout = settings.request_timeout;
        let answer = match &request {
            ControllerRequest::LeaderAndIsr(r) => peer
                .call_3x(r, LEADER_AND_ISR_VERSION, timeout)
                .await
                .map(|a| a.error_code),
            ControllerRequest::UpdateMetadata(r) => peer
                .call_3x(r, UPDATE_METADATA_VERSION, timeout)
                .await
                .map(|a| a.error_code),
            // A partition that failed to stop (or delete) fails the whole answer, so a
            // deletion does not complete on a replica that still holds its log.
            ControllerRequest::StopReplica { request: r, .. } => peer
                .call_3x(r, STOP_REPLICA_VERSION, timeout)
                .await
                .map(|a| {
                    let failed = a.partition_errors.iter().map(|p| p.error_code);
                    std::iter::once(a.error_code)
                        .chain(failed)
                        .find(|code| *code != 0)
                        .unwrap_or(0)
                }),
        };
        match answer {
            Ok(error_code) => {
                let name = request.name();
                if let (ControllerRequest::StopReplica { topic, .. }, 0) = (&request, error_code) {
                    let _ = events.send(ChannelEvent::StopReplicaDone {
                        broker,
                        topic: topic.clone(),
                    });
                }
                let _ = events.send(ChannelEvent::Answered {
                    broker,
                    request: name,
                    error_code,
                });
            }
            Err(error) => {
                tracing::debug!(broker, %error, request = request.name(), "resending");
                peer.close();
                current = Some(request);
            }
        }
    }
}

#[cfg(test)]
#[path = "tests/channel.rs"]
mod tests;
