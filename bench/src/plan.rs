//! Planning builds from the real archive and rendering their `.buildinfo` text.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};

use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::archive::{Archive, parse_eq_relations};
use crate::base::{BASE, TOOLCHAINS};
use crate::render::{clearsign, digest, fake_hashes, rfc2822};
use crate::version::{older_n, upstream, without_epoch};

/// Hard ceiling of Installed-Build-Depends entries added through optional dependencies.
const IBD_CAP: usize = 450;

// ---------------------------------------------------------------- randomness

/// Version-stable helpers over the raw ChaCha8 stream (no float transcendental functions, so
/// output does not depend on the platform's libm).
pub(crate) struct Rng(ChaCha8Rng);

impl Rng {
    pub(crate) fn new(seed: u64, key: &str) -> Rng {
        Rng(ChaCha8Rng::from_seed(digest(&[&seed.to_le_bytes(), b"rng", key.as_bytes()])))
    }
    fn unit(&mut self) -> f64 {
        (self.0.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.0.next_u64() % n }
    }
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + self.below((hi - lo) as u64) as i64
    }
    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

/// Zipf(s = 1) sampler over packages ranked by reverse-dependency count.
struct Zipf {
    items: Vec<u32>,
    cum: Vec<f64>,
}

impl Zipf {
    fn new(mut items: Vec<u32>, archive: &Archive, popularity: &[u32]) -> Zipf {
        items.sort_by(|&a, &b| {
            popularity[b as usize]
                .cmp(&popularity[a as usize])
                .then_with(|| archive.packages[a as usize].name.cmp(&archive.packages[b as usize].name))
        });
        let mut total = 0.0;
        let cum = (0..items.len())
            .map(|r| {
                total += 1.0 / (r as f64 + 1.0);
                total
            })
            .collect();
        Zipf { items, cum }
    }
    fn sample(&self, rng: &mut Rng) -> Option<u32> {
        // A tiny pool (a small input excerpt) would put its few members in every build.
        if self.items.len() < 50 {
            return None;
        }
        let total = *self.cum.last()?;
        let x = rng.unit() * total;
        let i = self.cum.partition_point(|&c| c <= x).min(self.items.len() - 1);
        Some(self.items[i])
    }
}

// ---------------------------------------------------------------- planning

/// The architecture class of a build.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ArchClass {
    /// `Architecture: amd64` (arch-any binaries).
    Any,
    /// `Architecture: all`.
    All,
    /// `Architecture: all amd64` (a combined build).
    Both,
}

impl ArchClass {
    fn field(self) -> &'static str {
        match self {
            ArchClass::Any => "amd64",
            ArchClass::All => "all",
            ArchClass::Both => "all amd64",
        }
    }
    fn file_arch(self) -> &'static str {
        match self {
            ArchClass::All => "all",
            _ => "amd64",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Eco {
    C,
    Go,
    Rust,
    Python,
}

#[derive(Debug, Clone)]
struct Plan {
    source: String,
    source_version: String,
    version: String,
    arch: ArchClass,
    binaries: Vec<u32>,
    binnmu: Option<u32>,
    /// 0 for the version in the archive, k for the k-th synthesized older build.
    age: u32,
}

impl Plan {
    fn file_name(&self) -> String {
        format!("{}_{}_{}.buildinfo", self.source, without_epoch(&self.version), self.arch.file_arch())
    }
}

fn binnmu_of(version: &str, source_version: &str) -> Option<u32> {
    version.strip_prefix(source_version)?.strip_prefix("+b")?.parse().ok()
}

/// Static tables derived from the archive.
pub(crate) struct Model<'a> {
    archive: &'a Archive,
    fallback: HashMap<&'static str, &'static str>,
    general: Zipf,
    go: Zipf,
    rust: Zipf,
    /// source name -> its `-dev` binaries.
    src_devs: HashMap<&'a str, Vec<u32>>,
    eco: HashMap<&'a str, Eco>,
}

