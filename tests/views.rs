//! The web views end to end, against real `debcover serve` processes (SQLite, and PostgreSQL
//! when one is reachable): buildinfos and a Packages index written here (one library, its
//! consumers, an arch:all package, a hostile Build-Origin) are ingested with the real client,
//! a campaign with a hostile title is created, and the pages, their JSON twins, pagination,
//! escaping, the suite status list's `If-Modified-Since`, `/metrics` and the deterministic
//! `Buildinfo.xz` are checked over plain HTTP; the campaign page is rendered by the real
//! headless chromium (a screenshot that must not be blank).

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use debcover_tests::{Server, describe, in_ci, pg::TestDatabase, which};
use serde_json::Value;

/// Consumers of the library: enough for several pages of items at `per_page=2`.
const CONSUMERS: usize = 5;
const HOSTILE_TITLE: &str = "<script>alert('title')</script> & \"fix\"";
const HOSTILE_ORIGIN: &str = "<img src=x onerror=alert(1)>";

/// One HTTP answer.
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    fn text(&self) -> String {
        String::from_utf8(self.body.clone()).expect("UTF-8 body")
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
}

/// `GET path` with extra headers, over a plain HTTP/1.1 connection.
fn get(base: &str, path: &str, extra: &[(&str, &str)]) -> Answer {
    let addr = base.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(addr).expect("connect to the web views");
    stream.set_read_timeout(Some(Duration::from_secs(60))).expect("timeout");
    let mut request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in extra {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).expect("send");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("read the answer");
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("end of headers");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines.next().and_then(|l| l.split_whitespace().nth(1)).and_then(|s| s.parse().ok()).expect("status");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':').map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned())))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    if headers.iter().any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked")) {
        body = dechunk(&body);
    }
    Answer { status, headers, body }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let end = data.windows(2).position(|w| w == b"\r\n").expect("chunk size line");
        let size = usize::from_str_radix(std::str::from_utf8(&data[..end]).unwrap().trim(), 16).expect("chunk size");
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&data[end + 2..end + 2 + size]);
        data = &data[end + 4 + size..];
    }
}

fn sha(text: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(text.as_bytes()))
}

/// A buildinfo of `source` `version` on `arch` producing `debs`, built against `deps`.
fn buildinfo(source: &str, version: &str, arch: &str, debs: &[&str], deps: &[(&str, &str)], origin: &str) -> String {
    let binaries: Vec<&str> = debs.iter().map(|d| d.split('_').next().unwrap()).collect();
    let mut t = format!(
        "Format: 1.0\nSource: {source}\nBinary: {}\nArchitecture: {arch}\nVersion: {version}\nChecksums-Sha256:\n",
        binaries.join(" ")
    );
    for d in debs {
        t.push_str(&format!(" {} 1000 {d}\n", sha(d)));
    }
    t.push_str(&format!(
        "Build-Origin: {origin}\nBuild-Architecture: amd64\nBuild-Date: Mon, 02 Mar 2026 10:00:00 +0000\n\
         Installed-Build-Depends:\n"
    ));
    let mut all: Vec<(&str, &str)> = vec![("base-files", "13"), ("gcc", "4:14.2.0-1")];
    all.extend_from_slice(deps);
    all.sort();
    let n = all.len();
    for (i, (p, v)) in all.into_iter().enumerate() {
        t.push_str(&format!(" {p} (= {v}){}\n", if i + 1 < n { "," } else { "" }));
    }
    t
}

/// A Packages paragraph for a .deb named in a buildinfo.
fn package(deb: &str, source: &str, arch: &str, extra: &str) -> String {
    let mut parts = deb.trim_end_matches(".deb").split('_');
    let (name, version) = (parts.next().unwrap(), parts.next().unwrap());
    format!(
        "Package: {name}\nSource: {source}\nVersion: {version}\nArchitecture: {arch}\n{extra}\
         Filename: pool/main/x/{source}/{deb}\nSize: 1000\nSHA256: {}\n\n",
        sha(deb)
    )
}

