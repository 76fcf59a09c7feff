//! The catalog's behaviour, written once against the [`Catalog`] and [`Accounts`] traits and run
//! on every engine: an engine's test module opens a fresh database and calls
//! [`catalog_suite!`](crate::catalog_suite) with the expression that opens it.
//!
//! Compiled for this crate's tests, and for other crates with the `test-suite` feature (as a
//! dev-dependency feature), so an engine living elsewhere runs the same tests unchanged. The
//! calling crate needs `tokio` (with its test macro) among its dev-dependencies.

use time::OffsetDateTime;

use crate::{
    Accounts, AddOutcome, AuditEntry, CachedBlob, Catalog, Change, FetchedFile, NewFile, NewToken,
    ProjectStatus, ProjectSummary, ReleaseMetadata, Role, StoredFile, Uploader, UpstreamBlock,
    UpstreamFetch, UpstreamIndex, Yank,
};

/// Generates one `#[tokio::test]` per suite function, each on a database opened by `$open`
/// (an expression giving a future of `(guard, catalog)`; the catalog implements [`Catalog`],
/// [`Accounts`] and `Clone`).
///
/// `catalog_suite!(optional $open)` is the same for an engine that needs a server the test
/// machine may lack: `$open` gives a future of `Option<(guard, catalog)>`, and `None` skips the
/// test (the opener says why, where it cannot be missed).
#[macro_export]
macro_rules! catalog_suite {
    (optional $open:expr) => {
        $crate::catalog_suite!(@names (@optional $open));
    };
    ($open:expr) => {
        $crate::catalog_suite!(@names (@required $open));
    };
    (@names ($($how:tt)*)) => {
        $crate::catalog_suite!(@tests ($($how)*);
            add_list_and_read_back,
            one_distribution_is_one_file_whatever_its_spelling,
            refused_writes_change_nothing,
            uploaders_without_rights_learn_nothing_of_existing_files,
            closed_projects_refuse_before_naming_existing_files,
            files_of_equal_versions_share_a_release_and_its_yank,
            concurrent_conflicting_adds_have_one_winner,
            changes_name_what_they_touched,
            users_are_unique_and_removable,
            tokens_round_trip_and_revoke_only_for_their_owner,
            first_uploader_owns_the_project_and_others_are_refused,
            every_write_is_audited_with_its_change,
            audit_log_keeps_the_newest_entries_in_order,
            stored_files_name_every_blob_whatever_the_status,
            upstream_blocks_are_keyed_audited_and_change_their_project,
            the_fetch_log_keeps_the_first_fetch_and_counts_fetches,
            a_fetch_records_its_blob_and_log_entry_and_uses_batch,
            project_names_include_reserved_projects,
            evicting_a_cached_file_is_a_change,
        );
    };
    (@tests (@required $open:expr); $($name:ident,)*) => {
        $(
            #[tokio::test]
            async fn $name() {
                let (_guard, catalog) = $open.await;
                $crate::suite::$name(&catalog).await;
            }
        )*
    };
    (@tests (@optional $open:expr); $($name:ident,)*) => {
        $(
            #[tokio::test]
            async fn $name() {
                let Some((_guard, catalog)) = $open.await else {
                    return;
                };
                $crate::suite::$name(&catalog).await;
            }
        )*
    };
}
pub use crate::catalog_suite;

/// An audit record for tests.
pub fn audit(action: &str, subject: &str) -> AuditEntry {
    AuditEntry {
        at: OffsetDateTime::now_utc(),
        actor: "cli".into(),
        action: action.into(),
        subject: subject.into(),
        address: None,
        detail: None,
    }
}

/// A file of the project its (well-formed) filename names, with that filename's distribution key.
pub fn new_file(filename: &str, sha256: &str) -> NewFile {
    let parsed = pyindex_packaging::parse_filename(filename).unwrap();
    NewFile {
        project: parsed.project(),
        display_name: parsed.name_part.clone(),
        version: parsed.version.to_string(),
        canonical_version: pyindex_packaging::canonical_version(&parsed.version),
        filename: filename.into(),
        dist_key: parsed.identity(),
        kind: parsed.kind(),
        size: 3,
        sha256: sha256.into(),
        md5: "m".into(),
        blake2_256: "b".into(),
        requires_python: Some(">=3.8".into()),
        metadata_sha256: Some("meta".into()),
        release: ReleaseMetadata {
            summary: Some("s".into()),
            requires_dist: vec!["a>=1".into()],
            ..ReleaseMetadata::default()
        },
        uploaded: OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap(),
        uploader: None,
    }
}

