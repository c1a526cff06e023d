//! Campaigns: one library fix, every shipped binary that embeds a vulnerable version, the
//! rebuild waves, and the state of each item until the evidence says the fix is inside.
//!
//! - [`analysis`]: impact analysis (direct evidence, then transitive dependents) → [`Plan`].
//! - [`waves`]: topological levels over the "must rebuild after" graph, cycles as groups.
//! - [`export`]: the plan in the release team's formats (wanna-build `nmu`/`dw` lines,
//!   no-change sourceful uploads with changelog entries).
//! - [`track`]: re-evaluates saved items when buildinfos or archive indices arrive and
//!   records each state change with its evidence.
//!
//! # Invariants
//! - No SQL here: facts come from [`crate::store::CampaignStore`].
//! - Debian versions are compared with `debversion`, never as text.
//! - An item's state changes only through [`Standing::after`], and every change is recorded
//!   as an event with the evidence that caused it.

use std::fmt;
use std::str::FromStr;

use debversion::Version;
use serde::{Deserialize, Serialize};

pub mod analysis;
pub mod export;
pub mod snapshot;
pub mod track;
pub mod waves;

/// How the rebuilds of a campaign reach the archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Binary-only NMUs scheduled through wanna-build (unstable-like suites).
    Binnmu,
    /// No-change sourceful uploads (security suites, which cannot binNMU against the main
    /// archive's tarballs).
    Sourceful,
}

impl Mode {
    /// `binnmu` or `sourceful`.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Binnmu => "binnmu",
            Mode::Sourceful => "sourceful",
        }
    }
}

impl FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "binnmu" => Ok(Mode::Binnmu),
            "sourceful" => Ok(Mode::Sourceful),
            other => Err(format!("unknown campaign mode {other:?}: expected binnmu or sourceful")),
        }
    }
}

/// Which affected items make their own dependents affected (transitive evidence).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Propagation {
    /// Through binaries that carry code into their consumers (`-dev`, `-static`, `-source`)
    /// *and* declare what they embed (`Static-Built-Using` and kin): a static library known to
    /// contain the vulnerable code. Dependents that themselves declare embedding an affected
    /// item's source are followed in every mode.
    Declared,
    /// Through every binary that carries code (`-dev`, `-static`, `-source`), declared or not:
    /// for a library whose static consumers do not declare it. Over-approximates: a `-dev`
    /// package of a shared library does not embed the code of what it was built with.
    Dev,
}

impl Propagation {
    /// `declared` or `dev`.
    pub fn as_str(self) -> &'static str {
        match self {
            Propagation::Declared => "declared",
            Propagation::Dev => "dev",
        }
    }
}

impl FromStr for Propagation {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "declared" => Ok(Propagation::Declared),
            "dev" => Ok(Propagation::Dev),
            other => Err(format!("unknown propagation {other:?}: expected declared or dev")),
        }
    }
}

/// What a campaign is about, as the security team states it.
#[derive(Debug, Clone)]
pub struct CampaignSpec {
    /// Source package of the library; every binary it builds counts.
    pub library: String,
    /// First fixed version of the library (source version).
    pub fixed: Version,
    /// Suites in scope (each must have a Packages index ingested).
    pub suites: Vec<String>,
    /// Architectures in scope; empty: every architecture indexed for the suite.
    pub arches: Vec<String>,
    /// binNMUs or sourceful uploads.
    pub mode: Mode,
    /// Human title.
    pub title: String,
    /// Advisory references (CVE ids, DSA/DLA numbers).
    pub advisories: Vec<String>,
    /// How many waves of transitive dependents to follow (1: direct items only).
    pub max_depth: u32,
    /// Which affected items' dependents are followed.
    pub propagate: Propagation,
}

