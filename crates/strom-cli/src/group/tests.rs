use super::parse::Assignment;
use super::*;

/// Encodes an assignment the way Kafka's ConsumerProtocol does.
fn encode(version: i16, topics: &[(&str, &[i32])], user_data: Option<&[u8]>) -> Vec<u8> {
    let mut out = version.to_be_bytes().to_vec();
    out.extend((topics.len() as i32).to_be_bytes());
    for (name, partitions) in topics {
        out.extend((name.len() as i16).to_be_bytes());
        out.extend(name.as_bytes());
        out.extend((partitions.len() as i32).to_be_bytes());
        for p in *partitions {
            out.extend(p.to_be_bytes());
        }
    }
    match user_data {
        Some(data) => {
            out.extend((data.len() as i32).to_be_bytes());
            out.extend(data);
        }
        None => out.extend((-1i32).to_be_bytes()),
    }
    out
}

#[test]
fn an_assignment_decodes() {
    let bytes = encode(1, &[("orders", &[0, 2]), ("audit", &[])], Some(b"ud"));
    assert_eq!(
        decode_assignment(&bytes).unwrap(),
        Assignment {
            version: 1,
            partitions: vec![("orders".into(), vec![0, 2]), ("audit".into(), vec![])],
            user_data: Some(b"ud".to_vec()),
        }
    );
    let bytes = encode(0, &[("t", &[5])], None);
    let decoded = decode_assignment(&bytes).unwrap();
    assert_eq!(decoded.partitions, vec![("t".to_owned(), vec![5])]);
    assert_eq!(decoded.user_data, None);
}

#[test]
fn missing_user_data_and_trailing_bytes_are_accepted() {
    let mut bytes = encode(3, &[("t", &[1])], Some(b""));
    bytes.extend([9, 9, 9]);
    assert_eq!(decode_assignment(&bytes).unwrap().partitions[0].1, [1]);
    let bytes = encode(0, &[("t", &[1])], None);
    let without = &bytes[..bytes.len() - 4];
    assert_eq!(decode_assignment(without).unwrap().user_data, None);
}

#[test]
fn hostile_assignments_are_errors_not_panics() {
    let valid = encode(1, &[("orders", &[0, 1, 2]), ("x", &[7])], Some(b"data"));
    // Every truncation that cuts a field in half.
    for length in 0..valid.len() {
        let _ = decode_assignment(&valid[..length]);
    }
    assert!(decode_assignment(&[]).is_err());
    assert!(decode_assignment(&[0]).is_err());
    // Negative version, counts and lengths.
    assert!(decode_assignment(&[0xff, 0xff, 0, 0, 0, 0]).is_err());
    assert!(decode_assignment(&[0, 0, 0xff, 0xff, 0xff, 0xff]).is_err());
    assert!(decode_assignment(&[0, 0, 0, 0, 0, 1, 0xff, 0xfe, 0, 0, 0, 0]).is_err());
    assert!(decode_assignment(&[0, 0, 0, 0, 0, 1, 0, 0, 0xff, 0xff, 0xff, 0xff]).is_err());
    // Huge counts that would allocate gigabytes if trusted.
    assert!(decode_assignment(&[0, 0, 0x7f, 0xff, 0xff, 0xff]).is_err());
    assert!(decode_assignment(&[0, 0, 0, 0, 0, 1, 0, 0, 0x7f, 0xff, 0xff, 0xff]).is_err());
    let mut huge_user_data = encode(0, &[], None);
    let end = huge_user_data.len();
    huge_user_data[end - 4..].copy_from_slice(&i32::MAX.to_be_bytes());
    assert!(decode_assignment(&huge_user_data).is_err());
    // Bytes that are not UTF-8 in a topic name are kept lossily.
    let decoded = decode_assignment(&[0, 0, 0, 0, 0, 1, 0, 1, 0xff, 0, 0, 0, 0]).unwrap();
    assert_eq!(decoded.partitions[0].0, "\u{fffd}");
    // A cheap pseudo-random fuzz.
    use rand_core::{Rng as _, SeedableRng as _};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0x2545_f491_4f6c_dd1d);
    for _ in 0..20_000 {
        let mut bytes = valid.clone();
        let mut state = 0;
        for _ in 0..3 {
            state = rng.next_u64();
            let index = (state as usize) % bytes.len();
            bytes[index] = (state >> 32) as u8;
        }
        let cut = (state >> 40) as usize % (bytes.len() + 1);
        let _ = decode_assignment(&bytes[..cut]);
    }
}

