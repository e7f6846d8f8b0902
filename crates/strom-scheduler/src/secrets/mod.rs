//! Secrets: what a service may read, how a secret reaches its tasks, and the store they are
//! kept in.
//!
//! The rules are DC/OS's (developer guide, "Authorization for Secrets"; seed 000): a secret's
//! path is a namespace plus a name (`a/b/x` is `x` in namespace `a/b`), and a service may read
//! it only when the namespace is its own path or one of its ancestors — service `/a/b` and
//! `/a/b/c` read `a/b/x`, service `/a` does not, nor does `/a/c`; a secret without a namespace
//! (`x`) is readable by every service. Absolute paths (a leading `/`) are refused. A secret
//! whose name starts with [`BASE64_PREFIX`] holds base64 text (RFC 4648) and is delivered as
//! the decoded bytes, as a file only.
//!
//! A pod's `secrets:` entries ([`SecretSpec`]) are references: the task info, the state store,
//! the API and the logs carry the path, the env key and the file name, never the value. The
//! value is read from the [`SecretStore`] by the engine at launch ([`deliver`]) and exists only
//! in the task's environment and in its sandbox file (mode 0400, removed when the task ends).
//!
//! The rules and [`deliver`] are pure given a store; [`file_store`] is the embedded store (a
//! directory) and does I/O. Not owned here: which store a scheduler uses (the CLI's wiring).

pub mod file_store;

use std::collections::BTreeMap;
use std::fmt;

pub use crate::spec::SecretSpec;

/// Names starting with this hold base64 text; their decoded bytes are what the task gets.
pub const BASE64_PREFIX: &str = "__dcos_base64__";

/// Why a secret could not be stored, read or delivered. No variant holds a secret's value.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The path breaks the path rules.
    #[error("secret {path:?}: {reason}")]
    InvalidPath { path: String, reason: String },
    /// The service may not read the secret (namespace rule).
    #[error(
        "service {service:?} may not read secret {path:?}: a service reads only secrets whose \
         namespace is its own path or an ancestor of it"
    )]
    Forbidden { service: String, path: String },
    /// No such secret in the store.
    #[error("secret {path:?} does not exist")]
    NotFound { path: String },
    /// The secret exists and `create` was asked not to overwrite it.
    #[error("secret {path:?} already exists")]
    Exists { path: String },
    /// The value cannot be delivered the way the spec asks.
    #[error("secret {path:?}: {reason}")]
    Undeliverable { path: String, reason: String },
    /// The store failed.
    #[error("secret store: {0}")]
    Io(#[from] std::io::Error),
}

/// Where secrets are read from. Implementations never log values.
pub trait SecretStore {
    /// The value of the secret at `path`, if it exists (the raw stored bytes: base64 text for a
    /// [`BASE64_PREFIX`] name).
    fn read(&self, path: &str) -> Result<Option<Vec<u8>>, SecretError>;
}

/// Checks a secret path: relative, `/`-separated, each part non-empty, not `.` or `..`, made of
/// letters, digits, `.`, `_` and `-`.
pub fn check_path(path: &str) -> Result<(), SecretError> {
    let invalid = |reason: &str| SecretError::InvalidPath {
        path: path.to_string(),
        reason: reason.to_string(),
    };
    if path.is_empty() {
        return Err(invalid("a secret path must not be empty"));
    }
    if path.starts_with('/') {
        return Err(invalid(
            "absolute secret paths (a leading '/') are not supported",
        ));
    }
    for part in path.split('/') {
        if part.is_empty() || part == "." || part == ".." {
            return Err(invalid(
                "each '/'-separated part must be a non-empty name other than '.' and '..'",
            ));
        }
        if !part
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        {
            return Err(invalid(
                "a secret path uses letters, digits, '.', '_', '-' and '/'",
            ));
        }
    }
    let name = path.rsplit('/').next().unwrap_or(path);
    if name == BASE64_PREFIX {
        return Err(invalid("a base64 secret needs a name after the prefix"));
    }
    Ok(())
}

/// Whether service `service` (its name or Marathon-style id, `/a/b` or `a/b`) may read the
/// secret at `path`: the secret's namespace (its path without the last part) must be the
/// service's path or an ancestor of it.
pub fn may_read(service: &str, path: &str) -> bool {
    let service: Vec<&str> = service.split('/').filter(|p| !p.is_empty()).collect();
    let mut parts: Vec<&str> = path.split('/').collect();
    parts.pop();
    parts.len() <= service.len() && service[..parts.len()] == parts[..]
}

/// Whether the secret at `path` holds base64 text to be decoded.
pub fn is_base64(path: &str) -> bool {
    path.rsplit('/')
        .next()
        .is_some_and(|name| name.starts_with(BASE64_PREFIX))
}

