//! How the cluster runtime retries ZooKeeper reads (a child of `runtime`).

use strom_meta::zk::ZkError;

use super::RETRY;

/// Retries a ZooKeeper read a few times; `None` if it keeps failing (the next event reads
/// again).
pub(super) async fn retry<T, F, Fut>(read: F) -> Option<T>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<T, ZkError>>,
{
    for attempt in 0..5 {
        match read().await {
            Ok(value) => return Some(value),
            Err(error) if error.is_session_expired() => return None,
            Err(error) => {
                tracing::debug!(%error, attempt, "ZooKeeper read failed");
                tokio::time::sleep(RETRY).await;
            }
        }
    }
    None
}

/// Repeats a ZooKeeper read until it answers (a lost connection is retried within the
/// session); `None` once the session has expired, or for data that does not decode (logged;
/// the partition then waits for the next event that reads it).
pub(super) async fn read_until_answered<T, F, Fut>(read: F) -> Option<T>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<T, ZkError>>,
{
    loop {
        match read().await {
            Ok(value) => return Some(value),
            Err(error) if error.is_session_expired() => return None,
            Err(error) if !matches!(error, ZkError::Client { .. }) => {
                tracing::warn!(%error, "a partition state cannot be read");
                return None;
            }
            Err(error) => {
                tracing::debug!(%error, "ZooKeeper read failed; retrying");
                tokio::time::sleep(RETRY).await;
            }
        }
    }
}
