//! A follower's side of a fetch session (KIP-227) with one leader: which partitions the next
//! fetch names, and with which session id and epoch.
//!
//! The first fetch is full (epoch 0: every partition, asking for a session). Once the leader
//! answers with a session id, each fetch carries the next epoch and names only the
//! partitions whose fetch state (offset, log start, leader epoch, byte limit) differs from
//! what the session holds, plus those to forget; the leader reads the whole session and
//! answers only what moved. Any failed exchange (an error, a lost connection, a session the
//! leader no longer has) starts over with a full fetch that also closes the old session. A
//! leader that grants no session (id 0) gets full fetches every time. Pure: no I/O.

use std::collections::HashMap;

use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic, ForgottenTopic};
use kafka_protocol::messages::{FetchRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use strom_log::TopicPartition;

/// What one fetch tells the leader about one partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PartitionFetch {
    pub fetch_offset: i64,
    pub log_start_offset: i64,
    pub leader_epoch: i32,
    pub max_bytes: i32,
}

/// The session state of one fetcher.
#[derive(Debug, Default)]
pub struct FollowerSession {
    /// The leader's session id (0: none yet).
    id: i32,
    /// The epoch the next incremental fetch carries.
    epoch: i32,
    /// A session to close with the next full fetch.
    closing: i32,
    /// Every partition as the leader's session holds it.
    sent: HashMap<TopicPartition, PartitionFetch>,
}

/// One fetch to send.
#[derive(Debug, PartialEq, Eq)]
pub struct SessionRequest {
    pub session_id: i32,
    pub epoch: i32,
    /// The partitions to name, in the order given.
    pub send: Vec<(TopicPartition, PartitionFetch)>,
    /// The session partitions to drop.
    pub forget: Vec<TopicPartition>,
}

impl SessionRequest {
    fn full(&self) -> bool {
        self.epoch == 0
    }

    /// Writes the session fields, the partitions (grouped by topic, in order) and the
    /// forgotten partitions into `request` (Fetch v7–12: topics by name).
    pub fn fill(&self, request: &mut FetchRequest) {
        request.session_id = self.session_id;
        request.session_epoch = self.epoch;
        for (tp, fetch) in &self.send {
            if request
                .topics
                .last()
                .is_none_or(|t| t.topic.0.as_str() != tp.topic)
            {
                let mut topic = FetchTopic::default();
                topic.topic = TopicName(StrBytes::from_string(tp.topic.clone()));
                request.topics.push(topic);
            }
            let mut p = FetchPartition::default();
            p.partition = tp.partition;
            p.current_leader_epoch = fetch.leader_epoch;
            p.fetch_offset = fetch.fetch_offset;
            p.log_start_offset = fetch.log_start_offset;
            p.last_fetched_epoch = -1;
            p.partition_max_bytes = fetch.max_bytes;
            request
                .topics
                .last_mut()
                .expect("pushed")
                .partitions
                .push(p);
        }
        for tp in &self.forget {
            let same = request
                .forgotten_topics_data
                .last()
                .is_some_and(|t| t.topic.0.as_str() == tp.topic);
            if !same {
                let mut topic = ForgottenTopic::default();
                topic.topic = TopicName(StrBytes::from_string(tp.topic.clone()));
                request.forgotten_topics_data.push(topic);
            }
            request
                .forgotten_topics_data
                .last_mut()
                .expect("pushed")
                .partitions
                .push(tp.partition);
        }
    }
}

fn next_epoch(epoch: i32) -> i32 {
    if epoch == i32::MAX {
        1
    } else {
        epoch + 1
    }
}

impl FollowerSession {
    /// The fetch for `wanted` (every partition to fetch now, in order).
    pub fn request(&self, wanted: &[(&TopicPartition, PartitionFetch)]) -> SessionRequest {
        if self.id == 0 {
            return SessionRequest {
                session_id: self.closing,
                epoch: 0,
                send: wanted.iter().map(|(tp, f)| ((*tp).clone(), *f)).collect(),
                forget: Vec::new(),
            };
        }
        let mut send = Vec::new();
        let mut held = 0;
        for &(tp, fetch) in wanted {
            match self.sent.get(tp) {
                Some(sent) => {
                    held += 1;
                    if *sent != fetch {
                        send.push((tp.clone(), fetch));
                    }
                }
                None => send.push((tp.clone(), fetch)),
            }
        }
        // Only when the session holds partitions no longer wanted are they looked for.
        let mut forget = Vec::new();
        if held < self.sent.len() {
            let keys: std::collections::HashSet<&TopicPartition> =
                wanted.iter().map(|&(tp, _)| tp).collect();
            forget = self
                .sent
                .keys()
                .filter(|tp| !keys.contains(tp))
                .cloned()
                .collect();
            forget.sort();
        }
        SessionRequest {
            session_id: self.id,
            epoch: self.epoch,
            send,
            forget,
        }
    }

    /// The leader answered `request` without a top-level error, with `session_id`.
    pub fn answered(&mut self, request: SessionRequest, session_id: i32) {
        if request.full() {
            // Without a session (id 0) `sent` still holds what this fetch asked for.
            self.closing = 0;
            self.sent.clear();
            self.id = session_id;
            self.epoch = 1;
        } else {
            self.epoch = next_epoch(self.epoch);
        }
        for tp in request.forget {
            self.sent.remove(&tp);
        }
        self.sent.extend(request.send);
    }

    /// The exchange failed (a top-level error, a lost or timed-out connection): the next
    /// fetch is full and closes this session on the leader.
    pub fn reset(&mut self) {
        if self.id != 0 {
            self.closing = self.id;
        }
        self.id = 0;
        self.epoch = 0;
        self.sent.clear();
    }

    /// The session id held (0: none).
    pub fn id(&self) -> i32 {
        self.id
    }

    /// The leader epoch the last answered fetch gave for `tp` (the leader answers a
    /// partition of the session as of that fetch).
    pub fn sent_leader_epoch(&self, tp: &TopicPartition) -> Option<i32> {
        self.sent.get(tp).map(|fetch| fetch.leader_epoch)
    }
}

#[cfg(test)]
#[path = "tests/fetch_session.rs"]
mod tests;
