//! The real `crm-server` binary on a free port, a fresh SQLite file and mail directory,
//! driven by the curl session of the README (extracted from it, so the README stays
//! true): admin, login, a contact, a filtered list, registration and the emailed
//! confirmation link.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn walkthrough() -> String {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    let start = readme.find("<!-- walkthrough -->").expect("the README's walkthrough marker");
    let end = readme.find("<!-- /walkthrough -->").expect("its end marker");
    let block = &readme[start..end];
    let code = block.split("```sh\n").nth(1).expect("a sh block");
    code.split("```").next().unwrap().to_string()
}

#[test]
fn the_readme_session_runs_against_the_real_server() {
    let bin = env!("CARGO_BIN_EXE_crm-server");
    let dir = std::env::temp_dir().join(format!("crm-e2e-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let base = format!("http://127.0.0.1:{port}");
    let log = std::fs::File::create(dir.join("server.log")).unwrap();
    let _server = Server(
        Command::new(bin)
            .current_dir(&dir)
            .args(["--bind", &format!("127.0.0.1:{port}")])
            .env("CRM_PUBLIC_URL", "https://crm.example.com")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start crm-server"),
    );
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(start.elapsed() < Duration::from_secs(30), "the server did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    let path = format!(
        "{}:{}",
        std::path::Path::new(bin).parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new("bash")
        .current_dir(&dir)
        .env("CRM", &base)
        .env("PATH", path)
        .args(["-euo", "pipefail", "-c", &walkthrough()])
        .output()
        .expect("run bash");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let server_log = std::fs::read_to_string(dir.join("server.log")).unwrap_or_default();
    assert!(
        out.status.success(),
        "the README session failed\nstdout:\n{stdout}\nstderr:\n{stderr}\nserver:\n{server_log}"
    );
    let lines: Vec<&str> = stdout.lines().collect();
    // The contact id, the filtered list and its export, the second import, the file
    // attached, the duplicate found and merged, the pending registration, the confirmed
    // account.
    assert_eq!(lines.len(), 9, "{stdout}");
    assert!(uuid::Uuid::parse_str(lines[0]).is_ok(), "{stdout}");
    assert_eq!(
        &lines[1..],
        [
            "Ann Lee",
            "Ann Lee",
            "completed: 0 created, 0 updated, 2 unchanged",
            "contract.pdf: application/pdf",
            "LEE, Ann: email, nameDomain",
            "Ann Lee, CTO",
            "pending",
            "active"
        ],
        "{stdout}"
    );
    assert!(stderr.contains(": 1 created, 1 updated, 0 unchanged, 0 failed"), "the CLI's import: {stderr}");
    let sheet = std::fs::read(dir.join("customers.xlsx")).unwrap();
    assert!(sheet.starts_with(b"PK") && sheet.len() > 1_000, "the CLI's workbook");
    assert!(stderr.contains("crm-server: 1 contacts written to customers.xlsx as xlsx"), "{stderr}");
    assert!(std::fs::read_dir(dir.join("mail-outbox")).unwrap().count() >= 1);
    let _ = std::fs::remove_dir_all(&dir);
}