/// Write the suite's buildinfos and Packages file under `dir`.
fn corpus(dir: &Path) {
    let bi = dir.join("buildinfo");
    std::fs::create_dir_all(&bi).unwrap();
    let mut packages = String::new();
    let write = |name: &str, text: String| std::fs::write(bi.join(name), text).unwrap();
    write(
        "libvuln.buildinfo",
        buildinfo("libvuln", "1.0-1", "amd64", &["libvuln-dev_1.0-1_amd64.deb"], &[], "Debian"),
    );
    packages.push_str(&package("libvuln-dev_1.0-1_amd64.deb", "libvuln", "amd64", ""));
    for i in 0..CONSUMERS {
        let src = format!("app-{i}");
        let deb = format!("app-{i}_1.0-1_amd64.deb");
        let origin = if i == 0 { HOSTILE_ORIGIN } else { "Debian" };
        write(
            &format!("{src}.buildinfo"),
            buildinfo(&src, "1.0-1", "amd64", &[&deb], &[("libvuln-dev", "1.0-1")], origin),
        );
        packages.push_str(&package(&deb, &src, "amd64", "Static-Built-Using: libvuln (= 1.0-1)\n"));
    }
    write("app-doc.buildinfo", buildinfo("app-doc", "1.0-1", "all", &["app-doc_1.0-1_all.deb"], &[], "Debian"));
    packages.push_str(&package("app-doc_1.0-1_all.deb", "app-doc", "all", ""));
    std::fs::write(dir.join("Packages"), packages).unwrap();
}

fn servers() -> Vec<(Server, Option<TestDatabase>)> {
    let mut v = vec![(Server::start(None), None)];
    if let Some(db) = TestDatabase::create_blocking() {
        v.push((Server::start(Some(&db.url)), Some(db)));
    }
    v
}

