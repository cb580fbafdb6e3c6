//! Log capture, storage, query and follow, end to end: the real agent,
//! real processes writing to real pipes, and the sled store on disk.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

/// Deploys a workload that runs `script` with `sh -c` in the scratch
/// directory, with no port and no probe, and waits until it runs.
fn deploy_script(home: &TestHome, name: &str, script: &str, extra: &str) {
    let path = write_script_manifest(home, name, script, extra);
    home.ok(&["deploy", "-f", path_arg(&path), "--wait"]);
}

fn write_script_manifest(home: &TestHome, name: &str, script: &str, extra: &str) -> PathBuf {
    let manifest = format!(
        "name: {name}\nrun:\n  command: [\"sh\", \"-c\", {script:?}]\n  workdir: {}\n{extra}",
        home.work().display()
    );
    home.write(&format!("{name}.yaml"), &manifest)
}

fn path_arg(path: &Path) -> &str {
    path.to_str().expect("UTF-8 path")
}

/// `logs NAME ARGS -o json`, parsed.
fn entries(home: &TestHome, name: &str, args: &[&str]) -> Vec<Value> {
    let mut all = vec!["logs", name];
    all.extend(args);
    match home.json(&all) {
        Value::Array(entries) => entries,
        other => panic!("logs -o json returned {other:#}"),
    }
}

