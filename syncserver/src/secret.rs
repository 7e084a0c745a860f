//! The master secret of a server nobody configured: generated once, kept in
//! `<data_dir>/master_secret` (mode 0600), read back at every start, so
//! tokens stay valid across restarts.

use std::io::Write;
use std::path::{Path, PathBuf};

use sync_common::secret::Secret;

use crate::{Config, StartError};

/// Where the master secret came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    Configured,
    /// Read from the file a previous start generated.
    Loaded(PathBuf),
    /// Generated now and saved to this file.
    Generated(PathBuf),
    /// None configured and none saved yet (commands that must not create one).
    Missing,
}

/// Fills in the master secret from the saved file when none is configured;
/// with `generate`, makes and saves one if there is no file either.
pub fn ensure_master_secret(
    config: &mut Config,
    generate: bool,
) -> Result<SecretSource, StartError> {
    if !config.master_secret.is_empty() {
        return Ok(SecretSource::Configured);
    }
    let path = config.data_dir.join("master_secret");
    if let Some(secret) = read(&path)? {
        config.master_secret = secret;
        return Ok(SecretSource::Loaded(path));
    }
    if !generate {
        return Ok(SecretSource::Missing);
    }
    std::fs::create_dir_all(&config.data_dir).map_err(|e| failed(&path, &e))?;
    // Write a private temporary file, then link it into place: the secret
    // file is never seen half-written, and of two racing first starts one
    // wins and the other reads the winner's secret.
    let fresh = hex::encode(rand::random::<[u8; 32]>());
    let temporary = config.data_dir.join(format!(
        ".master_secret.{}",
        hex::encode(rand::random::<[u8; 6]>())
    ));
    write_private(&temporary, &fresh).map_err(|e| failed(&temporary, &e))?;
    let placed = match std::fs::hard_link(&temporary, &path) {
        // A file system without hard links: create the file in place.
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => write_private(&path, &fresh),
        linked => linked,
    };
    let _ = std::fs::remove_file(&temporary);
    match placed {
        Ok(()) => {
            config.master_secret = Secret::new(fresh);
            Ok(SecretSource::Generated(path))
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            config.master_secret = read(&path)?.ok_or_else(|| empty(&path))?;
            Ok(SecretSource::Loaded(path))
        }
        Err(e) => Err(failed(&path, &e)),
    }
}

/// The saved secret, if the file exists.
fn read(path: &Path) -> Result<Option<Secret>, StartError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(failed(path, &e)),
    };
    warn_if_readable_by_others(path);
    let secret = text.trim();
    if secret.is_empty() {
        return Err(empty(path));
    }
    Ok(Some(Secret::new(secret)))
}

pub(crate) fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(contents.as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()
}

fn warn_if_readable_by_others(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path) {
            if meta.permissions().mode() & 0o077 != 0 {
                tracing::warn!(path = %path.display(), "the master secret file is readable by other users: chmod 600 it");
            }
        }
    }
}

fn failed(path: &Path, e: &std::io::Error) -> StartError {
    StartError::Secret(format!("{}: {e}", path.display()))
}

fn empty(path: &Path) -> StartError {
    StartError::Secret(format!(
        "{} is empty: delete it to generate a new secret (every Firefox then signs in to sync again)",
        path.display()
    ))
}
