//! Checks that run before any MCP handler: DNS-rebinding protection (`Host` and `Origin` must
//! name an allowed host) and bearer-token authentication (constant-time comparison).

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use crate::AppState;
use crate::streamable::error_body;

pub(crate) async fn check(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if let Some(allowed) = &state.config.allowed_hosts {
        let headers = request.headers();
        // Every name the request gives for its host is judged (the `Host` header, and the URI's
        // authority of an HTTP/2 or absolute-form request); a request that gives none is refused,
        // since the allow-list cannot vouch for it.
        let header_host = headers
            .get(header::HOST)
            .map(|h| h.to_str().unwrap_or_default());
        let uri_host = request.uri().authority().map(|a| a.as_str());
        if header_host.is_none() && uri_host.is_none() {
            return refuse(StatusCode::FORBIDDEN, "the request names no host");
        }
        if let Some(host) = [header_host, uri_host]
            .into_iter()
            .flatten()
            .find(|host| !host_allowed(host, allowed))
        {
            return refuse(
                StatusCode::FORBIDDEN,
                &format!("host `{host}` is not allowed"),
            );
        }
        if let Some(origin) = headers.get(header::ORIGIN).and_then(|h| h.to_str().ok())
            && !origin_allowed(origin, allowed)
        {
            return refuse(
                StatusCode::FORBIDDEN,
                &format!("origin `{origin}` is not allowed"),
            );
        }
    }
    if !state.config.bearer_tokens.is_empty() && !authorized(request.headers(), &state) {
        let mut response = refuse(StatusCode::UNAUTHORIZED, "a valid bearer token is required");
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer"),
        );
        return response;
    }
    next.run(request).await
}

fn refuse(status: StatusCode, message: &str) -> Response {
    (
        status,
        error_body(&serde_json::Value::Null, -32600, message),
    )
        .into_response()
}

fn authorized(headers: &HeaderMap, state: &AppState) -> bool {
    let Some(token) = headers
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(bearer_token)
    else {
        return false;
    };
    // Compare against every token so the time taken does not reveal which one nearly matched.
    state
        .config
        .bearer_tokens
        .iter()
        .fold(false, |found, expected| {
            found | bool::from(token.as_bytes().ct_eq(expected.expose().as_bytes()))
        })
}

/// The token of a `Bearer` credential. The scheme is case-insensitive (RFC 9110 §11.1) and may
/// be followed by more than one space.
fn bearer_token(authorization: &str) -> Option<&str> {
    let (scheme, token) = authorization.split_once(' ')?;
    let token = token.trim_start_matches(' ');
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// The host part of `host[:port]`, `[v6]:port` kept bracketed.
fn host_name(authority: &str) -> &str {
    if authority.starts_with('[') {
        return authority.split_inclusive(']').next().unwrap_or(authority);
    }
    authority.split(':').next().unwrap_or(authority)
}

fn host_allowed(host: &str, allowed: &[String]) -> bool {
    let name = host_name(host);
    allowed.iter().any(|a| a.eq_ignore_ascii_case(name))
}

fn origin_allowed(origin: &str, allowed: &[String]) -> bool {
    let authority = origin.split_once("://").map_or(origin, |(_, rest)| rest);
    host_allowed(authority.trim_end_matches('/'), allowed)
}

#[cfg(test)]
mod tests;