/// How much per-item detail an analysis records. The items, their binaries, versions, waves,
/// cycles, `after`, `found_by`, upstream thresholds and the plan's own notes are the same in
/// both; only what answers without evidence and notes never show is left out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detail {
    /// Every piece of evidence per binary, and each item's notes (disagreements between a
    /// binary's buildinfo and its declarations): what a saved campaign, a table or a full
    /// JSON answer carries.
    Full,
    /// Installed-Build-Depends evidence once per item and package version (naming the first
    /// binary that showed it) instead of once per binary, and no item notes. Declarations are
    /// kept per binary (propagation reads them). For answers that carry no evidence (wanna-build
    /// lines, uploads, brief items): for a library in every build this is a tenth of the
    /// records.
    Lean,
}

/// Default for [`CampaignSpec::max_depth`].
pub const DEFAULT_MAX_DEPTH: u32 = 8;

/// Which field of which record an [`Evidence`] comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EvidenceKind {
    /// The build's Installed-Build-Depends (from its .buildinfo).
    InstalledBuildDepends,
    /// The shipped binary's `Built-Using`.
    BuiltUsing,
    /// The shipped binary's `Static-Built-Using`.
    StaticBuiltUsing,
    /// The shipped binary's `X-Cargo-Built-Using`.
    XCargoBuiltUsing,
    /// A verification rebuild's signed in-toto link: `binary` is the build's buildinfo
    /// SHA-256, `package` the rebuilder (`operator/node`), `version` the link's SHA-256 (its
    /// key in the store).
    Attestation,
}

impl EvidenceKind {
    /// The field name as written in Debian files.
    pub fn field(self) -> &'static str {
        match self {
            EvidenceKind::InstalledBuildDepends => "Installed-Build-Depends",
            EvidenceKind::BuiltUsing => "Built-Using",
            EvidenceKind::StaticBuiltUsing => "Static-Built-Using",
            EvidenceKind::XCargoBuiltUsing => "X-Cargo-Built-Using",
            EvidenceKind::Attestation => "Attestation",
        }
    }

    /// The kebab-case name, as serialized (`installed-build-depends`, `built-using`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            EvidenceKind::InstalledBuildDepends => "installed-build-depends",
            EvidenceKind::BuiltUsing => "built-using",
            EvidenceKind::StaticBuiltUsing => "static-built-using",
            EvidenceKind::XCargoBuiltUsing => "x-cargo-built-using",
            EvidenceKind::Attestation => "attestation",
        }
    }

    /// The declaration kind for a stored `binary_embeds.field` value.
    pub fn from_field(field: &str) -> Option<Self> {
        match field {
            "Built-Using" => Some(EvidenceKind::BuiltUsing),
            "Static-Built-Using" => Some(EvidenceKind::StaticBuiltUsing),
            "X-Cargo-Built-Using" => Some(EvidenceKind::XCargoBuiltUsing),
            _ => None,
        }
    }

    /// Is this a declaration in the binary's own control fields (as opposed to the buildinfo)?
    pub fn is_declaration(self) -> bool {
        !matches!(self, EvidenceKind::InstalledBuildDepends | EvidenceKind::Attestation)
    }
}

/// One fact that ties a shipped binary to a version of the library (or of an affected
/// intermediate package), with the exact version seen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    /// Where the fact comes from.
    pub kind: EvidenceKind,
    /// The shipped binary package the fact is about.
    pub binary: String,
    /// The package named: an installed binary (`libfoo-dev`) or a declared source (`libfoo`).
    pub package: String,
    /// The exact version seen.
    pub version: String,
    /// Whether that version is vulnerable (below the fix, or a not-yet-rebuilt intermediate).
    pub vulnerable: bool,
    /// For transitive evidence: the affected item (`SOURCE/ARCH`) this package belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub through: Option<String>,
}

impl fmt::Display for Evidence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} {} of {}", self.kind.field(), self.package, self.version, self.binary)?;
        if let Some(t) = &self.through {
            write!(f, " (through {t})")?;
        }
        Ok(())
    }
}

