//! Names of the files the page offers: `NAME-fixed.EXT`, its undo file and the JSON report.

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputNames {
    pub output: String,
    pub undo: String,
    pub report: String,
}

impl OutputNames {
    /// `disk.vhd` → `disk-fixed.vhd`, `disk-fixed.vhd.undo`, `disk-fixed.vhd.report.json`.
    /// A name without an extension (or a dot file) gets `-fixed` at the end.
    pub fn for_input(name: &str) -> OutputNames {
        // Only the last path component (browsers give a bare name, but be safe).
        let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
        let base = if base.is_empty() { "image" } else { base };
        let output = match base.rfind('.') {
            Some(i) if i > 0 && i + 1 < base.len() => {
                format!("{}-fixed{}", &base[..i], &base[i..])
            }
            _ => format!("{base}-fixed"),
        };
        OutputNames {
            undo: format!("{output}.undo"),
            report: format!("{output}.report.json"),
            output,
        }
    }
}

impl OutputNames {
    /// The names when the download is a fixed VHD: `disk.vmdk` → `disk-fixed.vhd` (its report
    /// `disk-fixed.vhd.report.json`; there is no undo file).
    pub fn for_fixed_vhd(name: &str) -> OutputNames {
        let same = OutputNames::for_input(name);
        let stem = match same.output.rfind('.') {
            Some(i)
                if same
                    .output
                    .ends_with(&format!("-fixed{}", &same.output[i..])) =>
            {
                &same.output[..i]
            }
            _ => same.output.as_str(),
        };
        let output = format!("{stem}.vhd");
        OutputNames {
            undo: format!("{output}.undo"),
            report: format!("{output}.report.json"),
            output,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fixed_vhd_is_named_vhd() {
        assert_eq!(
            OutputNames::for_fixed_vhd("disk.vmdk").output,
            "disk-fixed.vhd"
        );
        assert_eq!(
            OutputNames::for_fixed_vhd("a.b.qcow2").output,
            "a.b-fixed.vhd"
        );
        assert_eq!(
            OutputNames::for_fixed_vhd("disk.vhd").output,
            "disk-fixed.vhd"
        );
        assert_eq!(OutputNames::for_fixed_vhd("disk").output, "disk-fixed.vhd");
        assert_eq!(OutputNames::for_fixed_vhd("x.").output, "x.-fixed.vhd");
        assert_eq!(
            OutputNames::for_fixed_vhd("disk.vhdx").report,
            "disk-fixed.vhd.report.json"
        );
    }

    #[test]
    fn names() {
        let n = OutputNames::for_input("disk.vhd");
        assert_eq!(n.output, "disk-fixed.vhd");
        assert_eq!(n.undo, "disk-fixed.vhd.undo");
        assert_eq!(n.report, "disk-fixed.vhd.report.json");
        assert_eq!(OutputNames::for_input("a.b.raw").output, "a.b-fixed.raw");
        assert_eq!(OutputNames::for_input("disk").output, "disk-fixed");
        assert_eq!(OutputNames::for_input(".img").output, ".img-fixed");
        assert_eq!(OutputNames::for_input("x.").output, "x.-fixed");
        assert_eq!(
            OutputNames::for_input("C:\\vm\\w.img").output,
            "w-fixed.img"
        );
        assert_eq!(OutputNames::for_input("").output, "image-fixed");
    }
}
