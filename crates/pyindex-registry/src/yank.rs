//! Yanking (PEP 592): a yanked release stays listed and downloadable, but installers skip it
//! unless a requirement pins it exactly.

use pyindex_catalog::{Change, Yank};
use pyindex_packaging::{ProjectName, canonical_version, parse_version};

use crate::{Actor, Registry, RegistryError, Rejection};

impl Registry {
    /// Yanks (`Yank::Yanked`) or unyanks (`Yank::NotYanked`) every file of a release. Over HTTP
    /// only the project's owners and admins may.
    pub async fn yank(
        &self,
        actor: Actor<'_>,
        project: &str,
        version: &str,
        yank: Yank,
    ) -> Result<(), RegistryError> {
        let name =
            ProjectName::new(project).map_err(|e| RegistryError::bad_request(e.to_string()))?;
        let version =
            parse_version(version).map_err(|e| RegistryError::bad_request(e.to_string()))?;
        match actor {
            Actor::User { identity, .. } => self.authorize_manage(identity, &name).await?,
            Actor::Anonymous { .. } => self.authorize_write(None)?,
            Actor::Cli => {}
        }
        let yank = match yank {
            Yank::Yanked(reason) => Yank::Yanked(
                reason
                    .map(|r| r.trim().to_owned())
                    .filter(|r| !r.is_empty()),
            ),
            Yank::NotYanked => Yank::NotYanked,
        };
        let (action, detail) = match &yank {
            Yank::Yanked(reason) => ("yank", reason.clone()),
            Yank::NotYanked => ("unyank", None),
        };
        let audit = self.audit_entry(actor, action, &format!("{name} {version}"), detail);
        if !self
            .catalog
            .set_yank(name.as_str(), &canonical_version(&version), yank, &audit)
            .await?
        {
            return Err(RegistryError::rejected(
                Rejection::NotFound,
                format!("Project '{name}' has no release {version}."),
            ));
        }
        Self::log_audited(&audit);
        self.apply_change(&Change::Project(name.as_str().to_owned()));
        Ok(())
    }
}
