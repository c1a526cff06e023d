//! Questions answered over the store. Debian version ordering lives here (in Rust, with
//! `debversion`), never in SQL.

use std::collections::{BTreeMap, HashMap};
use std::str::FromStr;

use debversion::Version;

use crate::model::{BuildRecord, PkgVer, ProducedFile};
use crate::store::{BuildStore, IndexStore, StoreError};

/// What `built-with` asks about: one binary package, or every binary of a source package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PackageSpec {
    /// A binary package name as it appears in Installed-Build-Depends.
    Binary(String),
    /// `src:NAME`: every binary package known to come from source NAME.
    Source(String),
}

impl FromStr for PackageSpec {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (spec, name) = match s.strip_prefix("src:") {
            Some(n) => (PackageSpec::Source(n.to_owned()), n),
            None => (PackageSpec::Binary(s.to_owned()), s),
        };
        if debcover_formats::relation::is_valid_package_name(name) {
            Ok(spec)
        } else {
            Err(format!(
                "{s:?} is not a package name: expected NAME or src:NAME, with NAME made of \
                 lower-case letters, digits and + - ."
            ))
        }
    }
}

/// "Which builds had PACKAGE installed at a version below BEFORE?"
#[derive(Debug, Clone)]
pub struct BuiltWithQuery {
    /// The package(s) asked about.
    pub package: PackageSpec,
    /// Strict upper bound on the installed version (Debian ordering); `None`: any version.
    pub before: Option<Version>,
    /// Only builds with a binary shipped in this suite.
    pub suite: Option<String>,
    /// Only builds for this host architecture (or `all`).
    pub arch: Option<String>,
}

/// One build that matched, with the entries that matched and its produced files.
#[derive(Debug, Clone)]
pub struct BuildMatch {
    /// The build.
    pub build: BuildRecord,
    /// Installed-Build-Depends entries that satisfied the query.
    pub matched: Vec<PkgVer>,
    /// Files it produced (filtered to those shipped in the suite when a suite was given).
    pub files: Vec<ProducedFile>,
}

/// The answer: the binary names the query resolved to, and the matching builds ordered by
/// source, version and architecture.
#[derive(Debug, Clone, Default)]
pub struct BuiltWithAnswer {
    /// Binary package names searched for.
    pub resolved: Vec<String>,
    /// Matching builds.
    pub builds: Vec<BuildMatch>,
}

/// Answer a [`BuiltWithQuery`].
pub async fn built_with<S: BuildStore + IndexStore>(store: &S, q: &BuiltWithQuery) -> Result<BuiltWithAnswer, StoreError> {
    let resolved = match &q.package {
        PackageSpec::Binary(n) => vec![n.clone()],
        PackageSpec::Source(s) => store.binaries_of_source(s).await?,
    };
    if resolved.is_empty() {
        return Ok(BuiltWithAnswer::default());
    }
    let candidates: HashMap<i64, PkgVer> = store
        .pkgvers_named(&resolved)
        .await?
        .into_iter()
        .filter(|p| match (&q.before, Version::from_str(&p.version)) {
            (None, _) => true,
            (Some(before), Ok(v)) => v < *before,
            (Some(_), Err(e)) => {
                tracing::warn!(name = %p.name, version = %p.version, error = %e, "unparsable stored version");
                false
            }
        })
        .map(|p| (p.id, p))
        .collect();
    if candidates.is_empty() {
        return Ok(BuiltWithAnswer { resolved, builds: Vec::new() });
    }
    let ids: Vec<i64> = candidates.keys().copied().collect();
    let started = std::time::Instant::now();
    let hits = store.builds_with(&ids, q.suite.as_deref(), q.arch.as_deref()).await?;
    let t_hits = started.elapsed();
    let mut matched: BTreeMap<i64, Vec<PkgVer>> = BTreeMap::new();
    for (build, pv) in hits {
        if let Some(p) = candidates.get(&pv) {
            matched.entry(build).or_default().push(p.clone());
        }
    }
    let build_ids: Vec<i64> = matched.keys().copied().collect();
    let builds = store.builds_by_id(&build_ids).await?;
    let t_builds = started.elapsed();
    let produced = store.produced_files(&build_ids).await?;
    let t_files = started.elapsed();
    let mut files: HashMap<i64, Vec<ProducedFile>> = HashMap::new();
    for f in produced {
        if is_binary_package(&f.name) {
            files.entry(f.build_id).or_default().push(f);
        }
    }
    let mut out: Vec<BuildMatch> = builds
        .into_iter()
        .map(|b| {
            let mut m = matched.remove(&b.id).unwrap_or_default();
            m.sort_by(|a, b| (&a.name, &a.arch, &a.version).cmp(&(&b.name, &b.arch, &b.version)));
            let mut f = files.remove(&b.id).unwrap_or_default();
            if let Some(suite) = &q.suite {
                let prefix = format!("{suite}/");
                f.retain(|f| f.shipped_in.iter().any(|s| s.starts_with(&prefix)));
            }
            BuildMatch { build: b, matched: m, files: f }
        })
        .collect();
    sort_builds(&mut out, |m| &m.build);
    tracing::debug!(
        builds = out.len(),
        postings_ms = t_hits.as_millis() as u64,
        records_ms = (t_builds - t_hits).as_millis() as u64,
        files_ms = (t_files - t_builds).as_millis() as u64,
        total_ms = started.elapsed().as_millis() as u64,
        "built-with answered"
    );
    Ok(BuiltWithAnswer { resolved, builds: out })
}

/// Order builds by source, then Debian version, then architecture, then id. Each version is
/// parsed once (a cached key), not once per comparison.
pub fn sort_builds<T>(items: &mut [T], build: impl Fn(&T) -> &BuildRecord) {
    items.sort_by_cached_key(|item| {
        let b = build(item);
        // Unparsable versions cannot be stored (ingestion validates them); sort them first.
        (b.source.clone(), Version::from_str(&b.version).ok(), b.host_arch.clone(), b.id)
    });
}

/// Is this produced file a binary package (as opposed to a .dsc, tarball or log)?
pub fn is_binary_package(file_name: &str) -> bool {
    file_name.ends_with(".deb") || file_name.ends_with(".udeb") || file_name.ends_with(".ddeb")
}
