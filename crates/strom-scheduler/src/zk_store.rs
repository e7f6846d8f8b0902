//! The ZooKeeper [`Persister`]: the state store of a scheduler whose service names a ZooKeeper
//! (`--zookeeper` or the options' `service.zookeeper`), as the DC/OS SDK's `CuratorPersister`
//! was. A shell, not part of the pure core: it talks to ZooKeeper.
//!
//! Layout (the SDK's, dcos-service.md §1.3), under `[<chroot>]/dcos-service-<name>` (`/` in the
//! name as `__`, [`service_root`]):
//! - every node of the core keeps its name: `ConfigTarget`, `Configurations/<uuid>`,
//!   `Tasks/<task>/TaskInfo`, `Tasks/<task>/TaskStatus`, `Properties/<key>`, `FrameworkID`;
//!   parents are created with empty data, and a node with empty data and children reads as
//!   absent (the file store's directories do too);
//! - `SchemaVersion` holds `1` (the SDK's current schema); a store with another version is
//!   refused rather than misread;
//! - `lock` holds the scheduler lock: an ephemeral sequential `lock/_c_<uuid>-lock-<seq>`
//!   (Curator's `InterProcessMutex` naming) whose data is `host pid` of its holder. The lowest
//!   sequence holds the lock. Every write of [`Persister::apply`] is one ZooKeeper `multi`
//!   that first checks this node exists, so a scheduler whose session expired (and whose lock
//!   another scheduler may hold by now) writes nothing: each of its applies fails and its
//!   driver stops.
//!
//! A second scheduler waits up to `lock_wait_ms` for the lock and then refuses to start. A
//! scheduler killed with SIGKILL leaves its lock until ZooKeeper expires its session
//! (`session_timeout_ms`), so the default wait is the session timeout plus 5 s. A restart on
//! the same host need not wait: the lock node's data is `host pid start-ticks`, and a lock node
//! of this host whose process is gone (no such pid, a zombie, or a pid reused by a process
//! started at another time) is deleted before contending. Misjudging a live holder as dead (a
//! scheduler in another pid namespace with this hostname) cannot corrupt the store: the holder's
//! writes all check its lock node, so it writes nothing more and stops. A scheduler that closes
//! the store ([`Persister::close`], on SIGTERM) deletes its lock node at once.
//!
//! A call whose connection breaks is tried again (within 8 s) once the client has reconnected
//! within the same session; an apply plans its `multi` again from what ZooKeeper holds, so a
//! `multi` that committed just before the break is not written twice. A lost session is not
//! retried: the lock went with it.
//!
//! The [`Persister`] trait is synchronous and is called both from plain threads and from async
//! HTTP handlers, so the store owns a one-worker tokio runtime: each call spawns its work there
//! and waits for the answer on a channel (never `block_on`, which would panic inside another
//! runtime).

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::runtime::Runtime;
use zookeeper_client::{
    Acls, CheckWriteError, Client, CreateMode, CreateOptions, Error as ClientError, LockOptions,
    LockPrefix, OwnedLockClient,
};

use crate::store::{service_root, Persister, StoreError};

/// The schema version the SDK wrote (`SchemaVersionStore`) and this store writes.
pub const SCHEMA_VERSION: &str = "1";
/// The node holding [`SCHEMA_VERSION`].
pub const SCHEMA_VERSION_PATH: &str = "SchemaVersion";
/// The lock's parent node.
pub const LOCK_PATH: &str = "lock";

/// How to reach the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZkPersisterConfig {
    /// `host:port[,host:port…][/chroot]`, as `zookeeper.connect`.
    pub connect: String,
    /// The service name; the root is [`service_root`] of it below the chroot.
    pub service: String,
    /// The session timeout asked of ZooKeeper (it clamps it to 2–20 ticks).
    pub session_timeout_ms: u64,
    /// How long to wait for the lock before refusing to start.
    pub lock_wait_ms: u64,
}

impl ZkPersisterConfig {
    /// A 10 s session and a lock wait of the session timeout plus 5 s.
    pub fn new(connect: &str, service: &str) -> Self {
        ZkPersisterConfig {
            connect: connect.to_string(),
            service: service.to_string(),
            session_timeout_ms: 10_000,
            lock_wait_ms: 15_000,
        }
    }

