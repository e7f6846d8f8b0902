use kafka_protocol::messages::fetch_request::ForgottenTopic;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::BrokerId;
use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};

use super::*;

fn partition(index: i32, offset: i64) -> FetchPartition {
    let mut p = FetchPartition::default();
    p.partition = index;
    p.fetch_offset = offset;
    p.partition_max_bytes = 1 << 20;
    p
}

fn request(id: i32, epoch: i32, partitions: &[(&str, i32, i64)]) -> FetchRequest {
    let mut r = FetchRequest::default();
    r.session_id = id;
    r.session_epoch = epoch;
    for &(topic, index, offset) in partitions {
        let mut t = FetchTopic::default();
        t.topic = TopicName(topic.to_string().into());
        t.partitions.push(partition(index, offset));
        r.topics.push(t);
    }
    r
}

fn read(fetch: &SessionFetch) -> Vec<(String, i32, i64)> {
    fetch
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(|p| (t.topic.0.to_string(), p.partition, p.fetch_offset))
        })
        .collect()
}

/// A response to `fetch` where every partition has high watermark `hw`, and those in
/// `with_records` one record batch.
fn answer(fetch: &SessionFetch, hw: i64, with_records: &[i32]) -> FetchResponse {
    let mut response = FetchResponse::default();
    for t in &fetch.topics {
        let mut topic = FetchableTopicResponse::default();
        topic.topic = t.topic.clone();
        for p in &t.partitions {
            let mut data = PartitionData::default();
            data.partition_index = p.partition;
            data.high_watermark = hw;
            data.last_stable_offset = hw;
            data.log_start_offset = 0;
            data.preferred_read_replica = BrokerId(-1);
            if with_records.contains(&p.partition) {
                data.records = Some(bytes::Bytes::from_static(b"batch"));
            }
            topic.partitions.push(data);
        }
        response.responses.push(topic);
    }
    response
}

fn answered(response: &FetchResponse) -> Vec<i32> {
    response
        .responses
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| p.partition_index))
        .collect()
}

#[test]
fn a_session_answers_only_what_changed_and_follows_its_epochs() {
    let sessions = FetchSessions::new(10, 7);
    let full = sessions
        .begin(
            &request(0, 0, &[("t", 0, 5), ("t", 1, 9), ("u", 0, 0)]),
            12,
            2,
            0,
        )
        .unwrap();
    assert!(full.session_id > 0 && !full.incremental);
    let mut response = answer(&full, 10, &[]);
    let mut files: Vec<Option<()>> = vec![None; 3];
    sessions.finish(&full, &mut response, &mut files, Vec::new());
    assert_eq!(response.session_id, full.session_id);
    assert_eq!(
        answered(&response),
        vec![0, 1, 0],
        "a full fetch answers all"
    );

    // Epoch 1: nothing sent, nothing changed: the whole session is read, nothing answered.
    let id = full.session_id;
    let next = sessions.begin(&request(id, 1, &[]), 12, 2, 1).unwrap();
    assert!(next.incremental);
    assert_eq!(
        read(&next),
        vec![("t".into(), 0, 5), ("t".into(), 1, 9), ("u".into(), 0, 0)]
    );
    let mut response = answer(&next, 10, &[]);
    let mut files: Vec<Option<()>> = vec![None; 3];
    sessions.finish(&next, &mut response, &mut files, Vec::new());
    assert!(response.responses.is_empty(), "{response:?}");
    assert!(files.is_empty());

    // Epoch 2: t-1 moves on; u-0's high watermark moves; t-0 has records from a file.
    let next = sessions
        .begin(&request(id, 2, &[("t", 1, 12)]), 12, 2, 2)
        .unwrap();
    assert_eq!(read(&next)[1], ("t".into(), 1, 12));
    let mut response = answer(&next, 10, &[]);
    response.responses[1].partitions[0].high_watermark = 11;
    let mut files = vec![Some(()), None, None];
    sessions.finish(&next, &mut response, &mut files, Vec::new());
    assert_eq!(answered(&response), vec![0, 0]);
    assert_eq!(response.responses[0].topic.0.as_str(), "t");
    assert_eq!(files, vec![Some(()), None]);

    // The partition that was served goes to the back.
    let next = sessions.begin(&request(id, 3, &[]), 12, 2, 3).unwrap();
    assert_eq!(
        read(&next),
        vec![("t".into(), 1, 12), ("u".into(), 0, 0), ("t".into(), 0, 5)]
    );

    // Wrong epoch, unknown session, topic ids switched.
    assert_eq!(
        sessions.begin(&request(id, 3, &[]), 12, 2, 4).err(),
        Some(E::InvalidFetchSessionEpoch.code())
    );
    assert_eq!(
        sessions.begin(&request(id + 1, 1, &[]), 12, 2, 4).err(),
        Some(E::FetchSessionIdNotFound.code())
    );
    assert_eq!(
        sessions.begin(&request(id, 4, &[]), 13, 2, 4).err(),
        Some(E::FetchSessionTopicIdError.code())
    );

    // Forgetting, then closing with epoch -1.
    let mut forget = request(id, 4, &[]);
    let mut gone = ForgottenTopic::default();
    gone.topic = TopicName("t".to_string().into());
    gone.partitions = vec![0, 1];
    forget.forgotten_topics_data.push(gone);
    let next = sessions.begin(&forget, 12, 2, 5).unwrap();
    assert_eq!(read(&next), vec![("u".into(), 0, 0)]);
    assert_eq!(sessions.gauges().partitions, 1);
    let close = sessions
        .begin(&request(id, -1, &[("u", 0, 0)]), 12, 2, 6)
        .unwrap();
    assert_eq!(close.session_id, 0);
    assert!(!close.incremental);
    assert_eq!(sessions.gauges().sessions, 0);
}