/// Which kinds of evidence found an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FoundBy {
    /// Both the buildinfo and the binary's declarations.
    Both,
    /// Only the buildinfo (a missing declaration in the binary).
    BuildinfoOnly,
    /// Only the binary's declarations (no buildinfo known for the shipped build).
    DeclarationOnly,
}

impl FoundBy {
    /// The kebab-case name, as serialized.
    pub fn as_str(self) -> &'static str {
        match self {
            FoundBy::Both => "both",
            FoundBy::BuildinfoOnly => "buildinfo-only",
            FoundBy::DeclarationOnly => "declaration-only",
        }
    }
}

/// A version of a package that counts as vulnerable for an item: installed at or below
/// `max_version` means built against the affected intermediate `through`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpstreamThreshold {
    /// Binary package of the intermediate item.
    pub package: String,
    /// Highest vulnerable version (the intermediate's version when the campaign was planned).
    pub max_version: String,
    /// The intermediate item, `SOURCE/ARCH`.
    pub through: String,
}

/// One thing to rebuild: a source package on one architecture in one suite.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedItem {
    /// Suite.
    pub suite: String,
    /// Source package.
    pub source: String,
    /// Architecture of the shipped binaries (`all` only for declared embedding in arch:all).
    pub arch: String,
    /// Source version of the shipped binaries.
    pub source_version: String,
    /// Binary version shipped (may carry `+bN`).
    pub version: String,
    /// The build those binaries came from, when its buildinfo is known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build_sha256: Option<String>,
    /// Shipped binary packages of this source on this architecture.
    pub binaries: Vec<String>,
    /// Rebuild wave, from 1.
    pub wave: u32,
    /// Cycle group id when the item is part of a dependency cycle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cycle: Option<u32>,
    /// Which evidence found it.
    pub found_by: FoundBy,
    /// The facts (never empty in a plan; left out of answers that ask for less).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub evidence: Vec<Evidence>,
    /// Disagreements between buildinfo and declarations, in words.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// Items (`SOURCE/ARCH`) that must be rebuilt before this one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub after: Vec<String>,
    /// For items affected through intermediates: what still counts as vulnerable.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub upstream: Vec<UpstreamThreshold>,
    /// Sourceful mode: the version the no-change upload should get.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub planned_version: Option<String>,
}

impl PlannedItem {
    /// `SOURCE/ARCH`, the name other items use for it.
    pub fn key(&self) -> String {
        format!("{}/{}", self.source, self.arch)
    }

    /// The reason recorded when the item is planned: its vulnerable evidence, in words.
    pub fn planning_reason(&self) -> String {
        let vulnerable: Vec<String> =
            self.evidence.iter().filter(|e| e.vulnerable).take(3).map(|e| e.to_string()).collect();
        let more = self.evidence.iter().filter(|e| e.vulnerable).count().saturating_sub(3);
        let mut r = format!("ships {} {}; ", self.source, self.version);
        r.push_str(&vulnerable.join("; "));
        if more > 0 {
            r.push_str(&format!("; and {more} more"));
        }
        r
    }

    /// Whether any evidence comes from the buildinfo.
    pub fn has_buildinfo_evidence(&self) -> bool {
        self.evidence.iter().any(|e| e.kind == EvidenceKind::InstalledBuildDepends)
    }
}

/// A dependency cycle among items: rebuilt together, in one wave.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CycleGroup {
    /// Group id (unique within the plan).
    pub id: u32,
    /// Members, `SOURCE/ARCH`.
    pub members: Vec<String>,
    /// The wave the whole group is scheduled in.
    pub wave: u32,
}

