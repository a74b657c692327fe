//! `src/web.rs` embeds `web/dist` with `include_dir!`, which stable Rust cannot tell to
//! watch files: rebuild this crate whenever the bundle changes.

fn main() {
    println!("cargo:rerun-if-changed=../web/dist");
}
