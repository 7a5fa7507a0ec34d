// SPDX-License-Identifier: MPL-2.0

//! deploy/kubernetes checked offline: `kubectl kustomize` renders the base
//! and every overlay, each rendered object validates against the Kubernetes
//! schemas (kubernetes-validate, strict) or, for the Prometheus Operator's
//! kinds, against their CRD schemas, and the objects say what the worker
//! needs: probes on the health endpoints, the token from a Secret, a grace
//! period that covers the end of a stream, the alert rules as they are.
//! `scripts/deploy-check-setup.sh` installs the tools.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn repository() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn kubernetes_dir(under: &str) -> PathBuf {
    repository().join("deploy/kubernetes").join(under)
}

/// Every kustomization: the base and each overlay.
fn kustomizations() -> Vec<PathBuf> {
    let mut dirs = vec![kubernetes_dir("base")];
    let overlays = std::fs::read_dir(kubernetes_dir("overlays")).expect("overlays dir");
    for overlay in overlays {
        let path = overlay.expect("overlay entry").path();
        if path.join("kustomization.yaml").is_file() {
            dirs.push(path);
        }
    }
    dirs.sort();
    dirs
}

fn run(command: &mut Command, what: &str) -> std::process::Output {
    command
        .output()
        .unwrap_or_else(|e| panic!("{what} runs (bash scripts/deploy-check-setup.sh): {e}"))
}

/// `kubectl kustomize DIR`, without a warning, written to a scratch file: its path.
fn render(dir: &Path) -> PathBuf {
    let output = run(Command::new("kubectl").arg("kustomize").arg(dir), "kubectl");
    assert!(
        output.status.success(),
        "kubectl kustomize {}: {}",
        dir.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    // kustomize warns of deprecated fields (bases, patchesStrategicMerge,
    // commonLabels) on stderr; the manifests use the current ones.
    let warnings = String::from_utf8_lossy(&output.stderr);
    assert!(
        !warnings.contains("Warning"),
        "kubectl kustomize {}: {warnings}",
        dir.display()
    );
    let name = dir
        .strip_prefix(kubernetes_dir(""))
        .unwrap_or(dir)
        .to_string_lossy()
        .replace('/', "-");
    let rendered = common::scratch(&format!("kubernetes-{name}.yaml"));
    std::fs::write(&rendered, &output.stdout).expect("write rendered manifests");
    rendered
}

fn validator(mode: &str, file: &Path) -> std::process::Output {
    let python = repository().join("target/deploy-venv/bin/python");
    let script = kubernetes_dir("check/validate.py");
    run(
        Command::new(python).arg(script).arg(mode).arg(file),
        "validate.py",
    )
}

/// What the validator says of `file`: success and its report.
fn validate(file: &Path) -> (bool, String) {
    let output = validator("validate", file);
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), report)
}

/// The YAML documents of `file` as JSON values.
fn documents(file: &Path) -> Vec<Value> {
    let output = validator("json", file);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("validate.py json prints a JSON list")
}

fn object<'a>(objects: &'a [Value], kind: &str) -> &'a Value {
    objects
        .iter()
        .find(|o| o["kind"] == kind)
        .unwrap_or_else(|| panic!("a {kind} is rendered"))
}

fn config_map<'a>(objects: &'a [Value], name: &str) -> &'a Value {
    objects
        .iter()
        .find(|o| o["kind"] == "ConfigMap" && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("ConfigMap {name} is rendered"))
}

fn worker_container(objects: &[Value]) -> &Value {
    let containers = &object(objects, "Deployment")["spec"]["template"]["spec"]["containers"];
    containers
        .as_array()
        .and_then(|c| c.iter().find(|c| c["name"] == "worker"))
        .expect("the worker container")
}

fn env_value<'a>(container: &'a Value, name: &str) -> &'a Value {
    container["env"]
        .as_array()
        .and_then(|env| env.iter().find(|e| e["name"] == name))
        .unwrap_or_else(|| panic!("{name} in the worker's env"))
}

fn milliseconds(config: &Value, key: &str) -> u64 {
    let text = config["data"][key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} in the worker's ConfigMap"));
    text.parse().unwrap_or_else(|e| panic!("{key}={text}: {e}"))
}

