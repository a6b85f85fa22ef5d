//! The filesystem's state, without FUSE: every inode holds two versions, the
//! one processes see (`live`, the page cache) and the one that would be on
//! the disk after a power cut (`durable`). `fsync`/`fdatasync` of a file
//! makes its data and size durable; `fsync` of a directory makes its
//! entries durable (creations, unlinks and renames into or out of it). A
//! cut throws the live state away and goes back to the durable one — with
//! tearing, a random subset of the un-synced sectors (and of directories'
//! un-synced entry changes, each directory as a whole) reached the disk
//! first.
//!
//! What is modelled, and what is not:
//! * file data at [`SECTOR_BYTES`] granularity: a sector is written whole or
//!   not at all (the "powersafe overwrite" SQLite assumes by default);
//! * a file's size like its data: durable at its file's fsync; torn, either
//!   the old size or the new one (bytes never written read as zeros);
//! * directory entries durable only at the directory's fsync (stricter than
//!   ext4's ordered mode, which commits them with the next journal commit);
//!   a file whose entry was lost is gone, whatever was synced of its data;
//! * mode, owner and times are not versioned: they survive any cut;
//! * no hard links, symbolic links, extended attributes or special files.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ffi::{OsStr, OsString};
use std::time::SystemTime;

/// The unit in which writes reach the disk, and tear.
pub const SECTOR_BYTES: u64 = 512;

/// The root directory's inode number (FUSE's).
pub const ROOT: u64 = 1;

/// An operation that cannot be done, as an errno value.
pub type Errno = i32;

/// What a cut should do with data that was not synced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cut {
    /// Every write since the last sync is lost.
    DropUnsynced,
    /// Each un-synced sector of a file, each file's size, and each
    /// directory's un-synced entries (as a whole) reached the disk or not,
    /// decided by a generator seeded with this value.
    Torn { seed: u64 },
}

/// What a cut threw away and what it kept, counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CutReport {
    /// Un-synced sectors lost.
    pub sectors_lost: u64,
    /// Un-synced sectors that reached the disk anyway (tearing only).
    pub sectors_kept: u64,
    /// Files whose un-synced size change was lost.
    pub sizes_lost: u64,
    /// Directories whose un-synced entries were lost.
    pub dirs_reverted: u64,
    /// Inodes gone with the cut (never reachable from a durable entry).
    pub inodes_dropped: u64,
}

impl CutReport {
    /// Whether the cut lost anything at all.
    pub fn lost_anything(&self) -> bool {
        self.sectors_lost + self.sizes_lost + self.dirs_reverted > 0
    }

    /// Adds another cut's counts to these.
    pub fn add(&mut self, other: &CutReport) {
        self.sectors_lost += other.sectors_lost;
        self.sectors_kept += other.sectors_kept;
        self.sizes_lost += other.sizes_lost;
        self.dirs_reverted += other.dirs_reverted;
        self.inodes_dropped += other.inodes_dropped;
    }
}

/// A regular file's two versions and the sectors written since its last sync.
#[derive(Clone, Debug, Default)]
pub struct FileBody {
    pub live: Vec<u8>,
    pub durable: Vec<u8>,
    dirty: BTreeSet<u64>,
}

/// A directory's two versions of its entries.
#[derive(Clone, Debug, Default)]
pub struct DirBody {
    pub live: BTreeMap<OsString, u64>,
    pub durable: BTreeMap<OsString, u64>,
    /// The directory holding it (live), for `..`.
    pub parent: u64,
}

#[derive(Clone, Debug)]
pub enum Body {
    File(FileBody),
    Dir(DirBody),
}

/// One inode: its body and the metadata that is not versioned.
#[derive(Clone, Debug)]
pub struct Inode {
    pub body: Body,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: SystemTime,
}

impl Inode {
    pub fn is_dir(&self) -> bool {
        matches!(self.body, Body::Dir(_))
    }

    /// The size processes see.
    pub fn size(&self) -> u64 {
        match &self.body {
            Body::File(f) => f.live.len() as u64,
            Body::Dir(d) => d.live.len() as u64,
        }
    }
}

/// The whole filesystem.
#[derive(Debug)]
pub struct Image {
    inodes: HashMap<u64, Inode>,
    next_ino: u64,
}

