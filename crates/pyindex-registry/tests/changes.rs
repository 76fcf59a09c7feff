//! Change notifications: every committed change is reported to the observers, naming exactly
//! what changed; a refused or no-op request reports nothing.

mod support;

use pyindex_catalog::Yank;
use pyindex_registry::{AccessMode, Actor, Change, Rejection};
use support::{Dist, Index, PASSWORD, Upload};

fn wheel(project: &str, version: &str) -> Upload {
    let filename = format!("{project}-{version}-py3-none-any.whl");
    Upload::wheel(
        project,
        version,
        &filename,
        Dist::new(project, version).wheel(),
    )
}

fn project(name: &str) -> Change {
    Change::Project(name.to_owned())
}

#[tokio::test]
async fn publishing_reports_the_project_and_a_new_project_the_list() {
    let index = Index::new(AccessMode::Open).await;
    index.publish(wheel("a", "1.0")).await;
    assert_eq!(index.changes.take(), [project("a"), Change::ProjectList]);
    index.publish(wheel("a", "1.1")).await;
    assert_eq!(index.changes.take(), [project("a")]);
    index.publish(wheel("B_c", "1.0")).await;
    assert_eq!(index.changes.take(), [project("b-c"), Change::ProjectList]);
}

#[tokio::test]
async fn yanking_reports_the_project() {
    let index = Index::new(AccessMode::Open).await;
    index.publish(wheel("a", "1.0")).await;
    index.changes.take();
    index
        .registry
        .yank(Actor::Cli, "A", "1.0", Yank::Yanked(None))
        .await
        .unwrap();
    assert_eq!(index.changes.take(), [project("a")]);
    index
        .registry
        .yank(Actor::Cli, "a", "1.0", Yank::NotYanked)
        .await
        .unwrap();
    assert_eq!(index.changes.take(), [project("a")]);
}

#[tokio::test]
async fn account_changes_report_the_account() {
    let index = Index::new(AccessMode::Upload).await;
    let registry = &index.registry;
    registry
        .add_user(Actor::Cli, "alice", PASSWORD, false)
        .await
        .unwrap();
    assert_eq!(index.changes.take(), [Change::Account("alice".to_owned())]);
    registry
        .set_password(Actor::Cli, "alice", "another long password")
        .await
        .unwrap();
    assert_eq!(index.changes.take(), [Change::Account("alice".to_owned())]);
    support::assert_refused(
        registry
            .set_password(Actor::Cli, "nobody", "another long password")
            .await,
        Rejection::NotFound,
        &["No user named 'nobody'."],
    );
    assert_eq!(index.changes.take(), []);
}

#[tokio::test]
async fn refused_and_repeated_uploads_report_nothing() {
    let index = Index::new(AccessMode::Upload).await;
    let alice = index.user("alice").await;
    index.changes.take();
    support::assert_refused(
        index.upload(wheel("a", "1.0")).await,
        Rejection::Unauthorized,
        &[],
    );
    support::assert_refused(
        index
            .upload(wheel("a", "1.0").by(&alice).claimed_sha256(&"f".repeat(64)))
            .await,
        Rejection::BadRequest,
        &["digest"],
    );
    assert_eq!(index.changes.take(), []);

    index.publish(wheel("a", "1.0").by(&alice)).await;
    index.changes.take();
    index.upload(wheel("a", "1.0").by(&alice)).await.unwrap();
    assert_eq!(
        index.changes.take(),
        [],
        "an identical re-upload changes nothing"
    );
    let failed_yank = index
        .registry
        .yank(Actor::Cli, "a", "2.0", Yank::Yanked(None))
        .await;
    support::assert_refused(failed_yank, Rejection::NotFound, &[]);
    assert_eq!(index.changes.take(), []);
}
