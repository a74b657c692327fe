//! Files only the server's own user may read: secrets, the SQLite database, mailed
//! messages with live links. Created with mode 0600 on Unix, whatever the umask.

use std::io::Write;
use std::path::Path;

fn private_options() -> std::fs::OpenOptions {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    opts
}

/// Writes a new file (an error when it exists), readable by its owner only.
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut f = private_options().create_new(true).open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// Makes an empty file readable by its owner only, unless it exists (then it is left as
/// it is); the directory is made when missing.
pub fn touch_private(path: &Path) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    match private_options().create_new(true).open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn private_files_are_0600_and_never_overwritten() {
        let dir = std::env::temp_dir().join(format!("crm-files-{}", uuid::Uuid::now_v7().simple()));
        let f = dir.join("sub/secret");
        touch_private(&f).unwrap_or_else(|e| panic!("{e}"));
        let mode = |p: &Path| std::fs::metadata(p).map(|m| m.permissions().mode() & 0o777).unwrap_or(0);
        assert_eq!(mode(&f), 0o600);
        std::fs::write(&f, b"kept").unwrap_or_else(|e| panic!("{e}"));
        touch_private(&f).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(std::fs::read(&f).unwrap_or_default(), b"kept");
        let g = dir.join("g");
        write_private(&g, b"x").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(mode(&g), 0o600);
        assert!(write_private(&g, b"y").is_err(), "an existing file is not replaced");
        let _ = std::fs::remove_dir_all(dir);
    }
}
