//! The ZooKeeper side of a simulated broker: the operations it sends, how the model server
//! answers them (in the cores' input types), watches and session loss.

use strom_meta::controller;
use strom_meta::replica;
use strom_meta::replication::{BrokerId, BrokerRegistration, LeaderAndIsr, TopicPartition};

use super::zk::{SessionId, Watch, WriteError};
use super::{Event, World};

/// Operations a broker sends to ZooKeeper.
#[derive(Debug)]
pub enum ZkOp {
    Register,
    Elect,
    ControllerWrite {
        partition: TopicPartition,
        expected: Option<i32>,
        state: LeaderAndIsr,
        epoch_version: i32,
    },
    ControllerRead {
        partitions: Vec<TopicPartition>,
    },
    IsrWrite {
        partition: TopicPartition,
        expected: i32,
        state: LeaderAndIsr,
    },
    IsrReload {
        partition: TopicPartition,
    },
    ReadBrokers,
    ReadTopics,
    TakeIsrChanges,
    ReadDeletions,
    DeleteTopicZnodes {
        topic: String,
        epoch_version: i32,
    },
    /// Reassignment: a step's `multi`, the znode's rewrite, and its read (`reassign.rs`).
    Reassign(super::reassign::ReassignOp),
}

/// ZooKeeper's answers, already in the cores' input types where they have one.
#[derive(Debug)]
pub enum ZkReply {
    Registered(Result<i64, ()>),
    Elected(Option<controller::ClusterSnapshot>),
    Controller(controller::Input),
    Controllers(Vec<controller::Input>),
    Replica(TopicPartition, replica::Input),
    SessionExpired { session: SessionId },
}

impl World {
    pub(super) fn apply_zk(
        &mut self,
        from: BrokerId,
        session: SessionId,
        op: ZkOp,
    ) -> Option<ZkReply> {
        use controller::Input as C;
        Some(match op {
            ZkOp::Register => {
                let registration = BrokerRegistration {
                    id: from,
                    endpoints: Vec::new(),
                    rack: None,
                };
                let result = self.zk.register(session, registration);
                if result.is_ok() {
                    self.fire(vec![Watch::Brokers]);
                }
                ZkReply::Registered(result)
            }
            ZkOp::Elect => {
                let snapshot = self.zk.elect(session, from);
                if snapshot.is_some() {
                    self.checker.stats.controller_elections += 1;
                    self.fire(vec![Watch::Controller]);
                }
                ZkReply::Elected(snapshot)
            }
            ZkOp::ControllerWrite {
                partition,
                expected,
                state,
                epoch_version,
            } => {
                let result =
                    self.zk
                        .controller_write(&partition, expected, state.clone(), epoch_version);
                if result.is_ok() {
                    let replicas = self.replicas_of(&partition);
                    self.checker.state_written(&partition, &state, &replicas);
                }
                ZkReply::Controller(match result {
                    Ok(version) => C::StateWritten { partition, version },
                    Err(WriteError::Conflict) => C::StateWriteConflict { partition },
                    Err(WriteError::ControllerMoved) => C::ControllerEpochMismatch,
                })
            }
            ZkOp::ControllerRead { partitions } => {
                let states = partitions.into_iter().map(|p| {
                    let state = self.zk.state(&p);
                    (p, state)
                });
                ZkReply::Controller(C::StatesRead {
                    states: states.collect(),
                })
            }
            ZkOp::IsrWrite {
                partition,
                expected,
                state,
            } => {
                self.checker.stats.isr_writes += 1;
                let result = self.zk.leader_write(&partition, expected, state.clone());
                let input = match result {
                    Ok(version) => {
                        let replicas = self.replicas_of(&partition);
                        self.checker.state_written(&partition, &state, &replicas);
                        self.fire(vec![Watch::IsrChange]);
                        replica::Input::IsrWritten { version }
                    }
                    Err(()) => {
                        self.checker.stats.isr_conflicts += 1;
                        replica::Input::IsrWriteConflict
                    }
                };
                ZkReply::Replica(partition, input)
            }
            ZkOp::IsrReload { partition } => {
                let state = self.zk.state(&partition)?;
                ZkReply::Replica(partition, replica::Input::StateReloaded { state })
            }
            ZkOp::ReadBrokers => ZkReply::Controller(C::BrokersChanged {
                brokers: self.zk.live_brokers(),
            }),
            ZkOp::ReadTopics => ZkReply::Controller(C::TopicsChanged {
                topics: self.zk.topics().clone(),
            }),
            ZkOp::ReadDeletions => {
                let inputs = self.zk.deletions().into_iter();
                let inputs = inputs.map(|topic| C::TopicDeletionRequested { topic });
                ZkReply::Controllers(inputs.collect())
            }
            ZkOp::DeleteTopicZnodes {
                topic,
                epoch_version,
            } => match self.zk.delete_topic(&topic, epoch_version) {
                Ok(()) => {
                    self.checker.stats.deletions += 1;
                    self.fire(vec![Watch::Topics]);
                    return None;
                }
                Err(_) => ZkReply::Controller(C::ControllerEpochMismatch),
            },
            ZkOp::Reassign(op) => return self.apply_reassign_op(op),
            ZkOp::TakeIsrChanges => {
                let partitions = self.zk.take_isr_changes();
                if partitions.is_empty() {
                    return None;
                }
                ZkReply::Controller(C::IsrChangeNotification { partitions })
            }
        })
    }