fn messages(entries: &[Value]) -> Vec<String> {
    entries
        .iter()
        .map(|entry| entry["message"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// Waits until a search for `text` finds something and returns all stored
/// entries of `name`, oldest first.
fn wait_logged(home: &TestHome, name: &str, text: &str) -> Vec<Value> {
    wait_for(&format!("{text:?} in the logs of {name}"), DEADLINE, || {
        let found = entries(home, name, &["--search", text, "--tail", "1"]);
        (!found.is_empty()).then_some(())
    });
    entries(home, name, &["--limit", "100000"])
}

/// Reads the number in an `emit 000000042 xxx` line of the sample workload.
fn emitted_number(message: &str) -> Option<u64> {
    message.strip_prefix("emit ")?.get(..9)?.parse().ok()
}

#[test]
fn every_line_is_stored_once_and_in_order() {
    let home = TestHome::new();
    let count = 20_000;
    let manifest = format!(
        "name: emitter\nrun:\n  command: [\"{SAMPLE}\", \"--log-rate\", \"0\", \"--emit-lines\", \"{count}\"]\nports: [{{ containerPort: 8080 }}]\n"
    );
    let path = home.write("emitter.yaml", &manifest);
    home.ok(&["deploy", "-f", path_arg(&path), "--wait"]);

    let last = format!("emit {count:09}");
    wait_for("the last emitted line", DEADLINE, || {
        (!entries(&home, "emitter", &["--search", &last, "--tail", "1"]).is_empty()).then_some(())
    });
    let stored = entries(
        &home,
        "emitter",
        &["--search", "emit ", "--limit", "100000"],
    );
    let numbers: Vec<u64> = messages(&stored)
        .iter()
        .filter_map(|message| emitted_number(message))
        .collect();
    let expected: Vec<u64> = (1..=count).collect();
    assert_eq!(numbers.len(), expected.len(), "count of stored emit lines");
    assert_eq!(
        numbers, expected,
        "stored emit lines are in order, each once"
    );

    let ids: Vec<u64> = stored
        .iter()
        .filter_map(|e| e["id"].as_str()?.parse().ok())
        .collect();
    assert!(ids.windows(2).all(|pair| pair[0] < pair[1]), "ids increase");
    let entry = &stored[0];
    assert_eq!(entry["source"], "emitter-0", "{entry:#}");
    assert_eq!(entry["stream"], "stdout", "{entry:#}");
    assert_eq!(entry["revision"], 1, "{entry:#}");
    assert_eq!(entry["level"], "info", "{entry:#}");
}

/// Lines at every level and format, for the filter tests.
const LEVEL_SCRIPT: &str = r#"
echo 'plain start'
echo '[warn] disk almost full'
echo '{"level":"error","msg":"db down"}'
echo 'level=debug msg="cache miss"'
sleep 0.3
echo 'FATAL out of memory' >&2
sleep 0.3
printf 'colour \033[31mred\033[0m text\n'
echo 'second Timeout here'
exec sleep 1000
"#;

#[test]
fn filters_and_paging_return_the_right_entries() {
    let home = TestHome::new();
    deploy_script(&home, "levels", LEVEL_SCRIPT, "");
    let all = wait_logged(&home, "levels", "second timeout");
    assert_eq!(
        messages(&all),
        [
            "plain start",
            "[warn] disk almost full",
            r#"{"level":"error","msg":"db down"}"#,
            r#"level=debug msg="cache miss""#,
            "FATAL out of memory",
            "colour \u{1b}[31mred\u{1b}[0m text",
            "second Timeout here",
        ],
        "stored messages keep colours as data"
    );
    let levels: Vec<&str> = all.iter().map(|e| e["level"].as_str().unwrap()).collect();
    assert_eq!(
        levels,
        ["info", "warn", "error", "debug", "fatal", "info", "info"]
    );
    assert_eq!(all[4]["stream"], "stderr");

    let warn_up = entries(&home, "levels", &["--level", "warn"]);
    assert_eq!(
        messages(&warn_up),
        [
            "[warn] disk almost full",
            r#"{"level":"error","msg":"db down"}"#,
            "FATAL out of memory"
        ]
    );

    let search = entries(&home, "levels", &["--search", "TIMEOUT"]);
    assert_eq!(
        messages(&search),
        ["second Timeout here"],
        "case-insensitive"
    );
    let visible = entries(&home, "levels", &["--search", "red text"]);
    assert_eq!(visible.len(), 1, "search matches the visible text");
    let escape_bytes = entries(&home, "levels", &["--search", "[31m"]);
    assert!(escape_bytes.is_empty(), "escape bytes are not searchable");

    let regex = entries(&home, "levels", &["--regex", "^(plain|second) "]);
    assert_eq!(messages(&regex), ["plain start", "second Timeout here"]);

    let tail = entries(&home, "levels", &["--tail", "2"]);
    assert_eq!(
        messages(&tail),
        messages(&all[5..]),
        "--tail takes the newest"
    );
    let page = entries(&home, "levels", &["--limit", "2", "--offset", "1"]);
    assert_eq!(
        messages(&page),
        messages(&all[1..3]),
        "--limit/--offset page from the oldest"
    );

    let by_replica = entries(&home, "levels", &["--replica", "levels-0"]);
    assert_eq!(by_replica.len(), all.len());
    let by_index = entries(&home, "levels", &["--replica", "0"]);
    assert_eq!(by_index.len(), all.len());
    assert!(entries(&home, "levels", &["--replica", "1"]).is_empty());

    let first_time = all[0]["time"].as_str().unwrap();
    let until_first = entries(&home, "levels", &["--until", first_time]);
    assert_eq!(
        messages(&until_first),
        ["plain start"],
        "--until is inclusive"
    );
    let since = entries(&home, "levels", &["--since", "10m"]);
    assert_eq!(since.len(), all.len());
    let future = entries(&home, "levels", &["--since", "2999-01-01T00:00:00Z"]);
    assert!(future.is_empty());
}

#[test]
fn context_invert_and_pages_by_id() {
    let home = TestHome::new();
    let script = "for i in 1 2 3 4 5 6 7 8 9; do if [ $i = 4 ]; then echo \"hit $i\"; else echo \"line $i\"; fi; done; exec sleep 1000";
    deploy_script(&home, "ctx", script, "");
    let all = wait_logged(&home, "ctx", "line 9");
    assert_eq!(all.len(), 9);

    let around = entries(&home, "ctx", &["--search", "hit", "-C", "2"]);
    assert_eq!(
        messages(&around),
        ["line 2", "line 3", "hit 4", "line 5", "line 6"]
    );
    let context: Vec<bool> = around
        .iter()
        .map(|entry| entry["context"] == true)
        .collect();
    assert_eq!(context, [true, true, false, true, true], "{around:#?}");

    let inverted = entries(&home, "ctx", &["--search", "HIT", "-v"]);
    assert_eq!(inverted.len(), 8);
    assert!(messages(&inverted)
        .iter()
        .all(|message| message.starts_with("line")));

    let id = |entry: &Value| entry["id"].as_str().expect("id as text").to_owned();
    let third = id(&all[2]);
    let after = entries(&home, "ctx", &["--after", &third, "--limit", "2"]);
    assert_eq!(messages(&after), ["hit 4", "line 5"]);
    let before = entries(&home, "ctx", &["--before", &third, "--limit", "5"]);
    assert_eq!(messages(&before), ["line 1", "line 2"]);
    let after_with_context = entries(
        &home,
        "ctx",
        &["--search", "hit", "-C", "2", "--after", &id(&all[3])],
    );
    assert_eq!(
        messages(&after_with_context),
        ["line 5", "line 6"],
        "the context of a match before the anchor continues"
    );

    let error = home.fails(&["logs", "ctx", "-v"]);
    assert!(error.contains("no search was given"), "{error}");
    let (status, body) = api_get(
        &home,
        &format!("/v1/deployments/ctx/logs?after={third}&before={third}"),
    );
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("after and before cannot be combined"),
        "{body}"
    );
    let (status, body) = api_get(&home, "/v1/deployments/ctx/logs?search=x&context=5000");
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("context=5000 is more than the 1000"),
        "{body}"
    );
    let (status, body) = api_get(&home, "/v1/deployments/ctx/logs?follow=true&after=1");
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("a follow takes only tail"), "{body}");
}

