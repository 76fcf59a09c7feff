//! Project status markers (PEP 792): who may set them, and what each one allows.
//!
//! | status | uploads | files listed and served |
//! |---|---|---|
//! | `active` | yes | yes |
//! | `archived` | refused | yes |
//! | `quarantined` | refused | no |
//! | `deprecated` | yes | yes (installers may warn) |
//!
//! Owners and admins set a status over HTTP; quarantine (imposing or lifting it) is for admins
//! only. The CLI, run by the operator on the data directory, may do everything.

use pyindex_catalog::{AuditEntry, FileRecord, ProjectStatus, ProjectSummary};
use pyindex_packaging::ProjectName;
use time::OffsetDateTime;

use crate::{Actor, Registry, RegistryError, Rejection};

/// The longest status reason accepted, in characters: it is shown in every project page.
pub const MAX_STATUS_REASON_CHARS: usize = 500;

/// The result of [`Registry::set_project_status`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusChange {
    /// Normalized project name.
    pub project: String,
    /// The status before the change.
    pub previous: ProjectStatus,
    /// The status now.
    pub status: ProjectStatus,
    /// The reason now, if any.
    pub reason: Option<String>,
}

/// Trims a reason; an empty one is no reason. Refuses control characters (a reason is one
/// line in a page and in the audit log) and overlong text.
fn clean_reason(reason: Option<&str>) -> Result<Option<String>, RegistryError> {
    let Some(reason) = reason.map(str::trim).filter(|r| !r.is_empty()) else {
        return Ok(None);
    };
    if reason.chars().any(char::is_control) {
        return Err(RegistryError::bad_request(
            "The status reason must be one line of text, without control characters.",
        ));
    }
    if reason.chars().count() > MAX_STATUS_REASON_CHARS {
        return Err(RegistryError::bad_request(format!(
            "The status reason is too long: use at most {MAX_STATUS_REASON_CHARS} characters."
        )));
    }
    Ok(Some(reason.to_owned()))
}

/// A quarantine is the index's verdict that a project is unsafe: over HTTP only an admin may
/// impose or lift it, so that a compromised owner account cannot undo it.
fn check_quarantine_right(
    actor: Actor<'_>,
    project: &ProjectName,
    previous: ProjectStatus,
    status: ProjectStatus,
) -> Result<(), RegistryError> {
    let touches_quarantine = previous != status
        && (previous == ProjectStatus::Quarantined || status == ProjectStatus::Quarantined);
    match actor {
        Actor::User { identity, .. } if touches_quarantine && !identity.user.is_admin => {
            Err(crate::auth::forbidden(format!(
                "User '{}' is not an admin: only an admin (or the operator, with `pyindex project status`) \
                 may put the project '{project}' in quarantine or lift its quarantine.",
                identity.user.name
            )))
        }
        _ => Ok(()),
    }
}

fn reactivate_hint(project: &str, status: ProjectStatus) -> String {
    let who = if status == ProjectStatus::Quarantined {
        "An admin"
    } else {
        "An owner or admin"
    };
    format!(
        "{who} can reactivate it with `pyindex project status {project} active` \
         or POST /api/v1/projects/{project}/status."
    )
}

fn with_reason(reason: Option<&str>) -> String {
    reason
        .map(|r| format!(" (reason: {r})"))
        .unwrap_or_default()
}

impl Registry {
    /// Sets a project's status and reason (`None` or blank clears the reason), recording the
    /// change in the audit log in the same transaction. Over HTTP only the project's owners
    /// and admins may (anyone in the open mode, as for yanking); the CLI always may.
    pub async fn set_project_status(
        &self,
        actor: Actor<'_>,
        project: &str,
        status: ProjectStatus,
        reason: Option<&str>,
    ) -> Result<StatusChange, RegistryError> {
        let name =
            ProjectName::new(project).map_err(|e| RegistryError::bad_request(e.to_string()))?;
        match actor {
            Actor::User { identity, .. } => self.authorize_manage(identity, &name).await?,
            Actor::Anonymous { .. } => self.authorize_write(None)?,
            Actor::Cli => {}
        }
        let reason = clean_reason(reason)?;
        let no_project = || {
            RegistryError::rejected(
                Rejection::NotFound,
                format!("No project named '{name}' in this index."),
            )
        };
        let previous = self
            .catalog
            .project(name.as_str())
            .await?
            .ok_or_else(no_project)?
            .status;
        check_quarantine_right(actor, &name, previous, status)?;
        let detail = match &reason {
            Some(reason) => format!("{status}: {reason}"),
            None => status.to_string(),
        };
        let audit = AuditEntry {
            at: OffsetDateTime::now_utc(),
            actor: actor.name(),
            action: "project.status".to_owned(),
            subject: name.as_str().to_owned(),
            address: actor.address(),
            detail: Some(detail),
        };
        if !self
            .catalog
            .set_project_status(name.as_str(), status, reason.as_deref(), &audit)
            .await?
        {
            return Err(no_project());
        }
        Self::log_audited(&audit);
        self.apply_change(&pyindex_catalog::Change::Project(name.as_str().to_owned()));
        Ok(StatusChange {
            project: name.as_str().to_owned(),
            previous,
            status,
            reason,
        })
    }

    /// Refuses an upload to an existing project whose status accepts no new files. Called
    /// after authorization and before the file is examined.
    pub(crate) async fn check_project_accepts_uploads(
        &self,
        project: &ProjectName,
    ) -> Result<(), RegistryError> {
        let Some(summary) = self.catalog.project(project.as_str()).await? else {
            return Ok(());
        };
        if summary.status.accepts_uploads() {
            return Ok(());
        }
        Err(upload_refused(
            project.as_str(),
            summary.status,
            summary.status_reason.as_deref(),
        ))
    }

    /// Whether the file `record` may be downloaded (with its metadata file): not when its
    /// project is quarantined.
    pub async fn check_download(&self, record: &FileRecord) -> Result<(), RegistryError> {
        let Some(summary) = self.catalog.project(&record.project).await? else {
            return Ok(());
        };
        check_served(&summary)
    }
}

/// The refusal of an upload to a project whose status accepts no new files.
pub(crate) fn upload_refused(
    project: &str,
    status: ProjectStatus,
    reason: Option<&str>,
) -> RegistryError {
    crate::auth::forbidden(format!(
        "Project '{project}' is {status}{}: it accepts no new files. {}",
        with_reason(reason),
        reactivate_hint(project, status)
    ))
}

fn check_served(summary: &ProjectSummary) -> Result<(), RegistryError> {
    if summary.status.serves_files() {
        return Ok(());
    }
    Err(crate::auth::forbidden(format!(
        "Project '{}' is {}{}: its files are not served. {}",
        summary.name,
        summary.status,
        with_reason(summary.status_reason.as_deref()),
        reactivate_hint(&summary.name, summary.status)
    )))
}

#[cfg(test)]
mod tests;
