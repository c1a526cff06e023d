//! A plan in the release team's own formats.
//!
//! - `binnmu` mode: wanna-build requests, wave by wave. Wave 1 gets `nmu` lines with
//!   `--extra-depends` on the fixed library; later waves get `nmu` lines followed by `dw`
//!   (dep-wait) lines that hold them until the binNMUs of the wave before are installable.
//! - `sourceful` mode: one no-change upload per source and suite, with the version it should
//!   get and a ready changelog entry.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::str::FromStr;

use debversion::Version;
use serde::Serialize;

use super::{EvidenceKind, Plan, PlannedItem};

/// The parts of a campaign the exports mention.
#[derive(Debug, Clone)]
pub struct ExportContext<'a> {
    /// Campaign id, when saved.
    pub id: Option<i64>,
    /// Library source package.
    pub library: &'a str,
    /// First fixed version.
    pub fixed: &'a str,
    /// Advisory references.
    pub advisories: &'a [String],
    /// Title.
    pub title: &'a str,
    /// `Name <email>` for changelog trailers.
    pub changed_by: &'a str,
    /// RFC 2822 date for changelog trailers.
    pub date: &'a str,
}

impl ExportContext<'_> {
    fn reason(&self) -> String {
        let mut r = format!("Rebuild against {} {}", self.library, self.fixed);
        if !self.advisories.is_empty() {
            let _ = write!(r, " ({})", self.advisories.join(", "));
        }
        r
    }
}

/// The version a no-change sourceful upload of `source_version` to `suite` should get:
/// `+debNuM` for a Debian stable release (and its -security/-updates suites), otherwise the
/// NMU convention (`-3` → `-3.1`, `-3.1` → `-3.2`, native `1.2` → `1.2+nmu1`).
pub fn sourceful_version(suite: &str, source_version: &str) -> String {
    let codename = suite.split('-').next().unwrap_or(suite);
    let release = match codename {
        "buster" => Some(10),
        "bullseye" => Some(11),
        "bookworm" => Some(12),
        "trixie" => Some(13),
        "forky" => Some(14),
        "duke" => Some(15),
        _ => None,
    };
    if let Some(n) = release {
        let marker = format!("+deb{n}u");
        if let Some(pos) = source_version.rfind(&marker) {
            let tail = &source_version[pos + marker.len()..];
            if let Ok(m) = tail.parse::<u32>() {
                return format!("{}{marker}{}", &source_version[..pos], m + 1);
            }
        }
        return format!("{source_version}{marker}1");
    }
    match source_version.rsplit_once('-') {
        Some((upstream, revision)) => match revision.rsplit_once('.') {
            Some((base, n)) if n.parse::<u32>().is_ok() && !base.is_empty() => {
                format!("{upstream}-{base}.{}", n.parse::<u32>().unwrap_or(0) + 1)
            }
            _ => format!("{upstream}-{revision}.1"),
        },
        None => match source_version.rsplit_once("+nmu") {
            Some((base, n)) if n.parse::<u32>().is_ok() => {
                format!("{base}+nmu{}", n.parse::<u32>().unwrap_or(0) + 1)
            }
            _ => format!("{source_version}+nmu1"),
        },
    }
}

/// The binary version the next binNMU of `version` gets (`1.0-1` → `1.0-1+b1`,
/// `1.0-1+b1` → `1.0-1+b2`).
pub fn next_binnmu(version: &str) -> String {
    if let Some((base, n)) = version.rsplit_once("+b")
        && let Ok(n) = n.parse::<u32>()
    {
        return format!("{base}+b{}", n + 1);
    }
    format!("{version}+b1")
}

/// The version an upstream item's binaries will have once its rebuild is done.
fn rebuilt_version(up: &PlannedItem) -> String {
    match &up.planned_version {
        Some(v) => v.clone(),
        None => next_binnmu(&up.version),
    }
}

