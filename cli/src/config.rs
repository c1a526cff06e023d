//! Configuration: command-line flags, then `DEBCOVER_*` environment variables, then a TOML
//! file, then defaults that work with no configuration at all.
//!
//! The file is `--config PATH` (or `DEBCOVER_CONFIG`); without it,
//! `$XDG_CONFIG_HOME/debcover/config.toml` (or `~/.config/debcover/config.toml`) is read when
//! it exists. Every key is optional:
//!
//! ```toml
//! listen = "127.0.0.1:7430"                 # serve: gRPC listen address
//! http_listen = "127.0.0.1:7440"            # serve: web pages, JSON, /metrics ("off": none)
//! db = "sqlite:///var/lib/debcover/db.sqlite" # serve: database URL (or postgres://...)
//! data_dir = "/var/lib/debcover"            # serve: where the default SQLite file lives
//! server = "http://127.0.0.1:7430"          # clients: coordinator to talk to
//! admin_token_file = "/etc/debcover/admin.token" # serve and admin commands (default DATA_DIR/admin.token)
//! tls_cert = "/etc/debcover/server.pem"     # serve: gRPC over TLS with this certificate chain...
//! tls_key = "/etc/debcover/server.key"      # ...and this private key (both or neither)
//! ca_cert = "/etc/debcover/ca.pem"          # clients: CA that signed an https:// server's certificate
//! archive_mirror = "http://deb.debian.org/debian" # serve: where rebuild jobs fetch sources and originals (file:// too)
//!
//! [rebuild]                                 # serve: the rebuild scheduler
//! lease_ttl = "10m"                         # a lease ends this long after the last heartbeat
//! retry_delays = ["10m", "1h", "6h"]        # back-off after failure 1, 2, 3, ...
//! max_failures = 4                          # failures before a job is parked
//! max_unreproducible = 2                    # unreproducible results before a job is parked
//! verifiers = 2                             # distinct operators that must reproduce a build
//! routes = [{ source = "llvm-toolchain-*", tags = ["big"] }]  # per-package routing
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Default gRPC listen address of `debcover serve`.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7430";
/// Default listen address of the web views (pages, JSON, metrics) of `debcover serve`.
pub const DEFAULT_HTTP_LISTEN: &str = "127.0.0.1:7440";
/// Default coordinator URL of the client commands.
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:7430";

/// What a configuration file may hold.
#[derive(Debug, Default, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// gRPC listen address.
    pub listen: Option<String>,
    /// Web views listen address, or `off`.
    pub http_listen: Option<String>,
    /// Database URL.
    pub db: Option<String>,
    /// Data directory.
    pub data_dir: Option<PathBuf>,
    /// Coordinator URL for clients.
    pub server: Option<String>,
    /// File holding the admin token (serve and admin commands).
    pub admin_token_file: Option<PathBuf>,
    /// File holding this client's API token (`debcover token add`).
    pub token_file: Option<PathBuf>,
    /// Reads need a credential (serve).
    pub closed_reads: Option<bool>,
    /// OpenPGP keyrings buildinfo signatures are checked against (serve).
    pub buildinfo_keyrings: Option<Vec<PathBuf>>,
    /// any, signed or known (serve).
    pub signature_policy: Option<String>,
    /// PEM certificate chain for serving gRPC over TLS (serve).
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of `tls_cert` (serve).
    pub tls_key: Option<PathBuf>,
    /// PEM CA certificate(s) that an `https://` server's certificate must chain to (clients);
    /// without it the system roots are used.
    pub ca_cert: Option<PathBuf>,
    /// Archive mirror URL rebuild jobs point nodes to (serve).
    pub archive_mirror: Option<String>,
    /// Rebuild scheduler settings (serve).
    #[serde(default)]
    pub rebuild: RebuildFileConfig,
}

/// The `[rebuild]` table of the configuration file.
#[derive(Debug, Default, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RebuildFileConfig {
    /// Lease TTL (`10m`).
    pub lease_ttl: Option<String>,
    /// Retry delays (`["10m", "1h", "6h"]`).
    pub retry_delays: Option<Vec<String>>,
    /// Failure budget.
    pub max_failures: Option<u32>,
    /// Unreproducible budget.
    pub max_unreproducible: Option<u32>,
    /// Distinct operators that must reproduce a build.
    pub verifiers: Option<u32>,
    /// Per-package routing rules.
    #[serde(default)]
    pub routes: Vec<debcover_core::rebuild::RouteRule>,
}

