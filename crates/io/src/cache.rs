//! A block cache with read-ahead. Each call to the source is expensive (about 1 ms through
//! `FileReaderSync`), while NTFS parsing makes hundreds of small reads; so reads are served from
//! aligned blocks, and a run of consecutive misses grows the read-ahead window.

use crate::{check_range, ReadAt};
use std::cell::RefCell;
use std::collections::HashMap;
use std::io;

/// How much a [`BlockCache`] holds and how far it reads ahead: memory in the browser worker against
/// calls to the source.
#[derive(Debug, Clone, Copy)]
pub struct CacheConfig {
    /// Size of one cached block; a power of two.
    pub block_size: u64,
    /// How many blocks are kept (least recently used goes first).
    pub capacity_blocks: usize,
    /// Largest number of blocks one miss may fetch when reads are sequential.
    pub max_readahead_blocks: u64,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            block_size: 64 * 1024,
            capacity_blocks: 64,
            max_readahead_blocks: 8,
        }
    }
}

impl CacheConfig {
    /// For a disk read over the network (a blob by its URL): every read is a round trip, so
    /// fewer, larger ones than for a file — 128 KiB blocks, read-ahead up to 2 MiB, 16 MiB kept.
    /// The command line and the page use the same.
    pub const fn remote() -> CacheConfig {
        CacheConfig {
            block_size: 128 * 1024,
            capacity_blocks: 128,
            max_readahead_blocks: 16,
        }
    }
}

/// Reads of at least this many blocks bypass the cache.
const LARGE_READ_BLOCKS: u64 = 4;

struct State {
    blocks: HashMap<u64, (Vec<u8>, u64)>,
    tick: u64,
    last_miss: Option<u64>,
    readahead: u64,
}

/// A [`ReadAt`] that serves small reads from cached aligned blocks of `inner`, so the many small
/// reads of NTFS parsing cost few calls to the slow source underneath.
pub struct BlockCache<R> {
    inner: R,
    cfg: CacheConfig,
    state: RefCell<State>,
}

impl<R: ReadAt> BlockCache<R> {
    /// An empty cache over `inner`. Panics if the block size is not a power of two or the
    /// capacity is zero: both are programming errors, not properties of an image.
    pub fn new(inner: R, cfg: CacheConfig) -> Self {
        assert!(cfg.block_size.is_power_of_two() && cfg.capacity_blocks > 0);
        BlockCache {
            inner,
            cfg,
            state: RefCell::new(State {
                blocks: HashMap::new(),
                tick: 0,
                last_miss: None,
                readahead: 1,
            }),
        }
    }

    /// The source under the cache, for reads that must bypass it.
    pub fn inner(&self) -> &R {
        &self.inner
    }

    /// Loads block `index` (and maybe the blocks after it) into the cache.
    fn fill(&self, st: &mut State, index: u64) -> io::Result<()> {
        let bs = self.cfg.block_size;
        let size = self.inner.size();
        let sequential = st
            .last_miss
            .is_some_and(|m| index == m + 1 || index == m + st.readahead);
        st.readahead = if sequential {
            (st.readahead * 2).min(self.cfg.max_readahead_blocks).max(1)
        } else {
            1
        };
        let last_block = (size - 1) / bs;
        let mut count = st.readahead.min(last_block - index + 1);
        // Never fetch blocks we already hold, and never evict what this fill brings in.
        count = count.min(self.cfg.capacity_blocks as u64);
        for k in 1..count {
            if st.blocks.contains_key(&(index + k)) {
                count = k;
                break;
            }
        }
        let start = index * bs;
        let len = ((count * bs).min(size - start)) as usize;
        let mut buf = vec![0u8; len];
        self.inner.read_at(start, &mut buf)?;
        st.last_miss = Some(index + count - 1);
        while st.blocks.len() + count as usize > self.cfg.capacity_blocks {
            let oldest = st
                .blocks
                .iter()
                .min_by_key(|(_, (_, t))| *t)
                .map(|(k, _)| *k);
            match oldest {
                Some(k) => {
                    st.blocks.remove(&k);
                }
                None => break,
            }
        }
        for (k, chunk) in buf.chunks(bs as usize).enumerate() {
            st.tick += 1;
            let t = st.tick;
            st.blocks.insert(index + k as u64, (chunk.to_vec(), t));
        }
        Ok(())
    }
}

