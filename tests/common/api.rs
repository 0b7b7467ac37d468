//! API calls as a given caller, and the sequences many tests repeat.

use std::path::Path;

use super::{fixture, get, json_as, post_json, promote, put_bytes, send, upload, Resp, TestServer};

/// Creates a token over the admin API and returns its secret.
pub fn create_token(srv: &TestServer, body: serde_json::Value) -> String {
    let r = post_json(&srv.api("/tokens"), body);
    assert_eq!(r.status, 201, "{}", r.text());
    let t = r.json()["token"].as_str().expect("token").to_string();
    assert!(t.starts_with("fkl_"), "{t}");
    t
}

/// Uploads an RPM fixture into `channel` with `token` (None: anonymous).
pub fn upload_as(srv: &TestServer, file: &str, token: Option<&str>, channel: &str) -> Resp {
    let bytes = std::fs::read(fixture(file)).expect("fixture");
    let mut headers = vec![];
    let auth;
    if let Some(t) = token {
        auth = format!("Bearer {t}");
        headers.push(("Authorization", auth.as_str()));
    }
    send(
        "PUT",
        &srv.api(&format!("/packages/{file}?channel={channel}")),
        &headers,
        &bytes,
    )
}

pub fn promote_as(srv: &TestServer, id: &str, to: &str, token: Option<&str>) -> Resp {
    json_as(
        "POST",
        &srv.api(&format!("/packages/{id}/promote")),
        token,
        serde_json::json!({ "to": to }),
    )
}

pub fn demote_as(srv: &TestServer, id: &str, from: &str, token: Option<&str>) -> Resp {
    json_as(
        "POST",
        &srv.api(&format!("/packages/{id}/demote")),
        token,
        serde_json::json!({ "from": from, "reason": "bad build" }),
    )
}

/// Uploads `bytes` as `name` into qa, as the admin.
pub fn upload_bytes(srv: &TestServer, name: &str, bytes: &[u8]) -> Resp {
    put_bytes(&srv.api(&format!("/packages/{name}?channel=qa")), bytes)
}

/// Uploads the file at `path` into qa (a new build: 201), promotes it by file
/// name through `to` in order (each 200), and returns its id.
pub fn upload_and_promote(srv: &TestServer, path: &Path, to: &[&str]) -> String {
    let name = path
        .file_name()
        .expect("name")
        .to_string_lossy()
        .to_string();
    let r = upload(srv, path, Some("qa"));
    assert_eq!(r.status, 201, "upload {name}: {}", r.text());
    let id = r.json()["id"].as_str().expect("id").to_string();
    for channel in to {
        let r = promote(srv, &name, channel);
        assert_eq!(r.status, 200, "{name} → {channel}: {}", r.text());
    }
    id
}

/// A build's history events (`id`: its sha256 or file name), oldest first.
pub fn history(srv: &TestServer, id: &str) -> Vec<serde_json::Value> {
    get(&srv.api(&format!("/packages/{id}"))).json()["history"]
        .as_array()
        .expect("history")
        .clone()
}

/// The kinds of a build's history events, oldest first.
pub fn history_kinds(srv: &TestServer, id: &str) -> Vec<String> {
    history(srv, id)
        .iter()
        .map(|e| e["kind"].as_str().expect("kind").to_string())
        .collect()
}
