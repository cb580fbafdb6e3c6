//! The Docker backend against a real Docker engine.
//!
//! Each test skips (printing why) when no engine responds to `docker info`,
//! unless `SHIPDECK_REQUIRE_DOCKER=1`, which turns a missing engine into a
//! failure. The test image is assembled from the sample workload and the
//! libraries it links, imported under a tag unique to this test process,
//! and removed at the end.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use serde_json::Value;

/// Time a test waits for containers to start or go; the engine is slower
/// than forking a process.
const DOCKER_DEADLINE: Duration = Duration::from_secs(60);

/// An image imported for one test, removed when the test ends.
struct TestImage {
    tag: String,
}

impl Drop for TestImage {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["rmi", "--force", &self.tag])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// Returns a fresh test image, or `None` when the test should skip.
fn engine_image(test: &str) -> Option<TestImage> {
    let required = std::env::var("SHIPDECK_REQUIRE_DOCKER").is_ok_and(|v| v == "1");
    if !engine_responds() {
        assert!(
            !required,
            "SHIPDECK_REQUIRE_DOCKER=1 but no Docker engine responds to `docker info`"
        );
        return None;
    }
    let tag = format!("shipdeck-test-{test}:{}", std::process::id());
    import_sample_image(&tag);
    Some(TestImage { tag })
}

macro_rules! image_or_skip {
    ($test:expr) => {
        match engine_image($test) {
            Some(image) => image,
            None => {
                eprintln!("skipped: no Docker engine");
                return;
            }
        }
    };
}