/// The result of impact analysis.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Plan {
    /// Every affected item, ordered by wave, source, architecture.
    pub items: Vec<PlannedItem>,
    /// Dependency cycles, each scheduled as one group.
    pub cycles: Vec<CycleGroup>,
    /// Binary names of the library that were searched for.
    pub library_binaries: Vec<String>,
    /// Observations that are not items: unaffected binaries whose declarations disagree with
    /// their buildinfo, arch:all packages skipped, the depth cap.
    pub notes: Vec<String>,
    /// Items found beyond the depth cap and left out.
    pub beyond_depth: usize,
}

impl Plan {
    /// Number of waves.
    pub fn waves(&self) -> u32 {
        self.items.iter().map(|i| i.wave).max().unwrap_or(0)
    }
}

/// Where an item stands. Changes only through [`Standing::after`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ItemState {
    /// The shipped binaries are the vulnerable ones found at planning.
    Affected,
    /// A newer build (binNMU or the planned upload) is shipped; its evidence is not complete
    /// yet (no buildinfo, or the shipped bytes differ from the buildinfo's).
    Rebuilt,
    /// A maintainer upload replaced the vulnerable version; its evidence is not complete yet.
    Superseded,
    /// The newer build was still made against a vulnerable version.
    StillVulnerable,
    /// The newer build's buildinfo shows the fixed version and the shipped bytes match it;
    /// independent rebuilds have not confirmed it yet.
    FixedUnverified,
    /// No binary of this source and architecture is shipped in the suite any more.
    Removed,
    /// Proven: the shipped build shows the fixed version, at least k distinct operators'
    /// attested rebuilds reproduced it (no operator got other bytes), and every shipped .deb's
    /// SHA-256 equals the reproduced one.
    Covered,
}

impl ItemState {
    /// Every state, in display order.
    pub const ALL: [ItemState; 7] = [
        ItemState::Affected,
        ItemState::Rebuilt,
        ItemState::Superseded,
        ItemState::StillVulnerable,
        ItemState::FixedUnverified,
        ItemState::Covered,
        ItemState::Removed,
    ];

    /// The kebab-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            ItemState::Affected => "affected",
            ItemState::Rebuilt => "rebuilt",
            ItemState::Superseded => "superseded",
            ItemState::StillVulnerable => "still-vulnerable",
            ItemState::FixedUnverified => "fixed-unverified",
            ItemState::Removed => "removed",
            ItemState::Covered => "covered",
        }
    }
}

/// Whether an item is covered, and if not, which condition is missing. Decided with the
/// state by [`Standing::after`]; stored next to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Coverage {
    /// Every condition holds.
    Covered,
    /// The vulnerable binaries still ship, or a newer build's evidence is incomplete (no
    /// buildinfo yet, or shipped bytes differ from it).
    NotShippedYet,
    /// The shipped build was made against a vulnerable version.
    StillVulnerable,
    /// Fixed, but no or too few attested reproductions by distinct operators.
    Unverified,
    /// Fixed, but rebuilders got other bytes than the shipped ones.
    Unreproducible,
    /// Fixed, but operators' rebuilds disagree with each other.
    Disagreement,
    /// Nothing of the item ships any more.
    Removed,
}

impl Coverage {
    /// Every value, in display order.
    pub const ALL: [Coverage; 7] = [
        Coverage::Covered,
        Coverage::NotShippedYet,
        Coverage::StillVulnerable,
        Coverage::Unverified,
        Coverage::Unreproducible,
        Coverage::Disagreement,
        Coverage::Removed,
    ];

    /// The kebab-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Coverage::Covered => "covered",
            Coverage::NotShippedYet => "not-shipped-yet",
            Coverage::StillVulnerable => "still-vulnerable",
            Coverage::Unverified => "unverified",
            Coverage::Unreproducible => "unreproducible",
            Coverage::Disagreement => "disagreement",
            Coverage::Removed => "removed",
        }
    }

    /// What a state implies when nothing finer was recorded (items saved before coverage
    /// was tracked): a `fixed-unverified` item is `unverified`.
    pub fn of_state(state: ItemState) -> Coverage {
        match state {
            ItemState::Affected | ItemState::Rebuilt | ItemState::Superseded => Coverage::NotShippedYet,
            ItemState::StillVulnerable => Coverage::StillVulnerable,
            ItemState::FixedUnverified => Coverage::Unverified,
            ItemState::Covered => Coverage::Covered,
            ItemState::Removed => Coverage::Removed,
        }
    }
}

