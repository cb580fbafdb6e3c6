//! The real `shipdeck` binary in a real terminal (a tmux pane) against a
//! real agent: the first screen shows the deployment, a `keymap.toml` in
//! the config directory rebinds quit, and quitting restores the terminal.
//!
//! Without tmux the test prints why and passes, unless
//! `SHIPDECK_REQUIRE_TMUX=1` is set (as `.ci/run` does), which turns the
//! skip into a failure.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::*;

/// A tmux server of the test's own, on a socket named after its scratch
/// directory, so it never touches another tmux server. Dropping it kills
/// that server.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn run(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("run tmux")
    }

    fn ok(&self, args: &[&str]) -> String {
        let output = self.run(args);
        assert!(
            output.status.success(),
            "tmux {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    fn screen(&self) -> String {
        self.ok(&["capture-pane", "-p", "-t", "dash"])
    }

    fn wait_screen(&self, what: &str, check: impl Fn(&str) -> bool) -> String {
        wait_for(what, DEADLINE, || {
            let screen = self.screen();
            check(&screen).then_some(screen)
        })
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server"]);
    }
}

fn tmux_or_skip() -> bool {
    let found = Command::new("tmux")
        .arg("-V")
        .output()
        .is_ok_and(|output| output.status.success());
    if !found {
        let required = std::env::var("SHIPDECK_REQUIRE_TMUX").is_ok_and(|value| value == "1");
        assert!(
            !required,
            "SHIPDECK_REQUIRE_TMUX=1 but tmux is not installed"
        );
        eprintln!("skipping: tmux is not installed");
    }
    found
}

fn quote(path: &Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', r"'\''"))
}

/// Starts the dashboard in a detached 100×30 tmux session named `dash`,
/// with `config` as `XDG_CONFIG_HOME`. Returns the server and the file the
/// dashboard's exit status is written to.
fn start_dashboard(home: &TestHome, config: &Path) -> (Tmux, std::path::PathBuf) {
    let status_file = home.work().join("status");
    let command = format!(
        "env SHIPDECK_HOME={} XDG_CONFIG_HOME={} {}; echo $? > {}; sleep 60",
        quote(home.home()),
        quote(config),
        quote(Path::new(SHIPDECK)),
        quote(&status_file),
    );
    let socket = home
        .work()
        .file_name()
        .expect("the scratch directory has a name")
        .to_string_lossy()
        .into_owned();
    let tmux = Tmux { socket };
    tmux.ok(&[
        "new-session",
        "-d",
        "-s",
        "dash",
        "-x",
        "100",
        "-y",
        "30",
        &command,
    ]);
    (tmux, status_file)
}

fn wait_exit_status(status_file: &Path) -> String {
    wait_for("the dashboard to exit", DEADLINE, || {
        std::fs::read_to_string(status_file)
            .ok()
            .filter(|text| text.ends_with('\n'))
    })
}

#[test]
fn dashboard_runs_in_a_terminal() {
    if !tmux_or_skip() {
        return;
    }
    let home = TestHome::new();
    let manifest = home.write("web.yaml", &sample_manifest("web", 1, free_ports(1), "hi"));
    home.ok(&["deploy", "-f", manifest.to_str().expect("path"), "--wait"]);
    let config = home.work().join("config");
    std::fs::create_dir_all(config.join("shipdeck")).expect("create the config directory");
    std::fs::write(
        config.join("shipdeck/keymap.toml"),
        "[global]\nquit = \"x\"\n",
    )
    .expect("write the keymap");

    let (tmux, status_file) = start_dashboard(&home, &config);

    let screen = tmux.wait_screen("the deployment on screen", |screen| {
        screen.contains("web") && screen.contains("deployed") && screen.contains("1/1")
    });
    assert!(screen.contains("no alerts firing"), "{screen}");
    assert_eq!(
        tmux.ok(&["display", "-p", "-t", "dash", "#{alternate_on}"])
            .trim(),
        "1"
    );

    // The keymap moved quit to x, so q does nothing. The help opening after
    // it shows that the dashboard read both keys and kept running.
    tmux.ok(&["send-keys", "-t", "dash", "q"]);
    tmux.ok(&["send-keys", "-t", "dash", "?"]);
    // The global keys come after the table's, past the first page at
    // 80x24, so G moves to the end of the help.
    tmux.wait_screen("the help", |screen| screen.contains("help: deployments"));
    tmux.ok(&["send-keys", "-t", "dash", "G"]);
    // tmux may capture a frame half drawn, so wait for the line checked.
    let help = tmux.wait_screen("the help's global keys", |screen| {
        screen.contains("help: deployments") && screen.contains("quit the dashboard")
    });
    assert!(
        help.contains("x               quit the dashboard"),
        "{help}"
    );
    tmux.ok(&["send-keys", "-t", "dash", "Escape"]);
    tmux.wait_screen("the help closed", |screen| {
        !screen.contains("help: deployments")
    });

    tmux.ok(&["send-keys", "-t", "dash", "x"]);
    let status = wait_exit_status(&status_file);
    assert_eq!(status.trim(), "0", "the dashboard exits with success");
    assert_eq!(
        tmux.ok(&["display", "-p", "-t", "dash", "#{alternate_on}"])
            .trim(),
        "0",
        "the alternate screen is left"
    );
    let log =
        std::fs::read_to_string(home.home().join("dashboard.log")).expect("read dashboard.log");
    assert!(log.contains("dashboard ends"), "{log}");
    drop(tmux);
    home.finish();
}

