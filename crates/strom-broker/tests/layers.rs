//! The broker's layers, checked: every `crate::…`, `super::…` and `self::…` path in
//! `src/` (in `use` items and inline) is resolved to the module it names, and the "never
//! imports" rules of ARCHITECTURE.md are asserted on those references.
//!
//! The layers, each a folder a reader can see (top to bottom, in the direction of a request):
//!
//! - wiring: `lib.rs`, `broker.rs`, `broker/` — builds the services and starts the tasks;
//! - connection: `connection/` — listeners, framing, response order, dispatch;
//! - handlers: `handlers/` — one module per Kafka API family;
//! - services: `services/` — replica manager, metadata cache, topic admin, group coordinator,
//!   producer ids, background tasks;
//! - below them, known to whoever needs them: protocol (`protocol/` — the wire protocol without
//!   state: request decoding, response encoding, reply frames; used by the connection and the
//!   handlers), interbroker (`interbroker/` — the client side of broker-to-broker traffic: peer
//!   connections, the controller's requests on the wire, the controller channel; used by the
//!   services and by the handlers that read controller requests) and base (`metrics.rs`,
//!   `clock.rs`, `alloc.rs`); then `strom-log` and `strom-meta`.
//!
//! The rules:
//!
//! 1. Nothing outside the wiring names `crate::broker` (nor what `lib.rs` re-exports from it).
//!    Test-only files (`tests.rs`, `tests/`) may, to open a real broker.
//! 2. Services never name a handler, the connection layer, the wire protocol or the wiring.
//! 3. The connection layer names no service's internals: of `crate::services` it names only the
//!    [`Services`] context it hands to the handlers.
//! 4. Handlers never name the connection layer: what they take and answer is `protocol`'s.
//! 5. The protocol names nothing above it (only itself, the inter-broker client's version
//!    ranges and base); base names nothing of the
//!    crate but base.
//! 6. The inter-broker client names nothing above it (only itself and base; its tests may open
//!    a real broker, as rule 1 allows).
//!
//! Why this test fails when someone adds a forbidden import: every path that starts with
//! `crate`, `super` or `self` in a non-comment, non-string part of a file under `src/` becomes
//! an absolute module path (`super` counted from the file's own module, which is one level
//! *higher* than the real one inside an inline `mod tests`, so the resolution never hides a
//! crossing); `lib.rs`'s `pub use` re-exports are mapped back to the module they come from, so
//! `crate::Broker` counts as `crate::broker::Broker`. A handler that writes
//! `use crate::broker::Broker;`, `crate::Broker`, or `super::super::broker::Broker` therefore
//! produces a reference from layer "handlers" to layer "wiring", which rule 1 rejects (and one
//! that writes `use crate::connection::server::Reply;` a reference to "connection", rule 4), and the
//! assertion lists it with its file. [`a_forbidden_import_is_reported`] runs the same checker on
//! such a file to show it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Layer {
    Wiring,
    Connection,
    Handlers,
    Services,
    Protocol,
    Interbroker,
    Base,
    /// Items of `lib.rs` itself and anything outside the crate.
    Root,
}

/// The layer of a module path (`["services", "replica"]`).
fn layer_of(module: &[String]) -> Layer {
    match module.first().map(String::as_str) {
        Some("broker") => Layer::Wiring,
        Some("connection") => Layer::Connection,
        Some("handlers") => Layer::Handlers,
        Some("services") => Layer::Services,
        Some("protocol") => Layer::Protocol,
        Some("interbroker") => Layer::Interbroker,
        Some("metrics") | Some("alloc") | Some("clock") => Layer::Base,
        _ => Layer::Root,
    }
}

/// The layer of a source file, by its module path; `lib.rs` is wiring.
fn file_layer(module: &[String]) -> Layer {
    if module.is_empty() {
        Layer::Wiring
    } else {
        layer_of(module)
    }
}

