//! The store's watches as a channel of typed events.
//!
//! ZooKeeper persistent watches (3.6+) on the paths the controller follows, set once and kept
//! across reconnections by the client, plus the session's state. An event says *what* changed,
//! not the new content: the receiver reads what it needs (as Kafka's controller handlers do),
//! so events may be coalesced or arrive for a change already read without harm.
//!
//! Events during a disconnection can be lost (ZOOKEEPER-4698), so after
//! [`SessionEvent::Reconnected`] the receiver must read everything again; after
//! [`SessionEvent::Expired`] no more events come and the store is dead.

use tokio::sync::mpsc;
use zookeeper_client::{AddWatchMode, EventType, SessionState};

use super::store::ZkStore;
use super::znode::paths;
use super::{client_error, ZkError};

/// A change in ZooKeeper that the controller or broker reacts to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ZkEvent {
    /// A broker registered or went away (children of `/brokers/ids`), or a registration
    /// changed.
    BrokersChanged,
    /// A topic was created or deleted (children of `/brokers/topics`).
    TopicsChanged,
    /// A topic was marked for deletion, or a mark removed (children of
    /// `/admin/delete_topics`).
    TopicDeletionsChanged,
    /// An ISR change notification was created or deleted (children of
    /// `/isr_change_notification`).
    IsrChangesNotified,
    /// `/controller` was created, deleted or rewritten: the controller may have moved.
    ControllerChanged,
    /// The session's state changed.
    Session(SessionEvent),
}

/// The session's state changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SessionEvent {
    /// The connection was lost; the session may still be alive on the server.
    Disconnected,
    /// Connected again within the session: ephemeral znodes are intact, but watch events of
    /// the gap may be lost, so everything must be read again.
    Reconnected,
    /// The session expired: its ephemeral znodes are gone. Connect a new store and register
    /// again.
    Expired,
    /// The session was closed by this process.
    Closed,
    /// Authentication failed; the session is unusable.
    AuthFailed,
}

impl SessionEvent {
    /// Whether no event follows this one.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            SessionEvent::Expired | SessionEvent::Closed | SessionEvent::AuthFailed
        )
    }
}

/// The watched paths and the event each one's changes give.
const WATCHED: &[(&str, ZkEvent)] = &[
    (paths::BROKER_IDS, ZkEvent::BrokersChanged),
    (paths::TOPICS, ZkEvent::TopicsChanged),
    (paths::DELETE_TOPICS, ZkEvent::TopicDeletionsChanged),
    (paths::ISR_CHANGES, ZkEvent::IsrChangesNotified),
    (paths::CONTROLLER, ZkEvent::ControllerChanged),
];

/// The receiving end of [`ZkStore::watch`]. Dropping it stops the watch tasks at their next
/// event.
#[derive(Debug)]
pub struct ZkEvents {
    receiver: mpsc::UnboundedReceiver<ZkEvent>,
}

impl ZkEvents {
    /// The next event; `None` once the session has ended and every event was received.
    pub async fn next(&mut self) -> Option<ZkEvent> {
        self.receiver.recv().await
    }

    /// An event already waiting, without waiting for one.
    pub fn try_next(&mut self) -> Option<ZkEvent> {
        self.receiver.try_recv().ok()
    }

    /// The underlying channel, e.g. to wrap it in a stream.
    pub fn into_inner(self) -> mpsc::UnboundedReceiver<ZkEvent> {
        self.receiver
    }
}

impl ZkStore {
    /// Sets the watches and returns their events. The watches are in place when this returns:
    /// every change after that point gives an event, so a caller watches first and reads
    /// second.
    pub async fn watch(&self) -> Result<ZkEvents, ZkError> {
        let (sender, receiver) = mpsc::unbounded_channel();
        let mut watchers = Vec::with_capacity(WATCHED.len());
        for (path, event) in WATCHED {
            let watcher = self
                .client
                .watch(path, AddWatchMode::Persistent)
                .await
                .map_err(client_error("watch", path))?;
            watchers.push((watcher, *event));
        }
        for (mut watcher, event) in watchers {
            let sender = sender.clone();
            tokio::spawn(async move {
                loop {
                    let watched = watcher.changed().await;
                    if watched.event_type == EventType::Session {
                        // The session task reports these; after a terminal one this watcher
                        // must not be polled again.
                        if watched.session_state.is_terminated() {
                            return;
                        }
                        continue;
                    }
                    if sender.send(event).is_err() {
                        return;
                    }
                }
            });
        }
        let mut states = self.client.state_watcher();
        tokio::spawn(async move {
            let mut disconnected = false;
            loop {
                let event = match states.changed().await {
                    SessionState::Disconnected => {
                        disconnected = true;
                        SessionEvent::Disconnected
                    }
                    SessionState::SyncConnected | SessionState::ConnectedReadOnly => {
                        if !std::mem::take(&mut disconnected) {
                            continue;
                        }
                        SessionEvent::Reconnected
                    }
                    SessionState::Expired => SessionEvent::Expired,
                    SessionState::Closed => SessionEvent::Closed,
                    SessionState::AuthFailed => SessionEvent::AuthFailed,
                };
                if sender.send(ZkEvent::Session(event)).is_err() || event.is_terminal() {
                    return;
                }
            }
        });
        Ok(ZkEvents { receiver })
    }
}