/// Publishes `filename` with content `sha256` and asserts it was added.
pub async fn publish(catalog: &impl Catalog, filename: &str, sha256: &str) {
    let outcome = catalog
        .add_file(&new_file(filename, sha256), &audit("publish", filename))
        .await
        .unwrap();
    assert!(matches!(outcome, AddOutcome::Added { .. }), "{outcome:?}");
}

async fn files_of(catalog: &impl Catalog, project: &str) -> Vec<String> {
    catalog
        .project_files(project)
        .await
        .unwrap()
        .map(|p| p.files.into_iter().map(|f| f.filename).collect())
        .unwrap_or_default()
}

async fn user_id(accounts: &impl Accounts, name: &str) -> i64 {
    accounts.user(name).await.unwrap().unwrap().id
}

pub async fn add_list_and_read_back(catalog: &impl Catalog) {
    let file = new_file("Shared_Pkg-0.1.0-py3-none-any.whl", "aa");
    let outcome = catalog
        .add_file(&file, &audit("publish", &file.filename))
        .await
        .unwrap();
    assert_eq!(outcome, AddOutcome::Added { new_project: true });
    assert_eq!(
        catalog.projects().await.unwrap(),
        vec![ProjectSummary {
            name: "shared-pkg".into(),
            display_name: "Shared_Pkg".into(),
            status: crate::ProjectStatus::Active,
            status_reason: None,
        }]
    );
    let listed = catalog.project_files("shared-pkg").await.unwrap().unwrap();
    assert_eq!(listed.files.len(), 1);
    let record = &listed.files[0];
    assert_eq!(record.filename, "Shared_Pkg-0.1.0-py3-none-any.whl");
    assert_eq!(record.version, "0.1.0");
    assert_eq!(record.uploaded, file.uploaded);
    assert_eq!(record.requires_python.as_deref(), Some(">=3.8"));
    assert_eq!(
        catalog.file(&file.filename).await.unwrap().as_ref(),
        Some(record)
    );
    assert_eq!(
        catalog.distribution(&file.dist_key).await.unwrap().as_ref(),
        Some(record)
    );
    assert!(catalog.project_files("nope").await.unwrap().is_none());
    let second = new_file("Shared_Pkg-0.2.0-py3-none-any.whl", "bb");
    let outcome = catalog
        .add_file(&second, &audit("publish", &second.filename))
        .await
        .unwrap();
    assert_eq!(outcome, AddOutcome::Added { new_project: false });
}

pub async fn one_distribution_is_one_file_whatever_its_spelling(catalog: &impl Catalog) {
    publish(
        catalog,
        "MarkupSafe-2.1.5-cp311-cp311-linux_x86_64.whl",
        "aa",
    )
    .await;
    let lower = new_file("markupsafe-2.1.5-cp311-cp311-linux_x86_64.whl", "aa");
    assert_eq!(
        catalog
            .add_file(&lower, &audit("publish", &lower.filename))
            .await
            .unwrap(),
        AddOutcome::AlreadyPresent {
            filename: "MarkupSafe-2.1.5-cp311-cp311-linux_x86_64.whl".into()
        }
    );
    let other = new_file("markupsafe-2.1.5-cp311-cp311-linux_x86_64.whl", "bb");
    assert_eq!(
        catalog
            .add_file(&other, &audit("publish", &other.filename))
            .await
            .unwrap(),
        AddOutcome::Conflict {
            filename: "MarkupSafe-2.1.5-cp311-cp311-linux_x86_64.whl".into(),
            existing_sha256: "aa".into()
        }
    );
    assert_eq!(
        files_of(catalog, "markupsafe").await,
        ["MarkupSafe-2.1.5-cp311-cp311-linux_x86_64.whl"]
    );
    publish(
        catalog,
        "markupsafe-2.1.5-cp312-cp312-linux_x86_64.whl",
        "cc",
    )
    .await;
    publish(catalog, "MarkupSafe-2.1.5.tar.gz", "dd").await;
    // One release, one source distribution: a `.zip` beside the `.tar.gz` is the same one.
    let zip = new_file("MarkupSafe-2.1.5.zip", "ee");
    assert_eq!(
        catalog
            .add_file(&zip, &audit("publish", &zip.filename))
            .await
            .unwrap(),
        AddOutcome::Conflict {
            filename: "MarkupSafe-2.1.5.tar.gz".into(),
            existing_sha256: "dd".into()
        }
    );
    // Equal versions are one release: 2.1.5.0 is 2.1.5.
    let longer = new_file("markupsafe-2.1.5.0-cp311-cp311-linux_x86_64.whl", "ff");
    assert!(matches!(
        catalog
            .add_file(&longer, &audit("publish", &longer.filename))
            .await
            .unwrap(),
        AddOutcome::Conflict { .. }
    ));
    assert_eq!(files_of(catalog, "markupsafe").await.len(), 3);
}

