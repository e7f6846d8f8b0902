//! Property tests of replica placement (`controller::assignment`, Kafka's
//! `assignReplicasToBrokers`) over random rack layouts: 1–5 racks of uneven sizes, 1–12
//! brokers with scattered ids, 1–60 partitions, every replication factor the brokers allow and
//! Kafka's two random draws. For every placement:
//! - each partition has `replication_factor` distinct registered brokers;
//! - each partition spans `min(replication_factor, racks)` racks (rack-aware);
//! - leaders (first replicas) are balanced within one per broker;
//! - with same-size racks (or none), every broker holds exactly as many replicas as any other
//!   when the partitions are a whole number of rounds of the brokers, and at most
//!   `replication_factor` more than any other otherwise (with uneven racks Kafka deliberately
//!   loads the brokers of small racks more: only the span holds there);
//! - partitions added later (CreatePartitions) keep the span and the replication factor.
//!
//! A failure names its seed; `STROM_PLACEMENT_SEED=<n>` replays that one with the layout
//! printed, `STROM_PLACEMENT_SEEDS` (default 3000) sets how many run.

use std::collections::{BTreeMap, BTreeSet};

use rand_chacha::ChaCha8Rng;
use rand_core::{Rng as _, SeedableRng as _};
use strom_meta::controller::assignment::{
    assign_added_partitions, assign_replicas, AssignmentError, PlacementBroker,
};
use strom_meta::replication::BrokerId;

/// A random draw below `n`.
fn below(rng: &mut ChaCha8Rng, n: usize) -> usize {
    (rng.next_u64() % n as u64) as usize
}

/// One random case.
#[derive(Debug)]
struct Case {
    brokers: Vec<PlacementBroker>,
    partitions: i32,
    replication_factor: i32,
    start_index: usize,
    replica_shift: usize,
    /// Partitions a later CreatePartitions adds.
    added: i32,
}

fn case(seed: u64) -> Case {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let broker_count = 1 + below(&mut rng, 12);
    let rack_count = 1 + below(&mut rng, 5.min(broker_count));
    // One case in eight without racks; one in three with same-size racks.
    let racked = below(&mut rng, 8) != 0;
    let even = below(&mut rng, 3) == 0;
    let mut ids: BTreeSet<BrokerId> = BTreeSet::new();
    while ids.len() < broker_count {
        ids.insert(below(&mut rng, 100) as BrokerId);
    }
    let mut brokers: Vec<PlacementBroker> = ids
        .into_iter()
        .enumerate()
        .map(|(i, id)| PlacementBroker {
            id,
            rack: racked.then(|| {
                // Every rack gets a broker; the rest go round (even) or anywhere.
                let rack = if i < rack_count || even {
                    i % rack_count
                } else {
                    below(&mut rng, rack_count)
                };
                format!("rack-{rack}")
            }),
        })
        .collect();
    // The caller's order must not matter: shuffle.
    for i in (1..brokers.len()).rev() {
        let j = below(&mut rng, i + 1);
        brokers.swap(i, j);
    }
    Case {
        partitions: 1 + below(&mut rng, 60) as i32,
        replication_factor: 1 + below(&mut rng, broker_count.min(5)) as i32,
        start_index: below(&mut rng, broker_count),
        replica_shift: below(&mut rng, broker_count),
        added: below(&mut rng, 20) as i32,
        brokers,
    }
}

fn racks(case: &Case) -> BTreeMap<BrokerId, String> {
    case.brokers
        .iter()
        .filter_map(|b| Some((b.id, b.rack.clone()?)))
        .collect()
}

/// The spread of `counts` over every broker (brokers with none count 0): max − min.
fn spread(case: &Case, counts: &BTreeMap<BrokerId, usize>) -> usize {
    let all: Vec<usize> = case
        .brokers
        .iter()
        .map(|b| counts.get(&b.id).copied().unwrap_or(0))
        .collect();
    all.iter().max().unwrap() - all.iter().min().unwrap()
}

/// Checks every partition of `assignment` (numbered from `first`): size, distinct registered
/// brokers, rack span.
fn check_partitions(
    case: &Case,
    assignment: &BTreeMap<i32, Vec<BrokerId>>,
    first: i32,
    count: i32,
) -> Result<(), String> {
    let racks = racks(case);
    let rack_count = racks.values().collect::<BTreeSet<_>>().len();
    let registered: BTreeSet<BrokerId> = case.brokers.iter().map(|b| b.id).collect();
    let numbers: Vec<i32> = assignment.keys().copied().collect();
    if numbers != (first..first + count).collect::<Vec<_>>() {
        return Err(format!(
            "partitions {numbers:?}, wanted {first}..{}",
            first + count
        ));
    }
    for (p, replicas) in assignment {
        let distinct: BTreeSet<&BrokerId> = replicas.iter().collect();
        if replicas.len() != case.replication_factor as usize || distinct.len() != replicas.len() {
            return Err(format!(
                "partition {p}: {replicas:?} is not {} distinct brokers",
                case.replication_factor
            ));
        }
        if let Some(unknown) = replicas.iter().find(|r| !registered.contains(r)) {
            return Err(format!("partition {p}: broker {unknown} is not registered"));
        }
        if !racks.is_empty() {
            let spanned: BTreeSet<&String> = replicas.iter().map(|r| &racks[r]).collect();
            let wanted = (case.replication_factor as usize).min(rack_count);
            if spanned.len() != wanted {
                return Err(format!(
                    "partition {p}: {replicas:?} spans {} racks {spanned:?}, wanted {wanted}",
                    spanned.len()
                ));
            }
        }
    }
    Ok(())
}

