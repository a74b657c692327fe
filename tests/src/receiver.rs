//! A local HTTP receiver on 127.0.0.1 for webhooks and chat posts: it records every
//! request and answers with the statuses it is told, 200 once they run out.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::IntoResponse;

/// One request received.
#[derive(Debug, Clone)]
pub struct Received {
    /// The path and query.
    pub path: String,
    /// Its headers (lower-case names).
    pub headers: Vec<(String, String)>,
    /// Its body.
    pub body: Vec<u8>,
    /// The status the receiver answered.
    pub status: u16,
    /// When it arrived.
    pub at: std::time::Instant,
}

impl Received {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
}

#[derive(Default)]
struct State {
    received: Vec<Received>,
    answers: VecDeque<(u16, Option<u64>, Option<String>)>,
}

/// The receiver; it stops when dropped.
pub struct Receiver {
    /// Where it listens.
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Receiver {
    /// Starts one on a free port of 127.0.0.1.
    pub async fn start() -> Self {
        let state = Arc::new(Mutex::new(State::default()));
        let s = state.clone();
        let app = axum::Router::new().fallback(move |uri: Uri, headers: HeaderMap, body: Bytes| {
            let s = s.clone();
            async move {
                let mut st = s.lock().expect("receiver state");
                let (status, retry_after, body_out) = st.answers.pop_front().unwrap_or((200, None, None));
                st.received.push(Received {
                    path: uri.to_string(),
                    headers: headers
                        .iter()
                        .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or_default().to_string()))
                        .collect(),
                    body: body.to_vec(),
                    status,
                    at: std::time::Instant::now(),
                });
                let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
                match (retry_after, body_out) {
                    (Some(r), _) => (status, [("retry-after", r.to_string())], "busy").into_response(),
                    (None, Some(b)) => (status, [("content-type", "application/json")], b).into_response(),
                    (None, None) => (status, "ok").into_response(),
                }
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the receiver");
        let addr = listener.local_addr().expect("receiver address");
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, state, task }
    }

    /// A URL of it.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The next answers, in order (status, `Retry-After` seconds).
    pub fn answer(&self, answers: &[(u16, Option<u64>)]) {
        self.state.lock().expect("receiver state").answers.extend(answers.iter().map(|(s, r)| (*s, *r, None)));
    }

    /// The next answers, in order: a status with a JSON body.
    pub fn reply(&self, answers: &[(u16, &str)]) {
        let mut st = self.state.lock().expect("receiver state");
        st.answers.extend(answers.iter().map(|(s, b)| (*s, None, Some(b.to_string()))));
    }

    /// How many requests it got so far.
    pub fn count(&self) -> usize {
        self.state.lock().expect("receiver state").received.len()
    }

    /// A function counting the requests so far, for other tasks.
    pub fn count_handle(&self) -> impl Fn() -> usize + Send + 'static {
        let state = self.state.clone();
        move || state.lock().map(|s| s.received.len()).unwrap_or(0)
    }

    /// What it got so far.
    pub fn received(&self) -> Vec<Received> {
        self.state.lock().expect("receiver state").received.clone()
    }
}