/// Everything on one server: pages, JSON, pagination, escaping, 304, metrics, Buildinfo.xz.
fn check_server(s: &Server, dir: &Path) {
    let web = s.web_url();
    let r = s.json(&["ingest", "buildinfo", "--json", dir.join("buildinfo").to_str().unwrap()], 0);
    assert_eq!(r["ingested"], CONSUMERS + 2, "{r}");
    s.json(&["ingest", "archive", "--suite", "sid", "--arch", "amd64", "--json", dir.join("Packages").to_str().unwrap()], 0);
    let c = s.json(
        &["campaign", "create", "--library", "libvuln", "--fixed", "1.1-1", "--suite", "sid", "--title", HOSTILE_TITLE,
          "--advisory", "CVE-2026-0005", "--json"],
        0,
    );
    let id = c["campaign"]["id"].as_i64().expect("campaign id");

    // The index links every page family.
    let index = get(&web, "/", &[]);
    assert_eq!(index.status, 200);
    let html = index.text();
    for link in ["/campaigns", "/nodes", "/metrics", "/suites/sid", "/api/suites/sid/status"] {
        assert!(html.contains(&format!("href=\"{link}\"")), "index lacks {link}: {html}");
    }
    assert_eq!(get(&web, "/api", &[]).json()["suites"], serde_json::json!(["sid"]));

    // Campaign list and page: the hostile title only ever appears escaped.
    for path in ["/campaigns".to_owned(), format!("/campaigns/{id}")] {
        let page = get(&web, &path, &[]);
        assert_eq!(page.status, 200, "{path}");
        assert_eq!(page.header("content-type"), Some("text/html; charset=utf-8"), "{path}");
        let html = page.text();
        assert!(!html.contains("<script>"), "{path} carries the title unescaped: {html}");
        assert!(html.contains("&lt;script&gt;alert('title')&lt;/script&gt; &amp; &quot;fix&quot;"), "{path}: {html}");
    }
    let list = get(&web, "/api/campaigns", &[]).json();
    assert_eq!(list[0]["title"], HOSTILE_TITLE);
    assert_eq!(list[0]["counts"]["affected"], CONSUMERS);

    // Progress per wave × arch, and the items page by page.
    let page1 = get(&web, &format!("/api/campaigns/{id}?per_page=2"), &[]).json();
    assert_eq!(page1["page"], serde_json::json!({"page": 1, "per_page": 2, "total": CONSUMERS}), "{page1:#}");
    assert_eq!(page1["progress"][0]["wave"], 1);
    assert_eq!(page1["progress"][0]["arch"], "amd64");
    assert_eq!(page1["progress"][0]["counts"]["affected"], CONSUMERS);
    let mut seen = BTreeSet::new();
    for p in 1..=3 {
        let page = get(&web, &format!("/api/campaigns/{id}?page={p}&per_page=2"), &[]).json();
        let items = page["items"].as_array().unwrap();
        assert_eq!(items.len(), if p < 3 { 2 } else { CONSUMERS - 4 }, "page {p}: {page:#}");
        for i in items {
            assert_eq!(i["state"], "affected");
            assert!(!i["reason"].as_str().unwrap().is_empty(), "{i}");
            assert!(i["evidence"].as_array().unwrap().iter().any(|e| e.as_str().unwrap().contains("libvuln")), "{i}");
            seen.insert(i["source"].as_str().unwrap().to_owned());
        }
    }
    assert_eq!(seen.len(), CONSUMERS, "pages overlap or miss items: {seen:?}");
    let html = get(&web, &format!("/campaigns/{id}?page=2&per_page=2"), &[]).text();
    assert!(html.contains("Page 2 of 3") && html.contains("rel=\"prev\"") && html.contains("rel=\"next\""), "{html}");
    let export = get(&web, &format!("/campaigns/{id}/export"), &[]);
    assert_eq!(export.status, 200);
    assert!(export.text().contains("nmu app-0_1.0-1 . amd64 . sid ."), "{}", export.text());
    assert_eq!(get(&web, "/campaigns/999999", &[]).status, 404);
    assert_eq!(get(&web, "/campaigns/nonsense", &[]).status, 400);

    // Suite page: everything pending, per architecture.
    let suite = get(&web, "/api/suites/sid", &[]).json();
    let arches: Vec<(String, u64)> = suite["arches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["arch"].as_str().unwrap().to_owned(), a["pending"].as_u64().unwrap()))
        .collect();
    assert_eq!(arches, vec![("all".to_owned(), 1), ("amd64".to_owned(), CONSUMERS as u64 + 1)], "{suite:#}");
    assert_eq!(get(&web, "/suites/sid", &[]).status, 200);
    assert_eq!(get(&web, "/suites/nosuch", &[]).status, 404);

    // Whole-suite status list: Last-Modified, then 304 until something changes.
    let status = get(&web, "/api/suites/sid/status", &[]);
    assert_eq!(status.status, 200);
    let modified = status.header("last-modified").expect("Last-Modified").to_owned();
    let list = status.json();
    assert_eq!(list["builds"].as_array().unwrap().len(), CONSUMERS + 2, "{list:#}");
    assert!(list["builds"].as_array().unwrap().iter().all(|b| b["status"] == "pending"));
    let again = get(&web, "/api/suites/sid/status", &[("If-Modified-Since", &modified)]);
    assert_eq!(again.status, 304, "{}", again.text());
    assert!(again.body.is_empty());
    let old = get(&web, "/api/suites/sid/status", &[("If-Modified-Since", "Mon, 01 Jan 2001 00:00:00 GMT")]);
    assert_eq!(old.status, 200);
    // The suite page's builds, page by page, are the status list's, in its order.
    let key = |b: &Value| (b["source"].to_string(), b["version"].to_string(), b["arch"].to_string());
    let whole: Vec<_> = list["builds"].as_array().unwrap().iter().map(key).collect();
    let mut paged = Vec::new();
    for p in 1..=whole.len().div_ceil(2) + 1 {
        let page = get(&web, &format!("/api/suites/sid?page={p}&per_page=2"), &[]).json();
        assert_eq!(page["page"]["total"], whole.len(), "{page:#}");
        let builds = page["builds"].as_array().unwrap();
        assert!(builds.len() <= 2 && builds.iter().all(|b| b["status"] == "pending"), "{page:#}");
        paged.extend(builds.iter().map(key));
    }
    assert_eq!(paged, whole);
    // A change in the suite's data (a rebuild job queued for its builds, a second later)
    // moves Last-Modified: the poller gets the new list.
    std::thread::sleep(Duration::from_millis(1100));
    let before = get(&web, "/metrics", &[]).text();
    let admin = s.data_dir.path().join("admin.token");
    let admin = admin.to_str().unwrap();
    let q = s.cli(&["verify", "suite", "sid", "--admin-token-file", admin]);
    assert_eq!(q.status.code(), Some(0), "{}", describe(&q));
    let changed = get(&web, "/api/suites/sid/status", &[("If-Modified-Since", &modified)]);
    assert_eq!(changed.status, 200, "queueing jobs did not move Last-Modified");
    assert_ne!(changed.header("last-modified"), Some(modified.as_str()));

    // Source page, its full built-against list, and the hostile Build-Origin escaped.
    let src = get(&web, "/source/app-0", &[]);
    assert_eq!(src.status, 200);
    let html = src.text();
    assert!(!html.contains("<img src=x"), "{html}");
    assert!(html.contains("&lt;img src=x onerror=alert(1)&gt;"), "{html}");
    let data = get(&web, "/api/source/app-0", &[]).json();
    assert_eq!(data["builds"][0]["build_origin"], HOSTILE_ORIGIN);
    assert_eq!(data["builds"][0]["files"][0][1][0], "sid/amd64", "{data:#}");
    assert_eq!(data["rebuilds"][0]["state"], "queued", "{data:#}");
    let deps_url = data["builds"][0]["built_against"].as_str().unwrap().to_owned();
    let deps = get(&web, &format!("/api{deps_url}"), &[]).json();
    assert!(deps["installed"].as_array().unwrap().iter().any(|d| d["package"] == "libvuln-dev" && d["version"] == "1.0-1"));
    assert!(get(&web, &deps_url, &[]).text().contains("libvuln-dev"));
    assert_eq!(get(&web, "/source/no-such-source", &[]).status, 404);
    assert_eq!(get(&web, "/cas/attestations/nothex", &[]).status, 400);
    assert_eq!(get(&web, &format!("/cas/attestations/{}", "0".repeat(64)), &[]).status, 404);
    // An attestation a version before the database kept them left in the content store is
    // still served, byte for byte.
    let link = r#"{"signatures": [], "signed": {"_type": "link", "name": "rebuild"}}"#;
    let key = sha(link);
    let file = s.data_dir.path().join("cas/attestations").join(&key[..2]).join(&key);
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(&file, link).unwrap();
    let old = get(&web, &format!("/cas/attestations/{key}"), &[]);
    assert_eq!((old.status, old.header("content-type"), old.body.as_slice()), (200, Some("application/json"), link.as_bytes()));

    // Nodes: one issued credential, never seen.
    let n = s.cli(&["node", "add", "--operator", "acme", "--name", "n1", "--admin-token-file", admin]);
    assert_eq!(n.status.code(), Some(0), "{}", describe(&n));
    let nodes = get(&web, "/api/nodes", &[]).json();
    assert_eq!(nodes[0]["operator"], "acme", "{nodes:#}");
    assert_eq!(nodes[0]["done_24h"], 0);
    assert!(get(&web, "/nodes", &[]).text().contains("<td>acme</td>"));

    // Metrics: names present, and the actions above moved them.
    let metrics = get(&web, "/metrics", &[]);
    assert_eq!(metrics.status, 200);
    let m = metrics.text();
    for name in [
        "debcover_lease_expiries_total",
        "debcover_queue_depth{",
        "debcover_buildinfos_ingested_total{status=\"new\"}",
        "debcover_packages_entries_ingested_total",
    ] {
        assert!(m.contains(name), "{name} missing:\n{m}");
    }
    assert!(!before.contains("debcover_queue_depth{arch=\"amd64\""), "{before}");
    assert!(m.contains(&format!("debcover_queue_depth{{arch=\"amd64\",priority=\"background\"}} {}", CONSUMERS + 1)), "{m}");
    assert!(m.contains(&format!("debcover_buildinfos_ingested_total{{status=\"new\"}} {}", CONSUMERS + 2)), "{m}");

    // Buildinfo.xz: byte-identical when regenerated; parses back to the builds; arch-all apart.
    let xz = get(&web, "/dists/sid/amd64/Buildinfo.xz", &[]);
    assert_eq!(xz.status, 200);
    assert_eq!(get(&web, "/dists/sid/amd64/Buildinfo.xz", &[]).body, xz.body, "not byte-identical");
    let text = unxz(&xz.body);
    let sources = index_sources(&text);
    let mut want: Vec<String> = (0..CONSUMERS).map(|i| format!("app-{i}")).collect();
    want.push("libvuln".into());
    assert_eq!(sources, want, "{text}");
    for entry in debcover_formats::aggregate::paragraphs(text.as_bytes()) {
        let entry = entry.expect("paragraph");
        let parsed = debcover_formats::aggregate::parse_entry(&entry).expect("entry parses");
        let original = std::fs::read(dir.join("buildinfo").join(format!("{}.buildinfo", parsed.source))).unwrap();
        let original = debcover_formats::buildinfo::Buildinfo::parse(&original).unwrap();
        assert_eq!(parsed, original, "{} does not parse back to the ingested build", parsed.source);
    }
    let all = unxz(&get(&web, "/dists/sid/all/Buildinfo.xz", &[]).body);
    assert_eq!(index_sources(&all), vec!["app-doc".to_owned()]);
    assert_eq!(get(&web, "/dists/sid/AMD64/Buildinfo.xz", &[]).status, 400);
    assert_eq!(get(&web, "/dists/nosuch/amd64/Buildinfo.xz", &[]).status, 404);
}

fn unxz(bytes: &[u8]) -> String {
    let mut out = String::new();
    xz2::read::XzDecoder::new(bytes).read_to_string(&mut out).expect("valid xz");
    out
}

fn index_sources(text: &str) -> Vec<String> {
    text.lines().filter_map(|l| l.strip_prefix("Source: ")).map(|s| s.split(' ').next().unwrap().to_owned()).collect()
}

#[test]
fn pages_json_metrics_and_buildinfo_index_on_both_backends() {
    let dir = tempfile::tempdir().unwrap();
    corpus(dir.path());
    for (s, _db) in servers() {
        check_server(&s, dir.path());
    }
}

#[test]
fn web_views_stop_with_the_server_and_can_be_turned_off() {
    let s = Server::start(None);
    let web = s.web_url();
    assert_eq!(get(&web, "/", &[]).status, 200);
    assert_eq!(s.terminate(), Some(0));
    assert!(std::net::TcpStream::connect(web.trim_start_matches("http://")).is_err(), "web views still listening");
    let off = Server::start_with(None, &[("DEBCOVER_HTTP_LISTEN", "off")]);
    assert!(!off.log().iter().any(|l| l.contains(" web=")), "{:?}", off.log());
}

/// The campaign page in the real headless chromium: it renders (no JavaScript needed) to a
/// screenshot that is a real, non-blank PNG. The screenshot is kept under target/ for a look.
#[test]
fn chromium_renders_the_campaign_page() {
    let Some(chromium) = which("chromium") else {
        if in_ci() {
            panic!("chromium is not installed (apt-get install chromium)");
        }
        eprintln!("SKIPPING: chromium is not installed (apt-get install chromium)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    corpus(dir.path());
    let s = Server::start(None);
    s.json(&["ingest", "buildinfo", "--json", dir.path().join("buildinfo").to_str().unwrap()], 0);
    s.json(&["ingest", "archive", "--suite", "sid", "--arch", "amd64", "--json", dir.path().join("Packages").to_str().unwrap()], 0);
    let c = s.json(
        &["campaign", "create", "--library", "libvuln", "--fixed", "1.1-1", "--suite", "sid", "--title", HOSTILE_TITLE, "--json"],
        0,
    );
    let url = format!("{}/campaigns/{}", s.web_url(), c["campaign"]["id"]);
    let shot = debcover_tests::workspace().join("target/debcover-screenshots/campaign.png");
    std::fs::create_dir_all(shot.parent().unwrap()).unwrap();
    let _ = std::fs::remove_file(&shot);
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new(chromium)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=1280,1000"])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--screenshot={}", shot.display()))
        .arg(&url)
        .env("HOME", profile.path())
        .output()
        .expect("run chromium");
    assert!(out.status.success(), "{}", describe(&out));
    let png = std::fs::read(&shot).unwrap_or_else(|e| panic!("no screenshot {} ({e}): {}", shot.display(), describe(&out)));
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
    let (w, h) = (u32::from_be_bytes(png[16..20].try_into().unwrap()), u32::from_be_bytes(png[20..24].try_into().unwrap()));
    assert_eq!((w, h), (1280, 1000));
    // A blank white page compresses to a few kilobytes; tables of text do not.
    assert!(png.len() > 20_000, "screenshot suspiciously small ({} bytes): blank page?", png.len());
}
