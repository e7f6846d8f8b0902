//! Releasing reservations that no task owns any more (the SDK's unexpected-resource cleaner).
//!
//! After a permanent replacement, a decommission or a resource change, the old reservations
//! keep coming back in offers, because Mesos offers a role's reservations only to it. The
//! scheduler destroys such volumes and unreserves such resources when they are offered. Only
//! resources reserved for this service's role **and** principal are touched: other frameworks
//! sharing the role keep theirs (dcos-commons PR 3213 fixed the SDK cleaning others' up).

use std::collections::BTreeSet;

use uuid::Uuid;

use crate::offer::{Offer, Operation};
use crate::resources::Resource;

/// DESTROY and UNRESERVE operations for the offer's reservations of (`role`, `principal`) whose
/// resource ids are not in `owned`.
pub fn release_unexpected(
    offer: &Offer,
    role: &str,
    principal: &str,
    owned: &BTreeSet<Uuid>,
) -> Vec<Operation> {
    let mut volumes: Vec<Resource> = Vec::new();
    let mut reservations: Vec<Resource> = Vec::new();
    for resource in &offer.resources {
        let Some(reservation) = &resource.reservation else {
            continue;
        };
        if reservation.role != role
            || reservation.principal != principal
            || owned.contains(&reservation.resource_id)
        {
            continue;
        }
        let mut plain = resource.clone();
        if let Some(disk) = &mut plain.disk {
            if disk.persistence_id.is_some() {
                volumes.push(resource.clone());
                disk.persistence_id = None;
                disk.container_path = None;
            }
        }
        reservations.push(plain);
    }
    let mut operations = Vec::new();
    if !volumes.is_empty() {
        operations.push(Operation::Destroy { volumes });
    }
    if !reservations.is_empty() {
        operations.push(Operation::Unreserve {
            resources: reservations,
        });
    }
    operations
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::resources::{DiskInfo, DiskSource, Reservation};

    fn reserved(resource: Resource, role: &str, principal: &str, id: u128) -> Resource {
        resource.reserved(Reservation {
            role: role.into(),
            principal: principal.into(),
            resource_id: Uuid::from_u128(id),
        })
    }

    #[test]
    fn only_this_services_unowned_reservations_are_released() {
        let mut volume = reserved(
            Resource::disk(5000.0, DiskSource::Root),
            "kafka-role",
            "kp",
            3,
        );
        volume.disk = Some(DiskInfo {
            source: DiskSource::Root,
            persistence_id: Some("p-3".into()),
            container_path: Some("data".into()),
        });
        let offer = Offer {
            id: "o1".into(),
            agent_id: "a1".into(),
            hostname: "h1".into(),
            ip: "127.0.0.1".into(),
            zone: None,
            region: None,
            attributes: BTreeMap::new(),
            resources: vec![
                Resource::scalar("cpus", 4.0),
                reserved(Resource::scalar("cpus", 1.0), "kafka-role", "kp", 1),
                reserved(Resource::scalar("mem", 2048.0), "kafka-role", "kp", 2),
                volume.clone(),
                reserved(
                    Resource::scalar("cpus", 1.0),
                    "kafka-role",
                    "other-principal",
                    4,
                ),
            ],
        };
        let owned = BTreeSet::from([Uuid::from_u128(1)]);
        let operations = release_unexpected(&offer, "kafka-role", "kp", &owned);
        assert_eq!(operations.len(), 2);
        let Operation::Destroy { volumes } = &operations[0] else {
            panic!("{operations:?}")
        };
        assert_eq!(volumes, &[volume]);
        let Operation::Unreserve { resources } = &operations[1] else {
            panic!("{operations:?}")
        };
        let ids: Vec<Uuid> = resources.iter().filter_map(Resource::resource_id).collect();
        assert_eq!(ids, [Uuid::from_u128(2), Uuid::from_u128(3)]);
        assert_eq!(resources[1].disk.as_ref().unwrap().persistence_id, None);
        let everything = BTreeSet::from([1, 2, 3].map(Uuid::from_u128));
        assert!(release_unexpected(&offer, "kafka-role", "kp", &everything).is_empty());
    }
}
