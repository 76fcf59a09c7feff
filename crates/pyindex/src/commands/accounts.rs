//! `pyindex user`, `pyindex token`, `pyindex project` and `pyindex audit`: account management
//! by the operator, directly on the data directory (also while the server runs).

use std::io::BufRead;

use anyhow::{Context, bail};
use pyindex_catalog::Role;
use pyindex_registry::auth::password::generate as generate_password;
use pyindex_registry::{Actor, Registry, TokenRequest};

use crate::cli::{ProjectCommand, TokenCommand, UserCommand};
use crate::data_dir::{self, Opener, Place};
use crate::timefmt::timestamp;

/// The password from the first line of standard input, or a generated one (then printed).
fn password(from_stdin: bool) -> anyhow::Result<(String, bool)> {
    if !from_stdin {
        return Ok((generate_password(), true));
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("could not read the password from standard input")?;
    let password = line.trim_end_matches(['\n', '\r']).to_owned();
    if password.is_empty() {
        bail!(
            "no password on standard input: pipe it in, e.g. `echo \"$PASSWORD\" | pyindex user add NAME --password-stdin`"
        );
    }
    Ok((password, false))
}

async fn open(place: &Place) -> anyhow::Result<Registry> {
    data_dir::open(place, Opener::Command).await
}

/// Runs `pyindex user ...`.
pub async fn user(data: &Place, command: UserCommand) -> anyhow::Result<()> {
    let registry = open(data).await?;
    match command {
        UserCommand::Add {
            name,
            admin,
            password_stdin,
        } => {
            let (password, generated) = password(password_stdin)?;
            registry
                .add_user(Actor::Cli, &name, &password, admin)
                .await?;
            println!("Created {} '{name}'.", if admin { "admin" } else { "user" });
            if generated {
                println!("Password (shown once):\n{password}");
            }
        }
        UserCommand::Passwd {
            name,
            password_stdin,
        } => {
            let (password, generated) = password(password_stdin)?;
            registry.set_password(Actor::Cli, &name, &password).await?;
            println!("Password of '{name}' changed.");
            if generated {
                println!("Password (shown once):\n{password}");
            }
        }
        UserCommand::Remove { name } => {
            registry.remove_user(Actor::Cli, &name).await?;
            println!("Removed '{name}', its tokens and its project roles.");
        }
        UserCommand::List => {
            for user in registry.users().await? {
                let kind = if user.is_admin { "admin" } else { "user" };
                println!("{}\t{kind}\tcreated {}", user.name, timestamp(user.created));
            }
        }
        UserCommand::ImportHtpasswd { file } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("could not read {}", file.display()))?;
            let report = registry.import_htpasswd(Actor::Cli, &text).await?;
            for name in &report.added {
                println!("imported {name}");
            }
            for skipped in &report.skipped {
                eprintln!(
                    "{}:{}: skipped: {}",
                    file.display(),
                    skipped.line,
                    skipped.reason
                );
            }
            println!(
                "Imported {} account(s), skipped {} line(s).",
                report.added.len(),
                report.skipped.len()
            );
        }
    }
    Ok(())
}