/// Checks a pod's secret entry on its own and against its service: path rules, namespace,
/// env key or file given, base64 secrets as files only, a file inside the sandbox. Errors name
/// the entry's key (`pods.kafka.secrets.<name>.<field>`) and the rule.
pub fn check_spec(service: &str, key: &str, spec: &SecretSpec) -> Result<(), (String, String)> {
    let field = |name: &str| format!("{key}.{name}");
    check_path(&spec.secret).map_err(|error| (field("secret"), error.to_string()))?;
    if !may_read(service, &spec.secret) {
        let error = SecretError::Forbidden {
            service: service.to_string(),
            path: spec.secret.clone(),
        };
        return Err((field("secret"), error.to_string()));
    }
    if spec.env_key.is_none() && spec.file.is_none() {
        return Err((
            key.to_string(),
            "a secret is delivered as an env-key, a file or both: set at least one".into(),
        ));
    }
    if let Some(env_key) = &spec.env_key {
        let valid = env_key
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && env_key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err((
                field("env-key"),
                "an environment variable name: letters, digits and '_', not starting with a digit"
                    .into(),
            ));
        }
        if is_base64(&spec.secret) {
            return Err((
                field("env-key"),
                format!(
                    "{BASE64_PREFIX} secrets hold binary content and are delivered as files only"
                ),
            ));
        }
    }
    if let Some(file) = &spec.file {
        let inside = !file.is_empty()
            && std::path::Path::new(file)
                .components()
                .all(|c| matches!(c, std::path::Component::Normal(_)));
        if !inside {
            return Err((
                field("file"),
                "a relative path inside the sandbox (no leading '/', no '.' or '..')".into(),
            ));
        }
    }
    Ok(())
}

/// What a task gets from its secrets: environment variables and sandbox files. `Debug` shows
/// the names only.
#[derive(Default, PartialEq)]
pub struct Delivery {
    /// Env key → value.
    pub env: BTreeMap<String, String>,
    /// Sandbox-relative file → content.
    pub files: BTreeMap<String, Vec<u8>>,
}

impl fmt::Debug for Delivery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Delivery")
            .field("env", &self.env.keys().collect::<Vec<_>>())
            .field("files", &self.files.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// Reads `secrets` for service `service` from `store`, checking each again (the engine does not
/// trust the task info it is handed), decoding base64 names. An env value must be UTF-8 without
/// NUL bytes.
pub fn deliver(
    store: &dyn SecretStore,
    service: &str,
    secrets: &[SecretSpec],
) -> Result<Delivery, SecretError> {
    let mut delivery = Delivery::default();
    for spec in secrets {
        check_path(&spec.secret)?;
        if !may_read(service, &spec.secret) {
            return Err(SecretError::Forbidden {
                service: service.to_string(),
                path: spec.secret.clone(),
            });
        }
        let undeliverable = |reason: &str| SecretError::Undeliverable {
            path: spec.secret.clone(),
            reason: reason.to_string(),
        };
        let stored = store
            .read(&spec.secret)?
            .ok_or_else(|| SecretError::NotFound {
                path: spec.secret.clone(),
            })?;
        let value = if is_base64(&spec.secret) {
            decode_base64(&stored).map_err(|reason| undeliverable(&reason))?
        } else {
            stored
        };
        if let Some(env_key) = &spec.env_key {
            let text = String::from_utf8(value.clone())
                .ok()
                .filter(|t| !t.contains('\0'))
                .ok_or_else(|| {
                    undeliverable("an env-key secret must be UTF-8 text without NUL bytes")
                })?;
            delivery.env.insert(env_key.clone(), text);
        }
        if let Some(file) = &spec.file {
            delivery.files.insert(file.clone(), value);
        }
    }
    Ok(delivery)
}

/// Decodes standard base64 (RFC 4648 §4, `=` padding optional), ignoring ASCII whitespace (GNU
/// `base64` wraps lines unless told `-w 0`). The error says what is wrong, not the text.
pub fn decode_base64(text: &[u8]) -> Result<Vec<u8>, String> {
    let mut symbols: Vec<u8> = text
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    let padding = symbols.iter().rev().take_while(|&&b| b == b'=').count();
    if padding > 2 || (padding > 0 && symbols.len() % 4 != 0) {
        return Err("not base64: wrong '=' padding".into());
    }
    symbols.truncate(symbols.len() - padding);
    if symbols.len() % 4 == 1 {
        return Err("not base64: the length is not a whole number of bytes".into());
    }
    let value = |b: u8| -> Result<u32, String> {
        Ok(match b {
            b'A'..=b'Z' => b - b'A',
            b'a'..=b'z' => b - b'a' + 26,
            b'0'..=b'9' => b - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return Err("not base64: a byte outside the base64 alphabet".into()),
        }
        .into())
    };
    let mut out = Vec::with_capacity(symbols.len() / 4 * 3 + 2);
    for chunk in symbols.chunks(4) {
        let mut word = 0u32;
        for (index, &b) in chunk.iter().enumerate() {
            word |= value(b)? << (18 - 6 * index);
        }
        let bytes = word.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
