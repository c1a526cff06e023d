//! The build environment check of the `local` backend: does this machine have exactly the
//! packages the buildinfo's Installed-Build-Depends recorded? A build in another environment
//! proves nothing either way, so a difference is reported as its own outcome
//! (`environment-mismatch`) instead of a verdict on the package.

use std::collections::HashMap;

use debcover_formats::InstalledDep;
use debversion::Version;

/// One installed package, as dpkg lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installed {
    /// Package name.
    pub name: String,
    /// Its architecture (`amd64`, `all`, ...).
    pub arch: String,
    /// Installed version.
    pub version: String,
}

/// Parse `dpkg-query -W -f '${Package}\t${Architecture}\t${Version}\t${db:Status-Abbrev}\n'`;
/// only fully installed packages (`ii`) count.
pub fn parse_dpkg_query(text: &str) -> Vec<Installed> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.split('\t');
            let (name, arch, version, status) = (f.next()?, f.next()?, f.next()?, f.next()?);
            (status.trim() == "ii").then(|| Installed { name: name.into(), arch: arch.into(), version: version.into() })
        })
        .collect()
}

/// What this machine has installed (runs dpkg-query).
pub async fn installed_packages() -> std::io::Result<Vec<Installed>> {
    let out = tokio::process::Command::new("dpkg-query")
        .args(["-W", "-f", "${Package}\t${Architecture}\t${Version}\t${db:Status-Abbrev}\n"])
        .output()
        .await?;
    if !out.status.success() {
        return Err(std::io::Error::other(format!(
            "dpkg-query failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(parse_dpkg_query(&String::from_utf8_lossy(&out.stdout)))
}

/// Every difference between the `recorded` environment and the `installed` one, one line each,
/// in the buildinfo's order. `host_arch` resolves entries without an architecture qualifier.
pub fn differences(recorded: &[InstalledDep], installed: &[Installed], host_arch: &str) -> Vec<String> {
    let mut by_name: HashMap<&str, Vec<&Installed>> = HashMap::new();
    for i in installed {
        by_name.entry(i.name.as_str()).or_default().push(i);
    }
    let mut out = Vec::new();
    for dep in recorded {
        let candidates = by_name.get(dep.name.as_str()).map(Vec::as_slice).unwrap_or_default();
        let found = match &dep.arch {
            Some(a) => candidates.iter().find(|i| &i.arch == a),
            None => candidates
                .iter()
                .find(|i| i.arch == host_arch || i.arch == "all")
                .or_else(|| candidates.first()),
        };
        let shown = match &dep.arch {
            Some(a) => format!("{}:{a}", dep.name),
            None => dep.name.clone(),
        };
        match found {
            None => out.push(format!("{shown} (= {}): not installed", dep.version)),
            Some(i) => {
                let same = i.version.parse::<Version>().map(|v| v == dep.version).unwrap_or(false);
                if !same {
                    out.push(format!("{shown}: {} installed, {} recorded", i.version, dep.version));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dep(name: &str, arch: Option<&str>, v: &str) -> InstalledDep {
        InstalledDep { name: name.into(), arch: arch.map(Into::into), version: v.parse().unwrap() }
    }

    #[test]
    fn reports_missing_and_other_versions() {
        let installed = parse_dpkg_query(
            "libc6\tamd64\t2.36-9+deb12u10\tii \nlibc6\ti386\t2.36-9\tii \nmake\tamd64\t4.3-4.1\tii \nold\tamd64\t1\trc \n",
        );
        assert_eq!(installed.len(), 3);
        let recorded = vec![
            dep("libc6", None, "2.36-9+deb12u10"),
            dep("libc6", Some("i386"), "2.36-8"),
            dep("make", None, "4.3-4.1"),
            dep("libvuln-dev", None, "1.0-1"),
            dep("old", None, "1"),
        ];
        assert_eq!(
            differences(&recorded, &installed, "amd64"),
            vec![
                "libc6:i386: 2.36-9 installed, 2.36-8 recorded",
                "libvuln-dev (= 1.0-1): not installed",
                "old (= 1): not installed",
            ]
        );
    }
}
