//! Configuration loading shared by every binary: defaults (from the
//! struct's `Default`) → optional TOML file → `SYNC_`-prefixed environment
//! variables, with `__` separating nested keys
//! (`SYNC_SYNCSTORAGE__DATABASE_URL` → `syncstorage.database_url`), and
//! `SYNC_…_FILE` reading a secret from a file.

use std::collections::BTreeSet;
use std::path::Path;

use figment::providers::{Format, Serialized, Toml};
use figment::Figment;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// The prefix of every environment variable we read.
pub const ENV_PREFIX: &str = "SYNC_";

/// Names the settings file (read by the command line), not a secret file.
const CONFIG_FILE_VAR: &str = "SYNC_CONFIG_FILE";

/// A configuration that could not be loaded, as a sentence for the operator.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the configuration: {0}")]
    Load(String),
    #[error("cannot read {var}: {source}")]
    SecretFile { var: String, source: std::io::Error },
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

/// A loaded configuration plus warnings worth logging once telemetry is up.
#[derive(Debug)]
pub struct Loaded<T> {
    pub config: T,
    pub warnings: Vec<String>,
}

/// Loads `T` from its defaults, `file` (if given) and the environment `env`
/// (pass `std::env::vars()`; tests pass their own).
pub fn load<T>(
    file: Option<&Path>,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Loaded<T>, ConfigError>
where
    T: Serialize + DeserializeOwned + Default,
{
    let env: Vec<(String, String)> = env
        .into_iter()
        .filter(|(k, _)| k.starts_with(ENV_PREFIX) && k != CONFIG_FILE_VAR)
        .collect();
    let known = KnownKeys::of(&T::default());
    let mut warnings = Vec::new();
    let mut figment = Figment::from(Serialized::defaults(T::default()));
    if let Some(path) = file {
        if !path.exists() {
            return Err(ConfigError::Load(format!(
                "the configuration file {} does not exist",
                path.display()
            )));
        }
        warnings.extend(unknown_file_keys(path, &known)?);
        figment = figment.merge(Toml::file(path));
    }
    let (plain, files): (Vec<_>, Vec<_>) = env.iter().partition(|(k, _)| !k.ends_with("_FILE"));
    let mut vars = plain.into_iter().cloned().collect::<Vec<_>>();
    for (key, path) in files {
        let value = std::fs::read_to_string(path).map_err(|source| ConfigError::SecretFile {
            var: key.clone(),
            source,
        })?;
        let name = key.trim_end_matches("_FILE").to_owned();
        vars.push((name, value.trim_end_matches(['\r', '\n']).to_owned()));
    }
    warnings.extend(unknown_vars(&vars, &known));
    for (key, value) in &vars {
        let path = env_key_path(key);
        figment = figment.merge(Serialized::default(&path, parse_env_value(value)));
    }
    let config = figment
        .extract_lossy::<T>()
        .map_err(|e| ConfigError::Load(describe(e)))?;
    Ok(Loaded { config, warnings })
}

/// Figment's errors quote the offending value, which may be a secret: name
/// the setting and what it expects, never what was given.
fn describe(error: figment::Error) -> String {
    use figment::error::Kind;
    error
        .into_iter()
        .map(|e| {
            let what = match &e.kind {
                Kind::InvalidType(_, expected) | Kind::InvalidValue(_, expected) => {
                    format!("expected {expected}")
                }
                Kind::Unsupported(_) | Kind::UnsupportedKey(..) => "unsupported value".into(),
                other => other.to_string(),
            };
            match e.path.join(".") {
                key if key.is_empty() => what,
                key => format!("{key}: {what}"),
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// `SYNC_SYNCSTORAGE__DATABASE_URL` → `syncstorage.database_url`.
fn env_key_path(var: &str) -> String {
    var.trim_start_matches(ENV_PREFIX)
        .to_ascii_lowercase()
        .replace("__", ".")
}

/// Environment values stay strings (lossy extraction turns "8000" into a
/// number where the setting wants one); `[…]` and `{…}` are parsed as TOML so
/// lists and maps can be given too.
fn parse_env_value(value: &str) -> figment::value::Value {
    let structured = value.starts_with('[') || value.starts_with('{');
    structured
        .then(|| value.parse::<figment::value::Value>().ok())
        .flatten()
        .unwrap_or_else(|| figment::value::Value::from(value.to_owned()))
}

/// The dotted key paths the defaults serialise to. A key whose default is
/// an empty map or unset (`None`) is open: any key below it is accepted
/// (per-collection limits, a JWK given field by field).
struct KnownKeys {
    keys: BTreeSet<String>,
    open: BTreeSet<String>,
}

impl KnownKeys {
    fn of<T: Serialize>(defaults: &T) -> Self {
        let mut known = Self {
            keys: BTreeSet::new(),
            open: BTreeSet::new(),
        };
        if let Ok(value) = serde_json::to_value(defaults) {
            collect_keys(&value, "", &mut known.keys);
        }
        let value = serde_json::to_value(defaults).unwrap_or_default();
        for key in &known.keys {
            let v = key.split('.').fold(&value, |v, part| &v[part]);
            if v.is_null() || v.as_object().is_some_and(serde_json::Map::is_empty) {
                known.open.insert(key.clone());
            }
        }
        known
    }

    fn contains(&self, path: &str) -> bool {
        self.keys.contains(path)
            || self
                .open
                .iter()
                .any(|open| path.starts_with(&format!("{open}.")))
    }
}

fn collect_keys(value: &serde_json::Value, prefix: &str, keys: &mut BTreeSet<String>) {
    if let serde_json::Value::Object(map) = value {
        for (k, v) in map {
            let path = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            keys.insert(path.clone());
            collect_keys(v, &path, keys);
        }
    }
}

/// Settings in the file that no key matches (a typo would otherwise be
/// silently ignored).
fn unknown_file_keys(path: &Path, known: &KnownKeys) -> Result<Vec<String>, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigError::Load(format!(
            "cannot read the configuration file {}: {e}",
            path.display()
        ))
    })?;
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        ConfigError::Load(format!(
            "{} is not valid TOML: {}",
            path.display(),
            e.message()
        ))
    })?;
    let mut keys = BTreeSet::new();
    let json = serde_json::to_value(&table).unwrap_or_default();
    collect_keys(&json, "", &mut keys);
    Ok(keys
        .iter()
        .filter(|k| !known.contains(k))
        // Report a whole unknown table once, not each key under it.
        .filter(|k| {
            k.rsplit_once('.')
                .is_none_or(|(parent, _)| known.contains(parent))
        })
        .map(|k| format!("ignoring unknown setting {k} in {}", path.display()))
        .collect())
}

