//! A seeded simulation of a replicated cluster: N brokers, each with partition logs, the pure
//! replica state (`strom_meta::replica`) and the pure controller (`strom_meta::controller`),
//! a ZooKeeper model, and clients producing with acks=all, all behind a router that drops,
//! delays and reorders data-plane messages, partitions links, kills and restarts brokers and
//! expires ZooKeeper sessions. Virtual time; one `ChaCha8Rng` seeded per run decides
//! everything, so a seed replays exactly. [`checks`] holds the invariants checked after every
//! event.

pub mod broker;
pub mod checks;
pub mod follower;
pub mod log;
pub mod shutdown;

pub mod reassign;
pub mod zk;
pub mod zk_ops;

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap};

use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};
use strom_meta::controller::assignment::{assign_replicas, PlacementBroker};
use strom_meta::controller::TopicInfo;
use strom_meta::replica::ReplicaSettings;
use strom_meta::replication::{BrokerId, LeaderAndIsr, TopicAssignment, TopicPartition, NO_LEADER};

use broker::{Broker, Msg};
use checks::{Checker, Stats};
use zk::{SessionId, Watch, Zk};
use zk_ops::ZkOp;

/// The ZooKeeper session timeout (Kafka's 18 s, scaled down with everything else).
pub const SESSION_TIMEOUT_MS: u64 = 600;
/// `replica.lag.time.max.ms`.
pub const LAG_TIME_MAX_MS: u64 = 300;
/// How often each broker checks its followers' lag.
pub const TICK_MS: u64 = 50;
/// How long a follower waits for an answer before asking again.
pub const FOLLOWER_TIMEOUT_MS: u64 = 60;
const CHAOS_UNTIL_MS: u64 = 2_000;
/// ZooKeeper's end of the in-order channels.
const ZOOKEEPER: BrokerId = -100;
const RUN_UNTIL_MS: u64 = 3_500;

/// Something that happens at a virtual time.
#[derive(Debug)]
pub enum Event {
    /// A message reaches broker `to`, if it is still the incarnation it was sent to.
    Deliver {
        to: BrokerId,
        incarnation: u64,
        msg: Msg,
    },
    /// A ZooKeeper operation reaches the server.
    ZkArrive {
        from: BrokerId,
        incarnation: u64,
        session: SessionId,
        op: ZkOp,
    },
    /// ZooKeeper's answer reaches the broker.
    ZkReply {
        to: BrokerId,
        incarnation: u64,
        reply: zk_ops::ZkReply,
    },
    /// A watch notification reaches the broker.
    ZkWatch {
        to: BrokerId,
        incarnation: u64,
        watch: Watch,
    },
    /// The broker learns its session expired.
    SessionLost {
        to: BrokerId,
        incarnation: u64,
        session: SessionId,
    },
    /// ZooKeeper expires a dead broker's session.
    SessionTimeout {
        session: SessionId,
    },
    Tick {
        broker: BrokerId,
        incarnation: u64,
    },
    Fsync {
        broker: BrokerId,
        incarnation: u64,
        partition: TopicPartition,
    },
    FollowerTimer {
        broker: BrokerId,
        incarnation: u64,
        partition: TopicPartition,
        request: u64,
    },
    Register {
        broker: BrokerId,
        incarnation: u64,
    },
    Chaos,
    Produce,
    CreateTopic {
        name: String,
    },
    DeleteTopic {
        name: String,
    },
    /// An admin asks for preferred leader elections (ElectLeaders) of every partition.
    ElectPreferred,
    /// A stopped broker starts again, unless it already has.
    Restart {
        broker: BrokerId,
        incarnation: u64,
    },
    /// A broker's next ControlledShutdown attempt.
    ControlledStop {
        broker: BrokerId,
        incarnation: u64,
        attempt: u32,
    },

    /// An admin asks for a partition reassignment (`reassign.rs`).
    Reassign,
    /// The controller of the moment is killed.
    KillController,
}

