//! The FUSE side: `fuser`'s request handlers over the shared [`Image`].
//!
//! Every reply carries a zero time-to-live, so the kernel asks again for
//! each name and attribute (a cut changes them behind its back), and no
//! open sets `FOPEN_KEEP_CACHE`, so each open drops the kernel's cached
//! pages of the file. The filesystem does not claim POSIX or BSD locks:
//! the kernel then keeps `fcntl`/`flock` locks itself, which is what
//! processes on one machine (SQLite's WAL locking) need. Writes reach the
//! image synchronously (no writeback cache), so the image's live state is
//! the page cache.

use crate::image::{Body, Errno as Code, Image, Inode};
use fuser::{
    Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo, LockOwner,
    OpenFlags, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory, ReplyEmpty, ReplyEntry,
    ReplyOpen, ReplyStatfs, ReplyWrite, Request, TimeOrNow, WriteFlags,
};
use std::ffi::OsStr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

/// Names and attributes are never cached by the kernel (see the module doc).
const TTL: Duration = Duration::ZERO;

/// Block size reported by `stat` (SQLite reads its sector size elsewhere).
const BLKSIZE: u32 = 4096;

/// The filesystem served to the kernel.
pub struct PowerFs {
    pub image: Arc<Mutex<Image>>,
}

