//! A bulk promotion larger than one SQL statement takes parameters: SQLite
//! allows 32,766, and the bulk endpoint promises up to 100,000 builds. The
//! rows are inserted directly (uploading 33,000 files would take minutes);
//! everything after that is the real service and the real HTTP repository.

mod common;

use std::io::Read;

use common::{Backend, TestServer};
use diesel::prelude::*;
use forklift::db::models::PackageRow;
use forklift::db::schema::packages;
use forklift::service::promotion::transitions;
use forklift::service::{Actor, PackageRef};

const N: usize = 33_000;

fn row(i: usize) -> PackageRow {
    let id = format!("{i:064x}");
    let name = format!("bulk-{i:05}");
    let location = format!("Packages/{id}/{name}-1.0-1.noarch.rpm");
    PackageRow {
        id: id.clone(),
        kind: "rpm".into(),
        name: name.clone(),
        epoch: 0,
        version: "1.0".into(),
        release: "1".into(),
        arch: "noarch".into(),
        filename: format!("{name}-1.0-1.noarch.rpm"),
        size: 100,
        summary: "bulk".into(),
        uploaded_at: 1_700_000_000,
        uploaded_by: "test".into(),
        primary_xml: format!(
            "<package type=\"rpm\"><name>{name}</name><arch>noarch</arch>\
             <version epoch=\"0\" ver=\"1.0\" rel=\"1\"/>\
             <checksum type=\"sha256\" pkgid=\"YES\">{id}</checksum>\
             <location href=\"{location}\"/></package>\n"
        ),
        filelists_xml: format!(
            "<package pkgid=\"{id}\" name=\"{name}\" arch=\"noarch\">\
             <version epoch=\"0\" ver=\"1.0\" rel=\"1\"/></package>\n"
        ),
        other_xml: format!(
            "<package pkgid=\"{id}\" name=\"{name}\" arch=\"noarch\">\
             <version epoch=\"0\" ver=\"1.0\" rel=\"1\"/></package>\n"
        ),
        apt_stanza: None,
        pool_path: None,
    }
}

fn gunzip(bytes: &[u8]) -> String {
    let mut s = String::new();
    flate2::read::MultiGzDecoder::new(bytes)
        .read_to_string(&mut s)
        .expect("gzip");
    s
}

/// SQLite only: PostgreSQL binds an id list as one array parameter.
#[test]
fn bulk_promotion_above_sqlite_parameter_limit() {
    let Some(server) = TestServer::start(Backend::Sqlite) else {
        return;
    };
    let rows: Vec<PackageRow> = (0..N).map(row).collect();
    {
        let mut conn = server.ctx.conn().expect("conn");
        conn.transaction::<_, diesel::result::Error, _>(|conn| {
            for r in &rows {
                diesel::insert_into(packages::table)
                    .values(r)
                    .execute(conn)?;
            }
            Ok(())
        })
        .expect("insert rows");
    }
    let ids: Vec<PackageRef> = rows
        .iter()
        .map(|r| PackageRef::parse(&r.id).expect("an id"))
        .collect();
    let qa = server.ctx.channel("qa").expect("qa");
    let result = transitions::promote_many(&server.ctx, &ids, &qa, false, &Actor::system())
        .expect("bulk promotion of 33,000 builds");
    assert_eq!(result.added.len(), N);
    assert!(result.revision.is_some());

    // The published repository lists every build, once.
    let repomd = ureq::get(&format!("{}/rpm/qa/repodata/repomd.xml", server.url))
        .call()
        .expect("repomd")
        .into_string()
        .expect("text");
    let href = repomd
        .split("<location href=\"")
        .skip(1)
        .map(|s| s.split('"').next().unwrap_or_default())
        .find(|h| h.ends_with("-primary.xml.gz"))
        .expect("primary listed")
        .to_string();
    let mut gz = Vec::new();
    ureq::get(&format!("{}/rpm/qa/{href}", server.url))
        .call()
        .expect("primary")
        .into_reader()
        .read_to_end(&mut gz)
        .expect("body");
    let xml = gunzip(&gz);
    assert!(xml.contains(&format!("packages=\"{N}\"")));
    assert_eq!(xml.matches("<package type=\"rpm\">").count(), N);
    assert!(xml.contains("<name>bulk-00000</name>") && xml.contains("<name>bulk-32999</name>"));
}