#[test]
fn old_versions_and_final_epochs_have_no_session() {
    let sessions = FetchSessions::new(10, 1);
    let fetch = sessions
        .begin(&request(0, 0, &[("t", 0, 0)]), 6, -1, 0)
        .unwrap();
    assert_eq!((fetch.session_id, fetch.incremental), (0, false));
    let fetch = sessions
        .begin(&request(0, -1, &[("t", 0, 0)]), 12, -1, 0)
        .unwrap();
    assert_eq!(fetch.session_id, 0);
    let mut response = answer(&fetch, 1, &[]);
    let mut files: Vec<Option<()>> = vec![None];
    sessions.finish(&fetch, &mut response, &mut files, Vec::new());
    assert_eq!((response.session_id, answered(&response)), (0, vec![0]));
    assert_eq!(sessions.gauges(), SessionGauges::default());
}

#[test]
fn a_full_cache_evicts_idle_sessions_then_consumers_for_followers() {
    let sessions = FetchSessions::new(2, 3);
    let open = |replica: i32, now: i64| {
        sessions
            .begin(&request(0, 0, &[("t", 0, 0)]), 12, replica, now)
            .unwrap()
            .session_id
    };
    let alive = |id: i32, epoch: i32, now: i64| {
        sessions
            .begin(&request(id, epoch, &[]), 12, -1, now)
            .is_ok()
    };
    let a = open(-1, 0);
    let b = open(-1, 1_000);
    assert!(a > 0 && b > 0 && a != b);
    assert_eq!(
        open(-1, 2_000),
        0,
        "full, nobody idle: a consumer gets none"
    );
    let c = open(7, 3_000);
    assert!(
        c > 0,
        "a follower takes the least recently used consumer's place"
    );
    assert!(!alive(a, 1, 3_000));
    assert!(alive(b, 1, 3_000));
    let d = open(8, 4_000);
    assert!(d > 0 && !alive(b, 2, 4_000), "then the next consumer's");
    assert_eq!(open(9, 5_000), 0, "followers only, nobody idle: none");
    let e = open(-1, 3_000 + EVICTION_IDLE_MS + 1);
    assert!(e > 0, "a session idle past the limit gives its place");
    assert!(!alive(c, 1, 200_000) && alive(d, 1, 200_000));
    assert_eq!(sessions.gauges().sessions, 2);
    assert_eq!(sessions.gauges().evictions, 3);
}