/// Scheduler settings given as flags or `DEBCOVER_*` variables (clap merges the two).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RebuildFlags {
    /// `--lease-ttl`.
    pub lease_ttl: Option<String>,
    /// `--retry-delays` (comma-separated).
    pub retry_delays: Option<String>,
    /// `--max-failures`.
    pub max_failures: Option<u32>,
    /// `--max-unreproducible`.
    pub max_unreproducible: Option<u32>,
    /// `--verifiers`.
    pub verifiers: Option<u32>,
    /// `--archive-mirror`.
    pub archive_mirror: Option<String>,
}

/// Resolved scheduler settings of `debcover serve`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RebuildConfig {
    /// Retry, budget, lease and independence rules.
    pub policy: debcover_core::rebuild::Policy,
    /// Routing rules.
    pub routes: Vec<debcover_core::rebuild::RouteRule>,
    /// Archive mirror URL (checked, without trailing slash); None: nodes use their own apt.
    pub archive_mirror: Option<String>,
}

impl RebuildConfig {
    /// Merge flags over the file and the defaults.
    pub fn resolve(flags: RebuildFlags, file: &FileConfig) -> Result<RebuildConfig, ConfigError> {
        use debcover_core::rebuild::{Policy, parse_duration};
        let f = &file.rebuild;
        let mut policy = Policy::default();
        if let Some(t) = flags.lease_ttl.or_else(|| f.lease_ttl.clone()) {
            policy.lease_ttl = parse_duration(&t)
                .map_err(|reason| ConfigError::Invalid { setting: "lease_ttl", value: t.clone(), reason })?;
            if policy.lease_ttl.as_secs() < 2 {
                return Err(ConfigError::Invalid { setting: "lease_ttl", value: t, reason: "at least 2s".into() });
            }
        }
        let delays = flags.retry_delays.map(|d| d.split(',').map(str::to_owned).collect()).or_else(|| f.retry_delays.clone());
        if let Some(delays) = delays {
            policy.retry_delays = delays
                .iter()
                .map(|d| {
                    parse_duration(d).map_err(|reason| ConfigError::Invalid { setting: "retry_delays", value: d.clone(), reason })
                })
                .collect::<Result<_, _>>()?;
        }
        if let Some(n) = flags.max_failures.or(f.max_failures) {
            policy.max_failures = n.max(1);
        }
        if let Some(n) = flags.max_unreproducible.or(f.max_unreproducible) {
            policy.max_unreproducible = n.max(1);
        }
        if let Some(n) = flags.verifiers.or(f.verifiers) {
            policy.verifiers = n.max(1);
        }
        let archive_mirror = match flags.archive_mirror.or_else(|| file.archive_mirror.clone()).filter(|m| !m.trim().is_empty()) {
            Some(m) => Some(debcover_core::rebuild::parse_mirror(&m).map_err(|reason| ConfigError::Invalid {
                setting: "archive_mirror",
                value: m.clone(),
                reason,
            })?),
            None => None,
        };
        Ok(RebuildConfig { policy, routes: f.routes.clone(), archive_mirror })
    }
}

/// The admin token file: the flag or `DEBCOVER_ADMIN_TOKEN_FILE`, else the file's
/// `admin_token_file`, else `admin.token` in the data directory.
pub fn admin_token_file(flag: Option<PathBuf>, data_dir: Option<&Path>, file: &FileConfig) -> PathBuf {
    flag.or_else(|| file.admin_token_file.clone()).unwrap_or_else(|| {
        data_dir
            .map(Path::to_path_buf)
            .or_else(|| file.data_dir.clone())
            .unwrap_or_else(default_data_dir)
            .join("admin.token")
    })
}

