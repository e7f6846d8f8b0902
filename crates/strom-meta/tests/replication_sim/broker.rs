//! A simulated broker: the shell around the pure cores. It keeps logs (which survive a crash
//! up to their durable prefix), applies controller requests behind a `ControllerEpochFence`,
//! follows leaders (OffsetForLeaderEpoch, truncation, fetch, fsync before the next fetch),
//! serves produces and follower fetches, and performs the cores' effects through ZooKeeper
//! and the router.

use std::collections::{BTreeMap, BTreeSet};

use strom_meta::controller::{self, Controller, ControllerEpochFence, FenceRefusal, PartitionInfo};
use strom_meta::replica::{self, Acks, PartitionReplica, ReplicaError, Role};
use strom_meta::replication::{BrokerId, LeaderAndIsr, TopicPartition};

use super::log::{Log, Record};
use super::zk::SessionId;
use super::zk_ops::ZkOp;
use super::{Event, World};

/// Messages between brokers and from clients.
#[derive(Debug)]
pub enum Msg {
    Produce {
        partition: TopicPartition,
        payload: u64,
    },
    Fetch {
        from: BrokerId,
        partition: TopicPartition,
        fetch_offset: i64,
        epoch: i32,
        request: u64,
    },
    FetchResponse {
        partition: TopicPartition,
        request: u64,
        fetch_offset: i64,
        result: Result<(Vec<Record>, i64), ReplicaError>,
    },
    EpochQuery {
        from: BrokerId,
        partition: TopicPartition,
        epoch: i32,
        requested: i32,
        request: u64,
    },
    EpochAnswer {
        partition: TopicPartition,
        request: u64,
        result: Result<(i32, i64), ReplicaError>,
    },
    LeaderAndIsr {
        controller_epoch: i32,
        broker_epoch: i64,
        partitions: Vec<PartitionInfo>,
    },
    UpdateMetadata {
        controller_epoch: i32,
        broker_epoch: i64,
        partitions: Vec<PartitionInfo>,
        deleted: Vec<TopicPartition>,
    },
    StopReplica {
        controller: BrokerId,
        controller_epoch: i32,
        broker_epoch: i64,
        topic: String,
        partitions: Vec<TopicPartition>,
        delete: bool,
    },
    /// A stopping broker asks the controller to move its leadership away.
    ControlledShutdown {
        from: BrokerId,
        broker_epoch: i64,
    },
    /// The controller's answer to it.
    ControlledShutdownAnswer {
        error_code: i16,
        remaining: Vec<TopicPartition>,
    },
    StopReplicaDone {
        broker: BrokerId,
        topic: String,
    },
}

/// Where a follower is in following its leader.
#[derive(Clone, Debug)]
pub struct Following {
    pub leader: BrokerId,
    pub epoch: i32,
    pub truncated: bool,
    /// The request id being waited for.
    pub request: u64,
}

pub struct Broker {
    pub id: BrokerId,
    pub alive: bool,
    pub incarnation: u64,
    pub session: Option<SessionId>,
    pub registered: bool,
    /// The czxid of its current registration, once registered.
    pub broker_epoch: Option<i64>,
    /// On disk: survives restarts up to each log's durable prefix.
    pub logs: BTreeMap<TopicPartition, Log>,
    pub replicas: BTreeMap<TopicPartition, PartitionReplica>,
    pub following: BTreeMap<TopicPartition, Following>,
    /// The last high watermark learned for each partition (a leader's own, or from fetches).
    pub high_watermark: BTreeMap<TopicPartition, i64>,
    pub fence: ControllerEpochFence,
    pub controller: Controller,
    pub metadata: BTreeMap<TopicPartition, LeaderAndIsr>,
    /// Appended produces waiting for their answer: payload → (partition, offset, epoch).
    pub in_flight: BTreeMap<u64, (TopicPartition, i64, i32)>,
    pub fsync_scheduled: BTreeSet<TopicPartition>,
    pub next_request: u64,
}

