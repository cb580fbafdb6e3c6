use std::collections::BTreeMap;
use std::path::Path;

use time::macros::datetime;

use crate::manifest::{BackendKind, Manifest, Resources, RestartPolicy, Run, StopSignal, Strategy};
use crate::model::{
    Deployment, DeploymentKey, DeploymentStatus, EventOutcome, Revision, RevisionStatus,
};

use super::logs;
use super::schema::{self, Migration};
use super::{NewEvent, Store, StoreError, CURRENT_VERSION, DEPLOYMENTS, REVISIONS};

fn manifest(name: &str, environment: &str) -> Manifest {
    Manifest {
        name: name.to_owned(),
        version: "1.0.0".to_owned(),
        environment: environment.to_owned(),
        backend: BackendKind::Process,
        run: Some(Run {
            command: vec!["./server".to_owned()],
            workdir: None,
        }),
        image: None,
        source: None,
        build: None,
        replicas: 2,
        resources: Resources::default(),
        ports: Vec::new(),
        volumes: Vec::new(),
        env: BTreeMap::new(),
        template: None,
        health_check: None,
        liveness_check: None,
        stop_signal: StopSignal::Term,
        termination_grace_period_seconds: 30,
        strategy: Strategy::default(),
        restart_policy: RestartPolicy::default(),
        logs: None,
        monitoring: None,
        auto_scaling: None,
        kubernetes: None,
        tags: Vec::new(),
    }
}

fn deployment(id: &str, name: &str, environment: &str) -> Deployment {
    Deployment {
        id: id.to_owned(),
        name: name.to_owned(),
        environment: environment.to_owned(),
        backend: BackendKind::Process,
        status: DeploymentStatus::Deployed,
        status_reason: None,
        version: "1.0.0".to_owned(),
        revision: 1,
        last_healthy_revision: Some(1),
        desired_replicas: 2,
        tags: vec!["web".to_owned()],
        created_at: datetime!(2026-01-02 03:04:05 UTC),
        updated_at: datetime!(2026-01-02 03:04:06 UTC),
    }
}

fn revision(id: &str, number: u64) -> Revision {
    Revision {
        deployment_id: id.to_owned(),
        revision: number,
        version: format!("1.0.{number}"),
        status: RevisionStatus::Deployed,
        reason: "deploy".to_owned(),
        created_at: datetime!(2026-01-02 03:04:05 UTC),
        spec: manifest("web", "production"),
        submitted: None,
    }
}

fn new_event(deployment_id: Option<&str>, action: &str) -> NewEvent {
    NewEvent {
        time: datetime!(2026-01-02 03:04:05 UTC),
        deployment: None,
        deployment_id: deployment_id.map(str::to_owned),
        user: "alice".to_owned(),
        action: action.to_owned(),
        outcome: EventOutcome::Ok,
        message: format!("{action} done"),
    }
}

fn open(dir: &Path) -> Store {
    Store::open_when_unlocked(dir)
        .unwrap_or_else(|error| panic!("open the store at {}: {error}", dir.display()))
}

fn assert_send<T: Send>(_: &T) {}

#[test]
fn store_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Store>();

    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    assert_send(&store.flush_async());
}

#[test]
fn open_writes_current_version() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());

    assert_eq!(
        schema::read_version(&store.db).unwrap(),
        Some(CURRENT_VERSION)
    );
    assert_eq!(store.path(), dir.path());
}

#[test]
fn flushed_data_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let web = deployment("d1", "web", "production");
    {
        let store = open(dir.path());
        store
            .put_deployment_and_revision(&web, &revision("d1", 1))
            .unwrap();
        store.append_event(new_event(Some("d1"), "deploy")).unwrap();
        store.flush().unwrap();
    }

    let store = open(dir.path());
    assert_eq!(store.get_deployment("d1").unwrap(), Some(web.clone()));
    assert_eq!(
        store.find_deployment(&web.key()).unwrap(),
        Some(web.clone())
    );
    assert_eq!(store.latest_revision_number("d1").unwrap(), Some(1));
    assert_eq!(store.events(Some("d1"), 10).unwrap().records.len(), 1);
}