pub struct World {
    pub now: u64,
    seq: u64,
    queue: BinaryHeap<Reverse<(u64, u64)>>,
    pending: HashMap<u64, Event>,
    pub rng: ChaCha8Rng,
    pub zk: Zk,
    pub brokers: BTreeMap<BrokerId, Broker>,
    pub checker: Checker,
    pub settings: BTreeMap<String, ReplicaSettings>,
    trace: bool,
    /// Links cut until a time, both directions listed.
    cut: BTreeMap<(BrokerId, BrokerId), u64>,
    /// The last delivery time on each in-order channel (controller requests, ZooKeeper
    /// sessions).
    channel: BTreeMap<(BrokerId, BrokerId), u64>,
    next_payload: u64,
    /// What each partition's last persisted reassignment request must end in (`None`: any
    /// replicas), and requests accepted but not written yet (`reassign.rs`).
    pub reassign_expect: BTreeMap<TopicPartition, Option<Vec<BrokerId>>>,
    pub reassign_pending: BTreeMap<TopicPartition, Option<Vec<BrokerId>>>,
    /// Replicas a reassignment removed that have not deleted their copy yet.
    pub reassign_strays: BTreeSet<(BrokerId, TopicPartition)>,
}

impl World {
    pub fn below(&mut self, n: u64) -> u64 {
        self.rng.next_u64() % n.max(1)
    }

    pub fn schedule(&mut self, delay_ms: u64, event: Event) {
        self.seq += 1;
        self.queue.push(Reverse((self.now + delay_ms, self.seq)));
        self.pending.insert(self.seq, event);
    }

    pub fn trace(&self, what: impl FnOnce() -> String) {
        if self.trace {
            eprintln!("{:>6} {}", self.now, what());
        }
    }

    fn is_cut(&self, a: BrokerId, b: BrokerId) -> bool {
        self.cut.get(&(a, b)).is_some_and(|&until| until > self.now)
    }

    /// A data-plane message (client or replica traffic): may be dropped, delayed, reordered.
    pub fn send(&mut self, from: BrokerId, to: BrokerId, msg: Msg) {
        let Some(incarnation) = self.brokers.get(&to).map(|b| b.incarnation) else {
            return;
        };
        if self.is_cut(from, to) || self.below(20) == 0 {
            self.trace(|| format!("drop {from}->{to} {msg:?}"));
            return;
        }
        let delay = 1 + self.below(10);
        self.schedule(
            delay,
            Event::Deliver {
                to,
                incarnation,
                msg,
            },
        );
    }

    /// A controller request: in order per channel, held while the link is cut, lost only
    /// when the receiver restarts (the new controller resends on startup).
    pub fn send_controller(&mut self, from: BrokerId, to: BrokerId, msg: Msg) {
        let Some(incarnation) = self.brokers.get(&to).map(|b| b.incarnation) else {
            return;
        };
        let mut delay = self.ordered_delay((from, to), 10);
        if let Some(&until) = self.cut.get(&(from, to)) {
            if until > self.now + delay {
                delay = until - self.now;
                self.channel.insert((from, to), until);
            }
        }
        self.schedule(
            delay,
            Event::Deliver {
                to,
                incarnation,
                msg,
            },
        );
    }

    /// A delay of 1..=`jitter` ms that keeps channel `key` in order (a ZooKeeper session
    /// delivers requests, answers and watch events in order; a controller channel is one
    /// connection).
    fn ordered_delay(&mut self, key: (BrokerId, BrokerId), jitter: u64) -> u64 {
        let mut at = self.now + 1 + self.below(jitter);
        let last = self.channel.entry(key).or_insert(0);
        at = at.max(*last);
        *last = at;
        at - self.now
    }

    /// Sends `op` to ZooKeeper on the broker's current session.
    pub fn zk_op(&mut self, from: BrokerId, op: ZkOp) {
        let broker = &self.brokers[&from];
        let (Some(session), incarnation) = (broker.session, broker.incarnation) else {
            return;
        };
        let delay = self.ordered_delay((from, ZOOKEEPER), 3);
        self.schedule(
            delay,
            Event::ZkArrive {
                from,
                incarnation,
                session,
                op,
            },
        );
    }

