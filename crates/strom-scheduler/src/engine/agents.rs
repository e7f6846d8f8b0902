//! The local engine's virtual agents: what each offers (cpus, mem, ROOT disk, MOUNT disks, a
//! port range, hostname, zone), how this machine is split among them, and the offer an agent
//! makes given its reservations (pure). The engine (`local.rs`) keeps the reservations and runs
//! the tasks.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::offer::Offer;
use crate::resources::{DiskInfo, DiskSource, Resource, ResourceValue};

/// One virtual agent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AgentConfig {
    /// Agent id.
    pub id: String,
    /// Hostname for placement rules (distinct per virtual agent).
    pub hostname: String,
    /// The address tasks bind and advertise.
    pub ip: String,
    /// Fault-domain zone.
    pub zone: Option<String>,
    /// Cpus offered.
    pub cpus: f64,
    /// Memory offered, MB.
    pub mem: f64,
    /// ROOT disk offered, MB.
    pub disk: f64,
    /// Port range offered, inclusive.
    pub ports: (u16, u16),
    /// MOUNT disks offered, each whole.
    #[serde(default)]
    pub mounts: Vec<MountConfig>,
}

/// Settings of a local engine.
#[derive(Clone, Debug)]
pub struct LocalEngineConfig {
    /// The work directory (state, sandboxes, volumes).
    pub work_dir: PathBuf,
    /// The agents.
    pub agents: Vec<AgentConfig>,
    /// Tasks die with the engine's thread (tests only; see the module documentation).
    pub die_with_engine: bool,
    /// Upper bound on a readiness check's interval (a spec's 5 s slows tests down).
    pub check_interval_max_ms: u64,
    /// The secret store tasks' secrets are read from; `None`: a task with secrets fails.
    pub secrets: Option<super::EngineSecrets>,
}

impl LocalEngineConfig {
    /// `count` virtual agents sharing this machine's cpus, memory and the free disk of
    /// `work_dir` equally, each with a slice of `ports`, hostnames `<host>-<i>` and zones
    /// `zone-<i>` (one agent: the hostname and no zone).
    pub fn this_machine(work_dir: &Path, count: usize, ports: (u16, u16)) -> Self {
        let count = count.max(1);
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        let mem = fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|text| {
                let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
                line.split_whitespace().nth(1)?.parse::<f64>().ok()
            })
            .map_or(1024.0, |kb| (kb / 1024.0).floor());
        let disk = free_disk_mb(work_dir).unwrap_or(1024.0);
        let host = fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "localhost".into());
        let span = (u32::from(ports.1) - u32::from(ports.0) + 1) / count as u32;
        let agents = (0..count)
            .map(|i| {
                let begin = u32::from(ports.0) + span * i as u32;
                AgentConfig {
                    id: format!("local-agent-{i}"),
                    hostname: if count == 1 {
                        host.clone()
                    } else {
                        format!("{host}-{i}")
                    },
                    ip: "127.0.0.1".into(),
                    zone: (count > 1).then(|| format!("zone-{i}")),
                    cpus: crate::resources::fixed(cpus / count as f64),
                    mem: (mem / count as f64).floor(),
                    disk: (disk / count as f64).floor(),
                    ports: (begin as u16, (begin + span.max(1) - 1) as u16),
                    mounts: Vec::new(),
                }
            })
            .collect();
        LocalEngineConfig {
            work_dir: work_dir.to_path_buf(),
            agents,
            die_with_engine: false,
            check_interval_max_ms: 5_000,
            secrets: None,
        }
    }
}

/// A dedicated disk of an agent: a directory (normally a mount point) offered whole as a MOUNT
/// disk of `size_mb`. A volume on it is the directory itself, so a broker's data lands there.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MountConfig {
    /// The directory (absolute).
    pub path: PathBuf,
    /// The size offered, MB (the disk's size; not checked against the filesystem).
    pub size_mb: f64,
}

