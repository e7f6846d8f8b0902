//! The local engine's virtual agents: what each offers (cpus, mem, ROOT disk, a port range,
//! hostname, zone) and how this machine is split among them. Configuration only; the engine
//! (`local.rs`) keeps their reservations and runs their tasks.

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

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

fn free_disk_mb(dir: &Path) -> Option<f64> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    // SAFETY: statvfs writes into the zeroed struct we pass; the path is a valid C string.
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::statvfs(path.as_ptr(), &mut stat) };
    (rc == 0).then(|| (stat.f_bavail as f64 * stat.f_frsize as f64 / 1_048_576.0).floor())
}
