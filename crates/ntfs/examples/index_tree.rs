//! Prints the B-tree of a directory index: `index_tree VOLUME_FILE PATH` (a bare volume file).
use kaifuku_io::ReadAt;
use kaifuku_ntfs::index::NodeId;
use kaifuku_ntfs::Volume;
use std::os::unix::fs::FileExt;

struct F(std::fs::File, u64);
impl ReadAt for F {
    fn size(&self) -> u64 {
        self.1
    }
    fn read_at(&self, o: u64, b: &mut [u8]) -> std::io::Result<()> {
        self.0.read_exact_at(b, o)
    }
}

fn dump(vol: &Volume<&F>, d: &kaifuku_ntfs::Directory, id: NodeId, depth: usize) {
    let n = d.node(vol, id).unwrap();
    let names: Vec<String> = n
        .entries
        .iter()
        .map(|e| match &e.key {
            Some(k) => format!(
                "{}[ns{}]{}",
                k.name_string(),
                k.namespace.byte(),
                e.subnode.map(|v| format!("->{v}")).unwrap_or_default()
            ),
            None => format!(
                "END{}",
                e.subnode.map(|v| format!("->{v}")).unwrap_or_default()
            ),
        })
        .collect();
    println!(
        "{}{:?} ({} entries): {}",
        "  ".repeat(depth),
        id,
        names.len(),
        names.join(", ")
    );
    for e in &n.entries {
        if let Some(v) = e.subnode {
            dump(vol, d, NodeId::Block(v), depth + 1);
        }
    }
}

fn main() {
    let a: Vec<String> = std::env::args().collect();
    let f = std::fs::File::open(&a[1]).unwrap();
    let len = f.metadata().unwrap().len();
    let src = F(f, len);
    let vol = Volume::open(&src).unwrap();
    let (_, rec) = vol.lookup_path(&a[2]).unwrap().expect("path exists");
    let d = vol.directory(&rec).unwrap();
    dump(&vol, &d, NodeId::Root, 0);
}