/// The credential client commands send: `DEBCOVER_TOKEN`, else the token file (`--token-file`,
/// `DEBCOVER_TOKEN_FILE`, the file's `token_file`; unreadable is an error), else the admin
/// token when this user can read it (`DEBCOVER_ADMIN_TOKEN`, the admin token file), else none.
pub fn credential(token_file: Option<PathBuf>, admin_token_file: &Path, file: &FileConfig) -> anyhow::Result<Option<String>> {
    if let Some(t) = std::env::var("DEBCOVER_TOKEN").ok().filter(|t| !t.trim().is_empty()) {
        return Ok(Some(t.trim().to_owned()));
    }
    if let Some(path) = token_file.or_else(|| file.token_file.clone()) {
        let text = std::fs::read_to_string(&path).map_err(|e| {
            anyhow::anyhow!(
                "cannot read the token file {} ({e}); set --token-file, DEBCOVER_TOKEN_FILE or DEBCOVER_TOKEN",
                path.display()
            )
        })?;
        return match text.lines().next().map(str::trim) {
            Some(t) if !t.is_empty() => Ok(Some(t.to_owned())),
            _ => Err(anyhow::anyhow!("the token file {} is empty", path.display())),
        };
    }
    Ok(crate::client::rebuild::admin_token(std::env::var("DEBCOVER_ADMIN_TOKEN").ok(), admin_token_file).ok())
}

/// A configuration problem, naming the file or setting at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML or has unknown keys.
    #[error("config file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong, with line and column.
        message: String,
    },
    /// A setting has an unusable value.
    #[error("{setting} = {value:?} is not valid: {reason}")]
    Invalid {
        /// The setting (`listen`, `db`, ...).
        setting: &'static str,
        /// The value given.
        value: String,
        /// Why it is unusable.
        reason: String,
    },
}

impl FileConfig {
    /// Load the explicit file, or the default one if it exists, or nothing.
    pub fn load(explicit: Option<&Path>) -> Result<FileConfig, ConfigError> {
        let path = match explicit {
            Some(p) => p.to_owned(),
            None => match default_config_path() {
                Some(p) if p.exists() => p,
                _ => return Ok(FileConfig::default()),
            },
        };
        let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read { path: path.clone(), source })?;
        toml::from_str(&text).map_err(|e| ConfigError::Parse { path, message: e.to_string() })
    }
}

fn default_config_path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("debcover").join("config.toml"))
}

fn default_data_dir() -> PathBuf {
    std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .map(|d| d.join("debcover"))
        .unwrap_or_else(|| PathBuf::from("debcover-data"))
}

/// Resolved settings of `debcover serve`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServeConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Database URL.
    pub db: String,
    /// Data directory (created if missing).
    pub data_dir: PathBuf,
}

impl ServeConfig {
    /// Merge flag/environment values (already merged by clap) over the file and defaults.
    pub fn resolve(
        listen: Option<String>,
        db: Option<String>,
        data_dir: Option<PathBuf>,
        file: &FileConfig,
    ) -> Result<ServeConfig, ConfigError> {
        let listen_text = listen.or_else(|| file.listen.clone()).unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
        let listen = listen_text.parse().map_err(|e: std::net::AddrParseError| ConfigError::Invalid {
            setting: "listen",
            value: listen_text.clone(),
            reason: format!("{e}; expected HOST:PORT such as {DEFAULT_LISTEN}"),
        })?;
        let data_dir = data_dir.or_else(|| file.data_dir.clone()).unwrap_or_else(default_data_dir);
        let db = db
            .or_else(|| file.db.clone())
            .unwrap_or_else(|| format!("sqlite://{}", data_dir.join("debcover.sqlite").display()));
        #[cfg(feature = "serve")]
        debcover_store::backend_of_url(&db).map_err(|e| ConfigError::Invalid {
            setting: "db",
            value: db.clone(),
            reason: e.to_string(),
        })?;
        Ok(ServeConfig { listen, db, data_dir })
    }
}

/// The web views' listen address of `debcover serve` (flag or `DEBCOVER_HTTP_LISTEN`, then
/// the file's `http_listen`, then [`DEFAULT_HTTP_LISTEN`]); `None` for `off`.
pub fn resolve_http_listen(flag: Option<String>, file: &FileConfig) -> Result<Option<SocketAddr>, ConfigError> {
    let text = flag.or_else(|| file.http_listen.clone()).unwrap_or_else(|| DEFAULT_HTTP_LISTEN.to_owned());
    if text == "off" {
        return Ok(None);
    }
    text.parse().map(Some).map_err(|e: std::net::AddrParseError| ConfigError::Invalid {
        setting: "http_listen",
        value: text.clone(),
        reason: format!("{e}; expected HOST:PORT such as {DEFAULT_HTTP_LISTEN}, or off"),
    })
}

/// The coordinator URL a client command talks to.
pub fn resolve_server(flag: Option<String>, file: &FileConfig) -> String {
    flag.or_else(|| file.server.clone()).unwrap_or_else(|| DEFAULT_SERVER.to_owned())
}

