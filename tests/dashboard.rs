//! The dashboard's worker against a real agent: the lists it reads, the
//! metrics of watched rows, the connection lost and restored across an
//! agent restart, and the changes it sends. The screen itself is covered by the snapshot tests in
//! `src/tui/view/`.

mod common;

use common::*;
use shipdeck::api::client::Client;
use shipdeck::api::wire::WatchItem;
use shipdeck::model::{DeploymentKey, ReplicaRange};
use shipdeck::tui::action::{Action, Operation};
use shipdeck::tui::app::{
    AutoscaleSetting, DetailData, DetailRequest, DetailTab, MetricsWindow, ROW_SERIES,
};
use shipdeck::tui::worker::Workers;
use tokio::sync::mpsc;

/// Receives actions until `pick` accepts one, failing after [`DEADLINE`].
async fn next<T>(
    receiver: &mut mpsc::Receiver<Action>,
    what: &str,
    mut pick: impl FnMut(Action) -> Option<T>,
) -> T {
    let wait = async {
        loop {
            let action = receiver
                .recv()
                .await
                .expect("the worker keeps the channel open");
            if let Some(value) = pick(action) {
                return value;
            }
        }
    };
    match tokio::time::timeout(DEADLINE, wait).await {
        Ok(value) => value,
        Err(_) => panic!("no {what} within {DEADLINE:?}"),
    }
}

#[tokio::test(flavor = "current_thread")]
async fn worker_follows_the_agent_across_a_restart() {
    let home = TestHome::new();
    let manifest = home.write("web.yaml", &sample_manifest("web", 1, free_ports(1), "hi"));
    home.ok(&["deploy", "-f", manifest.to_str().expect("path"), "--wait"]);

    let socket = home.home().join("run/agent.sock");
    let (sender, mut receiver) = mpsc::channel(64);
    let workers = Workers::start(Client::new(&socket), socket.display().to_string(), sender);

    let info = next(&mut receiver, "agent info", |action| match action {
        Action::AgentInfo(info) => Some(info),
        _ => None,
    })
    .await;
    assert_eq!(info.home, home.home().display().to_string());
    let list = next(&mut receiver, "deployments list", |action| match action {
        Action::Deployments(list) => Some(list),
        _ => None,
    })
    .await;
    let web = list
        .iter()
        .find(|view| view.name == "web")
        .expect("web is listed");
    next(&mut receiver, "alerts list", |action| {
        matches!(action, Action::Alerts(_)).then_some(())
    })
    .await;

    let key = DeploymentKey::new("web", &web.environment);
    workers.watch_metrics(vec![key.clone()]);
    let (metrics_key, series) = next(&mut receiver, "metrics of web", |action| match action {
        Action::Metrics { key, series } => Some((key, series)),
        _ => None,
    })
    .await;
    assert_eq!(metrics_key, key);
    let names: Vec<&str> = series.iter().map(|series| series.name.as_str()).collect();
    assert_eq!(names, ROW_SERIES);

    home.ok(&["agent", "stop"]);
    let reason = next(&mut receiver, "connection lost", |action| match action {
        Action::ConnectionLost { reason } => Some(reason),
        _ => None,
    })
    .await;
    assert!(reason.contains("agent.sock"), "{reason}");

    home.ok(&["agent", "--detach"]);
    next(&mut receiver, "connection restored", |action| {
        (action == Action::ConnectionRestored).then_some(())
    })
    .await;
    let list = next(
        &mut receiver,
        "deployments after the restart",
        |action| match action {
            Action::Deployments(list) => Some(list),
            _ => None,
        },
    )
    .await;
    assert!(list.iter().any(|view| view.name == "web"));

    drop(workers);
    home.finish();
}

/// Sends `operation` through the worker and returns the agent's result.
async fn run_operation(
    workers: &Workers,
    receiver: &mut mpsc::Receiver<Action>,
    operation: Operation,
) -> Result<String, String> {
    workers.execute(operation.clone());
    next(receiver, "the operation's result", |action| match action {
        Action::OperationFinished {
            operation: finished,
            result,
        } => {
            assert_eq!(finished, operation);
            Some(result)
        }
        _ => None,
    })
    .await
}