#[tokio::test]
async fn flush_async_completes() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store
        .put_deployment(&deployment("d1", "web", "production"))
        .unwrap();

    store.flush_async().await.unwrap();
}

#[test]
fn second_open_is_locked() {
    let dir = tempfile::tempdir().unwrap();
    let _first = open(dir.path());

    // sled 0.34 takes an flock on `db`, which is held per open file
    // description, so a second open in the same process fails like one
    // from another process.
    let error = Store::open(dir.path())
        .err()
        .expect("second open must fail");

    assert!(matches!(&error, StoreError::Locked { path, .. } if path == dir.path()));
    let message = error.to_string();
    assert!(
        message.contains(&dir.path().display().to_string()),
        "{message}"
    );
    assert!(message.contains("shipdeck agent stop"), "{message}");
}

/// Opens the sled database under the store, retrying as [`open`] does.
fn open_raw(dir: &Path) -> sled::Db {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        match sled::open(dir) {
            Ok(db) => return db,
            Err(_) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Err(error) => panic!("open sled at {}: {error}", dir.display()),
        }
    }
}

/// Reopens the store where opening must fail for a reason other than the
/// lock that the previous handle's flusher may still hold.
fn reopen_error(dir: &Path) -> StoreError {
    match Store::open_when_unlocked(dir) {
        Err(error) => error,
        Ok(_) => panic!(
            "opening the store at {} succeeded but must fail",
            dir.display()
        ),
    }
}

#[test]
fn open_after_drop_is_not_locked() {
    let dir = tempfile::tempdir().unwrap();
    drop(open(dir.path()));

    open(dir.path());
}

#[test]
fn newer_schema_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(dir.path());
        schema::write_version(&store.db, CURRENT_VERSION + 1).unwrap();
        store.flush().unwrap();
    }

    let error = reopen_error(dir.path());

    assert!(matches!(
        error,
        StoreError::SchemaTooNew { found, supported, .. }
            if found == CURRENT_VERSION + 1 && supported == CURRENT_VERSION
    ));
    let message = error.to_string();
    assert!(message.contains("version 2"), "{message}");
    assert!(message.contains("version 1"), "{message}");
    assert!(message.contains("upgrade shipdeck"), "{message}");
}

fn mark_two(db: &sled::Db) -> Result<(), StoreError> {
    db.insert("migrated_to_2", "yes")
        .map_err(super::storage("default"))?;
    Ok(())
}

fn mark_three(db: &sled::Db) -> Result<(), StoreError> {
    db.insert("migrated_to_3", "yes")
        .map_err(super::storage("default"))?;
    Ok(())
}

#[test]
fn migrations_run_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    // Listed out of order on purpose: steps are found by their `from` version.
    let steps = [
        Migration {
            from: 2,
            description: "mark three",
            apply: mark_three,
        },
        Migration {
            from: 1,
            description: "mark two",
            apply: mark_two,
        },
    ];

    schema::migrate(&store.db, dir.path(), 1, 3, &steps).unwrap();

    assert_eq!(schema::read_version(&store.db).unwrap(), Some(3));
    assert!(store.db.get("migrated_to_2").unwrap().is_some());
    assert!(store.db.get("migrated_to_3").unwrap().is_some());
}

#[test]
fn missing_migration_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let steps = [Migration {
        from: 1,
        description: "mark two",
        apply: mark_two,
    }];

    let error = schema::migrate(&store.db, dir.path(), 1, 3, &steps).unwrap_err();

    assert!(matches!(
        error,
        StoreError::MissingMigration {
            found: 2,
            supported: 3,
            ..
        }
    ));
    // The step that succeeded is recorded, so a retry starts from version 2.
    assert_eq!(schema::read_version(&store.db).unwrap(), Some(2));
}

