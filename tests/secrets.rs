//! The secret vault through the real CLI and agent: a random canary value
//! reaches a replica's environment and nowhere else, missing secrets are
//! all named, and the agent refuses an open home or key file.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use common::*;

fn proc_file(pid: i64, name: &str) -> Vec<u8> {
    std::fs::read(format!("/proc/{pid}/{name}"))
        .unwrap_or_else(|error| panic!("read /proc/{pid}/{name}: {error}"))
}

fn canary_manifest(name: &str, base: u16) -> String {
    sample_manifest(name, 2, base, "hi").replace(
        "env:\n",
        "env:\n  CANARY: \"${SECRET:canary}\"\n  LITERAL: \"$${SECRET:canary}\"\n",
    )
}

fn assert_replicas_have(home: &TestHome, name: &str, canary: &str) -> Vec<i64> {
    let deployment = home.get(name, &[]);
    let pids = replica_pids(&deployment);
    assert_eq!(pids.len(), 2, "replicas in {deployment:#}");
    let expected = format!("CANARY={canary}\0");
    for pid in &pids {
        let environ = proc_file(*pid, "environ");
        assert!(contains(&environ, &expected), "replica {pid} lacks CANARY");
        assert!(
            contains(&environ, "LITERAL=${SECRET:canary}\0"),
            "replica {pid}: $${{ should stay a literal ${{"
        );
        assert!(!contains(&proc_file(*pid, "cmdline"), canary));
    }
    pids
}

#[test]
fn canary_reaches_only_replica_environment() {
    let home = TestHome::new();
    let canary = random_canary();
    set_secret(&home, "canary", &canary);

    let base = free_ports(1);
    let manifest = home.write("app.yaml", &canary_manifest("vaulted", base));
    home.ok(&["deploy", "-f", manifest.to_str().unwrap(), "--wait"]);
    assert_replicas_have(&home, "vaulted", &canary);

    let agent = home.agent_pid().expect("agent pid");
    assert!(!contains(&proc_file(i64::from(agent), "cmdline"), &canary));
    for args in [
        vec!["events", "-o", "json"],
        vec!["secrets", "ls", "-o", "json"],
        vec!["secrets", "ls"],
        vec!["get", "vaulted", "-o", "json"],
        vec!["history", "vaulted", "-o", "json"],
        vec!["history", "vaulted", "-o", "yaml"],
    ] {
        let output = home.ok(&args);
        assert!(
            !output.contains(&canary),
            "`{}` shows the canary",
            args.join(" ")
        );
    }

    // A rollback renders the value current at that time.
    let newer = random_canary();
    set_secret(&home, "canary", &newer);
    home.ok(&["rollback", "vaulted", "--to-revision", "1", "--wait"]);
    wait_for("replicas with the new value", DEADLINE, || {
        let deployment = home.get("vaulted", &[]);
        let pids = replica_pids(&deployment);
        let expected = format!("CANARY={newer}\0");
        let all_new = pids.len() == 2
            && pids.iter().all(|pid| {
                contains(
                    &std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default(),
                    &expected,
                )
            });
        all_new.then_some(())
    });
    assert_replicas_have(&home, "vaulted", &newer);

    home.ok(&["agent", "stop"]);
    for value in [&canary, &newer] {
        let leaked = files_containing(home.home(), value);
        assert!(
            leaked.is_empty(),
            "the value is in plain text in {leaked:?}"
        );
    }
    let references = files_containing(&home.home().join("db"), "${SECRET:canary}");
    assert!(
        !references.is_empty(),
        "revisions should keep the reference"
    );
    let key_mode = std::fs::metadata(home.home().join("master.key"))
        .expect("the key file")
        .permissions()
        .mode();
    assert_eq!(key_mode & 0o777, 0o600);
    home.finish();
}

#[test]
fn deploy_names_every_missing_secret() {
    let home = TestHome::new();
    set_secret(&home, "beta_present", "x");
    let base = free_ports(1);
    let manifest = sample_manifest("partial", 1, base, "hi").replace(
        "env:\n",
        "env:\n  A: ${SECRET:alpha_missing}\n  B: ${SECRET:beta_present}\n  C: x-${SECRET:gamma_missing}\n",
    );
    let path = home.write("app.yaml", &manifest);
    let error = home.fails(&["deploy", "-f", path.to_str().unwrap()]);
    assert!(error.contains("alpha_missing"), "{error}");
    assert!(error.contains("gamma_missing"), "{error}");
    assert!(!error.contains("beta_present"), "{error}");
    assert!(error.contains("secrets set"), "{error}");
    assert_eq!(home.json(&["ls"]), serde_json::json!([]));
    assert!(home.marked_pids().is_empty(), "nothing started");
    home.finish();
}

#[test]
fn bad_secret_references_are_rejected() {
    let home = TestHome::new();
    set_secret(&home, "token", "t");
    let base = free_ports(1);
    let cases = [
        (
            "env:\n",
            "env:\n  BROKEN: \"x ${SECRET:token\"\n",
            "env.BROKEN",
        ),
        ("env:\n", "env:\n  BAD: ${SECRET:Bad Name}\n", "env.BAD"),
        (
            "\"serve\",",
            "\"serve\", \"${SECRET:token}\",",
            "run.command[2]",
        ),
        ("env:\n", "env:\n  TOKEN: ${SECRET:token}\n", ""),
    ];
    for (index, (from, to, field)) in cases.into_iter().enumerate() {
        let mut manifest = sample_manifest("refs", 1, base, "hi").replace(from, to);
        if field.is_empty() {
            // A command that expands a variable holding a secret.
            manifest = manifest.replace("\"serve\",", "\"serve\", \"${TOKEN}\",");
        }
        let path = home.write(&format!("case{index}.yaml"), &manifest);
        let error = home.fails(&["deploy", "-f", path.to_str().unwrap()]);
        let expected = if field.is_empty() { "TOKEN" } else { field };
        assert!(error.contains(expected), "case {index}: {error}");
    }
    assert_eq!(home.json(&["ls"]), serde_json::json!([]));
    home.finish();
}