#[tokio::test(flavor = "current_thread")]
async fn worker_sends_each_operation() {
    let home = TestHome::new();
    let base = free_ports(1);
    let manifest = home.write("web.yaml", &sample_manifest("web", 1, base, "hi"));
    home.ok(&["deploy", "-f", manifest.to_str().expect("path"), "--wait"]);
    let environment = home.get("web", &[])["environment"]
        .as_str()
        .expect("environment")
        .to_owned();
    let key = DeploymentKey::new("web", &environment);
    let socket = home.home().join("run/agent.sock");
    let (sender, mut receiver) = mpsc::channel(64);
    let workers = Workers::start(Client::new(&socket), socket.display().to_string(), sender);

    let scale = Operation::Scale {
        key: key.clone(),
        replicas: 2,
        force: false,
    };
    let result = run_operation(&workers, &mut receiver, scale).await;
    assert_eq!(
        result,
        Ok(format!("scaling web ({environment}) to 2 replicas"))
    );
    wait_for("two ready replicas", DEADLINE, || {
        (replica_counts(&home.get("web", &[])) == (2, 2)).then_some(())
    });

    let redeploy = Operation::Redeploy { key: key.clone() };
    let result = run_operation(&workers, &mut receiver, redeploy).await;
    assert!(result.is_ok(), "{result:?}");
    wait_for("revision 2 deployed", DEADLINE, || {
        let deployment = home.get("web", &[]);
        (deployment["revision"] == 2 && deployment["status"] == "deployed").then_some(())
    });

    let missing = Operation::Rollback {
        key: key.clone(),
        to_revision: Some(99),
    };
    let result = run_operation(&workers, &mut receiver, missing).await;
    let error = result.expect_err("revision 99 does not exist");
    assert!(error.contains("99"), "{error}");

    let undeploy = Operation::Undeploy { key };
    let result = run_operation(&workers, &mut receiver, undeploy).await;
    assert!(result.is_ok(), "{result:?}");
    wait_for("web undeployed", DEADLINE, || {
        (home.get("web", &[])["status"] == "undeployed").then_some(())
    });
    wait_port_closed(base);
    drop(workers);
    home.finish();
}

/// Builds the sample workload's manifest with autoscaling evaluated every
/// second, so that a decision comes within the test's deadline.
fn autoscaled_manifest(base: u16) -> String {
    format!(
        "{}autoScaling:\n  minReplicas: 1\n  maxReplicas: 3\n  targetCPUUtilization: 50\n  interval: 1s\n",
        sample_manifest("web", 1, base, "hi")
    )
}

/// Raises the autoscaling minimum to 2 through the worker and reads the
/// decision that follows in the autoscale tab's read. Then a plain scale
/// is rejected, and a forced one turns autoscaling off.
#[tokio::test(flavor = "current_thread")]
async fn worker_autoscales_and_forces_a_scale() {
    let home = TestHome::new();
    let manifest = home.write("web.yaml", &autoscaled_manifest(free_ports(1)));
    home.ok(&["deploy", "-f", manifest.to_str().expect("path"), "--wait"]);
    let environment = home.get("web", &[])["environment"]
        .as_str()
        .expect("environment")
        .to_owned();
    let key = DeploymentKey::new("web", &environment);
    let socket = home.home().join("run/agent.sock");
    let (sender, mut receiver) = mpsc::channel(64);
    let workers = Workers::start(Client::new(&socket), socket.display().to_string(), sender);

    let setting = AutoscaleSetting {
        min_replicas: 2,
        max_replicas: 3,
        cpu_percent: Some(50),
        memory_percent: None,
        metrics: Vec::new(),
    };
    let autoscale = Operation::Autoscale {
        key: key.clone(),
        setting: Some(Box::new(setting)),
    };
    let result = run_operation(&workers, &mut receiver, autoscale).await;
    assert_eq!(
        result,
        Ok(format!(
            "autoscaling web ({environment}) between 2 and 3 replicas"
        ))
    );
    let listed = next(
        &mut receiver,
        "the list with the new range",
        |action| match action {
            Action::Deployments(list) => list
                .into_iter()
                .find(|view| view.name == "web")
                .filter(|view| view.autoscaling == Some(ReplicaRange { min: 2, max: 3 })),
            _ => None,
        },
    )
    .await;
    assert_eq!(listed.environment, environment);

    workers.watch_detail(Some(DetailRequest {
        key: key.clone(),
        tab: DetailTab::Autoscale,
        window: MetricsWindow::FiveMinutes,
        revisions: Vec::new(),
        autoscaled: true,
    }));
    let decision = next_detail(&mut receiver, "the decision to reach the minimum", |data| {
        let DetailData::Autoscale(view) = data else {
            return None;
        };
        assert_eq!((view.min_replicas, view.max_replicas), (2, 3));
        view.decisions
            .into_iter()
            .find(|decision| decision.current_replicas == 1 && decision.desired == 2)
    })
    .await;
    assert_eq!(
        decision.reason,
        "scaling from 1 to 2: the current count is below minReplicas"
    );
    workers.watch_detail(None);

    let plain = Operation::Scale {
        key: key.clone(),
        replicas: 1,
        force: false,
    };
    workers.execute(plain.clone());
    let message = next(&mut receiver, "the rejection", |action| match action {
        Action::ScaleRejected { operation, message } => {
            assert_eq!(operation, plain);
            Some(message)
        }
        Action::OperationFinished { result, .. } => panic!("not rejected: {result:?}"),
        _ => None,
    })
    .await;
    assert!(
        message.starts_with("autoscaling is on for \"web\" (2 to 3 replicas)"),
        "{message}"
    );

    let forced = Operation::Scale {
        key: key.clone(),
        replicas: 1,
        force: true,
    };
    let result = run_operation(&workers, &mut receiver, forced).await;
    assert_eq!(
        result,
        Ok(format!(
            "turning autoscaling off for web ({environment}) and scaling to 1 replicas"
        ))
    );
    let deployment = wait_for("one replica without autoscaling", DEADLINE, || {
        let deployment = home.get("web", &[]);
        (replica_counts(&deployment) == (1, 1) && deployment.get("autoscaling").is_none())
            .then_some(deployment)
    });
    assert_eq!(deployment["replicas"]["desired"], 1, "{deployment:#}");

    let off = Operation::Autoscale { key, setting: None };
    let error = run_operation(&workers, &mut receiver, off)
        .await
        .expect_err("autoscaling is off already");
    assert!(error.contains("autoscaling is off for \"web\""), "{error}");
    drop(workers);
    home.finish();
}