impl PowerFs {
    fn image(&self) -> MutexGuard<'_, Image> {
        // A panic while holding the lock is a bug in the model: carry on
        // with the state it left so that the test sees the failure, not a hang.
        self.image.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn errno(code: Code) -> Errno {
    Errno::from_i32(code)
}

fn attr(img: &Image, ino: u64, inode: &Inode) -> FileAttr {
    let size = inode.size();
    FileAttr {
        ino: INodeNo(ino),
        size,
        blocks: size.div_ceil(512),
        atime: inode.mtime,
        mtime: inode.mtime,
        ctime: inode.mtime,
        crtime: inode.mtime,
        kind: if inode.is_dir() {
            FileType::Directory
        } else {
            FileType::RegularFile
        },
        perm: (inode.mode & 0o7777) as u16,
        nlink: img.nlink(ino),
        uid: inode.uid,
        gid: inode.gid,
        rdev: 0,
        blksize: BLKSIZE,
        flags: 0,
    }
}

fn attr_of(img: &Image, ino: u64) -> Result<FileAttr, Code> {
    Ok(attr(img, ino, img.inode(ino)?))
}

impl Filesystem for PowerFs {
    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let img = self.image();
        match img
            .lookup(parent.0, name)
            .and_then(|ino| attr_of(&img, ino))
        {
            Ok(a) => reply.entry(&TTL, &a, Generation(0)),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        let img = self.image();
        match attr_of(&img, ino.0) {
            Ok(a) => reply.attr(&TTL, &a),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        _atime: Option<TimeOrNow>,
        _mtime: Option<TimeOrNow>, // times are not modelled beyond "changed now"
        _ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let mut img = self.image();
        let done = (|| {
            if let Some(size) = size {
                img.set_size(ino.0, size)?;
            }
            img.set_meta(ino.0, mode, uid, gid)?;
            attr_of(&img, ino.0)
        })();
        match done {
            Ok(a) => reply.attr(&TTL, &a),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn mknod(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        _rdev: u32,
        reply: ReplyEntry,
    ) {
        if mode & libc::S_IFMT != libc::S_IFREG {
            return reply.error(Errno::EPERM); // only regular files are modelled
        }
        let mut img = self.image();
        let owner = (req.uid(), req.gid());
        match img
            .create(parent.0, name, false, mode & !umask, owner)
            .and_then(|ino| attr_of(&img, ino))
        {
            Ok(a) => reply.entry(&TTL, &a, Generation(0)),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn mkdir(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        reply: ReplyEntry,
    ) {
        let mut img = self.image();
        let owner = (req.uid(), req.gid());
        match img
            .create(parent.0, name, true, mode & !umask, owner)
            .and_then(|ino| attr_of(&img, ino))
        {
            Ok(a) => reply.entry(&TTL, &a, Generation(0)),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        match self.image().remove(parent.0, name, false) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        match self.image().remove(parent.0, name, true) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: fuser::RenameFlags,
        reply: ReplyEmpty,
    ) {
        if !flags.is_empty() {
            return reply.error(Errno::EINVAL); // RENAME_EXCHANGE / NOREPLACE: not modelled
        }
        match self.image().rename(parent.0, name, newparent.0, newname) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn open(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        match self.image().inode(ino.0) {
            Ok(_) => reply.opened(FileHandle(0), FopenFlags::empty()),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let img = self.image();
        match img.read(ino.0, offset, size) {
            Ok(data) => reply.data(data),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn write(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        match self.image().write(ino.0, offset, data) {
            Ok(()) => reply.written(data.len() as u32),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        reply.ok(); // close(2) makes nothing durable
    }

    fn fsync(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        // fdatasync also makes the size durable (it is needed to read the data).
        match self.image().fsync(ino.0) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        match self.image().inode(ino.0).map(|i| i.is_dir()) {
            Ok(true) => reply.opened(FileHandle(0), FopenFlags::empty()),
            Ok(false) => reply.error(Errno::ENOTDIR),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let img = self.image();
        let (entries, parent) = match (img.entries(ino.0), img.inode(ino.0).map(|i| &i.body)) {
            (Ok(e), Ok(Body::Dir(d))) => (e, d.parent),
            (Err(e), _) | (_, Err(e)) => return reply.error(errno(e)),
            _ => return reply.error(Errno::ENOTDIR),
        };
        let mut all = vec![
            (ino.0, FileType::Directory, OsStr::new(".").to_owned()),
            (parent, FileType::Directory, OsStr::new("..").to_owned()),
        ];
        for (name, child) in entries {
            let kind = match img.inode(child).map(Inode::is_dir) {
                Ok(true) => FileType::Directory,
                _ => FileType::RegularFile,
            };
            all.push((child, kind, name));
        }
        for (i, (child, kind, name)) in all.into_iter().enumerate().skip(offset as usize) {
            if reply.add(INodeNo(child), i as u64 + 1, kind, name) {
                break;
            }
        }
        reply.ok();
    }

    fn fsyncdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        match self.image().fsync(ino.0) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        // 4 GiB free in 4 KiB blocks, so that nothing refuses to write.
        reply.statfs(
            1 << 20,
            1 << 20,
            1 << 20,
            1 << 20,
            1 << 20,
            BLKSIZE,
            255,
            BLKSIZE,
        );
    }

    fn access(&self, _req: &Request, ino: INodeNo, _mask: fuser::AccessFlags, reply: ReplyEmpty) {
        // Permissions are checked by the kernel (`default_permissions`).
        match self.image().inode(ino.0) {
            Ok(_) => reply.ok(),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn create(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        _flags: i32,
        reply: ReplyCreate,
    ) {
        let mut img = self.image();
        let owner = (req.uid(), req.gid());
        match img
            .create(parent.0, name, false, mode & !umask, owner)
            .and_then(|ino| attr_of(&img, ino))
        {
            Ok(a) => reply.created(&TTL, &a, Generation(0), FileHandle(0), FopenFlags::empty()),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn fallocate(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        length: u64,
        mode: i32,
        reply: ReplyEmpty,
    ) {
        // Plain allocation only (SQLite's `SQLITE_FCNTL_SIZE_HINT` path):
        // extend with zeros, never shrink.
        if mode != 0 {
            return reply.error(Errno::EOPNOTSUPP);
        }
        let mut img = self.image();
        let grow = img
            .inode(ino.0)
            .map(|i| i.size() < offset + length)
            .and_then(|g| {
                if g {
                    img.set_size(ino.0, offset + length)
                } else {
                    Ok(())
                }
            });
        match grow {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(errno(e)),
        }
    }
}
