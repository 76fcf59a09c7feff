//! One namespace: whether a name is served from local files or from an upstream, decided here
//! and nowhere else.
//!
//! A name with a local project (any status, with files or without: a reservation) is served
//! only from local files, never merged with an upstream's, also when an upstream page of it was
//! cached before. Any other name is served wholly by the first upstream (in priority order)
//! that knows it. A name unknown everywhere is 404.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use pyindex_catalog::{AuditEntry, UpstreamBlock};
use pyindex_packaging::ProjectName;
use pyindex_upstream::{
    FetchTarget, FileBody, METADATA_SUFFIX, ProxiedPage, Settings, Upstream, UpstreamError,
    UpstreamFile,
};
use time::OffsetDateTime;

use crate::blocks::{Blocks, describe};
use crate::{Actor, ProjectPage, Registry, RegistryError, Rejection};

/// The cooldown on new upstream releases: upstream files younger than `min_age` (by the
/// upstream's upload time) are not shown nor served, decided when answering, so a file appears
/// by itself once old enough. Files of `exempt` projects, and private files, are never held
/// back.
#[derive(Debug, Clone, Default)]
pub struct Cooldown {
    /// The least age of a visible upstream file; `None`: no cooldown (the default).
    pub min_age: Option<Duration>,
    /// Whether files whose upload time the upstream does not give (HTML-only upstreams) are
    /// shown under a cooldown.
    pub allow_unknown_age: bool,
    /// Normalized names of projects without cooldown.
    pub exempt: HashSet<String>,
}

/// Why an upstream file is not visible now.
enum Hidden {
    /// Too young: visible from this time.
    Until(OffsetDateTime),
    /// Its upload time is unknown.
    UnknownAge,
}

impl Cooldown {
    fn hides(&self, project: &str, file: &UpstreamFile, now: OffsetDateTime) -> Option<Hidden> {
        let min_age = self.min_age?;
        if self.exempt.contains(project) {
            return None;
        }
        match file.upload_time {
            None if self.allow_unknown_age => None,
            None => Some(Hidden::UnknownAge),
            Some(uploaded) => {
                let visible_from = uploaded + min_age;
                (visible_from > now).then_some(Hidden::Until(visible_from))
            }
        }
    }
}

/// What a name is: a local project (its page, `None` without visible files), an upstream's
/// (its page as the upstream lists it, `None` when no upstream knows it, and the blocks on
/// it), or a wholly blocked upstream project.
enum Found {
    Local(Option<ProjectPage>),
    Upstream(Option<ProxiedPage>, Blocks),
    Blocked(UpstreamBlock),
}

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

