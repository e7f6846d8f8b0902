//! The store's watches as a channel of typed events.
//!
//! One task per watched path keeps a one-shot ZooKeeper watch armed on it, as Kafka's
//! controller does: a children watch on `/brokers/ids`, `/brokers/topics`,
//! `/admin/delete_topics`, `/isr_change_notification` and `/config/changes` (Kafka's brokers'
//! config change listener), an existence watch on `/controller` and on
//! `/admin/preferred_replica_election`.

//! `/admin/reassign_partitions`.
//! When a watch fires the task arms the next one *before* it sends the event, so a receiver
//! that reads after the event sees every change that did not give it a further event. An event
//! says *what* changed, not the new content: the receiver reads what it needs, so coalesced or
//! repeated events do no harm.
//!
//! Persistent watches (ZooKeeper 3.6+) would save the re-arming, but `zookeeper-client` 0.11.2
//! re-sends them with the old `SetWatches` request after a reconnection, which drops them
//! (`resend_watches` never raises the request's index past 0): a store would then go deaf after
//! its first lost connection. One-shot watches are re-sent correctly, and the server fires them
//! for changes made while the client was away.
//!
//! The tasks hold the client weakly: dropping the last [`ZkStore`] clone still closes the
//! session, which ends the tasks. After [`SessionEvent::Reconnected`] a receiver should read
//! everything again anyway (cheap, and safe against any event lost in the gap); after
//! [`SessionEvent::Expired`] no more events come and the store is dead.

mod topic_watch;

use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::sync::mpsc;
use zookeeper_client::{Client, Error as ClientError, EventType, OneshotWatcher, SessionState};

use super::store::ZkStore;
use super::znode::paths;
use super::{client_error, ZkError};

/// A change in ZooKeeper that the controller or broker reacts to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ZkEvent {
    /// A broker registered or went away (children of `/brokers/ids`), or a registration
    /// changed.
    BrokersChanged,
    /// A topic was created or deleted (children of `/brokers/topics`), or its assignment was
    /// rewritten (data of `/brokers/topics/<t>`, [`topic_watch`], a child of this module).
    TopicsChanged,
    /// A topic was marked for deletion, or a mark removed (children of
    /// `/admin/delete_topics`).
    TopicDeletionsChanged,
    /// An ISR change notification was created or deleted (children of
    /// `/isr_change_notification`).
    IsrChangesNotified,
    /// `/controller` was created, deleted or rewritten: the controller may have moved.
    ControllerChanged,
    /// A configuration change notification was created or deleted (children of
    /// `/config/changes`).
    ConfigChanged,
    /// `/admin/preferred_replica_election` was created, deleted or rewritten.
    PreferredReplicaElection,

    /// `/admin/reassign_partitions` was created, changed or deleted.
    ReassignmentChanged,
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

/// What a watch on a path looks at.
#[derive(Clone, Copy, Debug)]
enum Kind {
    /// The path's children (and its deletion).
    Children,
    /// The path's existence and data.
    Existence,
}

/// The watched paths, what is watched on each, and the event its changes give.
const WATCHED: &[(&str, Kind, ZkEvent)] = &[
    (paths::BROKER_IDS, Kind::Children, ZkEvent::BrokersChanged),
    (paths::TOPICS, Kind::Children, ZkEvent::TopicsChanged),
    (
        paths::DELETE_TOPICS,
        Kind::Children,
        ZkEvent::TopicDeletionsChanged,
    ),
    (
        paths::ISR_CHANGES,
        Kind::Children,
        ZkEvent::IsrChangesNotified,
    ),
    (
        paths::CONTROLLER,
        Kind::Existence,
        ZkEvent::ControllerChanged,
    ),
    (
        paths::CONFIG_CHANGES,
        Kind::Children,
        ZkEvent::ConfigChanged,
    ),
    (
        paths::PREFERRED_REPLICA_ELECTION,
        Kind::Existence,
        ZkEvent::PreferredReplicaElection,
    ),
    (
        paths::REASSIGN_PARTITIONS,
        Kind::Existence,
        ZkEvent::ReassignmentChanged,
    ),
];

/// How long a watch task waits before arming again after a failure other than the end of the
/// session (a lost connection, a missing parent).
const REARM_DELAY: Duration = Duration::from_millis(100);

/// Arms one watch on `path`.
async fn arm(client: &Client, path: &str, kind: Kind) -> Result<OneshotWatcher, ClientError> {
    match kind {
        Kind::Children => client
            .list_and_watch_children(path)
            .await
            .map(|(_, watcher)| watcher),
        Kind::Existence => client
            .check_and_watch_stat(path)
            .await
            .map(|(_, watcher)| watcher),
    }
}

/// Arms a watch on `path`, retrying until it is armed; `None` once the session has ended or
/// the store is gone.
async fn arm_until_armed(client: &Weak<Client>, path: &str, kind: Kind) -> Option<OneshotWatcher> {
    loop {
        let outcome = {
            let client = client.upgrade()?;
            arm(&client, path, kind).await
        };
        match outcome {
            Ok(watcher) => return Some(watcher),
            Err(
                ClientError::SessionExpired | ClientError::ClientClosed | ClientError::AuthFailed,
            ) => return None,
            Err(error) => {
                tracing::debug!("watch on {path} not armed ({error}); trying again");
                tokio::time::sleep(REARM_DELAY).await;
            }
        }
    }
}

/// Keeps a watch armed on `path` and sends `event` for each change, until the session ends,
/// the store is dropped or the receiver is.
async fn watch_path(
    client: Weak<Client>,
    path: &'static str,
    kind: Kind,
    event: ZkEvent,
    mut watcher: OneshotWatcher,
    sender: mpsc::UnboundedSender<ZkEvent>,
) {
    loop {
        let fired = watcher.changed().await;
        if fired.event_type == EventType::Session && fired.session_state.is_terminated() {
            return;
        }
        match arm_until_armed(&client, path, kind).await {
            Some(next) => watcher = next,
            None => return,
        }
        if sender.send(event).is_err() {
            return;
        }
    }
}

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
    /// Arms the watches and returns their events. The watches are in place when this returns:
    /// every change after that point gives an event, so a caller watches first and reads
    /// second.
    pub async fn watch(&self) -> Result<ZkEvents, ZkError> {
        let (sender, receiver) = mpsc::unbounded_channel();
        let mut watchers = Vec::with_capacity(WATCHED.len());
        for (path, kind, _) in WATCHED {
            watchers.push(
                arm(&self.client, path, *kind)
                    .await
                    .map_err(client_error("watch", path))?,
            );
        }
        for ((path, kind, event), watcher) in WATCHED.iter().zip(watchers) {
            let client = Arc::downgrade(&self.client);
            tokio::spawn(watch_path(
                client,
                path,
                *kind,
                *event,
                watcher,
                sender.clone(),
            ));
        }
        topic_watch::spawn(Arc::downgrade(&self.client), sender.clone());
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