    pub(super) fn replicas_of(&self, partition: &TopicPartition) -> Vec<BrokerId> {
        self.zk
            .topics()
            .get(&partition.topic)
            .and_then(|t| t.assignment.partitions.get(&partition.partition))
            .cloned()
            .unwrap_or_default()
    }

    pub(super) fn zk_reply(&mut self, to: BrokerId, reply: ZkReply) {
        match reply {
            ZkReply::Registered(Ok(czxid)) => {
                let broker = self.brokers.get_mut(&to).expect("known");
                broker.registered = true;
                broker.broker_epoch = Some(czxid);
                self.zk_op(to, ZkOp::Elect);
            }
            ZkReply::Registered(Err(())) => {
                // The previous session's registration is still there: try again later.
                let incarnation = self.brokers[&to].incarnation;
                self.schedule(
                    100,
                    Event::Register {
                        broker: to,
                        incarnation,
                    },
                );
            }
            ZkReply::Elected(Some(snapshot)) => {
                self.controller_step(to, controller::Input::Elected(snapshot));
                self.zk_op(to, ZkOp::Reassign(super::reassign::ReassignOp::Read));
            }
            ZkReply::Elected(None) => {}
            ZkReply::Controller(input) => self.controller_step(to, input),
            ZkReply::Controllers(inputs) => {
                for input in inputs {
                    self.controller_step(to, input);
                }
            }
            ZkReply::Replica(partition, input) => {
                self.replica_step(to, &partition, input);
            }
            ZkReply::SessionExpired { session } => self.session_lost(to, session),
        }
    }

    pub(super) fn watch(&mut self, to: BrokerId, watch: Watch) {
        let active = self.brokers[&to].controller.is_active();
        match watch {
            Watch::Brokers if active => self.zk_op(to, ZkOp::ReadBrokers),
            Watch::Topics if active => self.zk_op(to, ZkOp::ReadTopics),
            Watch::IsrChange if active => self.zk_op(to, ZkOp::TakeIsrChanges),
            Watch::DeleteTopics if active => self.zk_op(to, ZkOp::ReadDeletions),
            Watch::Reassign if active => {
                self.zk_op(to, ZkOp::Reassign(super::reassign::ReassignOp::Read))
            }
            Watch::Controller => {
                let controller = self.zk.controller();
                self.controller_step(to, controller::Input::ControllerChanged { controller });
                if controller.is_none() && self.brokers[&to].registered {
                    self.zk_op(to, ZkOp::Elect);
                }
            }
            _ => {}
        }
    }

    /// The broker learns its session expired: it resigns as controller and registers again
    /// with a new session (its replicas keep their state until the controller says otherwise).
    pub(super) fn session_lost(&mut self, to: BrokerId, session: SessionId) {
        if self.brokers[&to].session != Some(session) {
            return;
        }
        self.controller_step(to, controller::Input::SessionExpired);
        let new_session = self.zk.new_session();
        let broker = self.brokers.get_mut(&to).expect("known");
        broker.session = Some(new_session);
        broker.registered = false;
        self.zk_op(to, ZkOp::Register);
    }
}
