//! Partition reassignments in the simulation: an admin asks for moves (AlterPartitionReassignments
//! through whichever broker is the controller, or the `/admin/reassign_partitions` znode) and
//! cancels, sometimes killing the controller right after; ZooKeeper applies the controller's
//! reassignment `multi`s; at the end every reassignment has finished and each one last asked
//! for through the API reached its target.

use strom_meta::controller::{self, ReassignOutcome};
use strom_meta::replication::{BrokerId, LeaderAndIsr, TopicAssignment, TopicPartition};

use super::zk::{Watch, WriteError};
use super::zk_ops::ZkReply;
use super::{Event, World};

/// The controller's reassignment operations on ZooKeeper.
#[derive(Debug)]
pub enum ReassignOp {
    Step {
        partition: TopicPartition,
        expected: i32,
        state: LeaderAndIsr,
        assignment: TopicAssignment,
        epoch_version: i32,
    },
    Rewrite {
        remaining: Vec<(TopicPartition, Vec<BrokerId>)>,
        epoch_version: i32,
    },
    Read,
}

impl World {
    pub(super) fn apply_reassign_op(&mut self, op: ReassignOp) -> Option<ZkReply> {
        use controller::Input as C;
        Some(match op {
            ReassignOp::Step {
                partition,
                expected,
                state,
                assignment,
                epoch_version,
            } => {
                for (index, moving) in assignment
                    .adding_replicas
                    .iter()
                    .chain(assignment.removing_replicas.iter())
                {
                    let all = &assignment.partitions[index];
                    assert!(
                        moving.iter().all(|r| all.contains(r)),
                        "{}-{index}: moving replicas {moving:?} outside {all:?}",
                        partition.topic
                    );
                }
                let before = self.replicas_of(&partition);
                let after = assignment.partitions[&partition.partition].clone();
                let result = self.zk.controller_write_assigned(
                    &partition,
                    expected,
                    state.clone(),
                    assignment,
                    epoch_version,
                );
                if result.is_ok() {
                    for broker in before.into_iter().filter(|b| !after.contains(b)) {
                        self.reassign_strays.insert((broker, partition.clone()));
                    }
                    for &broker in &after {
                        self.reassign_strays.remove(&(broker, partition.clone()));
                    }
                    self.reassign_confirmed(&partition);
                    self.checker.stats.reassign_steps += 1;
                    let replicas = self.replicas_of(&partition);
                    self.checker.state_written(&partition, &state, &replicas);
                }
                ZkReply::Controller(match result {
                    Ok(version) => C::StateWritten { partition, version },
                    Err(WriteError::Conflict) => C::StateWriteConflict { partition },
                    Err(WriteError::ControllerMoved) => C::ControllerEpochMismatch,
                })
            }
            ReassignOp::Rewrite {
                remaining,
                epoch_version,
            } => match self.zk.set_reassign(remaining, epoch_version) {
                Ok(()) => {
                    self.fire(vec![Watch::Reassign]);
                    return None;
                }
                Err(_) => ZkReply::Controller(C::ControllerEpochMismatch),
            },
            ReassignOp::Read => ZkReply::Controller(C::ZnodeReassignment {
                partitions: self.zk.reassign.clone().unwrap_or_default(),
            }),
        })
    }

    /// The admin's next request, until `until`.
    pub(super) fn reassign_event(&mut self, until: u64) {
        if self.now < until {
            let delay = 100 + self.below(400);
            self.schedule(delay, Event::Reassign);
        } else {
            return;
        }
        let partitions: Vec<(TopicPartition, usize)> = self
            .zk
            .topics()
            .iter()
            .filter(|(t, _)| !self.zk.deletions().contains(t))
            .flat_map(|(t, info)| {
                info.assignment
                    .partitions
                    .keys()
                    .map(|&p| {
                        (
                            TopicPartition::new(t.clone(), p),
                            info.assignment.target(p).len(),
                        )
                    })
                    .collect::<Vec<_>>()
            })
            .collect();
        if partitions.is_empty() {
            return;
        }
        let (partition, rf) = partitions[self.below(partitions.len() as u64) as usize].clone();
        let mut ids: Vec<BrokerId> = self.brokers.keys().copied().collect();
        let size = match self.below(4) {
            0 => rf.saturating_sub(1).max(1),
            1 => (rf + 1).min(ids.len()),
            _ => rf,
        };
        let mut target = Vec::with_capacity(size);
        while target.len() < size {
            let i = self.below(ids.len() as u64) as usize;
            target.push(ids.swap_remove(i));
        }
        match self.below(5) {
            0 | 1 => self.reassign_via_api(&partition, Some(target)),
            2 => self.reassign_via_api(&partition, None),
            _ => {
                if self.zk.reassign.is_none() {
                    self.trace(|| format!("admin: znode reassign {partition} to {target:?}"));
                    self.zk.reassign = Some(vec![(partition.clone(), target)]);
                    self.reassign_pending.remove(&partition);
                    self.reassign_expect.insert(partition, None);
                    self.fire(vec![Watch::Reassign]);
                }
            }
        }
        if self.below(3) == 0 {
            let delay = self.below(30);
            self.schedule(delay, Event::KillController);
        }
    }

    /// AlterPartitionReassignments through every live broker (only the controller answers).
    fn reassign_via_api(&mut self, partition: &TopicPartition, target: Option<Vec<BrokerId>>) {
        let alive: Vec<BrokerId> = self
            .brokers
            .values()
            .filter(|b| b.alive)
            .map(|b| b.id)
            .collect();
        for id in alive {
            let controller = &mut self.brokers.get_mut(&id).expect("known").controller;
            let request = vec![(partition.clone(), target.clone())];
            let Some((outcomes, effects)) = controller.alter_reassignments(request) else {
                continue;
            };
            self.trace(|| {
                format!("  controller {id}: reassign {partition} to {target:?}: {outcomes:?}")
            });
            if outcomes[0].1 == ReassignOutcome::Started {
                self.checker.stats.reassignments += 1;
                self.reassign_pending
                    .insert(partition.clone(), target.clone());
            }
            self.controller_effects(id, effects);
        }
    }

    /// A step of `partition` was written: the request it carries (a target it moves to, or a
    /// cancel) is now persisted, so it must be carried out.
    fn reassign_confirmed(&mut self, partition: &TopicPartition) {
        let Some(wanted) = self.reassign_pending.get(partition) else {
            return;
        };
        let a = &self.zk.topics()[&partition.topic].assignment;
        let carried = match wanted {
            Some(target) => &a.target(partition.partition) == target,
            None => true,
        };
        if carried {
            let wanted = self.reassign_pending.remove(partition).expect("present");
            self.reassign_expect.insert(partition.clone(), wanted);
        }
    }

    /// After healing: no partition is still being moved, the znode is gone, and each
    /// partition whose last persisted request was an API move has exactly its target (a
    /// request a deposed controller accepted but could not write is not persisted).
    pub(super) fn check_reassigned(&self) {
        assert!(
            self.zk.reassign.is_none(),
            "/admin/reassign_partitions still holds {:?} after healing",
            self.zk.reassign
        );
        for (topic, info) in self.zk.topics() {
            let a = &info.assignment;
            for (&index, replicas) in &a.partitions {
                assert!(
                    !a.is_reassigning(index),
                    "{topic}-{index} is still being reassigned after healing: {a:?}"
                );
                let partition = TopicPartition::new(topic.clone(), index);
                if let Some(Some(target)) = self.reassign_expect.get(&partition) {
                    assert_eq!(
                        replicas, target,
                        "{partition} did not reach its reassignment target"
                    );
                }
            }
        }
    }
}
