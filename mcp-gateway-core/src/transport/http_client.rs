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
use hyper::{Method, Request, Response, StatusCode, Uri};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::proxy::matcher::{Intercept, Matcher};
use hyper_util::rt::TokioExecutor;
use rustls::ClientConfig;
use rustls_platform_verifier::ConfigVerifierExt;

use super::MAX_MESSAGE_BYTES;
use crate::error::{BoxError, Error, redact_url};
use crate::jsonrpc::truncate;
use crate::spec::{HttpSpec, ServerId};

/// Longest error body quoted in an error message.
const MAX_QUOTED_BODY: usize = 300;

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
                // The URL is left out of reqwest's error: the caller's message names it already,
                // redacted, and a second copy would be one more place for a secret to show.
                let response = client
                    .request(method, uri.to_string())
                    .headers(headers)
                    .body(body)
                    .send()
                    .await
                    .map_err(reqwest::Error::without_url)?;
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
        // An MCP endpoint has no business redirecting, and reqwest would carry the spec's own
        // headers (an `X-Api-Key`) along to wherever the redirect points: hyper's direct route
        // follows none either.
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(connect_timeout)
        .tcp_nodelay(true)
        .build()
}

/// Parses an upstream URL for hyper.
pub(crate) fn parse_uri(server: &ServerId, url: &str) -> Result<Uri, Error> {
    url.parse().map_err(|err| {
        Error::InvalidSpec(format!(
            "server `{server}`: url `{}`: {err}",
            redact_url(url)
        ))
    })
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
    let url = redact_url(url);
    let what = if is_connect_error(err.as_ref()) {
        format!("could not connect to {url}")
    } else {
        format!("request to {url} failed")
    };
    Error::transport_caused(server, what, err)
}

/// The error for an HTTP status that is not an answer, quoting the start of its body.
pub(crate) fn status_error(server: &ServerId, url: &str, status: StatusCode, body: &[u8]) -> Error {
    Error::transport(
        server,
        format!(
            "HTTP {status} from {}: {}",
            redact_url(url),
            truncate(&String::from_utf8_lossy(body), MAX_QUOTED_BODY)
        ),
    )
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
mod tests;