pub async fn refused_writes_change_nothing<C: Catalog + Accounts>(catalog: &C) {
    publish(catalog, "shared_pkg-0.1.0-py3-none-any.whl", "aa").await;
    let seq = catalog.generation().await.unwrap();
    let audited = catalog.audit(100).await.unwrap().len();
    let same = new_file("shared_pkg-0.1.0-py3-none-any.whl", "aa");
    assert!(matches!(
        catalog
            .add_file(&same, &audit("publish", "x"))
            .await
            .unwrap(),
        AddOutcome::AlreadyPresent { .. }
    ));
    let other = new_file("shared_pkg-0.1.0-py3-none-any.whl", "bb");
    assert!(matches!(
        catalog
            .add_file(&other, &audit("publish", "x"))
            .await
            .unwrap(),
        AddOutcome::Conflict { .. }
    ));
    assert!(
        !catalog
            .set_yank("shared-pkg", "9", Yank::NotYanked, &audit("unyank", "x"))
            .await
            .unwrap()
    );
    assert_eq!(catalog.generation().await.unwrap(), seq);
    assert_eq!(catalog.audit(100).await.unwrap().len(), audited);
}

pub async fn files_of_equal_versions_share_a_release_and_its_yank(catalog: &impl Catalog) {
    publish(catalog, "shared_pkg-1.0.0-py3-none-any.whl", "aa").await;
    publish(catalog, "shared_pkg-1.0.tar.gz", "bb").await;
    let yank = |state| async move {
        catalog
            .set_yank("shared-pkg", "1", state, &audit("yank", "shared-pkg 1"))
            .await
            .unwrap()
    };
    assert!(yank(Yank::Yanked(Some("broken".into()))).await);
    let files = catalog.project_files("shared-pkg").await.unwrap().unwrap();
    assert!(
        files
            .files
            .iter()
            .all(|f| f.yank == Yank::Yanked(Some("broken".into())))
    );
    assert!(yank(Yank::NotYanked).await);
    let files = catalog.project_files("shared-pkg").await.unwrap().unwrap();
    assert!(files.files.iter().all(|f| f.yank == Yank::NotYanked));
}

pub async fn concurrent_conflicting_adds_have_one_winner<C: Catalog + Clone + 'static>(
    catalog: &C,
) {
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let catalog = catalog.clone();
            tokio::spawn(async move {
                // Two spellings of one distribution, with different content.
                let filename = if i % 2 == 0 {
                    "shared_pkg-0.1.0-py3-none-any.whl"
                } else {
                    "Shared.Pkg-0.1.0-py3-none-any.whl"
                };
                let file = new_file(filename, &format!("{i:02}"));
                catalog.add_file(&file, &audit("publish", filename)).await
            })
        })
        .collect();
    let mut added = 0;
    for task in tasks {
        if matches!(task.await.unwrap().unwrap(), AddOutcome::Added { .. }) {
            added += 1;
        }
    }
    assert_eq!(added, 1);
    assert_eq!(files_of(catalog, "shared-pkg").await.len(), 1);
}

