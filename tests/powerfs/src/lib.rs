//! A filesystem that loses power: a FUSE filesystem (served by the `fuser`
//! crate, in memory) that keeps every write since the last `fsync` of its
//! file — and every directory change since the last `fsync` of its
//! directory — apart from what is durable, and on [`Mount::cut`] throws the
//! un-synced part away, optionally tearing it (a random subset of sectors
//! reached the disk). This is LazyFS's approach (a FUSE layer with its own
//! page cache that drops un-synced data on demand), written here because
//! LazyFS itself cannot be installed on the project's machines; the rules it
//! models are in [`image`].
//!
//! Test support only: the power-loss test (`tests/tests/power_loss.rs`) runs
//! the relay and nodes with their directories on a mount, kills them, cuts,
//! and restarts them on what survived.

pub mod image;

mod fuse;

pub use image::{Cut, CutReport, SECTOR_BYTES};

use fuser::{BackgroundSession, Config, INodeNo, MountOption, Notifier};
use image::Image;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

/// A mounted power-loss filesystem; unmounted when dropped.
pub struct Mount {
    image: Arc<Mutex<Image>>,
    notifier: Notifier,
    session: Option<BackgroundSession>,
    path: PathBuf,
}

impl Mount {
    /// Mounts an empty filesystem on `mountpoint` (an existing empty
    /// directory). Needs `/dev/fuse` and, unless run as root, the setuid
    /// `fusermount3` (Debian's `fuse3`). Fails — never silently falls back
    /// to an ordinary directory — when the kernel refuses.
    pub fn new(mountpoint: &Path) -> io::Result<Mount> {
        let image = Arc::new(Mutex::new(Image::new()));
        let mut config = Config::default();
        config.mount_options = vec![
            MountOption::FSName("accordo-powerfs".into()),
            MountOption::Subtype("powerfs".into()),
            MountOption::DefaultPermissions,
        ];
        let fs = fuse::PowerFs {
            image: image.clone(),
        };
        let session = fuser::spawn_mount(fs, mountpoint, &config).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!(
                    "mounting the power-loss filesystem on {}: {e} (needs /dev/fuse and mount(2) \
                     as root, or fusermount3 from Debian's fuse3)",
                    mountpoint.display()
                ),
            )
        })?;
        let mount = Mount {
            image,
            notifier: session.notifier(),
            session: Some(session),
            path: mountpoint.to_owned(),
        };
        mount.check_mounted()?;
        Ok(mount)
    }

    /// Fails unless `path` is served by this filesystem: a file created
    /// through it must appear in the image.
    fn check_mounted(&self) -> io::Result<()> {
        let probe = self.path.join(".powerfs-probe");
        std::fs::write(&probe, b"probe")?;
        let seen = self
            .image()
            .lookup(image::ROOT, std::ffi::OsStr::new(".powerfs-probe"))
            .is_ok();
        std::fs::remove_file(&probe)?;
        // The probe leaves nothing behind for a cut to count.
        self.sync_all();
        if !seen {
            return Err(io::Error::other(format!(
                "{} is not served by the power-loss filesystem",
                self.path.display()
            )));
        }
        Ok(())
    }

    /// The mount point.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn image(&self) -> MutexGuard<'_, Image> {
        self.image.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Everything written so far becomes durable, as `sync(2)` (or a quiet
    /// minute of the kernel's writeback) would make it.
    pub fn sync_all(&self) {
        self.image().sync_all();
    }

    /// Cuts the power. Every process using the filesystem must be dead
    /// (killed and reaped) first: the kernel is made to drop its cached
    /// pages and attributes (writing back dirty pages of shared mappings
    /// first, such as SQLite's `-shm`), then the image goes back to what was
    /// durable. The mount stays usable: processes started afterwards see
    /// what survived, as after a reboot.
    pub fn cut(&self, how: Cut) -> CutReport {
        let inodes = self.image().inode_numbers();
        // Not under the image's lock: invalidation can make the kernel
        // write back, which the filesystem's thread serves.
        for ino in inodes {
            // ENOENT (the kernel does not hold that inode) is fine.
            let _ = self.notifier.inval_inode(INodeNo(ino), 0, 0);
        }
        self.image().cut(how)
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        if let Some(session) = self.session.take() {
            if let Err(e) = session.umount_and_join() {
                eprintln!("unmounting {}: {e}", self.path.display());
            }
        }
    }
}