/// Rolls the sample workload back to revision 1 through the `:` palette
/// and its confirmation, then scales it to 3 with `s`, and checks the
/// agent's state through the CLI. The rollback goes first because a
/// rollback restores that revision's replica count.
#[test]
fn dashboard_keys_roll_back_and_scale() {
    if !tmux_or_skip() {
        return;
    }
    let home = TestHome::new();
    let base = free_ports(1);
    let first = home.write("v1.yaml", &sample_manifest("web", 1, base, "hi"));
    home.ok(&["deploy", "-f", first.to_str().expect("path"), "--wait"]);
    let second = home.write("v2.yaml", &sample_manifest("web", 1, base, "hello"));
    home.ok(&["deploy", "-f", second.to_str().expect("path"), "--wait"]);
    assert_eq!(home.get("web", &[])["revision"], 2);
    let config = home.work().join("config");
    std::fs::create_dir_all(&config).expect("create the config directory");

    let (tmux, status_file) = start_dashboard(&home, &config);
    tmux.wait_screen("the deployment on screen", |screen| {
        screen.contains("web") && screen.contains("deployed") && screen.contains("1/1")
    });

    tmux.ok(&["send-keys", "-t", "dash", ":"]);
    // The footer also contains "command", so look for the palette's border.
    tmux.wait_screen("the palette", |screen| screen.contains("┌ command "));
    tmux.ok(&["send-keys", "-t", "dash", "-l", "rollback web 1"]);
    tmux.ok(&["send-keys", "-t", "dash", "Enter"]);
    tmux.wait_screen("the confirmation", |screen| {
        screen.contains("Roll back web") && screen.contains("from revision 2 to revision 1")
    });
    tmux.ok(&["send-keys", "-t", "dash", "y"]);
    wait_for("the rollback to revision 1", DEADLINE, || {
        let history = home.json(&["history", "web"]);
        let newest = history.as_array()?.first()?.clone();
        (newest["reason"] == "rollback to revision 1" && newest["status"] == "deployed")
            .then_some(())
    });

    tmux.ok(&["send-keys", "-t", "dash", "s"]);
    tmux.wait_screen("the scale input", |screen| screen.contains("replicas:"));
    tmux.ok(&["send-keys", "-t", "dash", "-l", "3"]);
    tmux.ok(&["send-keys", "-t", "dash", "Enter"]);
    let deployment = wait_for("three ready replicas", DEADLINE, || {
        let deployment = home.get("web", &[]);
        (replica_counts(&deployment) == (3, 3)).then_some(deployment)
    });
    assert_eq!(deployment["replicas"]["desired"], 3, "{deployment:#}");
    let history = home.json(&["history", "web"]);
    let entries = history.as_array().expect("history is a list");
    assert!(
        entries
            .iter()
            .any(|entry| entry["reason"] == "rollback to revision 1"),
        "history {history:#}"
    );
    assert_every_response(base, "hi", 3);

    tmux.ok(&["send-keys", "-t", "dash", "q"]);
    assert_eq!(wait_exit_status(&status_file).trim(), "0");
    let log =
        std::fs::read_to_string(home.home().join("dashboard.log")).expect("read dashboard.log");
    assert!(log.contains("sending an operation to the agent"), "{log}");
    drop(tmux);
    home.finish();
}

