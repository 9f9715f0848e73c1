//! Every `$FILE_NAME` of the live files, kept compactly (a hash instead of the name) so that the
//! index entries of every directory can be matched against them, and names that no entry (or two
//! entries) match can be found afterwards.

use crate::index::FileNameKey;
use crate::layout::Namespace;
use crate::record::FileRef;

/// One `$FILE_NAME` attribute of a live file.
#[derive(Debug, Clone)]
pub(crate) struct NameRec {
    /// The parent reference stored in the attribute.
    pub parent: FileRef,
    /// The base record holding the name (extension records count for their base).
    pub child: FileRef,
    pub namespace: Namespace,
    pub hash: u64,
    /// How many index entries matched this name.
    pub hits: u8,
}

/// FNV-1a over the UTF-16 units of a name: names are compared by hash (plus parent, file and
/// namespace), which keeps a volume's worth of names small in memory.
pub(crate) fn name_hash(name: &[u16]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for u in name {
        for b in u.to_le_bytes() {
            h ^= b as u64;
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h ^ (name.len() as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

#[derive(Debug, Default)]
pub(crate) struct NameTable {
    pub names: Vec<NameRec>,
    sorted: bool,
}

impl NameTable {
    pub fn add(&mut self, child: FileRef, key: &FileNameKey) {
        self.names.push(NameRec {
            parent: key.parent,
            child,
            namespace: key.namespace,
            hash: name_hash(&key.name),
            hits: 0,
        });
        self.sorted = false;
    }

    fn sort_key(n: &NameRec) -> (u64, u64, u8, u64) {
        (n.parent.record, n.child.record, n.namespace.byte(), n.hash)
    }

    pub fn sort(&mut self) {
        self.names.sort_by_key(Self::sort_key);
        self.sorted = true;
    }

    /// The name of file `child` in directory `parent` with this namespace and name.
    pub fn find_mut(
        &mut self,
        parent: u64,
        child: u64,
        namespace: Namespace,
        name: &[u16],
    ) -> Option<&mut NameRec> {
        debug_assert!(self.sorted);
        let k = (parent, child, namespace.byte(), name_hash(name));
        let i = self.names.binary_search_by_key(&k, Self::sort_key).ok()?;
        Some(&mut self.names[i])
    }
}
