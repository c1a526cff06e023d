//! The `built-with` answer on the wire: [`encode_pages`] turns an index answer into
//! `BuiltWithPage` messages (coordinator.proto), [`Pages`] turns received pages back into the
//! domain's [`BuiltWithResult`], checking every length and index.
//!
//! A page carries every distinct string once, build ids and `.deb` SHA-256s as 32 raw bytes,
//! one column per field, file names as `PACKAGE_VERSION_ARCH` + an extension, origins as a
//! shared prefix and a number, and exception lists for values not of those forms. It carries
//! exactly the information of the nested messages (`BuildSummary`, `Dependency`, `Binary`) in
//! about 40% of their size.
//!
//! The encoder reads the index's interned rows (`debcover_core::index::interned`): per page,
//! the generation's symbols are renumbered densely (a table lookup each) and each text used is
//! copied once; nothing is hashed per build but the matched entries.

// foldhash: the matched entries of a page are looked up by id, once per build.
use foldhash::HashMap;

use debcover_core::index::IndexedAnswer;
use debcover_core::index::interned::{FileName, Hash, InternedBinary};
use debcover_core::model::{BinarySummary, BuildSummary, BuiltWithResult, Dependency, ResultBuild};
use debcover_proto::v1 as pb;

/// How large a page may grow.
#[derive(Debug, Clone, Copy)]
pub struct PageLimits {
    /// Builds per page.
    pub builds: usize,
    /// Binaries per page (a page ends early at this many, so that sources with hundreds of
    /// binaries keep pages small; a build with more binaries has a page of its own).
    pub binaries: usize,
}

impl Default for PageLimits {
    /// 4,096 builds or 16,384 binaries: a page of the largest answers is then a megabyte or
    /// two, small enough to overlap encoding with sending, large enough that its string table
    /// is shared by many builds.
    fn default() -> Self {
        PageLimits { builds: 4096, binaries: 16_384 }
    }
}

/// Generation symbols → one page's string table (dense, in order of first use).
struct Remap {
    /// Local index + 1 by symbol (0: not used in this page yet).
    local: Vec<u32>,
    /// The symbols of the page's table, in order.
    order: Vec<u32>,
}

impl Remap {
    fn new(symbols: usize) -> Self {
        // Symbol 0 is "", local 0.
        let mut local = vec![0u32; symbols.max(1)];
        local[0] = 1;
        Remap { local, order: vec![0] }
    }

    /// Forget the page's numbering (the table is reused page after page: only the symbols used
    /// are cleared).
    fn clear(&mut self) {
        for s in self.order.drain(..) {
            if let Some(l) = self.local.get_mut(s as usize) {
                *l = 0;
            }
        }
        self.local[0] = 1;
        self.order.push(0);
    }

