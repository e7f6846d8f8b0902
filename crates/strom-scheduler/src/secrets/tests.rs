use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;

use super::file_store::FileSecretStore;
use super::*;

/// The authorization table of DC/OS's developer guide (seed 000's "密钥授权" table).
#[test]
fn the_namespace_rule_matches_the_dcos_table() {
    let table = [
        ("Secret_Path1", "/user", true),
        ("Secret_Path1", "/dev1/user", true),
        ("secret-svc/Secret_Path1", "/user", false),
        ("secret-svc/Secret_Path1", "/user/dev1", false),
        ("secret-svc/Secret_Path1", "/secret-svc", true),
        ("secret-svc/Secret_Path1", "/secret-svc/dev1", true),
        (
            "secret-svc/Secret_Path1",
            "/secret-svc/instance2/dev2",
            true,
        ),
        ("secret-svc/Secret_Path1", "/secret-svc/a/b/c/dev3", true),
        (
            "secret-svc/instance1/Secret_Path2",
            "/secret-svc/dev1",
            false,
        ),
        (
            "secret-svc/instance1/Secret_Path2",
            "/secret-svc/instance2/dev3",
            false,
        ),
        (
            "secret-svc/instance1/Secret_Path2",
            "/secret-svc/instance1",
            true,
        ),
        (
            "secret-svc/instance1/Secret_Path2",
            "/secret-svc/instance1/dev3",
            true,
        ),
        (
            "secret-svc/instance1/Secret_Path2",
            "/secret-svc/instance1/someDir/dev3",
            true,
        ),
        // Siblings and prefixes that are not whole parts.
        ("kafka/x", "kafka", true),
        ("kafka/x", "kafka-2", false),
        ("kafka/x", "/kafk", false),
        ("a/b/x", "/a", false),
    ];
    for (secret, service, allowed) in table {
        assert_eq!(
            may_read(service, secret),
            allowed,
            "{service} reading {secret}"
        );
    }
}

#[test]
fn paths_are_relative_names() {
    for good in ["x", "a/b/x", "kafka/__dcos_base64__keytab", "a.b/c-d_e"] {
        assert!(check_path(good).is_ok(), "{good}");
    }
    for (bad, rule) in [
        ("", "empty"),
        ("/a/x", "absolute"),
        ("a//x", "non-empty"),
        ("a/../x", "non-empty name other than"),
        ("a/./x", "non-empty name other than"),
        ("a/x y", "letters, digits"),
        ("a/__dcos_base64__", "name after the prefix"),
    ] {
        let error = check_path(bad).unwrap_err().to_string();
        assert!(error.contains(rule), "{bad:?}: {error}");
    }
}

fn spec(secret: &str, env_key: Option<&str>, file: Option<&str>) -> SecretSpec {
    SecretSpec {
        secret: secret.into(),
        env_key: env_key.map(str::to_string),
        file: file.map(str::to_string),
    }
}

#[test]
fn a_spec_entry_is_refused_with_its_key_and_rule() {
    let key = "pods.kafka.secrets.s";
    let refused = |s: SecretSpec| check_spec("/kafka", key, &s).unwrap_err();
    let (field, rule) = refused(spec("other/x", Some("X"), None));
    assert_eq!(field, "pods.kafka.secrets.s.secret");
    assert!(rule.contains("may not read secret \"other/x\""), "{rule}");
    let (field, rule) = refused(spec("kafka/x", None, None));
    assert_eq!(field, key);
    assert!(rule.contains("env-key, a file or both"), "{rule}");
    let (field, rule) = refused(spec("kafka/x", Some("1X"), None));
    assert_eq!(field, "pods.kafka.secrets.s.env-key");
    assert!(rule.contains("environment variable name"), "{rule}");
    let (field, rule) = refused(spec("kafka/__dcos_base64__k", Some("K"), None));
    assert_eq!(field, "pods.kafka.secrets.s.env-key");
    assert!(rule.contains("files only"), "{rule}");
    for file in ["/etc/passwd", "../x", "a/../../x", ""] {
        let (field, _) = refused(spec("kafka/x", None, Some(file)));
        assert_eq!(field, "pods.kafka.secrets.s.file", "{file}");
    }
    let (field, _) = refused(spec("/kafka/x", Some("X"), None));
    assert_eq!(field, "pods.kafka.secrets.s.secret");
    assert!(check_spec("/kafka", key, &spec("kafka/x", Some("X"), Some("d/x"))).is_ok());
    assert!(check_spec("kafka", key, &spec("shared", Some("X"), None)).is_ok());
}