/// The library's binary packages the item was built with (for `--extra-depends`).
fn library_packages<'a>(item: &'a PlannedItem, plan: &'a Plan) -> Vec<&'a str> {
    let mut names: Vec<&str> = item
        .evidence
        .iter()
        .filter(|e| e.kind == EvidenceKind::InstalledBuildDepends && e.through.is_none())
        .map(|e| e.package.as_str())
        .collect();
    if names.is_empty() && item.evidence.iter().any(|e| e.through.is_none()) {
        // Found by declaration only: the library's -dev packages, if it has any.
        names = plan.library_binaries.iter().filter(|b| b.ends_with("-dev")).map(String::as_str).collect();
    }
    names.sort_unstable();
    names.dedup();
    names
}

/// What groups an item's wanna-build lines: (wave, suite, source).
fn run_key(i: &PlannedItem) -> (u32, &str, &str) {
    (i.wave, i.suite.as_str(), i.source.as_str())
}

/// Items by `(suite, source, arch)`.
type ItemIndex<'a> = std::collections::HashMap<(&'a str, &'a str, &'a str), &'a PlannedItem>;

/// The item `through` ("SOURCE/ARCH", names without a slash) of `suite`.
fn item_named<'m>(index: &'m ItemIndex<'m>, suite: &'m str, through: &'m str) -> Option<&'m PlannedItem> {
    let (source, arch) = through.split_once('/')?;
    index.get(&(suite, source, arch)).copied()
}

/// The dependencies a rebuild of `item` must wait for: the fixed library, and the rebuilt
/// versions of the upstream items it was built against. `fixed_deps` memoizes the first part
/// (`PACKAGE (>= FIXED)`) by package.
fn wait_for<'a>(
    item: &'a PlannedItem,
    plan: &'a Plan,
    index: &ItemIndex<'_>,
    ctx: &ExportContext<'_>,
    fixed_deps: &mut std::collections::HashMap<&'a str, String>,
) -> Vec<String> {
    let mut deps: Vec<String> = library_packages(item, plan)
        .into_iter()
        .map(|p| fixed_deps.entry(p).or_insert_with(|| format!("{p} (>= {})", ctx.fixed)).clone())
        .collect();
    if item.upstream.is_empty() {
        return deps;
    }
    for up in &item.upstream {
        if let Some(u) = item_named(index, &item.suite, &up.through) {
            // Members of one cycle are rebuilt together: waiting for each other would deadlock.
            if item.cycle.is_some() && u.cycle == item.cycle {
                continue;
            }
            let pkg = if u.binaries.contains(&up.package) {
                up.package.clone()
            } else {
                continue;
            };
            let dep = format!("{pkg} (>= {})", rebuilt_version(u));
            if !deps.contains(&dep) {
                deps.push(dep);
            }
        }
    }
    deps
}