/// Enter opens the detail view of the real deployment, number keys switch
/// its tabs to data read from the agent, and Esc returns to the table.
#[test]
fn detail_view_in_a_terminal() {
    if !tmux_or_skip() {
        return;
    }
    let home = TestHome::new();
    let manifest = home.write("web.yaml", &sample_manifest("web", 1, free_ports(1), "hi"));
    home.ok(&["deploy", "-f", manifest.to_str().expect("path"), "--wait"]);
    let config = home.work().join("config");
    std::fs::create_dir_all(&config).expect("create the config directory");

    let command = format!(
        "env SHIPDECK_HOME={} XDG_CONFIG_HOME={} {}; sleep 60",
        quote(home.home()),
        quote(&config),
        quote(Path::new(SHIPDECK)),
    );
    let socket = format!(
        "{}-detail",
        home.work()
            .file_name()
            .expect("the scratch directory has a name")
            .to_string_lossy()
    );
    let tmux = Tmux { socket };
    tmux.ok(&[
        "new-session",
        "-d",
        "-s",
        "dash",
        "-x",
        "100",
        "-y",
        "30",
        &command,
    ]);
    tmux.wait_screen("the deployment on screen", |screen| {
        screen.contains("web") && screen.contains("1/1")
    });

    tmux.ok(&["send-keys", "-t", "dash", "Enter"]);
    // Each wait checks every expected text, because tmux may capture a
    // frame half drawn.
    tmux.wait_screen("the overview with its command and replica", |screen| {
        screen.contains("1 overview")
            && screen.contains("command")
            && screen.contains("ready     yes")
    });

    tmux.ok(&["send-keys", "-t", "dash", "3"]);
    tmux.wait_screen("the history", |screen| {
        screen.contains("revisions")
            && screen.contains("deployed")
            && screen.contains("mark a revision")
    });

    tmux.ok(&["send-keys", "-t", "dash", "5"]);
    tmux.wait_screen("the timeline", |screen| {
        screen.contains("action") && screen.contains("deploy")
    });

    tmux.ok(&["send-keys", "-t", "dash", "Escape"]);
    tmux.wait_screen("the table again", |screen| {
        !screen.contains("1 overview") && screen.contains("1/1")
    });
    drop(tmux);
    home.finish();
}

/// The logs tab of the real deployment shows the sample workload's lines
/// read from the agent, a search finds one, filter mode keeps it, and a
/// save writes the view to a file.
#[test]
fn logs_tab_in_a_terminal() {
    if !tmux_or_skip() {
        return;
    }
    let home = TestHome::new();
    let manifest = home.write("web.yaml", &sample_manifest("web", 1, free_ports(1), "hi"));
    home.ok(&["deploy", "-f", manifest.to_str().expect("path"), "--wait"]);
    let config = home.work().join("config");
    std::fs::create_dir_all(&config).expect("create the config directory");

    let command = format!(
        "env SHIPDECK_HOME={} XDG_CONFIG_HOME={} {}; sleep 60",
        quote(home.home()),
        quote(&config),
        quote(Path::new(SHIPDECK)),
    );
    let socket = format!(
        "{}-logs",
        home.work()
            .file_name()
            .expect("the scratch directory has a name")
            .to_string_lossy()
    );
    let tmux = Tmux { socket };
    tmux.ok(&[
        "new-session",
        "-d",
        "-s",
        "dash",
        "-x",
        "120",
        "-y",
        "30",
        &command,
    ]);
    tmux.wait_screen("the deployment on screen", |screen| {
        screen.contains("web") && screen.contains("1/1")
    });

    tmux.ok(&["send-keys", "-t", "dash", "Enter"]);
    tmux.wait_screen("the detail view", |screen| screen.contains("6 logs"));
    tmux.ok(&["send-keys", "-t", "dash", "6"]);
    tmux.wait_screen("the sample's first line", |screen| {
        screen.contains("following") && screen.contains("web-0 INFO  INFO listening on 0.0.0.0:")
    });

    tmux.ok(&["send-keys", "-t", "dash", "/"]);
    tmux.ok(&["send-keys", "-t", "dash", "-l", "LISTENING"]);
    tmux.ok(&["send-keys", "-t", "dash", "Enter"]);
    let found = tmux.wait_screen("the search found the line", |screen| {
        screen.contains("paused") && screen.contains("/LISTENING/")
    });
    assert!(!found.contains("no earlier match"), "{found}");
    assert!(found.contains("listening on 0.0.0.0:"), "{found}");

    tmux.ok(&["send-keys", "-t", "dash", "f"]);
    tmux.wait_screen("filter mode with the line", |screen| {
        screen.contains("filter ±2") && screen.contains("listening on 0.0.0.0:")
    });

    let saved = home.work().join("saved.log");
    tmux.ok(&["send-keys", "-t", "dash", "S"]);
    tmux.wait_screen("the save input", |screen| {
        screen.contains("save the lines shown to:")
    });
    tmux.ok(&["send-keys", "-t", "dash", "C-u"]);
    tmux.ok(&[
        "send-keys",
        "-t",
        "dash",
        "-l",
        &saved.display().to_string(),
    ]);
    tmux.ok(&["send-keys", "-t", "dash", "Enter"]);
    let toast = tmux.wait_screen("the save's toast", |screen| {
        screen.contains("saved 1 lines")
    });
    assert!(toast.contains("saved.log"), "{toast}");
    let text = std::fs::read_to_string(&saved).expect("read the saved file");
    assert!(
        text.contains(" web-0 INFO  INFO listening on 0.0.0.0:"),
        "{text}"
    );
    assert_eq!(text.lines().count(), 1, "{text}");
    drop(tmux);
    home.finish();
}

