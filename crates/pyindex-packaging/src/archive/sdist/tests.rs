use std::io::Cursor;

use super::super::test_support::*;
use super::*;

const FILENAME: &str = "demo_pkg-1.0.tar.gz";
const TOP: &str = "demo_pkg-1.0";

fn inspect(bytes: Vec<u8>) -> Result<Inspected, ArchiveError> {
    inspect_with(bytes, &ArchiveLimits::default())
}

fn inspect_with(bytes: Vec<u8>, limits: &ArchiveLimits) -> Result<Inspected, ArchiveError> {
    inspect_sdist(Cursor::new(bytes), &filename(FILENAME), limits)
}

fn refused(bytes: Vec<u8>) -> String {
    refusal(inspect(bytes))
}

fn pkg_info() -> String {
    metadata_text("demo_pkg", "1.0")
}

#[test]
fn good_sdist_returns_the_exact_pkg_info_bytes() {
    let inspected = inspect(good_sdist("demo_pkg", "1.0")).unwrap();
    assert_eq!(inspected.metadata_bytes, pkg_info().into_bytes());
    assert_eq!(inspected.metadata.name, "demo_pkg");
}

#[test]
fn dot_slash_prefixes_and_global_headers_are_accepted() {
    let info = pkg_info();
    let bytes = tar_gz(&[
        Member::GlobalHeader(b"52 comment=0123456789abcdef0123456789abcdef01234567\n"),
        Member::Dir("./"),
        Member::Dir("./demo_pkg-1.0/"),
        Member::File("./demo_pkg-1.0/PKG-INFO", info.as_bytes()),
    ]);
    assert_eq!(inspect(bytes).unwrap().metadata.name, "demo_pkg");
}

#[test]
fn long_paths_and_pax_paths_are_followed() {
    let info = pkg_info();
    let long = format!("{TOP}/{}/deep.py", "d".repeat(150));
    let bytes = tar_gz(&[
        Member::File(&long, b"x"),
        Member::PaxPath(
            "demo_pkg-1.0/PKG-INFO",
            "placeholder/PKG-INFO",
            info.as_bytes(),
        ),
    ]);
    assert_eq!(inspect(bytes).unwrap().metadata.name, "demo_pkg");

    let evil = format!("{TOP}/{}/../../../etc/x", "d".repeat(150));
    let bytes = tar_gz(&[Member::PaxPath(&evil, "demo_pkg-1.0/ok", b"x")]);
    assert!(refused(bytes).contains("contains '..'"));
}

#[test]
fn member_paths_longer_than_path_max_are_refused() {
    let info = pkg_info();
    let too_long = format!("{TOP}/{}", "d".repeat(MAX_PATH_BYTES + 1));
    let bytes = tar_gz(&[
        Member::PaxPath(&too_long, "placeholder/x.py", b"x"),
        Member::File("demo_pkg-1.0/PKG-INFO", info.as_bytes()),
    ]);
    assert!(refused(bytes).contains("longer than 4096 bytes"));
}

#[test]
fn two_top_level_directories_are_refused() {
    let info = pkg_info();
    let message = refused(tar_gz(&[
        Member::File("demo_pkg-1.0/PKG-INFO", info.as_bytes()),
        Member::File("other-1.0/setup.py", b""),
    ]));
    assert!(
        message.contains("more than one top-level directory ('demo_pkg-1.0' and 'other-1.0')"),
        "{message}"
    );
}

#[test]
fn a_file_at_the_top_level_is_refused() {
    let info = pkg_info();
    let message = refused(tar_gz(&[
        Member::File("demo_pkg-1.0/PKG-INFO", info.as_bytes()),
        Member::File("setup.py", b""),
    ]));
    assert!(
        message.contains("'setup.py' is a file at the top level"),
        "{message}"
    );
}

#[test]
fn dot_dot_paths_are_refused() {
    let info = pkg_info();
    let message = refused(tar_gz(&[
        Member::File("demo_pkg-1.0/PKG-INFO", info.as_bytes()),
        Member::File("demo_pkg-1.0/../../evil", b""),
    ]));
    assert_eq!(
        message,
        "Invalid distribution file: the member 'demo_pkg-1.0/../../evil' contains '..'; every \
         path must be relative and inside the top-level directory"
    );
}

#[test]
fn absolute_paths_are_refused() {
    let message = refused(tar_gz(&[Member::File("/etc/passwd", b"")]));
    assert!(message.contains("is an absolute path"), "{message}");
}