fn engine_responds() -> bool {
    Command::new("docker")
        .args(["info", "--format", "{{.ServerVersion}}"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// Builds an image from the sample workload, the shared libraries `ldd`
/// lists for it and an empty /tmp, with `docker import`: no registry and
/// no base image are involved.
fn import_sample_image(tag: &str) {
    let mut archive = tar::Builder::new(Vec::new());
    add_file(&mut archive, Path::new(SAMPLE), "shipdeck-sample");
    for library in linked_libraries(Path::new(SAMPLE)) {
        let inside = library.strip_prefix("/").expect("an absolute path");
        add_file(&mut archive, &library, inside.to_str().expect("UTF-8 path"));
    }
    let mut tmp = tar::Header::new_ustar();
    tmp.set_entry_type(tar::EntryType::Directory);
    tmp.set_mode(0o1777);
    tmp.set_size(0);
    archive
        .append_data(&mut tmp, "tmp", std::io::empty())
        .expect("add /tmp");
    let bytes = archive.into_inner().expect("finish the image archive");

    let mut import = Command::new("docker");
    import.args([
        "import",
        "--change",
        r#"CMD ["/shipdeck-sample", "serve", "--log-rate", "0"]"#,
        "-",
        tag,
    ]);
    let output = run_with_input(import, &bytes);
    assert!(
        output.status.success(),
        "docker import failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Adds a regular file with plain ustar headers; the engine rejects the
/// sparse entries that copying a file's own metadata can produce.
fn add_file(archive: &mut tar::Builder<Vec<u8>>, path: &Path, inside: &str) {
    let bytes = std::fs::read(path).expect("read a file for the image");
    let mut header = tar::Header::new_ustar();
    header.set_entry_type(tar::EntryType::Regular);
    header.set_mode(0o755);
    header.set_size(bytes.len() as u64);
    archive
        .append_data(&mut header, inside, bytes.as_slice())
        .expect("add a file to the image");
}

/// Returns the absolute paths of the libraries that `ldd` lists for `binary`.
fn linked_libraries(binary: &Path) -> Vec<std::path::PathBuf> {
    let output = Command::new("ldd").arg(binary).output().expect("run ldd");
    assert!(output.status.success(), "ldd {} failed", binary.display());
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| {
            line.split_whitespace()
                .find(|word| word.starts_with('/'))
                .map(std::path::PathBuf::from)
        })
        .collect()
}

/// Ids of running and stopped containers that carry this home's label.
fn containers_of(home: &TestHome) -> Vec<String> {
    let filter = format!("label=shipdeck.home={}", home.home().display());
    let output = Command::new("docker")
        .args(["ps", "--all", "--quiet", "--no-trunc", "--filter", &filter])
        .output()
        .expect("run docker ps");
    assert!(output.status.success(), "docker ps failed");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// `docker inspect --format FORMAT ID`, trimmed.
fn inspect(container: &str, format: &str) -> String {
    let output = Command::new("docker")
        .args(["inspect", "--format", format, container])
        .output()
        .expect("run docker inspect");
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

fn docker_manifest(name: &str, image: &str, replicas: u32, port: u16, greeting: &str) -> String {
    format!(
        r#"name: {name}
version: "1.0"
backend: docker
image: {image}
replicas: {replicas}
ports:
  - {{ name: http, containerPort: 8080, hostPort: {port} }}
resources:
  limits: {{ cpu: 500m, memory: 64Mi }}
env:
  GREETING: {greeting}
healthCheck:
  type: http
  path: /healthz
  port: 8080
  periodSeconds: 1
  failureThreshold: 2
restartPolicy: {{ policy: always, backoffInitial: 1s, backoffMax: 10s }}
terminationGracePeriodSeconds: 5
"#
    )
}

/// Waits until exactly `count` running containers carry the home's label.
fn wait_containers(home: &TestHome, count: usize) -> Vec<String> {
    wait_for(
        &format!("{count} running containers"),
        DOCKER_DEADLINE,
        || {
            let running: Vec<String> = containers_of(home)
                .into_iter()
                .filter(|id| inspect(id, "{{.State.Running}}") == "true")
                .collect();
            (running.len() == count && containers_of(home).len() == count).then_some(running)
        },
    )
}

/// Undeploys and checks that no container of the home is left.
fn undeploy_and_check(home: &TestHome, name: &str) {
    home.ok(&["undeploy", name, "--wait"]);
    let left = wait_for_value(DOCKER_DEADLINE, || {
        let ids = containers_of(home);
        ids.is_empty().then_some(()).ok_or(ids)
    });
    assert!(left.is_ok(), "containers left after undeploy: {left:?}");
}

#[test]
fn docker_lifecycle_deploy_scale_rollback() {
    let image = image_or_skip!("lifecycle");
    let home = TestHome::new();
    let port = free_ports(1);
    let manifest = home.write(
        "web.yaml",
        &docker_manifest("web", &image.tag, 2, port, "hello-docker"),
    );

    home.ok(&["deploy", "-f", manifest.to_str().expect("path"), "--wait"]);
    let first = wait_containers(&home, 2);
    assert_every_response(port, "hello-docker", 4);
    let names: BTreeSet<String> = first.iter().map(|id| inspect(id, "{{.Name}}")).collect();
    assert_eq!(
        names,
        BTreeSet::from([
            "/shipdeck-web-development-r1-0".to_owned(),
            "/shipdeck-web-development-r1-1".to_owned()
        ])
    );
    assert_eq!(inspect(&first[0], "{{.HostConfig.NanoCpus}}"), "500000000");
    assert_eq!(inspect(&first[0], "{{.HostConfig.Memory}}"), "67108864");
    assert_eq!(
        inspect(
            &first[0],
            "{{index .Config.Labels \"shipdeck.deployment\"}}"
        ),
        "web"
    );
    let first_image = inspect(&first[0], "{{.Image}}");

    home.ok(&["scale", "web", "--replicas", "3", "--wait"]);
    wait_containers(&home, 3);
    home.ok(&["scale", "web", "--replicas", "1", "--wait"]);
    wait_containers(&home, 1);

    home.ok(&["redeploy", "web", "--set", "env.GREETING=bonjour", "--wait"]);
    wait_containers(&home, 1);
    assert_every_response(port, "bonjour", 3);

    home.ok(&["rollback", "web", "--wait"]);
    let rolled = wait_containers(&home, 1);
    assert_every_response(port, "hello-docker", 3);
    assert_eq!(inspect(&rolled[0], "{{.Image}}"), first_image);

    let logs = home.ok(&["logs", "web"]);
    assert!(logs.contains("listening on 0.0.0.0:8080"), "logs: {logs}");

    undeploy_and_check(&home, "web");
    home.finish();
}

#[test]
fn docker_kill_restarts_container() {
    let image = image_or_skip!("kill");
    let home = TestHome::new();
    let port = free_ports(1);
    let manifest = home.write(
        "kk.yaml",
        &docker_manifest("kk", &image.tag, 1, port, "alive"),
    );
    home.ok(&["deploy", "-f", manifest.to_str().expect("path"), "--wait"]);
    let before = wait_containers(&home, 1);

    let killed = Command::new("docker")
        .args(["kill", &before[0]])
        .output()
        .expect("run docker kill");
    assert!(killed.status.success(), "docker kill failed");

    let after = wait_for("a new container after docker kill", DOCKER_DEADLINE, || {
        let running = wait_containers(&home, 1);
        (running != before).then_some(running)
    });
    assert_ne!(after, before);
    wait_http_ok(port, "/");
    let deployment = home.get("kk", &[]);
    let replica = &deployment["replicaDetails"][0];
    assert!(
        replica["restarts"].as_u64().unwrap_or(0) >= 1,
        "{replica:#}"
    );
    assert!(
        replica["lastExit"].to_string().contains("SIGKILL"),
        "{replica:#}"
    );

    undeploy_and_check(&home, "kk");
    home.finish();
}

#[test]
fn docker_agent_crash_leaves_no_duplicates() {
    let image = image_or_skip!("crash");
    let home = TestHome::new();
    let port = free_ports(1);
    let manifest = home.write(
        "ac.yaml",
        &docker_manifest("ac", &image.tag, 2, port, "again"),
    );
    home.ok(&["deploy", "-f", manifest.to_str().expect("path"), "--wait"]);
    let before = wait_containers(&home, 2);

    let agent = home.agent_pid().expect("the agent runs");
    kill9(agent);
    home.wait_agent_dead(agent);
    // The containers outlive the agent; a new agent must not add to them.
    assert_eq!(containers_of(&home).len(), 2);
    home.ok(&["ls"]);

    let after = wait_containers(&home, 2);
    wait_http_ok(port, "/");
    for id in &before {
        assert!(
            !after.contains(id),
            "container {id} of the crashed agent still runs"
        );
    }
    undeploy_and_check(&home, "ac");
    home.finish();
}

#[test]
fn docker_missing_image_names_it() {
    let _image = image_or_skip!("absent");
    let home = TestHome::new();
    let port = free_ports(1);
    // A registry on a closed local port fails at once, without any traffic
    // leaving the host.
    let image = "127.0.0.1:1/shipdeck/absent:1";
    let text = docker_manifest("gone", image, 1, port, "x").replace(
        "restartPolicy: { policy: always, backoffInitial: 1s, backoffMax: 10s }",
        "strategy: { progressDeadlineSeconds: 3 }",
    );
    let manifest = home.write("gone.yaml", &text);

    let output = home.run(&["deploy", "-f", manifest.to_str().expect("path"), "--wait"]);
    assert!(
        !output.status.success(),
        "deploy of an absent image succeeded"
    );
    let deployment: Value = home.get("gone", &[]);
    let reason = deployment.to_string();
    assert!(reason.contains(image), "{deployment:#}");
    assert!(reason.contains("pulling it failed"), "{deployment:#}");
    home.finish();
}

#[test]
fn docker_rejects_source_builds() {
    let home = TestHome::new();
    let manifest = home.write(
        "src.yaml",
        "name: src\nbackend: docker\nsource: { type: tar, url: ./app.tar }\n",
    );
    let error = home.fails(&["deploy", "-f", manifest.to_str().expect("path")]);
    assert!(
        error.contains("cannot build images from source yet"),
        "{error}"
    );
    assert!(error.contains("image"), "{error}");
}

#[test]
fn docker_unreachable_engine_names_address() {
    let home = TestHome::new();
    let port = free_ports(1);
    let socket = home.work().join("no-engine.sock");
    let address = format!("unix://{}", socket.display());
    let text = docker_manifest("far", "shipdeck-test-none:1", 1, port, "x").replace(
        "restartPolicy: { policy: always, backoffInitial: 1s, backoffMax: 10s }",
        "strategy: { progressDeadlineSeconds: 3 }",
    );
    let manifest = home.write("far.yaml", &text);

    // The agent starts with this environment, so it looks for the engine there.
    let output = home
        .command(&["deploy", "-f", manifest.to_str().expect("path"), "--wait"])
        .env("DOCKER_HOST", &address)
        .output()
        .expect("run shipdeck deploy");
    assert!(
        !output.status.success(),
        "deploy without an engine succeeded"
    );
    let deployment = home.get("far", &[]);
    let text = deployment.to_string();
    assert!(
        text.contains("cannot reach the Docker engine"),
        "{deployment:#}"
    );
    assert!(text.contains(&address), "{deployment:#}");
    home.finish();
}
