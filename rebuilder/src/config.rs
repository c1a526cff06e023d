//! The node's configuration: command-line flags, environment variables and a TOML file, in
//! that order of precedence, over built-in defaults.
//!
//! ```toml
//! server = "http://coordinator.example.org:7430"
//! token_file = "/etc/debcover/node.token"
//! work_dir = "/var/lib/debcover-rebuilder"
//! slots = 1
//! architectures = ["amd64"]
//! backends = ["local"]
//! tags = ["big"]
//! build_timeout = "6h"
//! log_cap = "64MiB"
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// Where a configuration value is wrong.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The TOML file could not be read.
    #[error("cannot read the configuration file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The TOML file does not parse or has unknown keys.
    #[error("configuration file {path}: {message}")]
    Toml {
        /// The file.
        path: PathBuf,
        /// The parser's explanation (names the key and line).
        message: String,
    },
    /// A value is out of range or malformed.
    #[error("{key}: {message}")]
    Invalid {
        /// The key or flag at fault.
        key: &'static str,
        /// What is wrong and what is expected.
        message: String,
    },
}

/// The configuration file's keys; every one is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Coordinator URL.
    pub server: Option<String>,
    /// The node's bearer token (prefer `token_file`).
    pub token: Option<String>,
    /// A file holding the node's bearer token.
    pub token_file: Option<PathBuf>,
    /// Work directory: the key, and one directory per running job.
    pub work_dir: Option<PathBuf>,
    /// Concurrent builds.
    pub slots: Option<u32>,
    /// Architectures this node builds for.
    pub architectures: Option<Vec<String>>,
    /// Backends this node offers: local, debrebuild, command.
    pub backends: Option<Vec<String>>,
    /// Tags (e.g. "big").
    pub tags: Option<Vec<String>>,
    /// Time limit of one build, e.g. "4h", "90m".
    pub build_timeout: Option<String>,
    /// Largest build log kept and sent, e.g. "64MiB".
    pub log_cap: Option<String>,
    /// How long SIGTERM waits for running builds before handing them back, e.g. "60s".
    pub shutdown_grace: Option<String>,
    /// The program the `command` backend runs.
    pub command: Option<PathBuf>,
    /// The builder debrebuild uses (default sbuild+unshare).
    pub debrebuild_builder: Option<String>,
    /// Run diffoscope on unreproducible results when it is installed (default true).
    pub diffoscope: Option<bool>,
    /// Keep the work directory of failed jobs for inspection (default false).
    pub keep_failed: Option<bool>,
    /// PEM file of the CA that signed the coordinator's TLS certificate (https:// servers).
    pub ca_cert: Option<PathBuf>,
    /// The user the local backend builds as (default `nobody` when the node runs as root;
    /// `self` builds as the node's own user).
    pub build_user: Option<String>,
}

impl FileConfig {
    /// Read and parse `path`.
    pub fn load(path: &Path) -> Result<FileConfig, ConfigError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
        toml::from_str(&text).map_err(|e| ConfigError::Toml { path: path.to_owned(), message: e.to_string() })
    }
}

/// The effective configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Coordinator URL.
    pub server: String,
    /// Bearer token.
    pub token: String,
    /// Work directory.
    pub work_dir: PathBuf,
    /// Concurrent builds (≥ 1).
    pub slots: u32,
    /// Architectures (as the operator wrote them; the coordinator canonicalises).
    pub architectures: Vec<String>,
    /// Backends offered.
    pub backends: Vec<crate::backend::BackendKind>,
    /// Tags.
    pub tags: Vec<String>,
    /// Time limit of one build.
    pub build_timeout: Duration,
    /// Log cap in bytes.
    pub log_cap: u64,
    /// SIGTERM grace period.
    pub shutdown_grace: Duration,
    /// Program of the `command` backend.
    pub command: Option<PathBuf>,
    /// debrebuild's `--builder`.
    pub debrebuild_builder: String,
    /// Run diffoscope when installed.
    pub diffoscope: bool,
    /// Keep failed jobs' work directories.
    pub keep_failed: bool,
    /// CA certificate for TLS.
    pub ca_cert: Option<PathBuf>,
    /// The user builds run as; `None`: the node's own user.
    pub build_user: Option<crate::process::BuildUser>,
}

