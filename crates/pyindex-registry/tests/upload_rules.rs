//! The upload rules, called directly: validation order, each refusal's message, nothing stored
//! after a refusal, real-world filename forms, and one file per distribution.

mod support;

use pyindex_registry::{AccessMode, Published, Rejection};
use support::{Dist, Index, Upload};

/// One fault an upload can have, with the refusal it must get.
struct Fault {
    what: &'static str,
    apply: fn(Upload) -> Upload,
    rejection: Rejection,
    words: &'static [&'static str],
}

/// The faults in the order the registry checks them. Faults touching the same part of the
/// request are applied latest first, so an earlier fault always shows in a combined request.
const ORDERED: &[Fault] = &[
    Fault {
        what: "action",
        apply: |u| u.set(":action", "submit"),
        rejection: Rejection::Gone,
        words: &[
            "':action' 'submit' is no longer supported",
            ":action=file_upload",
        ],
    },
    Fault {
        what: "content present",
        apply: Upload::without_content,
        rejection: Rejection::BadRequest,
        words: &["Upload payload does not have a file."],
    },
    Fault {
        what: "form claim",
        apply: |u| u.set("filetype", "bdist_egg"),
        rejection: Rejection::BadRequest,
        words: &["Unknown filetype 'bdist_egg'", "'bdist_wheel' or 'sdist'"],
    },
    Fault {
        what: "authorization",
        apply: Upload::anonymous,
        rejection: Rejection::Unauthorized,
        words: &["Publishing to this index requires credentials", "__token__"],
    },
    Fault {
        what: "filename",
        apply: |u| u.filename("other-2.0-py3-none-any.whl"),
        rejection: Rejection::BadRequest,
        words: &["other-2.0-py3-none-any.whl", "is not the project 'ladder'"],
    },
    Fault {
        what: "form version vs filename version",
        apply: |u| u.set("version", "2.1"),
        rejection: Rejection::BadRequest,
        words: &["The version in the upload form (2.1) does not match the version in the filename"],
    },
    Fault {
        what: "kind",
        apply: |u| u.set("filetype", "sdist"),
        rejection: Rejection::BadRequest,
        words: &[
            "Invalid file extension for filetype 'sdist'",
            "is not a source distribution",
        ],
    },
    Fault {
        what: "digests",
        apply: |u| u.claimed_sha256(&"0".repeat(64)),
        rejection: Rejection::BadRequest,
        words: &["The digest supplied does not match a digest calculated from the uploaded file."],
    },
    Fault {
        what: "already-published distribution",
        apply: |u| {
            u.set("version", "1.0")
                .filename("ladder-1.0-py3-none-any.whl")
                .bytes(Dist::new("ladder", "1.0").payload("other bytes").wheel())
        },
        rejection: Rejection::Conflict,
        words: &[
            "File already exists ('ladder-1.0-py3-none-any.whl'",
            "Published files are immutable: upload a new version instead.",
        ],
    },
    Fault {
        what: "archive inspection",
        apply: |u| u.bytes(b"not a zip archive at all".to_vec()),
        rejection: Rejection::BadRequest,
        words: &["Invalid distribution file", "not a valid zip archive"],
    },
    Fault {
        what: "agreement with metadata",
        apply: |u| {
            u.bytes(
                Dist::new("ladder", "2.0")
                    .metadata("unrelated", "2.0")
                    .wheel(),
            )
        },
        rejection: Rejection::BadRequest,
        words: &[
            "The name in the upload form ('ladder') does not match the name in the file's metadata ('unrelated')",
        ],
    },
];

/// An index where `alice` owns `ladder` (1.0 published), and alice's valid upload of 2.0.
async fn ladder() -> (Index, Upload) {
    let index = Index::new(AccessMode::Upload).await;
    let alice = index.user("alice").await;
    let v1 = Dist::new("ladder", "1.0").wheel();
    index
        .publish(Upload::wheel("ladder", "1.0", "ladder-1.0-py3-none-any.whl", v1).by(&alice))
        .await;
    let v2 = Dist::new("ladder", "2.0").wheel();
    let base = Upload::wheel("ladder", "2.0", "ladder-2.0-py3-none-any.whl", v2).by(&alice);
    index.changes.take();
    (index, base)
}