#[test]
fn every_kustomization_renders_and_every_object_validates() {
    let dirs = kustomizations();
    assert!(
        dirs.len() >= 2,
        "the base and the multi-stream overlay: {dirs:?}"
    );
    for dir in dirs {
        let rendered = render(&dir);
        let (valid, report) = validate(&rendered);
        assert!(valid, "{}:\n{report}", dir.display());
        let objects = documents(&rendered);
        for kind in [
            "ConfigMap",
            "Deployment",
            "Service",
            "PodMonitor",
            "PrometheusRule",
        ] {
            assert!(
                report.contains(&format!("ok {kind}/")),
                "{}: {kind} validated:\n{report}",
                dir.display()
            );
            object(&objects, kind);
        }
        assert_eq!(
            report.lines().filter(|l| l.starts_with("ok ")).count(),
            objects.len(),
            "every object validated once:\n{report}"
        );
    }
}

/// The check itself can fail: a wrong type, an unknown field and a
/// malformed PodMonitor are each refused, naming the object.
#[test]
fn the_validator_refuses_broken_objects() {
    let rendered = std::fs::read_to_string(render(&kubernetes_dir("base"))).expect("rendered");
    for (good, bad, object) in [
        (
            "containerPort: 9464",
            "containerPort: \"9464\"",
            "Deployment/stsdub-worker",
        ),
        (
            "periodSeconds: 10",
            "periodSecond: 10",
            "Deployment/stsdub-worker",
        ),
        ("interval: 15s", "interval: 15", "PodMonitor/stsdub-worker"),
    ] {
        assert!(rendered.contains(good), "{good} in the rendered base");
        let broken = common::scratch("kubernetes-broken.yaml");
        std::fs::write(&broken, rendered.replacen(good, bad, 1)).expect("write");
        let (valid, report) = validate(&broken);
        assert!(!valid, "{bad} refused:\n{report}");
        assert!(
            report.contains(&format!("invalid {object}")),
            "{bad}:\n{report}"
        );
    }
}

#[test]
fn the_worker_is_probed_on_its_health_endpoints_and_given_time_to_end_its_stream() {
    let objects = documents(&render(&kubernetes_dir("base")));
    let deployment = object(&objects, "Deployment");
    let container = worker_container(&objects);

    let address = env_value(container, "STSDUB_METRICS_ADDRESS")["value"]
        .as_str()
        .expect("a metrics address");
    let port: u64 = address
        .rsplit_once(':')
        .and_then(|(_, port)| port.parse().ok())
        .expect("host:port");
    let ports = container["ports"].as_array().expect("ports");
    assert!(
        ports
            .iter()
            .any(|p| p["name"] == "metrics" && p["containerPort"] == port),
        "port `metrics` is {port}: {ports:?}"
    );
    for (probe, path) in [
        ("readinessProbe", "/readyz"),
        ("livenessProbe", "/healthz"),
        ("startupProbe", "/healthz"),
    ] {
        assert_eq!(container[probe]["httpGet"]["path"], path, "{probe}");
        assert_eq!(container[probe]["httpGet"]["port"], "metrics", "{probe}");
    }

    let token = &env_value(container, "STSDUB_AUTH_TOKEN")["valueFrom"]["secretKeyRef"];
    assert_eq!(
        token["key"], "auth-token",
        "the token comes from a Secret: {token}"
    );

    // The ConfigMap the pod reads is the one rendered (with its hash).
    let config_name = container["envFrom"][0]["configMapRef"]["name"]
        .as_str()
        .expect("envFrom a ConfigMap");
    let config = config_map(&objects, config_name);
    // EOS after SIGTERM: the latency plays out (segment + timeout + 0.5 s),
    // and the last segment's answer may take the whole timeout.
    let segment = milliseconds(config, "SEGMENT_MS");
    let timeout = milliseconds(config, "TIMEOUT_MS");
    let needed_ms = segment + timeout + 500 + timeout;
    let grace = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
        .as_u64()
        .expect("terminationGracePeriodSeconds");
    assert!(
        grace * 1000 >= needed_ms + 5000,
        "grace {grace} s covers {needed_ms} ms and the muxer's end"
    );
    assert!(
        container["resources"]["requests"]["cpu"].is_string()
            && container["resources"]["limits"]["memory"].is_string(),
        "requests and a memory limit: {}",
        container["resources"]
    );
}

