//! What the local engine puts into a task's sandbox besides the process: the rendered config
//! files, the links to its persistent volumes and its secrets (files mode 0400, read from the
//! secret store at launch and removed when the task ends, as Mesos's tmpfs secret volumes went
//! with the container). Paths from a task info are sandbox-relative and checked here.

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Component, Path, PathBuf};

use crate::secrets::file_store::FileSecretStore;
use crate::secrets::{deliver, SecretSpec};

/// Where the engine reads the secrets of the tasks it launches, and for which service: the
/// namespace rule is checked against `service`, not against anything a task info says.
#[derive(Clone, Debug)]
pub struct EngineSecrets {
    /// The secret store.
    pub store: FileSecretStore,
    /// The service (its name or Marathon-style id) the engine launches tasks for.
    pub service: String,
}

/// `path` as a relative path inside a sandbox (no root, no `..`).
pub(super) fn relative(path: &str) -> std::io::Result<&Path> {
    let path = Path::new(path);
    if path
        .components()
        .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
    {
        Ok(path)
    } else {
        Err(std::io::Error::other(format!(
            "{} is not a relative path inside the sandbox",
            path.display()
        )))
    }
}

fn inside(sandbox: &Path, path: &str) -> std::io::Result<PathBuf> {
    let file = sandbox.join(relative(path)?);
    if let Some(parent) = file.parent() {
        fs::create_dir_all(parent)?;
    }
    Ok(file)
}

/// Reads `secrets` (none: nothing to do) and writes their files into `sandbox`; returns the
/// environment variables to add to the task's. Errors name the secret, never its value.
pub(super) fn deliver_secrets(
    access: Option<&EngineSecrets>,
    secrets: &[SecretSpec],
    sandbox: &Path,
) -> std::io::Result<Vec<(String, String)>> {
    if secrets.is_empty() {
        return Ok(Vec::new());
    }
    let Some(access) = access else {
        return Err(std::io::Error::other(
            "the task has secrets and the engine has no secret store",
        ));
    };
    let delivery = deliver(&access.store, &access.service, secrets)
        .map_err(|error| std::io::Error::other(error.to_string()))?;
    for (dest, value) in &delivery.files {
        let file = inside(sandbox, dest)?;
        let _ = fs::remove_file(&file);
        let mut out = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o400)
            .open(&file)?;
        out.write_all(value)?;
    }
    Ok(delivery.env.into_iter().collect())
}

/// Removes the secret files of a task that ended.
pub(super) fn remove_secret_files(secrets: &[SecretSpec], sandbox: &Path) {
    for file in secrets.iter().filter_map(|s| s.file.as_deref()) {
        if let Ok(path) = relative(file) {
            let _ = fs::remove_file(sandbox.join(path));
        }
    }
}

/// Writes a task's rendered config files into its sandbox.
pub(super) fn write_config_files<'a>(
    files: impl IntoIterator<Item = (&'a String, &'a String)>,
    sandbox: &Path,
) -> std::io::Result<()> {
    for (dest, content) in files {
        fs::write(inside(sandbox, dest)?, content)?;
    }
    Ok(())
}
