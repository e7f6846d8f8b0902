//! What `strom scheduler run` reads from its command line before anything starts: the port
//! range, the MOUNT disks, and the options JSON (normalized, so two texts of the same options
//! compare equal). No I/O beyond reading the options file and resolving mount paths.

use anyhow::{anyhow, bail, Context};
use serde_json::Value;
use strom_scheduler::engine::local::MountConfig;

use super::RunArgs;

pub(super) fn parse_ports(text: &str) -> anyhow::Result<(u16, u16)> {
    let (first, last) = text
        .split_once('-')
        .ok_or_else(|| anyhow!("--ports {text:?}: expected FIRST-LAST"))?;
    let range: (u16, u16) = (first.trim().parse()?, last.trim().parse()?);
    if range.0 == 0 || range.0 > range.1 {
        bail!("--ports {text:?}: FIRST must be in 1..=LAST");
    }
    Ok(range)
}

pub(super) fn parse_mounts(texts: &[String]) -> anyhow::Result<Vec<MountConfig>> {
    texts
        .iter()
        .map(|text| {
            let (path, size) = text
                .rsplit_once(':')
                .ok_or_else(|| anyhow!("--mount {text:?}: expected PATH:SIZE_MB"))?;
            let size_mb: f64 = size
                .parse()
                .ok()
                .filter(|s: &f64| s.is_finite() && *s > 0.0)
                .ok_or_else(|| anyhow!("--mount {text:?}: SIZE_MB must be a positive number"))?;
            let path = std::fs::canonicalize(path).with_context(|| {
                format!("--mount {text:?}: the directory must exist (a mounted disk)")
            })?;
            if !path.is_dir() {
                bail!("--mount {text:?}: not a directory");
            }
            Ok(MountConfig { path, size_mb })
        })
        .collect()
}

pub(super) fn options_json(args: &RunArgs) -> anyhow::Result<String> {
    let text = match &args.options {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the options file {}", path.display()))?,
        None => "{}".to_string(),
    };
    normalize_options(&text, &args.service)
}

/// Options JSON with `service.name` defaulted to `service`, in a canonical form (sorted keys),
/// so two texts of the same options compare equal.
pub(crate) fn normalize_options(text: &str, service_name: &str) -> anyhow::Result<String> {
    let mut options: Value =
        serde_json::from_str(text).context("the options are not valid JSON")?;
    let Some(sections) = options.as_object_mut() else {
        bail!("the options must be a JSON object");
    };
    let service = sections
        .entry("service")
        .or_insert_with(|| Value::Object(Default::default()));
    match service.as_object_mut() {
        Some(service) => {
            service
                .entry("name")
                .or_insert_with(|| Value::String(service_name.to_string()));
        }
        None => bail!("options: service must be an object"),
    }
    Ok(options.to_string())
}
