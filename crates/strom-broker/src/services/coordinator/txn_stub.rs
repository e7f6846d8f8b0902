//! Placeholder until transactional offset commits land: markers on `__consumer_offsets` have
//! nothing to settle yet.

use super::GroupCoordinator;

impl GroupCoordinator {
    /// A COMMIT or ABORT marker for `producer_id` was appended to `__consumer_offsets`
    /// partition `offsets_partition`.
    pub fn complete_transaction(&self, offsets_partition: i32, producer_id: i64, commit: bool) {
        tracing::debug!(
            offsets_partition,
            producer_id,
            commit,
            "transaction marker on __consumer_offsets"
        );
    }
}
