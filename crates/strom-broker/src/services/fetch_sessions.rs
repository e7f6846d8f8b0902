//! Fetch sessions (KIP-227, Fetch v7+) on the serving side.
//!
//! A full fetch with `session_epoch` 0 opens a session: the partitions it names, with their
//! fetch offsets and limits, are cached under a new `session_id`, which the response carries.
//! The fetcher then sends incremental fetches (`session_id`, the next epoch): only the
//! partitions whose fetch state changed, plus `forgotten_topics_data` for those it dropped,
//! and the broker answers only the session partitions with something to say: records, an
//! error, a preferred read replica, or a high watermark, last stable offset or log start
//! offset different from the one it last told. With thousands of partitions per broker the
//! requests and responses between two replicas shrink to the partitions that move.
//!
//! Epoch -1 fetches without a session (and closes the one named); an incremental fetch on an
//! unknown session answers `FETCH_SESSION_ID_NOT_FOUND`, one with the wrong epoch
//! `INVALID_FETCH_SESSION_EPOCH`, one that switches between topic names and topic ids
//! (Fetch v13) `FETCH_SESSION_TOPIC_ID_ERROR`; the fetcher then starts over with a full fetch.
//!
//! Partitions that returned records move to the back of the session's order, so a response
//! bounded by `max_bytes` serves the others first next time.
//!
//! The cache holds `max.incremental.fetch.session.cache.slots` sessions (Kafka's default
//! 1,000). When it is full a new session takes the place of the least recently used one idle
//! for longer than [`EVICTION_IDLE_MS`]; failing that, a follower's takes the least recently
//! used consumer's; failing that, the fetch is answered without a session (`session_id` 0),
//! and the client keeps sending full fetches. [`FetchSessions`] is a pure structure: time
//! comes in as `now_ms` and session ids from a seeded generator.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use kafka_protocol::error::ResponseError as E;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{FetchRequest, FetchResponse, TopicName};
use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};
use uuid::Uuid;

use crate::metrics::SessionGauges;
use crate::services::replica::partition::Partition;

/// Kafka's `max.incremental.fetch.session.cache.slots` default.
pub const DEFAULT_SLOTS: usize = 1_000;
/// Kafka's `min.incremental.fetch.session.eviction.ms` default: a session idle this long may
/// give its slot to a new one.
pub const EVICTION_IDLE_MS: i64 = 120_000;

/// A partition of a session: by topic name up to Fetch v12, by topic id from v13.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SessionKey {
    pub topic: String,
    pub topic_id: Uuid,
    pub partition: i32,
}

struct CachedPartition {
    key: SessionKey,
    /// The hosted partition it resolved to at the last fetch (dropped when deleted).
    partition: Option<Arc<Partition>>,
    /// The fetch state the client last sent for it.
    fetch: FetchPartition,
    /// What the last response carrying it told: high watermark, last stable offset, log
    /// start offset (`i64::MIN` before any).
    told: (i64, i64, i64),
}

struct Session {
    /// The epoch the next incremental fetch must carry.
    epoch: i32,
    partitions: Vec<CachedPartition>,
    index: HashMap<SessionKey, usize>,
    topic_ids: bool,
    follower: bool,
    last_used_ms: i64,
}

impl Session {
    fn reindex(&mut self) {
        self.index = self
            .partitions
            .iter()
            .enumerate()
            .map(|(i, p)| (p.key.clone(), i))
            .collect();
    }

    fn upsert(&mut self, key: SessionKey, fetch: FetchPartition) {
        match self.index.get(&key) {
            Some(&i) => self.partitions[i].fetch = fetch,
            None => {
                self.index.insert(key.clone(), self.partitions.len());
                self.partitions.push(CachedPartition {
                    key,
                    partition: None,
                    fetch,
                    told: (i64::MIN, i64::MIN, i64::MIN),
                });
            }
        }
    }

    /// The session's partitions as request topics, consecutive partitions of one topic
    /// under one entry.
    fn topics(&self) -> Vec<FetchTopic> {
        let mut topics: Vec<FetchTopic> = Vec::new();
        for p in &self.partitions {
            let same = topics.last().is_some_and(|t: &FetchTopic| {
                t.topic_id == p.key.topic_id && t.topic.0.as_str() == p.key.topic
            });
            if !same {
                let mut topic = FetchTopic::default();
                topic.topic = TopicName(p.key.topic.clone().into());
                topic.topic_id = p.key.topic_id;
                topics.push(topic);
            }
            topics
                .last_mut()
                .expect("pushed")
                .partitions
                .push(p.fetch.clone());
        }
        topics
    }
}

