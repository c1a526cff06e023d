//! Backend-independent preparation of writes: deduplication of a batch, the interning keys it
//! needs, and the rows derived from an index. Both backends call these, so they agree on what
//! a batch means.

use std::collections::{HashMap, HashSet};

use debcover_formats::{Layout, PackagesEntry};

use super::StoreError;
use super::intern::Key;
use debcover_core::model::{NewBuild, ProducedFile, Stored};

/// What a batch of builds will write.
pub(crate) struct Plan<'a> {
    /// Per input, in order: inserted or already known.
    pub outcomes: Vec<Stored>,
    /// The builds to insert (first occurrence of each new SHA-256).
    pub new: Vec<&'a NewBuild>,
    /// For each of `new`, its index in `outcomes`.
    pub positions: Vec<usize>,
    /// Every distinct interning key the new builds need, sorted.
    pub keys: Vec<Key>,
    /// Position in `keys` of every key allocation the new builds hold, by address. Equal keys
    /// prepared together share one allocation ([`debcover_core::ingest::Preparer`]), so this map is as
    /// small as `keys` and hashing an address is cheaper than hashing the text; keys prepared
    /// apart still land on the same position, found by text.
    slots: foldhash::HashMap<usize, u32>,
}

/// The address of a key's text: its identity within one batch.
fn address(key: &Key) -> usize {
    std::sync::Arc::as_ptr(key).cast::<u8>() as usize
}

impl Plan<'_> {
    /// Position in [`Plan::keys`] of a key held by one of the new builds.
    pub(crate) fn slot(&self, key: &Key) -> Result<usize, StoreError> {
        self.slots
            .get(&address(key))
            .map(|s| *s as usize)
            .ok_or_else(|| StoreError::Corrupt(format!("key {key:?} was not planned")))
    }
}

/// Split a batch into new builds and already-known ones (stored before, or repeated in the batch).
pub(crate) fn plan<'a>(builds: &'a [NewBuild], known: &HashSet<String>) -> Plan<'a> {
    let mut seen = HashSet::new();
    let mut outcomes = Vec::with_capacity(builds.len());
    let mut new = Vec::new();
    let mut positions = Vec::new();
    // Distinct key allocations, in first-seen order, and each one's position among them.
    let mut slots: foldhash::HashMap<usize, u32> = foldhash::HashMap::default();
    let mut distinct: Vec<&Key> = Vec::new();
    for (pos, b) in builds.iter().enumerate() {
        if known.contains(&b.sha256) || !seen.insert(b.sha256.as_str()) {
            outcomes.push(Stored::AlreadyKnown);
        } else {
            outcomes.push(Stored::Inserted);
            for k in &b.dep_keys {
                slots.entry(address(k)).or_insert_with(|| {
                    distinct.push(k);
                    (distinct.len() - 1) as u32
                });
            }
            new.push(b);
            positions.push(pos);
        }
    }
    // A fixed order (by SHA-256, and sorted keys) means concurrent coordinators lock rows in the
    // same order and cannot deadlock on PostgreSQL's unique indexes.
    let mut order: Vec<usize> = (0..new.len()).collect();
    order.sort_by(|a, b| new[*a].sha256.cmp(&new[*b].sha256));
    let new = order.iter().map(|i| new[*i]).collect();
    let positions = order.iter().map(|i| positions[*i]).collect();
    // Sort the distinct allocations by text; equal texts (prepared apart) share a position.
    let mut by_text: Vec<u32> = (0..distinct.len() as u32).collect();
    by_text.sort_unstable_by(|a, b| distinct[*a as usize].cmp(distinct[*b as usize]));
    let mut keys: Vec<Key> = Vec::with_capacity(distinct.len());
    let mut position = vec![0u32; distinct.len()];
    for i in by_text {
        let k = distinct[i as usize];
        if keys.last() != Some(k) {
            keys.push(k.clone());
        }
        position[i as usize] = (keys.len() - 1) as u32;
    }
    for s in slots.values_mut() {
        *s = position[*s as usize];
    }
    Plan { outcomes, new, positions, keys, slots }
}

/// The stored name of a layout.
pub(crate) fn layout_name(l: Layout) -> &'static str {
    match l {
        Layout::Current => "current",
        Layout::PreRelease => "pre-release",
    }
}

/// `(binary id, field, source, version)` rows of the *Built-Using fields of `entries`.
pub(crate) fn embeds<'a>(
    entries: &'a [PackagesEntry],
    id_of: &HashMap<String, i64>,
) -> Result<Vec<(i64, &'static str, &'a str, String)>, StoreError> {
    let mut out = Vec::new();
    for e in entries {
        let id = *id_of
            .get(&e.sha256)
            .ok_or_else(|| StoreError::Corrupt(format!("binary {} not stored", e.sha256)))?;
        for (field, refs) in [
            ("Built-Using", &e.built_using),
            ("Static-Built-Using", &e.static_built_using),
            ("X-Cargo-Built-Using", &e.x_cargo_built_using),
        ] {
            out.extend(refs.iter().map(|r| (id, field, r.name.as_str(), r.version.to_string())));
        }
    }
    Ok(out)
}

/// Fill in `shipped_in` of produced files from `(sha256, "suite/arch")` rows (identical bytes
/// shipped) and `(build id, package, "suite/arch")` rows (binaries linked to the build by name:
/// they ship the file named `PACKAGE_...`). Sorted and deduplicated.
pub(crate) fn attach_shipping(
    files: &mut [ProducedFile],
    by_sha: Vec<(String, String)>,
    by_name: Vec<(i64, String, String)>,
) {
    let mut sha_map: HashMap<String, Vec<String>> = HashMap::new();
    for (sha, place) in by_sha {
        sha_map.entry(sha).or_default().push(place);
    }
    let mut name_map: HashMap<i64, Vec<(String, String)>> = HashMap::new();
    for (build, package, place) in by_name {
        name_map.entry(build).or_default().push((format!("{package}_"), place));
    }
    for f in files.iter_mut() {
        if let Some(places) = f.sha256.as_ref().and_then(|s| sha_map.get(s)) {
            f.shipped_in.extend(places.iter().cloned());
        }
        if let Some(links) = name_map.get(&f.build_id) {
            f.shipped_in.extend(links.iter().filter(|(p, _)| f.name.starts_with(p.as_str())).map(|(_, pl)| pl.clone()));
        }
        f.shipped_in.sort();
        f.shipped_in.dedup();
    }
}

/// The SHA-256 of a Sources entry's `.dsc`, from its Checksums-Sha256 (the one file named
/// `*.dsc`), lower-cased.
pub(crate) fn dsc_sha256(e: &debcover_formats::SourcesEntry) -> Option<String> {
    e.files.iter().find(|(_, _, name)| name.ends_with(".dsc")).map(|(sha, _, _)| sha.to_ascii_lowercase())
}