#[test]
fn dashboard_needs_a_terminal() {
    let home = TestHome::new();
    let output = home
        .command(&[])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run shipdeck");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("the dashboard needs a terminal"),
        "{stderr}"
    );
    assert!(
        home.agent_pid().is_none(),
        "no agent starts for a dashboard that cannot open"
    );
}

#[test]
fn help_lists_the_dashboard() {
    let home = TestHome::new();
    let help = home.ok(&["--help"]);
    assert!(
        help.contains("Usage: shipdeck [OPTIONS] [COMMAND]"),
        "{help}"
    );
    assert!(help.contains("dashboard"), "{help}");
    assert!(help.contains("--read-only"), "{help}");
    let error = home.fails(&["--read-only", "ls"]);
    assert!(
        error.contains("--read-only applies to the dashboard only"),
        "{error}"
    );
}

/// Receives detail reads until one that `pick` accepts.
async fn next_detail<T>(
    receiver: &mut mpsc::Receiver<Action>,
    what: &str,
    mut pick: impl FnMut(DetailData) -> Option<T>,
) -> T {
    next(receiver, what, |action| match action {
        Action::Detail {
            data: DetailData::Failed { what, message },
            ..
        } => panic!("reading {what} failed: {message}"),
        Action::Detail { data, .. } => pick(data),
        _ => None,
    })
    .await
}

#[tokio::test(flavor = "current_thread")]
async fn detail_worker_reads_each_tab() {
    let home = TestHome::new();
    let manifest = home.write("web.yaml", &sample_manifest("web", 1, free_ports(1), "hi"));
    home.ok(&["deploy", "-f", manifest.to_str().expect("path"), "--wait"]);
    let listed = home.json(&["ls"]);
    let environment = listed[0]["environment"]
        .as_str()
        .expect("environment")
        .to_owned();

    let socket = home.home().join("run/agent.sock");
    let (sender, mut receiver) = mpsc::channel(64);
    let workers = Workers::start(Client::new(&socket), socket.display().to_string(), sender);
    let key = DeploymentKey::new("web", &environment);
    let request = |tab: DetailTab, revisions: Vec<u64>| {
        Some(DetailRequest {
            key: key.clone(),
            tab,
            window: MetricsWindow::FiveMinutes,
            revisions,
            autoscaled: true,
        })
    };

    workers.watch_detail(request(DetailTab::Overview, vec![1]));
    let view = next_detail(&mut receiver, "the deployment", |data| match data {
        DetailData::Deployment(view) => Some(view),
        _ => None,
    })
    .await;
    assert_eq!(view.replica_details.len(), 1);
    let revision = next_detail(&mut receiver, "revision 1", |data| match data {
        DetailData::Revision(revision) => Some(revision),
        _ => None,
    })
    .await;
    assert_eq!((revision.revision, revision.spec.name.as_str()), (1, "web"));
    let events = next_detail(&mut receiver, "recent events", |data| match data {
        DetailData::RecentEvents(events) => Some(events),
        _ => None,
    })
    .await;
    assert!(
        events.iter().any(|event| event.action == "deploy"),
        "{events:?}"
    );

    workers.watch_detail(request(DetailTab::History, Vec::new()));
    let history = next_detail(&mut receiver, "history", |data| match data {
        DetailData::History(history) => Some(history),
        _ => None,
    })
    .await;
    assert_eq!(history.len(), 1);

    workers.watch_detail(request(DetailTab::Metrics, Vec::new()));
    let series = next_detail(&mut receiver, "metrics", |data| match data {
        DetailData::Metrics { series, .. } => Some(series),
        _ => None,
    })
    .await;
    assert!(series.iter().any(|series| series.name == "cpu_percentage"));

    workers.watch_detail(request(DetailTab::Alerts, Vec::new()));
    next_detail(&mut receiver, "silences", |data| {
        matches!(data, DetailData::Silences(_)).then_some(())
    })
    .await;

    workers.watch_detail(request(DetailTab::Timeline, Vec::new()));
    let timeline = next_detail(&mut receiver, "timeline", |data| match data {
        DetailData::Timeline(events) => Some(events),
        _ => None,
    })
    .await;
    assert!(!timeline.is_empty());
    assert!(
        timeline.windows(2).all(|pair| pair[0].seq > pair[1].seq),
        "newest first: {timeline:?}"
    );

    drop(workers);
    home.finish();
}