/// How one fetch uses the sessions: the partitions to read and the session id to answer.
pub struct SessionFetch {
    /// Every partition the fetch reads: the request's, or the whole session's.
    pub topics: Vec<FetchTopic>,
    /// Per partition of `topics`, in order, the hosted partition it resolved to at the
    /// session's last fetch, if any (none outside a session).
    pub resolved: Vec<Option<Arc<Partition>>>,
    /// The session id the response carries (0: none).
    pub session_id: i32,
    /// True for an incremental fetch: the response carries only what changed.
    pub incremental: bool,
    /// The session's epoch after this fetch (to recognise it at the response).
    epoch_after: i32,
}

impl SessionFetch {
    /// A fetch outside any session (Fetch v0–6, or epoch -1).
    pub fn sessionless(topics: Vec<FetchTopic>) -> SessionFetch {
        SessionFetch {
            topics,
            resolved: Vec::new(),
            session_id: 0,
            incremental: false,
            epoch_after: 0,
        }
    }
}

/// The broker's fetch session cache.
pub struct FetchSessions {
    inner: Mutex<Inner>,
}

struct Inner {
    slots: usize,
    sessions: HashMap<i32, Session>,
    ids: ChaCha8Rng,
    evictions: u64,
}

/// A partition's key: its topic's name up to Fetch v12, its topic id from v13.
fn key(name: &TopicName, id: Uuid, partition: i32, topic_ids: bool) -> SessionKey {
    SessionKey {
        topic: if topic_ids {
            String::new()
        } else {
            name.0.to_string()
        },
        topic_id: if topic_ids { id } else { Uuid::nil() },
        partition,
    }
}

fn next_epoch(epoch: i32) -> i32 {
    if epoch == i32::MAX {
        1
    } else {
        epoch + 1
    }
}

impl FetchSessions {
    /// A cache of `slots` sessions whose ids come from `seed`.
    pub fn new(slots: usize, seed: u64) -> FetchSessions {
        FetchSessions {
            inner: Mutex::new(Inner {
                slots,
                sessions: HashMap::new(),
                ids: ChaCha8Rng::seed_from_u64(seed),
                evictions: 0,
            }),
        }
    }

    /// Resolves a Fetch (`version`, from `replica_id`: a follower if ≥ 0) against the
    /// sessions at `now_ms`; an `Err` is the response's top-level error code.
    pub fn begin(
        &self,
        request: &FetchRequest,
        version: i16,
        replica_id: i32,
        now_ms: i64,
    ) -> Result<SessionFetch, i16> {
        if version < 7 {
            return Ok(SessionFetch::sessionless(request.topics.clone()));
        }
        let topic_ids = version >= 13;
        let mut inner = self.inner.lock().unwrap();
        let (id, epoch) = (request.session_id, request.session_epoch);
        if epoch <= 0 {
            if id != 0 {
                inner.sessions.remove(&id);
            }
            if epoch < 0 {
                return Ok(SessionFetch::sessionless(request.topics.clone()));
            }
            let mut session = Session {
                epoch: 1,
                partitions: Vec::new(),
                index: HashMap::new(),
                topic_ids,
                follower: replica_id >= 0,
                last_used_ms: now_ms,
            };
            for topic in &request.topics {
                for p in &topic.partitions {
                    session.upsert(
                        key(&topic.topic, topic.topic_id, p.partition, topic_ids),
                        p.clone(),
                    );
                }
            }
            let topics = session.topics();
            let Some(new_id) = inner.admit(session, now_ms) else {
                return Ok(SessionFetch::sessionless(request.topics.clone()));
            };
            return Ok(SessionFetch {
                topics,
                resolved: Vec::new(),
                session_id: new_id,
                incremental: false,
                epoch_after: 1,
            });
        }
        let Some(session) = inner.sessions.get_mut(&id) else {
            return Err(E::FetchSessionIdNotFound.code());
        };
        if session.epoch != epoch {
            return Err(E::InvalidFetchSessionEpoch.code());
        }
        if session.topic_ids != topic_ids {
            return Err(E::FetchSessionTopicIdError.code());
        }
        let mut forgotten = false;
        for topic in &request.forgotten_topics_data {
            for &partition in &topic.partitions {
                let key = key(&topic.topic, topic.topic_id, partition, topic_ids);
                if session.index.remove(&key).is_some() {
                    forgotten = true;
                }
            }
        }
        if forgotten {
            let index = std::mem::take(&mut session.index);
            session.partitions.retain(|p| index.contains_key(&p.key));
            session.reindex();
        }
        for topic in &request.topics {
            for p in &topic.partitions {
                session.upsert(
                    key(&topic.topic, topic.topic_id, p.partition, topic_ids),
                    p.clone(),
                );
            }
        }
        session.epoch = next_epoch(epoch);
        session.last_used_ms = now_ms;
        Ok(SessionFetch {
            topics: session.topics(),
            resolved: session
                .partitions
                .iter()
                .map(|p| p.partition.clone())
                .collect(),
            session_id: id,
            incremental: true,
            epoch_after: session.epoch,
        })
    }

