use std::io::Cursor;

use zip::CompressionMethod;

use super::super::test_support::*;
use super::*;

const FILENAME: &str = "demo_pkg-1.0-py3-none-any.whl";

fn inspect(bytes: Vec<u8>) -> Result<Inspected, ArchiveError> {
    inspect_with(bytes, &ArchiveLimits::default())
}

fn inspect_with(bytes: Vec<u8>, limits: &ArchiveLimits) -> Result<Inspected, ArchiveError> {
    inspect_wheel(Cursor::new(bytes), &filename(FILENAME), limits)
}

fn refused(bytes: Vec<u8>) -> String {
    refusal(inspect(bytes))
}

fn entries_with(edit: impl FnOnce(&mut Vec<(String, Vec<u8>)>)) -> Vec<u8> {
    let mut entries = wheel_entries("demo_pkg", "1.0");
    edit(&mut entries);
    zip_owned(&entries)
}

#[test]
fn good_wheel_returns_the_exact_metadata_bytes() {
    let inspected = inspect(good_wheel("demo_pkg", "1.0")).unwrap();
    assert_eq!(
        inspected.metadata_bytes,
        metadata_text("demo_pkg", "1.0").into_bytes()
    );
    assert_eq!(inspected.metadata.name, "demo_pkg");
    assert_eq!(inspected.metadata.requires_dist, ["requests>=2"]);
}

#[test]
fn stored_members_are_accepted() {
    let entries = wheel_entries("demo_pkg", "1.0");
    let borrowed: Vec<(&str, &[u8])> = entries
        .iter()
        .map(|(n, c)| (n.as_str(), c.as_slice()))
        .collect();
    assert!(inspect(zip_with(&borrowed, CompressionMethod::Stored)).is_ok());
}

#[test]
fn dist_info_is_matched_after_normalization() {
    let bytes = zip_owned(&wheel_entries("Demo.Pkg", "1.0.0"));
    let inspected = inspect(bytes).unwrap();
    assert_eq!(inspected.metadata.name, "Demo.Pkg");
}

#[test]
fn missing_metadata_is_refused() {
    let message = refused(entries_with(|e| {
        e.retain(|(n, _)| !n.ends_with("METADATA"))
    }));
    assert_eq!(
        message,
        "Wheel 'demo_pkg-1.0-py3-none-any.whl' does not contain the required METADATA file: \
         demo_pkg-1.0.dist-info/METADATA"
    );
}

#[test]
fn missing_dist_info_is_refused() {
    let message = refused(zip_bytes(&[("demo_pkg/__init__.py", b"")]));
    assert!(
        message.contains("does not contain the required METADATA file"),
        "{message}"
    );
}

#[test]
fn dist_info_of_another_project_is_refused() {
    let message = refused(zip_owned(&wheel_entries("other", "1.0")));
    assert!(
        message.contains("(found 'other-1.0.dist-info' instead"),
        "{message}"
    );
    let message = refused(zip_owned(&wheel_entries("demo_pkg", "2.0")));
    assert!(
        message.contains("found 'demo_pkg-2.0.dist-info'"),
        "{message}"
    );
}

#[test]
fn two_matching_dist_info_directories_are_refused() {
    let message = refused(entries_with(|e| {
        e.extend(wheel_entries("Demo_Pkg", "1.0.0").into_iter().skip(1));
    }));
    assert!(
        message.contains("more than one top-level .dist-info directory"),
        "{message}"
    );
}

#[test]
fn an_extra_unrelated_dist_info_is_refused() {
    let message = refused(entries_with(|e| {
        e.push(("vendored-2.0.dist-info/METADATA".into(), b"x".to_vec()));
    }));
    assert!(message.contains("more than one top-level"), "{message}");
}

#[test]
fn nested_dist_info_does_not_count() {
    let bytes = entries_with(|e| {
        e.push((
            "demo_pkg/_vendor/dep-1.0.dist-info/METADATA".into(),
            b"x".to_vec(),
        ));
    });
    assert!(inspect(bytes).is_ok());
}