impl<'a> Model<'a> {
    pub(crate) fn new(archive: &'a Archive) -> Model<'a> {
        let base: HashSet<&str> = BASE.iter().map(|(n, _)| *n).collect();
        let mut src_devs: HashMap<&str, Vec<u32>> = HashMap::new();
        let mut src_rdeps: HashMap<&str, u32> = HashMap::new();
        let mut eco: HashMap<&str, Eco> = HashMap::new();
        for (i, p) in archive.packages.iter().enumerate() {
            if p.name.ends_with("-dev") {
                src_devs.entry(&p.source).or_default().push(i as u32);
            }
            *src_rdeps.entry(&p.source).or_default() += archive.rdeps[i];
            let e = if p.built_using.as_deref().is_some_and(|b| b.contains("golang-"))
                || p.source.starts_with("golang-")
            {
                Eco::Go
            } else if p.x_cargo_built_using.is_some() || p.source.starts_with("rust-") {
                Eco::Rust
            } else if p.name.starts_with("python3-") {
                Eco::Python
            } else {
                Eco::C
            };
            let slot = eco.entry(&p.source).or_insert(e);
            if *slot == Eco::C || (*slot == Eco::Python && e != Eco::C) {
                *slot = e;
            }
        }
        // Popularity of a -dev package: reverse dependencies on any binary of its source.
        let popularity: Vec<u32> = archive.packages.iter().map(|p| src_rdeps[p.source.as_str()]).collect();
        let (mut general, mut go, mut rust) = (Vec::new(), Vec::new(), Vec::new());
        for (i, p) in archive.packages.iter().enumerate() {
            if !p.name.ends_with("-dev") || base.contains(p.name.as_str()) {
                continue;
            }
            if p.name.starts_with("golang-") {
                go.push(i as u32);
            } else if p.name.starts_with("librust-") {
                rust.push(i as u32);
            } else if !p.name.contains("-cross") && !p.name.starts_with("linux-") {
                general.push(i as u32);
            }
        }
        let fallback = BASE.iter().chain(TOOLCHAINS).copied().collect();
        Model {
            archive,
            fallback,
            general: Zipf::new(general, archive, &popularity),
            go: Zipf::new(go, archive, &popularity),
            rust: Zipf::new(rust, archive, &popularity),
            src_devs,
            eco,
        }
    }

    /// Chooses `count` builds: real (source, version, arch-class) groups, plus older
    /// versions and binNMUs of real sources.
    fn plan(&self, count: usize, seed: u64) -> Vec<Plan> {
        let mut groups: BTreeMap<(&str, &str, bool), Vec<u32>> = BTreeMap::new();
        for (i, p) in self.archive.packages.iter().enumerate() {
            groups.entry((&p.source, &p.version, p.arch_all)).or_default().push(i as u32);
        }
        let mut plans: Vec<Plan> = Vec::new();
        // Combined builds: sourceful arch-any group plus the arch-all group of the same version.
        let eligible = groups
            .keys()
            .filter(|(s, v, all)| !*all && groups.contains_key(&(*s, *v, true)))
            .count()
            .max(1);
        let p_combine = (0.05 * count as f64 / eligible as f64).min(1.0);
        let mut rng = Rng::new(seed, "plan");
        let mut combined: HashSet<(&str, &str)> = HashSet::new();
        for ((s, v, all), bins) in &groups {
            let p0 = &self.archive.packages[bins[0] as usize];
            let binnmu = binnmu_of(v, &p0.source_version);
            let mut arch = if *all { ArchClass::All } else { ArchClass::Any };
            let mut binaries = bins.clone();
            if *all && combined.contains(&(*s, *v)) {
                continue;
            }
            if !*all && binnmu.is_none() && *v == p0.source_version.as_str()
                && let Some(other) = groups.get(&(*s, *v, true))
                    && rng.chance(p_combine) {
                        combined.insert((*s, *v));
                        arch = ArchClass::Both;
                        binaries.extend(other);
                    }
            plans.push(Plan {
                source: s.to_string(),
                source_version: p0.source_version.clone(),
                version: v.to_string(),
                arch,
                binaries,
                binnmu,
                age: 0,
            });
        }
        // Keep Go and Rust builds (the interesting ones for built-with queries), sample the rest.
        let min_hist = count * 4 / 100;
        let real_target = count.saturating_sub(min_hist).min(plans.len());
        let (mut keep, mut rest): (Vec<Plan>, Vec<Plan>) = plans
            .into_iter()
            .partition(|p| matches!(self.eco.get(p.source.as_str()), Some(Eco::Go | Eco::Rust)));
        for i in (1..rest.len()).rev() {
            let j = rng.below(i as u64 + 1) as usize;
            rest.swap(i, j);
        }
        if keep.len() > real_target {
            for i in (1..keep.len()).rev() {
                let j = rng.below(i as u64 + 1) as usize;
                keep.swap(i, j);
            }
            keep.truncate(real_target);
        }
        let need = real_target - keep.len();
        keep.extend(rest.into_iter().take(need));
        let mut names: HashSet<String> = keep.iter().map(Plan::file_name).collect();
        // Older builds of real sources until `count` is reached.
        let mut ages: HashMap<usize, u32> = HashMap::new();
        let real = keep.len();
        let mut attempts = 0;
        while keep.len() < count && real > 0 && attempts < count * 20 {
            attempts += 1;
            let idx = rng.below(real as u64) as usize;
            let age = ages.entry(idx).or_insert(0);
            *age += 1;
            let base = &keep[idx];
            let mut p = base.clone();
            p.age = *age;
            match base.binnmu {
                Some(n) if *age < n => p.version = format!("{}+b{}", base.source_version, n - *age),
                Some(n) if *age == n => {
                    p.version = base.source_version.clone();
                    p.binnmu = None;
                }
                _ => {
                    let steps = *age - base.binnmu.unwrap_or(0);
                    p.source_version = older_n(&base.source_version, steps);
                    p.version = p.source_version.clone();
                    p.binnmu = None;
                    if base.arch == ArchClass::Any && rng.chance(0.4) {
                        p.version = format!("{}+b1", p.source_version);
                        p.binnmu = Some(1);
                    }
                }
            }
            if names.insert(p.file_name()) {
                keep.push(p);
            }
        }
        keep.sort_by(|a, b| {
            (a.source.as_str(), a.arch, a.age).cmp(&(b.source.as_str(), b.arch, b.age)).then_with(|| a.version.cmp(&b.version))
        });
        keep
    }
}

// ---------------------------------------------------------------- rendering

/// One produced .deb.
#[derive(Debug, Clone)]
pub struct Deb {
    /// File name of the .deb.
    pub file: String,
    /// Size in bytes.
    pub size: u64,
    /// Fake SHA-256 (hex), equal in the buildinfo and the Packages entry.
    pub sha256: String,
}

/// One generated build.
#[derive(Debug, Clone)]
pub struct Build {
    /// `SRC_VERSION_ARCH.buildinfo`.
    pub file_name: String,
    /// Source package name.
    pub source: String,
    /// Binary version.
    pub version: String,
    /// `Architecture` field value.
    pub architecture: String,
    /// The unsigned deb822 paragraph (ends with a newline).
    pub paragraph: String,
    /// The file content (the paragraph, clearsigned for some builds).
    pub text: String,
    /// Whether `text` is clearsigned.
    pub signed: bool,
    /// Installed-Build-Depends package names (without arch qualifiers), sorted.
    pub ibd_names: Vec<String>,
    /// Every produced .deb, dbgsym included, sorted by file name.
    pub debs: Vec<Deb>,
    /// Packages-index paragraphs (non-dbgsym debs), each ending with a blank line.
    pub packages: String,
    /// Whether this is a synthesized older build rather than the archive's version.
    pub historical: bool,
}

struct Entry<'a> {
    name: Cow<'a, str>,
    version: Cow<'a, str>,
    source: Cow<'a, str>,
    qualify: bool,
}