#[test]
fn bad_queries_get_clear_errors() {
    let home = TestHome::new();
    deploy_script(&home, "q", "echo 'f(x) = 1'; exec sleep 1000", "");
    wait_logged(&home, "q", "f(x)");

    let error = home.fails(&["logs", "q", "--regex", "("]);
    assert!(error.contains("`(`"), "{error}");
    assert!(error.contains("not a valid regular expression"), "{error}");
    let plain = entries(&home, "q", &["--search", "("]);
    assert_eq!(plain.len(), 1, "without --regex, ( is plain text");

    let error = home.fails(&["logs", "q", "--since", "yesterday"]);
    assert!(error.contains("`yesterday` is not a time"), "{error}");
    let error = home.fails(&["logs", "q", "--level", "loud"]);
    assert!(error.contains("loud"), "{error}");
    assert!(error.contains("warn"), "{error}");
    let error = home.fails(&["logs", "q", "--since", "1m", "--until", "2m"]);
    assert!(error.contains("nothing can match"), "{error}");
    let error = home.fails(&["logs", "missing"]);
    assert!(error.contains("not found"), "{error}");

    // The API names a bad parameter too.
    let (status, body) = api_get(&home, "/v1/deployments/q/logs?tail=lots");
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("tail=\\\"lots\\\" is not a whole number"),
        "{body}"
    );
    let (status, body) = api_get(&home, "/v1/deployments/q/logs?colour=1");
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("unknown query parameter `colour`"), "{body}");
}

/// Output that tries to break capture or the operator's terminal.
const HOSTILE_SCRIPT: &str = r#"
printf 'bin \000\001\377\376 garbage\n'
printf '\033]0;pwned title\007\033[2J\033[Hclear and \033]8;;http://x.invalid\033\\link\033]8;;\033\\ done\n'
printf 'progress 10%%\rprogress 100%%\n'
printf 'crlf line\r\n'
head -c 10485760 /dev/zero | tr '\0' 'z'
printf '\nafter the long line\n'
printf 'no newline at the end'
exec sleep 1000
"#;