/// Reads stream lines until `pick` accepts one, failing after [`DEADLINE`].
async fn next_item<T>(
    stream: &mut shipdeck::api::client::ResponseLines,
    what: &str,
    mut pick: impl FnMut(WatchItem) -> Option<T>,
) -> T {
    let wait = async {
        loop {
            let line = stream
                .next_line()
                .await
                .expect("the stream reads")
                .expect("the stream stays open");
            let item: WatchItem = serde_json::from_slice(&line).expect("a watch item");
            if let Some(value) = pick(item) {
                return value;
            }
        }
    };
    match tokio::time::timeout(DEADLINE, wait).await {
        Ok(value) => value,
        Err(_) => panic!("no {what} within {DEADLINE:?}"),
    }
}

/// Sends the effects that the state returns to the workers, as the
/// event loop does.
fn dispatch(workers: &Workers, effects: Vec<shipdeck::tui::action::Effect>) {
    use shipdeck::tui::action::Effect;
    for effect in effects {
        match effect {
            Effect::Execute(operation) => workers.execute(operation),
            Effect::Request(request) => workers.request(request),
            Effect::WatchMetrics(keys) => workers.watch_metrics(keys),
            Effect::WatchDetail(request) => workers.watch_detail(request),
            Effect::Logs(effect) => workers.logs(effect),
            Effect::Redraw | Effect::Quit | Effect::LoadTheme(_) | Effect::CopyToClipboard(_) => {}
        }
    }
}

/// Presses keys written as in the keymap, separated by spaces.
fn press_keys(app: &mut shipdeck::tui::app::App, workers: &Workers, keys: &str) {
    for key in keys.split(' ') {
        let press = shipdeck::tui::keymap::parse_key(key).expect("a key");
        dispatch(workers, app.apply(Action::Key(press)));
    }
}

/// Types text, a newline as Enter.
fn type_keys(app: &mut shipdeck::tui::app::App, workers: &Workers, text: &str) {
    use shipdeck::tui::action::{KeyCodeKey, KeyPress};
    for character in text.chars() {
        let press = match character {
            '\n' => KeyPress::plain(KeyCodeKey::Enter),
            other => KeyPress::char(other),
        };
        dispatch(workers, app.apply(Action::Key(press)));
    }
}

/// Applies the workers' actions to the state until `done` holds.
async fn pump_until(
    app: &mut shipdeck::tui::app::App,
    workers: &Workers,
    receiver: &mut mpsc::Receiver<Action>,
    what: &str,
    mut done: impl FnMut(&shipdeck::tui::app::App) -> bool,
) {
    let wait = async {
        while !done(app) {
            let action = receiver
                .recv()
                .await
                .expect("the workers keep the channel open");
            dispatch(workers, app.apply(action));
        }
    };
    if tokio::time::timeout(DEADLINE, wait).await.is_err() {
        panic!("no {what} within {DEADLINE:?}");
    }
}