/// The module path of a file relative to `src/`: `handlers/fetch.rs` is `handlers::fetch`,
/// `services/replica/mod.rs` is `services::replica`, `lib.rs` is the root.
fn module_of(relative: &Path) -> Vec<String> {
    let mut parts: Vec<String> = relative
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let last = parts.pop().unwrap_or_default();
    let stem = last.trim_end_matches(".rs");
    if stem != "mod" && !(parts.is_empty() && stem == "lib") {
        parts.push(stem.to_string());
    }
    parts
}

/// The source with comments, string and character literals blanked out (lines kept).
fn strip(source: &str) -> String {
    let chars: Vec<char> = source.chars().collect();
    let mut out = String::with_capacity(source.len());
    let mut i = 0;
    let blank = |c: char| if c == '\n' { '\n' } else { ' ' };
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    out.push(blank(chars[i]));
                    i += 1;
                }
            }
        } else if c == 'r'
            && (next == Some('"') || next == Some('#'))
            && (i == 0 || !is_ident(chars[i - 1]))
        {
            // A raw string: r"…" or r#"…"#.
            let mut j = i + 1;
            let mut hashes = 0;
            while chars.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if chars.get(j) != Some(&'"') {
                out.push(c);
                i += 1;
                continue;
            }
            j += 1;
            loop {
                if j >= chars.len() {
                    break;
                }
                if chars[j] == '"' && (0..hashes).all(|h| chars.get(j + 1 + h) == Some(&'#')) {
                    j += 1 + hashes;
                    break;
                }
                out.push(blank(chars[j]));
                j += 1;
            }
            i = j;
        } else if c == '"' {
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' {
                    i += 1;
                }
                if let Some(&ch) = chars.get(i) {
                    out.push(blank(ch));
                }
                i += 1;
            }
            i += 1;
        } else if c == '\'' {
            // A character literal ('x', '\n', '\'') or a lifetime ('a).
            let is_char = matches!(
                (next, chars.get(i + 2)),
                (Some('\\'), _) | (Some(_), Some('\''))
            );
            if is_char {
                i += 1;
                if chars.get(i) == Some(&'\\') {
                    i += 1;
                }
                i += 1;
                while i < chars.len() && chars[i] != '\'' {
                    i += 1;
                }
                i += 1;
            } else {
                out.push(c);
                i += 1;
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Expands a `use` tree (`a::{b, c::{d, e}}`) into its paths.
fn expand_use(tree: &str) -> Vec<String> {
    let tree = tree.trim();
    let Some(open) = tree.find('{') else {
        let path = tree.split_whitespace().next().unwrap_or("");
        return vec![path.to_string()];
    };
    let prefix = &tree[..open];
    let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
    let mut items = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(inner[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    items.push(inner[start..].trim());
    items
        .into_iter()
        .filter(|item| !item.is_empty())
        .flat_map(|item| {
            expand_use(item)
                .into_iter()
                .map(|p| {
                    if p == "self" {
                        prefix.trim_end_matches("::").to_string()
                    } else {
                        format!("{}{p}", prefix.trim())
                    }
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Every crate-relative path a stripped source names: `use` trees expanded, then inline paths.
fn referenced_paths(stripped: &str) -> Vec<String> {
    let mut paths = Vec::new();
    let mut rest = String::with_capacity(stripped.len());
    let mut i = 0;
    let bytes = stripped.as_bytes();
    while i < stripped.len() {
        let at_word = (i == 0 || !is_ident(bytes[i - 1] as char))
            && stripped[i..].starts_with("use")
            && stripped[i + 3..].starts_with(|c: char| c.is_whitespace());
        if at_word {
            let end = stripped[i..].find(';').map_or(stripped.len(), |e| i + e);
            paths.extend(expand_use(&stripped[i + 3..end]));
            i = end;
        } else {
            let c = stripped[i..].chars().next().unwrap_or(' ');
            rest.push(c);
            i += c.len_utf8();
        }
    }
    for start in ["crate::", "super::", "self::"] {
        let mut from = 0;
        while let Some(found) = rest[from..].find(start) {
            let at = from + found;
            from = at + start.len();
            if at > 0 && is_ident(rest.as_bytes()[at - 1] as char) {
                continue;
            }
            if at > 0 && rest.as_bytes()[at - 1] == b':' {
                continue;
            }
            let path: String = rest[at..]
                .chars()
                .take_while(|&c| is_ident(c) || c == ':' || c == '*')
                .collect();
            paths.push(path);
        }
    }
    paths
        .into_iter()
        .filter(|p| p.starts_with("crate::") || p.starts_with("super::") || p.starts_with("self::"))
        .collect()
}

/// Resolves `path` as written in the file of module `module` to segments from the crate root,
/// with `lib.rs`'s re-exports (`aliases`) mapped back to their origin.
fn resolve(path: &str, module: &[String], aliases: &BTreeMap<String, Vec<String>>) -> Vec<String> {
    let mut segments: Vec<String> = path
        .split("::")
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    let mut base: Vec<String> = match segments.first().map(String::as_str) {
        Some("crate") => {
            segments.remove(0);
            Vec::new()
        }
        Some("self") => {
            segments.remove(0);
            module.to_vec()
        }
        _ => {
            let mut base = module.to_vec();
            while segments.first().map(String::as_str) == Some("super") {
                segments.remove(0);
                base.pop();
            }
            base
        }
    };
    base.extend(segments);
    if let Some(first) = base.first() {
        if let Some(origin) = aliases.get(first) {
            let mut mapped = origin.clone();
            mapped.extend(base.into_iter().skip(1));
            return mapped;
        }
    }
    base
}

/// The names `lib.rs` re-exports from the crate's own modules, each with the module path it
/// comes from (`Broker` → `broker::Broker`, `dispatch` → `connection::dispatch`).
fn aliases(lib: &str) -> BTreeMap<String, Vec<String>> {
    let mut aliases = BTreeMap::new();
    for line in strip(lib).split(';') {
        let line = line.trim();
        let Some(tree) = line.strip_prefix("pub use ") else {
            continue;
        };
        for path in expand_use(tree) {
            let segments: Vec<String> = path.split("::").map(str::to_string).collect();
            let first = segments.first().map(String::as_str).unwrap_or("");
            if [
                "broker",
                "connection",
                "handlers",
                "services",
                "metrics",
                "alloc",
                "clock",
            ]
            .contains(&first)
            {
                if let Some(name) = segments.last() {
                    aliases.insert(name.clone(), segments.clone());
                }
            }
        }
    }
    aliases
}

/// Why a reference from a file of `from` (module `module`, test-only or not) to `target` breaks
/// a rule, if it does.
fn violation(from: Layer, test_only: bool, target: &[String]) -> Option<&'static str> {
    let to = layer_of(target);
    let joined = target.join("::");
    if to == Layer::Wiring && from != Layer::Wiring && !test_only {
        return Some("rule 1: nothing outside the wiring imports crate::broker");
    }
    match from {
        Layer::Services if matches!(to, Layer::Handlers | Layer::Connection | Layer::Protocol) => {
            Some("rule 2: services never import handlers, the connection or the protocol")
        }
        Layer::Connection if to == Layer::Services && joined != "services::Services" => {
            Some("rule 3: the connection layer names only the Services context of the services")
        }
        Layer::Handlers if to == Layer::Connection => {
            Some("rule 4: handlers never import the connection layer")
        }
        Layer::Protocol
            if !matches!(
                to,
                Layer::Protocol | Layer::Interbroker | Layer::Base | Layer::Root
            ) =>
        {
            Some("rule 5: the protocol imports nothing above it")
        }
        Layer::Interbroker
            if !(matches!(to, Layer::Interbroker | Layer::Base | Layer::Root)
                || test_only && to == Layer::Wiring) =>
        {
            Some("rule 6: the inter-broker client imports nothing above it")
        }
        Layer::Base if to != Layer::Root && to != Layer::Base => {
            Some("rule 5: base modules import nothing of the crate")
        }
        _ => None,
    }
}

/// Checks one file; returns a line per forbidden reference.
fn check_file(
    relative: &Path,
    source: &str,
    aliases: &BTreeMap<String, Vec<String>>,
) -> Vec<String> {
    let module = module_of(relative);
    let from = file_layer(&module);
    let test_only = relative.file_name().is_some_and(|n| n == "tests.rs")
        || relative.iter().any(|part| part == "tests");
    let mut found = Vec::new();
    for path in referenced_paths(&strip(source)) {
        let target = resolve(&path, &module, aliases);
        if let Some(rule) = violation(from, test_only, &target) {
            found.push(format!(
                "{}: `{path}` ({from:?} -> {:?}): {rule}",
                relative.display(),
                layer_of(&target)
            ));
        }
    }
    found
}

fn source_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("src is readable") {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            source_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn no_module_imports_across_the_never_imports_rules() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let lib = std::fs::read_to_string(src.join("lib.rs")).expect("lib.rs");
    let aliases = aliases(&lib);
    assert!(
        aliases.get("Broker") == Some(&vec!["broker".to_string(), "Broker".to_string()]),
        "lib.rs's re-export of Broker is seen, so crate::Broker counts as the wiring: {aliases:?}"
    );
    let mut files = Vec::new();
    source_files(&src, &mut files);
    assert!(
        files.len() > 40,
        "found the sources ({} files)",
        files.len()
    );
    let mut violations = Vec::new();
    let mut references = 0;
    for file in &files {
        let relative = file.strip_prefix(&src).expect("under src");
        let source = std::fs::read_to_string(file).expect("readable source");
        references += referenced_paths(&strip(&source)).len();
        violations.extend(check_file(relative, &source, &aliases));
    }
    assert!(
        references > 200,
        "the scan sees the crate's paths ({references})"
    );
    assert!(
        violations.is_empty(),
        "forbidden imports:\n{}",
        violations.join("\n")
    );
}

#[test]
fn a_forbidden_import_is_reported() {
    let aliases = aliases("pub use broker::{start, Broker};\npub use connection::server;\n");
    let handler = r#"
        //! A handler. `crate::broker::Broker` in a comment does not count.
        use crate::services::Services;
        use crate::{broker::Broker, protocol::request::RequestContext};
        fn f(b: &crate::Broker) { let s = "crate::broker::Broker"; let c = 'x'; }
        fn g<'a>(x: &'a str) -> &'a str { super::super::broker::start; x }
        use crate::connection::dispatch::dispatch;
        use crate::server::serve;
    "#;
    let found = check_file(Path::new("handlers/fake.rs"), handler, &aliases);
    assert_eq!(found.len(), 5, "{found:#?}");
    assert!(found[0].contains("`crate::broker::Broker`") && found[0].contains("rule 1"));
    assert!(
        found[1].contains("`crate::connection::dispatch::dispatch`") && found[1].contains("rule 4")
    );
    assert!(found[2].contains("`crate::server::serve`") && found[2].contains("rule 4"));
    assert!(found[3].contains("`crate::Broker`") && found[3].contains("rule 1"));
    assert!(found[4].contains("super::super::broker::start") && found[4].contains("rule 1"));

    let service = "use crate::handlers::route;\nuse super::replica::ReplicaManager;\n";
    let found = check_file(Path::new("services/coordinator/fake.rs"), service, &aliases);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(found[0].contains("rule 2"));

    let connection =
        "use crate::services::Services;\nuse crate::services::replica::partition::Partition;\n";
    let found = check_file(Path::new("connection/fake.rs"), connection, &aliases);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(found[0].contains("rule 3"));

    let protocol = "use crate::handlers::legacy;\nuse super::frame::Reply;\n";
    let found = check_file(Path::new("protocol/request.rs"), protocol, &aliases);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(found[0].contains("rule 5"));

    let base = "use crate::services::Services;\nfn t() -> i64 { crate::clock::now_ms() }\n";
    let found = check_file(Path::new("metrics.rs"), base, &aliases);
    assert_eq!(found.len(), 1, "{found:#?}");

    let test_only = "use crate::broker::Broker;\n";
    assert!(check_file(
        Path::new("services/coordinator/tests.rs"),
        test_only,
        &aliases
    )
    .is_empty());
}
