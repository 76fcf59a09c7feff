//! Yanking over the API: who may, what is recorded, and what an unknown release gets.

mod support;

use pyindex_catalog::{Role, Yank};
use pyindex_registry::{AccessMode, Actor, Identity, RegistryError, Rejection, TokenRequest};
use support::{ADDRESS, Dist, Index, Upload};

/// An index where `alice` owns `pkg` 1.0 (a wheel and an sdist) and 1.1.
async fn published() -> (Index, Identity) {
    let index = Index::new(AccessMode::Upload).await;
    let alice = index.user("alice").await;
    for version in ["1.0", "1.1"] {
        let filename = format!("pkg-{version}-py3-none-any.whl");
        let bytes = Dist::new("pkg", version).wheel();
        index
            .publish(Upload::wheel("pkg", version, &filename, bytes).by(&alice))
            .await;
    }
    let sdist = Dist::new("pkg", "1.0").sdist();
    index
        .publish(Upload::sdist("pkg", "1.0", "pkg-1.0.tar.gz", sdist).by(&alice))
        .await;
    index.changes.take();
    (index, alice)
}

fn user(identity: &Identity) -> Actor<'_> {
    Actor::User {
        identity,
        address: ADDRESS,
    }
}

async fn yank_as(
    index: &Index,
    identity: &Identity,
    project: &str,
    version: &str,
) -> Result<(), RegistryError> {
    let reason = Yank::Yanked(Some(" broken build ".to_owned()));
    index
        .registry
        .yank(user(identity), project, version, reason)
        .await
}

/// The yank state of every file of `pkg`, by filename.
async fn states(index: &Index) -> Vec<(String, Yank)> {
    let files = index.registry.catalog().project_files("pkg").await.unwrap();
    files
        .unwrap()
        .files
        .into_iter()
        .map(|f| (f.filename, f.yank))
        .collect()
}

fn yanked(reason: &str) -> Yank {
    Yank::Yanked(Some(reason.to_owned()))
}

#[tokio::test]
async fn the_owner_yanks_a_release_and_it_is_audited_once() {
    let (index, alice) = published().await;
    yank_as(&index, &alice, "PKG", "1.0.0").await.unwrap();
    assert_eq!(
        states(&index).await,
        [
            (
                "pkg-1.0-py3-none-any.whl".to_owned(),
                yanked("broken build")
            ),
            ("pkg-1.0.tar.gz".to_owned(), yanked("broken build")),
            ("pkg-1.1-py3-none-any.whl".to_owned(), Yank::NotYanked),
        ]
    );
    let yanks = index.audited("yank").await;
    assert_eq!(yanks.len(), 1);
    assert_eq!(yanks[0].actor, "alice");
    assert_eq!(yanks[0].subject, "pkg 1.0.0");
    assert_eq!(yanks[0].detail.as_deref(), Some("broken build"));
    assert_eq!(yanks[0].address.as_deref(), Some(ADDRESS));

    index
        .registry
        .yank(user(&alice), "pkg", "1.0", Yank::NotYanked)
        .await
        .unwrap();
    assert!(
        states(&index)
            .await
            .iter()
            .all(|(_, y)| *y == Yank::NotYanked)
    );
    assert_eq!(index.audited("yank").await.len(), 1);
    assert_eq!(index.audited("unyank").await.len(), 1);
}

#[tokio::test]
async fn an_admin_may_yank_any_project() {
    let (index, _) = published().await;
    let root = index.admin("root").await;
    yank_as(&index, &root, "pkg", "1.1").await.unwrap();
    let yanks = index.audited("yank").await;
    assert_eq!(yanks.len(), 1);
    assert_eq!(yanks[0].actor, "root");
}

#[tokio::test]
async fn others_are_refused_and_nothing_is_recorded() {
    let (index, alice) = published().await;
    let bob = index.user("bob").await;
    let maintainer = index.user("maintainer").await;
    index
        .registry
        .set_role(user(&alice), "pkg", "maintainer", Some(Role::Maintainer))
        .await
        .unwrap();
    let read_only = TokenRequest {
        read_only: true,
        ..TokenRequest::default()
    };
    let reader = index.token_identity("alice", read_only).await;
    let elsewhere = TokenRequest {
        projects: vec!["other".to_owned()],
        ..TokenRequest::default()
    };
    let limited = index.token_identity("alice", elsewhere).await;
    index.changes.take();

    let cases = [
        (
            &bob,
            "User 'bob' is not an owner of the project 'pkg', so may not manage it.",
        ),
        (
            &maintainer,
            "User 'maintainer' is not an owner of the project 'pkg'",
        ),
        (&reader, "This token is read-only"),
        (
            &limited,
            "This token is limited to the project(s) other and may not act on 'pkg'.",
        ),
    ];
    for (identity, words) in cases {
        support::assert_refused(
            yank_as(&index, identity, "pkg", "1.0").await,
            Rejection::Forbidden,
            &[words],
        );
    }
    support::assert_refused(
        index
            .registry
            .yank(
                Actor::Anonymous { address: ADDRESS },
                "pkg",
                "1.0",
                Yank::Yanked(None),
            )
            .await,
        Rejection::Unauthorized,
        &["This requires credentials"],
    );
    assert!(
        states(&index)
            .await
            .iter()
            .all(|(_, y)| *y == Yank::NotYanked)
    );
    assert_eq!(index.audited("yank").await, []);
    assert_eq!(index.changes.take(), []);
}

#[tokio::test]
async fn an_unknown_release_is_not_found() {
    let (index, alice) = published().await;
    let root = index.admin("root").await;
    index.changes.take();
    support::assert_refused(
        yank_as(&index, &alice, "pkg", "9.9").await,
        Rejection::NotFound,
        &["Project 'pkg' has no release 9.9."],
    );
    support::assert_refused(
        yank_as(&index, &root, "missing", "1.0").await,
        Rejection::NotFound,
        &["Project 'missing' has no release 1.0."],
    );
    support::assert_refused(
        yank_as(&index, &alice, "pkg", "not a version").await,
        Rejection::BadRequest,
        &[],
    );
    assert_eq!(index.audited("yank").await, []);
    assert_eq!(index.changes.take(), []);
}

#[tokio::test]
async fn the_cli_yanks_without_an_account() {
    let (index, _) = published().await;
    index
        .registry
        .yank(Actor::Cli, "pkg", "1.1", Yank::Yanked(None))
        .await
        .unwrap();
    let yanks = index.audited("yank").await;
    assert_eq!(yanks.len(), 1);
    assert_eq!(yanks[0].actor, "cli");
    assert_eq!(yanks[0].detail, None);
}