impl fmt::Display for Coverage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Coverage {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Coverage::ALL.into_iter().find(|c| c.as_str() == s).ok_or_else(|| format!("unknown coverage {s:?}"))
    }
}

/// What independent rebuilds say about the build a fixed item ships.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// Verified on attestations with the shipped bytes: one [`EvidenceKind::Attestation`] per
    /// operator.
    Covered(Vec<Evidence>),
    /// A condition is missing.
    Missing {
        /// Which: [`Coverage::Unverified`], [`Coverage::Unreproducible`] or
        /// [`Coverage::Disagreement`].
        gap: Coverage,
        /// In words (counts, differing files, both sides of a disagreement).
        why: String,
    },
}

impl fmt::Display for ItemState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ItemState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        ItemState::ALL.into_iter().find(|st| st.as_str() == s).ok_or_else(|| format!("unknown item state {s:?}"))
    }
}

/// How a newer version of an item's binaries came to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum How {
    /// A binNMU of the same source version, or the campaign's planned sourceful upload.
    Rebuild,
    /// Any other new source version.
    MaintainerUpload,
}

/// What the evidence says about a newer build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Not decidable yet, and why.
    Pending(String),
    /// Built against a vulnerable version: the evidence.
    Vulnerable(Vec<Evidence>),
    /// Built against the fixed version (or without the library), shipped bytes match the
    /// buildinfo: why, and what the verification rebuilds say.
    Fixed(Vec<Evidence>, Check),
}

/// What the archive and the buildinfos say about an item now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observation {
    /// The suite still ships the version found at planning.
    Original,
    /// Nothing of this source and architecture is shipped in the suite.
    Gone,
    /// A newer version is shipped.
    Newer {
        /// Binary version now shipped.
        version: String,
        /// Binary NMU / planned upload, or a maintainer upload.
        how: How,
        /// What its evidence says.
        verdict: Verdict,
    },
}

/// An item's state with its coverage: the two are decided together, by one function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Standing {
    /// Where the item stands.
    pub state: ItemState,
    /// Covered, or which condition is missing.
    pub coverage: Coverage,
}

impl Standing {
    /// The one transition function of a campaign item: where an observation of the archive
    /// and the evidence puts it. The previous state does not matter (the archive may move
    /// back, e.g. a removed binary returns), so this is a function of the observation alone.
    pub fn after(obs: &Observation) -> Standing {
        let (state, coverage) = match obs {
            Observation::Original => (ItemState::Affected, Coverage::NotShippedYet),
            Observation::Gone => (ItemState::Removed, Coverage::Removed),
            Observation::Newer { how, verdict, .. } => match verdict {
                Verdict::Pending(_) => match how {
                    How::Rebuild => (ItemState::Rebuilt, Coverage::NotShippedYet),
                    How::MaintainerUpload => (ItemState::Superseded, Coverage::NotShippedYet),
                },
                Verdict::Vulnerable(_) => (ItemState::StillVulnerable, Coverage::StillVulnerable),
                Verdict::Fixed(_, Check::Covered(_)) => (ItemState::Covered, Coverage::Covered),
                Verdict::Fixed(_, Check::Missing { gap, .. }) => (ItemState::FixedUnverified, *gap),
            },
        };
        Standing { state, coverage }
    }
}

