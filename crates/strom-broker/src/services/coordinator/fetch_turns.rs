//! The order in which a group's OffsetFetches read the offset table: each takes a turn at
//! receipt and reads only after every earlier fetch of the same group has read.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::GroupCoordinator;

/// One OffsetFetch's place in its group's order of reads: done once it has read the table
/// (or was dropped without reading).
#[derive(Default)]
pub struct FetchTurn {
    done: std::sync::atomic::AtomicBool,
    notify: tokio::sync::Notify,
}

impl FetchTurn {
    fn is_done(&self) -> bool {
        self.done.load(std::sync::atomic::Ordering::Acquire)
    }

    async fn wait(&self) {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.is_done() {
                return;
            }
            notified.await;
        }
    }
}

/// An OffsetFetch's turns in the groups it reads: [`FetchTurns::wait`] returns once every
/// fetch of those groups received before it has read; dropping it (after reading, or when
/// the request is abandoned) lets the next ones read.
pub struct FetchTurns {
    /// The coordinator's map of each group's last fetch turn.
    last: Arc<Mutex<HashMap<String, Arc<FetchTurn>>>>,
    /// (group, this fetch's turn, the previous fetch's turn if it had not read yet)
    turns: Vec<(String, Arc<FetchTurn>, Option<Arc<FetchTurn>>)>,
}

impl FetchTurns {
    /// True when no earlier fetch of these groups is still to read.
    pub fn ready(&self) -> bool {
        self.turns
            .iter()
            .all(|(_, _, previous)| previous.as_ref().is_none_or(|p| p.is_done()))
    }

    /// Waits until every earlier fetch of these groups has read.
    pub async fn wait(&self) {
        for (_, _, previous) in &self.turns {
            if let Some(previous) = previous {
                previous.wait().await;
            }
        }
    }
}

impl Drop for FetchTurns {
    fn drop(&mut self) {
        let mut turns = self.last.lock().unwrap();
        for (group, mine, _) in self.turns.drain(..) {
            mine.done.store(true, std::sync::atomic::Ordering::Release);
            mine.notify.notify_waiters();
            if turns
                .get(&group)
                .is_some_and(|last| Arc::ptr_eq(last, &mine))
            {
                turns.remove(&group);
            }
        }
    }
}

impl GroupCoordinator {
    /// Takes an OffsetFetch's place, at receipt, in the order of reads of each of `groups`.
    /// Fetches of a group read the table in the order they were received, so pipelined
    /// fetches never answer an older offset than a fetch before them (a fetch that waited for
    /// its commits could otherwise read after a later fetch that did not have to wait).
    pub fn take_fetch_turn(&self, groups: &[String]) -> FetchTurns {
        let mut last = self.fetch_turns.lock().unwrap();
        // A group named twice in one request takes one turn (a second would wait for the first).
        let unique: std::collections::BTreeSet<&String> = groups.iter().collect();
        let turns = unique
            .into_iter()
            .map(|group| {
                let mine = Arc::new(FetchTurn::default());
                let previous = last
                    .insert(group.clone(), mine.clone())
                    .filter(|p| !p.is_done());
                (group.clone(), mine, previous)
            })
            .collect();
        drop(last);
        FetchTurns {
            last: self.fetch_turns.clone(),
            turns,
        }
    }
}
