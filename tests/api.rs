//! The HTTP API over a real server, on SQLite and on PostgreSQL.

mod common;

use common::*;

const DEMO10: &str = "forklift-demo-1.0-1.x86_64.rpm";
const DEMO11: &str = "forklift-demo-1.1-1.x86_64.rpm";
const DEMO20: &str = "forklift-demo-2.0-1.x86_64.rpm";
const LIB: &str = "forklift-lib-1.0-1.noarch.rpm";

fn sha256_of(path: &std::path::Path) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(std::fs::read(path).expect("read")))
}

fn upload_and_promotion(b: Backend) {
    let Some(srv) = TestServer::start(b) else {
        return;
    };
    let r = upload(&srv, &fixture(DEMO10), Some("qa"));
    assert_eq!(r.status, 201, "{}", r.text());
    let j = r.json();
    assert_eq!(j["id"], sha256_of(&fixture(DEMO10)));
    assert_eq!(j["name"], "forklift-demo");
    assert_eq!(j["version"], "1.0");
    assert_eq!(j["release"], "1");
    assert_eq!(j["arch"], "x86_64");
    assert_eq!(j["epoch"], 0);
    assert_eq!(
        j["size"],
        std::fs::metadata(fixture(DEMO10)).expect("meta").len()
    );
    assert_eq!(j["channels"], serde_json::json!(["qa"]));
    let id = j["id"].as_str().expect("id").to_string();

    // Same bytes again: 200 with the same record, stored once.
    let blobs = srv.blob_count();
    let again = upload(&srv, &fixture(DEMO10), None);
    assert_eq!(again.status, 200);
    assert_eq!(again.json()["id"], id);
    assert_eq!(srv.blob_count(), blobs);

    // Multipart upload works too and reports the entry channel.
    let lib = std::fs::read(fixture(LIB)).expect("lib");
    let r = post_multipart(&srv.api("/packages?channel=qa"), "file", LIB, &lib);
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["channels"], serde_json::json!(["qa"]));

    // No skipping levels.
    let r = promote(&srv, &id, "prod");
    assert_eq!(r.status, 422, "{}", r.text());
    assert_eq!(r.error_code(), "promotion_not_allowed");
    // Unknown channel.
    let r = promote(&srv, &id, "nowhere");
    assert_eq!(r.status, 404);
    assert_eq!(r.error_code(), "channel_not_found");
    // Unknown package.
    let r = promote(&srv, "no-such-1-1.x86_64.rpm", "staging");
    assert_eq!(r.status, 404);
    assert_eq!(r.error_code(), "package_not_found");

    // Promote by file name, then by id.
    let r = promote(&srv, DEMO10, "staging");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["changed"], true);
    assert_eq!(
        r.json()["package"]["channels"],
        serde_json::json!(["qa", "staging"])
    );
    let r = promote(&srv, &id, "prod");
    assert_eq!(r.status, 200);
    // Promoting again changes nothing and creates no revision.
    let revs_before = get(&srv.api("/channels/prod/revisions")).json();
    let r = promote(&srv, &id, "prod");
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["changed"], false);
    assert_eq!(
        get(&srv.api("/channels/prod/revisions")).json(),
        revs_before
    );

    // Uploads go only into the first channel.
    let r = upload(&srv, &fixture(DEMO11), Some("staging"));
    assert_eq!(r.status, 422);
    let r = upload(&srv, &fixture(DEMO11), Some("nope"));
    assert_eq!(r.status, 404);
    assert_eq!(r.error_code(), "channel_not_found");

    // History has every event of the build, with actor and client.
    let d = get(&srv.api(&format!("/packages/{id}"))).json();
    let kinds: Vec<&str> = d["history"]
        .as_array()
        .expect("history")
        .iter()
        .map(|e| e["kind"].as_str().expect("kind"))
        .collect();
    assert_eq!(kinds, vec!["uploaded", "added", "promoted", "promoted"]);
    for e in d["history"].as_array().expect("history") {
        assert_eq!(e["actor"], "admin");
        assert_eq!(e["client"], "127.0.0.1");
    }
    assert!(d["downloads"]["prod"]
        .as_str()
        .expect("prod url")
        .ends_with(&format!("/rpm/prod/Packages/{id}/{DEMO10}")));

    // Listing with filters.
    let all = get(&srv.api("/packages")).json();
    assert_eq!(all.as_array().expect("list").len(), 2);
    let in_prod = get(&srv.api("/packages?channel=prod")).json();
    assert_eq!(in_prod.as_array().expect("list").len(), 1);
    let by_name = get(&srv.api("/packages?name=forklift-lib")).json();
    assert_eq!(by_name[0]["name"], "forklift-lib");
    let noarch = get(&srv.api("/packages?arch=noarch")).json();
    assert_eq!(noarch.as_array().expect("list").len(), 1);
    assert_eq!(get(&srv.api("/packages?channel=nope")).status, 404);
}