impl Broker {
    pub fn new(id: BrokerId) -> Broker {
        Broker {
            id,
            alive: false,
            incarnation: 0,
            session: None,
            registered: false,
            broker_epoch: None,
            logs: BTreeMap::new(),
            replicas: BTreeMap::new(),
            following: BTreeMap::new(),
            high_watermark: BTreeMap::new(),
            fence: ControllerEpochFence::default(),
            controller: new_controller(id),
            metadata: BTreeMap::new(),
            in_flight: BTreeMap::new(),
            fsync_scheduled: BTreeSet::new(),
            next_request: 0,
        }
    }

    /// kill -9: memory is gone, each log keeps its durable prefix; returns the session that
    /// ZooKeeper will expire.
    pub fn kill(&mut self) -> Option<SessionId> {
        self.alive = false;
        self.incarnation += 1;
        for log in self.logs.values_mut() {
            log.crash();
        }
        for (partition, hw) in self.high_watermark.iter_mut() {
            *hw = (*hw).min(self.logs.get(partition).map_or(0, Log::end_offset));
        }
        self.replicas.clear();
        self.following.clear();
        self.fence = ControllerEpochFence::default();
        self.controller = new_controller(self.id);
        self.metadata.clear();
        self.in_flight.clear();
        self.fsync_scheduled.clear();
        self.registered = false;
        self.broker_epoch = None;
        self.session.take()
    }

    pub fn restart(&mut self, session: SessionId) {
        self.alive = true;
        self.incarnation += 1;
        self.session = Some(session);
    }
}

/// A broker's controller, with the leader balance checked every 250 ms (Kafka's 300 s, scaled
/// down with everything else).
fn new_controller(id: BrokerId) -> Controller {
    let mut controller = Controller::new(id);
    controller.set_leader_balance(strom_meta::config::LeaderBalanceSettings {
        enable: true,
        imbalance_percentage: 10,
        check_interval_ms: 250,
    });
    controller
}

impl World {
    pub(super) fn tick(&mut self, broker: BrokerId) {
        let now_ms = self.now;
        self.controller_step(broker, controller::Input::Tick { now_ms });
        let partitions: Vec<TopicPartition> =
            self.brokers[&broker].replicas.keys().cloned().collect();
        for partition in partitions {
            self.replica_step(broker, &partition, replica::Input::Tick);
        }
    }

    pub(super) fn fsync(&mut self, id: BrokerId, partition: &TopicPartition) {
        let broker = self.brokers.get_mut(&id).expect("known");
        broker.fsync_scheduled.remove(partition);
        let Some(log) = broker.logs.get_mut(partition) else {
            return; // deleted meanwhile
        };
        log.sync();
        let end_offset = log.durable as i64;
        if broker.replicas.contains_key(partition) {
            self.replica_step(id, partition, replica::Input::LocalDurable { end_offset });
        }
    }

    pub(super) fn controller_step(&mut self, id: BrokerId, input: controller::Input) {
        let effects = self
            .brokers
            .get_mut(&id)
            .expect("known")
            .controller
            .step(input);
        self.controller_effects(id, effects);
    }

    /// An admin's preferred election for every partition, through broker `id`'s controller if
    /// it is active (ElectLeaders; a non-controller would answer NOT_CONTROLLER).
    pub(super) fn elect_preferred(&mut self, id: BrokerId) {
        let controller = &mut self.brokers.get_mut(&id).expect("known").controller;
        let kind = controller::ElectionType::Preferred;
        if let Some((outcomes, effects)) = controller.elect_leaders(None, kind) {
            self.trace(|| format!("  controller {id}: elect preferred {outcomes:?}"));
            let started = controller::ElectionOutcome::Started;
            self.checker.stats.preferred_elections +=
                outcomes.iter().filter(|(_, o)| *o == started).count() as u64;
            self.controller_effects(id, effects);
        }
    }

