//! Campaigns end to end, on real data, against real `debcover serve` processes (SQLite and
//! PostgreSQL):
//! - real packages built here (tests/fixtures/campaign): impact analysis, waves, the
//!   wanna-build export, then the archive after real binNMUs: the states must follow;
//! - the real bookworm Packages excerpts in ../shared/testdata: a golang-golang-x-net campaign
//!   finds exactly the binaries whose Built-Using names it below the fix, checked against a
//!   scan of the file compared with `dpkg --compare-versions`, not against our own parser;
//! - bad input: unknown library, unparsable fixed version, unknown suite, empty result.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

use debcover_proto::v1 as pb;
use debcover_proto::v1::campaigns_client::CampaignsClient;
use debcover_tests::{Server, describe, embedding_scan, in_ci, pg::TestDatabase, testdata, workspace};
use serde_json::Value;

fn skip_or_fail(why: &str) {
    if in_ci() {
        panic!("{why}");
    }
    eprintln!("SKIPPING: {why} (run tests/fixtures/setup-debian-build.sh hello as root)");
}

fn servers() -> Vec<(Server, Option<TestDatabase>)> {
    let mut v = vec![(Server::start(None), None)];
    if let Some(db) = TestDatabase::create_blocking() {
        v.push((Server::start(Some(&db.url)), Some(db)));
    }
    v
}

/// Build the campaign fixture once (cached under target/).
fn fixture() -> Option<PathBuf> {
    let out = workspace().join("target/debcover-fixtures/campaign");
    let status = Command::new("sh").arg(workspace().join("tests/fixtures/campaign/build.sh")).arg(&out).status();
    match status {
        Ok(s) if s.success() => Some(out),
        other => {
            skip_or_fail(&format!("building the campaign fixture failed: {other:?}"));
            None
        }
    }
}

/// `(source, arch) → item` of a plan or status answer.
fn items(v: &Value) -> Vec<(String, String, &Value)> {
    v["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| (i["source"].as_str().unwrap().to_owned(), i["arch"].as_str().unwrap().to_owned(), i))
        .collect()
}

fn state_of<'a>(v: &'a Value, source: &str) -> &'a str {
    items(v).into_iter().find(|(s, _, _)| s == source).map(|(_, _, i)| i["state"].as_str().unwrap()).unwrap_or("")
}