#[test]
fn find_by_key() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let web = deployment("d1", "web", "production");
    store.put_deployment(&web).unwrap();

    let found = store.find_deployment(&DeploymentKey::new("web", "production"));
    let missing = store.find_deployment(&DeploymentKey::new("web", "staging"));

    assert_eq!(found.unwrap(), Some(web));
    assert_eq!(missing.unwrap(), None);
}

#[test]
fn same_name_in_two_environments() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let production = deployment("d1", "web", "production");
    let staging = deployment("d2", "web", "staging");
    let longer_name = deployment("d3", "web2", "production");
    for record in [&production, &staging, &longer_name] {
        store.put_deployment(record).unwrap();
    }

    let named = store.deployments_named("web").unwrap();

    assert!(named.unreadable.is_empty());
    assert_eq!(named.records, vec![production.clone(), staging.clone()]);
    assert_eq!(
        store.find_deployment(&staging.key()).unwrap(),
        Some(staging)
    );
    assert!(store.deployments_named("we").unwrap().records.is_empty());
}

#[test]
fn list_orders_by_name_then_environment() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let records = [
        deployment("a", "web", "staging"),
        deployment("b", "api", "production"),
        deployment("c", "web", "production"),
    ];
    for record in &records {
        store.put_deployment(record).unwrap();
    }

    let listed = store.list_deployments().unwrap();

    let keys: Vec<_> = listed.records.iter().map(|d| d.id.as_str()).collect();
    assert_eq!(keys, ["b", "c", "a"]);
}

#[test]
fn key_taken_by_other_id() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store
        .put_deployment(&deployment("d1", "web", "production"))
        .unwrap();

    let error = store
        .put_deployment(&deployment("d2", "web", "production"))
        .unwrap_err();

    assert!(matches!(error, StoreError::KeyTaken { ref existing_id, .. } if existing_id == "d1"));
    assert_eq!(store.get_deployment("d2").unwrap(), None);
}

#[test]
fn changed_environment_moves_index() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store
        .put_deployment(&deployment("d1", "web", "staging"))
        .unwrap();

    let moved = deployment("d1", "web", "production");
    store.put_deployment(&moved).unwrap();

    let old_key = DeploymentKey::new("web", "staging");
    assert_eq!(store.find_deployment(&old_key).unwrap(), None);
    assert_eq!(store.find_deployment(&moved.key()).unwrap(), Some(moved));
}

#[test]
fn nul_in_name_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());

    let error = store
        .put_deployment(&deployment("d1", "we\0b", "production"))
        .unwrap_err();

    assert!(matches!(
        error,
        StoreError::InvalidKey {
            field: "deployment name",
            ..
        }
    ));
}

#[test]
fn delete_keeps_revisions_and_events() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let web = deployment("d1", "web", "production");
    store
        .put_deployment_and_revision(&web, &revision("d1", 1))
        .unwrap();
    store.append_event(new_event(Some("d1"), "deploy")).unwrap();

    let removed = store.delete_deployment("d1").unwrap();

    assert_eq!(removed, Some(web.clone()));
    assert_eq!(store.get_deployment("d1").unwrap(), None);
    assert_eq!(store.find_deployment(&web.key()).unwrap(), None);
    assert_eq!(store.history("d1").unwrap().records.len(), 1);
    assert_eq!(store.events(Some("d1"), 10).unwrap().records.len(), 1);
    assert_eq!(store.delete_deployment("d1").unwrap(), None);
}

#[test]
fn mismatched_revision_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());

    let error = store
        .put_deployment_and_revision(&deployment("d1", "web", "production"), &revision("d2", 1))
        .unwrap_err();

    assert!(matches!(error, StoreError::RevisionMismatch { .. }));
    assert_eq!(store.get_deployment("d1").unwrap(), None);
}