    pub(super) fn controller_effects(&mut self, id: BrokerId, effects: Vec<controller::Effect>) {
        use controller::Effect as E;
        for effect in effects {
            self.trace(|| format!("  controller {id}: {effect:?}"));
            match effect {
                E::WriteState {
                    partition,
                    expected_version,
                    state,
                    controller_epoch_version,
                } => {
                    let op = ZkOp::ControllerWrite {
                        partition,
                        expected: expected_version,
                        state,
                        epoch_version: controller_epoch_version,
                    };
                    self.zk_op(id, op);
                }
                E::ReadStates { partitions } => self.zk_op(id, ZkOp::ControllerRead { partitions }),
                E::SendLeaderAndIsr {
                    broker,
                    broker_epoch,
                    controller_epoch,
                    partitions,
                    ..
                } => {
                    let msg = Msg::LeaderAndIsr {
                        controller_epoch,
                        broker_epoch,
                        partitions,
                    };
                    self.send_controller(id, broker, msg);
                }
                E::SendUpdateMetadata {
                    broker,
                    broker_epoch,
                    controller_epoch,
                    partitions,
                    deleted,
                    ..
                } => {
                    let msg = Msg::UpdateMetadata {
                        controller_epoch,
                        broker_epoch,
                        partitions,
                        deleted,
                    };
                    self.send_controller(id, broker, msg);
                }
                E::SendStopReplica {
                    broker,
                    broker_epoch,
                    controller_epoch,
                    topic,
                    partitions,
                    delete,
                } => {
                    let msg = Msg::StopReplica {
                        controller: id,
                        controller_epoch,
                        broker_epoch,
                        topic,
                        partitions,
                        delete,
                    };
                    self.send_controller(id, broker, msg);
                }
                E::DeleteTopicZnodes {
                    topic,
                    controller_epoch_version,
                } => {
                    let op = ZkOp::DeleteTopicZnodes {
                        topic,
                        epoch_version: controller_epoch_version,
                    };
                    self.zk_op(id, op);
                }
                E::WriteStateAndAssignment {
                    partition,
                    expected_version,
                    state,
                    assignment,
                    controller_epoch_version,
                } => {
                    let op = super::reassign::ReassignOp::Step {
                        partition,
                        expected: expected_version,
                        state,
                        assignment,
                        epoch_version: controller_epoch_version,
                    };
                    self.zk_op(id, ZkOp::Reassign(op));
                }
                E::WriteZnodeReassignment {
                    remaining,
                    controller_epoch_version,
                } => {
                    let op = super::reassign::ReassignOp::Rewrite {
                        remaining,
                        epoch_version: controller_epoch_version,
                    };
                    self.zk_op(id, ZkOp::Reassign(op));
                }
                E::Resigned => {}
                E::ControlledShutdownAnswer {
                    broker,
                    error_code,
                    remaining,
                } => {
                    let msg = Msg::ControlledShutdownAnswer {
                        error_code,
                        remaining,
                    };
                    self.send_controller(id, broker, msg);
                }
                E::DeletePreferredReplicaElection { .. } => {
                    self.checker.stats.preferred_znode_elections += 1;
                }
            }
        }
    }

