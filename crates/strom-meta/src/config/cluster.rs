//! The broker settings of a replicated cluster: where ZooKeeper is, and how followers fetch and
//! fall out of the ISR.
//!
//! This module owns the typed values and the `zookeeper.connect` syntax. It does not own their
//! catalogue entries (see [`super::broker_keys`]) nor what the broker does with them.

use super::ConfigError;

/// The cluster keys of a [`super::BrokerConfig`]. With `zookeeper_connect` unset the broker is a
/// single node and the other fields only matter to DescribeConfigs.
#[derive(Clone, Debug, PartialEq)]
pub struct ClusterSettings {
    /// `zookeeper.connect`; `None` means a single node with embedded metadata.
    pub zookeeper_connect: Option<ZkConnect>,
    /// `zookeeper.session.timeout.ms`.
    pub zookeeper_session_timeout_ms: i32,
    /// `zookeeper.connection.timeout.ms`, else the session timeout (as Kafka).
    pub zookeeper_connection_timeout_ms: i32,
    /// `inter.broker.listener.name`; `None` means the first advertised listener.
    pub inter_broker_listener_name: Option<String>,
    /// `controller.socket.timeout.ms`.
    pub controller_socket_timeout_ms: i32,
    /// `replica.lag.time.max.ms`.
    pub replica_lag_time_max_ms: i64,
    /// `replica.fetch.max.bytes`.
    pub replica_fetch_max_bytes: i32,
    /// `replica.fetch.min.bytes`.
    pub replica_fetch_min_bytes: i32,
    /// `replica.fetch.wait.max.ms`. Invariant: below `replica_lag_time_max_ms`.
    pub replica_fetch_wait_max_ms: i32,
    /// `replica.fetch.backoff.ms`.
    pub replica_fetch_backoff_ms: i32,
    /// `replica.socket.timeout.ms`.
    pub replica_socket_timeout_ms: i32,
    /// `replica.high.watermark.checkpoint.interval.ms`.
    pub replica_high_watermark_checkpoint_interval_ms: i64,
    /// `num.replica.fetchers`.
    pub num_replica_fetchers: i32,
    /// `offsets.topic.replication.factor`.
    pub offsets_topic_replication_factor: i16,
    /// True when `replica.selector.class` is Kafka's `RackAwareReplicaSelector` (KIP-392):
    /// a leader sends a consumer in another rack to an in-sync replica in its own rack.
    pub replica_selector_rack_aware: bool,
    /// `leader.replication.throttled.rate`: bytes per second served to throttled followers.
    pub leader_replication_throttled_rate: i64,
    /// `follower.replication.throttled.rate`: bytes per second fetched for throttled replicas.
    pub follower_replication_throttled_rate: i64,
    /// `replication.quota.window.num`.
    pub replication_quota_window_num: i32,
    /// `replication.quota.window.size.seconds`.
    pub replication_quota_window_size_seconds: i32,
    /// `controlled.shutdown.enable`, `.max.retries`, `.retry.backoff.ms`.
    pub controlled_shutdown: ControlledShutdownSettings,
    /// `auto.leader.rebalance.enable`, `leader.imbalance.*`.
    pub leader_balance: LeaderBalanceSettings,
}

/// How a cluster broker stops on SIGTERM (Kafka's `controlled.shutdown.*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ControlledShutdownSettings {
    /// `controlled.shutdown.enable`.
    pub enable: bool,
    /// `controlled.shutdown.max.retries`.
    pub max_retries: u32,
    /// `controlled.shutdown.retry.backoff.ms`.
    pub retry_backoff_ms: u64,
}

/// The controller's automatic preferred-leader elections (Kafka's `auto.leader.rebalance.*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeaderBalanceSettings {
    /// `auto.leader.rebalance.enable`.
    pub enable: bool,
    /// `leader.imbalance.per.broker.percentage`.
    pub imbalance_percentage: u32,
    /// `leader.imbalance.check.interval.seconds`, in milliseconds.
    pub check_interval_ms: u64,
}