/// The CA certificate file clients trust for `https://` servers: the flag or
/// `DEBCOVER_CA_CERT`, else the file's `ca_cert`; None means the system roots.
pub fn resolve_ca_cert(flag: Option<PathBuf>, file: &FileConfig) -> Option<PathBuf> {
    flag.or_else(|| file.ca_cert.clone())
}

/// Certificate chain and private key (PEM files) of a coordinator serving gRPC over TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate chain, server certificate first.
    pub cert: PathBuf,
    /// Its private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// PEM contents of [`TlsFiles`], checked to hold a certificate and a key.
#[derive(Clone)]
pub struct TlsPem {
    /// The certificate chain as read.
    pub cert: Vec<u8>,
    /// The private key as read.
    pub key: Vec<u8>,
}

impl TlsFiles {
    /// Merge `--tls-cert`/`--tls-key` (or `DEBCOVER_TLS_CERT`/`DEBCOVER_TLS_KEY`, merged by
    /// clap) over the file's `tls_cert`/`tls_key`. None: plain gRPC. One without the other is
    /// an error naming the missing setting.
    pub fn resolve(cert: Option<PathBuf>, key: Option<PathBuf>, file: &FileConfig) -> Result<Option<TlsFiles>, ConfigError> {
        let cert = cert.or_else(|| file.tls_cert.clone());
        let key = key.or_else(|| file.tls_key.clone());
        match (cert, key) {
            (None, None) => Ok(None),
            (Some(cert), Some(key)) => Ok(Some(TlsFiles { cert, key })),
            (Some(cert), None) => Err(ConfigError::Invalid {
                setting: "tls_cert",
                value: cert.display().to_string(),
                reason: "a TLS certificate needs its private key: set tls_key too (--tls-key, DEBCOVER_TLS_KEY)".into(),
            }),
            (None, Some(key)) => Err(ConfigError::Invalid {
                setting: "tls_key",
                value: key.display().to_string(),
                reason: "a TLS key needs its certificate: set tls_cert too (--tls-cert, DEBCOVER_TLS_CERT)".into(),
            }),
        }
    }

