use super::*;
use automerge::transaction::Transactable;
use automerge::{ActorId, AutoCommit, ObjType, ROOT};

/// A document of 20 projects, then `edits` small edits of one actor; returns
/// the bundle of the edits and the edits themselves.
fn edits_bundle(edits: usize, text_len: usize) -> (Vec<u8>, Vec<Change>) {
    let mut doc = AutoCommit::new().with_actor(ActorId::from(vec![7u8; 16]));
    let projects = doc.put_object(ROOT, "projects", ObjType::Map).unwrap();
    let mut ids = vec![];
    for i in 0..20 {
        let p = doc
            .put_object(&projects, format!("p{i}"), ObjType::Map)
            .unwrap();
        doc.put(&p, "title", format!("Progetto {i}")).unwrap();
        ids.push(p);
    }
    doc.commit();
    let base = doc.get_heads();
    for e in 0..edits {
        let p = &ids[e % ids.len()];
        doc.put(p, "committed_cents", (e as i64) * 1000 + 17)
            .unwrap();
        doc.put(p, "note", "x".repeat(text_len) + &e.to_string())
            .unwrap();
        doc.commit();
    }
    let changes = doc.get_changes(&base);
    let hashes: Vec<_> = changes.iter().map(|c| c.hash()).collect();
    let bundle = doc.document().bundle(hashes).unwrap().bytes().to_vec();
    (bundle, changes)
}

#[test]
fn bundles_automerge_makes_pass_and_unbundle_to_the_same_changes() {
    // Small, and large enough for automerge to DEFLATE columns.
    for (edits, text_len) in [(1, 5), (10, 5), (100, 5), (2_000, 300)] {
        let (bytes, changes) = edits_bundle(edits, text_len);
        let shape = check(&bytes).unwrap();
        assert_eq!(shape.changes, edits as u64);
        assert!(shape.ops >= 2 * edits as u64, "{shape:?}");
        let back = unbundle(&bytes).unwrap();
        assert_eq!(back.len(), changes.len());
        for (a, b) in back.iter().zip(&changes) {
            assert_eq!(a.hash(), b.hash());
            assert_eq!(a.raw_bytes(), b.raw_bytes());
        }
    }
}

#[test]
fn the_large_bundle_exercises_the_inflate_path() {
    // The (2,000 × 300) case above has DEFLATE columns, checked inflated.
    let (bytes, changes) = edits_bundle(2_000, 300);
    INFLATES.with(|c| c.set(0));
    check(&bytes).unwrap();
    assert!(INFLATES.with(|c| c.get()) > 0, "no column was deflated");
    let raw: usize = changes.iter().map(|c| c.raw_bytes().len()).sum();
    assert!(bytes.len() * 4 < raw, "{} vs {raw}", bytes.len());
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// Regression (fuzz target `envelope`): on the second input automerge 0.12
/// allocates 1 GiB and aborts; `check` refuses it first. The test process
/// would abort if it did not.
#[test]
fn bundles_that_break_automerge_are_refused_before_it_parses_them() {
    let panics = unhex(
        "856f4a83c5c15531035f000100000123020080282a9ff469a26cd00996e7cdd5f167f9ca\
         3f75a3e087109d000200004c4a83c5c1553103ee37a25df60f5b8fc9b3940000000000000000000000\
         0000000069856f4a83c5656e7473017f017f663036303000000031",
    );
    let allocates = unhex(
        "856f4a83c5c15531035f000100000123288002012a9ff469a29a2ff669e7cacdd53f67f9f1\
         75a3e087109d000200004c4a83c5c155314e3666757a7a6572313246757a7a65724472697665724550\
         6950505069856f4a83c5656e7473017f017f663036303000000a31",
    );
    assert!(check(&panics).is_err());
    assert!(unbundle(&panics).is_err());
    // Refused for its row count, the very thing automerge would allocate.
    assert_eq!(check(&allocates), Err(BundleError::TooManyRows));
    assert_eq!(unbundle(&allocates), Err(BundleError::TooManyRows));
}

/// A column declaring a run far past the limit is refused by the count, not
/// by running out of memory: the change column group of a real bundle gets
/// a column whose one run repeats a value 2^40 times.
#[test]
fn a_run_of_a_trillion_rows_is_refused() {
    let mut huge_run = vec![];
    // RLE: a signed LEB128 count (2^40), then the repeated value (0).
    let mut n: i64 = 1 << 40;
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 && byte & 0x40 == 0 {
            huge_run.push(byte);
            break;
        }
        huge_run.push(byte | 0x80);
    }
    huge_run.push(0);
    let mut strings = 0;
    // Spec 0x02: an uncompressed integer column.
    assert_eq!(
        column_rows(0x02, &huge_run, &mut strings),
        Err(BundleError::TooManyRows)
    );
    // The same run of a 1 KiB string: refused by rows or by bytes.
    let mut string_run = huge_run[..huge_run.len() - 1].to_vec();
    string_run.extend_from_slice(&[0x80, 0x08]);
    string_run.extend(std::iter::repeat_n(b'a', 1024));
    assert!(column_rows(0x05, &string_run, &mut strings).is_err());
}

