//! The cluster task of a broker: keeps its ZooKeeper session and registration, runs for
//! controller whenever `/controller` is absent, and while it is the controller drives the pure
//! [`Controller`] — turning ZooKeeper watches and channel events into [`Input`]s and performing
//! its [`Effect`]s (conditional znode writes fenced by `/controller_epoch`, reads, requests to
//! brokers through the [`ControllerChannel`]).
//!
//! Dead brokers are found faster than their sessions expire (`docs/replication.md`): when the
//! controller's connection to a broker closes, the broker's address is probed, and a refused
//! connection deletes its registration, which fires the watch the broker-failure path runs on.
//! Every other broker keeps a connection to the controller and does the same with `/controller`.
//!
//! It owns no decision (the [`Controller`] does) and no partition (the replica manager does).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use strom_meta::controller::{
    ClusterSnapshot, Controller, Effect, Input, LiveBroker, PartitionInfo, TopicInfo,
};
use strom_meta::replication::{BrokerId, BrokerRegistration, TopicPartition};
use strom_meta::zk::{ControllerFence, Election, SessionEvent, ZkError, ZkEvent, ZkStore};
use tokio::sync::{mpsc, watch};
use uuid::Uuid;

use super::reads::{read_brokers, read_topics};
use super::{broker_addr, ClusterNode};
use crate::interbroker::channel::{
    ChannelEvent, ChannelSettings, ControllerChannel, ControllerRequest,
};
use crate::interbroker::peer::{probe, PeerConnection, Probe};
use crate::interbroker::{
    leader_and_isr_request, stop_replica_request, update_metadata_request, ControllerHeader,
    LeaderAddress, PartitionCommand,
};

#[path = "create_states.rs"]
mod create_states;
#[path = "duties.rs"]
mod duties;
#[path = "retry.rs"]
mod retry;
use retry::{read_until_answered, retry};

/// The pause before retrying a failed ZooKeeper operation.
const RETRY: Duration = Duration::from_millis(200);

/// How long a liveness probe waits for a connection.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// Starts the cluster task of `node`; it ends when `shutdown` turns true.
pub fn spawn(
    node: Arc<ClusterNode>,
    shutdown: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move { Runtime::new(node).run(shutdown).await })
}

/// What a controller monitor found.
struct ControllerGone {
    controller: BrokerId,
}

struct Runtime {
    node: Arc<ClusterNode>,
    controller: Controller,
    /// The fence of this broker's controllership, while it is the controller.
    fence: Option<ControllerFence>,
    channel: Option<ControllerChannel>,
    channel_tx: mpsc::UnboundedSender<ChannelEvent>,
    channel_rx: mpsc::UnboundedReceiver<ChannelEvent>,
    /// Live brokers as the controller last read them.
    live: BTreeMap<BrokerId, LiveBroker>,
    /// Topic ids by name, as last read (kept after deletion, for UpdateMetadata's deletes).
    topic_ids: BTreeMap<String, Uuid>,
    /// The controller another broker holds, and the task watching its connection.
    monitored: Option<(BrokerId, tokio::task::JoinHandle<()>)>,
    gone_tx: mpsc::UnboundedSender<ControllerGone>,
    gone_rx: mpsc::UnboundedReceiver<ControllerGone>,
    /// ElectLeaders requests from handlers (`elect.rs`).
    elect_rx: mpsc::UnboundedReceiver<super::elect::ElectCommand>,
    /// Controlled shutdowns and the leader balance's tick (`duties.rs`).
    duties: duties::Duties,

    /// Reassignment requests from handlers (`reassign.rs`).
    reassign_rx: mpsc::UnboundedReceiver<super::reassign::ReassignCommand>,
}

impl Runtime {
    fn new(node: Arc<ClusterNode>) -> Runtime {
        let (channel_tx, channel_rx) = mpsc::unbounded_channel();
        let (gone_tx, gone_rx) = mpsc::unbounded_channel();
        let mut controller = Controller::new(node.registration.id);
        controller.set_leader_balance(node.config.cluster.leader_balance);
        Runtime {
            controller,
            elect_rx: node.take_elect_requests(),
            duties: duties::Duties::new(&node),

            reassign_rx: node.take_reassign_requests(),
            node,
            fence: None,
            channel: None,
            channel_tx,
            channel_rx,
            live: BTreeMap::new(),
            topic_ids: BTreeMap::new(),
            monitored: None,
            gone_tx,
            gone_rx,
        }
    }