/// Sends `upload`, expects `fault`'s refusal, and checks that nothing was stored or reported.
async fn expect_refusal(index: &Index, upload: Upload, fault: &Fault) {
    let blobs = index.blob_count();
    let publishes = index.audited("publish").await.len();
    let context = format!("fault: {}", fault.what);
    let message = support::assert_refused(index.upload(upload).await, fault.rejection, fault.words);
    let projects = index.registry.catalog().projects().await.unwrap();
    let names: Vec<_> = projects.into_iter().map(|p| p.name).collect();
    assert_eq!(names, ["ladder"], "{context}: {message}");
    assert_eq!(
        index.filenames("ladder").await,
        ["ladder-1.0-py3-none-any.whl"],
        "{context}"
    );
    assert_eq!(index.audited("publish").await.len(), publishes, "{context}");
    assert_eq!(index.blob_count(), blobs, "{context}");
    assert_eq!(
        index.spooled_count(),
        0,
        "{context}: the spool keeps nothing"
    );
    assert_eq!(index.changes.take(), [], "{context}");
}

#[tokio::test]
async fn the_valid_base_upload_publishes() {
    let (index, base) = ladder().await;
    assert_eq!(
        index.upload(base).await.unwrap(),
        Published::Added {
            filename: "ladder-2.0-py3-none-any.whl".to_owned(),
            project: "ladder".to_owned(),
        }
    );
    assert_eq!(
        index.filenames("ladder").await,
        ["ladder-1.0-py3-none-any.whl", "ladder-2.0-py3-none-any.whl"]
    );
}

#[tokio::test]
async fn each_fault_alone_is_refused_with_its_message_and_stores_nothing() {
    let (index, base) = ladder().await;
    for fault in ORDERED {
        expect_refusal(&index, (fault.apply)(base.clone()), fault).await;
    }
}

#[tokio::test]
async fn several_faults_report_the_first_in_validation_order() {
    let (index, base) = ladder().await;
    for first in 0..ORDERED.len() {
        let upload = ORDERED[first..]
            .iter()
            .rev()
            .fold(base.clone(), |u, fault| (fault.apply)(u));
        expect_refusal(&index, upload, &ORDERED[first]).await;
    }
}

#[tokio::test]
async fn other_faults_get_their_own_messages() {
    let (index, base) = ladder().await;
    let cases: &[Fault] = &[
        Fault {
            what: "missing action",
            apply: |mut u| {
                u.fields.retain(|(k, _)| k != ":action");
                u
            },
            rejection: Rejection::BadRequest,
            words: &["The ':action' field is missing"],
        },
        Fault {
            what: "unknown action",
            apply: |u| u.set(":action", "remove_pkg"),
            rejection: Rejection::BadRequest,
            words: &["Unknown ':action' 'remove_pkg'"],
        },
        Fault {
            what: "protocol version",
            apply: |u| u.set("protocol_version", "2"),
            rejection: Rejection::BadRequest,
            words: &["Unknown protocol version."],
        },
        Fault {
            what: "missing name",
            apply: |u| u.set("name", ""),
            rejection: Rejection::BadRequest,
            words: &["The required field 'name' is missing."],
        },
        Fault {
            what: "wheel without pyversion",
            apply: |u| u.set("pyversion", ""),
            rejection: Rejection::BadRequest,
            words: &["The field 'pyversion' is required for bdist_wheel uploads"],
        },
        Fault {
            what: "malformed digest",
            apply: |u| u.claimed_sha256("abc"),
            rejection: Rejection::BadRequest,
            words: &["Invalid sha256_digest: expected 64 hexadecimal characters."],
        },
        Fault {
            what: "metadata version disagrees with the form",
            apply: |u| {
                u.bytes(
                    Dist::new("ladder", "2.0")
                        .metadata("ladder", "2.0.1")
                        .wheel(),
                )
            },
            rejection: Rejection::BadRequest,
            words: &[
                "The version in the upload form (2.0) does not match the version in the file's metadata (2.0.1).",
            ],
        },
        Fault {
            what: "wheel without dist-info for its filename",
            apply: |u| u.bytes(Dist::new("ladder", "3.0").wheel()),
            rejection: Rejection::BadRequest,
            words: &["does not contain the required METADATA file", "ladder-2.0"],
        },
    ];
    for fault in cases {
        expect_refusal(&index, (fault.apply)(base.clone()), fault).await;
    }
}