    /// `(servers, root)`: the root is the chroot (if any) plus the service root.
    fn servers_and_root(&self) -> Result<(String, String), StoreError> {
        let (servers, chroot) = match self.connect.find('/') {
            Some(at) => (
                &self.connect[..at],
                self.connect[at..].trim_end_matches('/'),
            ),
            None => (self.connect.as_str(), ""),
        };
        let invalid = |reason: &str| {
            StoreError::Io(format!(
                "ZooKeeper connect string {:?}: {reason}",
                self.connect
            ))
        };
        if servers.is_empty() {
            return Err(invalid("no servers"));
        }
        if chroot
            .split('/')
            .skip(1)
            .any(|part| part.is_empty() || part == "." || part == "..")
        {
            return Err(invalid("the chroot has an empty, . or .. part"));
        }
        if self.service.trim_start_matches('/').is_empty() {
            return Err(StoreError::Io("the service name is empty".into()));
        }
        Ok((
            servers.to_string(),
            format!("{chroot}{}", service_root(&self.service)),
        ))
    }
}

/// One session and, for a writer, its lock.
struct Session {
    client: Client,
    /// `None` for a read-only store.
    lock: Option<OwnedLockClient>,
    /// The service's root node, absolute.
    root: String,
}

impl Session {
    fn znode(&self, path: &str) -> String {
        if path.is_empty() {
            self.root.clone()
        } else {
            format!("{}/{path}", self.root)
        }
    }
}

/// A [`Persister`] on ZooKeeper. See the module documentation.
pub struct ZkPersister {
    /// `Some` until dropped (shut down in the background: a drop may happen on an async thread).
    runtime: Option<Runtime>,
    /// `None` once closed.
    session: Mutex<Option<Arc<Session>>>,
    /// Bound on one call, so an unreachable ZooKeeper gives an error instead of a hang.
    call_timeout: Duration,
}

fn persistent() -> CreateOptions<'static> {
    CreateMode::Persistent.with_acls(Acls::anyone_all())
}

fn zk_error(operation: &'static str, path: &str) -> impl FnOnce(ClientError) -> StoreError {
    let path = path.to_string();
    move |error| StoreError::Io(format!("ZooKeeper {operation} {path}: {error}"))
}

/// A failed attempt at a call: retried when only the connection was lost (the client
/// reconnects within the session, so the call can succeed on the next try).
struct Attempt {
    error: StoreError,
    connection_lost: bool,
}

impl From<StoreError> for Attempt {
    fn from(error: StoreError) -> Self {
        Attempt {
            error,
            connection_lost: false,
        }
    }
}

fn zk_attempt(operation: &'static str, path: &str) -> impl FnOnce(ClientError) -> Attempt {
    let path = path.to_string();
    move |error| Attempt {
        connection_lost: error == ClientError::ConnectionLoss,
        error: StoreError::Io(format!("ZooKeeper {operation} {path}: {error}")),
    }
}

/// How long after a lost connection a call keeps retrying (the run's own bound is longer).
const RETRY_WINDOW: Duration = Duration::from_secs(8);

/// Runs `attempt` until it succeeds, fails for another reason than a lost connection, or
/// [`RETRY_WINDOW`] has passed. Every attempt must be safe to repeat: reads are, and an
/// apply plans its `multi` again from what ZooKeeper holds, so a retry of a `multi` that did
/// commit before the connection broke writes nothing twice.
async fn with_retries<T>(
    mut attempt: impl AsyncFnMut() -> Result<T, Attempt>,
) -> Result<T, StoreError> {
    let deadline = tokio::time::Instant::now() + RETRY_WINDOW;
    loop {
        match attempt().await {
            Ok(value) => return Ok(value),
            Err(failed) if failed.connection_lost && tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(failed) => return Err(failed.error),
        }
    }
}

