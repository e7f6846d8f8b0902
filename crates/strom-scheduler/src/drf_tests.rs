use super::*;

pub(crate) fn amounts(cpus: f64, mem: f64, disk: f64) -> Amounts {
    [("cpus", cpus), ("mem", mem), ("disk", disk)]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
}

/// Progressive filling: one task at a time to the first client in DRF order whose task still
/// fits; returns the tasks each client got.
fn fill(
    sorter: &mut DrfSorter,
    free: &mut Amounts,
    tasks: &BTreeMap<&str, Amounts>,
) -> Vec<String> {
    let mut given = Vec::new();
    let fits = |free: &Amounts, task: &Amounts| {
        task.iter()
            .all(|(k, v)| free.get(k).copied().unwrap_or(0.0) + 1e-9 >= *v)
    };
    while let Some(name) = sorter.pick(|name| fits(free, &tasks[name])) {
        let task = &tasks[name.as_str()];
        for (k, v) in task {
            *free.get_mut(k).unwrap() -= v;
        }
        sorter.allocated(&name, task).unwrap();
        given.push(name);
    }
    given
}

#[test]
fn the_drf_papers_example_gives_both_users_two_thirds() {
    // 9 CPUs and 18 GB; A's tasks need <1 CPU, 4 GB>, B's <3 CPUs, 1 GB>.
    let totals = amounts(9.0, 18.0, 0.0);
    let mut sorter = DrfSorter::new(totals.clone());
    sorter.add_client("a", "ra");
    sorter.add_client("b", "rb");
    let tasks: BTreeMap<&str, Amounts> =
        [("a", amounts(1.0, 4.0, 0.0)), ("b", amounts(3.0, 1.0, 0.0))].into();
    let mut free = totals;
    let given = fill(&mut sorter, &mut free, &tasks);
    let count = |who: &str| given.iter().filter(|g| *g == who).count();
    assert_eq!((count("a"), count("b")), (3, 2), "{given:?}");
    assert!((sorter.share("a").unwrap() - 2.0 / 3.0).abs() < 1e-9);
    assert!((sorter.share("b").unwrap() - 2.0 / 3.0).abs() < 1e-9);
}

#[test]
fn a_role_of_weight_two_gets_twice_the_dominant_share() {
    let totals = amounts(12.0, 12_000.0, 0.0);
    let mut sorter = DrfSorter::new(totals.clone());
    sorter.add_client("light", "r1");
    sorter.add_client("heavy", "r2");
    sorter.set_weight("r2", 2.0).unwrap();
    let task = amounts(1.0, 100.0, 0.0);
    let tasks: BTreeMap<&str, Amounts> = [("light", task.clone()), ("heavy", task)].into();
    let mut free = totals;
    let given = fill(&mut sorter, &mut free, &tasks);
    let count = |who: &str| given.iter().filter(|g| *g == who).count();
    assert_eq!((count("light"), count("heavy")), (4, 8), "{given:?}");
    assert_eq!(sorter.role_share("r1"), sorter.role_share("r2"));
}

#[test]
fn frameworks_of_one_role_share_its_entitlement() {
    let mut sorter = DrfSorter::new(amounts(10.0, 10.0, 10.0));
    sorter.add_client("x1", "shared");
    sorter.add_client("x2", "shared");
    sorter.add_client("y", "alone");
    sorter.allocated("x1", &amounts(2.0, 0.0, 0.0)).unwrap();
    sorter.allocated("y", &amounts(0.0, 3.0, 0.0)).unwrap();
    // Role "shared" holds 0.2, "alone" 0.3: the shared role goes first, and inside it x2
    // (nothing yet) before x1.
    assert_eq!(sorter.sort(), ["x2", "x1", "y"]);
    sorter.allocated("x2", &amounts(2.0, 0.0, 0.0)).unwrap();
    // Now the shared role holds 0.4: y comes first although x2's own share is 0.2.
    assert_eq!(sorter.sort(), ["y", "x1", "x2"]);
    sorter.unallocated("x1", &amounts(2.0, 0.0, 0.0)).unwrap();
    assert_eq!(sorter.sort(), ["x1", "x2", "y"], "returned resources count");
}

#[test]
fn suppressed_frameworks_are_skipped_and_ties_are_deterministic() {
    let mut sorter = DrfSorter::new(amounts(4.0, 4.0, 4.0));
    for name in ["c", "a", "b"] {
        sorter.add_client(name, name);
    }
    assert_eq!(sorter.sort(), ["a", "b", "c"], "ties by name");
    sorter.set_active("a", false).unwrap();
    assert_eq!(sorter.pick(|_| true).as_deref(), Some("b"));
    assert_eq!(sorter.pick(|n| n != "b").as_deref(), Some("c"));
    assert_eq!(sorter.pick(|_| false), None);
    sorter.set_active("a", true).unwrap();
    assert_eq!(sorter.pick(|_| true).as_deref(), Some("a"));
    assert!(matches!(
        sorter.set_weight("a", 0.0),
        Err(DrfError::BadWeight { .. })
    ));
    assert!(sorter.set_weight("a", f64::NAN).is_err());
    assert_eq!(
        sorter.allocated("nobody", &amounts(1.0, 0.0, 0.0)),
        Err(DrfError::UnknownClient("nobody".into()))
    );
}