    #[inline]
    fn get(&mut self, symbol: u32) -> u32 {
        let s = symbol as usize;
        if s >= self.local.len() {
            self.local.resize(s + 1, 0);
        }
        match self.local[s] {
            0 => {
                let n = self.order.len() as u32;
                self.order.push(symbol);
                self.local[s] = n + 1;
                n
            }
            n => n - 1,
        }
    }
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// The pages of `answer`, handed to `emit` one by one in answer order (`emit` returns false to
/// stop: the receiver went away). An answer with no builds is one page without builds. Every
/// page stands alone; the first carries `resolved_packages`.
pub fn encode_pages(answer: &IndexedAnswer, limits: PageLimits, mut emit: impl FnMut(pb::BuiltWithPage) -> bool) {
    let first = pb::BuiltWithPage {
        resolved_packages: answer.resolved.clone(),
        string_lengths: vec![0],
        ..Default::default()
    };
    // Symbol 0 is "" and always local 0, so an empty page's table is [""] too.
    let Some(rows) = answer.interned.as_ref().filter(|_| !answer.builds.is_empty()) else {
        emit(first);
        return;
    };
    let symbols = rows.symbols();
    let read = rows.rows_of(&answer.builds);
    let parts = read.parts();
    let mut remap = Remap::new(symbols.len());
    let mut page = first;
    reserve(&mut page, answer.builds.len().min(limits.builds), limits.binaries);
    // The raw SHA-256 columns, gathered here (the page's `Bytes` fields are set when it is full).
    let mut build_ids: Vec<u8> = Vec::with_capacity(32 * answer.builds.len().min(limits.builds));
    let mut binary_sha256: Vec<u8> = Vec::new();
    // Matched entries of this page: id → index.
    let mut deps: HashMap<i64, u32> = HashMap::default();
    let mut builds_in_page = 0usize;
    let mut binaries_in_page = 0usize;
    for (i, m) in answer.builds.iter().enumerate() {
        let Some(p) = read.build(i) else { continue };
        let page_binaries = m.suite_files.as_ref().map_or(parts.binaries(p).len(), Vec::len);
        if builds_in_page > 0 && (builds_in_page >= limits.builds || binaries_in_page + page_binaries > limits.binaries) {
            page_strings(&mut page, symbols, &remap);
            let rest = (answer.builds.len() - i).min(limits.builds);
            page.build_ids = std::mem::replace(&mut build_ids, Vec::with_capacity(32 * rest)).into();
            page.binary_sha256 = std::mem::take(&mut binary_sha256).into();
            if !emit(std::mem::take(&mut page)) {
                return;
            }
            reserve(&mut page, rest, limits.binaries);
            remap.clear();
            deps.clear();
            builds_in_page = 0;
            binaries_in_page = 0;
        }
        builds_in_page += 1;
        binaries_in_page += page_binaries;
        let build = builds_in_page - 1;
        match p.id {
            Hash::Raw(raw) => build_ids.extend_from_slice(&raw),
            Hash::Odd(s) => {
                build_ids.extend_from_slice(&[0; 32]);
                page.odd_build_ids.push(count(build));
                page.odd_build_id_texts.push(symbols.with_table(|t| t.text(s).to_owned()));
            }
        }
        let [source, source_version, version, host, date, build_origin, prefix] = p.texts;
        page.build_source.push(remap.get(source));
        page.build_source_version.push(remap.get(source_version));
        page.build_version.push(remap.get(version));
        page.build_host_architecture.push(remap.get(host));
        page.build_date.push(remap.get(date));
        page.build_origin.push(remap.get(build_origin));
        page.build_origin_prefix.push(remap.get(prefix));
        page.build_origin_number.push(p.origin_number);
        let arches = parts.architectures(p);
        page.build_architecture_counts.push(count(arches.len()));
        page.build_architectures.extend(arches.iter().map(|s| remap.get(*s)));
        page.build_installed_build_depends.push(p.installed_build_depends);
        page.build_signed.push(p.signed);
        page.matched_counts.push(count(m.matched.len()));
        for d in &m.matched {
            let next = count(deps.len());
            let k = *deps.entry(d.id).or_insert_with(|| {
                for (col, text) in
                    [&mut page.dependency_name, &mut page.dependency_arch, &mut page.dependency_version].into_iter().zip([&d.name, &d.arch, &d.version])
                {
                    col.push(remap.get(symbols.intern(text)));
                }
                next
            });
            page.matched.push(k);
        }
        let mut put = |b: &InternedBinary| {
            let pos = count(page.binary_package.len());
            page.binary_package.push(remap.get(b.package));
            page.binary_version.push(remap.get(b.version));
            page.binary_architecture.push(remap.get(b.architecture));
            match b.name {
                FileName::Ext(s) => page.binary_extension.push(remap.get(s)),
                FileName::Odd(s) => {
                    page.binary_extension.push(0);
                    page.odd_filename_binaries.push(pos);
                    page.odd_filenames.push(symbols.with_table(|t| t.text(s).to_owned()));
                }
            }
            page.binary_size.push(b.size);
            match b.sha256 {
                Hash::Raw(raw) => binary_sha256.extend_from_slice(&raw),
                Hash::Odd(s) => {
                    binary_sha256.extend_from_slice(&[0; 32]);
                    page.odd_sha256_binaries.push(pos);
                    page.odd_sha256_texts.push(symbols.with_table(|t| t.text(s).to_owned()));
                }
            }
            let shipped = parts.shipped(b);
            page.binary_shipped_counts.push(count(shipped.len()));
            page.binary_shipped_in.extend(shipped.iter().map(|s| remap.get(*s)));
        };
        match &m.suite_files {
            None => {
                page.binary_counts.push(count(parts.binaries(p).len()));
                parts.binaries(p).iter().for_each(&mut put);
            }
            // With a suite, the binaries shipped there: a subsequence of the entry's files.
            Some(kept) => {
                page.binary_counts.push(count(kept.len()));
                let mut kept = kept.iter().peekable();
                for (f, b) in m.resolved.files.iter().zip(parts.binaries(p)) {
                    if kept.next_if(|k| *k == f).is_some() {
                        put(b);
                    }
                }
            }
        }
    }
    page_strings(&mut page, symbols, &remap);
    page.build_ids = build_ids.into();
    page.binary_sha256 = binary_sha256.into();
    emit(page);
}

/// Room for a page of `builds` builds and about `binaries` binaries in its columns: they are
/// filled by pushes, and growing them copies a page's worth of memory again and again.
fn reserve(page: &mut pb::BuiltWithPage, builds: usize, binaries: usize) {
    // Most builds make one to three binaries: a small answer does not reserve a full page.
    let binaries = binaries.min(builds * 4);
    for col in [
        &mut page.build_source,
        &mut page.build_source_version,
        &mut page.build_version,
        &mut page.build_host_architecture,
        &mut page.build_date,
        &mut page.build_origin,
        &mut page.build_origin_prefix,
        &mut page.build_architecture_counts,
        &mut page.build_architectures,
        &mut page.build_installed_build_depends,
        &mut page.matched_counts,
        &mut page.matched,
        &mut page.binary_counts,
    ] {
        col.reserve(builds);
    }
    page.build_origin_number.reserve(builds);
    page.build_signed.reserve(builds);
    for col in [
        &mut page.binary_package,
        &mut page.binary_version,
        &mut page.binary_architecture,
        &mut page.binary_extension,
        &mut page.binary_shipped_counts,
        &mut page.binary_shipped_in,
    ] {
        col.reserve(binaries);
    }
    page.binary_size.reserve(binaries);
}

/// A page's string table: the texts of its symbols, in its numbering, end to end.
fn page_strings(page: &mut pb::BuiltWithPage, symbols: &debcover_core::index::interned::Symbols, remap: &Remap) {
    let mut bytes = Vec::new();
    let mut lengths = Vec::with_capacity(remap.order.len());
    symbols.with_table(|t| {
        for s in &remap.order {
            let text = t.text(*s);
            bytes.extend_from_slice(text.as_bytes());
            lengths.push(count(text.len()));
        }
    });
    page.string_bytes = bytes.into();
    page.string_lengths = lengths;
}

/// A page that cannot be read: the column at fault and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed built-with page: {field}: {message}")]
pub struct PageError {
    /// The column (field name of `BuiltWithPage`).
    pub field: &'static str,
    /// What is wrong with it.
    pub message: String,
}

fn bad(field: &'static str, message: impl Into<String>) -> PageError {
    PageError { field, message: message.into() }
}

fn same_len(field: &'static str, len: usize, rows: usize, of: &str) -> Result<(), PageError> {
    if len != rows {
        return Err(bad(field, format!("{len} values for {rows} {of}")));
    }
    Ok(())
}

fn indices(field: &'static str, col: &[u32], bound: usize, of: &str) -> Result<(), PageError> {
    if let Some((i, v)) = col.iter().enumerate().find(|(_, v)| **v as usize >= bound) {
        return Err(bad(field, format!("value {i} is {v}, beyond the {bound} {of}")));
    }
    Ok(())
}

/// Where each row's run starts in a column of `total` values, from per-row counts.
fn starts(field: &'static str, counts: &[u32], total: usize, of: &str) -> Result<Vec<usize>, PageError> {
    let mut out = Vec::with_capacity(counts.len() + 1);
    let mut at = 0usize;
    out.push(0);
    for c in counts {
        at = at.checked_add(*c as usize).ok_or_else(|| bad(field, "counts overflow"))?;
        if at > total {
            return Err(bad(field, format!("counts add up to more than the {total} {of}")));
        }
        out.push(at);
    }
    if at != total {
        return Err(bad(field, format!("counts add up to {at}, not the {total} {of}")));
    }
    Ok(out)
}

/// Exception positions: strictly ascending, within `bound`, one text each.
fn odd(field: &'static str, texts_field: &'static str, positions: &[u32], texts: &[String], bound: usize, of: &str) -> Result<(), PageError> {
    same_len(texts_field, texts.len(), positions.len(), field)?;
    indices(field, positions, bound, of)?;
    if positions.windows(2).any(|p| p[0] >= p[1]) {
        return Err(bad(field, "positions not strictly ascending"));
    }
    Ok(())
}

/// Check every length and index of a page; the row starts of its run columns.
struct Checked {
    architectures: Vec<usize>,
    matched: Vec<usize>,
    binaries: Vec<usize>,
    shipped: Vec<usize>,
}

/// The string table of a page: where each string starts in `string_bytes` (one more offset
/// than strings), every string checked to be UTF-8.
fn string_offsets(p: &pb::BuiltWithPage) -> Result<Vec<usize>, PageError> {
    let text = std::str::from_utf8(&p.string_bytes)
        .map_err(|e| bad("string_bytes", format!("not UTF-8 at byte {}", e.valid_up_to())))?;
    let mut out = Vec::with_capacity(p.string_lengths.len() + 1);
    let mut at = 0usize;
    out.push(0);
    for (i, len) in p.string_lengths.iter().enumerate() {
        at = at.checked_add(*len as usize).ok_or_else(|| bad("string_lengths", "lengths overflow"))?;
        if !text.is_char_boundary(at) || at > text.len() {
            return Err(bad("string_lengths", format!("string {i} ends at byte {at}, not at a character of the {} bytes", text.len())));
        }
        out.push(at);
    }
    if at != text.len() {
        return Err(bad("string_lengths", format!("lengths add up to {at}, not the {} bytes of string_bytes", text.len())));
    }
    Ok(out)
}

fn check(p: &pb::BuiltWithPage, strings: usize) -> Result<Checked, PageError> {
    let n = p.build_source.len();
    let of = "builds";
    for (field, len) in [
        ("build_source_version", p.build_source_version.len()),
        ("build_version", p.build_version.len()),
        ("build_architecture_counts", p.build_architecture_counts.len()),
        ("build_host_architecture", p.build_host_architecture.len()),
        ("build_date", p.build_date.len()),
        ("build_origin", p.build_origin.len()),
        ("build_installed_build_depends", p.build_installed_build_depends.len()),
        ("build_signed", p.build_signed.len()),
        ("build_origin_prefix", p.build_origin_prefix.len()),
        ("build_origin_number", p.build_origin_number.len()),
        ("matched_counts", p.matched_counts.len()),
        ("binary_counts", p.binary_counts.len()),
    ] {
        same_len(field, len, n, of)?;
    }
    if p.build_ids.len() != n.saturating_mul(32) {
        return Err(bad("build_ids", format!("{} bytes for {n} builds (32 each)", p.build_ids.len())));
    }
    for (field, col) in [
        ("build_source", &p.build_source),
        ("build_source_version", &p.build_source_version),
        ("build_version", &p.build_version),
        ("build_architectures", &p.build_architectures),
        ("build_host_architecture", &p.build_host_architecture),
        ("build_date", &p.build_date),
        ("build_origin", &p.build_origin),
        ("build_origin_prefix", &p.build_origin_prefix),
        ("dependency_name", &p.dependency_name),
        ("dependency_arch", &p.dependency_arch),
        ("dependency_version", &p.dependency_version),
        ("binary_package", &p.binary_package),
        ("binary_version", &p.binary_version),
        ("binary_architecture", &p.binary_architecture),
        ("binary_extension", &p.binary_extension),
        ("binary_shipped_in", &p.binary_shipped_in),
    ] {
        indices(field, col, strings, "strings")?;
    }
    let architectures =
        starts("build_architecture_counts", &p.build_architecture_counts, p.build_architectures.len(), "build_architectures")?;
    let d = p.dependency_name.len();
    same_len("dependency_arch", p.dependency_arch.len(), d, "dependencies")?;
    same_len("dependency_version", p.dependency_version.len(), d, "dependencies")?;
    indices("matched", &p.matched, d, "dependencies")?;
    let matched = starts("matched_counts", &p.matched_counts, p.matched.len(), "matched entries")?;
    let m = p.binary_package.len();
    let binaries = starts("binary_counts", &p.binary_counts, m, "binaries")?;
    let of = "binaries";
    for (field, len) in [
        ("binary_version", p.binary_version.len()),
        ("binary_architecture", p.binary_architecture.len()),
        ("binary_extension", p.binary_extension.len()),
        ("binary_shipped_counts", p.binary_shipped_counts.len()),
        ("binary_size", p.binary_size.len()),
    ] {
        same_len(field, len, m, of)?;
    }
    if p.binary_sha256.len() != m.saturating_mul(32) {
        return Err(bad("binary_sha256", format!("{} bytes for {m} binaries (32 each)", p.binary_sha256.len())));
    }
    let shipped = starts("binary_shipped_counts", &p.binary_shipped_counts, p.binary_shipped_in.len(), "binary_shipped_in")?;
    odd("odd_build_ids", "odd_build_id_texts", &p.odd_build_ids, &p.odd_build_id_texts, n, "builds")?;
    odd("odd_filename_binaries", "odd_filenames", &p.odd_filename_binaries, &p.odd_filenames, m, of)?;
    odd("odd_sha256_binaries", "odd_sha256_texts", &p.odd_sha256_binaries, &p.odd_sha256_texts, m, of)?;
    Ok(Checked { architectures, matched, binaries, shipped })
}

/// The text of exception `i` of a sorted position list, if `i` is one.
fn exception<'a>(positions: &[u32], texts: &'a [String], i: usize) -> Option<&'a str> {
    let i = u32::try_from(i).ok()?;
    positions.binary_search(&i).ok().and_then(|k| texts.get(k)).map(String::as_str)
}