pub async fn changes_name_what_they_touched<C: Catalog + Accounts>(catalog: &C) {
    let start = catalog.generation().await.unwrap();
    publish(catalog, "a-1.0-py3-none-any.whl", "aa").await;
    publish(catalog, "a-1.1-py3-none-any.whl", "bb").await;
    catalog
        .set_yank("a", "1.1", Yank::Yanked(None), &audit("yank", "a 1.1"))
        .await
        .unwrap();
    catalog
        .add_user("alice", "h", false, &audit("user.add", "alice"))
        .await
        .unwrap();
    let read = catalog.changes_since(start).await.unwrap();
    assert_eq!(
        read.changes,
        [
            Change::Project("a".into()),
            Change::ProjectList,
            Change::Project("a".into()),
            Change::Project("a".into()),
            Change::Account("alice".into()),
        ]
    );
    assert_eq!(read.seq, catalog.generation().await.unwrap());
    let again = catalog.changes_since(read.seq).await.unwrap();
    assert!(again.changes.is_empty());
    assert_eq!(again.seq, read.seq);
}

pub async fn users_are_unique_and_removable(c: &impl Accounts) {
    let a = || audit("user", "alice");
    assert!(c.add_user("alice", "h1", true, &a()).await.unwrap());
    assert!(!c.add_user("alice", "h2", false, &a()).await.unwrap());
    assert_eq!(c.user_count().await.unwrap(), 1);
    let alice = c.user("alice").await.unwrap().unwrap();
    assert!(alice.is_admin);
    assert_eq!(alice.password_hash, "h1");
    assert!(c.set_password("alice", "h3", &a()).await.unwrap());
    assert_eq!(c.user("alice").await.unwrap().unwrap().password_hash, "h3");
    assert!(!c.set_password("nobody", "h", &a()).await.unwrap());
    assert!(c.remove_user("alice", &a()).await.unwrap());
    assert!(c.user("alice").await.unwrap().is_none());
}

pub async fn tokens_round_trip_and_revoke_only_for_their_owner(c: &impl Accounts) {
    let a = || audit("token", "t");
    c.add_user("alice", "h", false, &a()).await.unwrap();
    c.add_user("bob", "h", false, &a()).await.unwrap();
    let new_token = NewToken {
        public_id: "0123456789abcdef".into(),
        secret_hash: "hash".into(),
        user_id: user_id(c, "alice").await,
        projects: Some(vec!["shared".into()]),
        read_only: true,
        description: Some("ci".into()),
        created: OffsetDateTime::now_utc(),
        expires: None,
    };
    let id = c.add_token(&new_token, &a()).await.unwrap();
    let token = c.token("0123456789abcdef").await.unwrap().unwrap();
    assert_eq!(c.token_by_id(id).await.unwrap().as_ref(), Some(&token));
    assert_eq!((token.id, token.user_name.as_str()), (id, "alice"));
    assert_eq!(token.projects, Some(vec!["shared".to_owned()]));
    assert!(token.read_only && token.revoked.is_none());
    assert!(
        !c.revoke_token(id, Some("bob"), &a()).await.unwrap(),
        "bob cannot revoke alice's token"
    );
    assert!(c.revoke_token(id, Some("alice"), &a()).await.unwrap());
    let revoked = c.token("0123456789abcdef").await.unwrap().unwrap();
    assert!(revoked.revoked.is_some());
    assert!(
        !c.revoke_token(id, None, &a()).await.unwrap(),
        "already revoked"
    );
    assert_eq!(c.tokens(Some("bob")).await.unwrap().len(), 0);
    assert_eq!(c.tokens(None).await.unwrap().len(), 1);
}

