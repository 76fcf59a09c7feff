//! One namespace: whether a name is served from local files or from an upstream, decided here
//! and nowhere else.
//!
//! A name with a local project (any status, with files or without: a reservation) is served
//! only from local files, never merged with an upstream's, also when an upstream page of it was
//! cached before. Any other name is served wholly by the first upstream (in priority order)
//! that knows it. A name unknown everywhere is 404.

use std::sync::Arc;

use pyindex_catalog::AuditEntry;
use pyindex_packaging::ProjectName;
use pyindex_upstream::{FetchTarget, FileBody, ProxiedPage, Settings, Upstream, UpstreamError};
use time::OffsetDateTime;

use crate::{Actor, ProjectPage, Registry, RegistryError, Rejection};

/// The file URL suffix of a PEP 658 metadata file.
const METADATA_SUFFIX: &str = ".metadata";

/// A project page: the local project's, or an upstream's.
#[derive(Debug, Clone)]
pub enum IndexPage {
    /// A local project's page.
    Local(ProjectPage),
    /// An upstream's page, already filtered by [`Registry::visible_upstream_page`].
    Proxied(ProxiedPage),
}

impl From<UpstreamError> for RegistryError {
    fn from(e: UpstreamError) -> RegistryError {
        match e {
            UpstreamError::Unavailable(message) => RegistryError::rejected(
                Rejection::BadGateway,
                format!(
                    "{message}. The project is not cached yet; try again when the upstream answers."
                ),
            ),
            other => RegistryError::Internal(other.to_string()),
        }
    }
}

fn reserved(name: &str) -> RegistryError {
    RegistryError::rejected(
        Rejection::NotFound,
        format!(
            "The project '{name}' is reserved in this index and has no files yet; it is never \
             looked up upstream."
        ),
    )
}

impl Registry {
    /// The same registry, proxying names it has no project for to the upstreams of `settings`.
    pub fn with_upstream(mut self, settings: Settings) -> Result<Registry, RegistryError> {
        let upstream = Upstream::new(
            settings,
            self.upstream_index.clone(),
            self.blobs.clone(),
            self.spool.clone(),
        )?;
        self.upstream = Some(Arc::new(upstream));
        Ok(self)
    }

    /// The upstream proxy, when upstreams are configured.
    pub fn upstream(&self) -> Option<&Arc<Upstream>> {
        self.upstream.as_ref()
    }

    /// The page to serve for `project` (a normalized name): the local project's, or the first
    /// knowing upstream's when there is no local project. `Err` with 404 for a reserved name
    /// without files; `None` when the name is unknown everywhere.
    pub async fn index_page(&self, project: &str) -> Result<Option<IndexPage>, RegistryError> {
        if let Some(local) = self.catalog.project_files(project).await? {
            if local.files.is_empty() {
                return Err(reserved(project));
            }
            return Ok(self.project_page(project).await?.map(IndexPage::Local));
        }
        let Some(upstream) = &self.upstream else {
            return Ok(None);
        };
        Ok(upstream
            .project_page(project)
            .await?
            .map(|page| IndexPage::Proxied(self.visible_upstream_page(page))))
    }

    /// What of an upstream page clients may see: the one place where upstream files are
    /// filtered before any answer (pages and downloads alike). Today everything is visible.
    pub fn visible_upstream_page(&self, page: ProxiedPage) -> ProxiedPage {
        page
    }

    /// The upstream file (or its `.metadata`) `filename` of `project`, as the visible page
    /// lists it; `None` when the name is local or nothing upstream lists that file.
    pub async fn upstream_download(
        &self,
        project: &str,
        filename: &str,
    ) -> Result<Option<FetchTarget>, RegistryError> {
        let Some(IndexPage::Proxied(proxied)) = self.index_page(project).await? else {
            return Ok(None);
        };
        let page = &proxied.page;
        if let Some(file) = page.file(filename) {
            return Ok(Some(FetchTarget {
                filename: file.filename.clone(),
                url: file.url.clone(),
                sha256: file.sha256.clone(),
                size: file.size,
            }));
        }
        Ok(filename
            .strip_suffix(METADATA_SUFFIX)
            .and_then(|dist| page.file(dist))
            .and_then(|file| {
                Some(FetchTarget {
                    filename: filename.to_owned(),
                    url: file.metadata_url()?,
                    sha256: file.core_metadata_sha256.clone()?,
                    size: None,
                })
            }))
    }