/// Hostile sequences of fetches (any session id and epoch, versions 7–17, topics by name or
/// id, duplicate partitions, forgetting what the session never held) against a small cache:
/// only Kafka's three session errors, and every answer keeps its partitions and file entries
/// aligned and within what was read. `STROM_FETCH_SESSION_HOSTILE_SEED` replays one seed.
#[test]
fn hostile_fetch_sequences_get_session_errors_never_a_panic() {
    let seeds: Vec<u64> = match std::env::var("STROM_FETCH_SESSION_HOSTILE_SEED") {
        Ok(seed) => vec![seed.parse().expect("a u64")],
        Err(_) => (0..200).collect(),
    };
    let ids = [Uuid::nil(), Uuid::from_u128(1), Uuid::from_u128(2)];
    for seed in seeds {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let sessions = FetchSessions::new(3, seed);
        let mut known = vec![0i32];
        let mut roll = |n: u32| rng.next_u32() % n;
        for step in 0..300 {
            let version = 7 + roll(11) as i16;
            let mut request = FetchRequest::default();
            request.session_id = match roll(4) {
                0 => 0,
                1 => roll(1000) as i32 - 500,
                _ => known[roll(known.len() as u32) as usize],
            };
            request.session_epoch = roll(6) as i32 - 1;
            for _ in 0..roll(4) {
                let mut topic = FetchTopic::default();
                topic.topic = TopicName(["a", "b", ""][roll(3) as usize].to_string().into());
                topic.topic_id = ids[roll(3) as usize];
                for _ in 0..roll(4) {
                    topic
                        .partitions
                        .push(partition(roll(5) as i32 - 1, roll(100) as i64 - 1));
                }
                request.topics.push(topic);
            }
            for _ in 0..roll(3) {
                let mut gone = ForgottenTopic::default();
                gone.topic = TopicName(["a", "b"][roll(2) as usize].to_string().into());
                gone.topic_id = ids[roll(3) as usize];
                gone.partitions = (0..roll(3)).map(|_| roll(5) as i32 - 1).collect();
                request.forgotten_topics_data.push(gone);
            }
            let fetch = match sessions.begin(&request, version, roll(3) as i32 - 1, step * 1000) {
                Ok(fetch) => fetch,
                Err(code) => {
                    assert!(
                        [
                            E::FetchSessionIdNotFound.code(),
                            E::InvalidFetchSessionEpoch.code(),
                            E::FetchSessionTopicIdError.code()
                        ]
                        .contains(&code),
                        "seed {seed} step {step}: error {code}"
                    );
                    continue;
                }
            };
            if fetch.session_id != 0 && !known.contains(&fetch.session_id) {
                known.push(fetch.session_id);
            }
            let read: usize = fetch.topics.iter().map(|t| t.partitions.len()).sum();
            let with_records: Vec<i32> = (0..roll(3)).map(|_| roll(5) as i32 - 1).collect();
            let mut response = answer(&fetch, roll(3) as i64, &with_records);
            let mut files: Vec<Option<u8>> =
                (0..read).map(|_| (roll(4) == 0).then_some(7)).collect();
            sessions.finish(&fetch, &mut response, &mut files, Vec::new());
            let answered: usize = response.responses.iter().map(|t| t.partitions.len()).sum();
            assert_eq!(answered, files.len(), "seed {seed} step {step}");
            assert!(answered <= read, "seed {seed} step {step}");
            if fetch.incremental {
                assert!(response.responses.iter().all(|t| !t.partitions.is_empty()));
            } else {
                assert_eq!(answered, read, "a full fetch answers all: seed {seed}");
            }
        }
    }
}