fn demotion_falls_back_to_last_good_build(b: Backend) {
    let Some(srv) = TestServer::start(b) else {
        return;
    };
    for f in [DEMO10, DEMO11, LIB] {
        assert_eq!(upload(&srv, &fixture(f), Some("qa")).status, 201);
        for to in ["staging", "prod"] {
            assert_eq!(promote(&srv, f, to).status, 200);
        }
    }
    let r = demote(&srv, DEMO11, "staging", "fails smoke tests");
    assert_eq!(r.status, 200, "{}", r.text());
    let j = r.json();
    // Removed from staging and every later channel, kept in qa.
    assert_eq!(j["package"]["channels"], serde_json::json!(["qa"]));
    assert_eq!(j["fell_back_to"]["staging"]["filename"], DEMO10);
    assert_eq!(j["fell_back_to"]["prod"]["filename"], DEMO10);
    let prod = get(&srv.api("/channels/prod")).json();
    let names: Vec<&str> = prod["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .map(|p| p["filename"].as_str().expect("filename"))
        .collect();
    assert_eq!(names, vec![DEMO10, LIB]);

    // Demotion needs a reason and a channel that holds the build.
    let r = demote(&srv, DEMO10, "prod", "  ");
    assert_eq!(r.status, 400);
    let r = demote(&srv, DEMO11, "prod", "again");
    assert_eq!(r.status, 422);

    // History shows who and why, per channel, with the fallback.
    let d = get(&srv.api(&format!("/packages/{DEMO11}"))).json();
    let demotions: Vec<&serde_json::Value> = d["history"]
        .as_array()
        .expect("history")
        .iter()
        .filter(|e| e["kind"] == "demoted")
        .collect();
    assert_eq!(demotions.len(), 2);
    for e in &demotions {
        assert_eq!(e["reason"], "fails smoke tests");
        assert_eq!(e["detail"]["fell_back_to"], sha256_of(&fixture(DEMO10)));
    }
}

fn revisions_and_diff(b: Backend) {
    let Some(srv) = TestServer::start(b) else {
        return;
    };
    let revs = get(&srv.api("/channels/qa/revisions")).json();
    assert_eq!(
        revs.as_array().expect("revs").len(),
        1,
        "a new channel has one empty revision"
    );
    assert_eq!(upload(&srv, &fixture(DEMO10), Some("qa")).status, 201);
    assert_eq!(upload(&srv, &fixture(DEMO11), Some("qa")).status, 201);
    let r = demote(&srv, DEMO10, "qa", "superseded");
    assert_eq!(r.status, 200);
    let revs = get(&srv.api("/channels/qa/revisions")).json();
    let numbers: Vec<i64> = revs
        .as_array()
        .expect("revs")
        .iter()
        .map(|r| r["number"].as_i64().expect("n"))
        .collect();
    assert_eq!(numbers, vec![4, 3, 2, 1]);
    assert_eq!(revs[0]["package_count"], 1);
    assert_eq!(revs[1]["package_count"], 2);

    // Each revision keeps its own package set: history is never rewritten.
    let r3 = get(&srv.api("/channels/qa/revisions/3")).json();
    assert_eq!(r3["packages"].as_array().expect("pkgs").len(), 2);
    let r2 = get(&srv.api("/channels/qa/revisions/2")).json();
    assert_eq!(r2["packages"][0]["filename"], DEMO10);
    assert_eq!(get(&srv.api("/channels/qa/revisions/99")).status, 404);

    let d = get(&srv.api("/channels/qa/diff?from=2&to=4")).json();
    assert_eq!(d["added"][0]["filename"], DEMO11);
    assert_eq!(d["removed"][0]["filename"], DEMO10);
    assert_eq!(get(&srv.api("/channels/qa/diff?from=1&to=77")).status, 404);
    assert_eq!(
        get(&srv.api("/channels/qa/diff?from=x&to=2")).error_code(),
        "invalid_query"
    );

    // "What was in qa at time T": the revision in force at a time.
    let at = get(&srv.api("/channels/qa/revisions?at=2000-01-01T00:00:00Z")).json();
    assert_eq!(at.as_array().expect("list").len(), 0);
    let now = chrono::Utc::now() + chrono::Duration::seconds(30);
    let at = get(&srv.api(&format!(
        "/channels/qa/revisions?at={}",
        now.format("%Y-%m-%dT%H:%M:%SZ")
    )))
    .json();
    assert_eq!(at[0]["number"], 4);

    let chans = get(&srv.api("/channels")).json();
    let names: Vec<&str> = chans
        .as_array()
        .expect("chans")
        .iter()
        .map(|c| c["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, vec!["qa", "staging", "prod"]);
    assert_eq!(chans[1]["source"], "qa");
    assert_eq!(get(&srv.api("/channels/nope")).status, 404);
}

fn bad_input_is_refused_and_leaves_nothing(b: Backend) {
    let Some(srv) = TestServer::start_with(b, |l| l.max_upload_bytes = Some(64 * 1024)) else {
        return;
    };
    let blobs = srv.blob_count();
    let packages = || {
        get(&srv.api("/packages"))
            .json()
            .as_array()
            .expect("list")
            .len()
    };

    let r = put_bytes(
        &srv.api("/packages/notes.txt"),
        b"just some text, not a package",
    );
    assert_eq!(r.status, 415, "{}", r.text());
    assert_eq!(r.error_code(), "unsupported_package_type");

    let good = std::fs::read(fixture(DEMO10)).expect("fixture");
    let r = put_bytes(&srv.api("/packages/truncated.rpm"), &good[..good.len() / 2]);
    assert_eq!(r.status, 422, "{}", r.text());
    let r = put_bytes(&srv.api("/packages/tiny.rpm"), &good[..200]);
    assert_eq!(r.status, 422, "{}", r.text());
    assert_eq!(r.error_code(), "invalid_package");

    // Flip one byte in the payload: the payload digest no longer matches.
    let mut corrupt = good.clone();
    let last = corrupt.len() - 10;
    corrupt[last] ^= 0xff;
    let r = put_bytes(&srv.api("/packages/corrupt.rpm"), &corrupt);
    assert_eq!(r.status, 422, "{}", r.text());
    assert_eq!(r.error_code(), "digest_mismatch");

    // Over the limit: refused by Content-Length before the body is read.
    let big = vec![0u8; 65 * 1024];
    let r = put_bytes(&srv.api("/packages/big.rpm"), &big);
    assert_eq!(r.status, 413);
    assert_eq!(r.error_code(), "upload_too_large");
    let r = post_multipart(&srv.api("/packages"), "file", "big.rpm", &big);
    assert_eq!(r.status, 413);

    for name in [
        "..%2Fetc%2Fpasswd.rpm",
        "%2E%2E.rpm",
        "a%5Cb.rpm",
        "x%2Fy.rpm",
    ] {
        let r = put_bytes(&srv.api(&format!("/packages/{name}")), &good);
        assert_eq!(r.status, 400, "{name}: {}", r.text());
        assert!(matches!(
            r.error_code().as_str(),
            "invalid_filename" | "invalid_path"
        ));
    }
    let r = post_multipart(&srv.api("/packages"), "file", "../../x.rpm", &good);
    assert_eq!(r.status, 400);
    let r = post_multipart(&srv.api("/packages"), "notes", "", b"x");
    assert_eq!(r.status, 400);

    let r = put_bytes(&srv.api("/packages/x.rpm?channel=unknown"), &good);
    assert_eq!(r.status, 404);

    let r = post_json(
        &srv.api("/packages/x/promote"),
        serde_json::json!({"too": "prod"}),
    );
    assert_eq!(r.status, 400);
    assert_eq!(r.error_code(), "invalid_json");

    assert_eq!(
        srv.blob_count(),
        blobs,
        "a refused upload left a blob behind"
    );
    assert_eq!(
        srv.temp_count(),
        0,
        "a refused upload left a temp file behind"
    );
    assert_eq!(packages(), 0, "a refused upload left a database row");
    // And the server keeps serving.
    assert_eq!(upload(&srv, &fixture(DEMO10), Some("qa")).status, 201);
    assert_eq!(get(&format!("{}/healthz", srv.url)).status, 200);
    assert_eq!(
        get(&format!("{}/no/such/route", srv.url)).error_code(),
        "not_found"
    );
}

fn same_identity_different_bytes_is_a_conflict(b: Backend) {
    let Some(srv) = TestServer::start(b) else {
        return;
    };
    let Some(corpus) = corpus_dir() else { return };
    let first = corpus.join("rpm__hello-2.0-1.x86_64.rpm");
    let second = corpus.join("rpm__hello-2.0-1.x86_64-signed.rpm");
    assert_eq!(upload(&srv, &first, None).status, 201);
    let blobs = srv.blob_count();
    let r = upload(&srv, &second, None);
    assert_eq!(r.status, 409, "{}", r.text());
    assert_eq!(r.error_code(), "package_exists");
    assert!(r.json()["message"]
        .as_str()
        .expect("msg")
        .contains(&sha256_of(&first)));
    assert_eq!(srv.blob_count(), blobs);
}

fn yum_repository_http_semantics(b: Backend) {
    let Some(srv) = TestServer::start_with(b, |l| l.grace_period = Some("1h".into())) else {
        return;
    };
    let repomd_url = format!("{}/rpm/qa/repodata/repomd.xml", srv.url);
    let empty = get(&repomd_url);
    assert_eq!(empty.status, 200);
    assert_eq!(empty.header("cache-control").as_deref(), Some("no-cache"));
    assert!(empty.header("content-encoding").is_none());
    let lm0 = httpdate::parse_http_date(&empty.header("last-modified").expect("lm")).expect("date");

    assert_eq!(upload(&srv, &fixture(DEMO10), Some("qa")).status, 201);
    let one = get(&repomd_url);
    let lm1 = httpdate::parse_http_date(&one.header("last-modified").expect("lm")).expect("date");
    assert!(
        lm1 > lm0,
        "Last-Modified must strictly increase per publication"
    );
    assert_ne!(one.body, empty.body);

    // Unchanged channel: byte-identical repomd.xml.
    assert_eq!(upload(&srv, &fixture(DEMO10), Some("qa")).status, 200);
    assert_eq!(get(&repomd_url).body, one.body);

    // Conditional GET as apt does it.
    let r = get_with(
        &repomd_url,
        &[(
            "If-Modified-Since",
            &one.header("last-modified").expect("lm"),
        )],
    );
    assert_eq!(r.status, 304);

    let repomd = one.text();
    let primary_href = repomd
        .split("<location href=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("primary href")
        .to_string();
    let primary = get(&format!("{}/rpm/qa/{primary_href}", srv.url));
    assert_eq!(primary.status, 200);
    assert_eq!(
        primary.header("cache-control").as_deref(),
        Some("public, max-age=31536000, immutable")
    );
    assert!(
        primary.header("content-encoding").is_none(),
        "never Content-Encoding on .gz"
    );
    assert_eq!(
        primary.header("content-length").expect("len"),
        primary.body.len().to_string()
    );

    // The package file, exact length, with single ranges and multi-range as 200.
    let id = sha256_of(&fixture(DEMO10));
    let pkg_url = format!("{}/rpm/qa/Packages/{id}/{DEMO10}", srv.url);
    let full = get(&pkg_url);
    let bytes = std::fs::read(fixture(DEMO10)).expect("fixture");
    assert_eq!(full.status, 200);
    assert_eq!(full.body, bytes);
    assert_eq!(
        full.header("content-length").expect("len"),
        bytes.len().to_string()
    );
    let head = ureq::head(&pkg_url).call().expect("HEAD");
    assert_eq!(head.status(), 200);
    assert_eq!(
        head.header("content-length"),
        Some(bytes.len().to_string().as_str())
    );
    let part = get_with(&pkg_url, &[("Range", "bytes=100-199")]);
    assert_eq!(part.status, 206);
    assert_eq!(part.body, &bytes[100..200]);
    assert_eq!(
        part.header("content-range").expect("cr"),
        format!("bytes 100-199/{}", bytes.len())
    );
    let tail = get_with(&pkg_url, &[("Range", "bytes=-16")]);
    assert_eq!(tail.body, &bytes[bytes.len() - 16..]);
    let multi = get_with(&pkg_url, &[("Range", "bytes=0-1,5-9")]);
    assert_eq!(multi.status, 200);
    assert_eq!(multi.body, bytes);
    let beyond = get_with(&pkg_url, &[("Range", &format!("bytes={}-", bytes.len()))]);
    assert_eq!(beyond.status, 416);

    // Not in staging: 404 there; wrong file name: 404.
    assert_eq!(
        get(&format!("{}/rpm/staging/Packages/{id}/{DEMO10}", srv.url)).status,
        404
    );
    assert_eq!(
        get(&format!("{}/rpm/qa/Packages/{id}/other.rpm", srv.url)).status,
        404
    );

    // After the next publication the old data files stay servable (grace period),
    // and so does the demoted package.
    assert_eq!(demote(&srv, DEMO10, "qa", "bad").status, 200);
    assert_ne!(get(&repomd_url).body, one.body);
    assert_eq!(
        get(&format!("{}/rpm/qa/{primary_href}", srv.url)).status,
        200
    );
    assert_eq!(get(&pkg_url).status, 200);
    assert_eq!(
        get(&format!(
            "{}/rpm/qa/repodata/deadbeef-primary.xml.gz",
            srv.url
        ))
        .status,
        404
    );

    let repo = get(&format!("{}/rpm/qa.repo", srv.url));
    assert_eq!(repo.status, 200);
    assert!(repo
        .text()
        .contains(&format!("baseurl={}/rpm/qa/", srv.url)));
    assert_eq!(get(&format!("{}/rpm/nope.repo", srv.url)).status, 404);
    assert_eq!(
        get(&format!("{}/rpm/nope/repodata/repomd.xml", srv.url)).status,
        404
    );
}

fn superseded_files_expire_after_grace(b: Backend) {
    let Some(srv) = TestServer::start_with(b, |l| l.grace_period = Some("0s".into())) else {
        return;
    };
    assert_eq!(upload(&srv, &fixture(DEMO10), Some("qa")).status, 201);
    let repomd = get(&format!("{}/rpm/qa/repodata/repomd.xml", srv.url)).text();
    let href = repomd
        .split("<location href=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("href")
        .to_string();
    assert_eq!(upload(&srv, &fixture(DEMO20), Some("qa")).status, 201);
    // Revision timestamps are whole seconds; wait until the old one is past grace.
    std::thread::sleep(std::time::Duration::from_millis(2100));
    assert_eq!(get(&format!("{}/rpm/qa/{href}", srv.url)).status, 404);
}

fn concurrent_uploads_and_promotions_stay_consistent(b: Backend) {
    let Some(srv) = TestServer::start(b) else {
        return;
    };
    let files = [
        DEMO10,
        DEMO11,
        DEMO20,
        LIB,
        "forklift-epoch-0.9-2.noarch.rpm",
        "forklift-weak-1.0-1.noarch.rpm",
    ];
    let srv_ref = &srv;
    std::thread::scope(|s| {
        for f in files {
            let srv = srv_ref;
            s.spawn(move || {
                // Two identical uploads racing each other.
                let a = upload(srv, &fixture(f), Some("qa"));
                assert!(a.status == 201 || a.status == 200, "{}", a.text());
                assert_eq!(promote(srv, f, "staging").status, 200);
            });
            s.spawn(move || {
                let a = upload(srv, &fixture(f), Some("qa"));
                assert!(a.status == 201 || a.status == 200, "{}", a.text());
            });
        }
    });
    let staging = get(&srv.api("/channels/staging")).json();
    assert_eq!(
        staging["packages"].as_array().expect("pkgs").len(),
        files.len()
    );
    assert_eq!(staging["revision"]["package_count"], files.len());
    let qa = get(&srv.api("/channels/qa")).json();
    assert_eq!(qa["packages"].as_array().expect("pkgs").len(), files.len());
    // Each package stored once; revision numbers are dense.
    assert_eq!(
        get(&srv.api("/packages"))
            .json()
            .as_array()
            .expect("list")
            .len(),
        files.len()
    );
    // Concurrent promotions may be published together (group commit): at
    // most one revision each, numbered without gaps.
    let revs = get(&srv.api("/channels/staging/revisions")).json();
    let mut numbers: Vec<i64> = revs
        .as_array()
        .expect("revs")
        .iter()
        .map(|r| r["number"].as_i64().expect("number"))
        .collect();
    numbers.sort();
    assert!(
        numbers.len() >= 2 && numbers.len() <= files.len() + 1,
        "{numbers:?}"
    );
    assert_eq!(numbers, (1..=numbers.len() as i64).collect::<Vec<_>>());
}

fn bulk_promotion_is_one_revision(b: Backend) {
    let Some(srv) = TestServer::start(b) else {
        return;
    };
    for f in [DEMO10, LIB, "forklift-epoch-0.9-2.noarch.rpm"] {
        assert_eq!(upload(&srv, &fixture(f), None).status, 201);
    }
    let all = serde_json::json!({"packages": [DEMO10, LIB, "forklift-epoch-0.9-2.noarch.rpm"]});
    // Skipping a level is refused for the whole set, and nothing changes.
    let r = post_json(&srv.api("/channels/staging/promote"), all.clone());
    assert_eq!(r.status, 422, "{}", r.text());
    assert_eq!(
        get(&srv.api("/channels/staging/revisions"))
            .json()
            .as_array()
            .expect("revs")
            .len(),
        1
    );
    let r = post_json(&srv.api("/channels/qa/promote"), all.clone());
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["revision"], 2);
    assert_eq!(r.json()["added"].as_array().expect("added").len(), 3);
    let r = post_json(&srv.api("/channels/staging/promote"), all.clone());
    assert_eq!(r.json()["revision"], 2);
    let again = post_json(&srv.api("/channels/staging/promote"), all);
    assert_eq!(again.json()["revision"], serde_json::Value::Null);
    assert_eq!(
        again.json()["already_present"]
            .as_array()
            .expect("present")
            .len(),
        3
    );
    let staging = get(&srv.api("/channels/staging")).json();
    assert_eq!(staging["packages"].as_array().expect("pkgs").len(), 3);
    let d = get(&srv.api(&format!("/packages/{LIB}"))).json();
    let kinds: Vec<&str> = d["history"]
        .as_array()
        .expect("h")
        .iter()
        .map(|e| e["kind"].as_str().expect("k"))
        .collect();
    assert_eq!(kinds, vec!["uploaded", "added", "promoted"]);
    assert_eq!(
        post_json(
            &srv.api("/channels/qa/promote"),
            serde_json::json!({"packages": []})
        )
        .status,
        400
    );
    assert_eq!(
        post_json(
            &srv.api("/channels/qa/promote"),
            serde_json::json!({"packages": ["nope.rpm"]})
        )
        .status,
        404
    );
    // A bulk body naming 20,000 builds (1.4 MB) is read, not refused for size;
    // the unknown names are what it reports.
    let many: Vec<String> = (0..20_000).map(|i| format!("{i:064x}")).collect();
    let r = post_json(
        &srv.api("/channels/qa/promote"),
        serde_json::json!({ "packages": many }),
    );
    assert_eq!(r.status, 404, "{}", r.text());
    // Past the limits: 413 with the JSON error shape.
    let huge = "x".repeat(9 * 1024 * 1024);
    let r = post_json(
        &srv.api("/channels/qa/promote"),
        serde_json::json!({ "packages": [huge] }),
    );
    assert_eq!(r.status, 413, "{}", r.text());
    assert_eq!(r.error_code(), "body_too_large");
    let r = post_json(
        &srv.api(&format!("/packages/{LIB}/promote")),
        serde_json::json!({ "to": "prod", "pad": "x".repeat(100 * 1024) }),
    );
    assert_eq!(r.status, 413, "{}", r.text());
    // `curl -d` without a JSON content type still works.
    let r = send(
        "POST",
        &srv.api(&format!("/packages/{LIB}/promote")),
        &[
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Authorization", &format!("Bearer {ADMIN_TOKEN}")),
        ],
        br#"{"to":"prod"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
}

/// A clock that stands still except when a publication waits for it, and
/// then really waits (twice as long): the channel runs ahead of the clock
/// deterministically, so later uploads must queue behind a waiting one.
struct WaitingClock(std::sync::atomic::AtomicI64);

impl forklift::service::Clock for WaitingClock {
    fn now(&self) -> i64 {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
    fn sleep(&self, secs: u64) {
        std::thread::sleep(std::time::Duration::from_secs(2 * secs));
        self.0
            .fetch_add(secs as i64, std::sync::atomic::Ordering::SeqCst);
    }
}

/// A channel takes at most one revision per second once it is 5 s ahead of
/// the clock; uploads that arrive meanwhile are published together in one
/// revision, each with its own answer and its own events.
fn waiting_uploads_are_published_together(b: Backend) {
    let clock = std::sync::Arc::new(WaitingClock(std::sync::atomic::AtomicI64::new(
        chrono::Utc::now().timestamp(),
    )));
    let Some(srv) = TestServer::start_full(b, clock, |_| {}) else {
        return;
    };
    let deb = |n: &str| {
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/debs")
            .join(n)
    };
    // Six revisions in a row: the channel is now 5 s ahead of the clock.
    for f in [
        "forklift-common_1.0-1_all.deb",
        "forklift-epoch_0.5-1_all.deb",
        "forklift-hello_1.0-1_amd64.deb",
        "forklift-hello_1.1-1_amd64.deb",
        "forklift-hello_2.0-1_amd64.deb",
    ] {
        assert_eq!(upload(&srv, &deb(f), Some("qa")).status, 201);
    }
    assert_eq!(upload(&srv, &fixture(LIB), Some("qa")).status, 201);
    let revisions = || {
        get(&srv.api("/channels/qa/revisions"))
            .json()
            .as_array()
            .expect("revs")
            .len()
    };
    let before = revisions();
    let tokens: Vec<String> = (0..5)
        .map(|i| {
            let r = post_json(
                &srv.api("/tokens"),
                serde_json::json!({"name": format!("ci-{i}"), "roles": ["uploader"]}),
            );
            r.json()["token"].as_str().expect("token").to_string()
        })
        .collect();
    let files = [
        DEMO10,
        DEMO11,
        DEMO20,
        "forklift-epoch-0.9-2.noarch.rpm",
        "forklift-weak-1.0-1.noarch.rpm",
    ];
    // The first waits a (real) second for the clock, holding qa; the other
    // four queue behind it and go out together.
    std::thread::scope(|s| {
        for (f, token) in files.iter().zip(&tokens) {
            let srv = &srv;
            s.spawn(move || {
                let body = std::fs::read(fixture(f)).expect("fixture");
                let r = send(
                    "PUT",
                    &srv.api(&format!("/packages/{f}?channel=qa")),
                    &[("Authorization", &format!("Bearer {token}"))],
                    &body,
                );
                assert_eq!(r.status, 201, "{}", r.text());
                assert_eq!(r.json()["channels"], serde_json::json!(["qa"]));
            });
        }
    });
    let added = revisions() - before;
    assert!(
        (1..files.len()).contains(&added),
        "{added} revisions for {} waiting uploads",
        files.len()
    );
    let qa = get(&srv.api("/channels/qa")).json();
    assert_eq!(qa["packages"].as_array().expect("pkgs").len(), 11);
    // Each upload keeps its own caller in its history.
    for (i, f) in files.iter().enumerate() {
        let h = get(&srv.api(&format!("/packages/{f}"))).json()["history"].clone();
        let actors: Vec<&str> = h
            .as_array()
            .expect("history")
            .iter()
            .filter(|e| e["kind"] == "uploaded" || e["kind"] == "added")
            .map(|e| e["actor"].as_str().expect("actor"))
            .collect();
        assert_eq!(actors, vec![format!("ci-{i}"); 2], "{f}: {h}");
    }
    // The joint revision names its callers.
    let last = get(&srv.api("/channels/qa/revisions")).json();
    let newest = last
        .as_array()
        .expect("revs")
        .iter()
        .max_by_key(|r| r["number"].as_i64())
        .expect("rev")
        .clone();
    if added < files.len() - 1 {
        assert!(
            newest["actor"].as_str().expect("actor").contains(", "),
            "{newest}"
        );
    }
}

both_backends!(
    waiting_uploads_are_published_together,
    bad_debs_are_refused_and_same_identity_conflicts,
    bulk_promotion_is_one_revision,
    upload_and_promotion,
    demotion_falls_back_to_last_good_build,
    revisions_and_diff,
    bad_input_is_refused_and_leaves_nothing,
    same_identity_different_bytes_is_a_conflict,
    yum_repository_http_semantics,
    superseded_files_expire_after_grace,
    concurrent_uploads_and_promotions_stay_consistent,
);

#[test]
fn migration_folders_match() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    let list = |b: &str| {
        let mut v: Vec<String> = std::fs::read_dir(root.join(b))
            .expect("migrations dir")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().to_string())
            .collect();
        v.sort();
        v
    };
    let sqlite = list("sqlite");
    assert!(!sqlite.is_empty());
    assert_eq!(
        sqlite,
        list("postgres"),
        "every migration must exist for both backends"
    );
    for m in &sqlite {
        for f in ["up.sql", "down.sql"] {
            assert!(root.join("sqlite").join(m).join(f).is_file(), "{m}/{f}");
            assert!(root.join("postgres").join(m).join(f).is_file(), "{m}/{f}");
        }
    }
}

fn deb_fixture(name: &str) -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/debs")
        .join(name)
}

/// An ar archive from (name, bytes) members.
fn ar_archive(members: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut b = ar::Builder::new(&mut out);
        for (name, data) in members {
            let header = ar::Header::new(name.as_bytes().to_vec(), data.len() as u64);
            b.append(&header, *data).expect("ar member");
        }
    }
    out
}

fn bad_debs_are_refused_and_same_identity_conflicts(b: Backend) {
    let Some(srv) = TestServer::start(b) else {
        return;
    };
    let blobs = srv.blob_count();
    // An ar archive that is a static library, not a package.
    let lib = ar_archive(&[("foo.o", b"\x7fELF")]);
    let r = put_bytes(&srv.api("/packages/libfoo.a"), &lib);
    assert_eq!(r.status, 415, "{}", r.text());
    // A package with no control member.
    let nocontrol = ar_archive(&[("debian-binary", b"2.0\n")]);
    let r = put_bytes(&srv.api("/packages/x_1_amd64.deb"), &nocontrol);
    assert_eq!(r.status, 422, "{}", r.text());
    assert_eq!(r.error_code(), "invalid_package");
    // A truncated real one.
    let good = std::fs::read(deb_fixture("forklift-hello_1.0-1_amd64.deb")).expect("fixture");
    let r = put_bytes(&srv.api("/packages/t_1_amd64.deb"), &good[..good.len() / 3]);
    assert_eq!(r.status, 422, "{}", r.text());
    assert_eq!(srv.blob_count(), blobs);
    assert_eq!(srv.temp_count(), 0);
    assert_eq!(
        get(&srv.api("/packages"))
            .json()
            .as_array()
            .expect("list")
            .len(),
        0
    );

    // Same (Package, Version, Architecture), different bytes: 409.
    let r = put_bytes(
        &srv.api("/packages/forklift-hello_1.0-1_amd64.deb?channel=qa"),
        &good,
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["kind"], "deb");
    assert_eq!(r.json()["version"], "1.0");
    assert_eq!(r.json()["release"], "1");
    let mut other = good.clone();
    other.extend_from_slice(&ar_archive(&[("zz-extra", b"x")])[8..]);
    let r = put_bytes(&srv.api("/packages/forklift-hello_1.0-1_amd64.deb"), &other);
    assert_eq!(r.status, 409, "{}", r.text());
    assert_eq!(r.error_code(), "package_exists");
    // Same bytes again: 200.
    let r = put_bytes(&srv.api("/packages/forklift-hello_1.0-1_amd64.deb"), &good);
    assert_eq!(r.status, 200);
    // The pool serves it once for every suite; the history shows the pool URL.
    let d = get(&srv.api("/packages/forklift-hello_1.0-1_amd64.deb")).json();
    let url = d["downloads"]["qa"].as_str().expect("url").to_string();
    assert!(
        url.ends_with("/deb/pool/main/f/forklift-hello/forklift-hello_1.0-1_amd64.deb"),
        "{url}"
    );
    assert_eq!(get(&url).body, good);

    // 1:3.0-1 and 3.0-1 would share one pool file name (Debian names carry no
    // epoch): the second is refused and the first keeps serving.
    let control = |version: &str| {
        format!(
            "Package: forklift-ep\nVersion: {version}\nArchitecture: all\n\
             Maintainer: CI <ci@example.com>\nDescription: epoch test\n"
        )
    };
    let plain = mini_deb(&control("3.0-1"));
    let epoch = mini_deb(&control("1:3.0-1"));
    let r = put_bytes(
        &srv.api("/packages/forklift-ep_3.0-1_all.deb?channel=qa"),
        &plain,
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let blobs = srv.blob_count();
    let r = put_bytes(&srv.api("/packages/forklift-ep_1:3.0-1_all.deb"), &epoch);
    assert_eq!(r.status, 409, "{}", r.text());
    assert_eq!(r.error_code(), "pool_path_taken");
    assert!(r
        .text()
        .contains("pool/main/f/forklift-ep/forklift-ep_3.0-1_all.deb"));
    assert_eq!(srv.blob_count(), blobs);
    assert_eq!(srv.temp_count(), 0);
    let r = get(&format!(
        "{}/deb/pool/main/f/forklift-ep/forklift-ep_3.0-1_all.deb",
        srv.url
    ));
    assert_eq!(r.body, plain);
}

/// A minimal binary package: debian-binary, control.tar.gz with `control`, and
/// an empty data.tar.gz.
fn mini_deb(control: &str) -> Vec<u8> {
    let targz = |files: &[(&str, &[u8])]| {
        let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        let mut t = tar::Builder::new(gz);
        for (name, data) in files {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            t.append_data(&mut h, name, *data).expect("tar member");
        }
        t.into_inner().expect("tar").finish().expect("gzip")
    };
    let ctl = targz(&[("./control", control.as_bytes())]);
    let data = targz(&[]);
    ar_archive(&[
        ("debian-binary", b"2.0\n"),
        ("control.tar.gz", &ctl),
        ("data.tar.gz", &data),
    ])
}