/// The overlay runs the multi-stream program on the streams file it mounts,
/// and that program reads the file as it is shipped.
#[test]
fn the_multi_stream_overlay_runs_the_program_on_its_streams_file() {
    let dir = kubernetes_dir("overlays/multi-stream");
    let objects = documents(&render(&dir));
    let container = worker_container(&objects);
    let args: Vec<&str> = container["args"]
        .as_array()
        .expect("args")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let at = args
        .iter()
        .position(|a| *a == "--streams-file")
        .expect("--streams-file");
    let streams_path = Path::new(args[at + 1]);
    let mount = container["volumeMounts"]
        .as_array()
        .and_then(|m| m.iter().find(|m| m["name"] == "streams"))
        .expect("the streams volume is mounted");
    assert_eq!(
        Some(Path::new(mount["mountPath"].as_str().expect("mountPath"))),
        streams_path.parent()
    );
    let file_name = streams_path
        .file_name()
        .and_then(|f| f.to_str())
        .expect("file name");
    let volumes = &object(&objects, "Deployment")["spec"]["template"]["spec"]["volumes"];
    let config_name = volumes
        .as_array()
        .and_then(|v| v.iter().find(|v| v["name"] == "streams"))
        .and_then(|v| v["configMap"]["name"].as_str())
        .expect("the streams volume is a ConfigMap");
    let shipped = config_map(&objects, config_name)["data"][file_name]
        .as_str()
        .expect("the streams file is in the ConfigMap");
    assert_eq!(
        shipped,
        std::fs::read_to_string(dir.join("streams.txt")).expect("streams.txt")
    );

    let listed = run(
        Command::new(common::program("stsdub-multi-stream"))
            .args(["--check", "--streams-file"])
            .arg(dir.join("streams.txt")),
        "stsdub-multi-stream",
    );
    let listed_text = String::from_utf8_lossy(&listed.stdout);
    assert!(
        listed.status.success(),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    let ids: Vec<&str> = listed_text
        .lines()
        .filter_map(|l| l.split(' ').next())
        .collect();
    assert_eq!(ids, ["match-1", "match-2", "match-3"]);

    let grace =
        object(&objects, "Deployment")["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
            .as_u64()
            .expect("terminationGracePeriodSeconds");
    // stsdub-multi-stream gives its streams 25 s to end after SIGTERM.
    assert!(grace > 25, "grace {grace} s");
}

/// A streams file the program cannot take is refused with the line.
#[test]
fn the_multi_stream_program_refuses_a_bad_streams_file() {
    for (text, expected) in [
        (
            "a rtsp://x/1=out.flv\na rtsp://x/2=out2.flv\n",
            "stream a is given twice",
        ),
        ("# fine\nrtsp://x/1\n", "line 2"),
        ("one two three=four\nx y z\n", "line 1"),
    ] {
        let file = common::scratch("kubernetes-streams.txt");
        std::fs::write(&file, text).expect("write");
        let output = run(
            Command::new(common::program("stsdub-multi-stream"))
                .args(["--check", "--streams-file"])
                .arg(&file),
            "stsdub-multi-stream",
        );
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{text:?}: {stderr}");
        assert!(stderr.contains(expected), "{text:?}: {stderr}");
    }
}

/// The PrometheusRule is deploy/prometheus/stsdub-rules.yml (which promtool
/// checks and unit-tests) under `spec`, group for group.
#[test]
fn the_prometheus_rule_carries_the_checked_alert_rules() {
    let objects = documents(&render(&kubernetes_dir("base")));
    let rule = object(&objects, "PrometheusRule");
    let rules_file = documents(&repository().join("deploy/prometheus/stsdub-rules.yml"));
    assert_eq!(
        rule["spec"]["groups"], rules_file[0]["groups"],
        "copy the groups of deploy/prometheus/stsdub-rules.yml into deploy/kubernetes/base/prometheusrule.yaml"
    );
    assert!(
        rule["spec"]["groups"][0]["rules"]
            .as_array()
            .is_some_and(|r| r.len() >= 5)
    );
}
