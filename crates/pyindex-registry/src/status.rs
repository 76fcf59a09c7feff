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

use pyindex_catalog::{AuditEntry, ProjectStatus};
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

/// Whether `c` may not appear in a reason: control characters, the Unicode line and
/// paragraph separators (a reason is one line in a page and in the audit log), and the
/// bidirectional embeddings, overrides and isolates, which could make the reason, or the
/// text around it in a terminal or the log, read other than it is.
fn is_refused_in_reason(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Trims a reason; an empty one is no reason. Refuses what [`is_refused_in_reason`] names and
/// overlong text.
pub(crate) fn clean_reason(reason: Option<&str>) -> Result<Option<String>, RegistryError> {
    let Some(reason) = reason.map(str::trim).filter(|r| !r.is_empty()) else {
        return Ok(None);
    };
    if reason.chars().any(is_refused_in_reason) {
        return Err(RegistryError::bad_request(
            "The reason must be one line of text, without control characters, line \
             separators or text-direction controls.",
        ));
    }
    if reason.chars().count() > MAX_STATUS_REASON_CHARS {
        return Err(RegistryError::bad_request(format!(
            "The reason is too long: use at most {MAX_STATUS_REASON_CHARS} characters."
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
    // Quarantined to quarantined counts too: it would rewrite or clear the admin's reason.
    let touches_quarantine =
        previous == ProjectStatus::Quarantined || status == ProjectStatus::Quarantined;
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

fn no_project(name: &ProjectName) -> RegistryError {
    RegistryError::rejected(
        Rejection::NotFound,
        format!("No project named '{name}' in this index."),
    )
}

/// The refusal of a status change whose project changed status since it was read.
fn changed_meanwhile(project: &ProjectName) -> RegistryError {
    RegistryError::rejected(
        Rejection::Conflict,
        format!(
            "The status of the project '{project}' changed meanwhile: read it again \
             (GET /simple/{project}/) and retry if the change still applies."
        ),
    )
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
        let previous = self
            .catalog
            .project(name.as_str())
            .await?
            .ok_or_else(|| no_project(&name))?
            .status;
        check_quarantine_right(actor, &name, previous, status)?;
        self.write_status(actor, &name, previous, status, reason)
            .await
    }

    /// Changes the status of `name` from `previous` (which the caller's rights were checked
    /// against) to `status`, with its audit record. The catalog changes it only if it is
    /// still `previous`: an owner's change racing an admin's quarantine cannot lift it, and
    /// the audited `previous` is true.
    async fn write_status(
        &self,
        actor: Actor<'_>,
        name: &ProjectName,
        previous: ProjectStatus,
        status: ProjectStatus,
        reason: Option<String>,
    ) -> Result<StatusChange, RegistryError> {
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
            .set_project_status(name.as_str(), previous, status, reason.as_deref(), &audit)
            .await?
        {
            return Err(match self.catalog.project(name.as_str()).await? {
                Some(_) => changed_meanwhile(name),
                None => no_project(name),
            });
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

/// The refusal to serve a file of `project`, whose status serves no files.
pub(crate) fn files_withheld(
    project: &str,
    status: ProjectStatus,
    reason: Option<&str>,
) -> RegistryError {
    crate::auth::forbidden(format!(
        "Project '{project}' is {status}{}: its files are not served. {}",
        with_reason(reason),
        reactivate_hint(project, status)
    ))
}

#[cfg(test)]
mod tests;
