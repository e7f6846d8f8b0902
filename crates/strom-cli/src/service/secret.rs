//! `strom service secret create|list|delete`: the embedded secret store (a directory, see
//! `strom_scheduler::secrets::file_store`), as `dcos security secrets …` managed DC/OS's. The
//! store is found with `--store` or `STROM_SECRET_STORE`, the same directory a scheduler is
//! started with (`strom scheduler run --secret-store`). Values are never printed: there is no
//! `get`, and `list` shows paths only.

use std::io::Read;
use std::path::PathBuf;

use anyhow::{bail, Context};
use strom_scheduler::secrets::file_store::FileSecretStore;

use crate::output::{print_json, Table};

/// `strom service secret …`.
#[derive(Debug, clap::Args)]
pub struct SecretArgs {
    /// The secret store directory.
    #[arg(long, global = true, env = "STROM_SECRET_STORE", value_name = "DIR")]
    store: Option<PathBuf>,
    #[command(subcommand)]
    command: SecretCommand,
}

/// The secret store's commands.
#[derive(Debug, clap::Subcommand)]
enum SecretCommand {
    /// Store a secret at PATH (`<namespace>/<name>`; a service `/a/b` reads secrets of
    /// namespaces `a/b`, `a` and the root). The value comes from --value, --file, or stdin.
    /// Names starting with `__dcos_base64__` hold base64 text that tasks get decoded, as files.
    Create {
        path: String,
        /// The value (visible in the process list: prefer --file or stdin).
        #[arg(long, conflicts_with = "file")]
        value: Option<String>,
        /// Read the value from this file, bytes as they are.
        #[arg(long, value_name = "FILE")]
        file: Option<PathBuf>,
        /// Replace an existing secret.
        #[arg(long)]
        force: bool,
    },
    /// List secret paths (never values), optionally under a namespace.
    List { prefix: Option<String> },
    /// Delete the secret at PATH.
    Delete { path: String },
}

/// Runs `strom service secret …`; `json` is the global `--json`.
pub fn run(args: SecretArgs, json: bool) -> anyhow::Result<()> {
    let Some(dir) = args.store else {
        bail!("where is the secret store? set --store DIR or STROM_SECRET_STORE");
    };
    let store = FileSecretStore::open(&dir)?;
    match args.command {
        SecretCommand::Create {
            path,
            value,
            file,
            force,
        } => {
            let bytes = match (value, file) {
                (Some(value), _) => value.into_bytes(),
                (None, Some(file)) => std::fs::read(&file)
                    .with_context(|| format!("cannot read {}", file.display()))?,
                (None, None) => {
                    let mut bytes = Vec::new();
                    std::io::stdin()
                        .read_to_end(&mut bytes)
                        .context("cannot read the value from stdin")?;
                    bytes
                }
            };
            store.put(&path, &bytes, force)?;
            if json {
                print_json(&serde_json::json!({ "created": path }))?;
            } else {
                println!("secret {path} stored ({} bytes)", bytes.len());
            }
        }
        SecretCommand::List { prefix } => {
            let prefix = prefix.map(|p| format!("{}/", p.trim_end_matches('/')));
            let paths: Vec<String> = store
                .list()?
                .into_iter()
                .filter(|p| prefix.as_deref().is_none_or(|prefix| p.starts_with(prefix)))
                .collect();
            if json {
                print_json(&serde_json::json!(paths))?;
            } else {
                let mut table = Table::new(&["SECRET"]);
                for path in paths {
                    table.row(vec![path]);
                }
                table.print()?;
            }
        }
        SecretCommand::Delete { path } => {
            if !store.delete(&path)? {
                bail!("secret {path} does not exist");
            }
            if json {
                print_json(&serde_json::json!({ "deleted": path }))?;
            } else {
                println!("secret {path} deleted");
            }
        }
    }
    Ok(())
}