/// Checks a node path: `/`-separated, no empty, `.` or `..` parts, and not the lock.
fn checked(path: &str) -> Result<&str, StoreError> {
    let bad = path
        .split('/')
        .any(|part| part.is_empty() || part == "." || part == "..");
    if bad && !path.is_empty() {
        return Err(StoreError::Io(format!("invalid node path {path:?}")));
    }
    if path == LOCK_PATH || path.starts_with("lock/") {
        return Err(StoreError::Io(format!(
            "{path:?} is the scheduler lock, not a state node"
        )));
    }
    Ok(path)
}

impl ZkPersister {
    /// Connects, creates the root, takes the lock (waiting up to `lock_wait_ms`) and writes or
    /// checks `SchemaVersion`. Fails with a message naming the holder when the lock stays taken.
    pub fn open(config: &ZkPersisterConfig) -> Result<ZkPersister, StoreError> {
        ZkPersister::connect(config, true)
    }

    /// Connects without the lock and without creating the root: reads work, every write is
    /// refused. For tools and tests that look at a live scheduler's store.
    pub fn open_read_only(config: &ZkPersisterConfig) -> Result<ZkPersister, StoreError> {
        ZkPersister::connect(config, false)
    }

    fn connect(config: &ZkPersisterConfig, writer: bool) -> Result<ZkPersister, StoreError> {
        let (servers, root) = config.servers_and_root()?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("zk-store")
            .enable_all()
            .build()
            .map_err(|e| StoreError::Io(format!("cannot start the ZooKeeper runtime: {e}")))?;
        let session_timeout = Duration::from_millis(config.session_timeout_ms);
        let lock_wait = Duration::from_millis(config.lock_wait_ms);
        let mut store = ZkPersister {
            runtime: Some(runtime),
            session: Mutex::new(None),
            call_timeout: session_timeout + Duration::from_secs(5),
        };
        let connect = config.connect.clone();
        let service = config.service.clone();
        let session = store.run(store.call_timeout + lock_wait, async move {
            let connected = Client::connector()
                .with_session_timeout(session_timeout)
                .with_connection_timeout(session_timeout)
                .connect(&servers)
                .await;
            let client = connected.map_err(zk_error("connect", &connect))?;
            if writer {
                match client.mkdir(&root, &persistent()).await {
                    Ok(()) | Err(ClientError::NodeExists) => {}
                    Err(error) => return Err(zk_error("create", &root)(error)),
                }
            }
            let lock = match writer {
                true => Some(take_lock(&client, &root, &service, lock_wait).await?),
                false => None,
            };
            Ok(Session { client, lock, root })
        })?;
        *store.session.get_mut().expect("not poisoned") = Some(Arc::new(session));
        if writer {
            match store.get(SCHEMA_VERSION_PATH)? {
                None => store.set(SCHEMA_VERSION_PATH, SCHEMA_VERSION.as_bytes().to_vec())?,
                Some(version) if version == SCHEMA_VERSION.as_bytes() => {}
                Some(version) => {
                    return Err(StoreError::Corrupt {
                        path: SCHEMA_VERSION_PATH.into(),
                        reason: format!(
                            "schema version {:?}, this scheduler reads {SCHEMA_VERSION}",
                            String::from_utf8_lossy(&version)
                        ),
                    })
                }
            }
        }
        Ok(store)
    }

    /// The absolute path of the service's root node.
    pub fn root(&self) -> Result<String, StoreError> {
        Ok(self.session()?.root.clone())
    }

    /// Whether the service's root node exists (an uninstalled service has none).
    pub fn root_exists(&self) -> Result<bool, StoreError> {
        let session = self.session()?;
        self.run(self.call_timeout, async move {
            let stat = session.client.check_stat(&session.root).await;
            Ok(stat.map_err(zk_error("stat", &session.root))?.is_some())
        })
    }

    /// The absolute path of the lock node this store holds (`None` when read-only).
    pub fn lock_node(&self) -> Result<Option<String>, StoreError> {
        Ok(self
            .session()?
            .lock
            .as_ref()
            .map(|lock| lock.lock_path().to_string()))
    }

    fn session(&self) -> Result<Arc<Session>, StoreError> {
        self.session
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
            .ok_or_else(|| StoreError::Io("the ZooKeeper store is closed".into()))
    }