    /// Delivers watch notifications to every broker with a live session.
    pub fn fire(&mut self, watches: Vec<Watch>) {
        for watch in watches {
            let targets: Vec<(BrokerId, u64)> = self
                .brokers
                .values()
                .filter(|b| b.alive && b.session.is_some_and(|s| self.zk.session_alive(s)))
                .map(|b| (b.id, b.incarnation))
                .collect();
            for (to, incarnation) in targets {
                let delay = self.ordered_delay((ZOOKEEPER, to), 5);
                self.schedule(
                    delay,
                    Event::ZkWatch {
                        to,
                        incarnation,
                        watch,
                    },
                );
            }
        }
    }

    fn current(&self, broker: BrokerId, incarnation: u64) -> bool {
        self.brokers
            .get(&broker)
            .is_some_and(|b| b.alive && b.incarnation == incarnation)
    }

    fn handle(&mut self, event: Event) {
        match event {
            Event::Deliver {
                to,
                incarnation,
                msg,
            } => {
                if self.current(to, incarnation) {
                    self.deliver(to, msg);
                }
            }
            Event::ZkArrive {
                from,
                incarnation,
                session,
                op,
            } => {
                if !self.zk.session_alive(session) {
                    let delay = self.ordered_delay((ZOOKEEPER, from), 3);
                    let reply = zk_ops::ZkReply::SessionExpired { session };
                    self.schedule(
                        delay,
                        Event::ZkReply {
                            to: from,
                            incarnation,
                            reply,
                        },
                    );
                    return;
                }
                if let Some(reply) = self.apply_zk(from, session, op) {
                    let delay = self.ordered_delay((ZOOKEEPER, from), 3);
                    self.schedule(
                        delay,
                        Event::ZkReply {
                            to: from,
                            incarnation,
                            reply,
                        },
                    );
                }
            }
            Event::ZkReply {
                to,
                incarnation,
                reply,
            } => {
                if self.current(to, incarnation) {
                    self.zk_reply(to, reply);
                }
            }
            Event::ZkWatch {
                to,
                incarnation,
                watch,
            } => {
                if self.current(to, incarnation) {
                    self.watch(to, watch);
                }
            }
            Event::SessionLost {
                to,
                incarnation,
                session,
            } => {
                if self.current(to, incarnation) {
                    self.session_lost(to, session);
                }
            }
            Event::SessionTimeout { session } => {
                let watches = self.zk.expire(session);
                self.fire(watches);
            }
            Event::Tick {
                broker,
                incarnation,
            } => {
                if self.current(broker, incarnation) {
                    self.tick(broker);
                    self.schedule(
                        TICK_MS,
                        Event::Tick {
                            broker,
                            incarnation,
                        },
                    );
                }
            }
            Event::Fsync {
                broker,
                incarnation,
                partition,
            } => {
                if self.current(broker, incarnation) {
                    self.fsync(broker, &partition);
                }
            }
            Event::FollowerTimer {
                broker,
                incarnation,
                partition,
                request,
            } => {
                if self.current(broker, incarnation) {
                    self.follower_timer(broker, &partition, request);
                }
            }
            Event::Register {
                broker,
                incarnation,
            } => {
                if self.current(broker, incarnation) {
                    self.zk_op(broker, ZkOp::Register);
                }
            }
            Event::Chaos => self.chaos(),
            Event::Restart {
                broker,
                incarnation,
            } => {
                let b = &self.brokers[&broker];
                if !b.alive && b.incarnation == incarnation {
                    self.restart(broker);
                }
            }
            Event::ControlledStop {
                broker,
                incarnation,
                attempt,
            } => {
                if self.current(broker, incarnation) {
                    self.controlled_stop(broker, attempt);
                }
            }
            Event::Produce => {
                self.produce();
                if self.now < RUN_UNTIL_MS {
                    let delay = 2 + self.below(12);
                    self.schedule(delay, Event::Produce);
                }
            }
            Event::DeleteTopic { name } => {
                self.trace(|| format!("admin: delete topic {name}"));
                self.zk.request_delete(&name);
                self.fire(vec![Watch::DeleteTopics]);
            }
            Event::ElectPreferred => {
                self.trace(|| "admin: elect preferred leaders".to_string());
                let alive: Vec<BrokerId> = self
                    .brokers
                    .values()
                    .filter(|b| b.alive)
                    .map(|b| b.id)
                    .collect();
                // Through ElectLeaders, or as a tool writing /admin/preferred_replica_election.
                let znode = self.below(2) == 0;
                for id in alive {
                    if znode {
                        let partitions = self.zk.states().keys().cloned().collect();
                        let input =
                            strom_meta::controller::Input::PreferredReplicaElection { partitions };
                        self.controller_step(id, input);
                    } else {
                        self.elect_preferred(id);
                    }
                }
                // Not in the last moments: an election written then has no time to reach its
                // leader before the end checks that every leader knows it leads.
                if self.now < RUN_UNTIL_MS - 1_000 {
                    let delay = 200 + self.below(600);
                    self.schedule(delay, Event::ElectPreferred);
                }
            }
            Event::Reassign => self.reassign_event(CHAOS_UNTIL_MS - 100),
            Event::KillController => {
                if let Some(id) = self.zk.controller().filter(|_| self.now < CHAOS_UNTIL_MS) {
                    if self.brokers[&id].alive
                        && self.brokers.values().filter(|b| b.alive).count() > 1
                    {
                        self.kill(id);
                    }
                }
            }
            Event::CreateTopic { name } => {
                self.create_topic(&name, 2, 3, false);
                self.fire(vec![Watch::Topics]);
            }
        }
    }