pub async fn first_uploader_owns_the_project_and_others_are_refused<C: Catalog + Accounts>(c: &C) {
    let a = || audit("user.add", "x");
    c.add_user("alice", "h", false, &a()).await.unwrap();
    c.add_user("bob", "h", false, &a()).await.unwrap();
    c.add_user("root", "h", true, &a()).await.unwrap();
    let (alice, bob, root) = (
        user_id(c, "alice").await,
        user_id(c, "bob").await,
        user_id(c, "root").await,
    );
    let add = |filename: &'static str, user_id| async move {
        let mut file = new_file(filename, filename);
        file.uploader = Some(Uploader { user_id });
        c.add_file(&file, &audit("publish", filename))
            .await
            .unwrap()
    };
    let added = AddOutcome::Added { new_project: false };
    assert_eq!(
        add("shared-1.0-py3-none-any.whl", alice).await,
        AddOutcome::Added { new_project: true }
    );
    assert_eq!(c.role("shared", alice).await.unwrap(), Some(Role::Owner));
    assert_eq!(
        add("shared-1.1-py3-none-any.whl", bob).await,
        AddOutcome::Forbidden
    );
    assert_eq!(files_of(c, "shared").await, ["shared-1.0-py3-none-any.whl"]);
    assert_eq!(add("shared-1.2-py3-none-any.whl", root).await, added);
    let role = |role| async move {
        c.set_role("shared", "bob", role, &audit("role", "shared bob"))
            .await
            .unwrap()
    };
    assert!(role(Some(Role::Maintainer)).await);
    assert_eq!(add("shared-1.1-py3-none-any.whl", bob).await, added);
    assert_eq!(
        c.roles("shared").await.unwrap(),
        vec![
            ("alice".to_owned(), Role::Owner),
            ("bob".to_owned(), Role::Maintainer)
        ]
    );
    assert!(role(None).await);
    assert!(
        !c.set_role("nope", "bob", Some(Role::Owner), &audit("role", "x"))
            .await
            .unwrap()
    );
}

/// Publishes as `user_id` the file `filename` with content `sha256`.
async fn add_as(c: &impl Catalog, filename: &str, sha256: &str, user_id: i64) -> AddOutcome {
    let mut file = new_file(filename, sha256);
    file.uploader = Some(Uploader { user_id });
    c.add_file(&file, &audit("publish", filename))
        .await
        .unwrap()
}

pub async fn uploaders_without_rights_learn_nothing_of_existing_files<C: Catalog + Accounts>(
    c: &C,
) {
    let a = || audit("user.add", "x");
    c.add_user("alice", "h", false, &a()).await.unwrap();
    c.add_user("mallory", "h", false, &a()).await.unwrap();
    let (alice, mallory) = (user_id(c, "alice").await, user_id(c, "mallory").await);
    let wheel = "shared-1.0-py3-none-any.whl";
    assert!(matches!(
        add_as(c, wheel, "aa", alice).await,
        AddOutcome::Added { .. }
    ));
    // Neither whether the file exists nor its content is told to someone who may not publish.
    for sha256 in ["aa", "bb"] {
        assert_eq!(
            add_as(c, wheel, sha256, mallory).await,
            AddOutcome::Forbidden
        );
        assert_eq!(
            add_as(c, "Shared-1.0.0-py3-none-any.whl", sha256, mallory).await,
            AddOutcome::Forbidden
        );
    }
    c.remove_user("alice", &audit("user.remove", "alice"))
        .await
        .unwrap();
    assert_eq!(
        add_as(c, wheel, "aa", alice).await,
        AddOutcome::Forbidden,
        "a removed account is refused"
    );
}

pub async fn closed_projects_refuse_before_naming_existing_files(c: &impl Catalog) {
    publish(c, "shared-1.0-py3-none-any.whl", "aa").await;
    let mut previous = ProjectStatus::Active;
    for status in [ProjectStatus::Archived, ProjectStatus::Quarantined] {
        assert!(
            c.set_project_status("shared", previous, status, None, &audit("status", "shared"))
                .await
                .unwrap()
        );
        previous = status;
        for sha256 in ["aa", "bb"] {
            let file = new_file("shared-1.0-py3-none-any.whl", sha256);
            assert_eq!(
                c.add_file(&file, &audit("publish", "x")).await.unwrap(),
                AddOutcome::StatusRefuses {
                    status,
                    reason: None
                }
            );
        }
    }
}