/// The build user for the configured name (`None`: not configured): `nobody` by default when
/// the node runs as root, none (the node's own user) otherwise or for `self`.
pub fn build_user(name: Option<&str>) -> Result<Option<crate::process::BuildUser>, ConfigError> {
    // SAFETY: geteuid cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    let name = match name {
        Some("self") => return Ok(None),
        Some(n) => n,
        None if root => defaults::BUILD_USER,
        None => return Ok(None),
    };
    let user = crate::process::BuildUser::lookup(name).map_err(|message| ConfigError::Invalid { key: "build_user", message })?;
    // SAFETY: geteuid cannot fail.
    if !root && user.uid != unsafe { libc::geteuid() } {
        return Err(ConfigError::Invalid {
            key: "build_user",
            message: format!("building as {name} needs the node to run as root (or use --build-user self)"),
        });
    }
    if user.uid == 0 {
        return Err(ConfigError::Invalid {
            key: "build_user",
            message: format!("{name} is root: builds would read the node's key; use an unprivileged user, e.g. nobody"),
        });
    }
    Ok(Some(user))
}

/// Defaults.
pub mod defaults {
    /// Coordinator URL.
    pub const SERVER: &str = "http://127.0.0.1:7430";
    /// Work directory.
    pub const WORK_DIR: &str = "/var/lib/debcover-rebuilder";
    /// Build time limit.
    pub const BUILD_TIMEOUT: &str = "4h";
    /// Log cap.
    pub const LOG_CAP: &str = "64MiB";
    /// SIGTERM grace.
    pub const SHUTDOWN_GRACE: &str = "60s";
    /// debrebuild builder.
    pub const DEBREBUILD_BUILDER: &str = "sbuild+unshare";
    /// The local backend's build user when the node runs as root.
    pub const BUILD_USER: &str = "nobody";
}

/// Parse a duration such as `90s`, `30m`, `4h`, `1d` or a bare number of seconds.
pub fn parse_duration(key: &'static str, s: &str) -> Result<Duration, ConfigError> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num.parse().map_err(|_| ConfigError::Invalid {
        key,
        message: format!("{s:?} is not a duration (expected e.g. 90s, 30m, 4h)"),
    })?;
    let secs = match unit.trim() {
        "" | "s" => n,
        "m" | "min" => n * 60,
        "h" => n * 3600,
        "d" => n * 86400,
        other => {
            return Err(ConfigError::Invalid { key, message: format!("unknown unit {other:?} in {s:?} (use s, m, h or d)") });
        }
    };
    Ok(Duration::from_secs(secs))
}

/// Parse a size such as `64MiB`, `1GiB`, `500k` or a bare number of bytes.
pub fn parse_size(key: &'static str, s: &str) -> Result<u64, ConfigError> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num.parse().map_err(|_| ConfigError::Invalid {
        key,
        message: format!("{s:?} is not a size (expected e.g. 64MiB)"),
    })?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        other => {
            return Err(ConfigError::Invalid { key, message: format!("unknown unit {other:?} in {s:?} (use KiB, MiB or GiB)") });
        }
    };
    n.checked_mul(mult).ok_or_else(|| ConfigError::Invalid { key, message: format!("{s:?} is too large") })
}

/// The machine's Debian architecture (`dpkg --print-architecture`), or the kernel's.
pub fn host_architecture() -> String {
    std::process::Command::new("dpkg")
        .arg("--print-architecture")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| std::env::consts::ARCH.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_sizes() {
        assert_eq!(parse_duration("t", "90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("t", "4h").unwrap(), Duration::from_secs(4 * 3600));
        assert_eq!(parse_duration("t", "12").unwrap(), Duration::from_secs(12));
        assert!(parse_duration("t", "4 weeks").unwrap_err().to_string().contains("unknown unit"));
        assert_eq!(parse_size("c", "64MiB").unwrap(), 64 << 20);
        assert_eq!(parse_size("c", "10k").unwrap(), 10 << 10);
        assert!(parse_size("c", "x").is_err());
    }

    #[test]
    fn file_rejects_unknown_keys() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("n.toml");
        std::fs::write(&p, "server = \"http://x:1\"\nslot = 3\n").unwrap();
        let e = FileConfig::load(&p).unwrap_err().to_string();
        assert!(e.contains("slot") && e.contains("n.toml"), "{e}");
    }
}