#[test]
fn hostile_output_is_stored_safely_and_printed_harmlessly() {
    let home = TestHome::new();
    deploy_script(&home, "hostile", HOSTILE_SCRIPT, "");
    wait_for("the last line without a newline", DEADLINE, || {
        // The unterminated line is stored when the stream ends or the
        // replica writes more; stop the workload so the pipe closes.
        let found = entries(&home, "hostile", &["--search", "after the long line"]);
        (!found.is_empty()).then_some(())
    });
    home.ok(&["undeploy", "hostile", "--wait"]);
    let all = wait_logged(&home, "hostile", "no newline at the end");
    let texts = messages(&all);

    assert_eq!(
        texts[0], "bin \u{0}\u{1}\u{fffd}\u{fffd} garbage",
        "invalid UTF-8 became U+FFFD"
    );
    assert!(
        texts[1].contains("\u{1b}]0;pwned"),
        "stored text keeps the bytes: {:?}",
        texts[1]
    );
    assert_eq!(texts[2], "progress 100%", "a lone CR rewrites the line");
    assert_eq!(texts[3], "crlf line");
    assert!(
        texts[4].starts_with("zzzz"),
        "the long line is kept in part"
    );
    assert!(
        texts[4].ends_with(&format!(" [cut {} bytes]", 10_485_760 - 65_536)),
        "the cut is marked: {:?}",
        &texts[4][texts[4].len() - 40..]
    );
    assert_eq!(
        texts[5], "after the long line",
        "the line after the long one is kept"
    );
    assert_eq!(
        texts.last().map(String::as_str),
        Some("no newline at the end")
    );

    let printed = home.ok(&["logs", "hostile", "--limit", "100"]);
    for (index, byte) in printed.bytes().enumerate() {
        assert!(
            byte == b'\n' || byte == b'\t' || (0x20..0x7f).contains(&byte) || byte >= 0x80,
            "control byte {byte:#04x} at {index} reached the terminal output"
        );
    }
    assert!(!printed.contains('\u{9b}'), "no 8-bit CSI in the output");
    assert!(
        printed.contains("clear and link done"),
        "the visible text stays: {printed}"
    );
    assert!(!printed.contains("pwned"), "the OSC title is gone");
}

#[test]
fn follow_sees_new_lines_live() {
    let home = TestHome::new();
    let script = "i=0; while true; do i=$((i+1)); echo \"tick $i $(date +%s%N)\"; sleep 0.2; done";
    deploy_script(&home, "ticker", script, "");
    wait_logged(&home, "ticker", "tick 1 ");

    let mut follower = spawn_follow(
        &home,
        &["logs", "ticker", "-f", "--tail", "1", "--search", "tick"],
    );
    let stdout = follower.stdout.take().expect("piped stdout");
    let mut lines = BufReader::new(stdout).lines();

    // The first line is the newest stored one; the next ones arrive live.
    let first = lines.next().expect("a first line").expect("readable");
    assert!(first.contains(" tick "), "{first}");
    let mut delays = Vec::new();
    let mut numbers = Vec::new();
    for _ in 0..5 {
        let line = lines.next().expect("a followed line").expect("readable");
        let received = now_nanos();
        let words: Vec<&str> = line.split_whitespace().collect();
        let written: u128 = words
            .last()
            .and_then(|w| w.parse().ok())
            .expect("a timestamp");
        numbers.push(
            words[words.len() - 2]
                .parse::<u64>()
                .expect("a tick number"),
        );
        delays.push(Duration::from_nanos(
            (received.saturating_sub(written)) as u64,
        ));
    }
    assert!(
        numbers.windows(2).all(|pair| pair[1] == pair[0] + 1),
        "followed lines arrive in order without gaps: {numbers:?}"
    );
    let best = delays.iter().min().copied().unwrap_or_default();
    assert!(
        best < Duration::from_secs(1),
        "new lines reach a follower within a second: {delays:?}"
    );

    // Stopping the agent ends the follow instead of waiting for it.
    let pid = home.agent_pid().expect("agent pid");
    home.ok(&["agent", "stop"]);
    home.wait_agent_dead(pid);
    let exited = wait_for("the follower to exit", DEADLINE, || {
        follower.try_wait().expect("poll the follower")
    });
    assert!(exited.success(), "the follower exits cleanly: {exited}");
}