#[test]
fn missing_pkg_info_is_refused() {
    let message = refused(tar_gz(&[
        Member::Dir("demo_pkg-1.0"),
        Member::File("demo_pkg-1.0/setup.py", b""),
        Member::File("demo_pkg-1.0/src/PKG-INFO", pkg_info().as_bytes()),
    ]));
    assert!(
        message.starts_with(
            "Source distribution 'demo_pkg-1.0.tar.gz' does not contain the required PKG-INFO \
             file: demo_pkg-1.0/PKG-INFO"
        ),
        "{message}"
    );
}

#[test]
fn not_gzip_is_refused() {
    let expected = "Invalid distribution file: not a gzip-compressed tar archive; source \
                    distributions must be .tar.gz files (python -m build --sdist makes one)";
    assert_eq!(refused(good_wheel("demo_pkg", "1.0")), expected);
    assert_eq!(refused(tar_bytes(&[Member::Dir("demo_pkg-1.0")])), expected);
    assert_eq!(refused(Vec::new()), expected);
    assert_eq!(refused(vec![0x1f]), expected);
}

#[test]
fn gzip_of_something_else_is_refused() {
    let message = refused(gzip(b"this is not a tar archive, just some text"));
    assert!(
        message.starts_with("Invalid distribution file: "),
        "{message}"
    );
    assert!(refused(gzip(b"")).contains("no files"));
}

#[test]
fn truncated_archives_are_refused() {
    let bytes = good_sdist("demo_pkg", "1.0");
    for len in [2, 10, bytes.len() / 2, bytes.len() - 4] {
        let message = refused(bytes[..len].to_vec());
        assert!(message.contains("corrupt or truncated"), "{len}: {message}");
    }
}

#[test]
fn links_inside_the_tree_are_accepted() {
    let info = pkg_info();
    let bytes = tar_gz(&[
        Member::File("demo_pkg-1.0/PKG-INFO", info.as_bytes()),
        Member::File("demo_pkg-1.0/README.md", b"hi"),
        Member::Symlink("demo_pkg-1.0/docs/README.md", "../README.md"),
        Member::HardLink("demo_pkg-1.0/README.rst", "demo_pkg-1.0/README.md"),
    ]);
    assert!(inspect(bytes).is_ok());
}

#[test]
fn links_leaving_the_tree_are_refused() {
    let info = pkg_info();
    for link in [
        Member::Symlink("demo_pkg-1.0/evil", "../../etc/passwd"),
        Member::Symlink("demo_pkg-1.0/evil", "../other-1.0/x"),
        Member::Symlink("demo_pkg-1.0/evil", "/etc/passwd"),
        Member::HardLink("demo_pkg-1.0/evil", "/etc/passwd"),
        Member::HardLink("demo_pkg-1.0/evil", "demo_pkg-1.0/../../x"),
    ] {
        let message = refused(tar_gz(&[
            Member::File("demo_pkg-1.0/PKG-INFO", info.as_bytes()),
            link,
        ]));
        assert!(
            message.contains("outside the archive's top-level directory"),
            "{message}"
        );
    }
}

#[test]
fn devices_and_fifos_are_refused() {
    for member in [
        Member::Fifo("demo_pkg-1.0/pipe"),
        Member::CharDevice("demo_pkg-1.0/tty"),
    ] {
        let message = refused(tar_gz(&[member]));
        assert!(message.contains("is a device or FIFO"), "{message}");
    }
}

#[test]
fn pkg_info_must_be_a_single_regular_file() {
    let info = pkg_info();
    let message = refused(tar_gz(&[
        Member::File("demo_pkg-1.0/real", info.as_bytes()),
        Member::Symlink("demo_pkg-1.0/PKG-INFO", "real"),
    ]));
    assert!(message.contains("must be a regular file"), "{message}");
    let message = refused(tar_gz(&[
        Member::File("demo_pkg-1.0/PKG-INFO", info.as_bytes()),
        Member::File("demo_pkg-1.0/PKG-INFO", b"Metadata-Version: 2.1\n"),
    ]));
    assert!(message.contains("more than once"), "{message}");
}