/// Received pages, gathered into one answer.
#[derive(Debug, Default)]
pub struct Pages {
    result: BuiltWithResult,
    pages: usize,
}

impl Pages {
    /// No page yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Check `page` and add its builds (every string and index checked first: a malformed page
    /// adds nothing).
    pub fn add(&mut self, page: &pb::BuiltWithPage) -> Result<(), PageError> {
        let offsets = string_offsets(page)?;
        let c = check(page, offsets.len() - 1)?;
        if self.pages == 0 {
            self.result.resolved_packages = page.resolved_packages.clone();
        }
        self.pages += 1;
        // Checked above: every offset is within the bytes and on a character boundary.
        let table = std::str::from_utf8(&page.string_bytes).unwrap_or_default();
        let s = |col: &[u32], i: usize| -> String {
            col.get(i)
                .and_then(|k| table.get(*offsets.get(*k as usize)?..*offsets.get(*k as usize + 1)?))
                .unwrap_or_default()
                .to_owned()
        };
        let raw = |b: &[u8], i: usize| b.get(32 * i..32 * i + 32).map(hex::encode).unwrap_or_default();
        self.result.builds.reserve(page.build_source.len());
        for i in 0..page.build_source.len() {
            let origin_prefix = s(&page.build_origin_prefix, i);
            let origin = match page.build_origin_number.get(i).copied().unwrap_or_default().checked_sub(1) {
                Some(n) => format!("{origin_prefix}{n}"),
                None => origin_prefix,
            };
            let build = BuildSummary {
                id: exception(&page.odd_build_ids, &page.odd_build_id_texts, i)
                    .map_or_else(|| raw(&page.build_ids, i), str::to_owned),
                source: s(&page.build_source, i),
                source_version: s(&page.build_source_version, i),
                version: s(&page.build_version, i),
                architectures: (c.architectures[i]..c.architectures[i + 1]).map(|k| s(&page.build_architectures, k)).collect(),
                host_architecture: s(&page.build_host_architecture, i),
                build_date: s(&page.build_date, i),
                build_origin: s(&page.build_origin, i),
                installed_build_depends: page.build_installed_build_depends.get(i).copied().unwrap_or_default(),
                signed: page.build_signed.get(i).copied().unwrap_or_default(),
                // Not in built-with pages (a column per answer for a rare field): `build show`.
                signer: String::new(),
                origin,
            };
            let matched = (c.matched[i]..c.matched[i + 1])
                .map(|k| {
                    let d = page.matched.get(k).map_or(usize::MAX, |d| *d as usize);
                    Dependency {
                        name: s(&page.dependency_name, d),
                        arch: s(&page.dependency_arch, d),
                        version: s(&page.dependency_version, d),
                    }
                })
                .collect();
            let binaries = (c.binaries[i]..c.binaries[i + 1])
                .map(|k| {
                    let package = s(&page.binary_package, k);
                    let version = s(&page.binary_version, k);
                    let architecture = s(&page.binary_architecture, k);
                    let filename = match exception(&page.odd_filename_binaries, &page.odd_filenames, k) {
                        Some(t) => t.to_owned(),
                        None => format!("{package}_{version}_{architecture}.{}", s(&page.binary_extension, k)),
                    };
                    BinarySummary {
                        filename,
                        size: page.binary_size.get(k).copied().unwrap_or_default(),
                        sha256: exception(&page.odd_sha256_binaries, &page.odd_sha256_texts, k)
                            .map_or_else(|| raw(&page.binary_sha256, k), str::to_owned),
                        shipped_in: (c.shipped[k]..c.shipped[k + 1]).map(|j| s(&page.binary_shipped_in, j)).collect(),
                        package,
                        version,
                        architecture,
                    }
                })
                .collect();
            self.result.builds.push(ResultBuild { build, matched, binaries });
        }
        Ok(())
    }