#[test]
fn slow_follower_gets_a_missed_lines_marker() {
    let home = TestHome::new();
    let count = 60_000;
    let script = format!(
        "while [ ! -e go ]; do sleep 0.05; done; exec {SAMPLE} --log-rate 0 --emit-lines {count}"
    );
    // Not --wait: the replica is ready only once the flood has started.
    let path = write_script_manifest(
        &home,
        "flood",
        &script,
        "ports: [{ containerPort: 8080 }]\n",
    );
    home.ok(&["deploy", "-f", path_arg(&path)]);

    // A follower that does not read while the flood is captured.
    let mut stream = UnixStream::connect(home.home().join("run/agent.sock")).expect("connect");
    let request = "GET /v1/deployments/flood/logs?follow=true&tail=0&search=emit%200 HTTP/1.0\r\nHost: shipdeck\r\n\r\n";
    stream
        .write_all(request.as_bytes())
        .expect("send the follow request");
    std::thread::sleep(Duration::from_millis(300));
    std::fs::write(home.work().join("go"), b"").expect("start the flood");

    let last = format!("emit {count:09}");
    wait_for("the whole flood to be stored", DEADLINE, || {
        (!entries(&home, "flood", &["--search", &last, "--tail", "1"]).is_empty()).then_some(())
    });
    // Capture is not slowed by the follower: everything is stored.
    let stored = entries(&home, "flood", &["--search", "emit 0", "--limit", "100000"]);
    assert_eq!(
        stored.len(),
        count,
        "all lines are stored while a follower lags"
    );

    // Reading now, the follower gets what fit in its queue, with a marker
    // for the rest: together they account for every line.
    stream
        .set_read_timeout(Some(Duration::from_secs(2)))
        .expect("timeout");
    let mut received = 0u64;
    let mut missed = 0u64;
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    let started = Instant::now();
    while received + missed < count as u64 && started.elapsed() < DEADLINE {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let Some(start) = line.find('{') else {
            continue;
        };
        let Ok(item) = serde_json::from_str::<Value>(line[start..].trim()) else {
            continue;
        };
        if let Some(count) = item["missed"].as_u64() {
            missed += count;
        } else if item["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("emit "))
        {
            received += 1;
        }
    }
    assert!(
        missed > 0,
        "a marker reports the missed lines (received {received})"
    );
    assert_eq!(
        received + missed,
        count as u64,
        "received {received} + missed {missed}"
    );
}

#[test]
fn retention_caps_the_store() {
    let home = TestHome::new();
    let count = 30_000;
    let manifest = format!(
        "name: capped\nrun:\n  command: [\"{SAMPLE}\", \"--log-rate\", \"0\", \"--emit-lines\", \"{count}\"]\nports: [{{ containerPort: 8080 }}]\nlogs:\n  retention: {{ maxLines: 2000 }}\n"
    );
    let path = home.write("capped.yaml", &manifest);
    home.ok(&["deploy", "-f", path_arg(&path), "--wait"]);
    let last = format!("emit {count:09}");
    wait_for("the last line", DEADLINE, || {
        (!entries(&home, "capped", &["--search", &last, "--tail", "1"]).is_empty()).then_some(())
    });

    let kept = entries(&home, "capped", &["--limit", "100000"]);
    assert!(
        kept.len() <= 2000,
        "kept {} lines over a limit of 2000",
        kept.len()
    );
    assert!(
        kept.len() >= 1500,
        "retention keeps close to the limit: {}",
        kept.len()
    );
    let numbers: Vec<u64> = messages(&kept)
        .iter()
        .filter_map(|m| emitted_number(m))
        .collect();
    assert_eq!(numbers.last(), Some(&count), "the newest lines are kept");
    assert!(
        numbers.windows(2).all(|p| p[1] == p[0] + 1),
        "no gaps in what is kept"
    );

    let (status, body) = api_get(&home, "/v1/deployments/capped/log-stats");
    assert_eq!(status, 200, "{body}");
    let stats: Value = serde_json::from_str(&body).expect("JSON stats");
    assert!(
        stats["lines"].as_u64().is_some_and(|n| n <= 2000),
        "{stats:#}"
    );

    // The limit still applies after a restart of the agent, which reloads it.
    let pid = home.agent_pid().expect("agent pid");
    home.ok(&["agent", "stop"]);
    home.wait_agent_dead(pid);
    let after = entries(&home, "capped", &["--search", "emit ", "--limit", "100000"]);
    assert!(after.len() <= 2000 + 1, "after restart: {}", after.len());
    assert!(emitted_number(&messages(&after)[0]).is_some());
}

#[test]
fn bad_retention_is_rejected_with_the_field() {
    let home = TestHome::new();
    let path = home.write(
        "tiny.yaml",
        "name: tiny\nrun:\n  command: [sleep, \"100\"]\nlogs:\n  retention: { maxLines: 5 }\n",
    );
    let error = home.fails(&["deploy", "-f", path_arg(&path)]);
    assert!(error.contains("logs.retention.maxLines"), "{error}");
    assert!(error.contains("minimum of 100"), "{error}");
}

fn spawn_follow(home: &TestHome, args: &[&str]) -> Child {
    home.command(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start shipdeck logs -f")
}

fn now_nanos() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

/// Sends a GET to the agent's socket and returns the status and the body.
fn api_get(home: &TestHome, path: &str) -> (u16, String) {
    let mut stream = UnixStream::connect(home.home().join("run/agent.sock")).expect("connect");
    let request = format!("GET {path} HTTP/1.0\r\nHost: shipdeck\r\n\r\n");
    stream.write_all(request.as_bytes()).expect("send");
    let mut response = Vec::new();
    stream.read_to_end(&mut response).expect("read");
    parse_response(&response).expect("an HTTP response")
}

#[test]
fn secret_values_are_masked_before_storage() {
    let home = TestHome::new();
    let canary = random_canary();
    set_secret(&home, "canary", &canary);
    let script = concat!(
        "echo \"token=$CANARY end\"; echo \"err $CANARY\" >&2; ",
        "printf 'split \\033[31mcanary-\\033[0m%s\\n' \"$${CANARY#canary-}\"; ",
        "echo done; exec sleep 1000"
    );
    deploy_script(
        &home,
        "masked",
        script,
        "env:\n  CANARY: ${SECRET:canary}\n",
    );
    let all = wait_logged(&home, "masked", "done");
    let texts = messages(&all);
    assert!(texts.contains(&"token=**** end".to_owned()), "{texts:?}");
    assert!(texts.contains(&"err ****".to_owned()), "{texts:?}");
    assert!(
        texts.contains(&"split ****".to_owned()),
        "a value split by a colour code is masked in the visible text: {texts:?}"
    );

    // Stop the agent so that sled writes everything, then look at the bytes.
    let pid = home.agent_pid().expect("agent pid");
    home.ok(&["agent", "stop"]);
    home.wait_agent_dead(pid);
    let leaked = files_containing(home.home(), &canary);
    assert!(leaked.is_empty(), "the secret value is in {leaked:?}");
}

#[test]
fn flood_does_not_hold_up_other_replicas() {
    let home = TestHome::new();
    let ticker = "i=0; while true; do i=$((i+1)); echo \"tick $i\"; sleep 0.1; done";
    deploy_script(&home, "quiet", ticker, "");
    wait_logged(&home, "quiet", "tick 2");

    let count = 300_000;
    let manifest = format!(
        "name: loud\nrun:\n  command: [\"{SAMPLE}\", \"--log-rate\", \"0\", \"--emit-lines\", \"{count}\", \"--emit-varied\"]\nports: [{{ containerPort: 8080 }}]\n"
    );
    let path = home.write("loud.yaml", &manifest);
    home.ok(&["deploy", "-f", path_arg(&path)]);

    // While the flood is captured, the quiet replica's new lines keep being
    // stored: its newest tick moves on.
    let before = newest_tick(&home);
    wait_for(
        "the quiet replica's ticks to move on during the flood",
        DEADLINE,
        || (newest_tick(&home) >= before + 5).then_some(()),
    );
    let last = format!("emit {count:09}");
    wait_for("the whole flood", DEADLINE, || {
        (!entries(&home, "loud", &["--search", &last, "--tail", "1"]).is_empty()).then_some(())
    });
    let stored = entries(
        &home,
        "loud",
        &[
            "--search", "emit 0", "--limit", "100000", "--offset", "200000",
        ],
    );
    assert_eq!(
        stored.len(),
        100_000,
        "the last 100,000 flood lines are stored"
    );
}

fn newest_tick(home: &TestHome) -> u64 {
    let newest = entries(home, "quiet", &["--search", "tick", "--tail", "1"]);
    let message = newest
        .first()
        .and_then(|e| e["message"].as_str())
        .unwrap_or("tick 0");
    message.trim_start_matches("tick ").parse().unwrap_or(0)
}