    fn chaos(&mut self) {
        if self.now >= CHAOS_UNTIL_MS {
            // Heal: every broker back, every link whole; the cluster must settle.
            self.cut.clear();
            let dead: Vec<BrokerId> = self
                .brokers
                .values()
                .filter(|b| !b.alive)
                .map(|b| b.id)
                .collect();
            for id in dead {
                self.restart(id);
            }
            return;
        }
        let ids: Vec<BrokerId> = self.brokers.keys().copied().collect();
        let live: Vec<BrokerId> = self
            .brokers
            .values()
            .filter(|b| b.alive)
            .map(|b| b.id)
            .collect();
        let dead: Vec<BrokerId> = self
            .brokers
            .values()
            .filter(|b| !b.alive)
            .map(|b| b.id)
            .collect();
        match self.below(10) {
            0..=2 if live.len() > 1 => {
                let id = live[self.below(live.len() as u64) as usize];
                self.kill(id);
            }
            3..=4 if !dead.is_empty() => {
                let id = dead[self.below(dead.len() as u64) as usize];
                self.restart(id);
            }
            5..=6 if !live.is_empty() => {
                let id = live[self.below(live.len() as u64) as usize];
                self.expire(id);
            }
            7..=8 => {
                let a = ids[self.below(ids.len() as u64) as usize];
                let b = ids[self.below(ids.len() as u64) as usize];
                let until = self.now + 100 + self.below(700);
                self.trace(|| format!("chaos: cut {a}<->{b} until {until}"));
                self.cut.insert((a, b), until);
                self.cut.insert((b, a), until);
            }
            9 if live.len() > 1 => {
                let id = live[self.below(live.len() as u64) as usize];
                self.trace(|| format!("chaos: SIGTERM {id}"));
                self.controlled_stop(id, 0);
            }
            _ => {}
        }
        let delay = 50 + self.below(350);
        self.schedule(delay, Event::Chaos);
    }

