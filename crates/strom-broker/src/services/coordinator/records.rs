//! The records of `__consumer_offsets`, in Kafka's own binary layout, so that the topic reads the
//! same as Kafka's to a tool that decodes it.
//!
//! Keys start with an int16 version: 0 or 1 is an offset commit (`group`, `topic`, `partition`),
//! 2 is group metadata (`group`). Values start with an int16 version too: offset commit values
//! are written as version 3 (`offset` int64, `leader_epoch` int32, `metadata` string,
//! `commit_timestamp` int64) and read in versions 0–3; group metadata values are written as
//! version 3 (protocol type, generation, protocol, leader, state timestamp, members with instance
//! ids) and read in versions 0–3. A null value is a tombstone: the offset or group is deleted.
//! Strings are int16-length-prefixed (-1 = null), byte arrays int32-length-prefixed.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::services::group::{GroupSnapshot, SnapshotMember};

/// What a `__consumer_offsets` record key names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RecordKey {
    /// A committed offset of (group, topic, partition).
    Offset {
        /// The group.
        group: String,
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
    },
    /// A group's membership metadata.
    Group {
        /// The group.
        group: String,
    },
}

/// A committed offset as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OffsetValue {
    /// The committed offset.
    pub offset: i64,
    /// The leader epoch the consumer saw (-1 unknown).
    pub leader_epoch: i32,
    /// The client's metadata string.
    pub metadata: String,
    /// When it was committed (ms).
    pub commit_timestamp_ms: i64,
    /// Version 1 values carry an explicit expiry; later versions do not.
    pub expire_timestamp_ms: Option<i64>,
}

/// A record that does not decode.
#[derive(Debug, thiserror::Error)]
#[error("undecodable __consumer_offsets record: {0}")]
pub struct RecordError(pub String);

fn put_string(buf: &mut BytesMut, s: Option<&str>) {
    match s {
        Some(s) => {
            buf.put_i16(s.len() as i16);
            buf.put_slice(s.as_bytes());
        }
        None => buf.put_i16(-1),
    }
}

fn put_bytes(buf: &mut BytesMut, b: &[u8]) {
    buf.put_i32(b.len() as i32);
    buf.put_slice(b);
}

fn need(buf: &Bytes, n: usize, what: &str) -> Result<(), RecordError> {
    if buf.remaining() < n {
        return Err(RecordError(format!("truncated at {what}")));
    }
    Ok(())
}

fn get_string(buf: &mut Bytes, what: &str) -> Result<Option<String>, RecordError> {
    need(buf, 2, what)?;
    let len = buf.get_i16();
    if len < 0 {
        return Ok(None);
    }
    need(buf, len as usize, what)?;
    let raw = buf.split_to(len as usize);
    String::from_utf8(raw.to_vec())
        .map(Some)
        .map_err(|_| RecordError(format!("{what} is not UTF-8")))
}

fn get_required_string(buf: &mut Bytes, what: &str) -> Result<String, RecordError> {
    get_string(buf, what)?.ok_or_else(|| RecordError(format!("{what} is null")))
}

fn get_bytes(buf: &mut Bytes, what: &str) -> Result<Bytes, RecordError> {
    need(buf, 4, what)?;
    let len = buf.get_i32();
    if len < 0 {
        return Ok(Bytes::new());
    }
    need(buf, len as usize, what)?;
    Ok(buf.split_to(len as usize))
}

fn get_i32(buf: &mut Bytes, what: &str) -> Result<i32, RecordError> {
    need(buf, 4, what)?;
    Ok(buf.get_i32())
}

fn get_i64(buf: &mut Bytes, what: &str) -> Result<i64, RecordError> {
    need(buf, 8, what)?;
    Ok(buf.get_i64())
}

impl RecordKey {
    /// Encodes the key (offset keys as version 1, group keys as version 2).
    pub fn encode(&self) -> Bytes {
        let mut buf = BytesMut::new();
        match self {
            RecordKey::Offset {
                group,
                topic,
                partition,
            } => {
                buf.put_i16(1);
                put_string(&mut buf, Some(group));
                put_string(&mut buf, Some(topic));
                buf.put_i32(*partition);
            }
            RecordKey::Group { group } => {
                buf.put_i16(2);
                put_string(&mut buf, Some(group));
            }
        }
        buf.freeze()
    }