#[test]
fn secret_input_errors_are_clear() {
    let home = TestHome::new();
    for (name, input, expected) in [
        ("with space", "v\n", "invalid secret name"),
        ("a/b", "v\n", "invalid secret name"),
        ("empty", "\n", "is empty"),
    ] {
        let output = run_with_input(home.command(&["secrets", "set", name]), input.as_bytes());
        assert!(!output.status.success(), "{name:?} was accepted");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(expected), "{name:?}: {stderr}");
    }
    let large = vec![b'v'; 3 * 1024 * 1024];
    let output = run_with_input(home.command(&["secrets", "set", "large"]), &large);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("3145728 bytes"), "{stderr}");
    assert!(stderr.contains("limit"), "{stderr}");

    let error = home.fails(&["secrets", "get", "nothing"]);
    assert!(error.contains("--reveal"), "{error}");
    let error = home.fails(&["secrets", "get", "nothing", "--reveal"]);
    assert!(error.contains("not found"), "{error}");
    assert_eq!(home.json(&["secrets", "ls"]), serde_json::json!([]));
    home.finish();
}

#[test]
fn rotation_retires_old_key() {
    let home = TestHome::new();
    set_secret(&home, "kept", "value-1");
    let old_key = std::fs::read_to_string(home.home().join("master.key")).expect("key file");
    let output = home.ok(&["secrets", "rotate-key"]);
    assert!(output.contains("1 secrets"), "{output}");
    assert_eq!(
        home.ok(&["secrets", "get", "kept", "--reveal"]),
        "value-1\n"
    );
    home.ok(&["agent", "stop"]);

    let mut command = home.command(&["secrets", "ls"]);
    command.env("SHIPDECK_MASTER_KEY", old_key.trim());
    let output = command.output().expect("run shipdeck");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "the old key opened the vault");
    assert!(
        stderr.contains("cannot unlock the secret vault"),
        "{stderr}"
    );
    assert!(!stderr.contains(old_key.trim()), "{stderr}");

    assert_eq!(
        home.ok(&["secrets", "get", "kept", "--reveal"]),
        "value-1\n"
    );
    home.finish();
}

/// Runs `shipdeck agent` in the foreground and returns its output; the
/// agent must exit by itself within a few seconds.
fn agent_exit(home: &TestHome) -> Output {
    let mut child = home
        .command(&["agent"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the agent");
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait().expect("poll the agent").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the agent started although it should have refused");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("agent output")
}

#[test]
fn agent_refuses_open_home_and_key_file() {
    let home = TestHome::new();
    set_secret(&home, "s", "v");
    home.ok(&["agent", "stop"]);

    let root = home.home();
    std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o755)).unwrap();
    let output = agent_exit(&home);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains(&root.display().to_string()), "{stderr}");
    assert!(stderr.contains("755"), "{stderr}");
    assert!(stderr.contains("chmod 700"), "{stderr}");
    std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o700)).unwrap();

    let key = root.join("master.key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let output = agent_exit(&home);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains(&key.display().to_string()), "{stderr}");
    assert!(stderr.contains("644"), "{stderr}");
    assert!(stderr.contains("chmod 600"), "{stderr}");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();

    assert_eq!(home.ok(&["secrets", "get", "s", "--reveal"]), "v\n");
    home.finish();
}

#[test]
fn passphrase_file_unlocks_agent() {
    let home = TestHome::new();
    let passphrase = home.write("passphrase", "correct horse battery staple\n");
    std::fs::set_permissions(&passphrase, std::fs::Permissions::from_mode(0o600)).unwrap();
    let with_passphrase = |args: &[&str], file: &Path| {
        let mut command = home.command(args);
        command.env("SHIPDECK_PASSPHRASE_FILE", file);
        command
    };

    let started = Instant::now();
    let output = run_with_input(
        with_passphrase(&["secrets", "set", "token"], &passphrase),
        b"t0ken\n",
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    eprintln!("first start with a passphrase took {:?}", started.elapsed());
    assert!(
        !home.home().join("master.key").exists(),
        "no key file with a passphrase"
    );
    home.ok(&["agent", "stop"]);

    let wrong = home.write("wrong", "correct horse battery stapler\n");
    std::fs::set_permissions(&wrong, std::fs::Permissions::from_mode(0o600)).unwrap();
    let output = with_passphrase(&["secrets", "ls"], &wrong)
        .output()
        .expect("run shipdeck");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success(),
        "a wrong passphrase opened the vault"
    );
    assert!(
        stderr.contains("cannot unlock the secret vault"),
        "{stderr}"
    );
    assert!(!stderr.contains("stapler"), "{stderr}");

    let output = with_passphrase(&["secrets", "get", "token", "--reveal"], &passphrase)
        .output()
        .expect("run shipdeck");
    assert_eq!(String::from_utf8_lossy(&output.stdout), "t0ken\n");
    home.finish();
}
