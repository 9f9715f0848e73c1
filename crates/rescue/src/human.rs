//! Numbers as people read them, shared by the command line and the web page.

/// Bytes in binary units: "512 B", "1.6 MiB", "100.0 GiB".
pub fn size(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn sizes() {
        assert_eq!(super::size(512), "512 B");
        assert_eq!(super::size(1_677_721), "1.6 MiB");
        assert_eq!(super::size(100 << 30), "100.0 GiB");
    }
}