impl<R: ReadAt> ReadAt for BlockCache<R> {
    fn size(&self) -> u64 {
        self.inner.size()
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        check_range(offset, buf.len(), self.size())?;
        let bs = self.cfg.block_size;
        // A large read (a scan of `$MFT`) is one call to the source: splitting it into blocks
        // would only cost calls and evict the small structures the cache is for.
        if buf.len() as u64 >= LARGE_READ_BLOCKS * bs {
            return self.inner.read_at(offset, buf);
        }
        let mut st = self.state.borrow_mut();
        let mut done = 0usize;
        while done < buf.len() {
            let pos = offset + done as u64;
            let index = pos / bs;
            if !st.blocks.contains_key(&index) {
                self.fill(&mut st, index)?;
            }
            st.tick += 1;
            let tick = st.tick;
            let (block, t) = st.blocks.get_mut(&index).expect("block was just filled");
            *t = tick;
            let within = (pos - index * bs) as usize;
            let n = (block.len() - within).min(buf.len() - done);
            buf[done..done + n].copy_from_slice(&block[within..within + n]);
            done += n;
        }
        Ok(())
    }

    fn backing(&self) -> Option<crate::Backing> {
        self.inner.backing()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Counted;

    #[test]
    fn cache_serves_repeated_and_sequential_reads_with_few_calls() {
        let data: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
        let counted = Counted::new(&data);
        let cache = BlockCache::new(
            &counted,
            CacheConfig {
                block_size: 4096,
                capacity_blocks: 16,
                max_readahead_blocks: 8,
            },
        );
        let mut b = [0u8; 100];
        for _ in 0..10 {
            cache.read_at(5000, &mut b).unwrap();
        }
        assert_eq!(&b[..], &data[5000..5100]);
        assert_eq!(counted.stats().calls, 1);
        // A sequential scan of 64 KiB should cost far fewer calls than 16.
        let mut big = vec![0u8; 512];
        for i in 0..128u64 {
            cache.read_at(100_000 + i * 512, &mut big).unwrap();
            assert_eq!(
                &big[..],
                &data[(100_000 + i as usize * 512)..(100_000 + i as usize * 512 + 512)]
            );
        }
        assert!(counted.stats().calls < 8, "{:?}", counted.stats());
        // Read spanning the end of the data.
        let mut tail = [0u8; 10];
        cache.read_at(999_990, &mut tail).unwrap();
        assert_eq!(&tail[..], &data[999_990..]);
        assert!(cache.read_at(999_995, &mut tail).is_err());
    }

    #[test]
    fn large_reads_are_one_call_and_keep_the_cache() {
        let data: Vec<u8> = (0..400_000u32).map(|i| (i % 253) as u8).collect();
        let counted = Counted::new(&data);
        let cache = BlockCache::new(
            &counted,
            CacheConfig {
                block_size: 4096,
                capacity_blocks: 4,
                max_readahead_blocks: 2,
            },
        );
        let mut small = [0u8; 16];
        cache.read_at(10, &mut small).unwrap();
        let mut big = vec![0u8; 200_000];
        cache.read_at(100_000, &mut big).unwrap();
        assert_eq!(&big[..], &data[100_000..300_000]);
        assert_eq!(counted.stats().calls, 2);
        // The small block is still cached.
        cache.read_at(20, &mut small).unwrap();
        assert_eq!(counted.stats().calls, 2);
        assert_eq!(&small[..], &data[20..36]);
    }

    #[test]
    fn eviction_keeps_results_correct() {
        let data: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 256) as u8).collect();
        let cache = BlockCache::new(
            &data,
            CacheConfig {
                block_size: 1024,
                capacity_blocks: 3,
                max_readahead_blocks: 8,
            },
        );
        let mut b = [0u8; 3000];
        for off in [0u64, 150_000, 7, 190_000, 3000, 50_000, 2] {
            cache.read_at(off, &mut b).unwrap();
            assert_eq!(&b[..], &data[off as usize..off as usize + 3000]);
        }
    }
}