#[test]
fn fixture_campaigns_plan_waves_and_follow_real_binnmus() {
    let Some(dir) = fixture() else { return };
    let manifest: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).unwrap()).unwrap();
    let arch = manifest["architecture"].as_str().unwrap().to_owned();
    // What the fixture built each stage-1 package against, from its manifest (the intent the
    // fixture's own check verified in the buildinfos).
    let built_against = |source: &str, stage: u64| -> Value {
        manifest["builds"]
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["source"] == source && b["stage"].as_u64() == Some(stage))
            .map(|b| b["built_against"].clone())
            .unwrap_or(Value::Null)
    };
    assert_eq!(built_against("app-a", 1)["libvuln-dev"], "1.0-1");
    assert_eq!(built_against("app-c", 1)["libmid-dev"], "1.0-1");
    assert_eq!(built_against("app-a", 2)["libvuln-dev"], "1.0-1", "app-a's binNMU is meant to stay vulnerable");

    let stage = |n: u32| dir.join(format!("stage{n}"));
    let packages = |n: u32| dir.join(format!("stage{n}/Packages"));
    for (s, _db) in servers() {
        s.json(&["ingest", "archive", "--suite", "sid", "--json", packages(1).to_str().unwrap()], 0);
        let r = s.json(&["ingest", "buildinfo", "--json", stage(1).to_str().unwrap()], 0);
        assert_eq!(r["ingested"], 6, "{r}");

        // libvuln: app-a and libmid in wave 1, app-c after libmid in wave 2.
        let plan = s.json(
            &["campaign", "plan", "--library", "libvuln", "--fixed", "1.1-1", "--suite", "sid", "--advisory",
              "CVE-2026-0001", "--json"],
            0,
        );
        let got: BTreeSet<(String, String, u64)> =
            items(&plan).iter().map(|(s, a, i)| (s.clone(), a.clone(), i["wave"].as_u64().unwrap())).collect();
        let want: BTreeSet<(String, String, u64)> = [("app-a", 1), ("libmid", 1), ("app-c", 2)]
            .into_iter()
            .map(|(s, w)| (s.to_owned(), arch.clone(), w))
            .collect();
        assert_eq!(got, want, "{plan:#}");
        assert_eq!(plan["waves"], 2);
        let app_c = items(&plan).into_iter().find(|(s, _, _)| s == "app-c").unwrap().2.clone();
        assert_eq!(app_c["after"][0], format!("libmid/{arch}"));
        assert!(app_c["evidence"].as_array().unwrap().iter().any(|e| e["kind"] == "installed-build-depends"
            && e["package"] == "libmid-dev"
            && e["version"] == "1.0-1"
            && e["through"] == format!("libmid/{arch}")));
        let app_a = items(&plan).into_iter().find(|(s, _, _)| s == "app-a").unwrap().2.clone();
        assert_eq!(app_a["found_by"], "both");
        assert!(app_a["evidence"].as_array().unwrap().iter().any(|e| e["kind"] == "static-built-using"
            && e["package"] == "libvuln"
            && e["version"] == "1.0-1"));

        // The release team's format: nmu lines for wave 1, nmu + dw for wave 2.
        let wb = s.cli(&["campaign", "plan", "--library", "libvuln", "--fixed", "1.1-1", "--suite", "sid",
                         "--advisory", "CVE-2026-0001", "--format", "wb"]);
        assert_eq!(wb.status.code(), Some(0), "{}", describe(&wb));
        let wb = String::from_utf8(wb.stdout).unwrap();
        for line in [
            format!("nmu app-a_1.0-1 . {arch} . sid . -m \"Rebuild against libvuln 1.1-1 (CVE-2026-0001)\" --extra-depends \"libvuln-dev (>= 1.1-1)\""),
            format!("nmu libmid_1.0-1 . {arch} . sid . -m \"Rebuild against libvuln 1.1-1 (CVE-2026-0001)\" --extra-depends \"libvuln-dev (>= 1.1-1)\""),
            format!("nmu app-c_1.0-1 . {arch} . sid . -m \"Rebuild against libvuln 1.1-1 (CVE-2026-0001)\" --extra-depends \"libmid-dev (>= 1.0-1+b1)\""),
            format!("dw app-c_1.0-1 . {arch} . sid . -m \"libmid-dev (>= 1.0-1+b1)\""),
        ] {
            assert!(wb.lines().any(|l| l == line), "missing {line:?} in:\n{wb}");
        }
        let wave2 = wb.find("# wave 2").expect("a wave 2 section");
        assert!(wb.find("nmu app-a").unwrap() < wave2 && wb.find("nmu app-c").unwrap() > wave2, "{wb}");

        // The depth cap: direct items only; app-c is counted, not planned.
        let capped = s.json(
            &["campaign", "plan", "--library", "libvuln", "--fixed", "1.1-1", "--suite", "sid", "--max-depth", "1", "--json"],
            0,
        );
        assert_eq!(items(&capped).len(), 2, "{capped:#}");
        assert_eq!(capped["beyond_depth"], 1, "{capped:#}");
        // libmid-dev declares what it embeds, so the broader propagation finds the same items.
        let dev = s.json(
            &["campaign", "plan", "--library", "libvuln", "--fixed", "1.1-1", "--suite", "sid", "--propagate", "dev", "--json"],
            0,
        );
        let dev_items: BTreeSet<(String, String, u64)> =
            items(&dev).iter().map(|(s, a, i)| (s.clone(), a.clone(), i["wave"].as_u64().unwrap())).collect();
        assert_eq!(dev_items, want, "{dev:#}");

        // libstat: app-b found by its buildinfo only (it declares nothing): reported.
        let plan = s.json(&["campaign", "plan", "--library", "libstat", "--fixed", "2.1-1", "--suite", "sid", "--json"], 0);
        let got: Vec<_> = items(&plan).into_iter().map(|(s, _, i)| (s, i["found_by"].clone())).collect();
        assert_eq!(got, vec![("app-b".to_owned(), Value::from("buildinfo-only"))], "{plan:#}");
        let notes = plan["items"][0]["notes"].to_string();
        assert!(notes.contains("missing declaration"), "{notes}");

        // Sourceful mode for a security suite: versions and a changelog entry.
        let up = s.json(
            &["campaign", "plan", "--library", "libstat", "--fixed", "2.1-1", "--suite", "sid", "--mode", "sourceful",
              "--changed-by", "Jane Doe <jane@example.org>", "--json"],
            0,
        );
        assert_eq!(up["uploads"][0]["version"], "1.0-1.1", "{up:#}");
        let changelog = up["uploads"][0]["changelog"].as_str().unwrap();
        assert!(changelog.starts_with("app-b (1.0-1.1) sid; urgency=medium\n"), "{changelog}");
        assert!(changelog.contains("No-change rebuild against libstat 2.1-1"), "{changelog}");
        assert!(changelog.contains(" -- Jane Doe <jane@example.org>  "), "{changelog}");

        // Save both; nothing is saved by `plan`.
        let list = s.json(&["campaign", "list", "--json"], 0);
        assert_eq!(list.as_array().unwrap().len(), 0);
        let c1 = s.json(&["campaign", "create", "--library", "libvuln", "--fixed", "1.1-1", "--suite", "sid", "--json"], 0);
        let c2 = s.json(&["campaign", "create", "--library", "libstat", "--fixed", "2.1-1", "--suite", "sid", "--json"], 0);
        let (id1, id2) = (c1["campaign"]["id"].to_string(), c2["campaign"]["id"].to_string());
        let st = s.json(&["campaign", "status", &id1, "--json"], 0);
        assert_eq!(st["campaign"]["counts"]["affected"], 3, "{st:#}");

        // The archive moves first (binNMUs built and uploaded; buildinfos not ingested yet):
        // rebuilt, but not judged.
        s.json(&["ingest", "archive", "--suite", "sid", "--json", packages(2).to_str().unwrap()], 0);
        let st = s.json(&["campaign", "status", &id1, "--json"], 0);
        for src in ["app-a", "libmid", "app-c"] {
            assert_eq!(state_of(&st, src), "rebuilt", "{st:#}");
        }
        assert!(st["items"][0]["reason"].as_str().unwrap().contains("no buildinfo ingested yet"), "{st:#}");

        // Then the buildinfos: the evidence decides.
        let r = s.json(&["ingest", "buildinfo", "--json", stage(2).to_str().unwrap()], 0);
        assert_eq!(r["ingested"], 6, "{r}");
        let st = s.json(&["campaign", "status", &id1, "--json"], 0);
        assert_eq!(state_of(&st, "app-a"), "still-vulnerable", "{st:#}");
        assert_eq!(state_of(&st, "libmid"), "fixed-unverified", "{st:#}");
        assert_eq!(state_of(&st, "app-c"), "fixed-unverified", "{st:#}");
        let st2 = s.json(&["campaign", "status", &id2, "--json"], 0);
        assert_eq!(state_of(&st2, "app-b"), "fixed-unverified", "{st2:#}");
        // Items that reached fixed-unverified feed the rebuild queue: the builds that fixed them,
        // once each, at campaign priority; the still-vulnerable one is not queued.
        let queue = s.json(&["queue", "--json"], 0);
        let campaign_jobs = |queue: &Value| -> BTreeSet<(String, String, String)> {
            queue["jobs"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|j| j["priority"] == "campaign")
                .map(|j| {
                    (j["source"].as_str().unwrap().to_owned(), j["version"].as_str().unwrap().to_owned(),
                     j["origin"].as_str().unwrap().to_owned())
                })
                .collect()
        };
        let want: BTreeSet<(String, String, String)> = [
            ("libmid", "1.0-1+b1", &id1),
            ("app-c", "1.0-1+b1", &id1),
            ("app-b", "1.0-1+b1", &id2),
        ]
        .into_iter()
        .map(|(src, v, id)| (src.to_owned(), v.to_owned(), format!("campaign {id}")))
        .collect();
        assert_eq!(campaign_jobs(&queue), want, "{queue:#}");
        // Judging the same evidence again (status, re-ingest) queues nothing twice.
        s.json(&["campaign", "status", &id1, "--json"], 0);
        assert_eq!(campaign_jobs(&s.json(&["queue", "--json"], 0)), want);
        let a = items(&st).into_iter().find(|(s, _, _)| s == "app-a").unwrap().2.clone();
        assert_eq!(a["current_version"], "1.0-1+b1");
        assert!(a["reason"].as_str().unwrap().contains("libvuln-dev 1.0-1"), "{a:#}");
        let waves = st["waves"].as_array().unwrap();
        assert!(waves.iter().any(|w| w["wave"] == 2 && w["state"] == "fixed-unverified" && w["count"] == 1), "{st:#}");

        // The audit trail: app-a went affected → rebuilt → still-vulnerable, with evidence.
        let ev = s.json(&["campaign", "events", &id1, "--json"], 0);
        let path: Vec<String> = ev
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["item"] == format!("app-a/{arch}"))
            .map(|e| e["to"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(path, ["affected", "rebuilt", "still-vulnerable"], "{ev:#}");
        let last = ev.as_array().unwrap().iter().rev().find(|e| e["item"] == format!("app-a/{arch}")).unwrap();
        assert!(last["evidence"].to_string().contains("libvuln-dev"), "{last:#}");

        // Re-ingesting the same evidence changes nothing.
        s.json(&["ingest", "archive", "--suite", "sid", "--json", packages(2).to_str().unwrap()], 0);
        let again = s.json(&["campaign", "events", &id1, "--json"], 0);
        assert_eq!(again.as_array().unwrap().len(), ev.as_array().unwrap().len());

        // The maintainer uploads app-a 1.1-1: superseded while only the archive shows it, then
        // judged on its own buildinfo (built against the fixed libvuln-dev).
        s.json(&["ingest", "archive", "--suite", "sid", "--json", packages(3).to_str().unwrap()], 0);
        let st = s.json(&["campaign", "status", &id1, "--json"], 0);
        assert_eq!(state_of(&st, "app-a"), "superseded", "{st:#}");
        assert_eq!(state_of(&st, "libmid"), "fixed-unverified", "{st:#}");
        let r = s.json(&["ingest", "buildinfo", "--json", stage(3).to_str().unwrap()], 0);
        assert_eq!(r["ingested"], 1, "{r}");
        let st = s.json(&["campaign", "status", &id1, "--json"], 0);
        assert_eq!(state_of(&st, "app-a"), "fixed-unverified", "{st:#}");
        let a = items(&st).into_iter().find(|(s, _, _)| s == "app-a").unwrap().2.clone();
        assert_eq!(a["current_version"], "1.1-1", "{a:#}");
        assert!(a["reason"].as_str().unwrap().contains("libvuln-dev 1.1-1"), "{a:#}");
        let ev = s.json(&["campaign", "events", &id1, "--json"], 0);
        let path: Vec<&str> = ev
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["item"] == format!("app-a/{arch}"))
            .map(|e| e["to"].as_str().unwrap())
            .collect();
        assert_eq!(path, ["affected", "rebuilt", "still-vulnerable", "superseded", "fixed-unverified"], "{ev:#}");

        // app-b leaves the suite: removed.
        let text = std::fs::read_to_string(packages(3)).unwrap();
        let without: Vec<&str> = text.split("\n\n").filter(|p| !p.starts_with("Package: app-b\n")).collect();
        assert_eq!(without.len() + 1, text.split("\n\n").count());
        let smaller = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(smaller.path(), without.join("\n\n")).unwrap();
        s.json(&["ingest", "archive", "--suite", "sid", "--arch", &arch, "--kind", "packages", "--json",
                 smaller.path().to_str().unwrap()], 0);
        let st = s.json(&["campaign", "status", &id2, "--json"], 0);
        assert_eq!(state_of(&st, "app-b"), "removed", "{st:#}");
        assert_eq!(s.terminate(), Some(0));
    }
}

