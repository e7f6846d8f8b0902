//! Bad input never panics: arbitrary or mangled options JSON, svc.yml text and templates give
//! an error that names something, or a spec, never a crash (STYLE 12's spirit for the spec
//! decoders; the property runs are bounded by proptest's case count).

use std::collections::BTreeMap;

use proptest::prelude::*;
use strom_scheduler::spec::kafka::{render_kafka_service, SVC_YML};
use strom_scheduler::spec::render::render;
use strom_scheduler::spec::ServiceSpec;

fn env() -> BTreeMap<String, String> {
    [("STROM_BIN", "strom"), ("KAFKA_ZOOKEEPER_URI", "zk")]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_options_never_panic(text in ".{0,200}") {
        let _ = render_kafka_service(&text, &env());
    }

    #[test]
    fn option_values_of_any_json_kind_never_panic(
        section in prop::sample::select(vec!["service", "brokers", "kafka", "other"]),
        key in prop::sample::select(vec!["name", "count", "cpus", "mem", "disk", "disk_type", "port",
            "placement_constraint", "deploy_strategy", "min_insync_replicas", "num_partitions", "x"]),
        value in prop::sample::select(vec!["0", "-1", "1e400", "\"\"", "\"'\"", "\"{{X}}\"", "null", "[]",
            "{}", "true", "\"[[\\\"hostname\\\",\\\"MAX_PER\\\"]]\"", "99999999999", "\"ROOT\"", "\"\\n: -\""]),
    ) {
        let options = format!(r#"{{"{section}": {{"{key}": {value}}}}}"#);
        match render_kafka_service(&options, &env()) {
            Ok(service) => prop_assert!(service.spec.check().is_ok()),
            Err(error) => prop_assert!(!error.to_string().is_empty()),
        }
    }

    #[test]
    fn mangled_svc_yml_never_panics(cut in 0usize..2000, insert in ".{0,12}") {
        let mut text = SVC_YML.to_string();
        let at = (0..=cut.min(text.len())).rev().find(|i| text.is_char_boundary(*i)).unwrap_or(0);
        text.insert_str(at, &insert);
        if let Ok(rendered) = render("svc.yml", &text, &env()) {
            let _ = ServiceSpec::parse(&rendered, &env(), &|_| Some(String::new()));
        }
    }

    #[test]
    fn arbitrary_templates_never_panic(text in "[{}#^/!&a-zA-Z_ \n]{0,80}") {
        let _ = render("t", &text, &env());
    }
}
