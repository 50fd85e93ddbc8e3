//! The HTTP client under the two HTTP transports: hyper's pooled client, used directly.
//!
//! reqwest cost about a third of the gateway's instructions per forwarded call (it parses the URL
//! again on every request and wraps each one in redirect and retry layers an MCP endpoint never
//! needs), so upstreams are reached through `hyper_util`'s client with rustls and the platform's
//! certificate verifier. reqwest remains for the one thing it adds that a gateway must keep: an
//! upstream that the `HTTP_PROXY`/`HTTPS_PROXY`/`NO_PROXY` environment routes through a proxy is
//! reached through reqwest, set up with exactly the proxy (and credentials) that decided it.

use std::sync::OnceLock;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use hyper::{Method, Request, Response, Uri};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::proxy::matcher::{Intercept, Matcher};
use hyper_util::rt::TokioExecutor;
use rustls::ClientConfig;
use rustls_platform_verifier::ConfigVerifierExt;

use super::MAX_MESSAGE_BYTES;
use crate::error::{BoxError, Error};
use crate::spec::{HttpSpec, ServerId};

/// A response body, whichever client produced it; read errors become I/O errors.
pub(crate) type Body = UnsyncBoxBody<Bytes, std::io::Error>;

/// An HTTP client for one upstream, with the spec's headers added to every request.
#[derive(Clone)]
pub(crate) struct HttpClient {
    route: Route,
    /// The spec's headers (credentials among them), marked sensitive.
    headers: HeaderMap,
}

#[derive(Clone)]
enum Route {
    Direct(Client<HttpsConnector<HttpConnector>, Full<Bytes>>),
    Proxied(reqwest::Client),
}

impl HttpClient {
    /// Builds the client for `spec.url`: direct unless the proxy environment intercepts it.
    pub(crate) fn new(
        server: &ServerId,
        spec: &HttpSpec,
        connect_timeout: Duration,
    ) -> Result<Self, Error> {
        Self::with_proxies(server, spec, connect_timeout, &Matcher::from_env())
    }

    /// Builds the client for `spec.url`, through the proxy `proxies` names for it, if any.
    fn with_proxies(
        server: &ServerId,
        spec: &HttpSpec,
        connect_timeout: Duration,
        proxies: &Matcher,
    ) -> Result<Self, Error> {
        let headers = spec_headers(server, spec)?;
        let uri = parse_uri(server, &spec.url)?;
        let route = if let Some(proxy) = proxies.intercept(&uri) {
            Route::Proxied(proxied_client(&proxy, connect_timeout).map_err(|err| {
                Error::transport_caused(server, "could not build the HTTP client", err)
            })?)
        } else {
            let tls = HttpsConnectorBuilder::new()
                .with_tls_config(shared_tls_config().map_err(|err| {
                    Error::transport_caused(server, "could not set up TLS verification", err)
                })?)
                .https_or_http()
                .enable_http1();
            let mut tcp = HttpConnector::new();
            tcp.enforce_http(false);
            tcp.set_nodelay(true);
            tcp.set_connect_timeout(Some(connect_timeout));
            Route::Direct(Client::builder(TokioExecutor::new()).build(tls.wrap_connector(tcp)))
        };
        Ok(Self { route, headers })
    }

    /// Sends one request and returns the response once its headers have arrived.
    pub(crate) async fn send(
        &self,
        method: Method,
        uri: &Uri,
        mut headers: HeaderMap,
        body: Bytes,
    ) -> Result<Response<Body>, BoxError> {
        for (name, value) in &self.headers {
            headers.insert(name.clone(), value.clone());
        }
        match &self.route {
            Route::Direct(client) => {
                let mut request = Request::new(Full::new(body));
                *request.method_mut() = method;
                *request.uri_mut() = uri.clone();
                *request.headers_mut() = headers;
                let response = client.request(request).await?;
                Ok(response.map(|body| body.map_err(std::io::Error::other).boxed_unsync()))
            }
            Route::Proxied(client) => {
                let response = client
                    .request(method, uri.to_string())
                    .headers(headers)
                    .body(body)
                    .send()
                    .await?;
                let response = Response::from(response);
                Ok(response.map(|body| body.map_err(std::io::Error::other).boxed_unsync()))
            }
        }
    }
}

/// The TLS settings of every direct upstream connection, built once per process.
///
/// Building them reads the platform's certificate store (on Linux, each file under
/// `/etc/ssl/certs`): ~2.5 ms, on the runtime's thread. Built per connect, that was paid by every
/// HTTP upstream at start-up, one after the other, and again at each reconnect while calls in
/// flight waited. A failure is not kept, so a later connect tries again.
fn shared_tls_config() -> Result<ClientConfig, rustls::Error> {
    static SHARED: OnceLock<ClientConfig> = OnceLock::new();
    if let Some(config) = SHARED.get() {
        return Ok(config.clone());
    }
    let config = ClientConfig::with_platform_verifier()?;
    Ok(SHARED.get_or_init(|| config).clone())
}

