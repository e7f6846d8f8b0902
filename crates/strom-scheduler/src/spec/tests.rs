use std::collections::BTreeMap;

use super::kafka::{render_kafka_service, SERVER_PROPERTIES};
use super::*;

fn base_env() -> BTreeMap<String, String> {
    [
        ("STROM_BIN", "/usr/bin/strom"),
        ("KAFKA_ZOOKEEPER_URI", "127.0.0.1:2181/dcos-service-kafka"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

#[test]
fn the_shipped_kafka_service_renders_with_defaults() {
    let service = render_kafka_service("", &base_env()).unwrap();
    let spec = &service.spec;
    assert_eq!(spec.name, "kafka");
    assert_eq!(spec.scheduler.principal, "kafka-principal");
    assert_eq!(spec.scheduler.zookeeper, None);
    let pod = spec.pod("kafka").unwrap();
    assert_eq!(pod.count, 3);
    assert!(!pod.allow_decommission);
    assert_eq!(
        pod.placement_rules("kafka").unwrap(),
        [PlacementRule {
            field: PlacementField::Hostname,
            operator: PlacementOperator::MaxPer(1)
        }]
    );
    let volume = pod.volume.as_ref().unwrap();
    assert_eq!((volume.volume_type, volume.size), (VolumeType::Root, 5000));
    let broker = pod.tasks.get("broker").unwrap();
    assert_eq!(broker.goal, Goal::Running);
    assert_eq!((broker.cpus, broker.memory), (1.0, 2048));
    assert_eq!(broker.kill_grace_period, Some(30));
    let port = broker.ports.get("broker").unwrap();
    assert_eq!(port.port, 0);
    assert_eq!(port.env_key.as_deref(), Some("KAFKA_BROKER_PORT"));
    assert_eq!(port.vip.as_ref().unwrap().port, 9092);
    assert_eq!(broker.readiness_check.as_ref().unwrap().interval, 5);
    assert_eq!(broker.env["KAFKA_MIN_INSYNC_REPLICAS"], "1");
    assert_eq!(broker.env["STROM_BIN"], "/usr/bin/strom");
    assert!(!broker.env.contains_key("PLACEMENT_REFERENCED_ZONE"));
    let config = broker.configs.get("server-properties").unwrap();
    assert_eq!(config.content, SERVER_PROPERTIES);
    let deploy = spec.plans.get("deploy").unwrap();
    let phase = deploy.phases.get("broker").unwrap();
    assert_eq!(
        (phase.pod.as_str(), phase.strategy),
        ("kafka", StrategyKind::Serial)
    );
}

#[test]
fn options_set_brokers_and_kafka_settings() {
    let options = r#"{
        "service": {"name": "events", "placement_constraint": [["@zone","GROUP_BY","3"]],
                    "deploy_strategy": "parallel-canary", "zookeeper": "zk:2181"},
        "brokers": {"count": 5, "cpus": 0.5, "mem": 1024, "disk": 200, "disk_type": "MOUNT",
                    "port": 9092, "allow_decommission": true},
        "kafka": {"min_insync_replicas": 2, "log.retention.hours": 24,
                  "unclean_leader_election_enable": false}
    }"#;
    let service = render_kafka_service(options, &base_env()).unwrap();
    let spec = &service.spec;
    assert_eq!(spec.name, "events");
    assert_eq!(spec.scheduler.zookeeper.as_deref(), Some("zk:2181"));
    let pod = spec.pod("kafka").unwrap();
    assert_eq!(pod.count, 5);
    assert!(pod.allow_decommission);
    assert!(pod.placement_rules("kafka").unwrap()[0].references_zone());
    assert_eq!(pod.volume.as_ref().unwrap().volume_type, VolumeType::Mount);
    let broker = pod.tasks.get("broker").unwrap();
    assert_eq!((broker.cpus, broker.memory), (0.5, 1024));
    assert_eq!(broker.ports.get("broker").unwrap().port, 9092);
    assert_eq!(broker.env["KAFKA_MIN_INSYNC_REPLICAS"], "2");
    assert_eq!(broker.env["KAFKA_LOG_RETENTION_HOURS"], "24");
    assert_eq!(broker.env["KAFKA_UNCLEAN_LEADER_ELECTION_ENABLE"], "false");
    assert_eq!(broker.env["PLACEMENT_REFERENCED_ZONE"], "true");
    let phase = spec
        .plans
        .get("deploy")
        .unwrap()
        .phases
        .get("broker")
        .unwrap();
    assert_eq!(phase.strategy, StrategyKind::ParallelCanary);
}

#[test]
fn server_properties_render_from_a_broker_env() {
    let service = render_kafka_service(
        r#"{"service": {"placement_constraint": "[[\"@zone\",\"GROUP_BY\"]]"}}"#,
        &base_env(),
    )
    .unwrap();
    let broker = service
        .spec
        .pod("kafka")
        .unwrap()
        .tasks
        .get("broker")
        .unwrap();
    let mut env = broker.env.clone();
    for (k, v) in [
        ("POD_INSTANCE_INDEX", "2"),
        ("ZONE", "zone-b"),
        ("TASK_IP", "127.0.0.1"),
        ("TASK_HOSTNAME", "kafka-2-broker.kafka.strom"),
        ("KAFKA_BROKER_PORT", "31002"),
    ] {
        env.insert(k.into(), v.into());
    }
    let properties = render::render("server.properties", SERVER_PROPERTIES, &env).unwrap();
    assert!(properties.contains("\nbroker.id=2\n"), "{properties}");
    assert!(
        properties.contains("\nbroker.rack=zone-b\n"),
        "{properties}"
    );
    assert!(properties.contains("\nlisteners=PLAINTEXT://127.0.0.1:31002\n"));
    assert!(properties.contains("\nlog.dirs=kafka-broker-data/broker-2\n"));
    assert!(properties.contains("\nmin.insync.replicas=1\n"));
    assert!(properties.contains("\nzookeeper.connect=127.0.0.1:2181/dcos-service-kafka\n"));
    // Without a ZooKeeper the brokers are single nodes: no zookeeper.connect line at all.
    env.insert("KAFKA_ZOOKEEPER_URI".into(), String::new());
    let properties = render::render("server.properties", SERVER_PROPERTIES, &env).unwrap();
    assert!(!properties.contains("zookeeper.connect"), "{properties}");
    assert!(properties.contains("\nbroker.id=2\n"), "{properties}");
}

#[test]
fn option_errors_name_the_key() {
    let error = |options: &str| {
        render_kafka_service(options, &base_env())
            .unwrap_err()
            .to_string()
    };
    assert_eq!(
        error(r#"{"brokers": {"cpu": 2}}"#),
        "brokers.cpu: unknown option"
    );
    assert_eq!(
        error(r#"{"kafka": {"no_such_setting": 1}}"#),
        "kafka.no_such_setting: is not a Kafka setting the broker template knows \
         (see server.properties.mustache)"
    );
    assert_eq!(
        error(r#"{"brokers": {"count": [3]}}"#),
        "brokers.count: must be a string, number or boolean"
    );
    assert_eq!(error(r#"{"brokers": 3}"#), "brokers: must be a JSON object");
    assert!(error("{").starts_with("options: not valid JSON"));
}

#[test]
fn spec_errors_name_the_key() {
    let error = |options: &str| {
        render_kafka_service(options, &base_env())
            .unwrap_err()
            .to_string()
    };
    let count = error(r#"{"brokers": {"count": "three"}}"#);
    assert!(
        count.starts_with("svc.yml: pods.kafka.count: invalid type"),
        "{count}"
    );
    let disk = error(r#"{"brokers": {"disk_type": "NFS"}}"#);
    assert!(
        disk.starts_with("svc.yml: pods.kafka.volume.type: unknown variant `NFS`"),
        "{disk}"
    );
    assert_eq!(
        error(r#"{"brokers": {"cpus": 0}}"#),
        "pods.kafka.tasks.broker.cpus: must be a positive number"
    );
    assert_eq!(
        error(r#"{"brokers": {"disk": 0}}"#),
        "pods.kafka.volume.size: must be positive"
    );
    let strategy = error(r#"{"service": {"deploy_strategy": "random"}}"#);
    assert!(
        strategy.contains("plans.deploy.phases.broker.strategy: unknown variant"),
        "{strategy}"
    );
    let placement = error(r#"{"service": {"placement_constraint": "[[\"hostname\"]]"}}"#);
    assert!(
        placement.starts_with("pods.kafka.placement: "),
        "{placement}"
    );
}

#[test]
fn missing_environment_is_named() {
    let error = render_kafka_service("", &BTreeMap::new()).unwrap_err();
    assert_eq!(
        error.to_string(),
        "svc.yml: missing template values: KAFKA_ZOOKEEPER_URI, STROM_BIN \
         (set them in the options or environment)"
    );
}

#[test]
fn unknown_svc_yml_keys_and_plan_references_are_refused() {
    let env = BTreeMap::new();
    let none = |_: &str| None;
    let yaml = "name: s\npods:\n  p:\n    count: 1\n    tasks:\n      t: {goal: RUNNING, cmd: x, cpus: 1, memory: 1, cpu: 2}\n";
    let error = ServiceSpec::parse(yaml, &env, &none)
        .unwrap_err()
        .to_string();
    assert!(
        error.starts_with("svc.yml: pods.p.tasks.t: unknown field `cpu`"),
        "{error}"
    );
    let yaml = "name: s\npods:\n  p:\n    count: 1\n    tasks:\n      t: {goal: RUNNING, cmd: x, cpus: 1, memory: 1}\nplans:\n  deploy:\n    phases:\n      ph: {pod: q}\n";
    let error = ServiceSpec::parse(yaml, &env, &none)
        .unwrap_err()
        .to_string();
    assert_eq!(
        error,
        "plans.deploy.phases.ph.pod: names no pod of this service"
    );
    let yaml = "name: s\npods:\n  p:\n    count: 1\n    tasks:\n      t: {goal: FINISHED, cmd: x, cpus: 1, memory: 1}\n";
    let error = ServiceSpec::parse(yaml, &env, &none)
        .unwrap_err()
        .to_string();
    assert!(error.contains("unknown variant `FINISHED`"), "{error}");
}

#[test]
fn taskcfg_routing_prefers_the_pod_specific_variable() {
    let env: BTreeMap<String, String> = [
        ("TASKCFG_ALL_A", "all"),
        ("TASKCFG_ALL_B", "all"),
        ("TASKCFG_DATA_NODE_B", "pod"),
        ("TASKCFG_OTHER_C", "other"),
        ("UNRELATED", "x"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let routed = task_env_for_pod("data-node", &env);
    assert_eq!(routed.len(), 2);
    assert_eq!((routed["A"].as_str(), routed["B"].as_str()), ("all", "pod"));
}

#[test]
fn equivalence_ignores_count_placement_and_decommission_only() {
    let base = render_kafka_service("", &base_env()).unwrap().spec;
    let scaled = render_kafka_service(
        r#"{"brokers": {"count": 5, "allow_decommission": true},
            "service": {"placement_constraint": ""}}"#,
        &base_env(),
    )
    .unwrap()
    .spec;
    let reconfigured = render_kafka_service(r#"{"kafka": {"num_partitions": 6}}"#, &base_env())
        .unwrap()
        .spec;
    let pod = |spec: &ServiceSpec| spec.pod("kafka").unwrap().clone();
    assert!(pod(&base).equivalent(&pod(&scaled)));
    assert!(!pod(&base).equivalent(&pod(&reconfigured)));
}

#[test]
fn a_spec_round_trips_through_json() {
    let spec = render_kafka_service("", &base_env()).unwrap().spec;
    let json = serde_json::to_string(&spec).unwrap();
    let back: ServiceSpec = serde_json::from_str(&json).unwrap();
    assert_eq!(back, spec);
    assert_eq!(back.pods.names().collect::<Vec<_>>(), ["kafka"]);
}

#[test]
fn broker_secrets_come_from_the_options_and_refusals_name_the_key() {
    let options = r#"{"service": {"name": "/prod/events"}, "brokers": {"secrets": {
        "sasl": {"secret": "prod/events/sasl-password", "env_key": "SASL_PASSWORD"},
        "keystore": {"secret": "prod/__dcos_base64__keystore", "file": "tls/keystore.p12"}}}}"#;
    let spec = render_kafka_service(options, &base_env()).unwrap().spec;
    let pod = spec.pod("kafka").unwrap();
    let sasl = pod.secrets.get("sasl").unwrap();
    assert_eq!(sasl.secret, "prod/events/sasl-password");
    assert_eq!(sasl.env_key.as_deref(), Some("SASL_PASSWORD"));
    assert_eq!(sasl.file, None);
    let keystore = pod.secrets.get("keystore").unwrap();
    assert_eq!(keystore.file.as_deref(), Some("tls/keystore.p12"));
    // No secrets: the key is left out of the stored spec, as before secrets existed.
    let plain = render_kafka_service("{}", &base_env()).unwrap().spec;
    assert!(plain.pod("kafka").unwrap().secrets.is_empty());
    assert!(!serde_json::to_string(&plain).unwrap().contains("secrets"));

    let error = |options: &str| {
        render_kafka_service(options, &base_env())
            .unwrap_err()
            .to_string()
    };
    let sibling = error(
        r#"{"service": {"name": "/prod/events"}, "brokers": {"secrets": {
            "s": {"secret": "prod/other/password", "env_key": "P"}}}}"#,
    );
    assert!(
        sibling.starts_with(
            "pods.kafka.secrets.s.secret: service \"/prod/events\" may not read secret \
             \"prod/other/password\""
        ),
        "{sibling}"
    );
    let shadow =
        error(r#"{"brokers": {"secrets": {"s": {"secret": "x", "env_key": "STROM_BIN"}}}}"#);
    assert!(
        shadow.starts_with("pods.kafka.secrets.s.env-key: task \"broker\" already sets"),
        "{shadow}"
    );
    assert_eq!(
        error(r#"{"brokers": {"secrets": {"s": {"secret": "x", "env": "X"}}}}"#),
        "brokers.secrets.s.env: unknown secret field (secret, env_key, file)"
    );
    let same_file = error(
        r#"{"brokers": {"secrets": {"a": {"secret": "x", "file": "f"},
            "b": {"secret": "y", "file": "f"}}}}"#,
    );
    assert!(
        same_file.starts_with("pods.kafka.secrets.b.file: "),
        "{same_file}"
    );
}

#[test]
fn the_embedded_zookeeper_pod_deploys_first_and_renders_its_config() {
    let plain = render_kafka_service("{}", &base_env()).unwrap().spec;
    assert_eq!(plain.pods.names().collect::<Vec<_>>(), ["kafka"]);
    let mut env = base_env();
    env.insert("EMBEDDED_ZOOKEEPER".into(), "true".into());
    env.insert("ZOOKEEPER_PORT".into(), "10000".into());
    let options = r#"{"zookeeper": {"cpus": 0.2, "mem": 300, "heap_mb": 128, "disk": 50}}"#;
    let spec = render_kafka_service(options, &env).unwrap().spec;
    assert_eq!(
        spec.pods.names().collect::<Vec<_>>(),
        ["zookeeper", "kafka"]
    );
    let phases = &spec.plans.get("deploy").unwrap().phases;
    assert_eq!(phases.names().collect::<Vec<_>>(), ["zookeeper", "broker"]);
    let pod = spec.pod("zookeeper").unwrap();
    assert_eq!(pod.count, 1);
    assert_eq!(pod.volume.as_ref().unwrap().size, 50);
    let server = pod.tasks.get("server").unwrap();
    assert_eq!((server.cpus, server.memory), (0.2, 300));
    assert!(server.cmd.contains("-Xmx128m"), "{}", server.cmd);
    assert_eq!(server.ports.get("zookeeper").unwrap().port, 10000);
    let mut task_env = server.env.clone();
    task_env.insert("ZOOKEEPER_CLIENT_PORT".into(), "10000".into());
    task_env.insert("TASK_IP".into(), "127.0.0.1".into());
    let template = &server.configs.get("zoo-cfg").unwrap().content;
    let zoo_cfg = crate::spec::render::render("zoo.cfg", template, &task_env).unwrap();
    for line in [
        "dataDir=zookeeper-data",
        "clientPort=10000",
        "clientPortAddress=127.0.0.1",
        "4lw.commands.whitelist=ruok,srvr,conf",
    ] {
        assert!(zoo_cfg.lines().any(|l| l == line), "{line}: {zoo_cfg}");
    }
}

#[test]
fn a_three_server_ensemble_spreads_over_agents_on_fixed_ports() {
    let mut env = base_env();
    for (name, value) in [
        ("EMBEDDED_ZOOKEEPER", "true"),
        ("ZOOKEEPER_PORT", "10000"),
        ("ZOOKEEPER_PORT_STRIDE", "200"),
        ("ZOOKEEPER_AGENTS", "3"),
        ("ZOOKEEPER_CHROOT", "/dcos-service-kafka"),
    ] {
        env.insert(name.into(), value.into());
    }
    let rendered = render_kafka_service(r#"{"zookeeper": {"count": 3}}"#, &env).unwrap();
    let spec = rendered.spec;
    let pod = spec.pod("zookeeper").unwrap();
    assert_eq!(pod.count, 3);
    assert_eq!(
        pod.placement.as_deref(),
        Some(crate::spec::ensemble::PLACEMENT)
    );
    let server = pod.tasks.get("server").unwrap();
    assert!(
        server
            .cmd
            .starts_with("echo $((POD_INSTANCE_INDEX + 1)) > zookeeper-data/myid && exec java"),
        "{}",
        server.cmd
    );
    let ports: Vec<(&str, u16, u16)> = server
        .ports
        .iter()
        .map(|(name, p)| (name, p.port, p.stride))
        .collect();
    assert_eq!(
        ports,
        [
            ("zookeeper", 10000, 200),
            ("quorum", 10001, 200),
            ("election", 10002, 200)
        ]
    );
    let election = server.ports.get("election").unwrap();
    assert_eq!(election.wanted(2), Ok(Some(10402)));
    let broker = spec.pod("kafka").unwrap().tasks.get("broker").unwrap();
    assert_eq!(
        broker.env["KAFKA_ZOOKEEPER_URI"],
        "127.0.0.1:10000,127.0.0.1:10200,127.0.0.1:10400/dcos-service-kafka"
    );
    let readiness = &server.readiness_check.as_ref().unwrap().cmd;
    assert!(
        readiness.ends_with(r#"--ensemble "$ZOOKEEPER_CONNECT" --index "$POD_INSTANCE_INDEX""#),
        "{readiness}"
    );
    assert!(server
        .health_check
        .as_ref()
        .unwrap()
        .cmd
        .ends_with("--listening"));
    // The zoo.cfg of server 2 (index 1), as the engine renders it at launch.
    let mut task_env = server.env.clone();
    task_env.insert("ZOOKEEPER_CLIENT_PORT".into(), "10200".into());
    task_env.insert("TASK_IP".into(), "127.0.0.1".into());
    let template = &server.configs.get("zoo-cfg").unwrap().content;
    let zoo_cfg = crate::spec::render::render("zoo.cfg", template, &task_env).unwrap();
    for line in [
        "clientPort=10200",
        "initLimit=10",
        "server.1=127.0.0.1:10001:10002",
        "server.2=127.0.0.1:10201:10202",
        "server.3=127.0.0.1:10401:10402",
    ] {
        assert!(zoo_cfg.lines().any(|l| l == line), "{line}: {zoo_cfg}");
    }
    // An update may not resize it (417 naming the field).
    let five = {
        let mut env = env.clone();
        env.insert("ZOOKEEPER_AGENTS".into(), "5".into());
        render_kafka_service(r#"{"zookeeper": {"count": 5}}"#, &env)
            .unwrap()
            .spec
    };
    use crate::config::validate::ConfigValidator;
    let errors =
        crate::config::validate::ZooKeeperEnsembleCannotResize.validate(Some(&spec), &five);
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].field, "pods.zookeeper.count");
    assert!(errors[0].message.contains("has 3 servers"), "{}", errors[0]);
    // More servers than agents: refused, naming the key, the value and the rule.
    let error = render_kafka_service(r#"{"zookeeper": {"count": 5}}"#, &env)
        .unwrap_err()
        .to_string();
    assert!(
        error.starts_with("zookeeper.count: 5: more servers than agents (3)"),
        "{error}"
    );
    assert!(error.contains(r#"[["hostname","MAX_PER","1"]]"#), "{error}");
}