/// Runs `pyindex token ...`.
pub async fn token(data: &Place, command: TokenCommand) -> anyhow::Result<()> {
    let registry = open(data).await?;
    match command {
        TokenCommand::Create {
            user,
            projects,
            read_only,
            expires,
            description,
        } => {
            let request = TokenRequest {
                projects,
                read_only,
                expires_days: expires,
                description,
            };
            let created = registry.create_token(Actor::Cli, &user, &request).await?;
            println!(
                "Created token {} for '{user}'{}.",
                created.id,
                match created.expires {
                    Some(at) => format!(", expires {}", timestamp(at)),
                    None => String::new(),
                }
            );
            println!("Use it as the password with the user name __token__. It is shown only now:");
            println!("{}", created.secret);
        }
        TokenCommand::List { user } => {
            println!("id\tuser\tpublic id\tprojects\taccess\tcreated\texpires\tstate\tdescription");
            for t in registry.tokens(user.as_deref()).await? {
                let state = if t.revoked.is_some() {
                    "revoked"
                } else if t
                    .expires
                    .is_some_and(|e| e <= time::OffsetDateTime::now_utc())
                {
                    "expired"
                } else {
                    "active"
                };
                println!(
                    "{}\t{}\tpyindex_{}\t{}\t{}\t{}\t{}\t{state}\t{}",
                    t.id,
                    t.user_name,
                    t.public_id,
                    t.projects.map_or_else(|| "*".to_owned(), |p| p.join(",")),
                    if t.read_only { "read" } else { "read-write" },
                    timestamp(t.created),
                    t.expires.map_or_else(|| "never".to_owned(), timestamp),
                    printable(&t.description.unwrap_or_default()),
                );
            }
        }
        TokenCommand::Revoke { id } => {
            registry.revoke_token(Actor::Cli, id, None).await?;
            println!("Revoked token {id}.");
        }
    }
    Ok(())
}

/// Runs `pyindex project ...`.
pub async fn project(data: &Place, command: ProjectCommand) -> anyhow::Result<()> {
    let registry = open(data).await?;
    let (project, user, role) = match command {
        ProjectCommand::Roles { project } => {
            for (user, role) in registry.roles(&project).await? {
                println!("{user}\t{}", role.as_str());
            }
            return Ok(());
        }
        ProjectCommand::Status {
            project,
            status,
            reason,
        } => {
            let change = registry
                .set_project_status(Actor::Cli, &project, status, reason.as_deref())
                .await?;
            println!(
                "'{}' is now {} (was {}){}.",
                change.project,
                change.status,
                change.previous,
                change
                    .reason
                    .map(|r| format!(", reason: {}", printable(&r)))
                    .unwrap_or_default()
            );
            return Ok(());
        }
        ProjectCommand::Reserve { project } => {
            let (name, created) = registry.reserve_project(Actor::Cli, &project).await?;
            if created {
                println!(
                    "'{name}' is reserved: it is never looked up upstream and answers 404 until its first upload."
                );
            } else {
                println!(
                    "'{name}' is a project of this index already: it is never looked up upstream."
                );
            }
            return Ok(());
        }
        ProjectCommand::AddOwner { project, user } => (project, user, Some(Role::Owner)),
        ProjectCommand::AddMaintainer { project, user } => (project, user, Some(Role::Maintainer)),
        ProjectCommand::RemoveRole { project, user } => (project, user, None),
    };
    registry.set_role(Actor::Cli, &project, &user, role).await?;
    match role {
        Some(role) => println!("'{user}' is now {} of '{project}'.", role.as_str()),
        None => println!("'{user}' has no role in '{project}' any more."),
    }
    Ok(())
}

/// Runs `pyindex audit`.
pub async fn audit(data: &Place, limit: i64) -> anyhow::Result<()> {
    let registry = open(data).await?;
    for e in registry.audit_log(limit).await? {
        println!(
            "{}\t{}\t{}\t{}\t{}\t{}",
            timestamp(e.at),
            printable(&e.actor),
            printable(&e.action),
            printable(&e.subject),
            printable(e.address.as_deref().unwrap_or("-")),
            printable(e.detail.as_deref().unwrap_or_default())
        );
    }
    Ok(())
}

/// Escapes control characters (tabs, newlines, terminal escapes) in user-supplied text, so that
/// a yank reason or token description cannot forge log lines or drive the terminal.
pub(crate) fn printable(text: &str) -> String {
    text.chars()
        .flat_map(|c| {
            if c.is_control() {
                c.escape_default().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::printable;

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(printable("ok reason"), "ok reason");
        assert_eq!(printable("a\tb\nc\u{1b}[31m"), "a\\tb\\nc\\u{1b}[31m");
    }
}