/// A saved campaign.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CampaignRecord {
    /// Id.
    pub id: i64,
    /// Title.
    pub title: String,
    /// Library source package.
    pub library: String,
    /// First fixed version.
    pub fixed_version: String,
    /// Suites.
    pub suites: Vec<String>,
    /// Architectures (empty: all).
    pub arches: Vec<String>,
    /// binnmu or sourceful.
    pub mode: Mode,
    /// CVE ids etc.
    pub advisories: Vec<String>,
    /// Depth cap used.
    pub max_depth: u32,
    /// Unix seconds.
    pub created_at: i64,
    /// Plan-level notes.
    pub notes: Vec<String>,
}

/// A saved item with its current state.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ItemRecord {
    /// Id.
    pub id: i64,
    /// Campaign id.
    pub campaign_id: i64,
    /// The plan's view of the item (vulnerable version, evidence, wave).
    pub planned: PlannedItem,
    /// Current state.
    pub state: ItemState,
    /// Why it is in that state.
    pub reason: String,
    /// Binary version last evaluated (the vulnerable one until something newer ships).
    pub current_version: String,
    /// Covered, or which condition is missing.
    pub coverage: Coverage,
    /// Unix seconds of the last state change.
    pub updated_at: i64,
}

/// One recorded state change.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ItemEvent {
    /// Item id.
    pub item_id: i64,
    /// `SOURCE/ARCH` of the item, in its suite.
    pub item: String,
    /// Suite of the item.
    pub suite: String,
    /// Unix seconds.
    pub at: i64,
    /// Previous state (`None` for the creation event).
    pub from: Option<ItemState>,
    /// New state.
    pub to: ItemState,
    /// Binary version the change was judged on.
    pub version: String,
    /// Why.
    pub reason: String,
    /// The evidence.
    pub evidence: Vec<Evidence>,
}

/// A state change to record, applied only if the item is still in `from` (another
/// coordinator may have recorded the same change first).
#[derive(Debug, Clone)]
pub struct Transition {
    /// Item id.
    pub item_id: i64,
    /// The state the evaluation started from.
    pub from: ItemState,
    /// The new state.
    pub to: ItemState,
    /// Binary version judged.
    pub version: String,
    /// Why.
    pub reason: String,
    /// The evidence.
    pub evidence: Vec<Evidence>,
    /// The item's campaign.
    pub campaign_id: i64,
    /// The builds behind the judged version (linked to the shipped bytes by SHA-256), when the
    /// evaluation got that far: a fixed-unverified item's are queued for verification. Not
    /// stored.
    pub builds: Vec<i64>,
    /// The coverage after the change.
    pub coverage: Coverage,
}

impl Transition {
    /// The builds this change asks to verify: those that fixed the item, when it reached (or
    /// stays at, with a new version) `fixed-unverified`.
    pub fn builds_to_verify(&self) -> &[i64] {
        if self.to == ItemState::FixedUnverified { &self.builds } else { &[] }
    }
}

/// Why a campaign cannot be planned.
#[derive(Debug, thiserror::Error)]
pub enum CampaignError {
    /// No buildinfo, Packages or Sources entry names the library.
    #[error(
        "library {0:?} is unknown: no ingested buildinfo, Packages or Sources index names a binary \
         of source {0:?} (give the source package name, e.g. golang-golang-x-net, not a binary name)"
    )]
    UnknownLibrary(String),
    /// No Packages index was ingested for the suite.
    #[error(
        "suite {suite:?} has no Packages index ingested (known suites: {known}); run `debcover ingest archive --suite {suite} PACKAGES` first"
    )]
    UnknownSuite {
        /// The suite asked for.
        suite: String,
        /// Suites that are known, comma-separated.
        known: String,
    },
    /// An architecture not indexed for the suite.
    #[error("architecture {arch:?} has no Packages index in suite {suite:?} (indexed: {known})")]
    UnknownArch {
        /// Suite.
        suite: String,
        /// The architecture asked for.
        arch: String,
        /// Architectures indexed.
        known: String,
    },
    /// A campaign id that does not exist.
    #[error("no campaign with id {0}")]
    NoSuchCampaign(i64),
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// Parse a stored version, treating text that no longer parses as corruption.
pub(crate) fn version(s: &str) -> Option<Version> {
    Version::from_str(s).ok()
}

