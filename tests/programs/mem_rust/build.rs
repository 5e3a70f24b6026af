// Run from the build tree without LD_LIBRARY_PATH: an rpath to the directory
// the sftrace-setup build script linked libsftrace.so from.
fn main() {
    println!("cargo:rerun-if-env-changed=DEP_SFTRACE_LIB_DIR");
    if let Ok(dir) = std::env::var("DEP_SFTRACE_LIB_DIR") {
        println!("cargo:rustc-link-arg-bins=-Wl,-rpath,{dir}");
    }
}