/// Two static libraries built against each other (bootstrapped with a build profile, as Debian
/// does): both affected directly, and each through the other; one cycle group in one wave.
#[test]
fn fixture_build_dependency_cycle_is_planned_as_one_group() {
    let Some(dir) = fixture() else { return };
    let manifest: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).unwrap()).unwrap();
    let arch = manifest["architecture"].as_str().unwrap().to_owned();
    let (ping, pong) = (format!("libping/{arch}"), format!("libpong/{arch}"));
    for (s, _db) in servers() {
        s.json(&["ingest", "archive", "--suite", "sid", "--json", dir.join("cycle/Packages").to_str().unwrap()], 0);
        let r = s.json(&["ingest", "buildinfo", "--json", dir.join("cycle").to_str().unwrap()], 0);
        assert_eq!(r["ingested"], 2, "{r}");
        let plan = s.json(&["campaign", "plan", "--library", "libvuln", "--fixed", "1.1-1", "--suite", "sid", "--json"], 0);
        let got: BTreeSet<(String, u64, u64)> = items(&plan)
            .iter()
            .map(|(s, _, i)| (s.clone(), i["wave"].as_u64().unwrap(), i["cycle"].as_u64().unwrap_or(0)))
            .collect();
        assert_eq!(got, BTreeSet::from([("libping".into(), 1, 1), ("libpong".into(), 1, 1)]), "{plan:#}");
        assert_eq!(plan["waves"], 1, "{plan:#}");
        let cycles = plan["cycles"].as_array().unwrap();
        assert_eq!(cycles.len(), 1, "{plan:#}");
        let members: BTreeSet<&str> = cycles[0]["members"].as_array().unwrap().iter().map(|m| m.as_str().unwrap()).collect();
        assert_eq!(members, BTreeSet::from([ping.as_str(), pong.as_str()]));
        assert!(plan["notes"].to_string().contains("dependency cycle 1"), "{plan:#}");
        // Each was built against the other's vulnerable build, as its buildinfo records.
        for (item, other, dev) in [("libping", &pong, "libpong-dev"), ("libpong", &ping, "libping-dev")] {
            let it = items(&plan).into_iter().find(|(s, _, _)| s == item).unwrap().2.clone();
            assert!(
                it["evidence"].as_array().unwrap().iter().any(|e| e["kind"] == "installed-build-depends"
                    && e["package"] == dev
                    && e["version"] == "1.0-1"
                    && e["through"] == other.as_str()),
                "{it:#}"
            );
            assert_eq!(it["found_by"], "both", "{it:#}");
        }
        // The release team's lines: both binNMUs in one wave, neither waiting on the other.
        let wb = s.cli(&["campaign", "plan", "--library", "libvuln", "--fixed", "1.1-1", "--suite", "sid", "--format", "wb"]);
        assert_eq!(wb.status.code(), Some(0), "{}", describe(&wb));
        let wb = String::from_utf8(wb.stdout).unwrap();
        for src in ["libping", "libpong"] {
            assert!(wb.lines().any(|l| l.starts_with(&format!("nmu {src}_1.0-1 . {arch} . sid . "))), "{wb}");
        }
        assert!(!wb.lines().any(|l| l.starts_with("dw ")), "{wb}");
        assert_eq!(s.terminate(), Some(0));
    }
}

