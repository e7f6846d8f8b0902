//! Data watches on every `/brokers/topics/<t>`, as Kafka's controller keeps one per topic
//! (its `PartitionModificationsHandler`): an assignment rewritten in place — partitions added
//! by CreatePartitions through any broker, or by a ZooKeeper-era tool writing the znode —
//! gives a [`ZkEvent::TopicsChanged`], the same event a created or deleted topic gives, and the
//! receiver reads every assignment again.
//!
//! A supervisor keeps its own children watch on `/brokers/topics` and starts one task per topic
//! it has not seen; a task ends when its znode is gone. Like the other watches the tasks hold
//! the client weakly and stop with the session. It does not own what a change means (the
//! controller decides).

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::sync::mpsc;
use zookeeper_client::{Client, Error as ClientError, EventType};

use super::ZkEvent;
use crate::zk::znode::paths;

/// How long a task waits before trying again after a failure other than the end of the
/// session (a lost connection).
const RETRY_DELAY: Duration = Duration::from_millis(100);

/// The topics that have a data-watch task.
type Watched = Arc<Mutex<BTreeSet<String>>>;

/// Starts the supervisor; it ends with the session, the store or the receiver.
pub(super) fn spawn(client: Weak<Client>, sender: mpsc::UnboundedSender<ZkEvent>) {
    tokio::spawn(supervise(client, sender));
}

fn ended(error: &ClientError) -> bool {
    matches!(
        error,
        ClientError::SessionExpired | ClientError::ClientClosed | ClientError::AuthFailed
    )
}

async fn supervise(client: Weak<Client>, sender: mpsc::UnboundedSender<ZkEvent>) {
    let watched: Watched = Arc::default();
    loop {
        let listed = {
            let Some(strong) = client.upgrade() else {
                return;
            };
            strong.list_and_watch_children(paths::TOPICS).await
        };
        let (topics, watcher) = match listed {
            Ok(listed) => listed,
            Err(error) if ended(&error) => return,
            Err(error) => {
                tracing::debug!("topic data watches: listing {} ({error})", paths::TOPICS);
                tokio::time::sleep(RETRY_DELAY).await;
                continue;
            }
        };
        for topic in topics {
            if watched.lock().unwrap().insert(topic.clone()) {
                tokio::spawn(watch_topic(
                    client.clone(),
                    topic,
                    watched.clone(),
                    sender.clone(),
                ));
            }
        }
        if sender.is_closed() {
            return;
        }
        let fired = watcher.changed().await;
        if fired.event_type == EventType::Session && fired.session_state.is_terminated() {
            return;
        }
    }
}

/// Keeps a data watch on `/brokers/topics/<topic>` until the znode is gone.
async fn watch_topic(
    client: Weak<Client>,
    topic: String,
    watched: Watched,
    sender: mpsc::UnboundedSender<ZkEvent>,
) {
    let path = paths::topic(&topic);
    let mut first = true;
    loop {
        let armed = {
            let Some(strong) = client.upgrade() else {
                return;
            };
            strong.get_and_watch_data(&path).await
        };
        let watcher = match armed {
            Ok((_, stat, watcher)) => {
                // A change made before the first watch was armed gave no event: a rewritten
                // znode (version above 0) is reported once, so it is read at least once after.
                if first && stat.version > 0 && sender.send(ZkEvent::TopicsChanged).is_err() {
                    return;
                }
                first = false;
                watcher
            }
            Err(ClientError::NoNode) => {
                watched.lock().unwrap().remove(&topic);
                // Recreated between the read and the removal, while the supervisor still saw
                // this task: keep watching unless a new task has started meanwhile.
                let exists = match client.upgrade() {
                    Some(strong) => matches!(strong.check_stat(&path).await, Ok(Some(_))),
                    None => return,
                };
                if exists && watched.lock().unwrap().insert(topic.clone()) {
                    first = true;
                    continue;
                }
                return;
            }
            Err(error) if ended(&error) => return,
            Err(error) => {
                tracing::debug!("topic data watch on {path} not armed ({error}); trying again");
                tokio::time::sleep(RETRY_DELAY).await;
                continue;
            }
        };
        let fired = watcher.changed().await;
        match fired.event_type {
            EventType::Session if fired.session_state.is_terminated() => return,
            EventType::NodeDataChanged if sender.send(ZkEvent::TopicsChanged).is_err() => return,
            // Deleted (the next read says NoNode), or a reconnection: arm again.
            _ => {}
        }
    }
}