fn unknown_vars(vars: &[(String, String)], known: &KnownKeys) -> Vec<String> {
    vars.iter()
        .map(|(k, _)| k)
        .filter(|k| !known.contains(&env_key_path(k)))
        .map(|k| format!("ignoring unknown environment variable {k}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Serialize, Deserialize, PartialEq)]
    #[serde(default)]
    struct Inner {
        url: String,
        limit: u32,
    }

    #[derive(Debug, Serialize, Deserialize, PartialEq)]
    #[serde(default)]
    struct Sample {
        port: u16,
        secret: String,
        inner: Inner,
    }

    impl Default for Inner {
        fn default() -> Self {
            Self {
                url: "sqlite:x".into(),
                limit: 5,
            }
        }
    }

    impl Default for Sample {
        fn default() -> Self {
            Self {
                port: 8000,
                secret: String::new(),
                inner: Inner::default(),
            }
        }
    }

    fn vars(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_then_file_then_env() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(&file, "port = 9000\n[inner]\nlimit = 7\n").unwrap();
        let loaded: Loaded<Sample> = load(
            Some(&file),
            vars(&[
                ("SYNC_INNER__URL", "postgres://h/db"),
                ("SYNC_SECRET", "1234"),
            ]),
        )
        .unwrap();
        assert_eq!(loaded.config.port, 9000);
        assert_eq!(loaded.config.inner.limit, 7);
        assert_eq!(loaded.config.inner.url, "postgres://h/db");
        // An all-digit secret stays a string.
        assert_eq!(loaded.config.secret, "1234");
        assert!(loaded.warnings.is_empty());
    }

    #[test]
    fn secrets_can_come_from_files_and_unknown_vars_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("secret");
        std::fs::write(&file, "from-file\n").unwrap();
        let path = file.to_string_lossy().to_string();
        let loaded: Loaded<Sample> = load(
            None,
            vars(&[
                ("SYNC_SECRET_FILE", &path),
                ("SYNC_NOPE", "1"),
                ("OTHER", "x"),
            ]),
        )
        .unwrap();
        assert_eq!(loaded.config.secret, "from-file");
        assert_eq!(loaded.warnings.len(), 1);
        assert!(loaded.warnings[0].contains("SYNC_NOPE"));
    }

    #[test]
    fn a_wrong_type_is_a_readable_error() {
        let err = load::<Sample>(None, vars(&[("SYNC_PORT", "not-a-port")])).unwrap_err();
        assert!(err.to_string().contains("port"), "{err}");
    }

    #[test]
    fn unknown_keys_in_a_file_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(&file, "prot = 1\n[inner]\nlimt = 7\n[nope]\na = 1\nb = 2\n").unwrap();
        let loaded: Loaded<Sample> = load(Some(&file), vec![]).unwrap();
        let text = loaded.warnings.join("\n");
        for key in ["prot", "inner.limt", "nope "] {
            assert!(text.contains(key), "{key} not in {text}");
        }
        assert_eq!(loaded.warnings.len(), 3, "{text}");
    }

    #[test]
    fn the_config_file_variable_is_not_a_secret_file() {
        let loaded: Loaded<Sample> =
            load(None, vars(&[("SYNC_CONFIG_FILE", "/nonexistent")])).unwrap();
        assert!(loaded.warnings.is_empty());
    }

    #[test]
    fn a_missing_file_is_an_error() {
        let err = load::<Sample>(Some(Path::new("/nonexistent.toml")), vec![]).unwrap_err();
        assert!(err.to_string().contains("does not exist"));
    }
}