#[test]
fn real_bookworm_built_using_finds_exactly_the_declared_binaries() {
    let cases = [
        ("bookworm_amd64_Packages.Built-Using-golang", "golang-golang-x-net", "1:0.17.0-1"),
        ("bookworm_amd64_Packages.Built-Using-golang", "golang-go.crypto", "1:0.14.0-1"),
        // Fixes between the versions shipped: only the older ones are affected.
        ("bookworm_amd64_Packages.Built-Using-golang", "golang-golang-x-sys", "0.8.0-1"),
        ("bookworm_amd64_Packages.Static-Built-Using", "golang-golang-x-net", "1:0.7.0+dfsg-1"),
        ("bookworm_amd64_Packages.X-Cargo-Built-Using", "rust-regex", "1.7.1-1"),
    ];
    for (s, _db) in servers() {
        for (file, library, fixed) in cases {
            let path = testdata().join("packages").join(file);
            let suite = file.replace(['.', '_'], "-").to_lowercase();
            s.json(&["ingest", "archive", "--suite", &suite, "--json", path.to_str().unwrap()], 0);
            let text = std::fs::read_to_string(&path).unwrap();
            let want = embedding_scan(&text, library, fixed);
            assert!(!want.is_empty(), "{file}: the scan found nothing for {library}: pick another case");
            let plan = s.json(&["campaign", "plan", "--library", library, "--fixed", fixed, "--suite", &suite, "--json"], 0);
            let direct: BTreeSet<(String, String)> = items(&plan)
                .into_iter()
                .filter(|(_, _, i)| i["evidence"].as_array().unwrap().iter().any(|e| e["through"].is_null()))
                .map(|(s, a, _)| (s, a))
                .collect();
            assert_eq!(direct, want, "{file} {library} < {fixed}");
            // Without buildinfos, every item is found by its declarations alone.
            assert!(items(&plan).iter().all(|(_, _, i)| i["found_by"] == "declaration-only"), "{plan:#}");
        }
        assert_eq!(s.terminate(), Some(0));
    }
}

