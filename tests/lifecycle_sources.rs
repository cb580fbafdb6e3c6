//! Deployments built from source: a git repository, a tar.gz and a zip
//! archive made in the test's directory, each with a build command that
//! writes a file which the running replica then serves.

mod common;

use std::path::Path;

use common::*;

/// Writes a project whose build script creates `public/built.txt`.
fn write_project(home: &TestHome, dir: &str, marker: &str) -> std::path::PathBuf {
    home.write(
        &format!("{dir}/build.sh"),
        &format!("#!/bin/sh\nset -e\necho \"building {marker}\"\nmkdir -p public\necho \"{marker}\" > public/built.txt\n"),
    );
    home.write(&format!("{dir}/README"), "a test project\n");
    home.work().join(dir)
}

fn manifest(name: &str, kind: &str, url: &Path, port: u16) -> String {
    format!(
        r#"name: {name}
source: {{ type: {kind}, url: "{}" }}
build: {{ command: [sh, build.sh] }}
run:
  command: ["python3", "-m", "http.server", "--bind", "127.0.0.1", "${{PORT}}"]
  workdir: public
ports:
  - {{ name: http, containerPort: 8000, hostPort: {port} }}
healthCheck: {{ type: http, path: /built.txt, port: 8000, periodSeconds: 1 }}
terminationGracePeriodSeconds: 5
"#,
        url.display()
    )
}

/// Deploys `manifest_text`, checks the built file is served and the build
/// log kept, then undeploys.
fn deploy_and_check(home: &TestHome, name: &str, manifest_text: &str, port: u16, marker: &str) {
    let manifest = home.write(&format!("{name}.yaml"), manifest_text);
    home.ok(&[
        "deploy",
        "-f",
        manifest.to_str().expect("path"),
        "--wait",
        "--timeout",
        "60s",
    ]);

    let deployment = home.get(name, &[]);
    assert_eq!(deployment["status"], "deployed", "{deployment:#}");
    assert_eq!(replica_counts(&deployment), (1, 1), "{deployment:#}");
    assert_eq!(endpoint_ports(&deployment), vec![port], "{deployment:#}");
    let private = replica_ports(&deployment);
    assert_eq!(private.len(), 1, "replica ports in {deployment:#}");
    assert_eq!(
        wait_http_ok(private[0], "/built.txt"),
        format!("{marker}\n")
    );
    assert_eq!(wait_http_ok(port, "/built.txt"), format!("{marker}\n"));

    let log = home.ok(&["logs", name, "--build"]);
    assert!(
        log.contains(&format!("building {marker}")),
        "build log of {name}: {log:?}"
    );
    let history = home.json(&["history", name]);
    assert_eq!(history[0]["status"], "deployed", "{history:#}");

    home.ok(&["undeploy", name, "--wait"]);
    wait_port_closed(port);
    wait_port_closed(private[0]);
}

#[test]
fn git_source_builds_and_serves() {
    let home = TestHome::new();
    let repo = write_project(&home, "repo", "from-git");
    sh(&repo, "git", &["init", "--quiet", "--initial-branch=main"]);
    sh(&repo, "git", &["config", "user.name", "shipdeck test"]);
    sh(&repo, "git", &["config", "user.email", "test@localhost"]);
    sh(&repo, "git", &["add", "."]);
    sh(&repo, "git", &["commit", "--quiet", "-m", "first"]);

    let port = free_ports(1);
    let text =
        manifest("gitapp", "git", &repo, port).replace("type: git, ", "type: git, branch: main, ");
    deploy_and_check(&home, "gitapp", &text, port, "from-git");

    // A new commit is picked up by a redeploy as a new revision, and a
    // rollback serves the first build again without rebuilding.
    home.write(
        "repo/build.sh",
        "#!/bin/sh\nset -e\nmkdir -p public\necho second > public/built.txt\n",
    );
    sh(&repo, "git", &["commit", "--quiet", "-am", "second"]);
    let manifest_path = home.work().join("gitapp.yaml");
    home.ok(&[
        "deploy",
        "-f",
        manifest_path.to_str().expect("path"),
        "--wait",
        "--timeout",
        "60s",
    ]);
    assert_eq!(wait_http_ok(port, "/built.txt"), "second\n");
    home.ok(&[
        "rollback",
        "gitapp",
        "--to-revision",
        "1",
        "--wait",
        "--timeout",
        "60s",
    ]);
    assert_eq!(wait_http_ok(port, "/built.txt"), "from-git\n");
    home.finish();
}

#[test]
fn tar_gz_source_builds_and_serves() {
    let home = TestHome::new();
    let project = write_project(&home, "tarproject", "from-tar");
    let archive = home.work().join("app.tar.gz");
    sh(
        &project,
        "tar",
        &["-czf", archive.to_str().expect("path"), "."],
    );

    let port = free_ports(1);
    deploy_and_check(
        &home,
        "tarapp",
        &manifest("tarapp", "tar", &archive, port),
        port,
        "from-tar",
    );
    home.finish();
}

#[test]
fn zip_source_builds_and_serves() {
    let home = TestHome::new();
    let project = write_project(&home, "zipproject", "from-zip");
    let archive = home.work().join("app.zip");
    let script = "import sys, zipfile\nwith zipfile.ZipFile(sys.argv[1], 'w') as z:\n    z.write('build.sh')\n    z.write('README')\n";
    sh(
        &project,
        "python3",
        &["-c", script, archive.to_str().expect("path")],
    );

    let port = free_ports(1);
    // A relative url is taken from the manifest's directory.
    let text = manifest("zipapp", "zip", Path::new("app.zip"), port);
    deploy_and_check(&home, "zipapp", &text, port, "from-zip");
    home.finish();
}
