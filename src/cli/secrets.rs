//! `shipdeck secrets`: values go in through standard input and come out
//! only with `get --reveal`, so they never appear in the process list or
//! the shell history.

use std::io::{IsTerminal, Read};

use zeroize::Zeroizing;

use super::commands::{client, render, rfc3339};
use super::output::Table;
use super::{CliError, RotateKeyArgs, SecretGetArgs, SecretNameArgs, SecretsAction};
use crate::api::client::encode;
use crate::api::wire::{RevealedSecret, RotateKeyBody, SecretBody};
use crate::config::keys::trim_one_newline;
use crate::config::secret::{check_name, check_value};
use crate::config::{Rotation, SecretInfo, SecretValue, MAX_VALUE_LEN};
use crate::home::Home;

pub async fn run(home: &Home, action: SecretsAction) -> Result<String, CliError> {
    match action {
        SecretsAction::Set(args) => set(home, args).await,
        SecretsAction::Ls(format) => list(home, format.format).await,
        SecretsAction::Get(args) => get(home, args).await,
        SecretsAction::Rm(args) => remove(home, args).await,
        SecretsAction::RotateKey(args) => rotate_key(home, args).await,
    }
}

fn rule_error(error: impl std::fmt::Display) -> CliError {
    CliError::Message(error.to_string())
}

fn secret_path(name: &str) -> String {
    format!("/v1/secrets/{}", encode(name))
}

async fn set(home: &Home, args: SecretNameArgs) -> Result<String, CliError> {
    check_name(&args.name).map_err(rule_error)?;
    let description = format!("the value of secret {:?}", args.name);
    let value = read_stdin(&description)?;
    check_value(&args.name, &value).map_err(rule_error)?;

    let client = client(home).await?;
    let body = SecretBody { value };
    let info: SecretInfo = client.put(&secret_path(&args.name), &body).await?;
    Ok(format!("secret {} set\n", info.name))
}

async fn list(home: &Home, format: super::output::Format) -> Result<String, CliError> {
    let client = client(home).await?;
    let secrets: Vec<SecretInfo> = client.get("/v1/secrets").await?;
    render(&secrets, format, |secrets| {
        let mut table = Table::new(vec!["NAME", "UPDATED"]);
        for secret in secrets {
            table.row(vec![secret.name.clone(), rfc3339(secret.updated_at)]);
        }
        table.render()
    })
}

async fn get(home: &Home, args: SecretGetArgs) -> Result<String, CliError> {
    check_name(&args.name).map_err(rule_error)?;
    if !args.reveal {
        return Err(CliError::Message(format!(
            "`secrets get` prints the value of secret {:?}; add --reveal to print it \
             (list names with `shipdeck secrets ls`)",
            args.name
        )));
    }
    let client = client(home).await?;
    let secret: RevealedSecret = client.get(&secret_path(&args.name)).await?;
    // The value is printed as stored, without terminal sanitising, so that
    // `--reveal > file` reproduces it exactly.
    render(&secret, args.format.format, |secret| {
        format!("{}\n", secret.value.expose())
    })
}

async fn remove(home: &Home, args: SecretNameArgs) -> Result<String, CliError> {
    check_name(&args.name).map_err(rule_error)?;
    let client = client(home).await?;
    client.delete(&secret_path(&args.name)).await?;
    Ok(format!("secret {} removed\n", args.name))
}

async fn rotate_key(home: &Home, args: RotateKeyArgs) -> Result<String, CliError> {
    let replacement = if args.stdin {
        Some(read_stdin("the new master key or passphrase")?)
    } else {
        None
    };
    let client = client(home).await?;
    let body = RotateKeyBody { replacement };
    let rotation: Rotation = client.post("/v1/vault/rotate-key", &body).await?;
    let mut out = format!(
        "master key rotated: {} secrets encrypted again under key id {}\n",
        rotation.secrets, rotation.key_id
    );
    if let Some(notice) = rotation.notice {
        out.push_str(&format!("next: {notice}\n"));
    }
    Ok(out)
}

/// Reads a value from standard input into memory that is zeroed after use,
/// dropping one trailing newline. Reading stops after the size limit, so a
/// huge input is rejected without being held in memory.
fn read_stdin(description: &str) -> Result<SecretValue, CliError> {
    let mut stdin = std::io::stdin().lock();
    if stdin.is_terminal() {
        eprintln!("shipdeck: type {description}, then press Enter and Ctrl-D");
    }
    let limit = MAX_VALUE_LEN + 2;
    // Reserved up front so that reading never reallocates and leaves
    // copies of the value in freed memory.
    let mut bytes = Zeroizing::new(Vec::with_capacity(limit + 1));
    let read_error = |error: std::io::Error| {
        CliError::Message(format!(
            "cannot read {description} from standard input: {error}"
        ))
    };
    (&mut stdin)
        .take(limit as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(read_error)?;
    if bytes.len() > limit {
        let rest = std::io::copy(&mut stdin, &mut std::io::sink()).map_err(read_error)?;
        return Err(CliError::Message(format!(
            "{description} is {} bytes, more than the limit of {MAX_VALUE_LEN}; Linux limits one \
             environment variable to 128 KiB, so store a larger value in a file and put its \
             path in the secret",
            bytes.len() as u64 + rest
        )));
    }

    let text = String::from_utf8(std::mem::take(&mut *bytes)).map_err(|error| {
        zeroize::Zeroize::zeroize(&mut error.into_bytes());
        CliError::Message(format!(
            "{description} is not UTF-8 text; environment values must be text, so encode binary data (for example with base64)"
        ))
    })?;
    let mut text = Zeroizing::new(text);
    trim_one_newline(&mut text);
    Ok(SecretValue::new(std::mem::take(&mut *text)))
}
