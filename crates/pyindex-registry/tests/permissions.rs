//! Who may publish: access modes, owners and maintainers, admins, projects published while the
//! index was open, and token scopes.

mod support;

use pyindex_catalog::Role;
use pyindex_packaging::ProjectName;
use pyindex_registry::{AccessMode, Actor, Credentials, Published, Rejection, TokenRequest};
use support::{ADDRESS, Dist, Index, PASSWORD, Upload};

/// An upload of a valid wheel of `project` `version`, anonymous until `.by(...)`.
fn wheel(project: &str, version: &str) -> Upload {
    let filename = format!("{project}-{version}-py3-none-any.whl");
    Upload::wheel(
        project,
        version,
        &filename,
        Dist::new(project, version).wheel(),
    )
}

fn project(name: &str) -> ProjectName {
    ProjectName::new(name).unwrap()
}

#[tokio::test]
async fn the_open_mode_publishes_anonymously_and_makes_no_owner() {
    let index = Index::new(AccessMode::Open).await;
    index.publish(wheel("pkg", "1.0")).await;
    let publishes = index.audited("publish").await;
    assert_eq!(publishes.len(), 1);
    assert_eq!(publishes[0].actor, "anonymous");
    assert_eq!(index.registry.roles("pkg").await.unwrap(), []);
}

#[tokio::test]
async fn the_upload_mode_needs_credentials() {
    let index = Index::new(AccessMode::Upload).await;
    support::assert_refused(
        index.upload(wheel("pkg", "1.0")).await,
        Rejection::Unauthorized,
        &["Publishing to this index requires credentials", "__token__"],
    );
    support::assert_refused(
        index
            .registry
            .authorize_publish(None, &project("pkg"))
            .await,
        Rejection::Unauthorized,
        &["requires credentials"],
    );
    assert_eq!(index.filenames("pkg").await, Vec::<String>::new());
    assert_eq!(index.audited("publish").await, []);
}

#[tokio::test]
async fn the_first_uploader_becomes_owner_and_others_are_refused() {
    let index = Index::new(AccessMode::Upload).await;
    let alice = index.user("alice").await;
    let bob = index.user("bob").await;
    index.publish(wheel("pkg", "1.0").by(&alice)).await;
    assert_eq!(
        index.registry.roles("pkg").await.unwrap(),
        [("alice".to_owned(), Role::Owner)]
    );
    let refusal = [
        "User 'bob' is not an owner or maintainer of the project 'pkg'",
        "pyindex project add-maintainer pkg bob",
    ];
    support::assert_refused(
        index.upload(wheel("pkg", "1.1").by(&bob)).await,
        Rejection::Forbidden,
        &refusal,
    );
    support::assert_refused(
        index
            .registry
            .authorize_publish(Some(&bob), &project("PKG"))
            .await,
        Rejection::Forbidden,
        &refusal,
    );
    assert_eq!(index.filenames("pkg").await, ["pkg-1.0-py3-none-any.whl"]);
    assert_eq!(index.audited("publish").await.len(), 1);
    // The owner keeps publishing.
    index.publish(wheel("pkg", "1.1").by(&alice)).await;
}

#[tokio::test]
async fn a_maintainer_added_by_the_owner_may_publish() {
    let index = Index::new(AccessMode::Upload).await;
    let alice = index.user("alice").await;
    let bob = index.user("bob").await;
    index.publish(wheel("pkg", "1.0").by(&alice)).await;
    let owner = Actor::User {
        identity: &alice,
        address: ADDRESS,
    };
    index
        .registry
        .set_role(owner, "pkg", "bob", Some(Role::Maintainer))
        .await
        .unwrap();
    index.publish(wheel("pkg", "1.1").by(&bob)).await;
    assert_eq!(index.audited("role.maintainer").await.len(), 1);

    // A maintainer may publish but not manage: giving roles is for owners.
    let maintainer = Actor::User {
        identity: &bob,
        address: ADDRESS,
    };
    index.user("carol").await;
    support::assert_refused(
        index
            .registry
            .set_role(maintainer, "pkg", "carol", Some(Role::Maintainer))
            .await,
        Rejection::Forbidden,
        &["User 'bob' is not an owner of the project 'pkg', so may not manage it."],
    );

    // Taking the role away takes the right away.
    index
        .registry
        .set_role(owner, "pkg", "bob", None)
        .await
        .unwrap();
    support::assert_refused(
        index.upload(wheel("pkg", "1.2").by(&bob)).await,
        Rejection::Forbidden,
        &["not an owner or maintainer"],
    );
}

#[tokio::test]
async fn an_admin_may_publish_anywhere() {
    let index = Index::new(AccessMode::Upload).await;
    let alice = index.user("alice").await;
    let root = index.admin("root").await;
    index.publish(wheel("pkg", "1.0").by(&alice)).await;
    index.publish(wheel("pkg", "1.1").by(&root)).await;
    // An admin's first upload makes it the owner, like anyone's.
    index.publish(wheel("tool", "1.0").by(&root)).await;
    assert_eq!(
        index.registry.roles("tool").await.unwrap(),
        [("root".to_owned(), Role::Owner)]
    );
    assert_eq!(
        index.registry.roles("pkg").await.unwrap(),
        [("alice".to_owned(), Role::Owner)]
    );
}