    /// Decodes a key.
    pub fn decode(mut buf: Bytes) -> Result<RecordKey, RecordError> {
        need(&buf, 2, "key version")?;
        match buf.get_i16() {
            0 | 1 => Ok(RecordKey::Offset {
                group: get_required_string(&mut buf, "group")?,
                topic: get_required_string(&mut buf, "topic")?,
                partition: get_i32(&mut buf, "partition")?,
            }),
            2 => Ok(RecordKey::Group {
                group: get_required_string(&mut buf, "group")?,
            }),
            other => Err(RecordError(format!("unknown key version {other}"))),
        }
    }
}

impl OffsetValue {
    /// Encodes as version 3.
    pub fn encode(&self) -> Bytes {
        let mut buf = BytesMut::new();
        buf.put_i16(3);
        buf.put_i64(self.offset);
        buf.put_i32(self.leader_epoch);
        put_string(&mut buf, Some(&self.metadata));
        buf.put_i64(self.commit_timestamp_ms);
        buf.freeze()
    }

    /// Decodes versions 0–3.
    pub fn decode(mut buf: Bytes) -> Result<OffsetValue, RecordError> {
        need(&buf, 2, "value version")?;
        let version = buf.get_i16();
        if !(0..=3).contains(&version) {
            return Err(RecordError(format!(
                "unknown offset value version {version}"
            )));
        }
        let offset = get_i64(&mut buf, "offset")?;
        let leader_epoch = if version >= 3 {
            get_i32(&mut buf, "leader epoch")?
        } else {
            -1
        };
        let metadata = get_string(&mut buf, "metadata")?.unwrap_or_default();
        let commit_timestamp_ms = get_i64(&mut buf, "commit timestamp")?;
        let expire_timestamp_ms = if version == 1 {
            Some(get_i64(&mut buf, "expire timestamp")?)
        } else {
            None
        };
        Ok(OffsetValue {
            offset,
            leader_epoch,
            metadata,
            commit_timestamp_ms,
            expire_timestamp_ms,
        })
    }
}

/// The `__consumer_offsets` records (key, value) of `offsets` committed by `group`, as
/// OffsetCommit and TxnOffsetCommit write them.
pub fn offset_records(
    group: &str,
    offsets: &[(String, i32, crate::services::group::CommittedOffset)],
) -> Vec<(Bytes, Option<Bytes>)> {
    offsets
        .iter()
        .map(|(topic, partition, c)| {
            let key = RecordKey::Offset {
                group: group.to_string(),
                topic: topic.clone(),
                partition: *partition,
            };
            let value = OffsetValue {
                offset: c.offset,
                leader_epoch: c.leader_epoch,
                metadata: c.metadata.clone().unwrap_or_default(),
                commit_timestamp_ms: c.commit_timestamp_ms,
                expire_timestamp_ms: None,
            };
            (key.encode(), Some(value.encode()))
        })
        .collect()
}

/// Encodes a group snapshot as a version-3 group metadata value.
pub fn encode_group(snapshot: &GroupSnapshot) -> Bytes {
    let mut buf = BytesMut::new();
    buf.put_i16(3);
    put_string(
        &mut buf,
        Some(snapshot.protocol_type.as_deref().unwrap_or("")),
    );
    buf.put_i32(snapshot.generation_id);
    put_string(&mut buf, snapshot.protocol_name.as_deref());
    put_string(&mut buf, snapshot.leader.as_deref());
    buf.put_i64(snapshot.current_state_timestamp_ms);
    buf.put_i32(snapshot.members.len() as i32);
    for m in &snapshot.members {
        put_string(&mut buf, Some(&m.member_id));
        put_string(&mut buf, m.group_instance_id.as_deref());
        put_string(&mut buf, Some(&m.client_id));
        put_string(&mut buf, Some(&m.client_host));
        buf.put_i32(m.rebalance_timeout_ms);
        buf.put_i32(m.session_timeout_ms);
        put_bytes(&mut buf, &m.subscription);
        put_bytes(&mut buf, &m.assignment);
    }
    buf.freeze()
}

