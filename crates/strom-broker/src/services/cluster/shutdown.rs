//! Controlled shutdown on a ZooKeeper cluster, both sides: a stopping broker asks the
//! controller (ControlledShutdown, API 7) to move its leadership away, retrying while
//! partitions remain (`controlled.shutdown.max.retries`, `.retry.backoff.ms`) before it stops;
//! the controller's broker hands such a request to its runtime and answers what the pure
//! controller decided (`strom_meta::controller`'s `shutdown.rs` owns every rule).
//!
//! It does not stop anything itself: `BrokerHandle::shutdown` calls
//! [`ClusterNode::controlled_shutdown`] first, then stops the replica manager and the server.

use std::time::Duration;

use kafka_protocol::error::ResponseError as E;
use kafka_protocol_3x::messages::{BrokerId as WireBrokerId, ControlledShutdownRequest};
use strom_meta::replication::{BrokerId, TopicPartition};
use tokio::sync::{mpsc, oneshot};

use super::{broker_addr, ClusterNode};
use crate::interbroker::peer::PeerConnection;
use crate::interbroker::CONTROLLED_SHUTDOWN_VERSION;

/// The controller's answer: Kafka's error code and the partitions the broker still leads.
pub type ShutdownAnswer = (i16, Vec<TopicPartition>);

/// A ControlledShutdown handed to the runtime.
pub struct ShutdownCommand {
    /// The stopping broker.
    pub broker: BrokerId,
    /// Its broker epoch (-1 from versions 0 and 1).
    pub broker_epoch: i64,
    /// Where the runtime answers, once the controller has.
    pub reply: oneshot::Sender<ShutdownAnswer>,
}

impl ClusterNode {
    /// The runtime's end of the ControlledShutdown queue (taken once, by the runtime).
    pub(super) fn take_shutdown_requests(&self) -> mpsc::UnboundedReceiver<ShutdownCommand> {
        self.shutdown_rx
            .lock()
            .unwrap()
            .take()
            .unwrap_or_else(|| mpsc::unbounded_channel().1)
    }

    /// Serves a ControlledShutdown received from `broker`: NOT_CONTROLLER unless this broker's
    /// runtime is the active controller; REQUEST_TIMED_OUT if no answer comes within `timeout`.
    pub async fn serve_controlled_shutdown(
        &self,
        broker: BrokerId,
        broker_epoch: i64,
        timeout: Duration,
    ) -> ShutdownAnswer {
        let (reply, answer) = oneshot::channel();
        let command = ShutdownCommand {
            broker,
            broker_epoch,
            reply,
        };
        if self.shutdown_tx.send(command).is_err() {
            return (E::NotController.code(), Vec::new());
        }
        match tokio::time::timeout(timeout, answer).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(_)) => (E::NotController.code(), Vec::new()),
            Err(_) => (E::RequestTimedOut.code(), Vec::new()),
        }
    }

    /// This broker is stopping: asks the controller to move its leadership away, up to
    /// `controlled.shutdown.max.retries` more times (pausing `.retry.backoff.ms`) while it
    /// fails or partitions remain. Returns whether nothing remained; does nothing (false)
    /// when `controlled.shutdown.enable` is off.
    pub async fn controlled_shutdown(&self) -> bool {
        let settings = self.config.cluster.controlled_shutdown;
        if !settings.enable {
            return false;
        }
        let started = std::time::Instant::now();
        for attempt in 0..=settings.max_retries {
            match self.ask_controller().await {
                Ok(remaining) if remaining.is_empty() => {
                    tracing::info!(
                        attempt,
                        elapsed_ms = started.elapsed().as_millis() as u64,
                        "controlled shutdown: leadership moved"
                    );
                    return true;
                }
                Ok(remaining) => tracing::warn!(
                    attempt,
                    remaining = remaining.len(),
                    "controlled shutdown: partitions still led here"
                ),
                Err(error) => tracing::warn!(attempt, %error, "controlled shutdown failed"),
            }
            if attempt < settings.max_retries {
                tokio::time::sleep(Duration::from_millis(settings.retry_backoff_ms)).await;
            }
        }
        tracing::warn!("controlled shutdown did not complete; stopping anyway");
        false
    }

    /// One ControlledShutdown to the controller `/controller` names; the partitions remaining.
    async fn ask_controller(&self) -> Result<Vec<TopicPartition>, String> {
        let broker_epoch = self.broker_epoch().ok_or("not registered")?;
        let store = self.store();
        let controller = store
            .controller()
            .await
            .map_err(|e| e.to_string())?
            .ok_or("no controller")?;
        let brokers = store.brokers().await.map_err(|e| e.to_string())?;
        let addr = brokers
            .get(&controller)
            .and_then(|b| broker_addr(&self.config, &b.registration))
            .ok_or_else(|| format!("controller {controller} is not registered"))?;
        let timeout =
            Duration::from_millis(self.config.cluster.controller_socket_timeout_ms.max(1) as u64);
        let client_id = format!("strom-broker-{}-shutdown", self.registration.id);
        let peer = PeerConnection::connect(&addr, &client_id, timeout)
            .await
            .map_err(|e| e.to_string())?;
        let mut request = ControlledShutdownRequest::default();
        request.broker_id = WireBrokerId(self.registration.id);
        request.broker_epoch = broker_epoch;
        let response = peer
            .call_3x(&request, CONTROLLED_SHUTDOWN_VERSION, timeout)
            .await
            .map_err(|e| e.to_string())?;
        peer.close();
        if response.error_code != 0 {
            return Err(format!(
                "controller {controller} answered error {}",
                response.error_code
            ));
        }
        Ok(response
            .remaining_partitions
            .iter()
            .map(|p| TopicPartition::new(p.topic_name.0.to_string(), p.partition_index))
            .collect())
    }
}
