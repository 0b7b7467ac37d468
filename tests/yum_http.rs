//! A channel's yum repository over HTTP, on SQLite and on PostgreSQL: caching
//! headers, conditional GETs, ranges, 404s, the .repo file, and superseded
//! metadata served through the grace period, then gone.

mod common;

use common::*;

fn yum_repository_http_semantics(b: Backend) {
    // Revision times come from this clock: the test decides which
    // publications share a second.
    let clock = std::sync::Arc::new(forklift::service::ManualClock::new(
        chrono::Utc::now().timestamp(),
    ));
    let Some(srv) =
        TestServer::start_full(b, clock.clone(), |l| l.grace_period = Some("1h".into()))
    else {
        return;
    };
    let repomd_url = format!("{}/rpm/qa/repodata/repomd.xml", srv.url);
    let empty = get(&repomd_url);
    assert_eq!(empty.status, 200);
    assert_eq!(empty.header("cache-control").as_deref(), Some("no-cache"));
    assert!(empty.header("content-encoding").is_none());
    let lm = |r: &Resp| r.header("last-modified").expect("Last-Modified");
    let lm0 = httpdate::parse_http_date(&lm(&empty)).expect("date");

    clock.advance(1);
    assert_eq!(upload(&srv, &fixture(DEMO10), Some("qa")).status, 201);
    let one = get(&repomd_url);
    let lm1 = httpdate::parse_http_date(&lm(&one)).expect("date");
    assert!(
        lm1 > lm0,
        "a publication in a later second has a later Last-Modified"
    );
    assert_ne!(one.body, empty.body);

    // Unchanged channel: byte-identical repomd.xml.
    assert_eq!(upload(&srv, &fixture(DEMO10), Some("qa")).status, 200);
    assert_eq!(get(&repomd_url).body, one.body);

    // Conditional GET as apt does it: unchanged, 304; the old copy, 200.
    let r = get_with(&repomd_url, &[("If-Modified-Since", &lm(&one))]);
    assert_eq!(r.status, 304);
    let r = get_with(&repomd_url, &[("If-Modified-Since", &lm(&empty))]);
    assert_eq!(r.status, 200);

    // A second publication within the same second: Last-Modified stays, so
    // it may no longer answer a conditional request with 304 (that would
    // hide the new revision from apt), nor resume a range by date.
    assert_eq!(upload(&srv, &fixture(DEMO11), Some("qa")).status, 201);
    let two = get(&repomd_url);
    assert_eq!(lm(&two), lm(&one), "the clock did not move");
    assert_ne!(two.body, one.body);
    let r = get_with(&repomd_url, &[("If-Modified-Since", &lm(&one))]);
    assert_eq!(r.status, 200, "a copy of the previous revision is stale");
    assert_eq!(r.body, two.body);
    let r = get_with(
        &repomd_url,
        &[("Range", "bytes=0-9"), ("If-Range", &lm(&one))],
    );
    assert_eq!(
        r.status, 200,
        "If-Range by an ambiguous date gets the whole file"
    );
    // The next second's publication is unambiguous again.
    clock.advance(1);
    assert_eq!(upload(&srv, &fixture(DEMO20), Some("qa")).status, 201);
    let three = get(&repomd_url);
    let r = get_with(&repomd_url, &[("If-Modified-Since", &lm(&three))]);
    assert_eq!(r.status, 304);
    let one = three;

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
    let repomd_url = format!("{}/rpm/qa/repodata/repomd.xml", srv.url);
    let repomd = get(&repomd_url).text();
    let href = repomd
        .split("<location href=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("href")
        .to_string();
    // Served while it is current (else the 404 below would prove nothing).
    assert_eq!(get(&format!("{}/rpm/qa/{href}", srv.url)).status, 200);
    assert_eq!(upload(&srv, &fixture(DEMO20), Some("qa")).status, 201);
    // The next revision no longer names it: it is superseded.
    assert!(!get(&repomd_url).text().contains(&href), "{href}");
    // Revision timestamps are whole seconds; wait until the old one is past grace.
    std::thread::sleep(std::time::Duration::from_millis(2100));
    assert_eq!(get(&format!("{}/rpm/qa/{href}", srv.url)).status, 404);
}

both_backends!(
    yum_repository_http_semantics,
    superseded_files_expire_after_grace,
);