impl Default for Image {
    fn default() -> Self {
        Image::new()
    }
}

fn sectors(offset: u64, len: u64) -> std::ops::Range<u64> {
    if len == 0 {
        return 0..0;
    }
    offset / SECTOR_BYTES..(offset + len).div_ceil(SECTOR_BYTES)
}

/// Copies sector `s` of `from` into `to` (within `to`'s length; bytes past
/// `from`'s end as zeros).
fn copy_sector(from: &[u8], to: &mut [u8], s: u64) {
    let start = (s * SECTOR_BYTES) as usize;
    let end = ((s + 1) * SECTOR_BYTES) as usize;
    for i in start..end.min(to.len()) {
        to[i] = from.get(i).copied().unwrap_or(0);
    }
}

/// xorshift64*: the cut's coin, seeded, so a torn cut can be replayed.
struct Coin(u64);

impl Coin {
    fn flip(&mut self) -> bool {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 63 == 1
    }
}

impl Image {
    /// An empty filesystem: a root directory, durable.
    pub fn new() -> Image {
        let root = Inode {
            body: Body::Dir(DirBody {
                parent: ROOT,
                ..DirBody::default()
            }),
            mode: 0o755,
            uid: 0,
            gid: 0,
            mtime: SystemTime::now(),
        };
        Image {
            inodes: HashMap::from([(ROOT, root)]),
            next_ino: ROOT + 1,
        }
    }

    /// Every inode number in use.
    pub fn inode_numbers(&self) -> Vec<u64> {
        self.inodes.keys().copied().collect()
    }

    pub fn inode(&self, ino: u64) -> Result<&Inode, Errno> {
        self.inodes.get(&ino).ok_or(libc::ENOENT)
    }

    fn inode_mut(&mut self, ino: u64) -> Result<&mut Inode, Errno> {
        self.inodes.get_mut(&ino).ok_or(libc::ENOENT)
    }

    fn dir(&self, ino: u64) -> Result<&DirBody, Errno> {
        match &self.inode(ino)?.body {
            Body::Dir(d) => Ok(d),
            Body::File(_) => Err(libc::ENOTDIR),
        }
    }

    fn dir_mut(&mut self, ino: u64) -> Result<&mut DirBody, Errno> {
        match &mut self.inode_mut(ino)?.body {
            Body::Dir(d) => Ok(d),
            Body::File(_) => Err(libc::ENOTDIR),
        }
    }

    fn file_mut(&mut self, ino: u64) -> Result<&mut FileBody, Errno> {
        match &mut self.inode_mut(ino)?.body {
            Body::File(f) => Ok(f),
            Body::Dir(_) => Err(libc::EISDIR),
        }
    }

    /// Live links to `ino` (0 once unlinked; a directory counts 2 + subdirectories).
    pub fn nlink(&self, ino: u64) -> u32 {
        let Ok(inode) = self.inode(ino) else { return 0 };
        let links = self
            .inodes
            .values()
            .filter_map(|i| match &i.body {
                Body::Dir(d) => Some(d.live.values().filter(|&&c| c == ino).count()),
                Body::File(_) => None,
            })
            .sum::<usize>() as u32;
        match &inode.body {
            Body::Dir(d) => {
                let subdirs = d
                    .live
                    .values()
                    .filter(|c| self.inodes.get(c).is_some_and(Inode::is_dir))
                    .count() as u32;
                2 + subdirs
            }
            Body::File(_) => links,
        }
    }

    pub fn lookup(&self, parent: u64, name: &OsStr) -> Result<u64, Errno> {
        self.dir(parent)?
            .live
            .get(name)
            .copied()
            .ok_or(libc::ENOENT)
    }

    /// Live entries of a directory, in name order.
    pub fn entries(&self, dir: u64) -> Result<Vec<(OsString, u64)>, Errno> {
        Ok(self
            .dir(dir)?
            .live
            .iter()
            .map(|(n, &i)| (n.clone(), i))
            .collect())
    }