    /// Records what `response` (the answer to `fetch`, partitions in the order of
    /// `fetch.topics`) tells and the partitions they `resolved` to, and for an incremental
    /// fetch keeps only the partitions with something new, with their entries of `files`
    /// (one per partition, in order; `Some` when the partition's records are sent from a file
    /// rather than held in `records`).
    pub fn finish<T>(
        &self,
        fetch: &SessionFetch,
        response: &mut FetchResponse,
        files: &mut Vec<Option<T>>,
        resolved: Vec<Option<Arc<Partition>>>,
    ) {
        response.session_id = fetch.session_id;
        if fetch.session_id == 0 {
            return;
        }
        let mut keep = Vec::with_capacity(files.len());
        {
            let mut inner = self.inner.lock().unwrap();
            // The response's partitions are the session's, in its order, unless the session
            // was closed or used again meanwhile: then everything read is answered.
            let count: usize = response.responses.iter().map(|t| t.partitions.len()).sum();
            let Some(session) = inner
                .sessions
                .get_mut(&fetch.session_id)
                .filter(|s| s.epoch == fetch.epoch_after && s.partitions.len() == count)
            else {
                return;
            };
            let mut served = vec![false; count];
            let mut resolved = resolved.into_iter();
            let answered = response.responses.iter().flat_map(|t| &t.partitions);
            for (i, (p, cached)) in answered.zip(session.partitions.iter_mut()).enumerate() {
                let has_records = files.get(i).is_some_and(Option::is_some)
                    || p.records.as_ref().is_some_and(|r| !r.is_empty());
                let told = (p.high_watermark, p.last_stable_offset, p.log_start_offset);
                let changed = cached.told != told;
                cached.told = told;
                cached.partition = resolved.next().flatten().filter(|p| !p.is_deleted());
                keep.push(
                    !fetch.incremental
                        || changed
                        || has_records
                        || p.error_code != 0
                        || p.preferred_read_replica.0 >= 0,
                );
                served[i] = has_records;
            }
            if served.iter().any(|&s| s) {
                let (back, front): (Vec<_>, Vec<_>) = std::mem::take(&mut session.partitions)
                    .into_iter()
                    .zip(served)
                    .partition(|(_, served)| *served);
                session.partitions = front.into_iter().chain(back).map(|(p, _)| p).collect();
                session.reindex();
            }
        }
        if !fetch.incremental {
            return;
        }
        let mut keep = keep.into_iter();
        let mut old_files = std::mem::take(files).into_iter();
        for topic in &mut response.responses {
            let partitions = std::mem::take(&mut topic.partitions);
            for p in partitions {
                let file = old_files.next().flatten();
                if keep.next().unwrap_or(true) {
                    topic.partitions.push(p);
                    files.push(file);
                }
            }
        }
        response.responses.retain(|t| !t.partitions.is_empty());
    }

    /// The number of sessions and cached partitions, and the evictions so far.
    pub fn gauges(&self) -> SessionGauges {
        let inner = self.inner.lock().unwrap();
        SessionGauges {
            sessions: inner.sessions.len(),
            partitions: inner.sessions.values().map(|s| s.partitions.len()).sum(),
            evictions: inner.evictions,
        }
    }
}

impl Inner {
    /// Stores `session` under a new id, evicting another if the cache is full and the policy
    /// allows; `None` if it does not.
    fn admit(&mut self, session: Session, now_ms: i64) -> Option<i32> {
        if self.slots == 0 {
            return None;
        }
        if self.sessions.len() >= self.slots {
            let lru = |follower: Option<bool>| {
                self.sessions
                    .iter()
                    .filter(|(_, s)| follower.is_none_or(|f| s.follower == f))
                    .min_by_key(|(id, s)| (s.last_used_ms, **id))
                    .map(|(id, s)| (*id, s.last_used_ms))
            };
            let victim = match lru(None) {
                Some((id, used)) if now_ms - used > EVICTION_IDLE_MS => Some(id),
                _ if session.follower => lru(Some(false)).map(|(id, _)| id),
                _ => None,
            };
            let victim = victim?;
            self.sessions.remove(&victim);
            self.evictions += 1;
        }
        let id = loop {
            let id = (self.ids.next_u32() & 0x7fff_ffff) as i32;
            if id != 0 && !self.sessions.contains_key(&id) {
                break id;
            }
        };
        self.sessions.insert(id, session);
        Some(id)
    }
}

#[cfg(test)]
#[path = "tests/fetch_sessions.rs"]
mod tests;