/// A reqwest client that goes through `proxy`, with the proxy's credentials if it has any.
fn proxied_client(
    proxy: &Intercept,
    connect_timeout: Duration,
) -> Result<reqwest::Client, reqwest::Error> {
    let mut via = reqwest::Proxy::all(proxy.uri().to_string())?;
    if let Some(auth) = proxy.basic_auth() {
        via = via.custom_http_auth(auth.clone());
    } else if let Some((user, password)) = proxy.raw_auth() {
        via = via.basic_auth(user, password);
    }
    reqwest::Client::builder()
        .proxy(via)
        .connect_timeout(connect_timeout)
        .tcp_nodelay(true)
        .build()
}

/// Parses an upstream URL for hyper.
pub(crate) fn parse_uri(server: &ServerId, url: &str) -> Result<Uri, Error> {
    url.parse()
        .map_err(|err| Error::InvalidSpec(format!("server `{server}`: url `{url}`: {err}")))
}

fn spec_headers(server: &ServerId, spec: &HttpSpec) -> Result<HeaderMap, Error> {
    let mut headers = HeaderMap::new();
    for (name, value) in &spec.headers {
        let name = HeaderName::from_bytes(name.as_bytes()).map_err(|err| {
            Error::InvalidSpec(format!("server `{server}`: header name `{name}`: {err}"))
        })?;
        let mut value = HeaderValue::from_str(value.expose()).map_err(|_| {
            Error::InvalidSpec(format!(
                "server `{server}`: header `{name}` has a value that is not valid in HTTP"
            ))
        })?;
        value.set_sensitive(true);
        headers.insert(name, value);
    }
    Ok(headers)
}

/// Reads a whole body, refusing one larger than [`MAX_MESSAGE_BYTES`].
pub(crate) async fn read_limited(body: Body) -> Result<Bytes, String> {
    Limited::new(body, MAX_MESSAGE_BYTES)
        .collect()
        .await
        .map(|collected| collected.to_bytes())
        .map_err(|err| err.to_string())
}

/// A clear message for a failed HTTP request.
pub(crate) fn request_error(server: &ServerId, url: &str, err: BoxError) -> Error {
    let what = if is_connect_error(err.as_ref()) {
        format!("could not connect to {url}")
    } else {
        format!("request to {url} failed")
    };
    Error::transport_caused(server, what, err)
}

/// Whether a request failed before reaching the server (nothing listens, DNS, TLS).
pub(crate) fn is_connect_error(err: &(dyn std::error::Error + Send + Sync + 'static)) -> bool {
    if let Some(err) = err.downcast_ref::<hyper_util::client::legacy::Error>() {
        return err.is_connect();
    }
    err.downcast_ref::<reqwest::Error>()
        .is_some_and(reqwest::Error::is_connect)
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use axum::extract::{OriginalUri, State};

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

    /// A forward proxy that answers every request itself and records the URI it was asked for.
    async fn recording_proxy() -> (String, Arc<Mutex<Vec<String>>>) {
        let seen: Arc<Mutex<Vec<String>>> = Arc::default();
        let app = axum::Router::new()
            .fallback(
                |State(seen): State<Arc<Mutex<Vec<String>>>>, OriginalUri(uri): OriginalUri| async move {
                    if let Ok(mut seen) = seen.lock() {
                        seen.push(uri.to_string());
                    }
                    "through the proxy"
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
        let client =
            HttpClient::with_proxies(&server(), &spec(url), Duration::from_secs(5), &proxies)
                .expect("client");
        let response = post(&client, url).await.expect("the proxy answers");
        let body = read_limited(response.into_body()).await.expect("body");
        assert_eq!(&body[..], b"through the proxy");
        assert_eq!(*seen.lock().expect("lock"), [url]);
    }

    #[tokio::test]
    async fn without_a_proxy_a_refused_connection_is_a_connect_error() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}/mcp", listener.local_addr().expect("address"));
        drop(listener);
        let proxies = Matcher::builder().build();
        let client =
            HttpClient::with_proxies(&server(), &spec(&url), Duration::from_secs(5), &proxies)
                .expect("client");
        let err = post(&client, &url).await.expect_err("nothing listens");
        assert!(is_connect_error(err.as_ref()), "{err}");
    }

    /// A TLS upstream on 127.0.0.1 presenting a self-signed certificate for `localhost`.
    async fn self_signed_upstream() -> u16 {
        let certified =
            rcgen::generate_simple_self_signed(vec!["localhost".into()]).expect("certificate");
        let key =
            rustls::pki_types::PrivatePkcs8KeyDer::from(certified.signing_key.serialize_der());
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
}