struct Ibd<'a, 'm> {
    model: &'m Model<'a>,
    stamp: &'m mut Vec<u32>,
    epoch: u32,
    entries: Vec<Entry<'a>>,
    names: HashSet<Cow<'a, str>>,
}

impl<'a> Ibd<'a, '_> {
    fn seen(&self, i: u32) -> bool {
        self.stamp[i as usize] == self.epoch
    }
    fn push_pkg(&mut self, i: u32, version: Option<&'a str>) {
        self.stamp[i as usize] = self.epoch;
        let p = &self.model.archive.packages[i as usize];
        if self.names.insert(Cow::Borrowed(p.name.as_str())) {
            self.entries.push(Entry {
                name: Cow::Borrowed(&p.name),
                version: Cow::Borrowed(version.unwrap_or(&p.version)),
                source: Cow::Borrowed(&p.source),
                qualify: p.multi_arch_same && !p.arch_all,
            });
        }
    }
    fn push_synth(&mut self, name: Cow<'a, str>, version: &'a str, source: Cow<'a, str>) {
        if self.names.insert(name.clone()) {
            self.entries.push(Entry { name, version: Cow::Borrowed(version), source, qualify: false });
        }
    }
    /// Adds `root` and its dependency closure, unless that would exceed `cap` entries.
    fn add_closure(&mut self, root: u32, cap: usize) -> bool {
        if self.seen(root) {
            return true;
        }
        let mut todo = vec![root];
        let mut added: Vec<u32> = Vec::new();
        while let Some(i) = todo.pop() {
            if self.seen(i) {
                continue;
            }
            self.stamp[i as usize] = self.epoch;
            added.push(i);
            todo.extend(self.model.archive.packages[i as usize].deps.iter().copied().filter(|&d| !self.seen(d)));
            if self.entries.len() + added.len() > cap {
                for &a in &added {
                    self.stamp[a as usize] = 0;
                }
                return false;
            }
        }
        for a in added {
            self.push_pkg(a, None);
        }
        true
    }
    /// Adds a named package (from the archive, else the fallback table) with its closure.
    fn add_named(&mut self, name: &'static str, version: Option<&'a str>) {
        if let Some(&i) = self.model.archive.by_name.get(name) {
            if !self.seen(i) {
                self.push_pkg(i, version);
                for d in self.model.archive.packages[i as usize].deps.clone() {
                    self.add_closure(d, usize::MAX);
                }
            }
        } else if let Some(v) = version.or_else(|| self.model.fallback.get(name).copied()) {
            self.push_synth(Cow::Borrowed(name), v, Cow::Borrowed(name));
        }
    }
}