    /// Runs `work` on the store's runtime and waits for it, at most `timeout`.
    fn run<T: Send + 'static>(
        &self,
        timeout: Duration,
        work: impl Future<Output = Result<T, StoreError>> + Send + 'static,
    ) -> Result<T, StoreError> {
        let runtime = self.runtime.as_ref().expect("the runtime lives until drop");
        let (sender, receiver) = std::sync::mpsc::sync_channel(1);
        runtime.spawn(async move {
            let outcome = match tokio::time::timeout(timeout, work).await {
                Ok(outcome) => outcome,
                Err(_) => Err(StoreError::Io(format!(
                    "ZooKeeper did not answer within {} ms",
                    timeout.as_millis()
                ))),
            };
            let _ = sender.send(outcome);
        });
        receiver
            .recv()
            .map_err(|_| StoreError::Io("the ZooKeeper runtime stopped".into()))?
    }
}

/// Takes the service lock, waiting up to `wait`; on a timeout the error names the holder.
async fn take_lock(
    client: &Client,
    root: &str,
    service: &str,
    wait: Duration,
) -> Result<OwnedLockClient, StoreError> {
    let dir = format!("{root}/{LOCK_PATH}");
    let pid = std::process::id();
    let ticks = crate::engine::process::start_ticks(pid).unwrap_or(0);
    let holder = format!("{} {pid} {ticks}", hostname());
    remove_dead_holders(client, &dir).await?;
    let options = LockOptions::new(Acls::anyone_all())
        .with_ancestor_options(persistent())
        .map_err(zk_error("lock", &dir))?;
    let prefix = LockPrefix::new_curator(&dir, "lock-").map_err(zk_error("lock", &dir))?;
    match tokio::time::timeout(wait, client.lock(prefix, holder.as_bytes(), options)).await {
        Ok(Ok(lock)) => Ok(lock.into_owned()),
        Ok(Err(error)) => Err(zk_error("lock", &dir)(error)),
        Err(_) => {
            let holder = lock_holder(client, &dir).await.unwrap_or_default();
            Err(StoreError::Io(format!(
                "the service {service} is locked by another scheduler (ZooKeeper {dir}, held by \
                 {holder:?}); a second scheduler for the same service refuses to start (a \
                 killed scheduler's lock goes when its ZooKeeper session expires)"
            )))
        }
    }
}

/// Whether a lock node's data (`host pid start-ticks`) names a process of this host that is
/// gone. Data in another form, or of another host, is never judged dead.
pub fn holder_is_dead(data: &str) -> bool {
    let parts: Vec<&str> = data.split_whitespace().collect();
    let [host, pid, ticks] = parts[..] else {
        return false;
    };
    let (Ok(pid), Ok(ticks)) = (pid.parse::<u32>(), ticks.parse::<u64>()) else {
        return false;
    };
    host == hostname() && !crate::engine::process::alive(pid, Some(ticks))
}

/// Deletes the lock nodes of dead schedulers of this host (a restart after a kill -9 then does
/// not wait for the old session to expire).
async fn remove_dead_holders(client: &Client, dir: &str) -> Result<(), StoreError> {
    let children = match client.list_children(dir).await {
        Ok(children) => children,
        Err(ClientError::NoNode) => return Ok(()),
        Err(error) => return Err(zk_error("list", dir)(error)),
    };
    for child in children {
        let path = format!("{dir}/{child}");
        let data = match client.get_data(&path).await {
            Ok((data, _)) => data,
            Err(ClientError::NoNode) => continue,
            Err(error) => return Err(zk_error("get", &path)(error)),
        };
        if holder_is_dead(&String::from_utf8_lossy(&data)) {
            match client.delete(&path, None).await {
                Ok(()) | Err(ClientError::NoNode) => {}
                Err(error) => return Err(zk_error("delete", &path)(error)),
            }
        }
    }
    Ok(())
}

/// The data (`host pid start-ticks`) of the lowest lock node: the holder.
async fn lock_holder(client: &Client, dir: &str) -> Option<String> {
    let children = client.list_children(dir).await.ok()?;
    let lowest = children
        .iter()
        .filter_map(|name| Some((name.rsplit_once("-lock-")?.1.to_string(), name)))
        .min()?
        .1;
    let (data, _) = client.get_data(&format!("{dir}/{lowest}")).await.ok()?;
    Some(String::from_utf8_lossy(&data).into_owned())
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_string())
        .unwrap_or_else(|_| "localhost".into())
}

