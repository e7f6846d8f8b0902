//! Starting a broker and the handle that stops it: listeners bound (port 0 allowed), the
//! storage opened, the server, background and metrics tasks spawned.

use std::net::SocketAddr;
use std::sync::Arc;

use strom_meta::config::{BrokerConfig, Listener};
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::{Broker, StartError};

/// A running broker: its bound addresses and a way to stop it.
pub struct BrokerHandle {
    /// The broker's shared state.
    pub broker: Arc<Broker>,
    /// The addresses the listeners are bound to, in `listeners` order.
    pub local_addrs: Vec<SocketAddr>,
    /// Where `GET /metrics` is served (`strom.metrics.listener`), if it is on.
    pub metrics_addr: Option<SocketAddr>,
    shutdown: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl BrokerHandle {
    /// The first listener's bound address.
    pub fn addr(&self) -> SocketAddr {
        self.local_addrs[0]
    }

    /// `host:port` of the first listener, for client `bootstrap.servers`.
    pub fn bootstrap(&self) -> String {
        self.addr().to_string()
    }

    /// Stops accepting, lets connections finish, and shuts the storage down cleanly.
    /// On a cluster, the controller first moves this broker's leadership away
    /// (`controlled.shutdown.enable`; see `services::cluster::shutdown`).
    pub async fn shutdown(self) -> Result<(), strom_log::LogError> {
        if let Some(node) = self.broker.services.cluster.get() {
            node.controlled_shutdown().await;
        }
        let stopping = std::time::Instant::now();
        let _ = self.shutdown.send(true);
        self.broker.services.replicas.stop_for_shutdown();
        let _ = self.task.await;
        tracing::info!(
            elapsed_ms = stopping.elapsed().as_millis() as u64,
            "connections and background tasks stopped"
        );
        let broker = self.broker.clone();
        tokio::task::spawn_blocking(move || broker.shutdown_storage())
            .await
            .expect("storage shutdown does not panic")
    }

    /// Waits until the broker stops (after [`BrokerHandle::shutdown`] from elsewhere is not
    /// possible; this is for a process that runs until `signal` resolves).
    pub async fn run_until(
        self,
        signal: impl std::future::Future<Output = ()>,
    ) -> Result<(), strom_log::LogError> {
        signal.await;
        tracing::info!("shutting down");
        self.shutdown().await
    }
}

/// Binds the configured listeners, opens storage, and starts serving. Port 0 in a listener
/// binds a free port, which is then advertised.
pub async fn start(mut config: BrokerConfig) -> Result<BrokerHandle, StartError> {
    let mut listeners = Vec::new();
    let mut local_addrs = Vec::new();
    for listener in &config.listeners {
        let address = format!("{}:{}", listener.host, listener.port);
        let bound = TcpListener::bind(&address)
            .await
            .map_err(|source| StartError::Bind {
                address: address.clone(),
                source,
            })?;
        local_addrs.push(bound.local_addr()?);
        listeners.push(bound);
    }
    let metrics_listener = match &config.metrics_listener {
        Some(address) => {
            let bound = TcpListener::bind(address)
                .await
                .map_err(|source| StartError::Bind {
                    address: address.clone(),
                    source,
                })?;
            Some(bound)
        }
        None => None,
    };
    let metrics_addr = match &metrics_listener {
        Some(listener) => Some(listener.local_addr()?),
        None => None,
    };
    let advertised: Vec<Listener> = config
        .advertised_listeners
        .iter()
        .map(|a| {
            let mut a = a.clone();
            if a.port == 0 {
                if let Some(i) = config.listeners.iter().position(|l| l.name == a.name) {
                    a.port = local_addrs[i].port();
                }
            }
            if a.host.is_empty() || a.host == "0.0.0.0" {
                a.host = "127.0.0.1".to_string();
            }
            a
        })
        .collect();
    // Cluster mode: a ZooKeeper session first, whose `/cluster/id` is the cluster's id.
    let zookeeper = match crate::services::cluster::zk_config(&config) {
        Some(zk_config) => {
            let store = strom_meta::zk::ZkStore::connect(&zk_config).await?;
            let proposed = config
                .cluster_id
                .clone()
                .unwrap_or_else(strom_meta::new_cluster_id);
            config.cluster_id = Some(store.get_or_create_cluster_id(&proposed).await?);
            // The dynamic levels in `/config/brokers/`, before any log is opened with the
            // defaults they change (a broker that was down when they changed starts with them).
            let stored = strom_meta::config::dynamic::DynamicLayers {
                cluster_default: store
                    .broker_config(strom_meta::config::dynamic::DEFAULT_ENTITY)
                    .await?,
                per_broker: store.broker_config(&config.broker_id.to_string()).await?,
            };
            let (layers, dropped) = stored.sanitized();
            for error in dropped {
                tracing::error!(%error, "dynamic broker configuration in ZooKeeper skipped");
            }
            config = config.with_dynamic(layers).unwrap_or_else(|error| {
                tracing::error!(%error, "dynamic broker configuration in ZooKeeper does not resolve; skipped");
                config.clone()
            });
            Some((zk_config, store))
        }
        None => None,
    };
    let registration = crate::services::cluster::registration(&config, &advertised);
    let broker = {
        let config = config.clone();
        tokio::task::spawn_blocking(move || Broker::open(config, advertised))
            .await
            .expect("opening the broker does not panic")?
    };
    for ignored in &broker.services.config.ignored {
        tracing::warn!(key = %ignored, "configuration key accepted but has no effect in Strom yet");
    }
    let broker = Arc::new(broker);
    let (shutdown, shutdown_rx) = watch::channel(false);
    let services = broker.services.clone();
    let background = crate::services::background::spawn(
        services.replicas.clone(),
        services.live.clone(),
        shutdown_rx.clone(),
    );
    let group_timers = services.groups.clone().spawn_timers(shutdown_rx.clone());
    crate::services::txn::coordinate_single_node(&services);
    let txn_timers = crate::services::txn::spawn_timers(services.clone(), shutdown_rx.clone());
    let cluster_task = zookeeper.map(|(zk_config, store)| {
        let node = Arc::new(crate::services::cluster::ClusterNode::new(
            services.config.clone(),
            services.live.clone(),
            zk_config,
            store,
            registration,
            services.metadata.clone(),
        ));
        let _ = services.cluster.set(node.clone());
        node.set_replica_manager(&services.replicas);
        services
            .replicas
            .enable_replication(replication_context(&services, node.clone()));
        crate::services::cluster::runtime::spawn(node, shutdown_rx.clone())
    });
    let serve = crate::connection::server::serve(services.clone(), listeners, shutdown_rx.clone());
    let metrics_task = metrics_listener.map(|listener| {
        tokio::spawn(crate::metrics::serve(
            services.metrics.clone(),
            services.clone(),
            listener,
            shutdown_rx,
        ))
    });
    let task = tokio::spawn(async move {
        serve.await;
        if let Some(metrics) = metrics_task {
            let _ = metrics.await;
        }
        let _ = background.await;
        let _ = group_timers.await;
        let _ = txn_timers.await;
        if let Some(cluster) = cluster_task {
            let _ = cluster.await;
        }
    });
    tracing::info!(
        broker_id = services.metadata.local_broker_id(),
        cluster_id = %services.metadata.cluster_id(),
        listeners = ?local_addrs,
        metrics = ?metrics_addr,
        "broker started"
    );
    Ok(BrokerHandle {
        broker,
        local_addrs,
        metrics_addr,
        shutdown,
        task,
    })
}

/// What the replica manager needs to lead and follow partitions on a cluster: ISR writes to
/// ZooKeeper through `node`'s current session, each topic's log settings and `min.insync.replicas` from its
/// overrides as the metadata cache knows them (else the broker's defaults), and
/// `replica.lag.time.max.ms`.
fn replication_context(
    services: &Arc<crate::services::Services>,
    node: Arc<crate::services::cluster::ClusterNode>,
) -> crate::services::replica::cluster::ReplicationContext {
    use strom_meta::config::TopicConfig;
    let resolve = {
        let live = services.live.clone();
        let metadata = services.metadata.clone();
        move |topic: &str| -> TopicConfig {
            let config = live.current();
            let overrides = metadata
                .cluster()
                .topics
                .get(topic)
                .map(|t| t.configs.clone())
                .unwrap_or_default();
            TopicConfig::resolve(&config, &overrides)
                .or_else(|_| TopicConfig::resolve(&config, &Default::default()))
                .expect("the broker's own defaults resolve")
        }
    };
    let lag_ms = services.config.cluster.replica_lag_time_max_ms;
    let log_resolve = resolve.clone();
    crate::services::replica::cluster::ReplicationContext::from_config(
        &services.config,
        Arc::new(crate::services::replica::replication::ZkIsrWriter(
            Arc::new(move || node.store()),
        )),
        services.metadata.clone(),
        Box::new(move |topic| crate::services::log_config::log_config(&log_resolve(topic))),
        Box::new(move |topic| strom_meta::replica::ReplicaSettings {
            min_insync_replicas: resolve(topic).min_insync_replicas.max(1) as usize,
            replica_lag_time_max_ms: lag_ms.max(1) as u64,
        }),
    )
}
