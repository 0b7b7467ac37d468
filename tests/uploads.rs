//! Uploads over the HTTP API, on SQLite and on PostgreSQL: the upload record,
//! re-uploads, listings, and what is refused (bad input, identity conflicts,
//! bad .deb files) without leaving anything behind.

mod common;

use common::*;

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
    assert_eq!(
        history_kinds(&srv, &id),
        vec!["uploaded", "added", "promoted", "promoted"]
    );
    for e in history(&srv, &id) {
        assert_eq!(e["actor"], "admin");
        assert_eq!(e["client"], "127.0.0.1");
    }
    let d = get(&srv.api(&format!("/packages/{id}"))).json();
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
    assert_eq!(r.error_code(), "channel_not_found");
    // Later channels are reached by promotion only: its own code, not a
    // promotion's refusal.
    let r = put_bytes(&srv.api("/packages/x.rpm?channel=staging"), &good);
    assert_eq!(r.status, 422, "{}", r.text());
    assert_eq!(r.error_code(), "not_entry_channel");
    let message = r.json()["message"].as_str().unwrap_or_default().to_string();
    assert!(message.contains("\"qa\""), "{message}");

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

both_backends!(
    upload_and_promotion,
    bad_input_is_refused_and_leaves_nothing,
    same_identity_different_bytes_is_a_conflict,
    bad_debs_are_refused_and_same_identity_conflicts,
);
