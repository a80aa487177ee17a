//! Console sessions over HTTP: `/console/api/session` logs in (POST), tells who is logged in
//! (GET) and logs out (DELETE). The session travels in an HttpOnly, SameSite=Strict cookie; every
//! state change made with it must also carry the session's CSRF token in `X-CSRF-Token`.

use axum::extract::{Path, State};
use axum::http::header::{HeaderMap, HeaderValue, SET_COOKIE};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::Router;
use serde::Deserialize;
use serde_json::json;

use super::{AccountError, SignedIn, SESSION_SECS};
use crate::http::auth::ApiCaller;
use crate::http::error::ApiError;
use crate::http::json::{created_response, ok, JsonBody};
use crate::http::AppState;

pub const SESSION_COOKIE: &str = "openvod_session";
pub const CSRF_HEADER: &str = "x-csrf-token";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/console/api/session",
            post(login).get(current).delete(logout),
        )
        .route("/openvod/v1/users", get(list_users).post(create_user))
        .route(
            "/openvod/v1/users/{username}/password",
            post(reset_password),
        )
        .route(
            "/openvod/v1/users/{username}/sessions",
            delete(end_sessions),
        )
        .route("/openvod/v1/users/{username}/invites", post(create_invite))
        .route("/openvod/v1/invites/{token}", get(get_invite))
        .route("/openvod/v1/invites/{token}/accept", post(accept_invite))
}

// People management, for admins (and programs with a token): what `openvod users` does.

fn user_json(user: &super::model::User) -> serde_json::Value {
    json!({
        "username": user.username,
        "role": user.role,
        "can_log_in": user.password_hash.is_some(),
        "locked_until": user.locked_until,
        "created_at": user.created_at.to_string(),
    })
}

