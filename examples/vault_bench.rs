//! Times the two costs of the secret vault that operators feel: unlocking
//! it with a passphrase (Argon2id with the vault's real parameters) and
//! rendering a deployment's `env` with 50 secret references once it is
//! unlocked. `benches/vault_bench.py` runs it beside peer KDF
//! implementations and prints the table for BENCHMARKS.md.
//!
//! The render step does what a deploy and a replica start do: interpolate
//! `${ENVIRONMENT}` and variables in every value, check the references,
//! look for missing secrets, then decrypt each secret into the environment.
//!
//! Usage: `vault_bench [--unlock-runs N] [--render-runs N]`; prints one
//! line per measurement with the median, minimum and maximum.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use shipdeck::config::render::secret_references;
use shipdeck::config::{check_spec, interpolate, render_env, KeySource, SecretValue, Variables};
use shipdeck::config::{Vault, VaultError};
use shipdeck::store::Store;

const SECRETS: usize = 50;
const PASSPHRASE: &str = "benchmark passphrase, not a real one";

fn main() {
    let (unlock_runs, render_runs) = match parse_args() {
        Ok(runs) => runs,
        Err(message) => {
            eprintln!("vault_bench: {message}");
            std::process::exit(2);
        }
    };
    if let Err(error) = run(unlock_runs, render_runs) {
        eprintln!("vault_bench: {error}");
        std::process::exit(1);
    }
}

fn parse_args() -> Result<(usize, usize), String> {
    let mut unlock_runs = 7;
    let mut render_runs = 200;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let target = match flag.as_str() {
            "--unlock-runs" => &mut unlock_runs,
            "--render-runs" => &mut render_runs,
            other => return Err(format!("unknown argument {other:?}")),
        };
        let value = args.next().ok_or(format!("{flag} needs a number"))?;
        *target = value
            .parse()
            .ok()
            .filter(|runs| *runs > 0)
            .ok_or(format!("{flag} {value:?} is not a positive whole number"))?;
    }
    Ok((unlock_runs, render_runs))
}

fn passphrase() -> KeySource {
    KeySource::Passphrase {
        path: "benchmark".into(),
        passphrase: zeroize::Zeroizing::new(PASSPHRASE.to_owned()),
    }
}

fn run(unlock_runs: usize, render_runs: usize) -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let store = Store::open(&dir.path().join("db"))?;
    let vault = Vault::open(store.clone(), passphrase())?;
    for index in 0..SECRETS {
        let value = SecretValue::new(format!("value-{index}-{}", "x".repeat(40)));
        vault.set(&format!("secret_{index}"), &value)?;
    }
    drop(vault);

    let mut unlock = Vec::with_capacity(unlock_runs);
    let mut unlocked = None;
    for _ in 0..unlock_runs {
        let started = Instant::now();
        let vault = Vault::open(store.clone(), passphrase())?;
        unlock.push(started.elapsed());
        unlocked = Some(vault);
    }
    report(
        &format!(
            "unlock with a passphrase (Argon2id, {} MiB, {} passes)",
            shipdeck::config::keys::KDF_MEMORY_KIB / 1024,
            shipdeck::config::keys::KDF_ITERATIONS
        ),
        &mut unlock,
    );

    let vault = unlocked.ok_or("no unlock run")?;
    let spec = spec_with_secrets()?;
    let mut render = Vec::with_capacity(render_runs);
    for _ in 0..render_runs {
        let started = Instant::now();
        let rendered = render_once(&spec, &vault)?;
        render.push(started.elapsed());
        assert_eq!(rendered, SECRETS + 1, "every variable rendered");
    }
    report(
        &format!("render a deployment with {SECRETS} secrets after unlock"),
        &mut render,
    );
    Ok(())
}

fn spec_with_secrets() -> Result<shipdeck::manifest::Manifest, Box<dyn std::error::Error>> {
    let mut text = String::from("name: bench\nrun:\n  command: [app]\nenv:\n");
    text.push_str("  WHERE: ${ENVIRONMENT}-${REGION}\n");
    for index in 0..SECRETS {
        text.push_str(&format!(
            "  SECRET_{index}: \"prefix-${{SECRET:secret_{index}}}\"\n"
        ));
    }
    Ok(shipdeck::manifest::parse(&text, "bench", &[])?)
}

/// Runs the deploy-time and launch-time rendering of `spec` and returns the
/// number of variables rendered.
fn render_once(spec: &shipdeck::manifest::Manifest, vault: &Vault) -> Result<usize, VaultError> {
    let variables = Variables {
        environment: "staging".to_owned(),
        vars: BTreeMap::from([("REGION".to_owned(), "eu".to_owned())]),
    };
    let mut stored = spec.clone();
    for (key, value) in stored.env.iter_mut() {
        *value = interpolate(&format!("env.{key}"), value, &variables).map_err(render_error)?;
    }
    let names = check_spec(&stored).map_err(render_error)?;
    let missing = vault.missing(&names)?;
    assert!(missing.is_empty(), "missing secrets {missing:?}");
    let references = secret_references(&stored.env).map_err(render_error)?;
    assert_eq!(references.len(), SECRETS);
    let rendered = render_env(&stored.env, vault).map_err(render_error)?;
    Ok(rendered.env.len())
}

fn render_error(error: shipdeck::config::RenderError) -> VaultError {
    match error {
        shipdeck::config::RenderError::Vault(error) => error,
        other => panic!("the benchmark spec failed to render: {other}"),
    }
}

fn report(what: &str, times: &mut [Duration]) {
    times.sort_unstable();
    let millis = |duration: Duration| duration.as_secs_f64() * 1000.0;
    let median = times[times.len() / 2];
    println!(
        "{what}: median {:.3} ms (min {:.3}, max {:.3}, {} runs)",
        millis(median),
        millis(times[0]),
        millis(times[times.len() - 1]),
        times.len()
    );
}
