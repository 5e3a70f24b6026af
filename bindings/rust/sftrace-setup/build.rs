//! Find libsftrace.so and link against it: the directory named by
//! SFTRACE_DYLIB_DIR, else the directory of the runtime that
//! `sftrace record --print-solib` prints. Without either, link nothing (the
//! program then needs the runtime preloaded, or undefined symbols allowed,
//! like the original crate).

use std::env;
use std::path::PathBuf;
use std::process::{Command, Stdio};

const DIR_VAR: &str = "SFTRACE_DYLIB_DIR";

fn main() {
    println!("cargo:rerun-if-env-changed={DIR_VAR}");
    println!("cargo:rerun-if-env-changed=PATH");
    println!("cargo:rerun-if-changed=build.rs");

    let dir = match env::var_os(DIR_VAR) {
        Some(d) if !d.is_empty() => Some(PathBuf::from(d)),
        _ => solib_dir_from_sftrace(),
    };
    let Some(dir) = dir else {
        println!(
            "cargo:warning=sftrace-setup: libsftrace.so not found (set {DIR_VAR} or put \
             `sftrace` on PATH); not linking it"
        );
        return;
    };
    let lib = env::var("CARGO_MANIFEST_LINKS").unwrap_or_else(|_| "sftrace".to_string());
    println!("cargo:rustc-link-search=native={}", dir.display());
    println!("cargo:rustc-link-lib=dylib={lib}");
    // Dependents' build scripts see this as DEP_SFTRACE_LIB_DIR (for an rpath).
    println!("cargo:lib_dir={}", dir.display());
}

/// The directory of the path `sftrace record --print-solib` prints.
fn solib_dir_from_sftrace() -> Option<PathBuf> {
    let out = Command::new("sftrace")
        .args(["record", "--print-solib"])
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?;
    let path = text.trim_end_matches(['\n', '\r']);
    if path.is_empty() {
        return None;
    }
    let dir = PathBuf::from(path).parent()?.to_path_buf();
    if dir.as_os_str().is_empty() {
        None
    } else {
        Some(dir)
    }
}