    pub(super) fn kill(&mut self, id: BrokerId) {
        self.trace(|| format!("chaos: kill {id}"));
        self.checker.stats.kills += 1;
        self.checker.forget_broker(id);
        let broker = self.brokers.get_mut(&id).expect("known broker");
        let session = broker.kill();
        if let Some(session) = session {
            self.schedule(SESSION_TIMEOUT_MS, Event::SessionTimeout { session });
        }
    }

    fn restart(&mut self, id: BrokerId) {
        self.trace(|| format!("chaos: restart {id}"));
        let session = self.zk.new_session();
        let broker = self.brokers.get_mut(&id).expect("known broker");
        broker.restart(session);
        let incarnation = broker.incarnation;
        self.zk_op(id, ZkOp::Register);
        self.schedule(
            TICK_MS,
            Event::Tick {
                broker: id,
                incarnation,
            },
        );
    }

    fn expire(&mut self, id: BrokerId) {
        let Some(session) = self.brokers[&id].session else {
            return;
        };
        self.trace(|| format!("chaos: expire the session of {id}"));
        self.checker.stats.expiries += 1;
        let watches = self.zk.expire(session);
        self.fire(watches);
        let incarnation = self.brokers[&id].incarnation;
        let delay = 1 + self.below(200);
        self.schedule(
            delay,
            Event::SessionLost {
                to: id,
                incarnation,
                session,
            },
        );
    }

    fn produce(&mut self) {
        let partitions: Vec<TopicPartition> = self
            .zk
            .topics()
            .iter()
            .flat_map(|(t, info)| {
                info.assignment
                    .partitions
                    .keys()
                    .map(move |&p| TopicPartition::new(t.clone(), p))
            })
            .collect();
        if partitions.is_empty() {
            return;
        }
        let partition = partitions[self.below(partitions.len() as u64) as usize].clone();
        // The client asks a random live broker's metadata (possibly stale) where the leader is.
        let live: Vec<BrokerId> = self
            .brokers
            .values()
            .filter(|b| b.alive)
            .map(|b| b.id)
            .collect();
        if live.is_empty() {
            return;
        }
        let asked = live[self.below(live.len() as u64) as usize];
        let to = match self.brokers[&asked].metadata.get(&partition) {
            Some(state) if state.leader != NO_LEADER => state.leader,
            _ => asked,
        };
        self.next_payload += 1;
        let payload = self.next_payload;
        self.send(-1, to, Msg::Produce { partition, payload });
    }

    pub fn create_topic(
        &mut self,
        name: &str,
        partitions: i32,
        replication_factor: i32,
        unclean: bool,
    ) {
        let count = self.brokers.len();
        let brokers: Vec<PlacementBroker> = self
            .brokers
            .keys()
            .map(|&id| PlacementBroker {
                id,
                // With four brokers, two racks: placement alternates them.
                rack: (count == 4).then(|| format!("rack-{}", id % 2)),
            })
            .collect();
        let (start, shift) = (self.below(64) as usize, self.below(64) as usize);
        let assignment = assign_replicas(&brokers, partitions, replication_factor, 0, start, shift)
            .expect("valid placement");
        let info = TopicInfo {
            assignment: TopicAssignment::new(
                uuid::Uuid::from_u128(u128::from(self.rng.next_u64()) + 1),
                assignment,
            ),
            unclean_leader_election: unclean,
        };
        if unclean {
            self.checker.unclean.insert(name.to_string());
        }
        self.zk.create_topic(name, info);
    }

    /// After the run healed: a deleted topic is gone from ZooKeeper and from every broker.
    fn check_deleted(&self, topic: &str) {
        assert!(
            !self.zk.topics().contains_key(topic) && self.zk.deletions().is_empty(),
            "topic {topic} still exists or is still being deleted after healing"
        );
        for broker in self.brokers.values() {
            let left = broker.logs.keys().chain(broker.replicas.keys());
            // A replica a reassignment removed whose StopReplica(delete) never arrived (it was
            // down, or restarted first) keeps a stray copy, as in Kafka's ZooKeeper mode.
            let stray = |p: &TopicPartition| self.reassign_strays.contains(&(broker.id, p.clone()));
            let left: Vec<&TopicPartition> =
                left.filter(|p| p.topic == topic && !stray(p)).collect();
            assert!(
                left.is_empty(),
                "broker {} still holds {left:?} of deleted topic {topic}",
                broker.id
            );
        }
    }