pub async fn every_write_is_audited_with_its_change<C: Catalog + Accounts>(c: &C) {
    c.add_user("alice", "h", false, &audit("user.add", "alice"))
        .await
        .unwrap();
    publish(c, "a-1.0-py3-none-any.whl", "aa").await;
    c.set_yank("a", "1", Yank::Yanked(None), &audit("yank", "a 1"))
        .await
        .unwrap();
    c.set_role(
        "a",
        "alice",
        Some(Role::Owner),
        &audit("role.owner", "a alice"),
    )
    .await
    .unwrap();
    let id = c
        .add_token(
            &NewToken {
                public_id: "abcdefabcdefabcd".into(),
                secret_hash: "hash".into(),
                user_id: user_id(c, "alice").await,
                projects: None,
                read_only: false,
                description: None,
                created: OffsetDateTime::now_utc(),
                expires: None,
            },
            &audit("token.create", "abcdefabcdefabcd"),
        )
        .await
        .unwrap();
    c.revoke_token(id, None, &audit("token.revoke", "abcdefabcdefabcd"))
        .await
        .unwrap();
    c.set_password("alice", "h2", &audit("user.passwd", "alice"))
        .await
        .unwrap();
    c.remove_user("alice", &audit("user.remove", "alice"))
        .await
        .unwrap();
    let actions: Vec<String> = c
        .audit(100)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert_eq!(
        actions,
        [
            "user.add",
            "publish",
            "yank",
            "role.owner",
            "token.create",
            "token.revoke",
            "user.passwd",
            "user.remove"
        ]
    );
}

pub async fn audit_log_keeps_the_newest_entries_in_order(c: &impl Accounts) {
    for i in 0..5 {
        let name = format!("s{i}");
        c.add_user(&name, "h", false, &audit("user.add", &name))
            .await
            .unwrap();
    }
    let last: Vec<String> = c
        .audit(2)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.subject)
        .collect();
    assert_eq!(last, vec!["s3", "s4"]);
}

pub async fn stored_files_name_every_blob_whatever_the_status(c: &impl Catalog) {
    assert!(c.stored_files().await.unwrap().is_empty());
    publish(c, "shared_pkg-0.2.0.tar.gz", "bb").await;
    let mut no_metadata = new_file("Shared_Pkg-0.1.0-py3-none-any.whl", "aa");
    no_metadata.metadata_sha256 = None;
    c.add_file(&no_metadata, &audit("publish", &no_metadata.filename))
        .await
        .unwrap();
    // Yanked and quarantined files are still stored, so still listed.
    c.set_yank(
        "shared-pkg",
        "0.2.0",
        Yank::Yanked(None),
        &audit("yank", "x"),
    )
    .await
    .unwrap();
    c.set_project_status(
        "shared-pkg",
        ProjectStatus::Active,
        ProjectStatus::Quarantined,
        None,
        &audit("status", "shared-pkg"),
    )
    .await
    .unwrap();
    assert_eq!(
        c.stored_files().await.unwrap(),
        vec![
            StoredFile {
                filename: "Shared_Pkg-0.1.0-py3-none-any.whl".into(),
                sha256: "aa".into(),
                size: 3,
                metadata_sha256: None,
            },
            StoredFile {
                filename: "shared_pkg-0.2.0.tar.gz".into(),
                sha256: "bb".into(),
                size: 3,
                metadata_sha256: Some("meta".into()),
            },
        ]
    );
}

fn block(project: &str, version: Option<&str>, reason: &str) -> UpstreamBlock {
    UpstreamBlock {
        project: project.into(),
        version: version.map(Into::into),
        version_key: version.unwrap_or_default().into(),
        reason: reason.into(),
        created: OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap(),
        created_by: "cli".into(),
    }
}

pub async fn upstream_blocks_are_keyed_audited_and_change_their_project<
    C: Catalog + Accounts + UpstreamIndex,