/// The offer `agent` makes (pure): its unreserved cpus, mem, ROOT disk and ports (what
/// `reserved` does not hold), each MOUNT disk no reservation holds (whole), and the reserved
/// resources no live task uses (`in_use`), so a relaunch in place finds them — of `role` only
/// when it is set (a framework is offered its own role's reservations, as in Mesos).
pub(super) fn agent_offer(
    agent: &AgentConfig,
    reserved: &BTreeMap<Uuid, Resource>,
    in_use: &[Uuid],
    role: Option<&str>,
    offer_number: u64,
) -> Offer {
    let amount = |name: &str| -> f64 {
        reserved
            .values()
            .filter(|r| r.name == name)
            // A MOUNT disk's reservation is the disk, not a slice of the root disk.
            .filter(|r| r.disk.as_ref().is_none_or(|d| d.source == DiskSource::Root))
            .map(Resource::amount)
            .sum()
    };
    let reserved_ports: Vec<u16> = reserved
        .values()
        .flat_map(|r| match &r.value {
            ResourceValue::Ranges(ranges) => ranges.iter().flat_map(|x| x.begin..=x.end).collect(),
            ResourceValue::Scalar(_) => Vec::new(),
        })
        .collect();
    let mut free: Vec<(u16, u16)> = Vec::new();
    for port in agent.ports.0..=agent.ports.1 {
        if reserved_ports.contains(&port) {
            continue;
        }
        match free.last_mut() {
            Some(last) if last.1 + 1 == port => last.1 = port,
            _ => free.push((port, port)),
        }
    }
    let mut resources = vec![
        Resource::scalar("cpus", (agent.cpus - amount("cpus")).max(0.0)),
        Resource::scalar("mem", (agent.mem - amount("mem")).max(0.0)),
        Resource::disk((agent.disk - amount("disk")).max(0.0), DiskSource::Root),
        Resource::ports(&free),
    ];
    for mount in &agent.mounts {
        let source = DiskSource::Mount {
            root: mount.path.display().to_string(),
        };
        let taken = reserved
            .values()
            .any(|r| r.disk.as_ref().is_some_and(|d| d.source == source));
        if !taken {
            resources.push(Resource::disk(mount.size_mb, source));
        }
    }
    resources.extend(
        reserved
            .iter()
            .filter(|(id, _)| !in_use.contains(id))
            .filter(|(_, r)| {
                role.is_none_or(|role| r.reservation.as_ref().is_some_and(|x| x.role == role))
            })
            .map(|(_, r)| r.clone()),
    );
    Offer {
        id: format!("{}-offer-{offer_number}", agent.id),
        agent_id: agent.id.clone(),
        hostname: agent.hostname.clone(),
        ip: agent.ip.clone(),
        zone: agent.zone.clone(),
        region: None,
        attributes: BTreeMap::new(),
        resources,
    }
}

/// Where a persistent volume lives: `W/volumes/<persistence id>` on the ROOT disk, the mount
/// point itself on a MOUNT disk; `None` for a disk that is not a volume.
pub(super) fn volume_dir(work_dir: &Path, disk: &DiskInfo) -> Option<PathBuf> {
    let persistence = disk.persistence_id.as_ref()?;
    Some(match &disk.source {
        DiskSource::Root => work_dir.join("volumes").join(persistence),
        DiskSource::Mount { root } => PathBuf::from(root),
    })
}

/// Deletes a volume's data (DESTROY): the ROOT volume's directory, or everything inside the
/// mount point (the mount point stays, as a disk stays after its volume is destroyed).
pub(super) fn destroy_volume(work_dir: &Path, disk: &DiskInfo) {
    let Some(dir) = volume_dir(work_dir, disk) else {
        return;
    };
    match disk.source {
        DiskSource::Root => {
            let _ = fs::remove_dir_all(dir);
        }
        DiskSource::Mount { .. } => {
            for entry in fs::read_dir(&dir).into_iter().flatten().flatten() {
                let path = entry.path();
                let _ = if entry.file_type().is_ok_and(|t| t.is_dir()) {
                    fs::remove_dir_all(path)
                } else {
                    fs::remove_file(path)
                };
            }
        }
    }
}

impl LocalEngineConfig {
    /// Hands out `mounts` to the agents in turn (the first to agent 0, the second to agent 1,
    /// …, wrapping around).
    pub fn add_mounts(&mut self, mounts: Vec<MountConfig>) {
        let count = self.agents.len();
        if count == 0 {
            return;
        }
        for (index, mount) in mounts.into_iter().enumerate() {
            self.agents[index % count].mounts.push(mount);
        }
    }
}

fn free_disk_mb(dir: &Path) -> Option<f64> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    // SAFETY: statvfs writes into the zeroed struct we pass; the path is a valid C string.
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::statvfs(path.as_ptr(), &mut stat) };
    (rc == 0).then(|| (stat.f_bavail as f64 * stat.f_frsize as f64 / 1_048_576.0).floor())
}

#[cfg(test)]
#[path = "agents_tests.rs"]
mod tests;