/// `7d`, `36h`, `90m` or `45s`: the largest unit that divides the duration.
fn duration_text(d: Duration) -> String {
    let secs = d.as_secs();
    for (unit, n) in [("d", 86_400), ("h", 3_600), ("m", 60)] {
        if secs >= n && secs.is_multiple_of(n) {
            return format!("{}{unit}", secs / n);
        }
    }
    format!("{secs}s")
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
        let upstream = Arc::new(upstream);
        // Outside a runtime (a test building a registry), pages are stored by the request that
        // fetched them and uses stay in memory until flushed.
        if tokio::runtime::Handle::try_current().is_ok() {
            upstream.spawn_background();
        }
        self.upstream = Some(upstream);
        Ok(self)
    }

    /// The same registry with a cooldown on new upstream releases.
    pub fn with_cooldown(mut self, cooldown: Cooldown) -> Registry {
        self.cooldown = Arc::new(cooldown);
        self
    }

    /// The upstream proxy, when upstreams are configured.
    pub fn upstream(&self) -> Option<&Arc<Upstream>> {
        self.upstream.as_ref()
    }

    /// The page to serve for `project` (a normalized name): the local project's, or the first
    /// knowing upstream's when there is no local project. `Err` with 404 for a reserved name
    /// without files and for a blocked upstream project; `None` when the name is unknown
    /// everywhere.
    pub async fn index_page(&self, project: &str) -> Result<Option<IndexPage>, RegistryError> {
        Ok(match self.lookup(project).await? {
            Found::Local(page) => page.map(IndexPage::Local),
            Found::Upstream(page, blocks) => {
                page.map(|page| IndexPage::Proxied(self.visible_upstream_page(page, &blocks)))
            }
            Found::Blocked(block) => {
                return Err(RegistryError::rejected(
                    Rejection::NotFound,
                    format!("No project named '{project}' here: {}.", describe(&block)),
                ));
            }
        })
    }

    /// The local page, or the upstream page as the upstream lists it (unfiltered) with the
    /// blocks on it; never asks the upstream for a wholly blocked project.
    async fn lookup(&self, project: &str) -> Result<Found, RegistryError> {
        let Some(upstream) = &self.upstream else {
            return self.local_lookup(project).await;
        };
        let local = self.namespace.local_names(self.catalog.as_ref()).await?;
        if local.contains(project) {
            return self.local_lookup(project).await;
        }
        let blocks = self.blocks_of(project).await?;
        if let Some(block) = blocks.project() {
            return Ok(Found::Blocked(block.clone()));
        }
        Ok(Found::Upstream(
            upstream.project_page(project).await?,
            blocks,
        ))
    }

    /// The local project's page; `Err` (404) for a reserved name without files.
    async fn local_lookup(&self, project: &str) -> Result<Found, RegistryError> {
        let Some(found) = self.catalog.project_files(project).await? else {
            return Ok(Found::Local(None));
        };
        if found.files.is_empty() {
            return Err(reserved(project));
        }
        Ok(Found::Local(Some(ProjectPage::of(found))))
    }

    /// Why the upstream file `file` of `project` may not be listed or served now, if it may
    /// not: the one rule deciding which upstream files are visible (an operator's block on
    /// its project or release, then the cooldown).
    pub fn upstream_file_refusal(
        &self,
        project: &str,
        file: &UpstreamFile,
        blocks: &Blocks,
    ) -> Option<RegistryError> {
        if let Some(block) = blocks.blocking(file.version.as_deref()) {
            return Some(RegistryError::rejected(
                Rejection::Forbidden,
                format!("'{}' is not served: {}.", file.filename, describe(block)),
            ));
        }
        let hidden = self
            .cooldown
            .hides(project, file, OffsetDateTime::now_utc())?;
        let min_age = self.cooldown.min_age.unwrap_or_default();
        let message = match hidden {
            Hidden::Until(at) => format!(
                "'{}' was published upstream less than the cooldown of {} ago: it is held back \
                 until {} (UTC).",
                file.filename,
                duration_text(min_age),
                at.format(&time::format_description::well_known::Rfc3339)
                    .unwrap_or_default()
            ),
            Hidden::UnknownAge => format!(
                "'{}' is held back by the cooldown of {}: its upstream gives no upload time, so \
                 its age is unknown (the operator may allow such files with \
                 --upstream-allow-unknown-age, or exempt the project).",
                file.filename,
                duration_text(min_age)
            ),
        };
        Some(RegistryError::rejected(Rejection::Forbidden, message))
    }

    /// What of an upstream page clients may see: the one place where upstream pages are
    /// filtered before any answer. Files refused by [`Registry::upstream_file_refusal`] are
    /// left out; `versions` loses blocked releases and, under a cooldown, keeps only versions
    /// with a visible file; the page is cached no longer than until the next held-back file
    /// becomes visible.
    pub fn visible_upstream_page(&self, mut proxied: ProxiedPage, blocks: &Blocks) -> ProxiedPage {
        if self.cooldown.min_age.is_none() && blocks.is_empty() {
            return proxied;
        }
        let now = OffsetDateTime::now_utc();
        let project = proxied.page.name.clone();
        let mut page = (*proxied.page).clone();
        let mut next_visible: Option<OffsetDateTime> = None;
        page.files.retain(|file| {
            if blocks.blocking(file.version.as_deref()).is_some() {
                return false;
            }
            match self.cooldown.hides(&project, file, now) {
                None => true,
                Some(Hidden::Until(at)) => {
                    next_visible = Some(next_visible.map_or(at, |t| t.min(at)));
                    false
                }
                Some(Hidden::UnknownAge) => false,
            }
        });
        page.versions
            .retain(|v| blocks.blocking(Some(v.as_str())).is_none());
        if self.cooldown.min_age.is_some() && !self.cooldown.exempt.contains(&project) {
            let visible: HashSet<&str> = page
                .files
                .iter()
                .filter_map(|f| f.version.as_deref())
                .collect();
            page.versions.retain(|v| visible.contains(v.as_str()));
        }
        if let Some(at) = next_visible {
            let wait = Duration::try_from(at - now).unwrap_or(Duration::ZERO);
            proxied.fresh_for = proxied.fresh_for.min(wait + Duration::from_secs(1));
        }
        proxied.page = Arc::new(page);
        proxied
    }

    /// The upstream file (or its `.metadata`) `filename` of `project`, as the visible page
    /// lists it; `None` when the name is local or nothing upstream lists that file.
    pub async fn upstream_download(
        &self,
        project: &str,
        filename: &str,
    ) -> Result<Option<FetchTarget>, RegistryError> {
        let (proxied, blocks) = match self.lookup(project).await? {
            Found::Upstream(Some(proxied), blocks) => (proxied, blocks),
            Found::Local(_) | Found::Upstream(None, _) => return Ok(None),
            Found::Blocked(block) => {
                return Err(RegistryError::rejected(
                    Rejection::Forbidden,
                    format!("'{filename}' is not served: {}.", describe(&block)),
                ));
            }
        };
        let page = &proxied.page;
        let listed = page.file(filename).or_else(|| {
            filename
                .strip_suffix(METADATA_SUFFIX)
                .and_then(|d| page.file(d))
        });
        if let Some(refusal) =
            listed.and_then(|file| self.upstream_file_refusal(project, file, &blocks))
        {
            return Err(refusal);
        }
        if let Some(file) = page.file(filename) {
            return Ok(Some(FetchTarget::distribution(project, file)));
        }
        Ok(filename
            .strip_suffix(METADATA_SUFFIX)
            .and_then(|dist| page.file(dist))
            .and_then(|file| FetchTarget::metadata(project, file)))
    }

    /// The bytes of an upstream file found by [`Registry::upstream_download`].
    pub async fn upstream_file(&self, target: &FetchTarget) -> Result<FileBody, RegistryError> {
        let upstream = self
            .upstream
            .as_ref()
            .ok_or_else(|| RegistryError::Internal("no upstream configured".into()))?;
        upstream.open_file(target).await.map_err(|e| match e {
            UpstreamError::Unavailable(message) => RegistryError::rejected(
                Rejection::BadGateway,
                format!(
                    "{message}. The file '{}' is not cached yet (`pyindex mirror` fetches what a \
                     build needs ahead of time); try again when the upstream answers.",
                    target.filename
                ),
            ),
            other => other.into(),
        })
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

    fn upstream_file(version: &str, age: Option<Duration>) -> UpstreamFile {
        UpstreamFile {
            filename: format!("up-{version}.tar.gz"),
            url: format!("http://127.0.0.1:1/up-{version}.tar.gz"),
            sha256: "ab".repeat(32),
            size: None,
            requires_python: None,
            yanked: None,
            core_metadata_sha256: None,
            upload_time: age.map(|a| OffsetDateTime::now_utc() - a),
            version: Some(version.into()),
        }
    }

    fn proxied_page() -> ProxiedPage {
        let day = Duration::from_secs(86_400);
        ProxiedPage {
            page: Arc::new(pyindex_upstream::UpstreamPage {
                name: "up".into(),
                versions: vec!["1.0".into(), "2.0".into(), "3.0".into()],
                files: vec![
                    upstream_file("1.0", Some(30 * day)),
                    upstream_file("2.0", Some(Duration::from_secs(3_600))),
                    upstream_file("3.0", None),
                ],
            }),
            upstream: "http://127.0.0.1:1/simple/".into(),
            stale: false,
            fresh_for: Duration::from_secs(600),
        }
    }

    fn shown(registry: &Registry) -> (Vec<String>, Vec<String>, Duration) {
        shown_with(registry, &Blocks::default())
    }

    fn shown_with(registry: &Registry, blocks: &Blocks) -> (Vec<String>, Vec<String>, Duration) {
        let page = registry.visible_upstream_page(proxied_page(), blocks);
        let files = page.page.files.iter().map(|f| f.filename.clone()).collect();
        (files, page.page.versions.clone(), page.fresh_for)
    }

    #[tokio::test]
    async fn the_cooldown_hides_young_and_unknown_age_files_when_answering() {
        let h = Harness::new().await;
        let (files, versions, fresh_for) = shown(&h.registry);
        assert_eq!(files.len(), 3, "no cooldown by default");
        assert_eq!(versions.len(), 3);
        assert_eq!(fresh_for, Duration::from_secs(600));

        let week = Duration::from_secs(7 * 86_400);
        let cooled = h.registry.clone().with_cooldown(Cooldown {
            min_age: Some(week),
            ..Cooldown::default()
        });
        let (files, versions, fresh_for) = shown(&cooled);
        assert_eq!(files, ["up-1.0.tar.gz"]);
        assert_eq!(versions, ["1.0"]);
        assert_eq!(
            fresh_for,
            Duration::from_secs(600),
            "the young file is days away"
        );
        let young = upstream_file("2.0", Some(Duration::from_secs(3_600)));
        let refusal = cooled
            .upstream_file_refusal("up", &young, &Blocks::default())
            .unwrap()
            .to_string();
        assert!(refusal.contains("held back until"), "{refusal}");
        assert!(refusal.contains("7d"), "{refusal}");
        let unknown = cooled
            .upstream_file_refusal("up", &upstream_file("3.0", None), &Blocks::default())
            .unwrap()
            .to_string();
        assert!(unknown.contains("unknown"), "{unknown}");

        let soon = h.registry.clone().with_cooldown(Cooldown {
            min_age: Some(Duration::from_secs(3_660)),
            allow_unknown_age: true,
            ..Cooldown::default()
        });
        let (files, versions, fresh_for) = shown(&soon);
        assert_eq!(files, ["up-1.0.tar.gz", "up-3.0.tar.gz"]);
        assert_eq!(versions, ["1.0", "3.0"]);
        assert!(
            fresh_for <= Duration::from_secs(61),
            "{fresh_for:?}: cached until it appears"
        );

        let exempt = h.registry.clone().with_cooldown(Cooldown {
            min_age: Some(week),
            allow_unknown_age: false,
            exempt: HashSet::from(["up".to_owned()]),
        });
        assert_eq!(shown(&exempt).0.len(), 3);
        assert!(
            exempt
                .upstream_file_refusal("up", &young, &Blocks::default())
                .is_none()
        );
    }

    #[tokio::test]
    async fn blocks_hide_files_and_versions_with_or_without_a_cooldown() {
        let h = Harness::new().await;
        let block = |version: &str| pyindex_catalog::UpstreamBlock {
            project: "up".into(),
            version: Some(version.into()),
            version_key: version.into(),
            reason: "hijacked".into(),
            created: OffsetDateTime::UNIX_EPOCH,
            created_by: "cli".into(),
        };
        let blocks = Blocks::of(vec![block("2.0.0")]);
        let (files, versions, _) = shown_with(&h.registry, &blocks);
        assert_eq!(files, ["up-1.0.tar.gz", "up-3.0.tar.gz"]);
        assert_eq!(
            versions,
            ["1.0", "3.0"],
            "versions rebuilt without the block"
        );
        let refusal = h
            .registry
            .upstream_file_refusal("up", &upstream_file("2.0", None), &blocks)
            .unwrap();
        assert!(matches!(
            &refusal,
            RegistryError::Rejected { rejection: Rejection::Forbidden, message }
                if message.contains("blocked") && message.contains("hijacked")
        ));
        let cooled = h.registry.clone().with_cooldown(Cooldown {
            min_age: Some(Duration::from_secs(60)),
            allow_unknown_age: true,
            exempt: HashSet::from(["up".to_owned()]),
        });
        let (files, versions, _) = shown_with(&cooled, &Blocks::of(vec![block("1")]));
        assert_eq!(
            files,
            ["up-2.0.tar.gz", "up-3.0.tar.gz"],
            "an exemption does not lift a block"
        );
        assert_eq!(versions, ["2.0", "3.0"]);
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