>(
    c: &C,
) {
    let before = c.generation().await.unwrap();
    let release = block("evil", Some("1.2"), "hijacked release");
    assert!(
        c.add_upstream_block(&release, &audit("upstream.block", "evil==1.2"))
            .await
            .unwrap()
    );
    assert!(
        c.add_upstream_block(
            &block("evil", None, "whole"),
            &audit("upstream.block", "evil")
        )
        .await
        .unwrap()
    );
    assert!(
        c.add_upstream_block(
            &block("other", Some("3"), "x"),
            &audit("upstream.block", "other==3")
        )
        .await
        .unwrap()
    );
    let again = block("evil", Some("1.2"), "confirmed malicious");
    assert!(
        !c.add_upstream_block(&again, &audit("upstream.block", "evil==1.2"))
            .await
            .unwrap(),
        "one block per key"
    );

    let evil = c.upstream_blocks(Some("evil")).await.unwrap();
    assert_eq!(
        evil,
        [block("evil", None, "whole"), again.clone()],
        "whole project first"
    );
    assert_eq!(c.upstream_blocks(None).await.unwrap().len(), 3);
    assert!(c.upstream_blocks(Some("nothing")).await.unwrap().is_empty());

    assert!(
        c.remove_upstream_block("evil", "", &audit("upstream.unblock", "evil"))
            .await
            .unwrap()
    );
    assert!(
        !c.remove_upstream_block("evil", "", &audit("upstream.unblock", "evil"))
            .await
            .unwrap()
    );
    assert_eq!(c.upstream_blocks(Some("evil")).await.unwrap(), [again]);

    let changes = c.changes_since(before).await.unwrap().changes;
    assert!(
        changes.iter().all(|ch| matches!(ch, Change::Project(_))),
        "{changes:?}"
    );
    assert_eq!(
        changes
            .iter()
            .filter(|ch| **ch == Change::Project("evil".into()))
            .count(),
        4
    );
    let actions: Vec<String> = c
        .audit(10)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert_eq!(
        actions.iter().filter(|a| *a == "upstream.block").count(),
        4,
        "{actions:?}"
    );
    assert_eq!(
        actions.iter().filter(|a| *a == "upstream.unblock").count(),
        1,
        "nothing lifted, nothing audited"
    );
}

fn fetch(filename: &str, sha256: &str, at: i64) -> UpstreamFetch {
    let at = OffsetDateTime::from_unix_timestamp(at).unwrap();
    UpstreamFetch {
        project: "up".into(),
        version: Some("1.0".into()),
        filename: filename.into(),
        sha256: sha256.into(),
        upload_time: Some(OffsetDateTime::from_unix_timestamp(1_000).unwrap()),
        first_fetched: at,
        last_fetched: at,
        fetches: 1,
        last_served: at,
    }
}

pub async fn the_fetch_log_keeps_the_first_fetch_and_counts_fetches<C: UpstreamIndex>(c: &C) {
    let sha = "a".repeat(64);
    c.record_upstream_fetch(&fetch("up-1.0.tar.gz", &sha, 2_000))
        .await
        .unwrap();
    c.record_upstream_fetch(&fetch("up-1.0-py3-none-any.whl", &"b".repeat(64), 2_500))
        .await
        .unwrap();
    // Fetched again after an eviction.
    c.record_upstream_fetch(&fetch("up-1.0.tar.gz", &sha, 3_000))
        .await
        .unwrap();
    c.add_upstream_blob(&CachedBlob {
        sha256: sha.clone(),
        size: 3,
        last_used: OffsetDateTime::now_utc(),
    })
    .await
    .unwrap();
    let served = OffsetDateTime::from_unix_timestamp(4_000).unwrap();
    assert!(c.use_upstream_blob(&sha, served).await.unwrap());

    let log = c.upstream_fetches("up").await.unwrap();
    let names: Vec<&str> = log.iter().map(|f| f.filename.as_str()).collect();
    assert_eq!(
        names,
        ["up-1.0.tar.gz", "up-1.0-py3-none-any.whl"],
        "first fetched first"
    );
    let sdist = &log[0];
    assert_eq!(
        sdist.first_fetched,
        OffsetDateTime::from_unix_timestamp(2_000).unwrap()
    );
    assert_eq!(
        sdist.last_fetched,
        OffsetDateTime::from_unix_timestamp(3_000).unwrap()
    );
    assert_eq!(sdist.fetches, 2);
    assert_eq!(sdist.last_served, served);
    assert_eq!(
        sdist.upload_time,
        Some(OffsetDateTime::from_unix_timestamp(1_000).unwrap())
    );
    assert_eq!(log[1].fetches, 1);
    assert!(c.upstream_fetches("other").await.unwrap().is_empty());
}

