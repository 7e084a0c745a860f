//! `access`: who may sync (ADR 0014), changed at run time. Running servers
//! pick a change up within `access_refresh_seconds`.

use std::str::FromStr;

use clap::Subcommand;
use sync_common::cli::CliResult;

use crate::config::TokenserverConfig;
use crate::db::{StoredAccess, TokenStore};
use crate::model::access::Entry;

#[derive(Subcommand)]
pub enum AccessCommand {
    /// Show the allowlist (configured and added here), the cap and the
    /// number of accounts.
    List,
    /// Admit accounts: FxA uids (32 hex digits), email addresses or
    /// @domains. The first entry closes the server to everyone else.
    Allow {
        #[arg(required_unless_present = "existing")]
        entries: Vec<String>,
        /// Also every account that has synced here (by FxA uid): close the
        /// server to newcomers.
        #[arg(long)]
        existing: bool,
    },
    /// Remove entries added with `allow` (configured ones stay until the
    /// configuration changes). Their users are refused at their next
    /// token request.
    Deny {
        #[arg(required = true)]
        entries: Vec<String>,
    },
    /// Cap the number of accounts: a number, `none` (no cap) or `config`
    /// (the configured `max_users`). Existing users always keep syncing.
    Cap { max_users: CapSetting },
}

/// What `access cap` sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CapSetting {
    At(u64),
    None,
    Config,
}

impl FromStr for CapSetting {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "none" => Ok(Self::None),
            "config" => Ok(Self::Config),
            n => n
                .parse()
                .map(Self::At)
                .map_err(|_| format!("{n:?}: give a number of users, `none` or `config`")),
        }
    }
}

impl CapSetting {
    /// As [`TokenStore::set_max_users`] takes it.
    fn stored(self) -> Option<Option<u64>> {
        match self {
            Self::At(n) => Some(Some(n)),
            Self::None => Some(None),
            Self::Config => None,
        }
    }
}

/// Runs an access command on `store`.
pub async fn run(
    settings: &TokenserverConfig,
    store: &dyn TokenStore,
    command: AccessCommand,
) -> CliResult {
    match command {
        AccessCommand::List => {}
        AccessCommand::Allow { entries, existing } => {
            let mut entries = parse_all(&entries)?;
            if existing {
                entries.extend(existing_accounts(settings, store).await?);
            }
            warn_of_unreadable_emails(settings, &entries);
            let texts: Vec<String> = entries.iter().map(Entry::to_string).collect();
            for entry in store.allow_accounts(&texts).await? {
                println!("{entry} was already allowed");
            }
        }
        AccessCommand::Deny { entries } => {
            let configured = settings.allowlist();
            for entry in parse_all(&entries)? {
                if !store.disallow_account(&entry.to_string()).await? {
                    println!("{entry} was not added with `access allow`");
                }
                if configured.contains(&entry) {
                    println!(
                        "{entry} is in the configuration (allowed_accounts): \
                         it stays allowed until you remove it there"
                    );
                }
            }
        }
        AccessCommand::Cap { max_users } => store.set_max_users(max_users.stored()).await?,
    }
    let accounts = store.count_users(None).await?;
    print_access(settings, &store.access().await?, accounts);
    Ok(())
}

/// Email and domain entries need the email, which Mozilla's FxA does not
/// give for a Sync token: say so before the entry locks everyone out.
fn warn_of_unreadable_emails(settings: &TokenserverConfig, entries: &[Entry]) {
    if settings.profile_server_url().is_some() && !settings.mozilla_fxa() {
        return;
    }
    for entry in entries.iter().filter(|e| e.needs_email()) {
        println!(
            "warning: {entry} admits nobody with Firefox and Mozilla's accounts (their Sync \
             token does not reveal the email): allow FxA uids instead; a refused account's \
             uid is in the server's log"
        );
    }
}

/// A uid entry for every account stored as `<fxa uid>@<fxa_email_domain>`.
async fn existing_accounts(
    settings: &TokenserverConfig,
    store: &dyn TokenStore,
) -> Result<Vec<Entry>, Box<dyn std::error::Error>> {
    let mut entries = Vec::new();
    for email in store.accounts().await? {
        let uid = settings.fxa_uid_of(&email).map(Entry::parse);
        match uid {
            Some(Ok(entry)) => entries.push(entry),
            _ => println!("{email} is not an FxA account of this server: left out"),
        }
    }
    Ok(entries)
}

/// Every entry, or the first that is not one.
fn parse_all(entries: &[String]) -> Result<Vec<Entry>, String> {
    entries.iter().map(|e| Entry::parse(e)).collect()
}

fn print_access(settings: &TokenserverConfig, stored: &StoredAccess, accounts: u64) {
    let configured = settings.allowlist();
    if configured.is_empty() && stored.entries.is_empty() {
        println!("allowlist: none (every account may sync)");
    } else {
        println!("allowlist (only these accounts may sync):");
        for entry in &configured {
            println!("  {entry}  (configured)");
        }
        for entry in &stored.entries {
            println!("  {entry}");
        }
    }
    let from = match stored.max_users {
        Some(_) => "set with `access cap`",
        None => "configured",
    };
    match stored.cap(settings.max_users) {
        Some(max) => println!("cap: {max} users ({from}); {accounts} accounts"),
        None => println!("cap: none ({from}); {accounts} accounts"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cap_settings_parse() {
        assert_eq!("3".parse(), Ok(CapSetting::At(3)));
        assert_eq!("none".parse(), Ok(CapSetting::None));
        assert_eq!("config".parse(), Ok(CapSetting::Config));
        assert!("-1".parse::<CapSetting>().is_err());
        assert_eq!(CapSetting::Config.stored(), None);
        assert_eq!(CapSetting::None.stored(), Some(None));
    }
}