/// Decodes a group metadata value of versions 0–3.
pub fn decode_group(mut buf: Bytes) -> Result<GroupSnapshot, RecordError> {
    need(&buf, 2, "value version")?;
    let version = buf.get_i16();
    if !(0..=3).contains(&version) {
        return Err(RecordError(format!(
            "unknown group value version {version}"
        )));
    }
    let protocol_type = get_required_string(&mut buf, "protocol type")?;
    let generation_id = get_i32(&mut buf, "generation")?;
    let protocol_name = get_string(&mut buf, "protocol")?;
    let leader = get_string(&mut buf, "leader")?;
    let current_state_timestamp_ms = if version >= 2 {
        get_i64(&mut buf, "state timestamp")?
    } else {
        -1
    };
    let count = get_i32(&mut buf, "member count")?;
    if count < 0 || count as usize > buf.remaining() {
        return Err(RecordError(format!(
            "member count {count} does not fit the value"
        )));
    }
    let mut members = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let member_id = get_required_string(&mut buf, "member id")?;
        let group_instance_id = if version >= 3 {
            get_string(&mut buf, "instance id")?
        } else {
            None
        };
        let client_id = get_required_string(&mut buf, "client id")?;
        let client_host = get_required_string(&mut buf, "client host")?;
        let rebalance_timeout_ms = if version >= 1 {
            get_i32(&mut buf, "rebalance timeout")?
        } else {
            -1
        };
        let session_timeout_ms = get_i32(&mut buf, "session timeout")?;
        let rebalance_timeout_ms = if rebalance_timeout_ms < 0 {
            session_timeout_ms
        } else {
            rebalance_timeout_ms
        };
        let subscription = get_bytes(&mut buf, "subscription")?;
        let assignment = get_bytes(&mut buf, "assignment")?;
        members.push(SnapshotMember {
            member_id,
            group_instance_id,
            client_id,
            client_host,
            rebalance_timeout_ms,
            session_timeout_ms,
            subscription,
            assignment,
        });
    }
    Ok(GroupSnapshot {
        protocol_type: if protocol_type.is_empty() {
            None
        } else {
            Some(protocol_type)
        },
        generation_id,
        protocol_name,
        leader,
        current_state_timestamp_ms,
        members,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_values_round_trip() {
        let key = RecordKey::Offset {
            group: "g".into(),
            topic: "t".into(),
            partition: 7,
        };
        assert_eq!(RecordKey::decode(key.encode()).unwrap(), key);
        let key = RecordKey::Group { group: "g".into() };
        assert_eq!(RecordKey::decode(key.encode()).unwrap(), key);
        let value = OffsetValue {
            offset: 42,
            leader_epoch: 3,
            metadata: "m".into(),
            commit_timestamp_ms: 99,
            expire_timestamp_ms: None,
        };
        assert_eq!(OffsetValue::decode(value.encode()).unwrap(), value);
        let snapshot = GroupSnapshot {
            protocol_type: Some("consumer".into()),
            generation_id: 5,
            protocol_name: Some("range".into()),
            leader: Some("m1".into()),
            current_state_timestamp_ms: 1000,
            members: vec![SnapshotMember {
                member_id: "m1".into(),
                group_instance_id: Some("i1".into()),
                client_id: "c".into(),
                client_host: "/127.0.0.1".into(),
                rebalance_timeout_ms: 300_000,
                session_timeout_ms: 45_000,
                subscription: Bytes::from_static(b"sub"),
                assignment: Bytes::from_static(b"asg"),
            }],
        };
        assert_eq!(decode_group(encode_group(&snapshot)).unwrap(), snapshot);
    }

    #[test]
    fn kafka_offset_key_layout() {
        // version 1, "g", "t", partition 0 — the bytes Kafka writes for this key.
        let key = RecordKey::Offset {
            group: "g".into(),
            topic: "t".into(),
            partition: 0,
        };
        assert_eq!(
            &key.encode()[..],
            &[0, 1, 0, 1, b'g', 0, 1, b't', 0, 0, 0, 0]
        );
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        use rand_core::{Rng as _, SeedableRng as _};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        for len in 0..200 {
            let mut bytes = vec![0u8; len];
            rng.fill_bytes(&mut bytes);
            let _ = RecordKey::decode(Bytes::from(bytes.clone()));
            let _ = OffsetValue::decode(Bytes::from(bytes.clone()));
            let _ = decode_group(Bytes::from(bytes));
        }
    }
}
