//! The worker binary: Trunk builds it as a module worker (`kaifuku-worker_loader.js`).
#![forbid(unsafe_code)]

#[cfg(target_arch = "wasm32")]
fn main() {
    kaifuku_web::worker::start();
}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    eprintln!("kaifuku-worker runs in a browser worker; build it with `trunk build`");
}