    /// Creates a file or directory `name` in `parent` (not yet durable).
    pub fn create(
        &mut self,
        parent: u64,
        name: &OsStr,
        dir: bool,
        mode: u32,
        owner: (u32, u32),
    ) -> Result<u64, Errno> {
        if self.dir(parent)?.live.contains_key(name) {
            return Err(libc::EEXIST);
        }
        let ino = self.next_ino;
        self.next_ino += 1;
        let body = if dir {
            Body::Dir(DirBody {
                parent,
                ..DirBody::default()
            })
        } else {
            Body::File(FileBody::default())
        };
        let inode = Inode {
            body,
            mode: mode & 0o7777,
            uid: owner.0,
            gid: owner.1,
            mtime: SystemTime::now(),
        };
        self.inodes.insert(ino, inode);
        self.dir_mut(parent)?.live.insert(name.to_owned(), ino);
        Ok(ino)
    }

    /// Removes the entry `name` (a file; or an empty directory when `dir`).
    pub fn remove(&mut self, parent: u64, name: &OsStr, dir: bool) -> Result<(), Errno> {
        let ino = self.lookup(parent, name)?;
        match (&self.inode(ino)?.body, dir) {
            (Body::Dir(d), true) if !d.live.is_empty() => return Err(libc::ENOTEMPTY),
            (Body::Dir(_), false) => return Err(libc::EISDIR),
            (Body::File(_), true) => return Err(libc::ENOTDIR),
            _ => {}
        }
        self.dir_mut(parent)?.live.remove(name);
        Ok(())
    }

    /// Moves `name` in `parent` to `new_name` in `new_parent`, replacing a
    /// file there.
    pub fn rename(
        &mut self,
        parent: u64,
        name: &OsStr,
        new_parent: u64,
        new_name: &OsStr,
    ) -> Result<(), Errno> {
        let ino = self.lookup(parent, name)?;
        if let Ok(old) = self.lookup(new_parent, new_name) {
            if old == ino {
                return Ok(());
            }
            match (&self.inode(old)?.body, self.inode(ino)?.is_dir()) {
                (Body::Dir(d), true) if !d.live.is_empty() => return Err(libc::ENOTEMPTY),
                (Body::Dir(_), false) => return Err(libc::EISDIR),
                (Body::File(_), true) => return Err(libc::ENOTDIR),
                _ => {}
            }
        }
        self.dir_mut(new_parent)?; // must be a directory before anything moves
        self.dir_mut(parent)?.live.remove(name);
        self.dir_mut(new_parent)?
            .live
            .insert(new_name.to_owned(), ino);
        if let Body::Dir(d) = &mut self.inode_mut(ino)?.body {
            d.parent = new_parent;
        }
        Ok(())
    }

    pub fn read(&self, ino: u64, offset: u64, size: u32) -> Result<&[u8], Errno> {
        match &self.inode(ino)?.body {
            Body::File(f) => {
                let start = (offset as usize).min(f.live.len());
                let end = (offset as usize + size as usize).min(f.live.len());
                Ok(&f.live[start..end])
            }
            Body::Dir(_) => Err(libc::EISDIR),
        }
    }

    pub fn write(&mut self, ino: u64, offset: u64, data: &[u8]) -> Result<(), Errno> {
        let f = self.file_mut(ino)?;
        let end = offset as usize + data.len();
        if f.live.len() < end {
            f.live.resize(end, 0);
        }
        f.live[offset as usize..end].copy_from_slice(data);
        f.dirty.extend(sectors(offset, data.len() as u64));
        self.inode_mut(ino)?.mtime = SystemTime::now();
        Ok(())
    }

    /// Sets a file's size (truncating or extending with zeros).
    pub fn set_size(&mut self, ino: u64, size: u64) -> Result<(), Errno> {
        let f = self.file_mut(ino)?;
        let old = f.live.len() as u64;
        f.live.resize(size as usize, 0);
        // The sectors between the two sizes changed (and the one the new
        // end falls in, whose tail now reads as zeros).
        f.dirty.extend(sectors(old.min(size), old.abs_diff(size)));
        self.inode_mut(ino)?.mtime = SystemTime::now();
        Ok(())
    }

    pub fn set_meta(
        &mut self,
        ino: u64,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
    ) -> Result<(), Errno> {
        let inode = self.inode_mut(ino)?;
        if let Some(m) = mode {
            inode.mode = m & 0o7777;
        }
        inode.uid = uid.unwrap_or(inode.uid);
        inode.gid = gid.unwrap_or(inode.gid);
        Ok(())
    }