/// wanna-build requests for a `binnmu` campaign, wave by wave.
pub fn wanna_build(plan: &Plan, ctx: &ExportContext<'_>) -> String {
    // About 180 bytes per line: one allocation for a suite-wide plan instead of twenty.
    let mut out = String::with_capacity(256 + 192 * plan.items.len());
    let _ = writeln!(out, "# {}", header(ctx));
    let _ = writeln!(
        out,
        "# {} items in {} waves; generated by debcover. Each wave waits for the one before.",
        plan.items.len(),
        plan.waves()
    );
    let cannot: Vec<&PlannedItem> = plan.items.iter().filter(|i| i.arch == "all").collect();
    // Only items that later items were built against are looked up.
    let index: ItemIndex<'_> = if plan.items.iter().any(|i| !i.upstream.is_empty()) {
        plan.items.iter().map(|i| ((i.suite.as_str(), i.source.as_str(), i.arch.as_str()), i)).collect()
    } else {
        ItemIndex::new()
    };
    // Lines go out in (wave, suite, source, source version, dependencies) order, one per
    // distinct tuple, with the arches that share it. An analysis hands its items sorted by
    // (wave, suite, source, arch) already, so the lines are found by walking runs of one
    // (wave, suite, source), each a handful of items, rather than by a map of every line.
    let mut order: Vec<&PlannedItem> = plan.items.iter().collect();
    if !order.is_sorted_by(|a, b| run_key(a) <= run_key(b)) {
        order.sort_by(|a, b| run_key(a).cmp(&run_key(b)));
    }
    let mut fixed_deps = std::collections::HashMap::new();
    let reason = ctx.reason();
    let fixed_suffix = format!("(>= {})", ctx.fixed);
    let mut wave = 0;
    let mut run: Vec<(&str, Vec<String>, &str)> = Vec::new();
    let mut start = 0;
    while start < order.len() {
        let key = run_key(order[start]);
        let end = order[start..].iter().position(|i| run_key(i) != key).map_or(order.len(), |n| start + n);
        run.clear();
        for &item in &order[start..end] {
            if item.arch == "all" {
                continue;
            }
            let deps = wait_for(item, plan, &index, ctx, &mut fixed_deps);
            run.push((item.source_version.as_str(), deps, item.arch.as_str()));
        }
        start = end;
        run.sort_unstable();
        let (w, suite, source) = key;
        let mut i = 0;
        while i < run.len() {
            let (sv, deps) = (run[i].0, &run[i].1);
            let j = run[i..].iter().position(|(v, d, _)| *v != sv || d != deps).map_or(run.len(), |n| i + n);
            let mut arches: Vec<&str> = run[i..j].iter().map(|(_, _, a)| *a).collect();
            arches.dedup();
            let arches = arches.join(" ");
            i = j;
            if w != wave {
                wave = w;
                let _ = writeln!(out);
                if wave == 1 {
                    let _ = writeln!(out, "# wave 1");
                } else {
                    let _ = writeln!(out, "# wave {wave}: dep-waits hold these until wave {} is installable", wave - 1);
                }
            }
            let _ = write!(out, "nmu {source}_{sv} . {arches} . {suite} . -m \"{reason}\"");
            if !deps.is_empty() {
                let _ = write!(out, " --extra-depends \"{}\"", deps.join(", "));
            }
            out.push('\n');
            if wave > 1 {
                let upstream: Vec<&str> =
                    deps.iter().filter(|d| !d.ends_with(&fixed_suffix)).map(String::as_str).collect();
                if !upstream.is_empty() {
                    let _ = writeln!(out, "dw {source}_{sv} . {arches} . {suite} . -m \"{}\"", upstream.join(", "));
                }
            }
        }
    }
    for g in &plan.cycles {
        let _ = writeln!(
            out,
            "\n# cycle {}: {} (wave {}): rebuild together; repeat if a buildinfo still shows a vulnerable version",
            g.id,
            g.members.join(", "),
            g.wave
        );
    }
    if !cannot.is_empty() {
        let _ = writeln!(out, "\n# arch:all packages cannot be binNMUed; these need a sourceful upload:");
        for item in cannot {
            let _ = writeln!(out, "#   {}_{} ({})", item.source, item.source_version, item.suite);
        }
    }
    out
}

/// One no-change sourceful upload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Upload {
    /// Wave (an upload waits for the uploads of earlier waves to be built).
    pub wave: u32,
    /// Target suite (the changelog distribution).
    pub suite: String,
    /// Source package.
    pub source: String,
    /// Version shipped now.
    pub current_version: String,
    /// Version the upload should get.
    pub version: String,
    /// Architectures whose binaries it fixes.
    pub arches: Vec<String>,
    /// A ready `debian/changelog` entry.
    pub changelog: String,
}

