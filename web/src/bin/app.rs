//! The page binary: mounts the Yew app.
#![forbid(unsafe_code)]

#[cfg(target_arch = "wasm32")]
fn main() {
    kaifuku_web::ui::start();
}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    eprintln!("kaifuku-app runs in a browser; build the page with `trunk build --release`");
}