#[test]
fn every_truncation_and_many_corruptions_are_errors_not_crashes() {
    let (bytes, _) = edits_bundle(30, 5);
    for len in 0..bytes.len() {
        assert!(unbundle(&bytes[..len]).is_err(), "prefix of {len} bytes");
    }
    // Seeded byte flips anywhere: an error or (rarely) a bundle that still
    // parses, never a panic or an abort.
    let mut state = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..2_000 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let mut bad = bytes.clone();
        let at = (state as usize) % bad.len();
        bad[at] ^= (state >> 32) as u8 | 1;
        let _ = unbundle(&bad);
    }
}

#[test]
fn what_is_not_a_bundle_is_refused() {
    assert_eq!(check(b""), Err(BundleError::Layout("truncated")));
    let (bytes, changes) = edits_bundle(1, 5);
    let mut change_chunk = changes[0].raw_bytes().to_vec();
    assert_eq!(check(&change_chunk), Err(BundleError::NotABundle));
    change_chunk[0] ^= 1;
    assert_eq!(check(&change_chunk), Err(BundleError::NotABundle));
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(check(&longer).is_err());
    assert!(matches!(
        check(&vec![0; MAX_BUNDLE_BYTES + 1]),
        Err(BundleError::TooLarge(_))
    ));
}

/// Regression (fuzz target `bundle`, CI 2026-12-04): libFuzzer gave up on
/// this input after 10 s: hexane's run decoder returned a run of no rows
/// for ever.
#[test]
fn the_fuzzers_slow_input_is_answered_at_once() {
    let slow = unhex(
        "856f4a833145ae9603d201000110bc1d2d9f1ae2e5f5ecec08f1969c20c0090102030213022302\
         340245025004530460020c000c010c010c01edfffff37f000b017f000a010c000a1507210237014202\
         56065762700471b6000000000000007469746c650c000c0c010a86010296015363756f6c61203053\
         63756f6c6120315363756f6c6120325363756f6c6120335363756f6c6120345363756f6c61203553\
         63756f6c6120365363756f6c023401420256062e64656275675f6d6163726f057469746c000b017f\
         000a010c000a1507210234014202560b017f000f01",
    );
    // Refused, not decoded for ever (the test would hang).
    assert!(check(&slow).is_err());
    assert!(unbundle(&slow).is_err());
}

/// Regression (fuzz target `bundle`, 2026-12-04): automerge's bundle reader
/// accepts a change whose key is not UTF-8, which the change reader then
/// refuses; `unbundle` refuses the bundle.
#[test]
fn a_bundle_whose_changes_do_not_parse_alone_is_refused() {
    let bad_key = unhex(
        "856f4a833145ae9603d201000110bc1d2d9f1ae2e5f5ecec08f1969c20c0090102030213022302\
         330245025004530460020c000c010c010c010c00000c7f000b017f000a010c000a15072102340142\
         0256065762700471027302b301040c05ffff746c650c000c0c010a8401029601536381906c612030\
         5363756f6c61e2ceac9c756f6c6120325363756f6c6120335363756f6c6120345363756f6c612035\
         5363756f6c6120365363756f6c6120375363756f6c6120385363756f6c6120395363756f6c206131\
         305363756f6c612031307f000b010b000b017f000b01",
    );
    assert_eq!(
        unbundle(&bad_key),
        Err(BundleError::Layout(
            "a change of the bundle does not parse alone"
        ))
    );
}