#[test]
fn datetimes_parse_to_epoch_milliseconds() {
    assert_eq!(parse_utc_datetime("1970-01-01T00:00:00Z"), Ok(0));
    assert_eq!(
        parse_utc_datetime("2024-01-01T00:00:00Z"),
        Ok(1_704_067_200_000)
    );
    assert_eq!(
        parse_utc_datetime("2024-02-29T12:34:56.789Z"),
        Ok(1_709_210_096_789)
    );
    assert_eq!(
        parse_utc_datetime("2000-03-01T00:00:00.5Z"),
        Ok(951_868_800_500)
    );
    assert_eq!(
        parse_utc_datetime("2038-01-19T03:14:08.123456789z"),
        Ok(2_147_483_648_123)
    );
    assert_eq!(
        parse_utc_datetime("2024-01-01 00:00:01Z"),
        Ok(1_704_067_201_000)
    );
    // RFC 3339's leap second reads as the second before it.
    assert_eq!(
        parse_utc_datetime("2016-12-31T23:59:60Z"),
        parse_utc_datetime("2016-12-31T23:59:59Z")
    );
    // An offset is applied, as Kafka's --to-datetime does.
    assert_eq!(
        parse_utc_datetime("2024-01-01T02:00:00+02:00"),
        Ok(1_704_067_200_000)
    );
}

#[test]
fn durations_parse_to_milliseconds() {
    for (text, ms) in [
        ("PT1H30M", 5_400_000),
        ("P1DT2H", 93_600_000),
        ("PT0.5S", 500),
        ("1h 30m", 5_400_000),
        ("2 days", 172_800_000),
        ("P7D", 604_800_000),
    ] {
        assert_eq!(parse_duration_ms(text), Ok(ms), "{text}");
    }
    for bad in ["", "P1M", "1 year", "-PT1H", "soon", "PT"] {
        assert!(parse_duration_ms(bad).is_err(), "{bad:?} was accepted");
    }
}

#[test]
fn bad_datetimes_are_refused() {
    for text in [
        "",
        "2024-01-01",
        "2024-01-01T00:00:00",
        "2024-01-01T00:00:00ZZ",
        "2024-13-01T00:00:00Z",
        "2023-02-29T00:00:00Z",
        "1900-02-29T00:00:00Z",
        "2024-04-31T00:00:00Z",
        "2024-01-00T00:00:00Z",
        "2024-01-01T24:00:00Z",
        "2024-01-01T00:60:00Z",
        "2024-01-01T00:00:00.Z",
        "2024-01-01T00:00:00.1234567890Z",
        "1969-12-31T23:59:59Z",
        "+024-01-01T00:00:00Z",
        "2024-1-01T00:00:00Z",
        "２０２４-01-01T00:00:00Z",
    ] {
        assert!(parse_utc_datetime(text).is_err(), "{text:?} was accepted");
    }
}

#[test]
fn offsets_are_clamped_into_the_log() {
    assert_eq!(clamp_offset(5, 10, 20), 10);
    assert_eq!(clamp_offset(15, 10, 20), 15);
    assert_eq!(clamp_offset(25, 10, 20), 20);
    assert_eq!(clamp_offset(-1, 0, 0), 0);
    assert_eq!(clamp_offset(i64::MAX, 0, 7), 7);
}

fn offsets(committed: Option<i64>, at_time: Option<i64>) -> PartitionOffsets {
    PartitionOffsets {
        committed,
        log_start: 10,
        log_end: 20,
        at_time,
    }
}

