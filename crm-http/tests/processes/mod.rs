//! What the process tests share: a `crm-server` child killed (SIGKILL, as `kill -9`)
//! when dropped, a free port, the CLI, and `curl` for requests.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Child, Command};

/// A child process, killed with SIGKILL (`kill -9`: no shutdown) when dropped.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The `crm-server` binary cargo built for these tests.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_crm-server")
}

/// A port nothing listens on now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// `crm-server ARGS` on `db` in `dir`, which must succeed.
pub fn cli(dir: &Path, db: &str, args: &[&str]) {
    let out = Command::new(bin()).current_dir(dir).args(args).env("CRM_DATABASE_URL", db).output().unwrap();
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// `curl` with a JSON body; the answer's status and body (JSON, or the text).
pub fn call(method: &str, url: &str, token: Option<&str>, body: Option<serde_json::Value>) -> (u16, serde_json::Value) {
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "-o", "-", "-w", "\n%{http_code}", "-X", method, url]);
    if let Some(b) = body {
        cmd.args(["-H", "content-type: application/json", "-d", &b.to_string()]);
    }
    if let Some(t) = token {
        cmd.args(["-H", &format!("authorization: Bearer {t}")]);
    }
    let out = String::from_utf8(cmd.output().expect("curl").stdout).unwrap();
    let (body, status) = out.rsplit_once('\n').unwrap();
    (status.trim().parse().unwrap(), serde_json::from_str(body).unwrap_or(serde_json::Value::String(body.into())))
}
