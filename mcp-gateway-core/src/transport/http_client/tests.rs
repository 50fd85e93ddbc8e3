use std::sync::{Arc, Mutex};

use axum::extract::{OriginalUri, State};
use axum::response::IntoResponse;

use super::*;

fn spec(url: &str) -> HttpSpec {
    HttpSpec {
        url: url.into(),
        headers: Default::default(),
    }
}

fn server() -> ServerId {
    ServerId::new("upstream").expect("valid id")
}

async fn post(client: &HttpClient, url: &str) -> Result<Response<Body>, BoxError> {
    let uri = url.parse().expect("uri");
    client
        .send(Method::POST, &uri, HeaderMap::new(), Bytes::new())
        .await
}

/// A forward proxy that answers every request itself and records the URI it was asked for; a
/// request for a path `/moved` is answered with a redirect to another host.
async fn recording_proxy() -> (String, Arc<Mutex<Vec<String>>>) {
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let app = axum::Router::new()
        .fallback(
            |State(seen): State<Arc<Mutex<Vec<String>>>>, OriginalUri(uri): OriginalUri| async move {
                if let Ok(mut seen) = seen.lock() {
                    seen.push(uri.to_string());
                }
                if uri.path() == "/moved" {
                    axum::response::Redirect::temporary("http://elsewhere.invalid/stolen")
                        .into_response()
                } else {
                    "through the proxy".into_response()
                }
            },
        )
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{address}"), seen)
}

#[tokio::test]
async fn an_upstream_the_proxy_settings_name_is_reached_through_the_proxy() {
    let (proxy, seen) = recording_proxy().await;
    let proxies = Matcher::builder().http(proxy).build();
    let url = "http://upstream.invalid/mcp";
    let client = HttpClient::with_proxies(&server(), &spec(url), Duration::from_secs(5), &proxies)
        .expect("client");
    let response = post(&client, url).await.expect("the proxy answers");
    let body = read_limited(response.into_body()).await.expect("body");
    assert_eq!(&body[..], b"through the proxy");
    assert_eq!(*seen.lock().expect("lock"), [url]);
}

#[tokio::test]
async fn a_proxied_upstream_that_redirects_is_not_followed_with_its_headers() {
    let (proxy, seen) = recording_proxy().await;
    let proxies = Matcher::builder().http(proxy).build();
    let url = "http://upstream.invalid/moved";
    let mut spec = spec(url);
    spec.headers.insert("X-Api-Key".into(), "secret-key".into());
    let client = HttpClient::with_proxies(&server(), &spec, Duration::from_secs(5), &proxies)
        .expect("client");
    let response = post(&client, url).await.expect("the proxy answers");
    assert_eq!(response.status(), StatusCode::TEMPORARY_REDIRECT);
    assert_eq!(
        *seen.lock().expect("lock"),
        [url],
        "the redirect was followed"
    );
}

#[tokio::test]
async fn a_proxied_request_error_does_not_show_the_password_in_the_url() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let proxy = format!("http://{}", listener.local_addr().expect("address"));
    drop(listener);
    let proxies = Matcher::builder().http(proxy).build();
    let url = "http://user:hunter2@upstream.invalid/mcp";
    let client = HttpClient::with_proxies(&server(), &spec(url), Duration::from_secs(5), &proxies)
        .expect("client");
    let err = post(&client, url).await.expect_err("the proxy refuses");
    let text = crate::error::error_chain(&request_error(&server(), url, err));
    assert!(text.contains("http://***@upstream.invalid/mcp"), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
}

#[tokio::test]
async fn without_a_proxy_a_refused_connection_is_a_connect_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/mcp", listener.local_addr().expect("address"));
    drop(listener);
    let proxies = Matcher::builder().build();
    let client = HttpClient::with_proxies(&server(), &spec(&url), Duration::from_secs(5), &proxies)
        .expect("client");
    let err = post(&client, &url).await.expect_err("nothing listens");
    assert!(is_connect_error(err.as_ref()), "{err}");
}

/// A TLS upstream on 127.0.0.1 presenting a self-signed certificate for `localhost`.
async fn self_signed_upstream() -> u16 {
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".into()]).expect("certificate");
    let key = rustls::pki_types::PrivatePkcs8KeyDer::from(certified.signing_key.serialize_der());
    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(vec![certified.cert.der().clone()], key.into())
        .expect("server config");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("address").port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            // The client is expected to abort the handshake.
            let _ = acceptor.accept(tcp).await;
        }
    });
    port
}

#[tokio::test]
async fn an_upstream_whose_certificate_no_trusted_root_signed_is_refused_at_every_connect() {
    let url = format!("https://localhost:{}/mcp", self_signed_upstream().await);
    // Each connect builds its client, as a reconnect does; the second reuses the TLS settings.
    for attempt in 1..=2 {
        let client =
            HttpClient::new(&server(), &spec(&url), Duration::from_secs(5)).expect("client");
        let err = post(&client, &url)
            .await
            .expect_err("an untrusted certificate must not be accepted");
        let chain = crate::error::error_chain(err.as_ref());
        assert!(
            chain.contains("invalid peer certificate"),
            "attempt {attempt}: {chain}"
        );
    }
}