#[tokio::test]
async fn a_publish_is_audited_when_the_call_returns() {
    let (index, base) = ladder().await;
    let sha256 = pyindex_storage::Hasher::digest(base.bytes.as_ref().unwrap()).sha256;
    let before = index.audited("publish").await.len();
    index.publish(base).await;
    let publishes = index.audited("publish").await;
    assert_eq!(publishes.len(), before + 1);
    let record = publishes.last().unwrap();
    assert_eq!(record.actor, "alice");
    assert_eq!(record.subject, "ladder-2.0-py3-none-any.whl");
    assert_eq!(record.address.as_deref(), Some(support::ADDRESS));
    assert_eq!(record.detail, Some(format!("sha256 {sha256}")));
}

#[tokio::test]
async fn a_dotted_wheel_name_is_accepted_as_spelled() {
    let index = Index::new(AccessMode::Open).await;
    let bytes = Dist::new("Foo.Bar", "1.0").wheel();
    let filename = "Foo.Bar-1.0-py3-none-any.whl";
    assert_eq!(
        index
            .upload(Upload::wheel("Foo.Bar", "1.0", filename, bytes))
            .await
            .unwrap(),
        Published::Added {
            filename: filename.to_owned(),
            project: "foo-bar".to_owned(),
        }
    );
    assert_eq!(index.filenames("foo-bar").await, [filename]);
    let project = index.registry.catalog().project("foo-bar").await.unwrap();
    assert_eq!(project.unwrap().display_name, "Foo.Bar");
}

#[tokio::test]
async fn a_legacy_sdist_name_and_a_zip_sdist_are_accepted() {
    let index = Index::new(AccessMode::Open).await;
    let tar_gz = Dist::new("foo-bar", "1.0").sdist();
    index
        .publish(Upload::sdist(
            "foo-bar",
            "1.0",
            "foo-bar-1.0.tar.gz",
            tar_gz,
        ))
        .await;
    let zip = Dist::new("foo-bar", "1.1").zip_sdist();
    index
        .publish(Upload::sdist("foo-bar", "1.1", "foo-bar-1.1.zip", zip))
        .await;
    assert_eq!(
        index.filenames("foo-bar").await,
        ["foo-bar-1.0.tar.gz", "foo-bar-1.1.zip"]
    );
}

#[tokio::test]
async fn another_spelling_with_identical_bytes_is_already_present() {
    let index = Index::new(AccessMode::Open).await;
    let bytes = Dist::new("Foo.Bar", "1.0").wheel();
    let first = "Foo.Bar-1.0-py3-none-any.whl";
    index
        .publish(Upload::wheel("Foo.Bar", "1.0", first, bytes.clone()))
        .await;
    index.changes.take();
    let blobs = index.blob_count();
    let again = Upload::wheel("foo_bar", "1.0", "foo_bar-1.0-py3-none-any.whl", bytes);
    assert_eq!(
        index.upload(again).await.unwrap(),
        Published::AlreadyPresent {
            filename: first.to_owned()
        }
    );
    assert_eq!(index.filenames("foo-bar").await, [first]);
    assert_eq!(index.audited("publish").await.len(), 1);
    assert_eq!(index.blob_count(), blobs);
    assert_eq!(index.changes.take(), []);

    let sdist = Dist::new("foo-bar", "1.0").sdist();
    index
        .publish(Upload::sdist(
            "foo-bar",
            "1.0",
            "foo-bar-1.0.tar.gz",
            sdist.clone(),
        ))
        .await;
    let again = Upload::sdist("foo.bar", "1.0", "foo_bar-1.0.tar.gz", sdist);
    assert_eq!(
        index.upload(again).await.unwrap(),
        Published::AlreadyPresent {
            filename: "foo-bar-1.0.tar.gz".to_owned()
        }
    );
}