    /// Steps a replica and performs its effects; returns the fetch answers for the caller.
    pub(super) fn replica_step(
        &mut self,
        id: BrokerId,
        partition: &TopicPartition,
        input: replica::Input,
    ) -> Vec<replica::Effect> {
        use replica::Effect as E;
        let now = self.now;
        let broker = self.brokers.get_mut(&id).expect("known");
        let Some(replica) = broker.replicas.get_mut(partition) else {
            return Vec::new();
        };
        let was_leader = replica.role() == &Role::Leader;
        let effects = replica.step(input, now);
        let (role, epoch, high_watermark) = (
            replica.role().clone(),
            replica.leader_epoch(),
            replica.high_watermark(),
        );
        let fenced = effects.contains(&E::Fenced);
        if role == Role::Leader {
            if !was_leader {
                broker.following.remove(partition);
                let log = broker.logs.entry(partition.clone()).or_default();
                self.checker.became_leader(id, partition, epoch, log);
            }
            self.checker
                .leader_high_watermark(id, partition, was_leader, high_watermark);
        } else {
            self.checker.not_leader(id, partition);
        }
        let mut rest = Vec::new();
        for effect in effects {
            match effect {
                E::Produced { produce_id, result } => {
                    let broker = self.brokers.get_mut(&id).expect("known");
                    let Some((_, offset, record_epoch)) = broker.in_flight.remove(&produce_id)
                    else {
                        continue;
                    };
                    match result {
                        Ok(()) => {
                            assert!(
                                role == Role::Leader && !fenced,
                                "{partition}: broker {id} acknowledged while {role:?}"
                            );
                            self.trace(|| format!("  ack {partition} offset {offset} epoch {record_epoch} from {id}"));
                            self.checker.acknowledged(
                                partition,
                                offset,
                                (record_epoch, produce_id),
                            );
                            self.check_partition_leaders(partition);
                        }
                        Err(ReplicaError::NotEnoughReplicasAfterAppend) => {
                            self.checker.stats.after_append_errors += 1
                        }
                        Err(_) => {}
                    }
                }
                E::HighWatermark { offset } => {
                    let broker = self.brokers.get_mut(&id).expect("known");
                    broker.high_watermark.insert(partition.clone(), offset);
                    let log = broker.logs.get(partition).expect("a leader has a log");
                    self.checker
                        .high_watermark_exposed(id, partition, epoch, offset, log);
                }
                E::WriteIsr {
                    expected_version,
                    state,
                } => {
                    self.zk_op(
                        id,
                        ZkOp::IsrWrite {
                            partition: partition.clone(),
                            expected: expected_version,
                            state,
                        },
                    );
                }
                E::ReloadState => self.zk_op(
                    id,
                    ZkOp::IsrReload {
                        partition: partition.clone(),
                    },
                ),
                E::Fenced => {
                    self.checker.stats.fenced += 1;
                    self.trace(|| format!("  {partition}: broker {id} fenced"));
                }
                fetch @ (E::FetchAccepted { .. } | E::FetchRefused { .. }) => rest.push(fetch),
            }
        }
        rest
    }

    /// Every current leader of `partition` holds every acknowledged record of its epochs.
    fn check_partition_leaders(&self, partition: &TopicPartition) {
        for broker in self.brokers.values().filter(|b| b.alive) {
            if let Some(replica) = broker.replicas.get(partition) {
                if replica.role() == &Role::Leader {
                    let log = broker.logs.get(partition).expect("a leader has a log");
                    self.checker
                        .check_log(broker.id, partition, replica.leader_epoch(), log);
                }
            }
        }
    }

    pub(super) fn check_all_leaders(&self) {
        let partitions: BTreeSet<TopicPartition> = self.zk.states().keys().cloned().collect();
        for partition in &partitions {
            self.check_partition_leaders(partition);
        }
    }