    /// Read both files and check that they hold at least one PEM certificate and a PEM private
    /// key, so that a wrong file is reported by name before the server starts.
    pub fn load(&self) -> Result<TlsPem, ConfigError> {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let read = |path: &Path| std::fs::read(path).map_err(|source| ConfigError::Read { path: path.to_owned(), source });
        let invalid = |setting, path: &Path, reason: String| ConfigError::Invalid {
            setting,
            value: path.display().to_string(),
            reason,
        };
        let cert = read(&self.cert)?;
        let certs = CertificateDer::pem_slice_iter(&cert)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| invalid("tls_cert", &self.cert, format!("not a PEM certificate file: {e}")))?;
        if certs.is_empty() {
            return Err(invalid("tls_cert", &self.cert, "no \"BEGIN CERTIFICATE\" block in it".into()));
        }
        let key = read(&self.key)?;
        PrivateKeyDer::from_pem_slice(&key)
            .map_err(|e| invalid("tls_key", &self.key, format!("no PEM private key in it: {e}")))?;
        Ok(TlsPem { cert, key })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_need_no_configuration() {
        let c = ServeConfig::resolve(None, None, Some("/tmp/x".into()), &FileConfig::default()).unwrap();
        assert_eq!(c.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(c.db, "sqlite:///tmp/x/debcover.sqlite");
    }

    #[test]
    fn flags_beat_file() {
        let file = FileConfig { listen: Some("127.0.0.1:1".into()), db: Some("sqlite://f".into()), ..Default::default() };
        let c = ServeConfig::resolve(Some("127.0.0.1:2".into()), None, None, &file).unwrap();
        assert_eq!(c.listen.port(), 2);
        assert_eq!(c.db, "sqlite://f");
    }

    #[test]
    fn bad_values_name_the_setting() {
        let e = ServeConfig::resolve(Some("nonsense".into()), None, None, &FileConfig::default()).unwrap_err();
        assert!(e.to_string().starts_with("listen = \"nonsense\""), "{e}");
        let e = ServeConfig::resolve(None, Some("mysql://x".into()), None, &FileConfig::default()).unwrap_err();
        assert!(e.to_string().contains("db = \"mysql://x\""), "{e}");
    }

    #[test]
    fn rebuild_settings() {
        let file: FileConfig = toml::from_str(
            "[rebuild]\nlease_ttl = \"1m\"\nretry_delays = [\"1s\", \"2h\"]\nverifiers = 3\n\
             routes = [{ source = \"llvm-*\", tags = [\"big\"] }]\n",
        )
        .unwrap();
        let c = RebuildConfig::resolve(RebuildFlags { verifiers: Some(1), ..Default::default() }, &file).unwrap();
        assert_eq!(c.policy.lease_ttl.as_secs(), 60);
        assert_eq!(c.policy.retry_delays.iter().map(|d| d.as_secs()).collect::<Vec<_>>(), [1, 7200]);
        assert_eq!(c.policy.verifiers, 1, "flags beat the file");
        assert_eq!(c.routes[0].tags, ["big"]);
        let d = RebuildConfig::resolve(RebuildFlags::default(), &FileConfig::default()).unwrap();
        assert_eq!(d.policy, debcover_core::rebuild::Policy::default());
        let e = RebuildConfig::resolve(RebuildFlags { lease_ttl: Some("soon".into()), ..Default::default() }, &file);
        assert!(e.unwrap_err().to_string().starts_with("lease_ttl = \"soon\""));
    }

    #[test]
    fn tls_settings() {
        let file: FileConfig = toml::from_str("tls_cert = \"/f/c.pem\"\ntls_key = \"/f/k.pem\"\nca_cert = \"/f/ca.pem\"\n").unwrap();
        let t = TlsFiles::resolve(Some("/x/c.pem".into()), None, &file).unwrap().unwrap();
        assert_eq!((t.cert.to_str(), t.key.to_str()), (Some("/x/c.pem"), Some("/f/k.pem")), "flags beat the file");
        assert_eq!(TlsFiles::resolve(None, None, &FileConfig::default()).unwrap(), None);
        let e = TlsFiles::resolve(Some("/x/c.pem".into()), None, &FileConfig::default()).unwrap_err().to_string();
        assert!(e.starts_with("tls_cert = \"/x/c.pem\"") && e.contains("tls_key"), "{e}");
        assert_eq!(resolve_ca_cert(None, &file), Some(PathBuf::from("/f/ca.pem")));

        let dir = tempfile::tempdir().unwrap();
        let not_pem = dir.path().join("c.pem");
        std::fs::write(&not_pem, "hello\n").unwrap();
        let t = TlsFiles { cert: not_pem.clone(), key: not_pem };
        let e = t.load().err().expect("not a certificate").to_string();
        assert!(e.starts_with("tls_cert = ") && e.contains("c.pem") && e.contains("BEGIN CERTIFICATE"), "{e}");
        let t = TlsFiles { cert: dir.path().join("missing.pem"), key: dir.path().join("k") };
        let e = t.load().err().expect("missing").to_string();
        assert!(e.contains("missing.pem"), "{e}");
    }

    #[test]
    fn archive_mirror_layers_and_is_checked() {
        let file: FileConfig = toml::from_str("archive_mirror = \"http://deb.debian.org/debian/\"\n").unwrap();
        let c = RebuildConfig::resolve(RebuildFlags::default(), &file).unwrap();
        assert_eq!(c.archive_mirror.as_deref(), Some("http://deb.debian.org/debian"));
        let flags = RebuildFlags { archive_mirror: Some("file:///srv/mirror".into()), ..Default::default() };
        assert_eq!(RebuildConfig::resolve(flags, &file).unwrap().archive_mirror.as_deref(), Some("file:///srv/mirror"));
        assert_eq!(RebuildConfig::resolve(RebuildFlags::default(), &FileConfig::default()).unwrap().archive_mirror, None);
        let flags = RebuildFlags { archive_mirror: Some("srv/mirror".into()), ..Default::default() };
        let e = RebuildConfig::resolve(flags, &file).unwrap_err().to_string();
        assert!(e.starts_with("archive_mirror = \"srv/mirror\""), "{e}");
    }

    #[test]
    fn unknown_file_keys_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.toml");
        std::fs::write(&p, "listen = \"127.0.0.1:9\"\nlisten_port = 3\n").unwrap();
        let e = FileConfig::load(Some(&p)).unwrap_err().to_string();
        assert!(e.contains("c.toml") && e.contains("listen_port"), "{e}");
    }
}
