use pyindex_catalog::{Accounts, Catalog, Role};

use super::*;
use crate::test_support::Harness;
use crate::{Identity, UploadRequest, UploadedContent};

fn user<'a>(identity: &'a Identity) -> Actor<'a> {
    Actor::User {
        identity,
        address: "127.0.0.1",
    }
}

fn rejection(result: Result<StatusChange, RegistryError>) -> Rejection {
    match result {
        Err(RegistryError::Rejected { rejection, .. }) => rejection,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

async fn status_of(h: &Harness, project: &str) -> (ProjectStatus, Option<String>) {
    let p = h.database.project(project).await.unwrap().unwrap();
    (p.status, p.status_reason)
}

/// An upload of a file that is not a wheel at all: refused by the status check if that comes
/// first, otherwise by the archive inspection.
async fn upload_junk(h: &Harness, identity: &Identity) -> RegistryError {
    let file = h.registry.spool().spool_bytes(b"not a zip").await.unwrap();
    let sha256 = file.digests().sha256.clone();
    let fields = [
        (":action", "file_upload"),
        ("name", "courier"),
        ("version", "2.0"),
        ("filetype", "bdist_wheel"),
        ("pyversion", "py3"),
        ("sha256_digest", &sha256),
    ];
    let request = UploadRequest {
        fields: fields
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        content: Some(UploadedContent {
            filename: "courier-2.0-py3-none-any.whl".into(),
            file,
        }),
        identity: Some(identity.clone()),
        address: "127.0.0.1".into(),
    };
    h.registry.upload(request).await.unwrap_err()
}

#[tokio::test]
async fn owners_and_admins_set_status_others_are_refused() {
    let h = Harness::new().await;
    let owner = h.user("olga", false).await;
    let maintainer = h.user("max", false).await;
    let stranger = h.user("sam", false).await;
    let admin = h.user("root", true).await;
    h.project_owned_by("courier", &owner).await;
    assert!(
        h.database
            .set_role(
                "courier",
                "max",
                Some(Role::Maintainer),
                &crate::test_support::audit("role", "courier max")
            )
            .await
            .unwrap()
    );

    for refused in [&maintainer, &stranger] {
        let result = h
            .registry
            .set_project_status(user(refused), "courier", ProjectStatus::Archived, None)
            .await;
        assert_eq!(rejection(result), Rejection::Forbidden);
    }
    assert_eq!(
        status_of(&h, "courier").await,
        (ProjectStatus::Active, None)
    );

    let change = h
        .registry
        .set_project_status(
            user(&owner),
            "Courier",
            ProjectStatus::Archived,
            Some(" moved to courier2 "),
        )
        .await
        .unwrap();
    assert_eq!(
        change,
        StatusChange {
            project: "courier".into(),
            previous: ProjectStatus::Active,
            status: ProjectStatus::Archived,
            reason: Some("moved to courier2".into()),
        }
    );
    let change = h
        .registry
        .set_project_status(user(&admin), "courier", ProjectStatus::Deprecated, None)
        .await
        .unwrap();
    assert_eq!(change.previous, ProjectStatus::Archived);
    assert_eq!(
        status_of(&h, "courier").await,
        (ProjectStatus::Deprecated, None)
    );

    let log = status_audits(&h).await;
    let entries: Vec<_> = log
        .iter()
        .map(|e| {
            (
                e.actor.as_str(),
                e.action.as_str(),
                e.subject.as_str(),
                e.detail.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        entries,
        vec![
            (
                "olga",
                "project.status",
                "courier",
                Some("archived: moved to courier2")
            ),
            ("root", "project.status", "courier", Some("deprecated")),
        ]
    );
    assert_eq!(log[0].address.as_deref(), Some("127.0.0.1"));
}

#[tokio::test]
async fn only_admins_and_the_cli_impose_or_lift_a_quarantine() {
    let h = Harness::new().await;
    let owner = h.user("olga", false).await;
    let admin = h.user("root", true).await;
    h.project_owned_by("courier", &owner).await;

    let result = h
        .registry
        .set_project_status(user(&owner), "courier", ProjectStatus::Quarantined, None)
        .await;
    assert_eq!(rejection(result), Rejection::Forbidden);
    h.registry
        .set_project_status(
            user(&admin),
            "courier",
            ProjectStatus::Quarantined,
            Some("malware"),
        )
        .await
        .unwrap();
    let result = h
        .registry
        .set_project_status(user(&owner), "courier", ProjectStatus::Active, None)
        .await;
    assert_eq!(rejection(result), Rejection::Forbidden);
    assert_eq!(
        status_of(&h, "courier").await,
        (ProjectStatus::Quarantined, Some("malware".into()))
    );
    h.registry
        .set_project_status(Actor::Cli, "courier", ProjectStatus::Active, None)
        .await
        .unwrap();
    assert_eq!(
        status_of(&h, "courier").await,
        (ProjectStatus::Active, None)
    );
    assert_eq!(status_audits(&h).await[1].actor, "cli");
}

#[tokio::test]
async fn owners_cannot_rewrite_or_clear_a_quarantine_reason() {
    let h = Harness::new().await;
    let owner = h.user("olga", false).await;
    h.project_owned_by("courier", &owner).await;
    h.registry
        .set_project_status(
            Actor::Cli,
            "courier",
            ProjectStatus::Quarantined,
            Some("malware"),
        )
        .await
        .unwrap();
    for reason in [None, Some("false alarm")] {
        let result = h
            .registry
            .set_project_status(user(&owner), "courier", ProjectStatus::Quarantined, reason)
            .await;
        assert_eq!(rejection(result), Rejection::Forbidden);
    }
    assert_eq!(
        status_of(&h, "courier").await,
        (ProjectStatus::Quarantined, Some("malware".into()))
    );
    assert_eq!(status_audits(&h).await.len(), 1);
}

#[tokio::test]
async fn a_change_checked_against_a_stale_status_is_refused_as_a_conflict() {
    let h = Harness::new().await;
    let owner = h.user("olga", false).await;
    h.project_owned_by("courier", &owner).await;
    let name = ProjectName::new("courier").unwrap();
    // The owner's request read `active` and passed the rights check; an admin's quarantine
    // lands before its write.
    h.registry
        .set_project_status(
            Actor::Cli,
            "courier",
            ProjectStatus::Quarantined,
            Some("malware"),
        )
        .await
        .unwrap();
    let result = h
        .registry
        .write_status(
            user(&owner),
            &name,
            ProjectStatus::Active,
            ProjectStatus::Active,
            None,
        )
        .await;
    let Err(RegistryError::Rejected {
        rejection: kind,
        message,
    }) = result
    else {
        panic!("expected a refusal, got {result:?}");
    };
    assert_eq!(kind, Rejection::Conflict);
    assert!(message.contains("changed meanwhile"), "{message}");
    assert_eq!(
        status_of(&h, "courier").await,
        (ProjectStatus::Quarantined, Some("malware".into()))
    );
    let audits = status_audits(&h).await;
    assert_eq!(audits.len(), 1);
    assert_eq!(audits[0].actor, "cli");
    // An unknown project is still not found.
    let result = h
        .registry
        .write_status(
            Actor::Cli,
            &ProjectName::new("nope").unwrap(),
            ProjectStatus::Active,
            ProjectStatus::Archived,
            None,
        )
        .await;
    assert_eq!(rejection(result), Rejection::NotFound);
}

#[tokio::test]
async fn unknown_projects_and_bad_reasons_are_refused_without_a_trace() {
    let h = Harness::new().await;
    let result = h
        .registry
        .set_project_status(Actor::Cli, "nope", ProjectStatus::Archived, None)
        .await;
    assert_eq!(rejection(result), Rejection::NotFound);
    let owner = h.user("olga", false).await;
    h.project_owned_by("courier", &owner).await;
    let result = h
        .registry
        .set_project_status(Actor::Cli, "courier", ProjectStatus::Archived, Some("a\nb"))
        .await;
    assert_eq!(rejection(result), Rejection::BadRequest);
    assert!(status_audits(&h).await.is_empty());
}

#[tokio::test]
async fn archived_and_quarantined_projects_refuse_uploads_before_inspection() {
    let h = Harness::new().await;
    let owner = h.user("olga", false).await;
    h.project_owned_by("courier", &owner).await;
    for status in [ProjectStatus::Archived, ProjectStatus::Quarantined] {
        h.registry
            .set_project_status(Actor::Cli, "courier", status, None)
            .await
            .unwrap();
        let RegistryError::Rejected { rejection, message } = upload_junk(&h, &owner).await else {
            panic!("expected a refusal");
        };
        assert_eq!(rejection, Rejection::Forbidden);
        assert!(
            message.starts_with(&format!("Project 'courier' is {status}")),
            "{message}"
        );
        assert!(message.contains("pyindex project status courier active"));
    }
    for status in [ProjectStatus::Deprecated, ProjectStatus::Active] {
        h.registry
            .set_project_status(Actor::Cli, "courier", status, None)
            .await
            .unwrap();
        // Past the status check, the junk file itself is refused.
        let RegistryError::Rejected { rejection, message } = upload_junk(&h, &owner).await else {
            panic!("expected a refusal");
        };
        assert_eq!(rejection, Rejection::BadRequest, "{message}");
    }
}

#[tokio::test]
async fn an_upload_may_start_only_where_the_status_accepts_files() {
    let h = Harness::new().await;
    let owner = h.user("olga", false).await;
    h.project_owned_by("courier", &owner).await;
    let courier = ProjectName::new("courier").unwrap();
    let uploader = h
        .registry
        .may_start_upload(Some(&owner), &courier)
        .await
        .unwrap();
    assert_eq!(uploader.map(|u| u.user_id), Some(owner.user.id));
    h.registry
        .set_project_status(Actor::Cli, "courier", ProjectStatus::Archived, None)
        .await
        .unwrap();
    let Err(RegistryError::Rejected { rejection, message }) =
        h.registry.may_start_upload(Some(&owner), &courier).await
    else {
        panic!("expected a refusal");
    };
    assert_eq!(rejection, Rejection::Forbidden);
    assert!(message.contains("accepts no new files"), "{message}");
    // Rights come first: a stranger is told about rights, not the status.
    let stranger = h.user("sam", false).await;
    let Err(RegistryError::Rejected { message, .. }) =
        h.registry.may_start_upload(Some(&stranger), &courier).await
    else {
        panic!("expected a refusal");
    };
    assert!(!message.contains("archived"), "{message}");
    // A new project has no status yet.
    let new = ProjectName::new("fresh").unwrap();
    assert!(
        h.registry
            .may_start_upload(Some(&owner), &new)
            .await
            .is_ok()
    );
}

#[test]
fn reasons_are_trimmed_bounded_and_single_line() {
    assert_eq!(clean_reason(None).unwrap(), None);
    assert_eq!(clean_reason(Some("  ")).unwrap(), None);
    assert_eq!(
        clean_reason(Some(" moved to courier ")).unwrap().as_deref(),
        Some("moved to courier")
    );
    assert!(clean_reason(Some("a\nb")).is_err());
    for refused in [
        '\u{2028}', // line separator
        '\u{2029}', // paragraph separator
        '\u{202A}', '\u{202B}', '\u{202C}', '\u{202D}', '\u{202E}', // embeddings, overrides
        '\u{2066}', '\u{2067}', '\u{2068}', '\u{2069}', // isolates
    ] {
        let reason = format!("moved{refused}elsewhere");
        assert!(clean_reason(Some(&reason)).is_err(), "{:?}", refused);
    }
    assert_eq!(
        clean_reason(Some("déplacé — נעבר")).unwrap().as_deref(),
        Some("déplacé — נעבר")
    );
    let long = "x".repeat(MAX_STATUS_REASON_CHARS + 1);
    assert!(clean_reason(Some(&long)).is_err());
    assert!(clean_reason(Some(&long[1..])).is_ok());
}

#[test]
fn the_withholding_message_names_the_status_reason_and_remedy() {
    let message =
        files_withheld("courier", ProjectStatus::Quarantined, Some("malware")).to_string();
    assert!(message.contains("'courier' is quarantined (reason: malware)"));
    assert!(message.contains("An admin can reactivate it"));
    assert!(message.contains("pyindex project status courier active"));
}

/// The audit records of status changes (set-up writes are audited too).
async fn status_audits(h: &Harness) -> Vec<pyindex_catalog::AuditEntry> {
    h.registry
        .audit_log(100)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.action == "project.status")
        .collect()
}