    /// The bytes of an upstream file found by [`Registry::upstream_download`].
    pub async fn upstream_file(&self, target: &FetchTarget) -> Result<FileBody, RegistryError> {
        let upstream = self
            .upstream
            .as_ref()
            .ok_or_else(|| RegistryError::Internal("no upstream configured".into()))?;
        Ok(upstream.open_file(target).await?)
    }

    /// Creates the project `name` with no files, so that it is private before its first
    /// upload: never looked up upstream, 404 until it has files. Admins (and the CLI) only.
    /// Returns the normalized name; `false` with it when the project existed already.
    pub async fn reserve_project(
        &self,
        actor: Actor<'_>,
        name: &str,
    ) -> Result<(String, bool), RegistryError> {
        let name = ProjectName::new(name).map_err(|e| RegistryError::bad_request(e.to_string()))?;
        match actor {
            Actor::User { identity, .. } if !identity.user.is_admin => {
                return Err(crate::auth::forbidden(format!(
                    "User '{}' is not an admin: only an admin (or the operator, with `pyindex project reserve`) \
                     may reserve a project name.",
                    identity.user.name
                )));
            }
            Actor::Anonymous { .. } => self.authorize_write(None)?,
            _ => {}
        }
        let audit = AuditEntry {
            at: OffsetDateTime::now_utc(),
            actor: actor.name(),
            action: "project.reserve".to_owned(),
            subject: name.as_str().to_owned(),
            address: actor.address(),
            detail: None,
        };
        let display = name.as_str().to_owned();
        let created = self
            .upstream_index
            .reserve_project(name.as_str(), &display, &audit)
            .await?;
        if created {
            Self::log_audited(&audit);
            self.apply_change(&pyindex_catalog::Change::Project(display.clone()));
            self.apply_change(&pyindex_catalog::Change::ProjectList);
        }
        Ok((display, created))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::Harness;

    #[tokio::test]
    async fn a_reserved_name_is_404_until_it_has_files_and_never_proxied() {
        let h = Harness::new().await;
        let (name, created) = h
            .registry
            .reserve_project(Actor::Cli, "Private_Thing")
            .await
            .unwrap();
        assert_eq!((name.as_str(), created), ("private-thing", true));
        let again = h
            .registry
            .reserve_project(Actor::Cli, "private.thing")
            .await
            .unwrap();
        assert!(!again.1);
        match h.registry.index_page("private-thing").await {
            Err(RegistryError::Rejected {
                rejection: Rejection::NotFound,
                message,
            }) => assert!(message.contains("reserved"), "{message}"),
            other => panic!("expected 404, got {other:?}"),
        }
        assert!(h.registry.index_page("unknown").await.unwrap().is_none());
        assert!(
            h.registry
                .upstream_download("private-thing", "private_thing-1.0-py3-none-any.whl")
                .await
                .is_err()
        );
    }

    #[tokio::test]
    async fn only_admins_reserve_names() {
        let h = Harness::new().await;
        let user = h.user("uma", false).await;
        let refused = h
            .registry
            .reserve_project(
                Actor::User {
                    identity: &user,
                    address: "127.0.0.1",
                },
                "mine",
            )
            .await;
        assert!(matches!(
            refused,
            Err(RegistryError::Rejected {
                rejection: Rejection::Forbidden,
                ..
            })
        ));
        let admin = h.user("ada", true).await;
        let (_, created) = h
            .registry
            .reserve_project(
                Actor::User {
                    identity: &admin,
                    address: "127.0.0.1",
                },
                "mine",
            )
            .await
            .unwrap();
        assert!(created);
    }
}
