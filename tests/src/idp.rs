//! A local identity provider on 127.0.0.1 for the OAuth cases: it publishes a discovery
//! document and a JWKS (real RSA keys from `fixtures/`), signs RS256 ID tokens, and answers Facebook's
//! `debug_token` and `/me` for the access tokens it was told about.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

const KEYS: [&str; 2] =
    [include_str!("../fixtures/oidc-test-key-1.pem"), include_str!("../fixtures/oidc-test-key-2.pem")];
const JWKS: [&str; 2] =
    [include_str!("../fixtures/oidc-test-jwks-1.json"), include_str!("../fixtures/oidc-test-jwks-2.json")];

/// The Facebook app the provider knows.
pub const FB_APP_ID: &str = "1234567890";
/// Its secret.
pub const FB_APP_SECRET: &str = "fb-app-secret";

/// A Facebook person: (app id, user id, name, email).
type FbUser = (String, String, String, Option<String>);

#[derive(Default)]
struct IdpState {
    served: Mutex<Vec<usize>>,
    jwks_fetches: AtomicUsize,
    /// Facebook access token → (app id, user id, name, email).
    facebook: Mutex<HashMap<String, FbUser>>,
}

/// The running provider.
pub struct LocalIdp {
    addr: SocketAddr,
    state: Arc<IdpState>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for LocalIdp {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn jwks(State(s): State<Arc<IdpState>>) -> Json<Value> {
    s.jwks_fetches.fetch_add(1, Ordering::SeqCst);
    let served = s.served.lock().map(|v| v.clone()).unwrap_or_default();
    let mut keys = Vec::new();
    for i in served {
        let set: Value = serde_json::from_str(JWKS[i]).unwrap_or(Value::Null);
        keys.extend(set["keys"].as_array().cloned().unwrap_or_default());
    }
    Json(json!({ "keys": keys }))
}

async fn debug_token(
    State(s): State<Arc<IdpState>>,
    Query(q): Query<HashMap<String, String>>,
) -> (StatusCode, Json<Value>) {
    if q.get("access_token").map(String::as_str) != Some(&format!("{FB_APP_ID}|{FB_APP_SECRET}")) {
        return (StatusCode::BAD_REQUEST, Json(json!({"error": {"message": "bad app token"}})));
    }
    let known = s.facebook.lock().ok().and_then(|m| m.get(q.get("input_token")?.as_str()).cloned());
    let data = match known {
        Some((app, user, _, _)) => json!({"app_id": app, "is_valid": true, "user_id": user, "expires_at": 0}),
        None => json!({"is_valid": false}),
    };
    (StatusCode::OK, Json(json!({ "data": data })))
}

async fn me(State(s): State<Arc<IdpState>>, Query(q): Query<HashMap<String, String>>) -> (StatusCode, Json<Value>) {
    let known = s.facebook.lock().ok().and_then(|m| m.get(q.get("access_token")?.as_str()).cloned());
    match known {
        Some((_, id, name, email)) => (StatusCode::OK, Json(json!({"id": id, "name": name, "email": email}))),
        None => (StatusCode::UNAUTHORIZED, Json(json!({"error": {"message": "invalid token"}}))),
    }
}

impl LocalIdp {
    /// Starts it on a free port of 127.0.0.1, serving key 1.
    pub async fn start() -> Self {
        let state = Arc::new(IdpState { served: Mutex::new(vec![0]), ..Default::default() });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the local provider");
        let addr = listener.local_addr().expect("address");
        let base = format!("http://{addr}");
        let discovery = json!({"issuer": base, "jwks_uri": format!("{base}/jwks"),
            "authorization_endpoint": format!("{base}/authorize"), "id_token_signing_alg_values_supported": ["RS256"]});
        let app = Router::new()
            .route("/.well-known/openid-configuration", get(move || async move { Json(discovery) }))
            .route("/jwks", get(jwks))
            .route("/debug_token", get(debug_token))
            .route("/me", get(me))
            .with_state(state.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        LocalIdp { addr, state, server }
    }

    /// `http://127.0.0.1:<port>`: the issuer, and the base of its endpoints.
    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The JWKS URL.
    pub fn jwks_url(&self) -> String {
        format!("{}/jwks", self.base())
    }

    /// Publishes these keys (1 and/or 2).
    pub fn serve_keys(&self, keys: &[usize]) {
        if let Ok(mut s) = self.state.served.lock() {
            *s = keys.iter().map(|k| k - 1).collect();
        }
    }

    /// How many times the JWKS was fetched.
    pub fn jwks_fetches(&self) -> usize {
        self.state.jwks_fetches.load(Ordering::SeqCst)
    }

    /// An RS256 ID token signed with key `key` (1 or 2).
    pub fn id_token(&self, key: usize, claims: &Value) -> String {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(format!("test-oidc-{key}"));
        let k = EncodingKey::from_rsa_pem(KEYS[key - 1].as_bytes()).expect("test key");
        jsonwebtoken::encode(&header, claims, &k).expect("sign an ID token")
    }

    /// Makes `token` a Facebook access token of `app` for this person.
    pub fn facebook_user(&self, token: &str, app: &str, id: &str, name: &str, email: Option<&str>) {
        if let Ok(mut m) = self.state.facebook.lock() {
            m.insert(token.into(), (app.into(), id.into(), name.into(), email.map(str::to_string)));
        }
    }
}