#[tokio::test(flavor = "current_thread")]
async fn watch_stream_carries_each_change() {
    let home = TestHome::new();
    let manifest = home.write("web.yaml", &sample_manifest("web", 1, free_ports(1), "hi"));
    home.ok(&["deploy", "-f", manifest.to_str().expect("path"), "--wait"]);
    let client = Client::new(&home.home().join("run/agent.sock"));
    let mut stream = client.get_lines("/v1/watch").await.expect("open /v1/watch");

    home.ok(&["scale", "web", "--replicas", "2"]);
    let event = next_item(&mut stream, "the scale event", |item| match item {
        WatchItem::Event { event } if event.action == "scale" => Some(event),
        _ => None,
    })
    .await;
    assert_eq!(event.deployment.map(|key| key.name), Some("web".to_owned()));
    next_item(
        &mut stream,
        "web with two ready replicas",
        |item| match item {
            WatchItem::Deployment { deployment }
                if deployment.name == "web" && deployment.replicas.ready == 2 =>
            {
                Some(())
            }
            _ => None,
        },
    )
    .await;

    home.ok(&["undeploy", "web", "--wait"]);
    next_item(&mut stream, "web undeployed", |item| match item {
        WatchItem::Deployment { deployment }
            if deployment.name == "web"
                && deployment.status == shipdeck::model::DeploymentStatus::Undeployed =>
        {
            Some(())
        }
        _ => None,
    })
    .await;
    home.finish();
}

#[tokio::test(flavor = "current_thread")]
async fn editor_deploys_and_secrets_view_adds() {
    use shipdeck::tui::app::{App, AppOptions, Layer, SystemClock};

    let home = TestHome::new();
    home.ok(&["agent", "--detach"]);
    let socket = home.home().join("run/agent.sock");
    let (sender, mut receiver) = mpsc::channel(64);
    let workers = Workers::start(Client::new(&socket), socket.display().to_string(), sender);
    let mut app = App::new(
        AppOptions {
            keymap: shipdeck::tui::keymap::Keymap::default(),
            read_only: false,
            socket: socket.display().to_string(),
        },
        std::sync::Arc::new(SystemClock),
    );
    dispatch(
        &workers,
        app.apply(Action::Resize {
            width: 120,
            height: 40,
        }),
    );
    pump_until(&mut app, &workers, &mut receiver, "connection", |app| {
        app.connection == shipdeck::tui::app::Connection::Connected
    })
    .await;

    // Add a secret in the secrets view's masked field.
    press_keys(&mut app, &workers, "S");
    pump_until(&mut app, &workers, &mut receiver, "secrets list", |app| {
        app.secrets
            .as_ref()
            .is_some_and(|state| state.list.is_some())
    })
    .await;
    press_keys(&mut app, &workers, "n");
    type_keys(&mut app, &workers, "greeting");
    press_keys(&mut app, &workers, "tab");
    let canary = random_canary();
    type_keys(&mut app, &workers, &canary);
    press_keys(&mut app, &workers, "enter");
    pump_until(
        &mut app,
        &workers,
        &mut receiver,
        "the secret listed",
        |app| {
            app.secrets.as_ref().is_some_and(|state| {
                state
                    .list
                    .iter()
                    .flatten()
                    .any(|info| info.name == "greeting")
            })
        },
    )
    .await;
    let listed = home.ok(&["secrets", "ls"]);
    assert!(listed.contains("greeting"), "{listed}");
    press_keys(&mut app, &workers, "esc");

    // Write a manifest that reads the secret, and deploy it.
    let port = free_ports(1);
    let manifest = sample_manifest("web", 1, port, "unused")
        .replace("  GREETING: unused\n", "  GREETING: ${SECRET:greeting}\n");
    press_keys(&mut app, &workers, "N");
    // Empty the starting manifest: delete to the end of each line, then
    // the line break.
    for _ in 0..shipdeck::tui::app::NEW_MANIFEST.lines().count() + 1 {
        press_keys(&mut app, &workers, "ctrl-k delete");
    }
    type_keys(&mut app, &workers, manifest.trim_end());
    press_keys(&mut app, &workers, "ctrl-o");
    let Some(Layer::Confirm(dialog)) = app.layers.last() else {
        panic!(
            "no confirmation; the editor shows {:?}",
            app.editor.as_ref().map(|editor| &editor.problem)
        );
    };
    assert!(
        dialog
            .message
            .starts_with("Deploy web (development) as a new deployment"),
        "{}",
        dialog.message
    );
    press_keys(&mut app, &workers, "y");
    pump_until(
        &mut app,
        &workers,
        &mut receiver,
        "the deploy accepted",
        |app| app.editor.is_none(),
    )
    .await;

    let body = wait_http_ok(port, "/");
    assert!(
        body.contains(&canary),
        "the replica reads the secret: {body}"
    );
    let deployment = home.get("web", &[]);
    assert_eq!(deployment["revision"], 1);
    let events = home.ok(&["events", "--limit", "1000"]);
    assert!(!events.contains(&canary), "no event holds the value");

    drop(workers);
    home.finish();
}