#[test]
fn bad_campaign_requests_get_clear_errors_and_empty_results_say_so() {
    let packages = testdata().join("packages/bookworm_amd64_Packages.Built-Using-golang");
    for (s, _db) in servers() {
        s.json(&["ingest", "archive", "--suite", "bookworm", "--json", packages.to_str().unwrap()], 0);
        let run = |args: &[&str]| {
            let mut all = vec!["campaign", "plan"];
            all.extend_from_slice(args);
            let out = s.cli(&all);
            (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned(), String::from_utf8_lossy(&out.stdout).into_owned())
        };
        let (code, err, _) = run(&["--library", "no-such-library", "--fixed", "1.0-1", "--suite", "bookworm"]);
        assert_eq!(code, Some(2));
        assert!(err.contains("library \"no-such-library\" is unknown"), "{err}");
        let (code, err, _) = run(&["--library", "golang-golang-x-net", "--fixed", "1.0-1 beta", "--suite", "bookworm"]);
        assert_eq!(code, Some(2));
        assert!(err.contains("fixed_version \"1.0-1 beta\""), "{err}");
        let (code, err, _) = run(&["--library", "golang-golang-x-net", "--fixed", "1:0.17.0-1", "--suite", "trixie"]);
        assert_eq!(code, Some(2));
        assert!(err.contains("suite \"trixie\" has no Packages index ingested") && err.contains("bookworm"), "{err}");
        let (code, err, _) =
            run(&["--library", "golang-golang-x-net", "--fixed", "1:0.17.0-1", "--suite", "bookworm", "--arch", "s390x"]);
        assert_eq!(code, Some(2));
        assert!(err.contains("architecture \"s390x\""), "{err}");
        // Nothing is below a version older than every one shipped.
        let (code, err, out) = run(&["--library", "golang-golang-x-net", "--fixed", "1:0.0.1-1", "--suite", "bookworm"]);
        assert_eq!(code, Some(0), "{err}");
        assert!(out.contains("No shipped binary in bookworm embeds golang-golang-x-net below 1:0.0.1-1: nothing to rebuild."), "{out}");
        let st = s.cli(&["campaign", "status", "42"]);
        assert_eq!(st.status.code(), Some(2));
        assert!(String::from_utf8_lossy(&st.stderr).contains("no campaign with id 42"), "{}", describe(&st));
        assert_eq!(s.terminate(), Some(0));
    }
}