#[test]
fn base64_decodes_rfc_4648_vectors_and_refuses_garbage() {
    let vectors: [(&str, &[u8]); 8] = [
        ("", b""),
        ("Zg==", b"f"),
        ("Zm8=", b"fo"),
        ("Zm9v", b"foo"),
        ("Zm9vYg==", b"foob"),
        ("Zm9vYmE=", b"fooba"),
        ("Zm9vYmFy", b"foobar"),
        ("Zm9v\nYmFy\n", b"foobar"),
    ];
    for (text, bytes) in vectors {
        assert_eq!(decode_base64(text.as_bytes()).unwrap(), bytes, "{text:?}");
    }
    assert_eq!(decode_base64(b"Zm9vYg").unwrap(), b"foob", "unpadded");
    assert_eq!(decode_base64(b"/+8A").unwrap(), [0xff, 0xef, 0x00]);
    for bad in ["Z", "Zm9v!", "Zg===", "Zg=", "Z===", "Zm9-"] {
        assert!(decode_base64(bad.as_bytes()).is_err(), "{bad:?}");
    }
}

struct MapStore(BTreeMap<String, Vec<u8>>);

impl SecretStore for MapStore {
    fn read(&self, path: &str) -> Result<Option<Vec<u8>>, SecretError> {
        Ok(self.0.get(path).cloned())
    }
}

#[test]
fn delivery_decodes_base64_files_and_refuses_what_the_rules_forbid() {
    let store = MapStore(
        [
            ("kafka/password", b"hunter2".to_vec()),
            ("kafka/__dcos_base64__keytab", b"AAEC/w==".to_vec()),
            ("other/password", b"nope".to_vec()),
            ("kafka/binary", vec![0xff, 0x00]),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect(),
    );
    let delivery = deliver(
        &store,
        "/kafka",
        &[
            spec("kafka/password", Some("PASSWORD"), Some("conf/password")),
            spec("kafka/__dcos_base64__keytab", None, Some("kafka.keytab")),
        ],
    )
    .unwrap();
    assert_eq!(delivery.env["PASSWORD"], "hunter2");
    assert_eq!(delivery.files["conf/password"], b"hunter2");
    assert_eq!(delivery.files["kafka.keytab"], [0, 1, 2, 0xff]);
    let shown = format!("{delivery:?}");
    assert!(!shown.contains("hunter2"), "{shown}");

    let error = deliver(&store, "kafka", &[spec("other/password", Some("P"), None)]);
    assert!(
        matches!(error, Err(SecretError::Forbidden { .. })),
        "{error:?}"
    );
    let error = deliver(&store, "kafka", &[spec("kafka/missing", Some("P"), None)]);
    assert!(
        matches!(error, Err(SecretError::NotFound { .. })),
        "{error:?}"
    );
    let error = deliver(&store, "kafka", &[spec("kafka/binary", Some("P"), None)]).unwrap_err();
    assert!(error.to_string().contains("UTF-8"), "{error}");
    assert!(deliver(&store, "kafka", &[spec("kafka/binary", None, Some("b"))]).is_ok());
}

#[test]
fn the_file_store_keeps_secrets_private_and_lists_paths() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileSecretStore::open(&dir.path().join("secrets")).unwrap();
    store.put("a/b", b"one", false).unwrap();
    store.put("a/b/x", b"two", false).unwrap();
    store.put("x", b"three", false).unwrap();
    assert!(matches!(
        store.put("x", b"again", false),
        Err(SecretError::Exists { .. })
    ));
    store.put("x", b"four", true).unwrap();
    assert_eq!(store.list().unwrap(), ["a/b", "a/b/x", "x"]);
    assert_eq!(store.read("a/b").unwrap().unwrap(), b"one");
    assert_eq!(store.read("a/b/x").unwrap().unwrap(), b"two");
    assert_eq!(store.read("x").unwrap().unwrap(), b"four");
    assert_eq!(store.read("nope").unwrap(), None);
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(store.dir()), 0o700);
    assert_eq!(mode(&store.dir().join("a/b/x.secret")), 0o600);
    assert!(store.delete("a/b").unwrap());
    assert!(!store.delete("a/b").unwrap());
    assert_eq!(store.list().unwrap(), ["a/b/x", "x"]);
    assert!(store.put("../escape", b"v", false).is_err());
    assert!(store.read("/etc/passwd").is_err());
}