#[test]
fn pkg_info_over_the_cap_is_refused() {
    let big = format!("{}\n{}", pkg_info(), "x".repeat(4096));
    let bytes = tar_gz(&[Member::File("demo_pkg-1.0/PKG-INFO", big.as_bytes())]);
    let limits = ArchiveLimits {
        max_metadata_bytes: 1024,
        ..ArchiveLimits::default()
    };
    let err = inspect_with(bytes, &limits).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Invalid distribution file: demo_pkg-1.0/PKG-INFO is larger than the limit of 1024 bytes"
    );
}

#[test]
fn decompressed_size_is_capped() {
    let zeros = vec![0_u8; 4 * 1024 * 1024];
    let info = pkg_info();
    let bytes = tar_gz(&[
        Member::File("demo_pkg-1.0/PKG-INFO", info.as_bytes()),
        Member::File("demo_pkg-1.0/big.bin", &zeros),
    ]);
    let limits = ArchiveLimits {
        max_total_uncompressed: 1024 * 1024,
        ..ArchiveLimits::default()
    };
    let err = inspect_with(bytes.clone(), &limits).unwrap_err();
    assert!(
        matches!(err, ArchiveError::TooLarge { limit } if limit == 1024 * 1024),
        "{err}"
    );
    assert!(inspect(bytes).is_ok());
}

#[test]
fn entry_count_is_capped() {
    let info = pkg_info();
    let bytes = tar_gz(&[
        Member::Dir("demo_pkg-1.0"),
        Member::File("demo_pkg-1.0/PKG-INFO", info.as_bytes()),
        Member::File("demo_pkg-1.0/a", b""),
        Member::File("demo_pkg-1.0/b", b""),
    ]);
    let limits = ArchiveLimits {
        max_entries: 3,
        ..ArchiveLimits::default()
    };
    let err = inspect_with(bytes, &limits).unwrap_err();
    assert!(
        matches!(err, ArchiveError::TooManyEntries { limit: 3 }),
        "{err}"
    );
}

#[test]
fn invalid_pkg_info_names_the_member() {
    let bytes = tar_gz(&[Member::File(
        "demo_pkg-1.0/PKG-INFO",
        b"Metadata-Version: 2.1\nName: demo_pkg\nVersion: 1.0\nDynamic: Name\n",
    )]);
    let message = refused(bytes);
    assert!(
        message.starts_with(
            "Invalid core metadata in demo_pkg-1.0/PKG-INFO: Dynamic may not list 'Name'"
        ),
        "{message}"
    );
}

#[test]
fn license_files_must_exist_for_metadata_2_4() {
    let info =
        "Metadata-Version: 2.4\nName: demo_pkg\nVersion: 1.0\nLicense-File: LICENSES/MIT.txt\n";
    let message = refused(tar_gz(&[Member::File(
        "demo_pkg-1.0/PKG-INFO",
        info.as_bytes(),
    )]));
    assert!(
        message.contains(
            "License-File 'LICENSES/MIT.txt' is listed in the metadata but \
                          demo_pkg-1.0/LICENSES/MIT.txt is not in the archive"
        ),
        "{message}"
    );
    let bytes = tar_gz(&[
        Member::File("demo_pkg-1.0/PKG-INFO", info.as_bytes()),
        Member::File("demo_pkg-1.0/LICENSES/MIT.txt", b"MIT"),
    ]);
    assert!(inspect(bytes).is_ok());
}

#[test]
fn reliability_for_pep658_is_reported() {
    let info = "Metadata-Version: 2.2\nName: demo_pkg\nVersion: 1.0\n";
    let bytes = tar_gz(&[Member::File("demo_pkg-1.0/PKG-INFO", info.as_bytes())]);
    assert!(inspect(bytes).unwrap().metadata.is_reliable_for_sdist());
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
        fn never_panics_on_arbitrary_gzipped_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
            let _ = inspect(gzip(&bytes));
        }

        #[test]
        fn never_panics_on_a_mutated_tarball(
            flips in proptest::collection::vec((any::<proptest::sample::Index>(), any::<u8>()), 1..8),
        ) {
            let info = pkg_info();
            let long = format!("{TOP}/{}/deep.py", "d".repeat(120));
            let mut tar = tar_bytes(&[
                Member::Dir("demo_pkg-1.0"),
                Member::File("demo_pkg-1.0/PKG-INFO", info.as_bytes()),
                Member::File(&long, b"x"),
                Member::Symlink("demo_pkg-1.0/l", "PKG-INFO"),
            ]);
            for (index, value) in flips {
                let at = index.index(tar.len());
                tar[at] = value;
            }
            let _ = inspect(gzip(&tar));
        }
    }
}