/// FULL with each item reduced as `shape` reduces it (see `campaigns.proto`, ITEM SHAPES).
fn reduced(full: &pb::CampaignPlan, shape: &str) -> pb::CampaignPlan {
    let mut want = full.clone();
    match shape {
        "none" => want.items.clear(),
        "brief" => {
            for i in &mut want.items {
                i.evidence.clear();
                i.notes.clear();
                i.upstream.clear();
            }
        }
        "summary" => {
            for i in &mut want.items {
                i.evidence = i.evidence.iter().find(|e| e.vulnerable).cloned().into_iter().collect();
                i.upstream.clear();
            }
        }
        other => panic!("{other}"),
    }
    want
}

/// Changelog trailers carry the time of the answer: compare them without it.
fn undated(mut p: pb::CampaignPlan) -> pb::CampaignPlan {
    for u in &mut p.uploads {
        u.changelog = u
            .changelog
            .lines()
            .map(|l| if l.starts_with(" -- ") { l.split(">  ").next().unwrap_or(l) } else { l })
            .collect::<Vec<_>>()
            .join("\n");
    }
    p
}

/// The item shapes of a plan answer carry exactly what the full answer carries minus what they
/// leave out (compared with the full answer for the same spec, over gRPC), pages are slices of
/// it, and the CLI's wanna-build and uploads outputs, which now ask for no items, print what
/// the full answer holds, byte for byte; the table asks for summaries and prints what it
/// printed from full answers.
#[test]
fn item_shapes_carry_the_full_answer_minus_what_they_leave_out() {
    let Some(dir) = fixture() else { return };
    let rt = tokio::runtime::Runtime::new().unwrap();
    for (s, _db) in servers() {
        s.json(&["ingest", "archive", "--suite", "sid", "--json", dir.join("stage1/Packages").to_str().unwrap()], 0);
        s.json(&["ingest", "buildinfo", "--json", dir.join("stage1").to_str().unwrap()], 0);
        // As the security team would: creating a campaign needs the campaign role (the admin's).
        let admin = std::fs::read_to_string(s.admin_token_file()).unwrap().trim().to_owned();
        let channel = rt.block_on(tonic::transport::Channel::from_shared(s.url.clone()).unwrap().connect()).unwrap();
        let mut c = CampaignsClient::with_interceptor(channel, debcover_tests::BearerAuth(admin));
        let spec = |library: &str, fixed: &str, mode: &str, items: &str| pb::CampaignSpec {
            library: library.into(),
            fixed_version: fixed.into(),
            suites: vec!["sid".into()],
            mode: mode.into(),
            advisories: vec!["CVE-2026-0001".into()],
            changed_by: "Jane Doe <jane@example.org>".into(),
            items: items.into(),
            ..Default::default()
        };
        let cases = [("libvuln", "1.1-1", "binnmu"), ("libstat", "2.1-1", "binnmu"), ("libstat", "2.1-1", "sourceful")];
        for (library, fixed, mode) in cases {
            let full = rt.block_on(c.plan_campaign(spec(library, fixed, mode, "full"))).unwrap().into_inner();
            let default = rt.block_on(c.plan_campaign(spec(library, fixed, mode, ""))).unwrap().into_inner();
            assert_eq!(undated(default), undated(full.clone()), "an empty shape is the full answer");
            assert_eq!(full.item_count, full.items.len() as u64);
            assert!(!full.items.is_empty() && full.items.iter().all(|i| !i.evidence.is_empty()), "{full:#?}");
            if library == "libvuln" {
                assert!(full.items.iter().any(|i| !i.upstream.is_empty()), "the fixture has a wave-2 item: {full:#?}");
            } else {
                assert!(full.items.iter().any(|i| !i.notes.is_empty()), "app-b's missing declaration: {full:#?}");
            }
            for shape in ["summary", "brief", "none"] {
                let got = rt.block_on(c.plan_campaign(spec(library, fixed, mode, shape))).unwrap().into_inner();
                assert_eq!(undated(got), undated(reduced(&full, shape)), "{library} {mode} {shape}");
            }
            // A page is a slice of the full answer's items, with the plan's count.
            let mut page = spec(library, fixed, mode, "full");
            page.item_offset = 1;
            page.item_limit = 1;
            let got = rt.block_on(c.plan_campaign(page)).unwrap().into_inner();
            let mut want = full.clone();
            want.items = full.items.iter().skip(1).take(1).cloned().collect();
            assert_eq!(undated(got), undated(want), "{library} {mode} page");

            // The CLI: exports ask for no items and print the full answer's, byte for byte.
            let mut args = vec!["campaign", "plan", "--library", library, "--fixed", fixed, "--suite", "sid", "--mode",
                                mode, "--advisory", "CVE-2026-0001", "--changed-by", "Jane Doe <jane@example.org>"];
            if mode == "binnmu" {
                args.extend(["--format", "wb"]);
                let out = s.cli(&args);
                assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
                assert_eq!(String::from_utf8(out.stdout).unwrap(), full.wanna_build, "{library}: wb output changed");
            } else {
                args.extend(["--format", "uploads"]);
                let out = s.cli(&args);
                assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
                let mut want = String::new();
                for u in &full.uploads {
                    want.push_str(&format!(
                        "# wave {}: {} {} -> {} in {} ({})\n\n{}\n",
                        u.wave, u.source, u.current_version, u.version, u.suite, u.architectures.join(" "), u.changelog
                    ));
                }
                let got = String::from_utf8(out.stdout).unwrap();
                let strip = |t: &str| t.lines().map(|l| l.split(">  ").next().unwrap_or(l).to_owned()).collect::<Vec<_>>();
                assert_eq!(strip(&got), strip(&want), "{library}: uploads output changed");
            }
            // The table from summaries is the table from full answers.
            let mut table = args.clone();
            table.truncate(table.len() - 2);
            let summary = s.cli(&table);
            table.extend(["--items", "full"]);
            let from_full = s.cli(&table);
            assert_eq!(summary.status.code(), Some(0), "{}", describe(&summary));
            assert_eq!(summary.stdout, from_full.stdout, "{library} {mode}: table");
            // JSON shapes: the full JSON minus the keys left out.
            let j = |shape: &str| {
                let mut a: Vec<&str> = table[..table.len() - 2].to_vec();
                a.extend(["--json", "--items", shape]);
                s.json(&a, 0)
            };
            let full_json = j("full");
            assert!(full_json.get("items_detail").is_none() && full_json.get("item_count").is_none(), "{full_json:#}");
            let mut brief = full_json.clone();
            for i in brief["items"].as_array_mut().unwrap() {
                let i = i.as_object_mut().unwrap();
                for k in ["evidence", "notes", "upstream"] {
                    i.remove(k);
                }
            }
            brief["items_detail"] = "brief".into();
            let mut got = j("brief");
            if mode == "sourceful" {
                got["uploads"] = brief["uploads"].clone();
            }
            assert_eq!(got, brief);
            let none = j("none");
            assert_eq!(none["items"], serde_json::json!([]));
            assert_eq!(none["item_count"], full.items.len() as u64);
            assert_eq!(none["items_detail"], "none");
        }
        // Bad shapes are refused by name.
        let e = rt.block_on(c.plan_campaign(spec("libvuln", "1.1-1", "binnmu", "tiny"))).unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument);
        assert!(e.message().contains("items: unknown item shape \"tiny\""), "{e:?}");

        // Saved campaigns: create and export in every shape.
        let created = rt.block_on(c.create_campaign(spec("libvuln", "1.1-1", "binnmu", "none"))).unwrap().into_inner();
        let id = created.campaign.as_ref().unwrap().id;
        assert_eq!(created.item_count, 3);
        assert!(created.items.is_empty());
        let export = |items: &str| {
            let mut c = c.clone();
            rt.block_on(c.export_campaign(pb::CampaignRequest { id, items: items.into(), ..Default::default() }))
                .unwrap()
                .into_inner()
        };
        let full = export("full");
        assert_eq!(full.items.len(), 3);
        assert!(full.items.iter().all(|i| i.state == "affected"), "{full:#?}");
        assert_eq!(created.wanna_build, full.wanna_build);
        for shape in ["summary", "brief", "none"] {
            assert_eq!(export(shape), reduced(&full, shape), "export {shape}");
        }
        let out = s.cli(&["campaign", "export", &id.to_string()]);
        assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
        assert_eq!(String::from_utf8(out.stdout).unwrap(), full.wanna_build, "export wb output changed");
        let t1 = s.cli(&["campaign", "export", &id.to_string(), "--format", "table"]);
        let t2 = s.cli(&["campaign", "export", &id.to_string(), "--format", "table", "--items", "full"]);
        assert_eq!(t1.status.code(), Some(0), "{}", describe(&t1));
        assert_eq!(t1.stdout, t2.stdout, "export table");
        assert!(String::from_utf8_lossy(&t1.stdout).contains("STATE"), "{}", describe(&t1));
        // Flags that make no sense for an output are refused.
        let out = s.cli(&["campaign", "export", &id.to_string(), "--format", "table", "--items", "brief"]);
        assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
        let out = s.cli(&["campaign", "export", &id.to_string(), "--item-limit", "1"]);
        assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
        assert_eq!(s.terminate(), Some(0));
    }
}