/// Item counts per state name, in state order.
pub fn state_counts(items: &[ItemRecord]) -> Vec<(String, u64)> {
    let mut m: std::collections::BTreeMap<ItemState, u64> = std::collections::BTreeMap::new();
    for s in items {
        *m.entry(s.state).or_default() += 1;
    }
    m.into_iter().map(|(s, n)| (s.to_string(), n)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names_are_the_serialized_names() {
        use EvidenceKind::*;
        for k in [InstalledBuildDepends, BuiltUsing, StaticBuiltUsing, XCargoBuiltUsing, Attestation] {
            assert_eq!(serde_json::to_value(k).unwrap(), k.as_str());
        }
        for f in [FoundBy::Both, FoundBy::BuildinfoOnly, FoundBy::DeclarationOnly] {
            assert_eq!(serde_json::to_value(f).unwrap(), f.as_str());
        }
    }

    fn newer(how: How, verdict: Verdict) -> Observation {
        Observation::Newer { version: "1.0-1+b1".into(), how, verdict }
    }

    fn state(obs: &Observation) -> ItemState {
        Standing::after(obs).state
    }

    fn coverage(obs: &Observation) -> Coverage {
        Standing::after(obs).coverage
    }

    #[test]
    fn transitions_follow_the_observation() {
        use ItemState::*;
        let pending = || Verdict::Pending("no buildinfo yet".into());
        assert_eq!(state(&Observation::Original), Affected);
        assert_eq!(state(&newer(How::Rebuild, pending())), Rebuilt);
        assert_eq!(state(&newer(How::MaintainerUpload, pending())), Superseded);
        assert_eq!(state(&newer(How::Rebuild, Verdict::Vulnerable(vec![]))), StillVulnerable);
        let unverified = || Check::Missing { gap: Coverage::Unverified, why: "0 of 2".into() };
        assert_eq!(state(&newer(How::MaintainerUpload, Verdict::Fixed(vec![], unverified()))), FixedUnverified);
        assert_eq!(state(&newer(How::Rebuild, Verdict::Fixed(vec![], unverified()))), FixedUnverified);
        assert_eq!(state(&Observation::Gone), Removed);
        for s in ItemState::ALL {
            assert_eq!(s.as_str().parse::<ItemState>(), Ok(s));
        }
    }

    #[test]
    fn covered_only_when_verified_and_otherwise_says_why() {
        use ItemState::*;
        let covered = newer(How::Rebuild, Verdict::Fixed(vec![], Check::Covered(vec![])));
        assert_eq!(Standing::after(&covered), Standing { state: Covered, coverage: Coverage::Covered });
        for gap in [Coverage::Unverified, Coverage::Unreproducible, Coverage::Disagreement] {
            let obs = newer(How::Rebuild, Verdict::Fixed(vec![], Check::Missing { gap, why: String::new() }));
            // A covered item that loses a condition says so.
            assert_eq!(Standing::after(&obs), Standing { state: FixedUnverified, coverage: gap });
        }
        assert_eq!(coverage(&newer(How::Rebuild, Verdict::Vulnerable(vec![]))), Coverage::StillVulnerable);
        assert_eq!(coverage(&newer(How::Rebuild, Verdict::Pending("no buildinfo".into()))), Coverage::NotShippedYet);
        assert_eq!(coverage(&Observation::Original), Coverage::NotShippedYet);
        assert_eq!(Standing::after(&Observation::Gone), Standing { state: Removed, coverage: Coverage::Removed });
        for c in Coverage::ALL {
            assert_eq!(c.as_str().parse::<Coverage>(), Ok(c));
        }
        for s in ItemState::ALL {
            assert!(Coverage::ALL.contains(&Coverage::of_state(s)));
        }
    }
}