fn check(seed: u64) -> Result<(), String> {
    let case = case(seed);
    let assignment = assign_replicas(
        &case.brokers,
        case.partitions,
        case.replication_factor,
        0,
        case.start_index,
        case.replica_shift,
    )
    .map_err(|e| format!("refused: {e}"))?;
    check_partitions(&case, &assignment, 0, case.partitions)?;
    let mut leaders: BTreeMap<BrokerId, usize> = BTreeMap::new();
    let mut replicas: BTreeMap<BrokerId, usize> = BTreeMap::new();
    for r in assignment.values() {
        *leaders.entry(r[0]).or_default() += 1;
        for b in r {
            *replicas.entry(*b).or_default() += 1;
        }
    }
    if spread(&case, &leaders) > 1 {
        return Err(format!("leaders unbalanced: {leaders:?}"));
    }
    let racks = racks(&case);
    let mut rack_sizes: BTreeMap<&String, usize> = BTreeMap::new();
    for rack in racks.values() {
        *rack_sizes.entry(rack).or_default() += 1;
    }
    let even_racks = rack_sizes.values().collect::<BTreeSet<_>>().len() <= 1;
    let whole_rounds = (case.partitions as usize).is_multiple_of(case.brokers.len());
    if even_racks && whole_rounds && spread(&case, &replicas) > 0 {
        return Err(format!(
            "replicas unbalanced over same-size racks: {replicas:?}"
        ));
    }
    if even_racks && spread(&case, &replicas) > case.replication_factor as usize {
        return Err(format!("replicas spread over more than RF: {replicas:?}"));
    }
    if case.added > 0 {
        let total = case.partitions + case.added;
        let added = assign_added_partitions(&case.brokers, &assignment, total)
            .map_err(|e| format!("adding partitions refused: {e}"))?;
        check_partitions(&case, &added, case.partitions, case.added)?;
    }
    Ok(())
}

#[test]
fn placement_properties_hold_over_random_rack_layouts() {
    if let Ok(seed) = std::env::var("STROM_PLACEMENT_SEED") {
        let seed: u64 = seed.parse().expect("STROM_PLACEMENT_SEED is a number");
        eprintln!("{:#?}", case(seed));
        if let Err(message) = check(seed) {
            panic!("seed {seed}: {message}");
        }
        return;
    }
    let seeds: u64 = std::env::var("STROM_PLACEMENT_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3000);
    let mut racked = 0;
    for seed in 0..seeds {
        if let Err(message) = check(seed) {
            panic!("seed {seed}: {message} (replay with STROM_PLACEMENT_SEED={seed})");
        }
        racked += usize::from(case(seed).brokers[0].rack.is_some());
    }
    eprintln!("{seeds} placements checked, {racked} of them rack-aware");
}

#[test]
fn adding_partitions_refuses_a_decrease_and_mixed_racks_are_refused() {
    let brokers: Vec<PlacementBroker> = (1..=3)
        .map(|id| PlacementBroker {
            id,
            rack: Some(format!("rack-{id}")),
        })
        .collect();
    let existing = assign_replicas(&brokers, 3, 3, 0, 0, 0).unwrap();
    let err = assign_added_partitions(&brokers, &existing, 3).unwrap_err();
    assert_eq!(err.code(), 37);
    assert_eq!(
        err.to_string(),
        "Topic currently has 3 partitions, 3 would not be an increase."
    );
    let mut mixed = brokers.clone();
    mixed[1].rack = None;
    assert_eq!(
        assign_added_partitions(&mixed, &existing, 4).unwrap_err(),
        AssignmentError::MixedRackInformation
    );
}

#[test]
fn added_partitions_continue_kafkas_walk() {
    // Kafka's AdminZkClient.createPartitions on brokers 0-4 (no racks) for a topic whose
    // partition 0 starts at broker 2: start index and shift are both 2, partitions from 3.
    let brokers: Vec<PlacementBroker> = (0..5)
        .map(|id| PlacementBroker { id, rack: None })
        .collect();
    let existing: BTreeMap<i32, Vec<BrokerId>> =
        [(0, vec![2, 3]), (1, vec![3, 4]), (2, vec![4, 0])].into();
    let added = assign_added_partitions(&brokers, &existing, 6).unwrap();
    let expected: BTreeMap<i32, Vec<BrokerId>> =
        [(3, vec![0, 3]), (4, vec![1, 4]), (5, vec![2, 1])].into();
    assert_eq!(added, expected);
}
