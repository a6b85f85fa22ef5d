//! The model's rules, without a mount: what a cut keeps and what it drops.

use super::*;

const OWNER: (u32, u32) = (0, 0);

fn file(img: &mut Image, name: &str) -> u64 {
    img.create(ROOT, OsStr::new(name), false, 0o644, OWNER)
        .unwrap()
}

fn live(img: &Image, ino: u64) -> Vec<u8> {
    img.read(ino, 0, u32::MAX).unwrap().to_vec()
}

#[test]
fn synced_data_survive_a_cut_and_unsynced_data_do_not() {
    let mut img = Image::new();
    let f = file(&mut img, "a");
    img.fsync(ROOT).unwrap();
    img.write(f, 0, &[1; 1000]).unwrap();
    img.fsync(f).unwrap();
    img.write(f, 1000, &[2; 600]).unwrap(); // grows the file, never synced
    img.write(f, 0, &[3; 10]).unwrap(); // overwrites synced bytes
    assert_eq!(img.inode(f).unwrap().size(), 1600);
    let report = img.cut(Cut::DropUnsynced);
    assert_eq!(live(&img, f), vec![1; 1000]);
    assert_eq!(report.sizes_lost, 1);
    // Sectors 0 (overwritten), 1 (its tail written by the growing write), 2, 3.
    assert_eq!(report.sectors_lost, 4);
    assert!(report.lost_anything());
}

#[test]
fn a_cut_after_a_sync_loses_nothing() {
    let mut img = Image::new();
    let f = file(&mut img, "a");
    img.write(f, 0, b"hello").unwrap();
    img.fsync(f).unwrap();
    img.fsync(ROOT).unwrap();
    let report = img.cut(Cut::DropUnsynced);
    assert_eq!(live(&img, f), b"hello");
    assert!(!report.lost_anything(), "{report:?}");
}

#[test]
fn a_truncation_not_synced_is_undone() {
    let mut img = Image::new();
    let f = file(&mut img, "a");
    img.fsync(ROOT).unwrap();
    img.write(f, 0, &[7; 2048]).unwrap();
    img.fsync(f).unwrap();
    img.set_size(f, 0).unwrap();
    img.cut(Cut::DropUnsynced);
    assert_eq!(live(&img, f), vec![7; 2048]);
}

#[test]
fn an_entry_is_durable_only_once_its_directory_is_synced() {
    let mut img = Image::new();
    let a = file(&mut img, "a");
    img.write(a, 0, b"synced data").unwrap();
    img.fsync(a).unwrap(); // the file, not the directory
    let report = img.cut(Cut::DropUnsynced);
    assert_eq!(img.lookup(ROOT, OsStr::new("a")), Err(libc::ENOENT));
    assert_eq!(report.dirs_reverted, 1);
    assert_eq!(report.inodes_dropped, 1);

    let b = file(&mut img, "b");
    img.fsync(ROOT).unwrap();
    img.remove(ROOT, OsStr::new("b"), false).unwrap();
    img.cut(Cut::DropUnsynced);
    assert_eq!(
        img.lookup(ROOT, OsStr::new("b")),
        Ok(b),
        "the unlink was lost"
    );
}

#[test]
fn a_rename_is_durable_with_its_directory() {
    let mut img = Image::new();
    let tmp = file(&mut img, "x.tmp");
    img.write(tmp, 0, b"new").unwrap();
    img.fsync(tmp).unwrap();
    img.fsync(ROOT).unwrap();
    img.rename(ROOT, OsStr::new("x.tmp"), ROOT, OsStr::new("x"))
        .unwrap();
    img.cut(Cut::DropUnsynced);
    assert_eq!(img.lookup(ROOT, OsStr::new("x")), Err(libc::ENOENT));
    assert_eq!(img.lookup(ROOT, OsStr::new("x.tmp")), Ok(tmp));
    img.rename(ROOT, OsStr::new("x.tmp"), ROOT, OsStr::new("x"))
        .unwrap();
    img.fsync(ROOT).unwrap();
    img.cut(Cut::DropUnsynced);
    assert_eq!(img.lookup(ROOT, OsStr::new("x")), Ok(tmp));
    assert_eq!(live(&img, tmp), b"new");
}

#[test]
fn a_torn_cut_keeps_some_unsynced_sectors_whole_and_replays_from_its_seed() {
    let run = |seed| {
        let mut img = Image::new();
        let f = file(&mut img, "a");
        img.fsync(ROOT).unwrap();
        img.write(f, 0, &[1; 64 * 512]).unwrap();
        img.fsync(f).unwrap();
        img.write(f, 0, &[2; 64 * 512]).unwrap();
        let report = img.cut(Cut::Torn { seed });
        (live(&img, f), report)
    };
    let (data, report) = run(42);
    assert_eq!(data.len(), 64 * 512);
    assert_eq!(report.sectors_kept + report.sectors_lost, 64);
    assert!(
        report.sectors_kept > 0 && report.sectors_lost > 0,
        "{report:?}"
    );
    for sector in data.chunks(512) {
        assert!(
            sector.iter().all(|&b| b == sector[0]),
            "a sector is written whole or not at all"
        );
    }
    let kept = data.chunks(512).filter(|s| s[0] == 2).count() as u64;
    assert_eq!(kept, report.sectors_kept);
    assert_eq!(run(42).0, data, "the same seed tears the same way");
}

#[test]
fn a_torn_growth_reads_zeros_where_sectors_were_lost() {
    // Find a seed that keeps the new size: then lost sectors read as zeros.
    for seed in 1..200 {
        let mut torn = Image::new();
        let g = file(&mut torn, "a");
        torn.fsync(ROOT).unwrap();
        torn.write(g, 0, &[9; 32 * 512]).unwrap();
        let report = torn.cut(Cut::Torn { seed });
        if report.sizes_lost == 0 {
            let data = live(&torn, g);
            assert_eq!(data.len(), 32 * 512);
            let zeros = data.chunks(512).filter(|s| s[0] == 0).count() as u64;
            assert_eq!(zeros, report.sectors_lost);
            return;
        }
    }
    panic!("no seed in 1..200 kept the size");
}

#[test]
fn directories_nest_and_refuse_what_posix_refuses() {
    let mut img = Image::new();
    let d = img
        .create(ROOT, OsStr::new("d"), true, 0o755, OWNER)
        .unwrap();
    let f = img.create(d, OsStr::new("f"), false, 0o600, OWNER).unwrap();
    assert_eq!(
        img.create(d, OsStr::new("f"), false, 0o600, OWNER),
        Err(libc::EEXIST)
    );
    assert_eq!(
        img.remove(ROOT, OsStr::new("d"), true),
        Err(libc::ENOTEMPTY)
    );
    assert_eq!(img.remove(ROOT, OsStr::new("d"), false), Err(libc::EISDIR));
    assert_eq!(img.nlink(f), 1);
    assert_eq!(img.nlink(ROOT), 3);
    img.sync_all();
    img.remove(d, OsStr::new("f"), false).unwrap();
    assert_eq!(img.nlink(f), 0);
    img.remove(ROOT, OsStr::new("d"), true).unwrap();
    img.cut(Cut::DropUnsynced);
    assert_eq!(
        img.lookup(d, OsStr::new("f")),
        Ok(f),
        "sync_all made both durable"
    );
}