#[test]
fn missing_wheel_file_is_refused() {
    let message = refused(entries_with(|e| e.retain(|(n, _)| !n.ends_with("/WHEEL"))));
    assert_eq!(
        message,
        "Wheel 'demo_pkg-1.0-py3-none-any.whl' does not contain the required WHEEL file: \
         demo_pkg-1.0.dist-info/WHEEL"
    );
}

#[test]
fn duplicate_entries_are_refused() {
    let mut bytes = entries_with(|e| {
        e.push(("demo_pkg/extra.py".into(), b"one".to_vec()));
        e.push(("demo_pkg/extrb.py".into(), b"two".to_vec()));
    });
    // Rename the second entry in both of its headers so that the names collide.
    let position = |bytes: &[u8]| bytes.windows(17).position(|w| w == b"demo_pkg/extrb.py");
    while let Some(pos) = position(&bytes) {
        bytes[pos + 13] = b'a';
    }
    let message = refused(bytes);
    assert!(
        message.contains("same file name more than once"),
        "{message}"
    );
}

#[test]
fn truncated_zip_is_refused() {
    let bytes = good_wheel("demo_pkg", "1.0");
    let half = bytes[..bytes.len() / 2].to_vec();
    let message = refused(half);
    assert!(
        message.starts_with("Invalid distribution file: not a valid zip archive ("),
        "{message}"
    );
    assert!(refused(Vec::new()).contains("not a valid zip archive"));
    assert!(refused(b"not a zip at all".to_vec()).contains("not a valid zip archive"));
}

#[test]
fn corrupt_member_data_is_refused() {
    let mut bytes = good_wheel("demo_pkg", "1.0");
    // Flip bits inside METADATA's compressed data: the CRC check fails.
    let name = b"demo_pkg-1.0.dist-info/METADATA";
    let local = bytes.windows(name.len()).position(|w| w == name).unwrap();
    let data_start = local + name.len();
    for byte in &mut bytes[data_start..data_start + 8] {
        *byte ^= 0x55;
    }
    let message = refused(bytes);
    assert!(
        message.starts_with("Invalid distribution file: "),
        "{message}"
    );
}

#[test]
fn other_compression_methods_are_refused() {
    let mut bytes = good_wheel("demo_pkg", "1.0");
    // Method 12 (bzip2) in both headers.
    patch_zip_field(
        &mut bytes,
        "demo_pkg/__init__.py",
        8,
        10,
        &12_u16.to_le_bytes(),
    );
    let message = refused(bytes);
    assert!(
        message.contains("only stored and deflate are supported"),
        "{message}"
    );
}

#[test]
fn paths_leaving_the_wheel_are_refused() {
    let message = refused(entries_with(|e| {
        e.push(("../evil.py".into(), b"".to_vec()))
    }));
    assert!(message.contains("'../evil.py' contains '..'"), "{message}");
    let message = refused(entries_with(|e| e.push(("/etc/evil".into(), b"".to_vec()))));
    assert!(message.contains("absolute path"), "{message}");
}

#[test]
fn zip_bomb_metadata_is_refused_by_its_declared_size() {
    let bomb = vec![0_u8; 64 * 1024 * 1024];
    let bytes = entries_with(|e| {
        for (name, content) in e.iter_mut() {
            if name.ends_with("METADATA") {
                content.clone_from(&bomb);
            }
        }
    });
    assert!(bytes.len() < 1024 * 1024, "compressed size {}", bytes.len());
    let limits = ArchiveLimits {
        max_metadata_bytes: 1024 * 1024,
        ..ArchiveLimits::default()
    };
    let err = inspect_with(bytes, &limits).unwrap_err();
    assert!(
        matches!(err, ArchiveError::MetadataTooLarge { limit, .. } if limit == 1024 * 1024),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        "Invalid distribution file: demo_pkg-1.0.dist-info/METADATA is larger than the limit of \
         1048576 bytes"
    );
}