#[tokio::test]
async fn another_spelling_with_other_bytes_is_a_conflict_naming_the_existing_file() {
    let index = Index::new(AccessMode::Open).await;
    let first = "Foo.Bar-1.0-py3-none-any.whl";
    index
        .publish(Upload::wheel(
            "Foo.Bar",
            "1.0",
            first,
            Dist::new("Foo.Bar", "1.0").wheel(),
        ))
        .await;
    let other = Dist::new("foo_bar", "1.0").payload("changed").wheel();
    let blobs = index.blob_count();
    let result = index
        .upload(Upload::wheel(
            "foo-bar",
            "1.0",
            "foo_bar-1.0-py3-none-any.whl",
            other,
        ))
        .await;
    support::assert_refused(
        result,
        Rejection::Conflict,
        &[
            "File already exists ('Foo.Bar-1.0-py3-none-any.whl'",
            "another spelling of the same distribution as 'foo_bar-1.0-py3-none-any.whl'",
            "upload a new version instead",
        ],
    );
    assert_eq!(index.filenames("foo-bar").await, [first]);
    assert_eq!(index.audited("publish").await.len(), 1);
    assert_eq!(index.blob_count(), blobs);
}

#[tokio::test]
async fn the_same_filename_with_other_bytes_is_a_conflict() {
    let index = Index::new(AccessMode::Open).await;
    let filename = "pkg-1.0.tar.gz";
    let sdist = Dist::new("pkg", "1.0").sdist();
    index
        .publish(Upload::sdist("pkg", "1.0", filename, sdist.clone()))
        .await;
    let sha256 = pyindex_storage::Hasher::digest(&sdist).sha256;
    let other = Dist::new("pkg", "1.0").payload("changed").sdist();
    let message = support::assert_refused(
        index
            .upload(Upload::sdist("pkg", "1.0", filename, other))
            .await,
        Rejection::Conflict,
        &["File already exists ('pkg-1.0.tar.gz'", &sha256],
    );
    assert!(!message.contains("another spelling"), "{message}");
}

#[tokio::test]
async fn equal_versions_are_one_distribution() {
    let index = Index::new(AccessMode::Open).await;
    let first = "demo-1.0-py3-none-any.whl";
    index
        .publish(Upload::wheel(
            "demo",
            "1.0",
            first,
            Dist::new("demo", "1.0").wheel(),
        ))
        .await;
    let longer = Dist::new("demo", "1.0.0").payload("other").wheel();
    support::assert_refused(
        index
            .upload(Upload::wheel(
                "demo",
                "1.0.0",
                "demo-1.0.0-py3-none-any.whl",
                longer,
            ))
            .await,
        Rejection::Conflict,
        &[
            "File already exists ('demo-1.0-py3-none-any.whl'",
            "another spelling of the same distribution as 'demo-1.0.0-py3-none-any.whl'",
        ],
    );
    assert_eq!(index.filenames("demo").await, [first]);
}

#[tokio::test]
async fn a_release_has_one_source_distribution() {
    let index = Index::new(AccessMode::Open).await;
    index
        .publish(Upload::sdist(
            "foo-bar",
            "1.0",
            "foo_bar-1.0.tar.gz",
            Dist::new("foo-bar", "1.0").sdist(),
        ))
        .await;
    for (version, filename) in [
        ("1.0", "foo_bar-1.0.zip"),
        ("1.0.0", "foo_bar-1.0.0.tar.gz"),
    ] {
        let bytes = if filename.ends_with(".zip") {
            Dist::new("foo-bar", version).zip_sdist()
        } else {
            Dist::new("foo-bar", version).sdist()
        };
        support::assert_refused(
            index
                .upload(Upload::sdist("foo-bar", version, filename, bytes))
                .await,
            Rejection::Conflict,
            &[
                "File already exists ('foo_bar-1.0.tar.gz'",
                "a release has one source distribution",
            ],
        );
    }
    assert_eq!(index.filenames("foo-bar").await, ["foo_bar-1.0.tar.gz"]);
}