/// Every node below `path` (not `path` itself), parents before children.
async fn descendants(client: &Client, path: &str) -> Result<Vec<String>, Attempt> {
    let mut found = Vec::new();
    let mut next = 0;
    let mut queue = vec![path.to_string()];
    while next < queue.len() {
        let parent = queue[next].clone();
        next += 1;
        let children = match client.list_children(&parent).await {
            Ok(children) => children,
            Err(ClientError::NoNode) => Vec::new(),
            Err(error) => return Err(zk_attempt("list", &parent)(error)),
        };
        for child in children {
            let child = format!("{parent}/{child}");
            found.push(child.clone());
            queue.push(child);
        }
    }
    Ok(found)
}

/// One planned operation of a `multi`.
enum Op {
    Create(String, Vec<u8>),
    SetData(String, Vec<u8>),
    Delete(String),
}

/// Plans the `multi` for `writes`: which nodes exist after each write is tracked in `exists`
/// (read from ZooKeeper on first use), so a write may follow a delete of its parent in the
/// same apply, as the file and memory stores allow.
async fn plan_writes(
    session: &Session,
    writes: &[(String, Option<Vec<u8>>)],
) -> Result<Vec<Op>, Attempt> {
    let client = &session.client;
    let mut exists: BTreeMap<String, bool> = BTreeMap::new();
    // Nodes created by this apply (ZooKeeper does not list them yet).
    let mut created: BTreeSet<String> = BTreeSet::new();
    let mut ops = Vec::new();
    for (path, value) in writes.iter().cloned() {
        let node = session.znode(&path);
        match value {
            Some(bytes) => {
                let mut ancestor = session.root.clone();
                let relative: Vec<&str> = path.split('/').collect();
                for part in &relative[..relative.len() - 1] {
                    ancestor = format!("{ancestor}/{part}");
                    if !node_exists(client, &mut exists, &ancestor).await? {
                        ops.push(Op::Create(ancestor.clone(), Vec::new()));
                        exists.insert(ancestor.clone(), true);
                        created.insert(ancestor.clone());
                    }
                }
                if node_exists(client, &mut exists, &node).await? {
                    ops.push(Op::SetData(node, bytes));
                } else {
                    ops.push(Op::Create(node.clone(), bytes));
                    exists.insert(node.clone(), true);
                    created.insert(node);
                }
            }
            None => {
                let mut doomed: Vec<String> = descendants(client, &node)
                    .await?
                    .into_iter()
                    .chain(
                        created
                            .iter()
                            .filter(|c| c.starts_with(&format!("{node}/")))
                            .cloned(),
                    )
                    .filter(|d| exists.get(d) != Some(&false))
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .collect();
                let lock_dir = format!("{}/{LOCK_PATH}", session.root);
                if path.is_empty() {
                    // The whole store (uninstall): everything but the lock; the root stays
                    // until the lock goes ([`Persister::close`]).
                    doomed.retain(|d| *d != lock_dir && !d.starts_with(&format!("{lock_dir}/")));
                } else if node_exists(client, &mut exists, &node).await? {
                    doomed.push(node.clone());
                }
                // Children before parents: deepest first.
                doomed.sort_by_key(|d| std::cmp::Reverse(d.matches('/').count()));
                for path in doomed {
                    exists.insert(path.clone(), false);
                    created.remove(&path);
                    ops.push(Op::Delete(path));
                }
            }
        }
    }
    Ok(ops)
}