pub async fn a_fetch_records_its_blob_and_log_entry_and_uses_batch<C: UpstreamIndex>(c: &C) {
    let (dist, meta) = ("d".repeat(64), "e".repeat(64));
    let at = |secs| OffsetDateTime::from_unix_timestamp(secs).unwrap();
    let blob = |sha256: &str, size| CachedBlob {
        sha256: sha256.to_owned(),
        size,
        last_used: at(2_000),
    };
    let logged = fetch("up-1.0.tar.gz", &dist, 2_000);
    // Two fetches that completed together, recorded at once.
    let fetched = [
        FetchedFile {
            blob: blob(&dist, 7),
            fetch: Some(logged.clone()),
        },
        FetchedFile {
            blob: blob(&meta, 3),
            fetch: None,
        },
    ];
    c.record_upstream_fetched(&fetched).await.unwrap();
    assert_eq!(c.upstream_blob_size(&dist).await.unwrap(), Some(7));
    assert_eq!(c.upstream_blob_size(&meta).await.unwrap(), Some(3));
    assert_eq!(c.upstream_blob_size(&"f".repeat(64)).await.unwrap(), None);
    assert_eq!(c.upstream_fetches("up").await.unwrap(), [logged]);
    // Fetched again (after a blob was found short): the size is the new one.
    let again = FetchedFile {
        blob: blob(&meta, 4),
        fetch: None,
    };
    c.record_upstream_fetched(&[again]).await.unwrap();
    assert_eq!(c.upstream_blob_size(&meta).await.unwrap(), Some(4));
    assert_eq!(c.upstream_cache_bytes().await.unwrap(), 11);

    let uses = [
        (dist.clone(), at(5_000)),
        ("f".repeat(64), at(5_000)),
        (meta.clone(), at(4_000)),
    ];
    c.use_upstream_blobs(&uses).await.unwrap();
    let used: Vec<(String, OffsetDateTime)> = c
        .upstream_blobs()
        .await
        .unwrap()
        .into_iter()
        .map(|b| (b.sha256, b.last_used))
        .collect();
    assert_eq!(used, [(meta, at(4_000)), (dist.clone(), at(5_000))]);
    assert_eq!(
        c.upstream_fetches("up").await.unwrap()[0].last_served,
        at(5_000)
    );
}

pub async fn project_names_include_reserved_projects<C: Catalog + UpstreamIndex>(c: &C) {
    assert!(c.project_names().await.unwrap().is_empty());
    publish(c, "Shared_Pkg-0.1.0-py3-none-any.whl", "aa").await;
    assert!(
        c.reserve_project("mine", "Mine", &audit("project.reserve", "mine"))
            .await
            .unwrap()
    );
    let mut names = c.project_names().await.unwrap();
    names.sort();
    assert_eq!(names, ["mine", "shared-pkg"]);
    // Only the project with a release is listed on the root page.
    let listed: Vec<String> = c
        .projects()
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.name)
        .collect();
    assert_eq!(listed, ["shared-pkg"]);
}

pub async fn evicting_a_cached_file_is_a_change<C: Catalog + UpstreamIndex>(c: &C) {
    let sha256 = "c".repeat(64);
    let blob = CachedBlob {
        sha256: sha256.clone(),
        size: 5,
        last_used: OffsetDateTime::now_utc(),
    };
    let fetched = FetchedFile { blob, fetch: None };
    c.record_upstream_fetched(&[fetched]).await.unwrap();
    let before = c.generation().await.unwrap();
    assert!(c.remove_upstream_blob(&sha256).await.unwrap());
    let after = c.changes_since(before).await.unwrap();
    assert_eq!(after.changes, [Change::UpstreamFile(sha256.clone())]);
    // Nothing recorded, nothing evicted: no change.
    assert!(c.remove_upstream_blob(&sha256).await.unwrap());
    assert!(c.changes_since(after.seq).await.unwrap().changes.is_empty());
}