#[test]
fn every_target_gives_a_clamped_offset() {
    assert_eq!(
        new_offset(Target::Earliest, offsets(Some(15), None)),
        Ok(10)
    );
    assert_eq!(new_offset(Target::Latest, offsets(None, None)), Ok(20));
    assert_eq!(new_offset(Target::Offset(3), offsets(None, None)), Ok(10));
    assert_eq!(new_offset(Target::Offset(17), offsets(None, None)), Ok(17));
    assert_eq!(new_offset(Target::Offset(99), offsets(None, None)), Ok(20));
    assert_eq!(
        new_offset(Target::Timestamp(1), offsets(None, Some(12))),
        Ok(12)
    );
    assert_eq!(
        new_offset(Target::Timestamp(1), offsets(None, None)),
        Ok(20),
        "no record that recent: the log end"
    );
}

#[test]
fn shift_by_moves_the_committed_offset_and_needs_one() {
    assert_eq!(
        new_offset(Target::ShiftBy(3), offsets(Some(15), None)),
        Ok(18)
    );
    assert_eq!(
        new_offset(Target::ShiftBy(-3), offsets(Some(15), None)),
        Ok(12)
    );
    assert_eq!(
        new_offset(Target::ShiftBy(-30), offsets(Some(15), None)),
        Ok(10)
    );
    assert_eq!(
        new_offset(Target::ShiftBy(30), offsets(Some(15), None)),
        Ok(20)
    );
    assert_eq!(
        new_offset(Target::ShiftBy(i64::MAX), offsets(Some(15), None)),
        Ok(20)
    );
    assert_eq!(
        new_offset(Target::ShiftBy(i64::MIN), offsets(Some(15), None)),
        Ok(10)
    );
    assert!(new_offset(Target::ShiftBy(1), offsets(None, None)).is_err());
}

#[test]
fn a_group_with_members_or_a_live_state_is_active() {
    assert!(!is_active("Empty", 0));
    assert!(!is_active("dead", 0));
    assert!(is_active("Empty", 1));
    assert!(is_active("Stable", 0));
    assert!(is_active("PreparingRebalance", 0));
}

fn member(id: &str) -> GroupMember {
    GroupMember {
        member_id: id.to_owned(),
        client_id: format!("client-{id}"),
        client_host: "/127.0.0.1".to_owned(),
        assignment: Vec::new(),
    }
}

#[test]
fn describe_rows_join_commits_owners_and_idle_members() {
    let mut busy = member("m1");
    busy.assignment = encode(0, &[("t", &[0, 1])], None);
    let idle = member("m2");
    let description = GroupDescription {
        group: "g".into(),
        error: None,
        state: "Stable".into(),
        protocol_type: "consumer".into(),
        protocol: "range".into(),
        members: vec![busy.clone(), idle.clone()],
    };
    let owners = owners(&description);
    let committed = BTreeMap::from([(("t".to_owned(), 0), 4), (("old".to_owned(), 0), 2)]);
    let ends = BTreeMap::from([(("t".to_owned(), 0), 10), (("t".to_owned(), 1), 3)]);
    let rows = describe_rows("g", &description.members, &committed, &owners, &ends);
    let summary: Vec<_> = rows
        .iter()
        .map(|r| {
            (
                r.topic.clone(),
                r.partition,
                r.current_offset,
                r.log_end_offset,
                r.lag,
                r.consumer_id.clone(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (Some("old".into()), Some(0), Some(2), None, None, None),
            (
                Some("t".into()),
                Some(0),
                Some(4),
                Some(10),
                Some(6),
                Some("m1".into())
            ),
            (
                Some("t".into()),
                Some(1),
                None,
                Some(3),
                None,
                Some("m1".into())
            ),
            (None, None, None, None, None, Some("m2".into())),
        ]
    );
    assert_eq!(rows[1].client_id.as_deref(), Some("client-m1"));
    assert_eq!(rows[1].host.as_deref(), Some("/127.0.0.1"));
}