#[test]
fn revisions_ordered_past_byte_boundaries() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let numbers = [65_536, 2, 256, 1, 65_535, 255, 1 << 32, 257, 65_537];
    for number in numbers {
        store.put_revision(&revision("d1", number)).unwrap();
    }
    // A deployment whose id extends "d1" must not appear in its scans.
    store.put_revision(&revision("d10", 3)).unwrap();

    let history = store.history("d1").unwrap();

    let listed: Vec<u64> = history.records.iter().map(|row| row.revision).collect();
    let mut expected = numbers.to_vec();
    expected.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(listed, expected);
    assert_eq!(store.latest_revision_number("d1").unwrap(), Some(1 << 32));
    assert_eq!(store.latest_revision_number("d2").unwrap(), None);
}

#[test]
fn revision_status_update_replaces() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let mut first = revision("d1", 1);
    store.put_revision(&first).unwrap();

    first.status = RevisionStatus::Failed;
    first.reason = "deploy; readiness timed out".to_owned();
    store.put_revision(&first).unwrap();

    let history = store.history("d1").unwrap();
    assert_eq!(history.records.len(), 1);
    assert_eq!(history.records[0].status, RevisionStatus::Failed);
    assert_eq!(history.records[0].reason, "deploy; readiness timed out");
}

#[test]
fn revision_spec_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    for number in [1, 2, 3] {
        store.put_revision(&revision("d1", number)).unwrap();
    }

    assert_eq!(
        store.get_revision("d1", 2).unwrap(),
        Some(revision("d1", 2))
    );
    assert_eq!(
        store.latest_revision("d1").unwrap(),
        Some(revision("d1", 3))
    );
    let all = store.revisions("d1").unwrap();
    assert!(all.unreadable.is_empty());
    assert_eq!(
        all.records,
        vec![revision("d1", 1), revision("d1", 2), revision("d1", 3)]
    );
    assert_eq!(store.get_revision("d1", 4).unwrap(), None);
}

#[test]
fn event_seq_monotonic_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let mut seqs = Vec::new();
    {
        let store = open(dir.path());
        for action in ["deploy", "scale", "restart"] {
            seqs.push(store.append_event(new_event(None, action)).unwrap().seq);
        }
        store.flush().unwrap();
    }

    let store = open(dir.path());
    for action in ["rollback", "undeploy"] {
        seqs.push(store.append_event(new_event(None, action)).unwrap().seq);
    }

    assert_eq!(seqs, [1, 2, 3, 4, 5]);
    let listed: Vec<u64> = store
        .events(None, 10)
        .unwrap()
        .records
        .iter()
        .map(|e| e.seq)
        .collect();
    assert_eq!(listed, [1, 2, 3, 4, 5]);
}

#[test]
fn events_limit_keeps_newest() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    for action in ["a", "b", "c", "d"] {
        store.append_event(new_event(Some("d1"), action)).unwrap();
        store.append_event(new_event(Some("d2"), action)).unwrap();
    }
    store.append_event(new_event(None, "agent start")).unwrap();

    let all = store.events(None, 3).unwrap();
    let d1 = store.events(Some("d1"), 2).unwrap();

    let all_actions: Vec<_> = all.records.iter().map(|e| e.action.as_str()).collect();
    let d1_seqs: Vec<u64> = d1.records.iter().map(|e| e.seq).collect();
    assert_eq!(all_actions, ["d", "d", "agent start"]);
    assert_eq!(d1_seqs, [5, 7]);
}

#[test]
fn event_indexed_by_key_lookup() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let web = deployment("d1", "web", "production");
    store.put_deployment(&web).unwrap();

    let mut event = new_event(None, "restart");
    event.deployment = Some(web.key());
    let stored = store.append_event(event).unwrap();

    let listed = store.events(Some("d1"), 10).unwrap();
    assert_eq!(listed.records, vec![stored]);
}