#[test]
fn zip_bomb_metadata_with_a_lying_size_is_refused_with_bounded_reads() {
    let bomb = vec![b'A'; 64 * 1024 * 1024];
    let mut bytes = entries_with(|e| {
        for (name, content) in e.iter_mut() {
            if name.ends_with("METADATA") {
                content.clone_from(&bomb);
            }
        }
    });
    // Claim 100 bytes uncompressed in both headers.
    patch_zip_field(
        &mut bytes,
        "demo_pkg-1.0.dist-info/METADATA",
        22,
        24,
        &100_u32.to_le_bytes(),
    );
    let limits = ArchiveLimits {
        max_metadata_bytes: 1024 * 1024,
        ..ArchiveLimits::default()
    };
    let err = inspect_with(bytes, &limits).unwrap_err();
    assert!(
        matches!(
            err,
            ArchiveError::MetadataTooLarge { .. } | ArchiveError::Invalid(_)
        ),
        "{err}"
    );
}

#[test]
fn limits_on_entries_and_total_size() {
    let limits = ArchiveLimits {
        max_entries: 3,
        ..ArchiveLimits::default()
    };
    let err = inspect_with(good_wheel("demo_pkg", "1.0"), &limits).unwrap_err();
    assert!(
        matches!(err, ArchiveError::TooManyEntries { limit: 3 }),
        "{err}"
    );

    let limits = ArchiveLimits {
        max_total_uncompressed: 100,
        ..ArchiveLimits::default()
    };
    let err = inspect_with(good_wheel("demo_pkg", "1.0"), &limits).unwrap_err();
    assert!(
        matches!(err, ArchiveError::TooLarge { limit: 100 }),
        "{err}"
    );
}

#[test]
fn invalid_metadata_names_the_member() {
    let message = refused(entries_with(|e| {
        for (name, content) in e.iter_mut() {
            if name.ends_with("METADATA") {
                *content = b"Metadata-Version: 2.1\nName: demo_pkg\nVersion: 1.0\nRequires-Python: >=3.x\n".to_vec();
            }
        }
    }));
    assert!(
        message.starts_with(
            "Invalid core metadata in demo_pkg-1.0.dist-info/METADATA: Requires-Python '>=3.x'"
        ),
        "{message}"
    );
}

#[test]
fn license_files_must_exist_for_metadata_2_4() {
    let metadata = b"Metadata-Version: 2.4\nName: demo_pkg\nVersion: 1.0\nLicense-File: LICENSE\n";
    let set_metadata = |e: &mut Vec<(String, Vec<u8>)>| {
        for (name, content) in e.iter_mut() {
            if name.ends_with("METADATA") {
                *content = metadata.to_vec();
            }
        }
    };
    let message = refused(entries_with(set_metadata));
    assert!(
        message.contains(
            "License-File 'LICENSE' is listed in the metadata but \
                          demo_pkg-1.0.dist-info/licenses/LICENSE is not in the archive"
        ),
        "{message}"
    );
    let bytes = entries_with(|e| {
        set_metadata(e);
        e.push((
            "demo_pkg-1.0.dist-info/licenses/LICENSE".into(),
            b"MIT".to_vec(),
        ));
    });
    assert!(inspect(bytes).is_ok());
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        #[test]
        fn never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let _ = inspect(bytes);
        }

        #[test]
        fn never_panics_on_a_mutated_wheel(
            flips in proptest::collection::vec((any::<proptest::sample::Index>(), any::<u8>()), 1..8),
            cut in proptest::option::of(any::<proptest::sample::Index>()),
        ) {
            let mut bytes = good_wheel("demo_pkg", "1.0");
            for (index, value) in flips {
                let at = index.index(bytes.len());
                bytes[at] = value;
            }
            if let Some(cut) = cut {
                let len = cut.index(bytes.len());
                bytes.truncate(len);
            }
            let _ = inspect(bytes);
        }
    }
}