    /// Pages added so far.
    pub fn pages(&self) -> usize {
        self.pages
    }

    /// The whole answer.
    pub fn finish(self) -> BuiltWithResult {
        self.result
    }
}

/// One page as an answer (tests and tools).
pub fn decode_page(page: &pb::BuiltWithPage) -> Result<BuiltWithResult, PageError> {
    let mut p = Pages::new();
    p.add(page)?;
    Ok(p.finish())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use prost::Message;

    fn one_build() -> pb::BuiltWithPage {
        pb::BuiltWithPage {
            string_bytes: "hello2.10-3amd64debbookworm/amd64libc6-dev2.36-9".as_bytes().to_vec().into(),
            string_lengths: vec![0, 5, 6, 5, 3, 14, 9, 6],
            resolved_packages: vec!["libc6-dev".into()],
            build_ids: vec![0xab; 32].into(),
            build_source: vec![1],
            build_source_version: vec![2],
            build_version: vec![2],
            build_architecture_counts: vec![1],
            build_architectures: vec![3],
            build_host_architecture: vec![3],
            build_date: vec![0],
            build_origin: vec![0],
            build_installed_build_depends: vec![250],
            build_signed: vec![true],
            build_origin_prefix: vec![1],
            build_origin_number: vec![8],
            dependency_name: vec![6],
            dependency_arch: vec![0],
            dependency_version: vec![7],
            matched_counts: vec![1],
            matched: vec![0],
            binary_counts: vec![2],
            binary_package: vec![1, 1],
            binary_version: vec![2, 2],
            binary_architecture: vec![3, 3],
            binary_extension: vec![4, 0],
            binary_size: vec![10, 20],
            binary_sha256: vec![0x01; 64].into(),
            binary_shipped_counts: vec![1, 0],
            binary_shipped_in: vec![5],
            odd_build_ids: vec![],
            odd_build_id_texts: vec![],
            odd_filename_binaries: vec![1],
            odd_filenames: vec!["odd name".into()],
            odd_sha256_binaries: vec![1],
            odd_sha256_texts: vec![String::new()],
        }
    }

    #[test]
    fn a_hand_made_page_decodes_field_by_field() {
        let got = decode_page(&one_build()).unwrap();
        assert_eq!(got.resolved_packages, ["libc6-dev"]);
        let b = &got.builds[0];
        assert_eq!(b.build.id, "ab".repeat(32));
        assert_eq!((b.build.source.as_str(), b.build.origin.as_str(), b.build.signed), ("hello", "hello7", true));
        assert_eq!(b.matched, [Dependency { name: "libc6-dev".into(), arch: String::new(), version: "2.36-9".into() }]);
        assert_eq!(b.binaries[0].filename, "hello_2.10-3_amd64.deb");
        assert_eq!(b.binaries[0].sha256, "01".repeat(32));
        assert_eq!(b.binaries[0].shipped_in, ["bookworm/amd64"]);
        assert_eq!((b.binaries[1].filename.as_str(), b.binaries[1].sha256.as_str()), ("odd name", ""));
    }

    #[test]
    fn pages_add_up_and_only_the_first_names_the_packages() {
        let mut p = Pages::new();
        p.add(&one_build()).unwrap();
        p.add(&pb::BuiltWithPage { resolved_packages: vec!["other".into()], ..one_build() }).unwrap();
        let r = p.finish();
        assert_eq!((r.builds.len(), r.resolved_packages.as_slice()), (2, &["libc6-dev".to_owned()][..]));
    }

    #[test]
    fn malformed_columns_are_named() {
        let field = |f: &dyn Fn(&mut pb::BuiltWithPage)| {
            let mut r = one_build();
            f(&mut r);
            decode_page(&r).unwrap_err().field
        };
        assert_eq!(field(&|r| r.build_source = vec![99]), "build_source");
        assert_eq!(field(&|r| r.binary_shipped_in = vec![8]), "binary_shipped_in");
        assert_eq!(field(&|r| r.matched = vec![1]), "matched");
        assert_eq!(field(&|r| r.binary_counts = vec![3]), "binary_counts");
        assert_eq!(field(&|r| r.build_architecture_counts = vec![u32::MAX]), "build_architecture_counts");
        assert_eq!(field(&|r| r.build_ids = vec![0; 31].into()), "build_ids");
        assert_eq!(field(&|r| r.binary_sha256 = vec![0; 65].into()), "binary_sha256");
        assert_eq!(field(&|r| r.build_date.clear()), "build_date");
        assert_eq!(field(&|r| r.odd_sha256_binaries = vec![2]), "odd_sha256_binaries");
        assert_eq!(field(&|r| r.odd_filenames.clear()), "odd_filenames");
        assert_eq!(field(&|r| r.odd_filename_binaries = vec![1, 1]), "odd_filenames");
        // The string table: lengths that do not cut the bytes into whole UTF-8 strings.
        assert_eq!(field(&|r| r.string_lengths.push(1)), "string_lengths");
        assert_eq!(field(&|r| r.string_lengths.pop().map_or((), drop)), "string_lengths");
        assert_eq!(field(&|r| r.string_lengths[1] = u32::MAX), "string_lengths");
        assert_eq!(field(&|r| r.string_bytes = b"\xff".repeat(48).into()), "string_bytes");
        assert_eq!(field(&|r| r.string_lengths.clear()), "string_lengths");
        let mut split = one_build();
        split.string_bytes = "h\u{e9}llo2.10-3amd64debbookworm/amd64libc6-dev2.36-9".as_bytes().to_vec().into();
        split.string_lengths = vec![0, 2, 5, 6, 4, 3, 14, 9, 6];
        assert_eq!(decode_page(&split).unwrap_err().field, "string_lengths", "a length that cuts a character in two");
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

        /// Arbitrary bytes: refused by the protobuf decoder, or a page that is read or refused
        /// naming a field; never a panic.
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            if let Ok(p) = pb::BuiltWithPage::decode(bytes.as_slice()) {
                let _ = decode_page(&p);
            }
        }

        /// A valid page with one column's value replaced: decoded, or refused naming a field.
        #[test]
        fn corrupted_values_never_panic(col in 0usize..12, value in any::<u32>()) {
            let mut r = one_build();
            let target: &mut Vec<u32> = match col {
                0 => &mut r.build_source,
                1 => &mut r.build_architectures,
                2 => &mut r.build_architecture_counts,
                3 => &mut r.dependency_name,
                4 => &mut r.matched,
                5 => &mut r.matched_counts,
                6 => &mut r.binary_counts,
                7 => &mut r.binary_extension,
                8 => &mut r.binary_shipped_counts,
                9 => &mut r.binary_shipped_in,
                10 => &mut r.odd_filename_binaries,
                _ => &mut r.odd_sha256_binaries,
            };
            target[0] = value;
            match decode_page(&r) {
                Ok(got) => prop_assert_eq!(got.builds.len(), 1),
                Err(e) => prop_assert!(!e.field.is_empty() && e.to_string().contains(e.field)),
            }
        }

        /// Bytes of a valid page, mangled: never a panic.
        #[test]
        fn mangled_pages_never_panic(at in 0usize..4096, byte in any::<u8>(), cut in 0usize..4096) {
            let mut bytes = one_build().encode_to_vec();
            let len = bytes.len();
            bytes[at % len] = byte;
            bytes.truncate(cut % (len + 1));
            if let Ok(p) = pb::BuiltWithPage::decode(bytes.as_slice()) {
                let _ = decode_page(&p);
            }
        }
    }
}
