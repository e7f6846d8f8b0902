//! The `authorized_operations` bitfields of Metadata, DescribeCluster and DescribeGroups.
//!
//! Kafka answers the operations the principal may perform on the resource as a bitfield
//! indexed by `AclOperation` code. Strom has no authorizer, and without one Kafka answers
//! every operation that applies to the resource type (its `AclEntry.supportedOperations`).
//! When the request does not ask, the field stays at its schema default, `i32::MIN`.

/// `AclOperation` codes (Kafka's `org.apache.kafka.common.acl.AclOperation`).
mod code {
    pub const READ: u8 = 3;
    pub const WRITE: u8 = 4;
    pub const CREATE: u8 = 5;
    pub const DELETE: u8 = 6;
    pub const ALTER: u8 = 7;
    pub const DESCRIBE: u8 = 8;
    pub const CLUSTER_ACTION: u8 = 9;
    pub const DESCRIBE_CONFIGS: u8 = 10;
    pub const ALTER_CONFIGS: u8 = 11;
    pub const IDEMPOTENT_WRITE: u8 = 12;
}

/// The schema default: authorized operations were not requested.
pub const NOT_REQUESTED: i32 = i32::MIN;

const fn bits(operations: &[u8]) -> i32 {
    let mut field = 0i32;
    let mut i = 0;
    while i < operations.len() {
        field |= 1 << operations[i];
        i += 1;
    }
    field
}

/// Every operation on a topic: READ, WRITE, CREATE, DELETE, ALTER, DESCRIBE,
/// DESCRIBE_CONFIGS, ALTER_CONFIGS (3576).
pub const TOPIC: i32 = bits(&[
    code::READ,
    code::WRITE,
    code::CREATE,
    code::DELETE,
    code::ALTER,
    code::DESCRIBE,
    code::DESCRIBE_CONFIGS,
    code::ALTER_CONFIGS,
]);

/// Every operation on a group: READ, DELETE, DESCRIBE (328).
pub const GROUP: i32 = bits(&[code::READ, code::DELETE, code::DESCRIBE]);

/// Every operation on the cluster: CREATE, ALTER, DESCRIBE, CLUSTER_ACTION,
/// DESCRIBE_CONFIGS, ALTER_CONFIGS, IDEMPOTENT_WRITE (8096).
pub const CLUSTER: i32 = bits(&[
    code::CREATE,
    code::ALTER,
    code::DESCRIBE,
    code::CLUSTER_ACTION,
    code::DESCRIBE_CONFIGS,
    code::ALTER_CONFIGS,
    code::IDEMPOTENT_WRITE,
]);

/// The field for a resource whose operations are `all`: them if requested, else the default.
pub fn field(requested: bool, all: i32) -> i32 {
    if requested {
        all
    } else {
        NOT_REQUESTED
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn bitfields_match_kafkas_values() {
        assert_eq!(super::TOPIC, 3576);
        assert_eq!(super::GROUP, 328);
        assert_eq!(super::CLUSTER, 8096);
    }
}
