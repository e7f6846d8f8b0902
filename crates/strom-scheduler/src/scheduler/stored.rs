//! Small state-store accessors for the shells: the framework id an engine registered under and
//! the service's properties (`Properties/<key>`), which the binary uses for what it must
//! remember across restarts (the options of the target config).

use super::Scheduler;
use crate::state;
use crate::store::{Persister, StoreError};

impl<P: Persister> Scheduler<P> {
    /// The framework id the engine registered this service under, if one was stored.
    pub fn framework_id(&self) -> Result<Option<String>, StoreError> {
        state::framework_id(&self.persister)
    }

    /// Stores the framework id an engine registered under, before the engine uses it, so a
    /// restarted scheduler subscribes again as the same framework (Mesos failover). A no-op
    /// when it is already stored.
    pub fn registered(&mut self, framework_id: &str) -> Result<(), StoreError> {
        if self.framework_id()?.as_deref() == Some(framework_id) {
            return Ok(());
        }
        state::store_framework_id(&mut self.persister, framework_id)
    }

    /// A property's value.
    pub fn property(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        state::property(&self.persister, key)
    }

    /// Sets a property (an uninstall's wipe removes it with everything else).
    pub fn set_property(&mut self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        state::set_property(&mut self.persister, key, value)
    }
}