    /// After the run healed: every partition has a leader that knows it leads.
    fn check_settled(&self) {
        for (partition, state) in self.zk.states() {
            let LeaderAndIsr {
                leader,
                leader_epoch,
                ..
            } = state.value;
            assert_ne!(
                leader, NO_LEADER,
                "{partition} has no leader after healing: {state:?}"
            );
            let replica = self.brokers[&leader].replicas.get(partition);
            let led = replica.is_some_and(|r| {
                r.role() == &strom_meta::replica::Role::Leader && r.leader_epoch() == leader_epoch
            });
            assert!(
                led,
                "{partition}: broker {leader} does not lead epoch {leader_epoch} after healing"
            );
        }
        let topics: BTreeSet<&String> = self.zk.states().keys().map(|p| &p.topic).collect();
        assert_eq!(
            topics.len(),
            self.zk.topics().len(),
            "a topic was never initialised"
        );
    }
}

/// Runs seed `seed`; panics (with the invariant broken) on a violation.
pub fn run(seed: u64, trace: bool) -> Stats {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let broker_count = 3 + (rng.next_u32() % 2) as BrokerId;
    let mut world = World {
        now: 0,
        seq: 0,
        queue: BinaryHeap::new(),
        pending: HashMap::new(),
        rng,
        zk: Zk::default(),
        brokers: (1..=broker_count).map(|id| (id, Broker::new(id))).collect(),
        checker: Checker::default(),
        settings: BTreeMap::new(),
        trace,
        cut: BTreeMap::new(),
        channel: BTreeMap::new(),
        next_payload: 0,
        reassign_expect: BTreeMap::new(),
        reassign_pending: BTreeMap::new(),
        reassign_strays: BTreeSet::new(),
    };
    let settings = |min_insync_replicas| ReplicaSettings {
        min_insync_replicas,
        replica_lag_time_max_ms: LAG_TIME_MAX_MS,
    };
    world.settings.insert("a".into(), settings(2));
    world.settings.insert("b".into(), settings(1));
    world.settings.insert("c".into(), settings(2));
    world.create_topic("a", 2, 3, false);
    world.create_topic("b", 1, 2, true);
    world.trace(|| {
        format!(
            "seed {seed}: {broker_count} brokers, topics {:?}",
            world.zk.topics()
        )
    });
    let ids: Vec<BrokerId> = world.brokers.keys().copied().collect();
    for id in ids {
        world.restart(id);
    }
    world.schedule(300, Event::Chaos);
    world.schedule(50, Event::Produce);
    let elect_at = 200 + world.below(600);
    world.schedule(elect_at, Event::ElectPreferred);
    let reassign_at = 100 + world.below(400);
    world.schedule(reassign_at, Event::Reassign);
    let create_at = 100 + world.below(1_500);
    world.schedule(create_at, Event::CreateTopic { name: "c".into() });
    let delete = world.below(2) == 0;
    if delete {
        let delete_at = create_at + 200 + world.below(800);
        world.schedule(delete_at, Event::DeleteTopic { name: "c".into() });
    }
    let mut steps = 0u64;
    while let Some(Reverse((at, seq))) = world.queue.pop() {
        if at > RUN_UNTIL_MS {
            break;
        }
        world.now = at;
        let event = world.pending.remove(&seq).expect("scheduled");
        world.trace(|| format!("{event:?}"));
        world.handle(event);
        steps += 1;
        if steps.is_multiple_of(64) {
            world.check_all_leaders();
        }
    }
    world.check_all_leaders();
    world.check_settled();
    world.check_reassigned();
    if delete {
        world.check_deleted("c");
    }
    world.checker.stats.events = steps;
    world.checker.stats
}
