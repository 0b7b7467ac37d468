//! `/metrics` read by a Prometheus text-format parser after an upload and a
//! promotion: the named series are there with the values that happened; and
//! it is closed to those who may not read every channel.

mod common;

use common::*;

fn scrape(srv: &TestServer, token: Option<&str>) -> Resp {
    get_as(&format!("{}/metrics", srv.url), token)
}

fn value(s: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    s.samples
        .iter()
        .find(|x| x.metric == name && labels.iter().all(|(k, v)| x.labels.get(k) == Some(*v)))
        .map(|x| match x.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            _ => f64::NAN,
        })
}

fn parse(text: &str) -> prometheus_parse::Scrape {
    let lines = text.lines().map(|l| Ok(l.to_string()));
    prometheus_parse::Scrape::parse(lines).expect("prometheus text")
}

fn series_after_an_upload_and_a_promotion(b: Backend) {
    let Some(srv) = TestServer::start(b) else {
        return;
    };
    let size = fixture_bytes(DEMO10).len() as f64;
    let id = upload_and_promote(&srv, &fixture(DEMO10), &["staging"]);
    // A refused upload counts as refused.
    let junk = upload_bytes(&srv, "junk.rpm", b"not an rpm");
    assert!((400..500).contains(&junk.status), "{}", junk.text());
    let r = scrape(&srv, None);
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r
        .header("content-type")
        .unwrap_or_default()
        .contains("openmetrics"));
    let s = parse(&r.text());
    let put = [
        ("route", "/api/v1/packages/:id"),
        ("method", "PUT"),
        ("status", "201"),
    ];
    assert_eq!(
        value(&s, "forklift_http_requests_total", &put),
        Some(1.0),
        "{}",
        r.text()
    );
    assert_eq!(
        value(&s, "forklift_uploads_total", &[("outcome", "stored")]),
        Some(1.0)
    );
    assert_eq!(
        value(&s, "forklift_uploads_total", &[("outcome", "refused")]),
        Some(1.0)
    );
    assert_eq!(value(&s, "forklift_upload_bytes_total", &[]), Some(size));
    // This instance made staging's every revision: its creation and the promotion.
    assert_eq!(
        value(&s, "forklift_revisions_total", &[("channel", "staging")]),
        Some(2.0)
    );
    assert_eq!(
        value(
            &s,
            "forklift_channel_head_revision",
            &[("channel", "staging")]
        ),
        Some(2.0)
    );
    assert_eq!(
        value(&s, "forklift_channel_builds", &[("channel", "staging")]),
        Some(1.0)
    );
    assert_eq!(
        value(&s, "forklift_channel_builds", &[("channel", "prod")]),
        Some(0.0)
    );
    assert_eq!(value(&s, "forklift_packages", &[]), Some(1.0));
    assert!(value(&s, "forklift_db_pool_connections", &[]).is_some_and(|v| v >= 1.0));
    let published = s.samples.iter().find(|x| {
        x.metric == "forklift_publication_seconds" && x.labels.get("channel") == Some("staging")
    });
    assert!(
        published.is_some(),
        "no publication histogram: {}",
        r.text()
    );
    // Ids never become labels.
    assert!(!r.text().contains(&id), "a build id in the metrics");
}

fn closed_to_those_who_may_not_read_every_channel(b: Backend) {
    let Some(srv) = TestServer::start_with(b, |l| l.private_channels = Some(vec!["prod".into()]))
    else {
        return;
    };
    assert_eq!(scrape(&srv, None).status, 401);
    let qa_only = create_token(
        &srv,
        serde_json::json!({"name": "qa-reader", "permissions": ["read:qa"]}),
    );
    assert_eq!(scrape(&srv, Some(&qa_only)).status, 403);
    let all = create_token(
        &srv,
        serde_json::json!({"name": "prometheus", "roles": ["reader"]}),
    );
    assert_eq!(scrape(&srv, Some(&all)).status, 200);
}

both_backends!(
    series_after_an_upload_and_a_promotion,
    closed_to_those_who_may_not_read_every_channel
);