/// A parsed `zookeeper.connect`: `host:port[,host:port...][/chroot]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZkConnect {
    /// The ensemble's servers, in the order given.
    pub servers: Vec<(String, u16)>,
    /// The chroot path (`/strom`), or `None` for the root. Never ends with `/` and has no
    /// empty, `.` or `..` part.
    pub chroot: Option<String>,
}

impl ZkConnect {
    /// Parses Kafka's connect string; `key` names the setting in errors. The one parser of
    /// `zookeeper.connect`: the broker's configuration and the ZooKeeper store both use it.
    ///
    /// Kafka accepts a chroot only after the last server (`h1:2181,h2:2181/kafka`); a host
    /// without a port uses ZooKeeper's 2181.
    pub fn parse(key: &str, text: &str) -> Result<ZkConnect, ConfigError> {
        let text = text.trim();
        let (hosts, chroot) = match text.find('/') {
            Some(slash) => (&text[..slash], Some(&text[slash..])),
            None => (text, None),
        };
        let chroot = match chroot {
            None | Some("/") => None,
            Some(path) => {
                if path
                    .split('/')
                    .skip(1)
                    .any(|part| part.is_empty() || part == "." || part == "..")
                {
                    return Err(ConfigError::new(
                        key,
                        text,
                        "the chroot must be a path like /strom: no empty, `.` or `..` part and \
                         no trailing `/`",
                    ));
                }
                Some(path.to_string())
            }
        };
        let mut servers = Vec::new();
        for server in hosts.split(',') {
            let server = server.trim();
            let (host, port) = match server.rsplit_once(':') {
                Some((host, port)) => {
                    let port = port.parse::<u16>().ok().filter(|port| *port > 0);
                    match port {
                        Some(port) => (host, port),
                        None => {
                            return Err(ConfigError::new(
                                key,
                                text,
                                format!("'{server}' needs a port between 1 and 65535"),
                            ))
                        }
                    }
                }
                None => (server, 2181),
            };
            if host.is_empty() {
                return Err(ConfigError::new(
                    key,
                    text,
                    "must list servers as host:port[,host:port...][/chroot]",
                ));
            }
            servers.push((host.to_string(), port));
        }
        Ok(ZkConnect { servers, chroot })
    }

    /// The servers as `host:port,host:port`, without the chroot.
    pub fn servers_text(&self) -> String {
        let servers: Vec<String> = self
            .servers
            .iter()
            .map(|(host, port)| format!("{host}:{port}"))
            .collect();
        servers.join(",")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_servers_and_chroot() {
        let parsed = ZkConnect::parse("zookeeper.connect", "a:2181,b:2182/strom/x").unwrap();
        assert_eq!(
            parsed.servers,
            vec![("a".to_string(), 2181), ("b".to_string(), 2182)]
        );
        assert_eq!(parsed.chroot.as_deref(), Some("/strom/x"));
        assert_eq!(parsed.servers_text(), "a:2181,b:2182");
        let root = ZkConnect::parse("zookeeper.connect", "127.0.0.1:2181/").unwrap();
        assert_eq!(root.chroot, None);
        let default_port = ZkConnect::parse("zookeeper.connect", "zk").unwrap();
        assert_eq!(default_port.servers, vec![("zk".to_string(), 2181)]);
    }

    #[test]
    fn refuses_bad_strings_naming_the_key() {
        for bad in [
            "a:0",
            "a:x",
            ":2181",
            "a:2181,",
            "a:2181//x",
            "a:99999",
            "a:2181/strom/",
            "a:2181/a/../b",
        ] {
            let error = ZkConnect::parse("zookeeper.connect", bad).unwrap_err();
            assert!(
                error.to_string().contains("zookeeper.connect"),
                "{bad}: {error}"
            );
        }
    }
}