/// The autoscale tab of the real sample workload shows shipdeck's
/// autoscaler and the problem of a CPU target without a CPU request. The
/// palette changes the range behind a confirmation. `+` is rejected while
/// autoscaling is on, and `!` forces the scale with autoscaling turned off.
#[test]
fn autoscale_in_a_terminal() {
    if !tmux_or_skip() {
        return;
    }
    let home = TestHome::new();
    let manifest = format!(
        "{}autoScaling:\n  minReplicas: 2\n  maxReplicas: 3\n  targetCPUUtilization: 50\n  interval: 1s\n",
        sample_manifest("web", 1, free_ports(1), "hi")
    );
    let manifest = home.write("web.yaml", &manifest);
    home.ok(&["deploy", "-f", manifest.to_str().expect("path"), "--wait"]);
    let config = home.work().join("config");
    std::fs::create_dir_all(&config).expect("create the config directory");

    let (tmux, status_file) = start_dashboard(&home, &config);
    tmux.wait_screen("the range beside the replicas", |screen| {
        screen.contains("AUTO") && screen.contains("2..3") && screen.contains("2/2")
    });

    tmux.ok(&["send-keys", "-t", "dash", "Enter"]);
    tmux.wait_screen("the detail view", |screen| screen.contains("7 autoscale"));
    tmux.ok(&["send-keys", "-t", "dash", "7"]);
    let tab = tmux.wait_screen("the autoscale tab with a decision", |screen| {
        screen.contains("shipdeck's autoscaler")
            && screen.contains("cannot compute CPU utilization: no cpu request")
            && screen.contains("keeping 2 replicas:")
    });
    assert!(tab.contains("decisions, newest first"), "{tab}");

    tmux.ok(&["send-keys", "-t", "dash", ":"]);
    tmux.wait_screen("the palette", |screen| screen.contains("┌ command "));
    tmux.ok(&["send-keys", "-t", "dash", "-l", "autoscale web 1 4 cpu=60"]);
    tmux.ok(&["send-keys", "-t", "dash", "Enter"]);
    tmux.wait_screen("the confirmation", |screen| {
        screen.contains("Change the autoscaling of web")
    });
    tmux.ok(&["send-keys", "-t", "dash", "y"]);
    tmux.wait_screen("the new range in the title", |screen| {
        screen.contains("autoscale 1..4") && screen.contains("60%")
    });

    tmux.ok(&["send-keys", "-t", "dash", "Escape"]);
    tmux.wait_screen("the table again", |screen| screen.contains("1..4"));
    tmux.ok(&["send-keys", "-t", "dash", "+"]);
    tmux.wait_screen("the rejection toast", |screen| screen.contains("failed:"));
    tmux.ok(&["send-keys", "-t", "dash", "!"]);
    tmux.wait_screen("the question before forcing", |screen| {
        screen.contains("Turn autoscaling off for web")
    });
    tmux.ok(&["send-keys", "-t", "dash", "y"]);
    let deployment = wait_for("three replicas without autoscaling", DEADLINE, || {
        let deployment = home.get("web", &[]);
        (replica_counts(&deployment) == (3, 3) && deployment.get("autoscaling").is_none())
            .then_some(deployment)
    });
    assert_eq!(deployment["replicas"]["desired"], 3, "{deployment:#}");
    tmux.wait_screen("the column gone with the last autoscaled row", |screen| {
        !screen.contains("AUTO") && screen.contains("3/3")
    });

    tmux.ok(&["send-keys", "-t", "dash", "q"]);
    assert_eq!(wait_exit_status(&status_file).trim(), "0");
    drop(tmux);
    home.finish();
}
