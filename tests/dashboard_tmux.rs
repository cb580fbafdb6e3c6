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

    let status_file = home.work().join("status");
    let command = format!(
        "env SHIPDECK_HOME={} XDG_CONFIG_HOME={} {}; echo $? > {}; sleep 60",
        quote(home.home()),
        quote(&config),
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
    // tmux may capture a frame half drawn, so wait for the line itself.
    tmux.wait_screen("the help with the rebound quit", |screen| {
        screen.contains("help: deployments")
            && screen.contains("x               quit the dashboard")
    });
    tmux.ok(&["send-keys", "-t", "dash", "Escape"]);
    tmux.wait_screen("the help closed", |screen| {
        !screen.contains("help: deployments")
    });

    tmux.ok(&["send-keys", "-t", "dash", "x"]);
    let status = wait_for("the dashboard to exit", DEADLINE, || {
        std::fs::read_to_string(&status_file)
            .ok()
            .filter(|text| text.ends_with('\n'))
    });
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