async fn list_users(
    State(state): State<AppState>,
    caller: ApiCaller,
) -> Result<Response, ApiError> {
    caller.require_admin()?;
    let users = state.accounts.list_users().await?;
    Ok(ok(users.iter().map(user_json).collect::<Vec<_>>()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateUser {
    username: String,
    role: super::model::Role,
    password: Option<String>,
}

/// The answer holds the password (the one given, or the generated one) and is the only place
/// it is ever shown.
async fn create_user(
    State(state): State<AppState>,
    caller: ApiCaller,
    JsonBody(body): JsonBody<CreateUser>,
) -> Result<Response, ApiError> {
    caller.require_admin()?;
    let password = state
        .accounts
        .create_user(body.username.trim(), body.role, body.password.as_deref())
        .await?;
    Ok(created_response(
        json!({"username": body.username.trim(), "role": body.role, "password": password}),
    ))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ResetPassword {
    password: Option<String>,
}

async fn reset_password(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(username): Path<String>,
    JsonBody(body): JsonBody<ResetPassword>,
) -> Result<Response, ApiError> {
    caller.require_admin()?;
    let password = state
        .accounts
        .set_password(&username, body.password.as_deref())
        .await?;
    Ok(ok(json!({"username": username, "password": password})))
}

async fn end_sessions(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(username): Path<String>,
) -> Result<Response, ApiError> {
    caller.require_admin()?;
    let ended = state.accounts.revoke_sessions(&username).await?;
    Ok(ok(json!({"username": username, "ended_sessions": ended})))
}

/// An invite link for the user (who then chooses a password in the console). The answer is the
/// only place the link is ever shown.
async fn create_invite(
    State(state): State<AppState>,
    caller: ApiCaller,
    Path(username): Path<String>,
) -> Result<Response, ApiError> {
    caller.require_admin()?;
    let by = match &caller {
        ApiCaller::Person(who) => Some(who.username.as_str()),
        ApiCaller::Token { .. } => None,
    };
    let (token, expires_at) = state.accounts.create_invite(&username, by).await?;
    let path = format!("/console/#/invite/{token}");
    let url = state
        .public_url
        .join(&path)
        .map(|u| u.to_string())
        .unwrap_or_else(|_| path.clone());
    Ok(created_response(json!({
        "username": username,
        "url": url,
        "path": path,
        "expires_at": expires_at.to_string(),
    })))
}

/// Whose an invite is, for the page that asks for the password. The token is the credential.
async fn get_invite(
    State(state): State<AppState>,
    Path(token): Path<String>,
) -> Result<Response, ApiError> {
    let invite = state.accounts.invite(&token).await?;
    Ok(ok(json!({
        "username": invite.username,
        "expires_at": invite.expires_at.to_string(),
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AcceptInvite {
    password: String,
}

/// Sets the chosen password and logs in, as a login does.
async fn accept_invite(
    State(state): State<AppState>,
    Path(token): Path<String>,
    JsonBody(body): JsonBody<AcceptInvite>,
) -> Result<Response, ApiError> {
    let (cookie, who) = state.accounts.accept_invite(&token, &body.password).await?;
    Ok(with_session_cookie(&state, ok(describe(&who)), &cookie))
}

/// The value of cookie `name` in a `Cookie` header (`a=1; b=2`).
pub fn cookie_value<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').find_map(|pair| {
        let (key, value) = pair.trim().split_once('=')?;
        (key == name && !value.is_empty()).then_some(value)
    })
}

/// The console session of a request, if it carries a session cookie.
pub async fn signed_in(
    state: &AppState,
    headers: &HeaderMap,
) -> Option<Result<SignedIn, AccountError>> {
    let cookie = headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| cookie_value(v, SESSION_COOKIE))?;
    Some(state.accounts.session(cookie).await)
}

fn session_cookie(state: &AppState, value: &str, max_age: i64) -> HeaderValue {
    let secure = if state.public_url.scheme() == "https" {
        "; Secure"
    } else {
        ""
    };
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"
    ))
    .expect("cookie values are URL-safe base64")
}

fn describe(who: &SignedIn) -> serde_json::Value {
    json!({
        "username": who.username,
        "role": who.role,
        "csrf_token": who.csrf_token,
        "expires_at": who.expires_at,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Login {
    username: String,
    password: String,
}

async fn login(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<Login>,
) -> Result<Response, ApiError> {
    let (cookie, who) = state.accounts.login(&body.username, &body.password).await?;
    Ok(with_session_cookie(&state, ok(describe(&who)), &cookie))
}

fn with_session_cookie(state: &AppState, mut response: Response, cookie: &str) -> Response {
    response
        .headers_mut()
        .insert(SET_COOKIE, session_cookie(state, cookie, SESSION_SECS));
    response
}

async fn current(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let who = signed_in(&state, &headers)
        .await
        .unwrap_or(Err(AccountError::NoSession))?;
    Ok(ok(describe(&who)))
}

async fn logout(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let who = signed_in(&state, &headers)
        .await
        .unwrap_or(Err(AccountError::NoSession))?;
    who.check_csrf(headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()))?;
    state.accounts.logout(&who).await?;
    let mut response = StatusCode::NO_CONTENT.into_response();
    response
        .headers_mut()
        .insert(SET_COOKIE, session_cookie(&state, "", 0));
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_session_cookie() {
        assert_eq!(
            cookie_value("openvod_session=abc", SESSION_COOKIE),
            Some("abc")
        );
        assert_eq!(
            cookie_value("a=1; openvod_session=x-y_z; b=2", SESSION_COOKIE),
            Some("x-y_z")
        );
        assert_eq!(cookie_value("openvod_session=", SESSION_COOKIE), None);
        assert_eq!(cookie_value("xopenvod_session=1", SESSION_COOKIE), None);
        assert_eq!(cookie_value("", SESSION_COOKIE), None);
    }

    #[test]
    fn arbitrary_cookie_headers_do_not_panic() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        let alphabet = b"openvod_sesion=;; ab=\t\x7f\xc3\xa9";
        for _ in 0..50_000 {
            let len = rng.gen_range(0..40);
            let bytes: Vec<u8> = (0..len)
                .map(|_| alphabet[rng.gen_range(0..alphabet.len())])
                .collect();
            let s = String::from_utf8_lossy(&bytes);
            if let Some(v) = cookie_value(&s, SESSION_COOKIE) {
                assert!(s.contains(v) && !v.is_empty());
            }
        }
    }
}