/// The uploads of a `sourceful` campaign, in wave order.
pub fn uploads(plan: &Plan, ctx: &ExportContext<'_>) -> Vec<Upload> {
    let mut by_source: BTreeMap<(u32, String, String), Upload> = BTreeMap::new();
    for item in &plan.items {
        let version =
            item.planned_version.clone().unwrap_or_else(|| sourceful_version(&item.suite, &item.source_version));
        let key = (item.wave, item.suite.clone(), item.source.clone());
        let up = by_source.entry(key).or_insert_with(|| Upload {
            wave: item.wave,
            suite: item.suite.clone(),
            source: item.source.clone(),
            current_version: item.source_version.clone(),
            version: version.clone(),
            arches: Vec::new(),
            changelog: String::new(),
        });
        up.arches.push(item.arch.clone());
    }
    let mut out: Vec<Upload> = by_source.into_values().collect();
    for up in &mut out {
        up.arches.sort();
        up.arches.dedup();
        let mut text = format!(
            "{} ({}) {}; urgency=medium\n\n  * Non-maintainer upload.\n  * No-change rebuild against {} {}",
            up.source, up.version, up.suite, ctx.library, ctx.fixed
        );
        if !ctx.advisories.is_empty() {
            let _ = write!(text, " to pick up the fix for\n    {}", ctx.advisories.join(", "));
        }
        text.push_str(".\n");
        let _ = write!(text, "\n -- {}  {}\n", ctx.changed_by, ctx.date);
        up.changelog = text;
    }
    out
}

/// The uploads as text: one block per upload, wave by wave.
pub fn uploads_text(plan: &Plan, ctx: &ExportContext<'_>) -> String {
    let mut out = format!("# {}\n", header(ctx));
    for up in uploads(plan, ctx) {
        let _ = writeln!(
            out,
            "\n# wave {}: {} {} -> {} in {} ({})\n",
            up.wave,
            up.source,
            up.current_version,
            up.version,
            up.suite,
            up.arches.join(" ")
        );
        out.push_str(&up.changelog);
    }
    out
}

fn header(ctx: &ExportContext<'_>) -> String {
    let mut h = match ctx.id {
        Some(id) => format!("debcover campaign {id}: "),
        None => "debcover campaign plan: ".to_owned(),
    };
    h.push_str(if ctx.title.is_empty() { ctx.library } else { ctx.title });
    let _ = write!(h, " (library {} fixed in {}", ctx.library, ctx.fixed);
    if !ctx.advisories.is_empty() {
        let _ = write!(h, "; {}", ctx.advisories.join(", "));
    }
    h.push(')');
    h
}

/// Check that a planned version sorts after the current one (a no-change upload must).
pub fn is_newer(current: &str, planned: &str) -> bool {
    matches!((Version::from_str(current), Version::from_str(planned)), (Ok(c), Ok(p)) if p > c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sourceful_versions_follow_debian_conventions() {
        let cases = [
            ("bookworm-security", "1.2-3", "1.2-3+deb12u1"),
            ("bookworm", "1.2-3+deb12u4", "1.2-3+deb12u5"),
            ("trixie-security", "2:0.27.0-1", "2:0.27.0-1+deb13u1"),
            ("unstable", "1.2-3", "1.2-3.1"),
            ("sid", "1.2-3.1", "1.2-3.2"),
            ("unstable", "1.2", "1.2+nmu1"),
            ("unstable", "1.2+nmu1", "1.2+nmu2"),
            ("unstable", "0.0~git20230101.abc-1", "0.0~git20230101.abc-1.1"),
        ];
        for (suite, v, want) in cases {
            let got = sourceful_version(suite, v);
            assert_eq!(got, want, "{suite} {v}");
            assert!(is_newer(v, &got), "{got} must sort after {v}");
        }
    }

    #[test]
    fn binnmu_versions_increment() {
        assert_eq!(next_binnmu("1.0-1"), "1.0-1+b1");
        assert_eq!(next_binnmu("1.0-1+b1"), "1.0-1+b2");
        assert_eq!(next_binnmu("1.0-1+b9"), "1.0-1+b10");
        assert!(is_newer("1.0-1+b9", &next_binnmu("1.0-1+b9")));
    }
}