    pub(super) fn deliver(&mut self, to: BrokerId, msg: Msg) {
        let Some(msg) = self.accept_controller_request(to, msg) else {
            return;
        };
        match msg {
            Msg::Produce { partition, payload } => self.produce_at(to, partition, payload),
            Msg::Fetch {
                from,
                partition,
                fetch_offset,
                epoch,
                request,
            } => {
                let input = replica::Input::FollowerFetch {
                    replica_id: from,
                    fetch_offset,
                    current_leader_epoch: epoch,
                };
                let answers = if self.brokers[&to].replicas.contains_key(&partition) {
                    self.replica_step(to, &partition, input)
                } else {
                    vec![replica::Effect::FetchRefused {
                        replica_id: from,
                        error: ReplicaError::NotLeaderOrFollower,
                    }]
                };
                for answer in answers {
                    let result = match answer {
                        replica::Effect::FetchAccepted { high_watermark, .. } => {
                            let log = &self.brokers[&to].logs[&partition];
                            let end = (fetch_offset as usize + 8).min(log.records.len());
                            Ok((
                                log.records[fetch_offset as usize..end].to_vec(),
                                high_watermark,
                            ))
                        }
                        replica::Effect::FetchRefused { error, .. } => Err(error),
                        _ => unreachable!("only fetch answers are returned"),
                    };
                    self.send(
                        to,
                        from,
                        Msg::FetchResponse {
                            partition: partition.clone(),
                            request,
                            fetch_offset,
                            result,
                        },
                    );
                }
            }
            Msg::FetchResponse {
                partition,
                request,
                fetch_offset,
                result,
            } => {
                self.fetch_response(to, partition, request, fetch_offset, result);
            }
            Msg::EpochQuery {
                from,
                partition,
                epoch,
                requested,
                request,
            } => {
                let broker = &self.brokers[&to];
                let result = match broker.replicas.get(&partition) {
                    Some(r) if r.role() == &Role::Leader && epoch < r.leader_epoch() => {
                        Err(ReplicaError::FencedLeaderEpoch)
                    }
                    Some(r) if r.role() == &Role::Leader && epoch > r.leader_epoch() => {
                        Err(ReplicaError::UnknownLeaderEpoch)
                    }
                    Some(r) if r.role() == &Role::Leader => {
                        Ok(broker.logs[&partition].end_offset_for_epoch(requested))
                    }
                    _ => Err(ReplicaError::NotLeaderOrFollower),
                };
                self.send(
                    to,
                    from,
                    Msg::EpochAnswer {
                        partition,
                        request,
                        result,
                    },
                );
            }
            Msg::EpochAnswer {
                partition,
                request,
                result,
            } => {
                let broker = self.brokers.get_mut(&to).expect("known");
                let Some(following) = broker.following.get_mut(&partition) else {
                    return;
                };
                if following.request != request || following.truncated {
                    return;
                }
                let Ok(answer) = result else {
                    return; // the timer asks again
                };
                let log = broker.logs.entry(partition.clone()).or_default();
                let (point, complete) = log.truncation_point(answer);
                if point < log.end_offset() {
                    self.checker.stats.truncations += 1;
                }
                log.truncate_to(point);
                following.truncated = complete;
                self.trace(|| {
                    format!("  {partition}: broker {to} truncated to {point} ({answer:?}, complete: {complete})")
                });
                self.next_follower_request(to, &partition, 0);
            }
            Msg::LeaderAndIsr {
                controller_epoch: _,
                broker_epoch: _,
                partitions,
            } => {
                for info in partitions {
                    self.leader_and_isr(to, info);
                }
            }
            Msg::UpdateMetadata {
                controller_epoch: _,
                broker_epoch: _,
                partitions,
                deleted,
            } => {
                let broker = self.brokers.get_mut(&to).expect("known");
                for info in partitions {
                    broker.metadata.insert(info.partition, info.state.value);
                }
                for partition in deleted {
                    broker.metadata.remove(&partition);
                }
            }
            Msg::StopReplica {
                controller,
                controller_epoch: _,
                broker_epoch: _,
                topic,
                partitions,
                delete,
            } => {
                for partition in partitions {
                    if delete {
                        self.delete_replica(to, &partition);
                        self.reassign_strays.remove(&(to, partition));
                    } else {
                        self.stop_replica(to, &partition);
                    }
                }
                if delete {
                    let done = Msg::StopReplicaDone { broker: to, topic };
                    self.send_controller(to, controller, done);
                }
            }
            Msg::ControlledShutdown { from, broker_epoch } => {
                let input = controller::Input::ControlledShutdown {
                    broker: from,
                    broker_epoch,
                };
                self.controller_step(to, input);
            }
            Msg::ControlledShutdownAnswer {
                error_code,
                remaining,
            } => self.shutdown_answered(to, error_code, remaining),
            Msg::StopReplicaDone { broker, topic } => {
                self.controller_step(to, controller::Input::StopReplicaDone { broker, topic });
            }
        }
    }

