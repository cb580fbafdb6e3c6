//! The Docker backend against a real Docker engine.
//!
//! Each test skips (printing why) when no engine responds to `docker info`,
//! unless `SHIPDECK_REQUIRE_DOCKER=1`, which turns a missing engine into a
//! failure. The test image is assembled from the sample workload and the
//! libraries it links, imported under a tag unique to this test process,
//! and removed at the end. Every test has its own home, so it checks only
//! the containers and volumes labelled with that home, and removes them
//! when it ends, passed or failed.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::*;
use serde_json::Value;

/// Time a test waits for containers to start or go; the engine is slower
/// than forking a process.
const DOCKER_DEADLINE: Duration = Duration::from_secs(60);

/// The engine a test talks to: the shared one, or one the test started.
#[derive(Clone, Default)]
struct Engine {
    /// `DOCKER_HOST` of a private engine; `None` for the default one.
    host: Option<String>,
}

impl Engine {
    fn docker(&self, args: &[&str]) -> Command {
        let mut command = Command::new("docker");
        command.args(args);
        if let Some(host) = &self.host {
            command.env("DOCKER_HOST", host);
        }
        command
    }

    fn output(&self, args: &[&str]) -> Output {
        self.docker(args).output().expect("run docker")
    }

    /// Runs a docker command that must succeed; returns its trimmed output.
    fn ok(&self, args: &[&str]) -> String {
        let output = self.output(args);
        assert!(
            output.status.success(),
            "`docker {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }

    fn responds(&self) -> bool {
        self.docker(&["info", "--format", "{{.ServerVersion}}"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
    }

    /// Lists ids of the objects of `kind` (`ps --all`, `volume ls`,
    /// `network ls`) that carry this home's label.
    fn labelled(&self, home: &TestHome, kind: &[&str]) -> Vec<String> {
        let filter = format!("label=shipdeck.home={}", home.home().display());
        let mut args = kind.to_vec();
        args.extend(["--quiet", "--filter", &filter]);
        if kind[0] == "ps" {
            args.push("--no-trunc");
        }
        let text = self.ok(&args);
        text.lines().map(str::to_owned).collect()
    }

    /// Ids of running and stopped containers that carry this home's label.
    fn containers_of(&self, home: &TestHome) -> Vec<String> {
        self.labelled(home, &["ps", "--all"])
    }

    /// `docker inspect --format FORMAT ID`, trimmed.
    fn inspect(&self, object: &str, format: &str) -> String {
        let output = self.output(&["inspect", "--format", format, object]);
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }

    /// Waits until exactly `count` running containers carry the home's label.
    fn wait_containers(&self, home: &TestHome, count: usize) -> Vec<String> {
        wait_for(
            &format!("{count} running containers"),
            DOCKER_DEADLINE,
            || {
                let all = self.containers_of(home);
                let running: Vec<String> = all
                    .iter()
                    .filter(|id| self.inspect(id, "{{.State.Running}}") == "true")
                    .cloned()
                    .collect();
                (running.len() == count && all.len() == count).then_some(running)
            },
        )
    }

    /// Imports the test image under `tag`, built from the sample workload,
    /// the shared libraries `ldd` lists for it and an empty /tmp, with
    /// `docker import`: no registry and no base image are involved.
    fn import_sample_image(&self, tag: &str) {
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

        let import = self.docker(&[
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
}

/// An image imported for one test, removed when the test ends.
struct TestImage {
    engine: Engine,
    tag: String,
}

impl Drop for TestImage {
    fn drop(&mut self) {
        let _ = self
            .engine
            .docker(&["rmi", "--force", &self.tag])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// Images that a test built through shipdeck, removed when the test ends.
struct BuiltImages {
    engine: Engine,
    tags: Vec<String>,
}

impl Drop for BuiltImages {
    fn drop(&mut self) {
        for tag in &self.tags {
            let _ = self.engine.output(&["rmi", "--force", tag]);
        }
    }
}

/// A test home whose containers and volumes are removed when it is dropped,
/// so that a failing test leaves nothing on the engine. Undeploy and the
/// checks after it run before that, in the test itself.
struct DockerHome {
    home: TestHome,
    engine: Engine,
}

impl DockerHome {
    fn new(engine: &Engine) -> Self {
        Self {
            home: TestHome::new(),
            engine: engine.clone(),
        }
    }

    /// Builds a `shipdeck` command that reaches this test's engine. The
    /// agent that the first command starts inherits `DOCKER_HOST`.
    fn command(&self, args: &[&str]) -> Command {
        let mut command = self.home.command(args);
        if let Some(host) = &self.engine.host {
            command.env("DOCKER_HOST", host);
        }
        command
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run shipdeck")
    }

    fn ok(&self, args: &[&str]) -> String {
        let output = self.run(args);
        assert!(
            output.status.success(),
            "`shipdeck {}` failed with {}:\nstdout: {}\nstderr: {}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
        );
        String::from_utf8(output.stdout).expect("UTF-8 output")
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.extend(["-o", "json"]);
        let text = self.ok(&all);
        serde_json::from_str(&text).unwrap_or_else(|error| panic!("invalid JSON ({error}): {text}"))
    }

    fn get(&self, name: &str) -> Value {
        self.json(&["get", name])
    }

    fn deploy(&self, file: &Path) -> String {
        self.ok(&["deploy", "-f", file.to_str().expect("UTF-8 path"), "--wait"])
    }

    fn containers(&self) -> Vec<String> {
        self.engine.containers_of(&self.home)
    }

    fn wait_containers(&self, count: usize) -> Vec<String> {
        self.engine.wait_containers(&self.home, count)
    }

    /// Undeploys and checks that no container of the home is left.
    fn undeploy_and_check(&self, name: &str) -> String {
        let output = self.ok(&["undeploy", name, "--wait"]);
        let left = wait_for_value(DOCKER_DEADLINE, || {
            let ids = self.containers();
            ids.is_empty().then_some(()).ok_or(ids)
        });
        assert!(left.is_ok(), "containers left after undeploy: {left:?}");
        output
    }

    /// Stops the agent, which leaves containers running by design, after
    /// the test undeployed everything.
    fn finish(self) {
        let pid = self.home.agent_pid();
        self.ok(&["agent", "stop"]);
        if let Some(pid) = pid {
            wait_for("agent process to exit", DEADLINE, || {
                (!process_alive(pid)).then_some(())
            });
        }
    }
}

impl Drop for DockerHome {
    fn drop(&mut self) {
        let _ = self
            .command(&["agent", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        for id in self.engine.containers_of(&self.home) {
            let _ = self.engine.output(&["rm", "--force", "--volumes", &id]);
        }
        for volume in self.engine.labelled(&self.home, &["volume", "ls"]) {
            let _ = self.engine.output(&["volume", "rm", "--force", &volume]);
        }
    }
}

/// Returns a fresh test image on the shared engine, or `None` when the test
/// should skip.
fn engine_image(test: &str) -> Option<(Engine, TestImage)> {
    let engine = Engine::default();
    if !engine_available(&engine) {
        return None;
    }
    let image = image_on(&engine, test);
    Some((engine, image))
}

/// Tells whether the test can run. It cannot when no engine responds, and
/// that fails the test when `SHIPDECK_REQUIRE_DOCKER=1` is set.
fn engine_available(engine: &Engine) -> bool {
    let required = std::env::var("SHIPDECK_REQUIRE_DOCKER").is_ok_and(|v| v == "1");
    let responds = engine.responds();
    assert!(
        responds || !required,
        "SHIPDECK_REQUIRE_DOCKER=1 but no Docker engine responds to `docker info`"
    );
    responds
}

fn image_on(engine: &Engine, test: &str) -> TestImage {
    let tag = format!("shipdeck-test-{test}:{}", std::process::id());
    engine.import_sample_image(&tag);
    TestImage {
        engine: engine.clone(),
        tag,
    }
}

macro_rules! image_or_skip {
    ($test:expr) => {
        match engine_image($test) {
            Some(found) => found,
            None => {
                eprintln!("skipped: no Docker engine");
                return;
            }
        }
    };
}

/// Adds a regular file with plain ustar headers; the engine rejects the
/// sparse entries that copying a file's own metadata can produce.
fn add_file(archive: &mut tar::Builder<Vec<u8>>, path: &Path, inside: &str) {
    let bytes = std::fs::read(path).expect("read a file for the image");
    add_bytes(archive, inside, &bytes, 0o755);
}

fn add_bytes(archive: &mut tar::Builder<Vec<u8>>, inside: &str, bytes: &[u8], mode: u32) {
    let mut header = tar::Header::new_ustar();
    header.set_entry_type(tar::EntryType::Regular);
    header.set_mode(mode);
    header.set_size(bytes.len() as u64);
    archive
        .append_data(&mut header, inside, bytes)
        .expect("add a file to the archive");
}

/// Returns the absolute paths of the libraries that `ldd` lists for `binary`.
fn linked_libraries(binary: &Path) -> Vec<PathBuf> {
    let output = Command::new("ldd").arg(binary).output().expect("run ldd");
    assert!(output.status.success(), "ldd {} failed", binary.display());
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| {
            line.split_whitespace()
                .find(|word| word.starts_with('/'))
                .map(PathBuf::from)
        })
        .collect()
}

/// Writes a tar archive with one `Dockerfile` to `path`.
fn write_dockerfile_tar(path: &Path, dockerfile: &str) {
    let mut archive = tar::Builder::new(Vec::new());
    add_bytes(&mut archive, "Dockerfile", dockerfile.as_bytes(), 0o644);
    let bytes = archive.into_inner().expect("finish the source archive");
    std::fs::write(path, bytes).expect("write the source archive");
}

#[test]
fn docker_autoscaling_reads_containers_and_keeps_them() {
    let (engine, image) = image_or_skip!("autoscale");
    let home = DockerHome::new(&engine);
    let name = unique("as");
    let port = free_ports(1);
    let text = docker_manifest(&name, &image.tag, 2, port, "scaled")
        + "autoScaling: { minReplicas: 2, maxReplicas: 3, targetMemoryUtilization: 90, interval: 1s }\n";
    // Memory utilization is taken relative to the request.
    let text = text.replace(
        "limits: {",
        "requests: { cpu: 500m, memory: 64Mi }\n  limits: {",
    );
    let manifest = home.home.write("as.yaml", &text);
    home.deploy(&manifest);
    let before = home.wait_containers(2);

    // Decisions read each container's memory from its stats stream.
    let status = wait_for("a decision with readings", DOCKER_DEADLINE, || {
        let status = home.json(&["autoscale", "status", &name]);
        let ready = status["metrics"][0]["ready"].as_u64();
        (ready == Some(2)).then_some(status)
    });
    assert!(status["metrics"][0]["current"].is_number(), "{status}");
    assert_eq!(status["currentReplicas"], 2);

    // Turning it off is a revision that keeps the containers, and so is an
    // agent restart after it: they are adopted, not replaced.
    home.ok(&["autoscale", "off", &name, "--wait"]);
    assert_eq!(
        home.wait_containers(2),
        before,
        "the setting replaced no container"
    );
    home.ok(&["agent", "stop"]);
    home.ok(&["ls"]);
    wait_for("adopted after the setting", DOCKER_DEADLINE, || {
        (home.get(&name)["health"] == "healthy").then_some(())
    });
    assert_eq!(home.wait_containers(2), before, "no container was replaced");

    home.undeploy_and_check(&name);
    home.finish();
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
monitoring: {{ interval: 1s }}
"#
    )
}

/// Returns the newest value of `metric` in the last minute, if any.
fn latest_metric(home: &DockerHome, name: &str, metric: &str) -> Option<f64> {
    let series = home.json(&[
        "metrics", name, "--since", "1m", "--step", "1s", "--metric", metric,
    ]);
    let points = series[0]["points"].as_array()?.clone();
    points
        .iter()
        .rev()
        .find_map(|point| point["value"].as_f64())
}

/// Returns the replica numbers in the responses to `count` requests on `port`.
fn replicas_answering(port: u16, count: usize) -> BTreeSet<String> {
    (0..count)
        .filter_map(|_| http_get(port, "/"))
        .filter_map(|(_, body)| {
            let words: Vec<&str> = body.split_whitespace().collect();
            let at = words.iter().position(|word| *word == "replica")?;
            words.get(at + 1).map(|word| (*word).to_owned())
        })
        .collect()
}

/// Returns a deployment name unique to this test process: container names
/// are global on an engine, which other test runs may share.
fn unique(name: &str) -> String {
    format!("{name}-{}", std::process::id())
}

fn occurrences(text: &str, needle: &str) -> usize {
    text.matches(needle).count()
}

#[test]
fn docker_lifecycle_deploy_scale_rollback() {
    let (engine, image) = image_or_skip!("lifecycle");
    let home = DockerHome::new(&engine);
    let web = unique("web");
    let port = free_ports(1);
    let manifest = home.home.write(
        "web.yaml",
        &docker_manifest(&web, &image.tag, 2, port, "hello-docker"),
    );

    home.deploy(&manifest);
    let first = home.wait_containers(2);
    assert_every_response(port, "hello-docker", 4);
    let answered = wait_for("both replicas behind the endpoint", DEADLINE, || {
        let seen = replicas_answering(port, 20);
        (seen.len() == 2).then_some(seen)
    });
    assert_eq!(answered, BTreeSet::from(["0".to_owned(), "1".to_owned()]));
    let names: BTreeSet<String> = first
        .iter()
        .map(|id| engine.inspect(id, "{{.Name}}"))
        .collect();
    assert_eq!(
        names,
        BTreeSet::from([
            format!("/shipdeck-{web}-development-r1-0"),
            format!("/shipdeck-{web}-development-r1-1")
        ])
    );
    assert_eq!(
        engine.inspect(&first[0], "{{.HostConfig.NanoCpus}}"),
        "500000000"
    );
    assert_eq!(
        engine.inspect(&first[0], "{{.HostConfig.Memory}}"),
        "67108864"
    );
    assert_eq!(
        engine.inspect(
            &first[0],
            "{{index .Config.Labels \"shipdeck.deployment\"}}"
        ),
        web
    );
    let first_image = engine.inspect(&first[0], "{{.Image}}");

    // Stats arrive from the engine's stats stream: memory at once, CPU once
    // a replica burns it.
    let memory = wait_for(
        "memory_usage from the stats stream",
        DOCKER_DEADLINE,
        || latest_metric(&home, &web, "memory_usage").filter(|bytes| *bytes > 0.0),
    );
    assert!(memory < 2.0 * 64.0 * 1024.0 * 1024.0, "{memory}");
    http_post(port, "/burn-cpu?seconds=4");
    let cores = wait_for("cpu_usage from the stats stream", DOCKER_DEADLINE, || {
        latest_metric(&home, &web, "cpu_usage").filter(|cores| *cores > 0.2)
    });
    assert!(
        cores <= 1.1,
        "a 500m limit caps the burn near half a core: {cores}"
    );

    home.ok(&["scale", &web, "--replicas", "3", "--wait"]);
    home.wait_containers(3);
    home.ok(&["scale", &web, "--replicas", "1", "--wait"]);
    home.wait_containers(1);

    home.ok(&["redeploy", &web, "--set", "env.GREETING=bonjour", "--wait"]);
    home.wait_containers(1);
    assert_every_response(port, "bonjour", 3);

    home.ok(&["rollback", &web, "--wait"]);
    let rolled = home.wait_containers(1);
    assert_every_response(port, "hello-docker", 3);
    assert_eq!(engine.inspect(&rolled[0], "{{.Image}}"), first_image);

    let logs = home.ok(&["logs", &web]);
    assert!(logs.contains("listening on 0.0.0.0:8080"), "logs: {logs}");

    home.undeploy_and_check(&web);
    home.finish();
}

#[test]
fn docker_kill_restarts_container_with_backoff() {
    let (engine, image) = image_or_skip!("kill");
    let home = DockerHome::new(&engine);
    let name = unique("kk");
    let port = free_ports(1);
    let manifest = home.home.write(
        "kk.yaml",
        &docker_manifest(&name, &image.tag, 1, port, "alive"),
    );
    home.deploy(&manifest);
    let before = home.wait_containers(1);

    engine.ok(&["kill", &before[0]]);

    let after = wait_for("a new container after docker kill", DOCKER_DEADLINE, || {
        let running = home.wait_containers(1);
        (running != before).then_some(running)
    });
    assert_ne!(after, before);
    wait_http_ok(port, "/");
    let deployment = home.get(&name);
    let replica = &deployment["replicaDetails"][0];
    assert!(
        replica["restarts"].as_u64().unwrap_or(0) >= 1,
        "{replica:#}"
    );
    assert!(
        replica["lastExit"].to_string().contains("SIGKILL"),
        "{replica:#}"
    );
    let events = home.ok(&["events", &name]);
    assert!(events.contains("crash"), "{events}");
    assert!(
        events.contains("restart 1 in"),
        "the restart waits its backoff: {events}"
    );

    home.undeploy_and_check(&name);
    home.finish();
}

#[test]
fn docker_agent_restart_adopts_containers() {
    let (engine, image) = image_or_skip!("adopt");
    let home = DockerHome::new(&engine);
    let name = unique("ac");
    let port = free_ports(1);
    let manifest = home.home.write(
        "ac.yaml",
        &docker_manifest(&name, &image.tag, 2, port, "again"),
    );
    home.deploy(&manifest);
    let before = home.wait_containers(2);
    let started = "listening on 0.0.0.0:8080";
    wait_for("both start lines stored", DEADLINE, || {
        (occurrences(&home.ok(&["logs", &name]), started) == 2).then_some(())
    });

    // A crash: the containers outlive the agent, and the next one adopts them.
    let agent = home.home.agent_pid().expect("the agent runs");
    kill9(agent);
    home.home.wait_agent_dead(agent);
    assert_eq!(home.containers().len(), 2);
    let listed = home.ok(&["ls"]);
    assert!(listed.contains(&name), "{listed}");
    let deployment = wait_for("adopted replicas ready", DOCKER_DEADLINE, || {
        let deployment = home.get(&name);
        (deployment["health"] == "healthy").then_some(deployment)
    });
    let adopted: BTreeSet<String> = deployment["replicaDetails"]
        .as_array()
        .expect("replicas")
        .iter()
        .filter_map(|replica| replica["container"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(adopted, before.iter().cloned().collect());
    assert_eq!(home.wait_containers(2), before, "no container was replaced");
    assert_every_response(port, "again", 4);
    let events = home.ok(&["events", &name]);
    assert!(events.contains("adopted 2 running replicas"), "{events}");

    // A graceful stop leaves them running too.
    home.ok(&["agent", "stop"]);
    assert_eq!(home.wait_containers(2), before);
    home.ok(&["ls"]);
    wait_for("adopted again", DOCKER_DEADLINE, || {
        (home.get(&name)["health"] == "healthy").then_some(())
    });
    assert_eq!(home.wait_containers(2), before);

    // The output goes on from where it was, without repeating a line.
    http_post(port, "/recover-health");
    wait_for("a line written after the adoption", DEADLINE, || {
        home.ok(&["logs", &name])
            .contains("health check already passes")
            .then_some(())
    });
    let logs = home.ok(&["logs", &name]);
    assert_eq!(occurrences(&logs, started), 2, "{logs}");

    home.undeploy_and_check(&name);
    home.finish();
}

#[test]
fn docker_builds_image_from_tar_source() {
    let (engine, image) = image_or_skip!("build");
    let home = DockerHome::new(&engine);
    let built = unique("built");
    let broken = unique("broken");
    let _images = BuiltImages {
        engine: engine.clone(),
        tags: ["rev-1", "rev-2"]
            .map(|revision| format!("shipdeck/{built}-development:{revision}"))
            .to_vec(),
    };
    let port = free_ports(1);
    let archive = home.home.work().join("app.tar");
    let dockerfile = |greeting: &str| {
        format!(
            "FROM {}\nENV GREETING={greeting}\n\
             HEALTHCHECK --interval=1s --timeout=5s CMD [\"/shipdeck-sample\", \"--version\"]\n",
            image.tag
        )
    };
    write_dockerfile_tar(&archive, &dockerfile("from-dockerfile"));
    let manifest = home.home.write(
        "built.yaml",
        &format!(
            "name: {built}\nbackend: docker\nsource: {{ type: tar, url: ./app.tar }}\n\
             ports: [{{ name: http, containerPort: 8080, hostPort: {port} }}]\n\
             healthCheck: {{ type: http, path: /healthz, port: 8080, periodSeconds: 1 }}\n"
        ),
    );

    home.deploy(&manifest);
    let first = home.wait_containers(1);
    assert_every_response(port, "from-dockerfile", 2);
    let built_image = engine.ok(&[
        "image",
        "inspect",
        "--format",
        "{{.Id}}",
        &format!("shipdeck/{built}-development:rev-1"),
    ]);
    assert_eq!(engine.inspect(&first[0], "{{.Image}}"), built_image);
    let build_log = home.ok(&["logs", &built, "--build"]);
    assert!(build_log.contains("Step 1/"), "{build_log}");
    assert!(build_log.contains(&built_image), "{build_log}");

    // The image's own HEALTHCHECK shows beside shipdeck's checks.
    wait_for("the HEALTHCHECK to pass", DOCKER_DEADLINE, || {
        (home.get(&built)["replicaDetails"][0]["containerHealth"] == "healthy").then_some(())
    });
    let status = home.ok(&["status", &built]);
    assert!(status.contains("HEALTHCHECK"), "{status}");
    assert!(status.contains("reports healthy"), "{status}");
    let described = home.ok(&["get", &built]);
    assert!(described.contains("HEALTHCHECK"), "{described}");

    // A new revision builds again from the archive as it is now ...
    write_dockerfile_tar(&archive, &dockerfile("second-build"));
    home.ok(&["redeploy", &built, "--set", "env.EXTRA=1", "--wait"]);
    home.wait_containers(1);
    assert_every_response(port, "second-build", 2);

    // ... and a rollback runs revision 1's image without building.
    home.ok(&["rollback", &built, "--wait"]);
    let rolled = home.wait_containers(1);
    assert_every_response(port, "from-dockerfile", 2);
    assert_eq!(engine.inspect(&rolled[0], "{{.Image}}"), built_image);
    let rollback_log = home.ok(&["logs", &built, "--build", "--revision", "3"]);
    assert!(!rollback_log.contains("Step"), "rebuilt: {rollback_log}");

    // A failed build fails its revision, with the build's last lines.
    let broken_archive = home.home.work().join("broken.tar");
    write_dockerfile_tar(
        &broken_archive,
        &format!(
            "FROM {}\nRUN [\"/shipdeck-sample\", \"--no-such-flag\"]\n",
            image.tag
        ),
    );
    let broken_manifest = home.home.write(
        "broken.yaml",
        &format!("name: {broken}\nbackend: docker\nsource: {{ type: tar, url: ./broken.tar }}\n"),
    );
    let output = home.run(&[
        "deploy",
        "-f",
        broken_manifest.to_str().expect("path"),
        "--wait",
    ]);
    assert!(!output.status.success(), "a failed build deployed");
    let history = home.json(&["history", &broken]);
    let reason = history[0]["reason"].as_str().unwrap_or_default().to_owned();
    assert_eq!(history[0]["status"], "failed", "{history:#}");
    assert!(
        reason.contains("docker build of revision 1 failed"),
        "{reason}"
    );
    assert!(
        reason.contains("--no-such-flag"),
        "the last lines are in it: {reason}"
    );

    home.undeploy_and_check(&built);
    home.ok(&["undeploy", &broken, "--wait"]);
    home.finish();
}

#[test]
fn docker_exec_probes_run_in_container() {
    let (engine, image) = image_or_skip!("exec");
    let home = DockerHome::new(&engine);
    let probed = unique("probed");
    let hangs = unique("hangs");
    let manifest = |name: &str, command: &str, deadline: u32| {
        format!(
            "name: {name}\nbackend: docker\nimage: {}\nenv: {{ PORT: \"8080\" }}\n\
             healthCheck: {{ type: exec, command: {command}, periodSeconds: 1, timeoutSeconds: 1 }}\n\
             strategy: {{ progressDeadlineSeconds: {deadline} }}\n",
            image.tag
        )
    };
    // The agent has no /shipdeck-sample of its own: only the container does.
    let passes = home.home.write(
        "probed.yaml",
        &manifest(&probed, r#"["/shipdeck-sample", "--version"]"#, 30),
    );
    home.deploy(&passes);
    let health = home.ok(&["health", &probed]);
    assert!(
        health.contains("/shipdeck-sample --version exited with 0"),
        "{health}"
    );

    let hangs_manifest = home.home.write(
        "hangs.yaml",
        &manifest(&hangs, r#"["/shipdeck-sample", "serve", "--port", "9"]"#, 4),
    );
    let output = home.run(&[
        "deploy",
        "-f",
        hangs_manifest.to_str().expect("path"),
        "--wait",
    ]);
    assert!(!output.status.success(), "a probe that never ends passed");
    let reason = home.get(&hangs)["statusReason"].to_string();
    assert!(reason.contains("timed out after 1000 ms"), "{reason}");

    home.undeploy_and_check(&probed);
    home.ok(&["undeploy", &hangs, "--wait"]);
    home.finish();
}

#[test]
fn docker_undeploy_keeps_only_persistent_volumes() {
    let (engine, image) = image_or_skip!("volumes");
    let home = DockerHome::new(&engine);
    let vol = unique("vol");
    let manifest = home.home.write(
        "vol.yaml",
        &format!(
            "name: {vol}\nbackend: docker\nimage: {}\nenv: {{ PORT: \"8080\" }}\nvolumes:\n\
             - {{ name: scratch, mountPath: /scratch, type: emptyDir }}\n\
             - {{ name: data, mountPath: /data, type: persistentVolume }}\n",
            image.tag
        ),
    );
    home.deploy(&manifest);
    let container = home.wait_containers(1).remove(0);
    let anonymous = engine.inspect(
        &container,
        "{{range .Mounts}}{{if eq .Destination \"/scratch\"}}{{.Name}}{{end}}{{end}}",
    );
    assert!(!anonymous.is_empty(), "no volume at /scratch");
    let named = format!("shipdeck-{vol}-development-data");
    assert_eq!(
        engine.labelled(&home.home, &["volume", "ls"]),
        vec![named.clone()]
    );

    let output = home.undeploy_and_check(&vol);
    assert!(output.contains("kept the persistent volumes"), "{output}");
    assert!(output.contains(&named), "{output}");
    assert!(
        !engine
            .output(&["volume", "inspect", &anonymous])
            .status
            .success(),
        "the emptyDir volume {anonymous} outlived its container"
    );
    assert_eq!(
        engine.labelled(&home.home, &["volume", "ls"]),
        vec![named.clone()],
        "the persistent volume is kept"
    );
    assert!(engine.labelled(&home.home, &["network", "ls"]).is_empty());
    engine.ok(&["volume", "rm", &named]);
    home.finish();
}

/// A Docker engine of its own for one test, on its own socket, data root
/// and exec root, with live restore on so that containers survive its
/// restarts. It runs in a network namespace of its own, so its bridge and
/// iptables rules never touch the shared engine's (a dockerd started with
/// `--bridge none` on the host would delete the shared `docker0`). Its
/// containers cannot publish ports to the host.
struct PrivateEngine {
    dir: tempfile::TempDir,
    engine: Engine,
    daemon: Option<std::process::Child>,
}

impl PrivateEngine {
    /// Starts the engine, or returns `None` when this host cannot run one
    /// (no `dockerd`, or not root) and none is required.
    fn start() -> Option<Self> {
        let required = std::env::var("SHIPDECK_REQUIRE_DOCKER").is_ok_and(|v| v == "1");
        let runnable = Command::new("dockerd").arg("--version").output().is_ok()
            && Command::new("unshare").arg("--version").output().is_ok()
            && nix::unistd::geteuid().is_root();
        assert!(
            runnable || !required,
            "SHIPDECK_REQUIRE_DOCKER=1 but this test cannot start a dockerd of its own (needs dockerd, unshare and root)"
        );
        if !runnable {
            return None;
        }
        let dir = tempfile::Builder::new()
            .prefix("sd-engine-")
            .tempdir()
            .expect("create the engine's directory");
        let host = format!("unix://{}/docker.sock", dir.path().display());
        let mut engine = Self {
            dir,
            engine: Engine { host: Some(host) },
            daemon: None,
        };
        engine.run_daemon();
        Some(engine)
    }

    fn run_daemon(&mut self) {
        let dir = self.dir.path();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("dockerd.log"))
            .expect("open the dockerd log");
        let child = Command::new("unshare")
            .args(["--net", "dockerd", "--host"])
            .arg(self.engine.host.as_deref().expect("a host"))
            .arg("--data-root")
            .arg(dir.join("data"))
            .arg("--exec-root")
            .arg(dir.join("exec"))
            .arg("--pidfile")
            .arg(dir.join("docker.pid"))
            .arg("--live-restore")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone the log file"))
            .stderr(log)
            .spawn()
            .expect("start dockerd");
        self.daemon = Some(child);
        wait_for("the private dockerd to respond", DOCKER_DEADLINE, || {
            self.engine.responds().then_some(())
        });
    }

    /// Stops the daemon with SIGTERM and waits until it has exited.
    fn stop_daemon(&mut self) {
        let Some(mut child) = self.daemon.take() else {
            return;
        };
        let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).expect("a pid"));
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let _ = child.wait();
    }
}

impl Drop for PrivateEngine {
    fn drop(&mut self) {
        if self.daemon.is_some() {
            for id in self
                .engine
                .output(&["ps", "--all", "--quiet"])
                .stdout
                .split(|b| *b == b'\n')
            {
                let id = String::from_utf8_lossy(id).trim().to_owned();
                if !id.is_empty() {
                    let _ = self.engine.output(&["rm", "--force", &id]);
                }
            }
        }
        self.stop_daemon();
        // dockerd mounts its data root over itself and leaves the mount.
        let _ = Command::new("umount")
            .arg(self.dir.path().join("data"))
            .stderr(Stdio::null())
            .status();
    }
}

#[test]
fn docker_engine_outage_and_recovery() {
    if !engine_available(&Engine::default()) {
        eprintln!("skipped: no Docker engine");
        return;
    }
    let Some(mut private) = PrivateEngine::start() else {
        eprintln!("skipped: cannot start a dockerd of its own (needs dockerd, unshare and root)");
        return;
    };
    let engine = private.engine.clone();
    let image = image_on(&engine, "outage");
    let home = DockerHome::new(&engine);
    let manifest = home.home.write(
        "out.yaml",
        &format!(
            "name: out\nbackend: docker\nimage: {}\nenv: {{ PORT: \"8080\" }}\n\
             restartPolicy: {{ policy: always, backoffInitial: 1s, backoffMax: 2s }}\n",
            image.tag
        ),
    );
    home.deploy(&manifest);
    let before = home.wait_containers(1);
    assert_eq!(home.get("out")["health"], "healthy");

    private.stop_daemon();
    let address = engine.host.clone().expect("a host");
    wait_for(
        "health unknown while the engine is down",
        DOCKER_DEADLINE,
        || (home.get("out")["health"] == "unknown").then_some(()),
    );
    let health = home.ok(&["health", "out"]);
    assert!(
        health.contains("cannot reach the Docker engine"),
        "{health}"
    );
    assert!(health.contains(&address), "{health}");
    // Several backoff periods pass without a restart or a failure.
    std::thread::sleep(Duration::from_secs(5));
    let deployment = home.get("out");
    assert_eq!(deployment["health"], "unknown", "{deployment:#}");
    assert_eq!(deployment["status"], "deployed", "{deployment:#}");
    assert_eq!(
        deployment["replicaDetails"][0]["restarts"], 0,
        "{deployment:#}"
    );
    let events = home.ok(&["events", "out"]);
    assert!(events.contains("platform-unreachable"), "{events}");
    assert!(!events.contains("crash"), "{events}");

    private.run_daemon();
    wait_for(
        "healthy again after the engine returns",
        DOCKER_DEADLINE,
        || (home.get("out")["health"] == "healthy").then_some(()),
    );
    assert_eq!(
        home.wait_containers(1),
        before,
        "the container was adopted again"
    );
    let events = home.ok(&["events", "out"]);
    assert!(events.contains("platform-reachable"), "{events}");
    assert_eq!(home.get("out")["replicaDetails"][0]["restarts"], 0);

    home.undeploy_and_check("out");
    home.finish();
    drop(image);
}

#[test]
fn docker_missing_image_names_it() {
    let (engine, _image) = image_or_skip!("absent");
    let home = DockerHome::new(&engine);
    let port = free_ports(1);
    // A registry on a closed local port fails at once, without any traffic
    // leaving the host.
    let image = "127.0.0.1:1/shipdeck/absent:1";
    let text = docker_manifest("gone", image, 1, port, "x").replace(
        "restartPolicy: { policy: always, backoffInitial: 1s, backoffMax: 10s }",
        "strategy: { progressDeadlineSeconds: 3 }",
    );
    let manifest = home.home.write("gone.yaml", &text);

    let output = home.run(&["deploy", "-f", manifest.to_str().expect("path"), "--wait"]);
    assert!(
        !output.status.success(),
        "deploy of an absent image succeeded"
    );
    let deployment = home.get("gone");
    let reason = deployment.to_string();
    assert!(reason.contains(image), "{deployment:#}");
    assert!(reason.contains("pulling it failed"), "{deployment:#}");
    home.finish();
}

#[test]
fn docker_rejects_build_command() {
    let home = TestHome::new();
    let manifest = home.write(
        "src.yaml",
        "name: src\nbackend: docker\nsource: { type: tar, url: ./app.tar }\n\
         build: { command: [make] }\n",
    );
    let error = home.fails(&["deploy", "-f", manifest.to_str().expect("path")]);
    assert!(
        error.contains("build.command is for backend: process"),
        "{error}"
    );
    assert!(error.contains("Dockerfile"), "{error}");
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