const GO_TOOLCHAIN: &[&str] = &["dh-golang", "golang-1.19-go", "golang-1.19-src", "golang-go", "golang-src"];
const RUST_TOOLCHAIN: &[&str] = &[
    "cargo", "rustc", "libstd-rust-1.63", "libstd-rust-dev", "dh-cargo", "libgit2-1.5", "libhttp-parser2.9",
    "libllvm14", "libssh2-1", "libcurl3-gnutls", "libz3-4",
];
const PY_TOOLCHAIN: &[&str] = &[
    "dh-python", "python3", "python3-all", "python3-setuptools", "python3-minimal", "libpython3-stdlib",
    "python3.11", "python3.11-minimal", "libpython3.11-minimal", "libpython3.11-stdlib",
];
const BUILDDS: &[&str] = &["x86-conova-01", "x86-conova-02", "x86-grnet-01", "x86-csail-01", "x86-ubc-01", "x86-ubc-02", "buildd-x86-conova-03"];

/// Renders one planned build.
pub(crate) struct Renderer<'a> {
    model: Model<'a>,
    seed: u64,
    stamp: Vec<u32>,
    epoch: u32,
}

impl<'a> Renderer<'a> {
    pub(crate) fn new(archive: &'a Archive, seed: u64) -> Renderer<'a> {
        Renderer { model: Model::new(archive), seed, stamp: vec![0; archive.packages.len()], epoch: 0 }
    }

    pub(crate) fn plans(&self, count: usize) -> Vec<PlanRef> {
        self.model.plan(count, self.seed).into_iter().map(PlanRef).collect()
    }

    pub(crate) fn render(&mut self, plan: &PlanRef) -> Build {
        let plan = &plan.0;
        let archive = self.model.archive;
        let file_name = plan.file_name();
        let mut rng = Rng::new(self.seed, &file_name);
        let eco = self.model.eco.get(plan.source.as_str()).copied().unwrap_or(Eco::C);
        self.epoch += 1;
        let epoch = self.epoch;
        let mut ibd = Ibd { model: &self.model, stamp: &mut self.stamp, epoch, entries: Vec::with_capacity(320), names: HashSet::with_capacity(400) };
        // The packages being built are never installed in their own build.
        for &b in &plan.binaries {
            ibd.stamp[b as usize] = epoch;
        }
        let u = rng.unit();
        let target = 145 + (270.0 * u * u) as usize;
        for (name, v) in BASE {
            match archive.by_name.get(*name) {
                Some(&i) => ibd.push_pkg(i, None),
                None => ibd.push_synth(Cow::Borrowed(*name), v, Cow::Borrowed(*name)),
            }
        }
        let mut built_using: Vec<(&'a str, &'a str)> = Vec::new();
        for &b in &plan.binaries {
            let p = &archive.packages[b as usize];
            for f in [&p.built_using, &p.static_built_using, &p.x_cargo_built_using].into_iter().flatten() {
                for (s, v) in parse_eq_relations(f) {
                    if !built_using.iter().any(|(s2, _)| *s2 == s) {
                        built_using.push((s, v));
                    }
                }
            }
        }
        let toolchain_version = |src: &str| built_using.iter().find(|(s, _)| *s == src).map(|(_, v)| *v);
        match eco {
            Eco::Go => {
                for name in GO_TOOLCHAIN {
                    let v = if name.starts_with("golang-1.19") { toolchain_version("golang-1.19") } else { None };
                    ibd.add_named(name, v);
                }
            }
            Eco::Rust => RUST_TOOLCHAIN.iter().for_each(|n| ibd.add_named(n, None)),
            Eco::Python => PY_TOOLCHAIN.iter().for_each(|n| ibd.add_named(n, None)),
            Eco::C => {}
        }
        // Libraries the binaries embed (Built-Using & co) were installed at exactly those versions.
        for &(src, v) in &built_using {
            if src.starts_with("golang-1.") || src == "golang-defaults" || src.starts_with("rustc") || src.starts_with("gcc-") {
                continue;
            }
            let devs: Vec<u32> = match self.model.src_devs.get(src) {
                Some(d) => d.clone(),
                None => match src.strip_prefix("rust-").map(|c| format!("librust-{c}-dev")) {
                    Some(n) => archive.by_name.get(&n).copied().into_iter().collect(),
                    None => Vec::new(),
                },
            };
            if devs.is_empty() {
                let name = match src.strip_prefix("rust-") {
                    Some(c) => format!("librust-{c}-dev"),
                    None => format!("{src}-dev"),
                };
                ibd.push_synth(Cow::Owned(name), v, Cow::Borrowed(src));
            }
            for d in devs {
                if !ibd.seen(d) {
                    ibd.push_pkg(d, Some(v));
                }
            }
        }
        for &(src, _) in &built_using {
            if let Some(devs) = self.model.src_devs.get(src) {
                for &d in devs {
                    for &dep in &archive.packages[d as usize].deps {
                        ibd.add_closure(dep, IBD_CAP);
                    }
                }
            }
        }
        // What the produced binaries depend on hints at what the build depended on: the
        // dependencies themselves and the -dev packages of the libraries among them.
        for &b in plan.binaries.iter().take(8) {
            for &d in &archive.packages[b as usize].deps {
                let dp = &archive.packages[d as usize];
                if dp.source == plan.source {
                    continue;
                }
                if dp.name.starts_with("lib") && !dp.arch_all && !dp.name.ends_with("-dev")
                    && let Some(&dev) = self.model.src_devs.get(dp.source.as_str()).and_then(|v| v.first()) {
                        ibd.add_closure(dev, IBD_CAP);
                    }
                if ibd.entries.len() < target {
                    ibd.add_closure(d, IBD_CAP);
                }
            }
        }
        let mut misses = 0;
        while ibd.entries.len() < target && misses < 40 {
            let pool = match eco {
                Eco::Go if rng.chance(0.85) => &self.model.go,
                Eco::Rust if rng.chance(0.9) => &self.model.rust,
                _ => &self.model.general,
            };
            match pool.sample(&mut rng) {
                Some(i) if !ibd.seen(i) && ibd.add_closure(i, IBD_CAP.min(target + 40)) => {}
                _ => misses += 1,
            }
        }
        let mut entries = ibd.entries;

        // Older library versions: per source, consistently for all its binaries.
        let historical = plan.age > 0;
        let (p_build, frac) = if historical { (1.0, 0.35 + 0.1 * plan.age.min(4) as f64) } else { (0.3, 0.1 + 0.2 * rng.unit()) };
        let mut levels: HashMap<String, u32> = HashMap::new();
        if rng.chance(p_build) {
            entries.sort_by(|a, b| a.name.cmp(&b.name));
            for e in &entries {
                if !levels.contains_key(e.source.as_ref()) {
                    let l = if rng.chance(frac) { 1 + u32::from(rng.chance(0.3)) + plan.age.min(2) } else { 0 };
                    levels.insert(e.source.to_string(), l);
                }
            }
            for e in &mut entries {
                let l = levels[e.source.as_ref()];
                if l > 0 {
                    e.version = Cow::Owned(older_n(&e.version, l));
                }
            }
        }
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        let qualify = rng.chance(0.02);

        // Produced files.
        let mut debs: Vec<(Deb, Option<u32>)> = Vec::new();
        let scale = if historical { 0.85 + 0.15 * rng.unit() } else { 1.0 };
        for &b in &plan.binaries {
            let p = &archive.packages[b as usize];
            let arch = if p.arch_all { "all" } else { "amd64" };
            let ver = if historical { without_epoch(&plan.version) } else { without_epoch(&p.version) };
            let file = format!("{}_{}_{}.deb", p.name, ver, arch);
            let size = ((p.size as f64 * scale) as u64).max(800);
            let sha256 = fake_hashes(self.seed, &file).2;
            debs.push((Deb { file, size, sha256 }, Some(b)));
            let dbg = !p.arch_all
                && !["-dev", "-doc", "-common", "-data"].iter().any(|s| p.name.ends_with(s))
                && !p.name.starts_with("golang-")
                && !p.name.starts_with("librust-")
                && digest(&[p.name.as_bytes()])[0] % 10 < 6;
            if dbg {
                let file = format!("{}-dbgsym_{}_{}.deb", p.name, ver, arch);
                let size = (size as f64 * (0.5 + 2.5 * rng.unit())) as u64;
                let sha256 = fake_hashes(self.seed, &file).2;
                debs.push((Deb { file, size, sha256 }, None));
            }
        }
        debs.sort_by(|a, b| a.0.file.cmp(&b.0.file));

        // Dates.
        const BOOKWORM_RELEASE: i64 = 1_686_355_200; // 2023-06-10
        let sourceful_date = BOOKWORM_RELEASE - rng.range(20 * 86_400, 4 * 365 * 86_400) - i64::from(plan.age) * rng.range(30 * 86_400, 300 * 86_400);
        let (sde, build_date) = if plan.binnmu.is_some() {
            let d = (sourceful_date + rng.range(86_400, 400 * 86_400)).min(BOOKWORM_RELEASE - rng.range(3_600, 30 * 86_400));
            (d, d + rng.range(60, 6 * 3_600))
        } else {
            (sourceful_date, sourceful_date + rng.range(300, 3 * 86_400))
        };

        // The paragraph, in dpkg-genbuildinfo's field order.
        let mut s = String::with_capacity(16_384);
        s.push_str("Format: 1.0\nSource: ");
        s.push_str(&plan.source);
        if plan.version != plan.source_version {
            s.push_str(" (");
            s.push_str(&plan.source_version);
            s.push(')');
        }
        s.push_str("\nBinary:");
        let mut bins: Vec<&str> = debs.iter().map(|(d, _)| d.file.split('_').next().unwrap_or("")).collect();
        bins.sort_unstable();
        bins.dedup();
        for b in &bins {
            s.push(' ');
            s.push_str(b);
        }
        s.push_str("\nArchitecture: ");
        s.push_str(plan.arch.field());
        s.push_str("\nVersion: ");
        s.push_str(&plan.version);
        s.push('\n');
        if plan.binnmu.is_some() {
            let reason = match eco {
                Eco::Go => "Rebuild for outdated Built-Using",
                Eco::Rust => "Rebuild against updated Rust dependencies",
                _ => *rng.pick(&["Rebuild against updated libraries", "Rebuild for outdated Built-Using", "Rebuild on buildd"]),
            };
            let buildd = rng.pick(BUILDDS);
            s.push_str(&format!(
                "Binary-Only-Changes:\n {} ({}) sid; urgency=low, binary-only=yes\n .\n   * Binary-only non-maintainer upload for amd64; no source changes.\n   * {}\n .\n  -- amd64 / i386 Build Daemon ({}) <buildd_amd64-{}@buildd.debian.org>  {}\n",
                plan.source, plan.version, reason, buildd, buildd, rfc2822(sde)
            ));
        }
        let mut md5s = String::new();
        let mut sha1s = String::new();
        let mut sha256s = String::new();
        for (d, _) in &debs {
            let (m, s1, _) = fake_hashes(self.seed, &d.file);
            md5s.push_str(&format!(" {} {} {}\n", m, d.size, d.file));
            sha1s.push_str(&format!(" {} {} {}\n", s1, d.size, d.file));
            sha256s.push_str(&format!(" {} {} {}\n", d.sha256, d.size, d.file));
        }
        s.push_str("Checksums-Md5:\n");
        s.push_str(&md5s);
        s.push_str("Checksums-Sha1:\n");
        s.push_str(&sha1s);
        s.push_str("Checksums-Sha256:\n");
        s.push_str(&sha256s);
        s.push_str("Build-Origin: Debian\nBuild-Architecture: amd64\nBuild-Date: ");
        s.push_str(&rfc2822(build_date));
        s.push_str("\nBuild-Path: ");
        let up = upstream(&plan.source_version);
        if rng.chance(0.7) {
            s.push_str(&format!("/build/reproducible-path/{}-{}\n", plan.source, up));
        } else {
            const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
            let tag: String = (0..6).map(|_| *rng.pick(ALNUM) as char).collect();
            s.push_str(&format!("/build/{}-{}/{}-{}\n", plan.source, tag, plan.source, up));
        }
        let t = rng.unit();
        if t < 0.25 {
            s.push_str("Build-Tainted-By:\n merged-usr-via-aliased-dirs\n");
        } else if t < 0.27 {
            s.push_str("Build-Tainted-By:\n merged-usr-via-aliased-dirs\n usr-local-has-programs\n");
        }
        s.push_str("Installed-Build-Depends:\n");
        let n = entries.len();
        for (k, e) in entries.iter().enumerate() {
            s.push(' ');
            s.push_str(&e.name);
            if qualify && e.qualify {
                s.push_str(":amd64");
            }
            s.push_str(" (= ");
            s.push_str(&e.version);
            s.push_str(if k + 1 < n { "),\n" } else { ")\n" });
        }
        s.push_str("Environment:\n DEB_BUILD_OPTIONS=\"");
        if rng.chance(0.05) {
            s.push_str("nocheck ");
        }
        s.push_str(&format!("parallel={}\"\n", rng.pick(&[2, 4, 4, 4, 6, 8])));
        if rng.chance(0.6) {
            s.push_str(" LANG=\"C.UTF-8\"\n");
        }
        s.push_str(" LC_ALL=\"C.UTF-8\"\n");
        if rng.chance(0.3) {
            s.push_str(" LC_COLLATE=\"C.UTF-8\"\n");
        }
        s.push_str(&format!(" SOURCE_DATE_EPOCH=\"{sde}\"\n"));

        let signed = rng.chance(0.2);
        let text = if signed { clearsign(&s, self.seed, &file_name) } else { s.clone() };

        // Packages paragraphs.
        let mut packages = String::new();
        let pool_prefix = if plan.source.starts_with("lib") && plan.source.len() > 3 { &plan.source[..4] } else { &plan.source[..1] };
        for (d, b) in &debs {
            let Some(b) = b else { continue };
            let p = &archive.packages[*b as usize];
            let version = if historical { plan.version.as_str() } else { p.version.as_str() };
            packages.push_str("Package: ");
            packages.push_str(&p.name);
            packages.push('\n');
            let src_ver = &plan.source_version;
            if version != src_ver {
                packages.push_str(&format!("Source: {} ({})\n", plan.source, src_ver));
            } else if p.name != plan.source {
                packages.push_str(&format!("Source: {}\n", plan.source));
            }
            packages.push_str(&format!("Version: {}\nArchitecture: {}\n", version, if p.arch_all { "all" } else { "amd64" }));
            for (field, value) in [("Built-Using", &p.built_using), ("Static-Built-Using", &p.static_built_using)] {
                if let Some(v) = value {
                    packages.push_str(field);
                    packages.push_str(": ");
                    packages.push_str(&rewrite_built_using(v, &levels));
                    packages.push('\n');
                }
            }
            packages.push_str(&format!(
                "Filename: pool/main/{}/{}/{}\nSize: {}\nSHA256: {}\n\n",
                pool_prefix, plan.source, d.file, d.size, d.sha256
            ));
        }
        Build {
            file_name,
            source: plan.source.clone(),
            version: plan.version.clone(),
            architecture: plan.arch.field().to_string(),
            paragraph: s,
            text,
            signed,
            ibd_names: entries.iter().map(|e| e.name.to_string()).collect(),
            debs: debs.into_iter().map(|(d, _)| d).collect(),
            packages,
            historical,
        }
    }
}

/// A planned build (opaque outside this module).
pub(crate) struct PlanRef(Plan);

/// Rewrites `src (= ver)` relations whose source was given an older version in the build.
fn rewrite_built_using(value: &str, levels: &HashMap<String, u32>) -> String {
    if levels.values().all(|&l| l == 0) {
        return value.to_string();
    }
    parse_eq_relations(value)
        .into_iter()
        .map(|(s, v)| match levels.get(s) {
            Some(&l) if l > 0 => format!("{s} (= {})", older_n(v, l)),
            _ => format!("{s} (= {v})"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}