#[test]
fn corrupt_value_names_tree_and_key() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(dir.path());
        store
            .put_deployment(&deployment("good", "web", "production"))
            .unwrap();
        store
            .put_deployment(&deployment("bad", "api", "production"))
            .unwrap();
        store.put_revision(&revision("good", 7)).unwrap();
        store.flush().unwrap();
    }
    {
        let db = open_raw(dir.path());
        db.open_tree(DEPLOYMENTS)
            .unwrap()
            .insert("bad", "{not json")
            .unwrap();
        db.open_tree(REVISIONS)
            .unwrap()
            .insert(super::keys::numbered("good", 7), "[]")
            .unwrap();
        db.flush().unwrap();
    }

    let store = open(dir.path());

    let error = store.get_deployment("bad").unwrap_err();
    assert!(matches!(&error, StoreError::Decode { tree: "deployments", key, .. } if key == "bad"));
    assert!(
        error.to_string().contains("`deployments` at key bad"),
        "{error}"
    );

    let good = store.get_deployment("good").unwrap();
    assert_eq!(good.map(|d| d.id), Some("good".to_owned()));

    let listed = store.list_deployments().unwrap();
    assert_eq!(listed.records.len(), 1);
    assert_eq!(listed.unreadable.len(), 1);

    let history = store.history("good").unwrap();
    let revision_error = history.unreadable.first().expect("one unreadable revision");
    assert!(
        matches!(revision_error, StoreError::Decode { tree: "revisions", key, .. } if key == "good/7")
    );
    assert_eq!(store.latest_revision_number("good").unwrap(), Some(7));
}

fn segment_files(dir: &Path, deployment_id: &str) -> usize {
    std::fs::read_dir(dir.join(logs::SEGMENTS_DIR).join(deployment_id))
        .map(|entries| entries.count())
        .unwrap_or(0)
}

#[test]
fn log_blocks_round_trip_in_key_order() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    for first_id in [10u64, 20, 30] {
        let block = vec![first_id as u8; 100];
        store
            .put_log_block("d1", first_id, first_id + 5, 6, &block)
            .unwrap();
    }
    store.put_log_block("d2", 15, 15, 1, b"other").unwrap();

    let oldest_first: Vec<(u64, Vec<u8>)> = store
        .log_blocks("d1", u64::MAX, false)
        .map(|item| item.map(|(info, block)| (info.first_id, block)).unwrap())
        .collect();
    assert_eq!(
        oldest_first,
        vec![
            (10, vec![10; 100]),
            (20, vec![20; 100]),
            (30, vec![30; 100])
        ]
    );
    let newest_first: Vec<u64> = store
        .log_blocks("d1", 30, true)
        .map(|item| item.unwrap().0.first_id)
        .collect();
    assert_eq!(newest_first, vec![20, 10], "blocks before 30, newest first");

    let index: Vec<(String, u64, u64, u32)> = store
        .all_log_blocks()
        .map(|item| {
            item.map(|(id, info)| (id, info.first_id, info.last_id, info.count))
                .unwrap()
        })
        .collect();
    assert_eq!(index[0], ("d1".to_owned(), 10, 15, 6));
    assert_eq!(index.len(), 4);
}

#[test]
fn removing_log_blocks_frees_whole_segments() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let block = vec![7u8; 1 << 20];
    for first_id in 1..=20u64 {
        store
            .put_log_block("d", first_id, first_id, 1, &block)
            .unwrap();
    }
    let before = segment_files(dir.path(), "d");
    assert!(
        before >= 2,
        "20 MiB of blocks fill several segments: {before}"
    );

    store
        .remove_log_blocks("d", &(1..=15).collect::<Vec<u64>>())
        .unwrap();
    let after = segment_files(dir.path(), "d");
    assert!(after < before, "segments before {before}, after {after}");
    let kept: Vec<u64> = store
        .log_blocks("d", u64::MAX, false)
        .map(|item| item.unwrap().0.first_id)
        .collect();
    assert_eq!(
        kept,
        (16..=20).collect::<Vec<u64>>(),
        "the newer blocks stay readable"
    );

    store
        .remove_log_blocks("d", &(16..=20).collect::<Vec<u64>>())
        .unwrap();
    assert_eq!(
        segment_files(dir.path(), "d"),
        1,
        "the segment in use stays"
    );
    store.put_log_block("d", 21, 21, 1, b"after").unwrap();
    let last: Vec<Vec<u8>> = store
        .log_blocks("d", u64::MAX, false)
        .map(|item| item.unwrap().1)
        .collect();
    assert_eq!(last, vec![b"after".to_vec()]);
}