    fn id(&self) -> BrokerId {
        self.node.registration.id
    }

    async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        loop {
            // One ZooKeeper session per round; a new one after an expiry.
            let store = self.node.store();
            let mut events = loop {
                match store.watch().await {
                    Ok(events) => break events,
                    Err(error) if error.is_session_expired() => {
                        self.reconnect(&mut shutdown).await;
                        if *shutdown.borrow() {
                            return;
                        }
                        continue;
                    }
                    Err(error) => {
                        tracing::warn!(%error, "arming the ZooKeeper watches failed; retrying");
                        tokio::time::sleep(RETRY).await;
                    }
                }
            };
            let store = self.node.store();
            self.register(&store).await;
            self.controller_changed(&store).await;
            let expired = loop {
                tokio::select! {
                    _ = shutdown.changed() => {
                        self.stop(&store).await;
                        return;
                    }
                    event = events.next() => match event {
                        None | Some(ZkEvent::Session(SessionEvent::Expired))
                        | Some(ZkEvent::Session(SessionEvent::AuthFailed))
                        | Some(ZkEvent::Session(SessionEvent::Closed)) => break true,
                        Some(event) => self.zk_event(&store, event).await,
                    },
                    Some(event) = self.channel_rx.recv() => self.channel_event(&store, event).await,
                    Some(command) = self.elect_rx.recv() => {
                        let answer = self.controller.elect_leaders(command.partitions, command.kind);
                        let (outcomes, effects) = answer.unzip();
                        self.perform(&store, effects.unwrap_or_default()).await;
                        let _ = command.reply.send(outcomes);
                    }
                    Some(command) = self.duties.requests.recv() => {
                        self.controlled_shutdown(&store, command).await;
                    }
                    _ = self.duties.tick.tick() => self.tick(&store).await,

                    Some(command) = self.reassign_rx.recv() => {
                        let (effects, reply) = super::reassign::decide(&mut self.controller, command);
                        self.perform(&store, effects).await;
                        if let Some(reply) = reply {
                            reply.send(self.controller.is_active());
                        }
                    }
                    Some(gone) = self.gone_rx.recv() => {
                        if let Ok(true) = store.delete_controller_if(gone.controller).await {
                            tracing::warn!(controller = gone.controller,
                                "the controller's process is gone; deleted /controller");
                        }
                    }
                }
            };
            if expired {
                tracing::warn!(
                    "ZooKeeper session expired; connecting a new one and registering again"
                );
                self.node.set_broker_epoch(None);
                let effects = self.controller.step(Input::SessionExpired);
                self.perform(&store, effects).await;
                self.reconnect(&mut shutdown).await;
                if *shutdown.borrow() {
                    return;
                }
            }
        }
    }

    /// Resigns (if controller) and closes the session, which removes the registration.
    async fn stop(&mut self, store: &ZkStore) {
        if let Some(fence) = self.fence.take() {
            let _ = store.resign_controller(&fence).await;
        }
        if let Some(mut channel) = self.channel.take() {
            channel.shutdown();
        }
        if let Some((_, task)) = self.monitored.take() {
            task.abort();
        }
    }

    /// Connects a new session (retrying until one is made or shutdown).
    async fn reconnect(&mut self, shutdown: &mut watch::Receiver<bool>) {
        loop {
            if *shutdown.borrow() {
                return;
            }
            match ZkStore::connect(&self.node.zk_config).await {
                Ok(store) => {
                    self.node.set_store(store);
                    return;
                }
                Err(error) => {
                    tracing::warn!(%error, "no new ZooKeeper session yet");
                    tokio::time::sleep(RETRY).await;
                }
            }
        }
    }

    /// Registers this broker (retrying) and records the broker epoch.
    async fn register(&mut self, store: &ZkStore) {
        let wait = store.session_timeout() * 2;
        loop {
            match store
                .register_broker(&self.node.registration, -1, crate::clock::now_ms(), wait)
                .await
            {
                Ok(epoch) => {
                    tracing::info!(broker_epoch = epoch, "registered in ZooKeeper");
                    self.node.set_broker_epoch(Some(epoch));
                    return;
                }
                Err(error) if error.is_session_expired() => return,
                Err(error) => {
                    tracing::warn!(%error, "broker registration failed; retrying");
                    tokio::time::sleep(RETRY).await;
                }
            }
        }
    }

    async fn zk_event(&mut self, store: &ZkStore, event: ZkEvent) {
        match event {
            ZkEvent::BrokersChanged => {
                self.check_own_registration(store).await;
                if self.controller.is_active() {
                    if let Some(brokers) = retry(|| read_brokers(store)).await {
                        self.brokers_read(brokers.clone());
                        let effects = self.controller.step(Input::BrokersChanged { brokers });
                        self.perform(store, effects).await;
                    }
                }
            }
            ZkEvent::TopicsChanged => {
                if self.controller.is_active() {
                    let config = self.node.live.current();
                    if let Some(topics) = retry(|| read_topics(store, &config)).await {
                        self.topics_read(&topics);
                        let effects = self.controller.step(Input::TopicsChanged { topics });
                        self.perform(store, effects).await;
                    }
                }
            }
            ZkEvent::TopicDeletionsChanged => {
                if self.controller.is_active() {
                    if let Ok(topics) = store.topics_marked_for_deletion().await {
                        for topic in topics {
                            let effects = self
                                .controller
                                .step(Input::TopicDeletionRequested { topic });
                            self.perform(store, effects).await;
                        }
                    }
                }
            }
            ZkEvent::IsrChangesNotified => {
                if self.controller.is_active() {
                    if let Ok(changes) = store.isr_change_notifications().await {
                        if changes.is_empty() {
                            return;
                        }
                        let names: Vec<String> = changes.iter().map(|c| c.name.clone()).collect();
                        let partitions: BTreeSet<TopicPartition> =
                            changes.into_iter().flat_map(|c| c.partitions).collect();
                        if let Err(error) = store.delete_isr_change_notifications(&names).await {
                            tracing::warn!(%error, "deleting ISR change notifications failed");
                        }
                        let effects = self.controller.step(Input::IsrChangeNotification {
                            partitions: partitions.into_iter().collect(),
                        });
                        self.perform(store, effects).await;
                    }
                }
            }
            ZkEvent::ControllerChanged => self.controller_changed(store).await,
            ZkEvent::PreferredReplicaElection => self.preferred_replica_election(store).await,

            ZkEvent::ReassignmentChanged => self.read_znode_reassignment(store).await,
            ZkEvent::ConfigChanged => {
                for (topic, unclean) in self.node.apply_config_changes().await {
                    let input = Input::TopicConfigChanged {
                        topic,
                        unclean_leader_election: unclean,
                    };
                    let effects = self.controller.step(input);
                    self.perform(store, effects).await;
                }
            }
            ZkEvent::Session(SessionEvent::Reconnected) => {
                // Events of the gap may be lost: read everything again.
                for event in [
                    ZkEvent::BrokersChanged,
                    ZkEvent::TopicsChanged,
                    ZkEvent::TopicDeletionsChanged,
                    ZkEvent::IsrChangesNotified,
                    ZkEvent::ControllerChanged,
                    ZkEvent::ConfigChanged,
                    ZkEvent::PreferredReplicaElection,
                    ZkEvent::ReassignmentChanged,
                ] {
                    Box::pin(self.zk_event(store, event)).await;
                }
            }
            ZkEvent::Session(_) => {}
        }
    }

    /// Feeds `/admin/reassign_partitions` to the controller, if active.
    async fn read_znode_reassignment(&mut self, store: &ZkStore) {
        if !self.controller.is_active() {
            return;
        }
        if let Some(input) = super::reassign::read_znode(store).await {
            let effects = self.controller.step(input);
            self.perform(store, effects).await;
        }
    }

    /// Registers again if this broker's registration vanished while its session lives (a
    /// peer's probe judged it dead by mistake).
    async fn check_own_registration(&mut self, store: &ZkStore) {
        let Ok(brokers) = store.brokers().await else {
            return;
        };
        let own = brokers.get(&self.id()).map(|b| b.broker_epoch);
        if own.is_none() || own != self.node.broker_epoch() {
            tracing::warn!("this broker's registration is gone; registering again");
            self.node.set_broker_epoch(None);
            self.register(store).await;
        }
    }

    /// `/controller` changed: resign if it names another broker, run for election if it is
    /// absent, and watch the controller's process if another broker holds it.
    async fn controller_changed(&mut self, store: &ZkStore) {
        let Some(current) = retry(|| async { store.controller().await }).await else {
            return;
        };
        if self.controller.is_active() && current != Some(self.id()) {
            let effects = self.controller.step(Input::ControllerChanged {
                controller: current,
            });
            self.perform(store, effects).await;
        }
        match current {
            None => self.elect(store).await,
            Some(id) if id == self.id() => {}
            Some(id) => self.monitor(store, id).await,
        }
    }

    async fn elect(&mut self, store: &ZkStore) {
        match store
            .elect_controller(self.id(), crate::clock::now_ms())
            .await
        {
            Ok(Election::Won(fence)) => {
                tracing::info!(controller_epoch = fence.epoch, "elected controller");
                if let Some((_, task)) = self.monitored.take() {
                    task.abort();
                }
                match self.snapshot(store, fence).await {
                    Ok(snapshot) => {
                        self.fence = Some(fence);
                        let mut channel = ControllerChannel::new(
                            ChannelSettings {
                                controller_id: self.id(),
                                request_timeout: Duration::from_millis(
                                    self.node.config.cluster.controller_socket_timeout_ms.max(1)
                                        as u64,
                                ),
                                retry_backoff: Duration::from_millis(100),
                            },
                            self.channel_tx.clone(),
                        );
                        for broker in &snapshot.brokers {
                            if let Some(addr) = broker_addr(&self.node.config, &broker.registration)
                            {
                                channel.add_broker(broker.registration.id, addr);
                            }
                        }
                        self.channel = Some(channel);
                        let effects = self.controller.step(Input::Elected(snapshot));
                        self.perform(store, effects).await;
                        self.preferred_replica_election(store).await;

                        self.read_znode_reassignment(store).await;
                    }
                    Err(error) => {
                        tracing::warn!(%error, "loading the cluster failed; resigning");
                        let _ = store.resign_controller(&fence).await;
                    }
                }
            }
            Ok(Election::Lost { controller }) => {
                if let Some(id) = controller {
                    self.monitor(store, id).await;
                }
            }
            Err(error) => tracing::warn!(%error, "controller election failed"),
        }
    }

    /// What a newly elected controller loads.
    async fn snapshot(
        &mut self,
        store: &ZkStore,
        fence: ControllerFence,
    ) -> Result<ClusterSnapshot, ZkError> {
        let brokers = read_brokers(store).await?;
        self.brokers_read(brokers.clone());
        let topics = read_topics(store, &self.node.live.current()).await?;
        self.topics_read(&topics);
        let (states, state_zxids) = store.all_partition_states_with_zxids().await?;
        let deleting = store
            .topics_marked_for_deletion()
            .await?
            .into_iter()
            .collect();
        Ok(ClusterSnapshot {
            controller_epoch: fence.epoch,
            controller_epoch_version: fence.epoch_zk_version,
            brokers,
            topics,
            states,
            state_zxids,
            deleting,
        })
    }

    fn brokers_read(&mut self, brokers: Vec<LiveBroker>) {
        self.live = brokers
            .into_iter()
            .map(|b| (b.registration.id, b))
            .collect();
        if let Some(channel) = self.channel.as_mut() {
            for id in channel.brokers() {
                if !self.live.contains_key(&id) {
                    channel.remove_broker(id);
                }
            }
            for broker in self.live.values() {
                if let Some(addr) = broker_addr(&self.node.config, &broker.registration) {
                    channel.add_broker(broker.registration.id, addr);
                }
            }
        }
    }

    fn topics_read(&mut self, topics: &BTreeMap<String, TopicInfo>) {
        for (name, info) in topics {
            self.topic_ids
                .insert(name.clone(), info.assignment.topic_id);
        }
    }

    /// Keeps a connection to controller `id`; when it closes and the controller's address
    /// refuses connections, reports it gone.
    async fn monitor(&mut self, store: &ZkStore, id: BrokerId) {
        if self
            .monitored
            .as_ref()
            .is_some_and(|(m, task)| *m == id && !task.is_finished())
        {
            return;
        }
        if let Some((_, task)) = self.monitored.take() {
            task.abort();
        }
        let Ok(brokers) = store.brokers().await else {
            return;
        };
        let Some(addr) = brokers
            .get(&id)
            .and_then(|b| broker_addr(&self.node.config, &b.registration))
        else {
            return;
        };
        let client_id = format!("strom-broker-{}-monitor", self.id());
        let gone = self.gone_tx.clone();
        let task = tokio::spawn(async move {
            loop {
                if let Ok(peer) = PeerConnection::connect(&addr, &client_id, PROBE_TIMEOUT).await {
                    peer.closed().await;
                }
                let Ok(socket) = tokio::net::lookup_host(&addr).await.map(|mut a| a.next()) else {
                    return;
                };
                let Some(socket) = socket else { return };
                if probe(socket, PROBE_TIMEOUT).await == Probe::Refused {
                    let _ = gone.send(ControllerGone { controller: id });
                    return;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
        self.monitored = Some((id, task));
    }

    async fn channel_event(&mut self, store: &ZkStore, event: ChannelEvent) {
        match event {
            ChannelEvent::StopReplicaDone { broker, topic } => {
                let effects = self
                    .controller
                    .step(Input::StopReplicaDone { broker, topic });
                self.perform(store, effects).await;
            }
            ChannelEvent::Answered {
                broker,
                request,
                error_code,
            } => {
                if error_code != 0 {
                    tracing::debug!(broker, request, error_code, "controller request refused");
                }
            }
            ChannelEvent::ConnectionLost { broker, addr } => {
                let Some(epoch) = self.live.get(&broker).map(|b| b.broker_epoch) else {
                    return;
                };
                let Ok(Some(socket)) = tokio::net::lookup_host(&addr).await.map(|mut a| a.next())
                else {
                    return;
                };
                if probe(socket, PROBE_TIMEOUT).await == Probe::Refused {
                    self.node.metadata.mark_gone(broker);
                    match store.delete_broker_registration(broker, epoch).await {
                        Ok(true) => tracing::warn!(
                            broker,
                            "broker's process is gone (connection refused); deleted its registration"
                        ),
                        Ok(false) => {}
                        Err(error) => tracing::warn!(%error, broker, "deleting a registration failed"),
                    }
                }
            }
        }
    }

    /// Performs the controller's effects, feeding the answers back, until none is left.
    async fn perform(&mut self, store: &ZkStore, effects: Vec<Effect>) {
        let mut queue: std::collections::VecDeque<Effect> = effects.into();
        while let Some(effect) = queue.pop_front() {
            if let Effect::WriteState {
                expected_version: None,
                controller_epoch_version,
                ..
            } = effect
            {
                let epoch = self.controller.controller_epoch().unwrap_or_default();
                if create_states::is_create(queue.front(), controller_epoch_version) {
                    for input in create_states::perform(store, epoch, effect, &mut queue).await {
                        queue.extend(self.controller.step(input));
                    }
                    continue;
                }
            }
            let input = match effect {
                Effect::WriteState {
                    partition,
                    expected_version,
                    state,
                    controller_epoch_version,
                } => {
                    let fence = ControllerFence {
                        epoch: self.controller.controller_epoch().unwrap_or_default(),
                        epoch_zk_version: controller_epoch_version,
                    };
                    let written = match expected_version {
                        None => store
                            .create_partition_states(
                                &partition.topic,
                                &BTreeMap::from([(partition.partition, state)]),
                                &fence,
                            )
                            .await
                            .map(|versions| {
                                versions.get(&partition.partition).copied().unwrap_or(0)
                            }),
                        Some(version) => {
                            store
                                .update_partition_state(&partition, &state, version, Some(&fence))
                                .await
                        }
                    };
                    match written {
                        Ok(version) => Some(Input::StateWritten { partition, version }),
                        Err(ZkError::ControllerMoved { .. }) => {
                            Some(Input::ControllerEpochMismatch)
                        }
                        Err(error) => {
                            tracing::debug!(%error, %partition.topic, partition.partition,
                                "partition state write conflicted");
                            Some(Input::StateWriteConflict { partition })
                        }
                    }
                }
                Effect::ReadStates { partitions } => {
                    // A failed read is not an absent znode: read until it answers, or until
                    // the session is gone (the controller then resigns).
                    let mut states = Vec::with_capacity(partitions.len());
                    let mut unanswered = false;
                    for partition in partitions {
                        match read_until_answered(|| store.partition_state(&partition)).await {
                            Some(state) => states.push((partition, state)),
                            None => {
                                unanswered = true;
                                break;
                            }
                        }
                    }
                    (!unanswered).then_some(Input::StatesRead { states })
                }
                Effect::SendLeaderAndIsr {
                    broker,
                    broker_epoch,
                    controller_epoch,
                    partitions,
                    leaders,
                } => {
                    let header = self.header(controller_epoch, broker_epoch);
                    let commands = self.commands(partitions);
                    let leaders: Vec<LeaderAddress> = leaders
                        .iter()
                        .filter_map(|l| self.leader_address(l))
                        .collect();
                    let request = leader_and_isr_request(header, &commands, &leaders);
                    self.send(broker, ControllerRequest::LeaderAndIsr(request));
                    None
                }
                Effect::SendUpdateMetadata {
                    broker,
                    broker_epoch,
                    controller_epoch,
                    brokers,
                    partitions,
                    deleted,
                } => {
                    let header = self.header(controller_epoch, broker_epoch);
                    let commands = self.commands(partitions);
                    let deleted: Vec<(TopicPartition, Uuid)> = deleted
                        .into_iter()
                        .map(|tp| {
                            let id = self.topic_ids.get(&tp.topic).copied().unwrap_or_default();
                            (tp, id)
                        })
                        .collect();
                    let request = update_metadata_request(header, &brokers, &commands, &deleted);
                    self.send(broker, ControllerRequest::UpdateMetadata(request));
                    None
                }
                Effect::SendStopReplica {
                    broker,
                    broker_epoch,
                    controller_epoch,
                    topic,
                    partitions,
                    delete,
                } => {
                    let header = self.header(controller_epoch, broker_epoch);
                    // Kafka's leader epochs for StopReplica: -2 while deleting, -1 for "any".
                    let epoch = if delete { -2 } else { -1 };
                    let partitions: Vec<(TopicPartition, i32, bool)> = partitions
                        .into_iter()
                        .map(|tp| (tp, epoch, delete))
                        .collect();
                    let request = stop_replica_request(header, &partitions);
                    self.send(broker, ControllerRequest::StopReplica { request, topic });
                    None
                }
                Effect::DeleteTopicZnodes {
                    topic,
                    controller_epoch_version,
                } => {
                    let fence = ControllerFence {
                        epoch: self.controller.controller_epoch().unwrap_or_default(),
                        epoch_zk_version: controller_epoch_version,
                    };
                    match store.delete_topic(&topic, &fence).await {
                        Ok(()) => None,
                        Err(ZkError::ControllerMoved { .. }) => {
                            Some(Input::ControllerEpochMismatch)
                        }
                        Err(error) => {
                            tracing::warn!(%error, topic, "deleting a topic's znodes failed");
                            None
                        }
                    }
                }
                effect @ (Effect::ControlledShutdownAnswer { .. }
                | Effect::DeletePreferredReplicaElection { .. }) => {
                    Box::pin(self.perform_duty(store, effect)).await
                }
                effect @ (Effect::WriteStateAndAssignment { .. }
                | Effect::WriteZnodeReassignment { .. }) => {
                    let epoch = self.controller.controller_epoch().unwrap_or_default();
                    super::reassign::perform(store, epoch, effect).await
                }
                Effect::Resigned => {
                    tracing::info!("no longer the controller");
                    self.duties.resigned();
                    self.fence = None;
                    if let Some(mut channel) = self.channel.take() {
                        channel.shutdown();
                    }
                    None
                }
            };
            if let Some(input) = input {
                queue.extend(self.controller.step(input));
            }
        }
        self.node.publish_controller(&self.controller);
    }

    fn header(&self, controller_epoch: i32, broker_epoch: i64) -> ControllerHeader {
        ControllerHeader {
            controller_id: self.id(),
            controller_epoch,
            broker_epoch,
        }
    }

    fn commands(&self, partitions: Vec<PartitionInfo>) -> Vec<PartitionCommand> {
        partitions
            .into_iter()
            .map(|info| PartitionCommand {
                topic_id: self
                    .topic_ids
                    .get(&info.partition.topic)
                    .copied()
                    .unwrap_or_default(),
                is_new: info.state.version == 0 && info.state.value.leader_epoch == 0,
                info,
            })
            .collect()
    }

    fn leader_address(&self, leader: &BrokerRegistration) -> Option<LeaderAddress> {
        let addr = broker_addr(&self.node.config, leader)?;
        let (host, port) = addr.rsplit_once(':')?;
        Some(LeaderAddress {
            id: leader.id,
            host: host.to_string(),
            port: port.parse().ok()?,
        })
    }

    fn send(&self, broker: BrokerId, request: ControllerRequest) {
        let sent = self
            .channel
            .as_ref()
            .is_some_and(|channel| channel.send(broker, request));
        if !sent {
            tracing::debug!(broker, "no channel to broker; request dropped");
        }
    }
}