    /// The broker's fence: controller epoch and broker epoch (its current registration). A
    /// request it cannot serve yet is delivered again a little later, as Kafka's controller
    /// channel re-sends until the broker takes it.
    fn accept_controller_request(&mut self, to: BrokerId, msg: Msg) -> Option<Msg> {
        let (controller_epoch, broker_epoch) = match &msg {
            Msg::LeaderAndIsr {
                controller_epoch,
                broker_epoch,
                ..
            }
            | Msg::UpdateMetadata {
                controller_epoch,
                broker_epoch,
                ..
            }
            | Msg::StopReplica {
                controller_epoch,
                broker_epoch,
                ..
            } => (*controller_epoch, *broker_epoch),
            _ => return Some(msg),
        };
        let broker = self.brokers.get_mut(&to).expect("known");
        let (registered, incarnation) = (broker.broker_epoch, broker.incarnation);
        match broker
            .fence
            .accept(controller_epoch, broker_epoch, registered)
        {
            Ok(()) => Some(msg),
            Err(FenceRefusal::NotReady) => {
                self.schedule(
                    5,
                    Event::Deliver {
                        to,
                        incarnation,
                        msg,
                    },
                );
                None
            }
            Err(refusal) => {
                self.trace(|| format!("  broker {to} refused a controller request: {refusal:?}"));
                None
            }
        }
    }

    /// StopReplica without deletion (controlled shutdown): the replica stops leading or
    /// following; its log stays.
    fn stop_replica(&mut self, id: BrokerId, partition: &TopicPartition) {
        self.replica_step(id, partition, replica::Input::Stop);
        self.checker.not_leader(id, partition);
        let broker = self.brokers.get_mut(&id).expect("known");
        broker.replicas.remove(partition);
        broker.following.remove(partition);
        broker.in_flight.retain(|_, (p, _, _)| p != partition);
    }

    /// StopReplica(delete): the replica stops (failing what waits) and its log is removed.
    fn delete_replica(&mut self, id: BrokerId, partition: &TopicPartition) {
        self.replica_step(id, partition, replica::Input::Stop);
        self.checker.not_leader(id, partition);
        let broker = self.brokers.get_mut(&id).expect("known");
        broker.replicas.remove(partition);
        broker.following.remove(partition);
        broker.logs.remove(partition);
        broker.high_watermark.remove(partition);
        broker.metadata.remove(partition);
        broker.fsync_scheduled.remove(partition);
        broker.in_flight.retain(|_, (p, _, _)| p != partition);
    }

    fn produce_at(&mut self, to: BrokerId, partition: TopicPartition, payload: u64) {
        let broker = self.brokers.get_mut(&to).expect("known");
        let Some(replica) = broker.replicas.get(&partition) else {
            return;
        };
        match replica.check_produce(Acks::All) {
            Ok(()) => {}
            Err(ReplicaError::NotEnoughReplicas) => {
                self.checker.stats.refused_not_enough_replicas += 1;
                return;
            }
            Err(_) => return,
        }
        let epoch = replica.leader_epoch();
        let log = broker.logs.entry(partition.clone()).or_default();
        log.append((epoch, payload));
        let offset = log.end_offset() - 1;
        broker
            .in_flight
            .insert(payload, (partition.clone(), offset, epoch));
        let schedule_fsync = broker.fsync_scheduled.insert(partition.clone());
        let incarnation = broker.incarnation;
        let input = replica::Input::Appended {
            produce_id: payload,
            end_offset: offset + 1,
            acks: Acks::All,
        };
        self.replica_step(to, &partition, input);
        if schedule_fsync {
            let delay = 1 + self.below(4);
            self.schedule(
                delay,
                Event::Fsync {
                    broker: to,
                    incarnation,
                    partition,
                },
            );
        }
    }
}