#[tokio::test]
async fn a_project_published_while_open_needs_an_owner_before_a_user_may_publish() {
    let index = Index::new(AccessMode::Open).await;
    index.publish(wheel("legacy", "1.0")).await;
    let closed = index.in_mode(AccessMode::Upload);
    index
        .registry
        .add_user(Actor::Cli, "alice", PASSWORD, false)
        .await
        .unwrap();
    let alice = index.token_identity("alice", TokenRequest::default()).await;
    let root = index.admin("root").await;

    let words = [
        "The project 'legacy' has no owner yet",
        "only admins may publish to it",
        "pyindex project add-owner legacy alice",
    ];
    let upload = wheel("legacy", "1.1").by(&alice);
    let request = upload.clone().request(closed.spool()).await;
    support::assert_refused(closed.upload(request).await, Rejection::Forbidden, &words);
    support::assert_refused(
        closed
            .authorize_publish(Some(&alice), &project("legacy"))
            .await,
        Rejection::Forbidden,
        &words,
    );
    assert_eq!(
        index.filenames("legacy").await,
        ["legacy-1.0-py3-none-any.whl"]
    );

    // An admin may publish to it, and that does not make the admin its owner.
    let by_root = wheel("legacy", "1.2")
        .by(&root)
        .request(closed.spool())
        .await;
    assert!(matches!(
        closed.upload(by_root).await,
        Ok(Published::Added { .. })
    ));
    assert_eq!(closed.roles("legacy").await.unwrap(), []);

    closed
        .set_role(Actor::Cli, "legacy", "alice", Some(Role::Owner))
        .await
        .unwrap();
    let request = upload.request(closed.spool()).await;
    assert!(matches!(
        closed.upload(request).await,
        Ok(Published::Added { .. })
    ));
}

#[tokio::test]
async fn a_read_only_token_may_not_publish() {
    let index = Index::new(AccessMode::Upload).await;
    let alice = index.user("alice").await;
    index.publish(wheel("pkg", "1.0").by(&alice)).await;
    let read_only = TokenRequest {
        read_only: true,
        ..TokenRequest::default()
    };
    let reader = index.token_identity("alice", read_only).await;
    let words = ["This token is read-only", "without --read-only"];
    support::assert_refused(
        index.upload(wheel("pkg", "1.1").by(&reader)).await,
        Rejection::Forbidden,
        &words,
    );
    support::assert_refused(
        index.upload(wheel("new-project", "1.0").by(&reader)).await,
        Rejection::Forbidden,
        &words,
    );
    support::assert_refused(
        index.registry.authorize_write(Some(&reader)),
        Rejection::Forbidden,
        &words,
    );
    assert_eq!(index.filenames("pkg").await, ["pkg-1.0-py3-none-any.whl"]);
    assert_eq!(index.audited("publish").await.len(), 1);
}

#[tokio::test]
async fn a_project_limited_token_publishes_only_to_its_projects() {
    let index = Index::new(AccessMode::Upload).await;
    let alice = index.user("alice").await;
    index.publish(wheel("pkg", "1.0").by(&alice)).await;
    index.publish(wheel("other", "1.0").by(&alice)).await;
    let limited = TokenRequest {
        projects: vec!["PKG".to_owned()],
        ..TokenRequest::default()
    };
    let ci = index.token_identity("alice", limited).await;
    index.publish(wheel("pkg", "1.1").by(&ci)).await;
    let words = ["This token is limited to the project(s) pkg and may not act on 'other'."];
    support::assert_refused(
        index.upload(wheel("other", "1.1").by(&ci)).await,
        Rejection::Forbidden,
        &words,
    );
    support::assert_refused(
        index.upload(wheel("brand-new", "1.0").by(&ci)).await,
        Rejection::Forbidden,
        &["may not act on 'brand-new'"],
    );
    assert_eq!(
        index.filenames("other").await,
        ["other-1.0-py3-none-any.whl"]
    );
    assert_eq!(index.filenames("brand-new").await, Vec::<String>::new());
    assert_eq!(index.audited("publish").await.len(), 3);
}

#[tokio::test]
async fn passwords_authenticate_and_wrong_ones_are_refused() {
    let index = Index::new(AccessMode::Upload).await;
    index
        .registry
        .add_user(Actor::Cli, "alice", PASSWORD, false)
        .await
        .unwrap();
    let identity = index
        .registry
        .authenticate(&Credentials::basic("alice", PASSWORD), ADDRESS)
        .await
        .unwrap();
    assert_eq!(identity.user.name, "alice");
    assert!(identity.token.is_none());
    index.publish(wheel("pkg", "1.0").by(&identity)).await;

    for (user, password) in [("alice", "wrong password"), ("nobody", PASSWORD)] {
        support::assert_refused(
            index
                .registry
                .authenticate(&Credentials::basic(user, password), ADDRESS)
                .await,
            Rejection::Unauthorized,
            &["Invalid user name or password."],
        );
    }
    support::assert_refused(
        index
            .registry
            .authenticate(
                &Credentials::basic("__token__", "pyindex_not-a-token"),
                ADDRESS,
            )
            .await,
        Rejection::Unauthorized,
        &["Invalid API token"],
    );
}
