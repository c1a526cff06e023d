//! Loading a real `Packages` index into the tables the generator draws from.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

use crate::Error;

/// One binary package paragraph of the input `Packages` file (only the fields we use).
#[derive(Debug, Clone)]
pub struct Package {
    /// `Package`.
    pub name: String,
    /// Binary version (`Version`).
    pub version: String,
    /// `true` for `Architecture: all`.
    pub arch_all: bool,
    /// Source package name.
    pub source: String,
    /// Source version (from `Source: name (version)`, else `Version`).
    pub source_version: String,
    /// `Size` of the .deb.
    pub size: u64,
    /// `Multi-Arch: same`.
    pub multi_arch_same: bool,
    /// Raw `Built-Using`.
    pub built_using: Option<String>,
    /// Raw `Static-Built-Using`.
    pub static_built_using: Option<String>,
    /// Raw `X-Cargo-Built-Using`.
    pub x_cargo_built_using: Option<String>,
    /// Resolved dependencies (first alternative of `Pre-Depends` and `Depends`, via `Provides`).
    pub deps: Vec<u32>,
}

/// The parsed input archive.
#[derive(Debug, Default)]
pub struct Archive {
    /// Packages in input order (first paragraph wins for duplicate names).
    pub packages: Vec<Package>,
    /// Package name -> index.
    pub by_name: HashMap<String, u32>,
    /// Number of packages that depend on each package (reverse-dependency count).
    pub rdeps: Vec<u32>,
}

/// Reads a file, decompressing `.gz` / `.xz` (detected by magic bytes).
pub fn read_maybe_compressed(path: &Path) -> Result<Vec<u8>, Error> {
    let io = |source| Error::Io { path: path.to_path_buf(), source };
    let raw = std::fs::read(path).map_err(io)?;
    let mut out = Vec::new();
    if raw.starts_with(&[0x1f, 0x8b]) {
        flate2::read::MultiGzDecoder::new(&raw[..]).read_to_end(&mut out).map_err(io)?;
    } else if raw.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        xz2::read::XzDecoder::new_multi_decoder(&raw[..]).read_to_end(&mut out).map_err(io)?;
    } else {
        return Ok(raw);
    }
    Ok(out)
}

/// Splits `name (version)` (as in `Source:`) into its parts.
pub fn name_and_paren_version(s: &str) -> (&str, Option<&str>) {
    match s.split_once(" (") {
        Some((n, rest)) => (n.trim(), Some(rest.trim_end_matches(')').trim())),
        None => (s.trim(), None),
    }
}

/// Parses a relation list like `Built-Using` into (name, version) pairs (`=` relations only).
pub fn parse_eq_relations(s: &str) -> Vec<(&str, &str)> {
    s.split(',')
        .filter_map(|r| {
            let (n, v) = name_and_paren_version(r.trim());
            let v = v?.trim_start_matches('=').trim();
            (!n.is_empty() && !v.is_empty()).then_some((n, v))
        })
        .collect()
}

impl Archive {
    /// Parses a `Packages` file (plain, `.gz` or `.xz`).
    pub fn load(path: &Path) -> Result<Archive, Error> {
        let bytes = read_maybe_compressed(path)?;
        let text = String::from_utf8_lossy(&bytes);
        Archive::parse(&text).map_err(|msg| Error::Input { path: path.to_path_buf(), msg })
    }

    /// Parses the text of a `Packages` file.
    pub fn parse(text: &str) -> Result<Archive, String> {
        struct Raw<'a> {
            depends: Vec<&'a str>,
            provides: Option<&'a str>,
        }
        let mut archive = Archive::default();
        let mut raws: Vec<Raw> = Vec::new();
        for para in text.split("\n\n") {
            let mut f: HashMap<&str, &str> = HashMap::new();
            for line in para.lines() {
                if line.is_empty() || line.starts_with([' ', '\t']) {
                    continue;
                }
                if let Some((k, v)) = line.split_once(':') {
                    f.insert(k, v.trim());
                }
            }
            let (Some(&name), Some(&version), Some(&arch)) = (f.get("Package"), f.get("Version"), f.get("Architecture")) else {
                if f.is_empty() {
                    continue;
                }
                return Err(format!("paragraph without Package/Version/Architecture: {:?}", para.lines().next()));
            };
            if archive.by_name.contains_key(name) {
                continue;
            }
            let (source, source_version) = match f.get("Source") {
                Some(s) => {
                    let (n, v) = name_and_paren_version(s);
                    (n.to_string(), v.unwrap_or(version).to_string())
                }
                None => (name.to_string(), version.to_string()),
            };
            let idx = archive.packages.len() as u32;
            archive.by_name.insert(name.to_string(), idx);
            archive.packages.push(Package {
                name: name.to_string(),
                version: version.to_string(),
                arch_all: arch == "all",
                source,
                source_version,
                size: f.get("Size").and_then(|s| s.parse().ok()).unwrap_or(100_000),
                multi_arch_same: f.get("Multi-Arch") == Some(&"same"),
                built_using: f.get("Built-Using").map(|s| s.to_string()),
                static_built_using: f.get("Static-Built-Using").map(|s| s.to_string()),
                x_cargo_built_using: f.get("X-Cargo-Built-Using").map(|s| s.to_string()),
                deps: Vec::new(),
            });
            let depends = ["Pre-Depends", "Depends"].iter().filter_map(|k| f.get(k).copied()).collect();
            raws.push(Raw { depends, provides: f.get("Provides").copied() });
        }
        // Virtual package -> providers (lowest name wins, for determinism).
        let mut providers: HashMap<&str, u32> = HashMap::new();
        for (i, raw) in raws.iter().enumerate() {
            for p in raw.provides.into_iter().flat_map(|s| s.split(',')) {
                let p = p.trim().split([' ', '(']).next().unwrap_or("");
                if p.is_empty() {
                    continue;
                }
                let e = providers.entry(p).or_insert(i as u32);
                if archive.packages[i].name < archive.packages[*e as usize].name {
                    *e = i as u32;
                }
            }
        }
        let mut rdeps = vec![0u32; archive.packages.len()];
        for (i, raw) in raws.iter().enumerate() {
            let mut deps = Vec::new();
            for rel in raw.depends.iter().flat_map(|s| s.split(',')) {
                let first = rel.split('|').next().unwrap_or("").trim();
                let name = first.split([' ', '(', ':']).next().unwrap_or("");
                let target = archive.by_name.get(name).copied().or_else(|| providers.get(name).copied());
                if let Some(t) = target
                    && t as usize != i && !deps.contains(&t) {
                        deps.push(t);
                        rdeps[t as usize] += 1;
                    }
            }
            archive.packages[i].deps = deps;
        }
        archive.rdeps = rdeps;
        Ok(archive)
    }
}