/// One attempt at an apply: plan the `multi` from what ZooKeeper holds now, then commit it
/// behind the lock node's existence check.
async fn commit_writes(
    session: &Session,
    writes: &[(String, Option<Vec<u8>>)],
) -> Result<(), Attempt> {
    let ops = plan_writes(session, writes).await?;
    if ops.is_empty() {
        return Ok(());
    }
    let lock = session.lock.as_ref().expect("a writer holds the lock");
    let mut writer = lock.new_check_writer();
    for op in &ops {
        let added = match op {
            Op::Create(path, data) => writer.add_create(path, data, &persistent()),
            Op::SetData(path, data) => writer.add_set_data(path, data, None),
            Op::Delete(path) => writer.add_delete(path, None),
        };
        added.map_err(|error| StoreError::Io(format!("ZooKeeper multi: {error}")))?;
    }
    writer.commit().await.map_err(|error| Attempt {
        connection_lost: matches!(
            error,
            CheckWriteError::RequestFailed {
                source: ClientError::ConnectionLoss
            }
        ),
        error: StoreError::Io(format!(
            "ZooKeeper multi under {} (lock {}): {error}",
            session.root,
            lock.lock_path()
        )),
    })?;
    Ok(())
}

async fn node_exists(
    client: &Client,
    known: &mut BTreeMap<String, bool>,
    path: &str,
) -> Result<bool, Attempt> {
    if let Some(exists) = known.get(path) {
        return Ok(*exists);
    }
    let exists = client
        .check_stat(path)
        .await
        .map_err(zk_attempt("stat", path))?
        .is_some();
    known.insert(path.to_string(), exists);
    Ok(exists)
}

impl Persister for ZkPersister {
    fn get(&self, path: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let session = self.session()?;
        let node = session.znode(checked(path)?);
        self.run(self.call_timeout, async move {
            with_retries(move || {
                let (session, node) = (Arc::clone(&session), node.clone());
                async move {
                    match session.client.get_data(&node).await {
                        // A parent made for its children, not a value.
                        Ok((data, stat)) if data.is_empty() && stat.num_children > 0 => Ok(None),
                        Ok((data, _)) => Ok(Some(data)),
                        Err(ClientError::NoNode) => Ok(None),
                        Err(error) => Err(zk_attempt("get", &node)(error)),
                    }
                }
            })
            .await
        })
    }

    fn children(&self, path: &str) -> Result<Vec<String>, StoreError> {
        let session = self.session()?;
        let node = session.znode(checked(path)?);
        self.run(self.call_timeout, async move {
            with_retries(move || {
                let (session, node) = (Arc::clone(&session), node.clone());
                async move {
                    match session.client.list_children(&node).await {
                        Ok(mut children) => {
                            if node == session.root {
                                children.retain(|c| c != LOCK_PATH);
                            }
                            children.sort();
                            Ok(children)
                        }
                        Err(ClientError::NoNode) => Ok(Vec::new()),
                        Err(error) => Err(zk_attempt("list", &node)(error)),
                    }
                }
            })
            .await
        })
    }

    fn apply(&mut self, writes: Vec<(String, Option<Vec<u8>>)>) -> Result<(), StoreError> {
        for (path, _) in &writes {
            checked(path)?;
        }
        let session = self.session()?;
        if session.lock.is_none() {
            return Err(StoreError::Io(
                "the ZooKeeper store is read-only (opened without the lock)".into(),
            ));
        }
        self.run(self.call_timeout, async move {
            let writes = Arc::new(writes);
            with_retries(move || {
                let (session, writes) = (Arc::clone(&session), Arc::clone(&writes));
                async move { commit_writes(&session, &writes).await }
            })
            .await
        })
    }

    fn close(&self) {
        let Some(session) = self
            .session
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take()
        else {
            return;
        };
        let _ = self.run(self.call_timeout, async move {
            if let Some(lock) = &session.lock {
                let _ = session.client.delete(lock.lock_path(), None).await;
                // After an uninstall only the lock's parent is left: remove it and the root.
                // Either delete fails harmlessly when another scheduler is waiting or state
                // is left.
                let lock_dir = format!("{}/{LOCK_PATH}", session.root);
                let root_children = session.client.list_children(&session.root).await;
                if root_children.is_ok_and(|c| c == [LOCK_PATH]) {
                    let _ = session.client.delete(&lock_dir, None).await;
                    let _ = session.client.delete(&session.root, None).await;
                }
            }
            Ok(())
        });
    }
}

impl Drop for ZkPersister {
    fn drop(&mut self) {
        self.close();
        if let Some(runtime) = self.runtime.take() {
            // Dropping a runtime inside another one panics; this works from any thread.
            runtime.shutdown_background();
        }
    }
}