    /// `fsync`/`fdatasync` of a file (its data and size) or of a directory
    /// (its entries).
    pub fn fsync(&mut self, ino: u64) -> Result<(), Errno> {
        match &mut self.inode_mut(ino)?.body {
            Body::File(f) => {
                f.durable.resize(f.live.len(), 0);
                let dirty = std::mem::take(&mut f.dirty);
                for s in dirty {
                    copy_sector(&f.live, &mut f.durable, s);
                }
                debug_assert_eq!(f.live, f.durable, "a synced file is its live image");
            }
            Body::Dir(d) => d.durable = d.live.clone(),
        }
        Ok(())
    }

    /// `sync(2)`: everything becomes durable (as after a long quiet time).
    pub fn sync_all(&mut self) {
        let inos: Vec<u64> = self.inodes.keys().copied().collect();
        for ino in inos {
            let _ = self.fsync(ino);
        }
        self.collect(ROOT);
    }

    /// Cuts the power: every inode goes back to its durable version (or,
    /// torn, to a mix), and inodes no durable entry reaches are dropped.
    pub fn cut(&mut self, how: Cut) -> CutReport {
        let mut coin = match how {
            Cut::DropUnsynced => None,
            Cut::Torn { seed } => Some(Coin(seed | 1)),
        };
        let mut flip = move || coin.as_mut().is_some_and(Coin::flip);
        let mut report = CutReport::default();
        let mut inos: Vec<u64> = self.inodes.keys().copied().collect();
        inos.sort_unstable(); // a seed replays the same cut
        for ino in inos {
            let inode = self.inodes.get_mut(&ino).expect("listed above");
            match &mut inode.body {
                Body::File(f) => cut_file(f, &mut flip, &mut report),
                Body::Dir(d) => {
                    if d.live != d.durable {
                        if flip() {
                            d.durable = d.live.clone();
                        } else {
                            report.dirs_reverted += 1;
                            d.live = d.durable.clone();
                        }
                    }
                }
            }
        }
        report.inodes_dropped = self.collect(ROOT);
        report
    }

    /// Drops inodes that no durable entry reaches from `root` (after a
    /// cut, the live entries are the durable ones); returns how many.
    fn collect(&mut self, root: u64) -> u64 {
        let mut reached = BTreeSet::from([root]);
        let mut todo = vec![root];
        while let Some(ino) = todo.pop() {
            if let Some(Body::Dir(d)) = self.inodes.get(&ino).map(|i| &i.body) {
                for &child in d.durable.values().chain(d.live.values()) {
                    if reached.insert(child) {
                        todo.push(child);
                    }
                }
            }
        }
        let before = self.inodes.len();
        self.inodes.retain(|ino, _| reached.contains(ino));
        // A directory's `..` is wherever a live entry now holds it.
        let parents: Vec<(u64, u64)> = self
            .inodes
            .iter()
            .filter_map(|(&p, i)| match &i.body {
                Body::Dir(d) => Some(d.live.values().map(move |&c| (c, p))),
                Body::File(_) => None,
            })
            .flatten()
            .collect();
        for (child, parent) in parents {
            if let Some(Body::Dir(d)) = self.inodes.get_mut(&child).map(|i| &mut i.body) {
                d.parent = parent;
            }
        }
        (before - self.inodes.len()) as u64
    }
}

/// One file at a cut: back to the durable version, or (torn) a mix.
fn cut_file(f: &mut FileBody, flip: &mut impl FnMut() -> bool, report: &mut CutReport) {
    let resized = f.live.len() != f.durable.len();
    let size = if resized && flip() {
        f.live.len()
    } else {
        if resized {
            report.sizes_lost += 1;
        }
        f.durable.len()
    };
    f.durable.resize(size, 0);
    for s in std::mem::take(&mut f.dirty) {
        if s * SECTOR_BYTES >= size as u64 {
            // Past the end that survived: gone whatever the coin says.
            report.sectors_lost += 1;
        } else if flip() {
            report.sectors_kept += 1;
            copy_sector(&f.live, &mut f.durable, s);
        } else {
            report.sectors_lost += 1;
        }
    }
    f.live = f.durable.clone();
}

#[cfg(test)]
mod tests;
