use super::*;
use crate::resources::Reservation;

fn agent() -> AgentConfig {
    AgentConfig {
        id: "a0".into(),
        hostname: "h0".into(),
        ip: "127.0.0.1".into(),
        zone: None,
        cpus: 2.0,
        mem: 1024.0,
        disk: 500.0,
        ports: (100, 104),
        mounts: vec![
            MountConfig {
                path: "/mnt/d1".into(),
                size_mb: 2000.0,
            },
            MountConfig {
                path: "/mnt/d2".into(),
                size_mb: 3000.0,
            },
        ],
    }
}

fn mount(root: &str) -> DiskSource {
    DiskSource::Mount { root: root.into() }
}

fn disks(offer: &Offer) -> Vec<(Option<&DiskSource>, f64, bool)> {
    offer
        .resources
        .iter()
        .filter(|r| r.name == "disk")
        .map(|r| {
            (
                r.disk.as_ref().map(|d| &d.source),
                r.amount(),
                r.reservation.is_some(),
            )
        })
        .collect()
}

fn reservation(id: Uuid) -> Reservation {
    Reservation {
        role: "kafka-role".into(),
        principal: "kafka-principal".into(),
        resource_id: id,
    }
}

#[test]
fn an_agent_offers_each_free_mount_whole_beside_its_root_disk() {
    let offer = agent_offer(&agent(), &BTreeMap::new(), &[], None, 7);
    assert_eq!(offer.id, "a0-offer-7");
    assert_eq!(
        disks(&offer),
        [
            (Some(&DiskSource::Root), 500.0, false),
            (Some(&mount("/mnt/d1")), 2000.0, false),
            (Some(&mount("/mnt/d2")), 3000.0, false),
        ]
    );
}

#[test]
fn a_reserved_mount_is_offered_only_as_its_reservation_and_leaves_the_root_disk_alone() {
    let id = Uuid::from_u128(1);
    let mut volume = Resource::disk(2000.0, mount("/mnt/d1")).reserved(reservation(id));
    volume.disk.as_mut().unwrap().persistence_id = Some("p1".into());
    let root_id = Uuid::from_u128(2);
    let root = Resource::disk(100.0, DiskSource::Root).reserved(reservation(root_id));
    let reserved: BTreeMap<Uuid, Resource> = [(id, volume), (root_id, root)].into();

    // In use by a live task: neither the mount nor its reservation is offered.
    let offer = agent_offer(&agent(), &reserved, &[id, root_id], None, 1);
    assert_eq!(
        disks(&offer),
        [
            (Some(&DiskSource::Root), 400.0, false),
            (Some(&mount("/mnt/d2")), 3000.0, false),
        ],
        "the ROOT disk shrinks by its own reservation only"
    );
    // Its task is gone: the reservation (with the volume) comes back for a relaunch in place,
    // and the mount is still not offered unreserved.
    let offer = agent_offer(&agent(), &reserved, &[], None, 2);
    assert_eq!(
        disks(&offer),
        [
            (Some(&DiskSource::Root), 400.0, false),
            (Some(&mount("/mnt/d2")), 3000.0, false),
            (Some(&mount("/mnt/d1")), 2000.0, true),
            (Some(&DiskSource::Root), 100.0, true),
        ]
    );
}

#[test]
fn mounts_are_handed_out_to_agents_in_turn() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = LocalEngineConfig::this_machine(dir.path(), 2, (1000, 1099));
    let mounts = (0..3)
        .map(|i| MountConfig {
            path: format!("/mnt/d{i}").into(),
            size_mb: 100.0,
        })
        .collect();
    config.add_mounts(mounts);
    let paths = |agent: &AgentConfig| -> Vec<String> {
        agent
            .mounts
            .iter()
            .map(|m| m.path.display().to_string())
            .collect()
    };
    assert_eq!(paths(&config.agents[0]), ["/mnt/d0", "/mnt/d2"]);
    assert_eq!(paths(&config.agents[1]), ["/mnt/d1"]);
}

#[test]
fn a_mount_volume_is_the_mount_point_and_destroy_empties_it() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    let point = dir.path().join("disk1");
    std::fs::create_dir_all(point.join("broker-0")).unwrap();
    std::fs::write(point.join("broker-0/segment"), b"data").unwrap();
    std::fs::write(point.join("top"), b"data").unwrap();
    let disk = DiskInfo {
        source: mount(point.to_str().unwrap()),
        persistence_id: Some("p1".into()),
        container_path: Some("data".into()),
    };
    assert_eq!(volume_dir(&work, &disk), Some(point.clone()));
    let root = DiskInfo {
        source: DiskSource::Root,
        ..disk.clone()
    };
    assert_eq!(volume_dir(&work, &root), Some(work.join("volumes/p1")));
    let not_a_volume = DiskInfo {
        persistence_id: None,
        ..disk.clone()
    };
    assert_eq!(volume_dir(&work, &not_a_volume), None);
    destroy_volume(&work, &disk);
    assert!(point.is_dir(), "the mount point stays");
    assert_eq!(std::fs::read_dir(&point).unwrap().count(), 0, "emptied");
}