#[test]
fn log_blocks_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(dir.path());
        store.put_log_block("d", 5, 9, 3, b"persisted").unwrap();
        store.flush().unwrap();
    }
    let store = open(dir.path());
    let blocks: Vec<Vec<u8>> = store
        .log_blocks("d", u64::MAX, true)
        .map(|item| item.unwrap().1)
        .collect();
    assert_eq!(blocks, vec![b"persisted".to_vec()]);
}

#[test]
fn metric_points_range_by_series_and_resolution() {
    use super::{MetricPoint, Resolution};

    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let points: Vec<MetricPoint> = (0..10)
        .map(|i| MetricPoint::sample(i * 1_000, i as f64))
        .collect();
    store
        .put_metric_points("d", "cpu_usage", Resolution::Raw, &points)
        .unwrap();
    store
        .put_metric_points("d", "cpu_usage_other", Resolution::Raw, &points[..2])
        .unwrap();
    store
        .put_metric_points(
            "d",
            "cpu_usage",
            Resolution::Minute,
            &[MetricPoint::sample(0, 4.5)],
        )
        .unwrap();

    let window = store
        .metric_points("d", "cpu_usage", Resolution::Raw, 3_000, 6_000)
        .unwrap();
    let times: Vec<u64> = window.iter().map(|point| point.time_ms).collect();
    assert_eq!(times, vec![3_000, 4_000, 5_000], "the window is half-open");
    assert_eq!(window[0], MetricPoint::sample(3_000, 3.0));

    let minute = store
        .metric_points("d", "cpu_usage", Resolution::Minute, 0, u64::MAX)
        .unwrap();
    assert_eq!(minute.len(), 1, "resolutions are separate series");

    let removed = store
        .remove_metric_points_before("d", "cpu_usage", Resolution::Raw, 8_000)
        .unwrap();
    assert_eq!(removed, 8);
    let left = store
        .metric_points("d", "cpu_usage", Resolution::Raw, 0, u64::MAX)
        .unwrap();
    assert_eq!(left.len(), 2);
    let other = store
        .metric_points("d", "cpu_usage_other", Resolution::Raw, 0, u64::MAX)
        .unwrap();
    assert_eq!(
        other.len(),
        2,
        "a series whose name extends another is untouched"
    );
}

#[test]
fn metric_series_lists_each_name_once_per_deployment() {
    use super::{MetricPoint, Resolution};

    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let points: Vec<MetricPoint> = (0..50)
        .map(|i| MetricPoint::sample(i * 1_000, i as f64))
        .collect();
    for series in ["cpu_usage", "cpu_usage_other", "app{code=\"500\"}", "b"] {
        store
            .put_metric_points("d", series, Resolution::Raw, &points)
            .unwrap();
    }
    store
        .put_metric_points("d", "b", Resolution::Minute, &points[..1])
        .unwrap();
    store
        .put_metric_points("d2", "other", Resolution::Raw, &points[..1])
        .unwrap();

    let names = store.metric_series("d").unwrap();
    assert_eq!(
        names,
        vec!["app{code=\"500\"}", "b", "cpu_usage", "cpu_usage_other"]
    );
    assert_eq!(store.metric_series("d2").unwrap(), vec!["other"]);
    assert!(store.metric_series("none").unwrap().is_empty());
}

fn alert_rule(name: &str) -> crate::manifest::AlertRuleSpec {
    crate::manifest::AlertRuleSpec {
        name: name.to_owned(),
        metric: "cpu_percentage".to_owned(),
        condition: crate::manifest::AlertCondition::Gt,
        threshold: 80.0,
        for_duration: None,
        repeat_interval: None,
        severity: Some("high".to_owned()),
        notifications: vec!["ops".to_owned()],
    }
}

