//! Server ids and URLs from SRV targets, and when the next resolution comes.

use super::*;
use crate::spec::TransportSpec;

fn targets(list: &[(&str, u16)]) -> BTreeSet<(String, u16)> {
    list.iter()
        .map(|(host, port)| ((*host).to_owned(), *port))
        .collect()
}

fn ids_and_urls(list: &[(&str, u16)], path: &str) -> Vec<(String, String)> {
    specs(&targets(list), path)
        .expect("valid specs")
        .into_iter()
        .map(|spec| {
            let TransportSpec::StreamableHttp(http) = &spec.transport else {
                panic!("streamable http: {:?}", spec.transport);
            };
            (spec.id.to_string(), http.url.clone())
        })
        .collect()
}

#[test]
fn one_server_per_target_named_by_its_first_label() {
    assert_eq!(
        ids_and_urls(
            &[
                ("mcp-1.mcp.prod.svc.cluster.local", 8080),
                ("mcp-0.mcp.prod.svc.cluster.local", 8080),
            ],
            "/mcp"
        ),
        [
            (
                "mcp-0".to_owned(),
                "http://mcp-0.mcp.prod.svc.cluster.local:8080/mcp".to_owned()
            ),
            (
                "mcp-1".to_owned(),
                "http://mcp-1.mcp.prod.svc.cluster.local:8080/mcp".to_owned()
            ),
        ]
    );
}

#[test]
fn shared_first_labels_get_numbered_suffixes_in_target_order() {
    let ids: Vec<String> = ids_and_urls(
        &[
            ("node.b.internal", 80),
            ("node.a.internal", 81),
            ("node.a.internal", 80),
            ("node-2.a.internal", 80),
        ],
        "/mcp",
    )
    .into_iter()
    .map(|(id, _)| id)
    .collect();
    // Sorted by (host, port): node-2.a, node.a:80, node.a:81, node.b:80. `node-2` is taken by a
    // real host first, so the numbering skips it.
    assert_eq!(ids, ["node-2", "node", "node-3", "node-4"]);
}

#[test]
fn labels_are_made_into_valid_ids() {
    assert_eq!(id_base("Pod_A.example"), "pod_a");
    assert_eq!(id_base("xn--bcher-kva.example"), "xn--bcher-kva");
    assert_eq!(id_base(""), "srv");
    assert_eq!(id_base(&"a".repeat(80)).len(), MAX_ID_BASE);
    assert_eq!(id_base("we*ird.example"), "we-ird");
}

#[tokio::test]
async fn the_path_is_configurable_and_always_absolute() {
    let source = DnsSrvSource::with_name_servers(
        "_mcp._tcp.example.internal.",
        ["127.0.0.1:53".parse().expect("address")],
    )
    .expect("valid")
    .with_path("v1/mcp");
    assert_eq!(source.path, "/v1/mcp");
    assert_eq!(source.name(), "dns-srv:_mcp._tcp.example.internal.");
}

#[tokio::test]
async fn the_next_resolution_follows_the_ttl_within_bounds() {
    let source = DnsSrvSource::with_name_servers(
        "_mcp._tcp.example.internal.",
        ["127.0.0.1:53".parse().expect("address")],
    )
    .expect("valid")
    .with_interval(Duration::from_secs(30));
    let set_ttl = |ttl: Option<u64>| {
        source.last.lock().expect("not poisoned").ttl = ttl.map(Duration::from_secs);
    };
    set_ttl(None);
    assert_eq!(source.refresh_delay(), Duration::from_secs(30));
    set_ttl(Some(5));
    assert_eq!(source.refresh_delay(), Duration::from_secs(5));
    set_ttl(Some(0));
    assert_eq!(source.refresh_delay(), MIN_REFRESH);
    set_ttl(Some(3600));
    assert_eq!(source.refresh_delay(), Duration::from_secs(30));
}

#[test]
fn bad_names_and_empty_name_server_lists_are_rejected() {
    let empty = DnsSrvSource::with_name_servers("_mcp._tcp.example.", Vec::new())
        .expect_err("no name servers");
    assert!(
        empty.to_string().contains("name servers is empty"),
        "{empty}"
    );
    let bad = DnsSrvSource::with_name_servers("a..b", ["127.0.0.1:53".parse().expect("address")])
        .expect_err("bad name");
    assert!(bad.to_string().contains("`a..b`"), "{bad}");
}