#[test]
fn alert_rules_are_kept_per_deployment() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(dir.path());
        store.put_alert_rule("d1", &alert_rule("busy")).unwrap();
        store.put_alert_rule("d1", &alert_rule("alive")).unwrap();
        store.put_alert_rule("d10", &alert_rule("other")).unwrap();
        store.put_alert_state("d1", "busy", &"firing").unwrap();
        store.flush().unwrap();
    }

    let store = open(dir.path());
    let names: Vec<String> = store
        .alert_rules("d1")
        .unwrap()
        .records
        .into_iter()
        .map(|rule| rule.name)
        .collect();
    assert_eq!(names, ["alive", "busy"], "d10's rule is not d1's");
    assert_eq!(
        store.alert_rules("d1").unwrap().records[1],
        alert_rule("busy")
    );

    assert!(store.remove_alert_rule("d1", "busy").unwrap());
    assert!(!store.remove_alert_rule("d1", "busy").unwrap());
    let states = store.alert_states::<String>().unwrap();
    assert!(states.records.is_empty(), "the rule's state went with it");
    assert!(store.put_alert_rule("d\0", &alert_rule("x")).is_err());
}

#[test]
fn alert_states_and_silences_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    store.put_alert_state("d1", "busy", &"pending").unwrap();
    store.put_alert_state("d1", "busy", &"firing").unwrap();
    store.put_alert_state("d2", "alive", &"resolved").unwrap();

    let states = store.alert_states::<String>().unwrap();
    let found: Vec<(String, String, String)> = states
        .records
        .into_iter()
        .map(|stored| (stored.deployment_id, stored.rule, stored.state))
        .collect();
    assert_eq!(
        found,
        [
            ("d1".to_owned(), "busy".to_owned(), "firing".to_owned()),
            ("d2".to_owned(), "alive".to_owned(), "resolved".to_owned()),
        ]
    );
    store.remove_alert_state("d1", "busy").unwrap();
    assert_eq!(store.alert_states::<String>().unwrap().records.len(), 1);

    store.put_silences("d1", &["a", "b"]).unwrap();
    let silences = store.silences::<String>().unwrap().records;
    assert_eq!(
        silences,
        [("d1".to_owned(), vec!["a".to_owned(), "b".to_owned()])]
    );
    store.put_silences::<String>("d1", &[]).unwrap();
    assert!(store.silences::<String>().unwrap().records.is_empty());
}

fn decision_at(at_ms: u64, desired: u32) -> crate::autoscale::Decision {
    crate::autoscale::Decision {
        at_ms,
        current_replicas: 1,
        min_replicas: 1,
        max_replicas: 3,
        metrics: Vec::new(),
        recommendation: Some(desired),
        stabilized: desired,
        limit: crate::autoscale::LimitReason::DesiredWithinRange,
        limiting_rule: None,
        desired,
        reason: format!("decision at {at_ms}"),
        conditions: Vec::new(),
    }
}

#[test]
fn autoscale_decisions_newest_first_and_trimmed() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let kept = crate::store::DECISIONS_KEPT as u64;
    for at in 0..kept + 5 {
        store
            .put_autoscale_decision("d1", &decision_at(at, 1))
            .unwrap();
    }
    store
        .put_autoscale_decision("d2", &decision_at(7, 2))
        .unwrap();

    let newest = store.autoscale_decisions("d1", 3).unwrap();
    let times: Vec<u64> = newest.iter().map(|decision| decision.at_ms).collect();
    assert_eq!(times, vec![kept + 4, kept + 3, kept + 2]);

    let all = store.autoscale_decisions("d1", usize::MAX).unwrap();
    assert_eq!(all.len() as u64, kept, "the oldest beyond the cap are gone");
    assert_eq!(all.last().map(|decision| decision.at_ms), Some(5));

    let other = store.autoscale_decisions("d2", 10).unwrap();
    assert_eq!(other.len(), 1, "another deployment keeps its own");
}
