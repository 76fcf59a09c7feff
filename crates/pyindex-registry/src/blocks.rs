//! Blocking upstream projects and releases, and the fetch log: what an operator does the
//! morning a compromised upstream release is announced. A block hides a whole upstream project
//! or one release (by PEP 440 equality) from pages and downloads at once, also when cached;
//! the fetch log says whether any build pulled it, and when. Local (private) projects are
//! never affected.

use pyindex_catalog::{AuditEntry, Change, UpstreamBlock, UpstreamFetch};
use pyindex_packaging::{ProjectName, Version, canonical_version, parse_version};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::status::clean_reason;
use crate::{Actor, Registry, RegistryError, Rejection};

/// A project, or one release of it: `NAME` or `NAME==VERSION` on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseSpec {
    /// The normalized project name.
    pub project: String,
    /// The version, if one release is meant.
    pub version: Option<Version>,
}

impl ReleaseSpec {
    /// `NAME` or `NAME==VERSION`.
    pub fn parse(spec: &str) -> Result<ReleaseSpec, RegistryError> {
        let (name, version) = match spec.split_once("==") {
            Some((name, version)) => (name, Some(version)),
            None => (spec, None),
        };
        ReleaseSpec::new(name.trim(), version.map(str::trim))
    }

    /// A project name and, for one release, its version.
    pub fn new(name: &str, version: Option<&str>) -> Result<ReleaseSpec, RegistryError> {
        let project = ProjectName::new(name)
            .map_err(|e| RegistryError::bad_request(e.to_string()))?
            .as_str()
            .to_owned();
        let version = version
            .map(|v| {
                parse_version(v).map_err(|e| {
                    RegistryError::bad_request(format!(
                        "{e}: give NAME or NAME==VERSION with a PEP 440 version."
                    ))
                })
            })
            .transpose()?;
        Ok(ReleaseSpec { project, version })
    }

    /// The block key of the version: `""` for the whole project.
    fn version_key(&self) -> String {
        self.version
            .as_ref()
            .map(canonical_version)
            .unwrap_or_default()
    }

    /// Whether the version `file_version` is this spec's release (any, for a project): PEP 440
    /// `==`, so `==1.0` means `1.0.0` too, and local builds (`1.0+cpu`) unless the spec names a
    /// local version itself.
    pub fn matches(&self, file_version: Option<&str>) -> bool {
        let Some(wanted) = &self.version else {
            return true;
        };
        let Some(version) = file_version.and_then(|v| parse_version(v).ok()) else {
            return false;
        };
        if wanted.is_local() {
            version == *wanted
        } else {
            version.without_local() == *wanted
        }
    }
}

impl std::fmt::Display for ReleaseSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.version {
            Some(version) => write!(f, "{}=={version}", self.project),
            None => f.write_str(&self.project),
        }
    }
}

/// The blocks on one upstream project, read when answering.
#[derive(Debug, Clone, Default)]
pub struct Blocks {
    /// The whole-project block, if any.
    project: Option<UpstreamBlock>,
    /// The release blocks, with their parsed spec.
    releases: Vec<(ReleaseSpec, UpstreamBlock)>,
}

impl Blocks {
    /// The blocks of one project as the catalog lists them (unparseable versions, which the
    /// registry never stores, are skipped).
    pub(crate) fn of(blocks: Vec<UpstreamBlock>) -> Blocks {
        let mut of = Blocks::default();
        for block in blocks {
            match &block.version {
                None => of.project = Some(block),
                Some(version) => {
                    if let Ok(spec) = ReleaseSpec::new(&block.project, Some(version)) {
                        of.releases.push((spec, block));
                    }
                }
            }
        }
        of
    }

    /// The whole-project block.
    pub(crate) fn project(&self) -> Option<&UpstreamBlock> {
        self.project.as_ref()
    }

    /// The block that hides files of version `version`, if any.
    pub(crate) fn blocking(&self, version: Option<&str>) -> Option<&UpstreamBlock> {
        self.project.as_ref().or_else(|| {
            self.releases
                .iter()
                .find(|(spec, _)| spec.matches(version))
                .map(|(_, block)| block)
        })
    }

    /// Whether nothing is blocked.
    pub(crate) fn is_empty(&self) -> bool {
        self.project.is_none() && self.releases.is_empty()
    }
}

/// What a refusal says of a block: what is blocked, since when, by whom and why.
pub(crate) fn describe(block: &UpstreamBlock) -> String {
    let what = match &block.version {
        Some(version) => format!("release {} {version}", block.project),
        None => format!("project '{}'", block.project),
    };
    format!(
        "the upstream {what} is blocked in this index (since {} by {}): {}",
        block.created.format(&Rfc3339).unwrap_or_default(),
        block.created_by,
        block.reason
    )
}

/// Only an admin, or the operator through the CLI, blocks and unblocks.
fn require_admin(actor: Actor<'_>) -> Result<(), RegistryError> {
    match actor {
        Actor::Cli => Ok(()),
        Actor::User { identity, .. } if identity.user.is_admin => Ok(()),
        Actor::User { identity, .. } => Err(crate::auth::forbidden(format!(
            "User '{}' is not an admin: only an admin (or the operator, with `pyindex upstream \
             block`) may block or unblock upstream projects.",
            identity.user.name
        ))),
        Actor::Anonymous { .. } => Err(RegistryError::rejected(
            Rejection::Unauthorized,
            "Blocking upstream projects needs an admin account: send its credentials.",
        )),
    }
}

impl Registry {
    fn block_audit(actor: Actor<'_>, action: &str, spec: &ReleaseSpec) -> AuditEntry {
        AuditEntry {
            at: OffsetDateTime::now_utc(),
            actor: actor.name(),
            action: action.to_owned(),
            subject: spec.to_string(),
            address: actor.address(),
            detail: None,
        }
    }

    /// Blocks an upstream project or release (`spec`) for `reason`: hidden from pages and
    /// downloads at once, cached or not. Blocking again replaces the reason. Admins (and the
    /// CLI) only. Returns the block and whether it is new.
    pub async fn block_upstream(
        &self,
        actor: Actor<'_>,
        spec: &ReleaseSpec,
        reason: &str,
    ) -> Result<(UpstreamBlock, bool), RegistryError> {
        require_admin(actor)?;
        let reason = clean_reason(Some(reason))?.ok_or_else(|| {
            RegistryError::bad_request(
                "Say why it is blocked (--reason, or \"reason\" in the body): every refusal shows it.",
            )
        })?;
        let mut audit = Self::block_audit(actor, "upstream.block", spec);
        audit.detail = Some(reason.clone());
        let block = UpstreamBlock {
            project: spec.project.clone(),
            version: spec.version.as_ref().map(ToString::to_string),
            version_key: spec.version_key(),
            reason,
            created: audit.at,
            created_by: audit.actor.clone(),
        };
        let created = self
            .upstream_index
            .add_upstream_block(&block, &audit)
            .await?;
        Self::log_audited(&audit);
        self.apply_change(&Change::Project(spec.project.clone()));
        Ok((block, created))
    }

    /// Lifts the block of `spec` (the same key: `NAME==1.0` lifts a block of `1.0.0`).
    /// Admins (and the CLI) only. `404` when there is no such block.
    pub async fn unblock_upstream(
        &self,
        actor: Actor<'_>,
        spec: &ReleaseSpec,
    ) -> Result<(), RegistryError> {
        require_admin(actor)?;
        let audit = Self::block_audit(actor, "upstream.unblock", spec);
        if !self
            .upstream_index
            .remove_upstream_block(&spec.project, &spec.version_key(), &audit)
            .await?
        {
            return Err(RegistryError::rejected(
                Rejection::NotFound,
                format!("'{spec}' is not blocked; `pyindex upstream blocks` lists the blocks."),
            ));
        }
        Self::log_audited(&audit);
        self.apply_change(&Change::Project(spec.project.clone()));
        Ok(())
    }

    /// The blocks on `project` (normalized), or on every project. Admins (and the CLI) only.
    pub async fn upstream_blocks(
        &self,
        actor: Actor<'_>,
        project: Option<&str>,
    ) -> Result<Vec<UpstreamBlock>, RegistryError> {
        require_admin(actor)?;
        Ok(self.upstream_index.upstream_blocks(project).await?)
    }

    /// The blocks on one project, for answering; none when no upstream is configured.
    pub(crate) async fn blocks_of(&self, project: &str) -> Result<Blocks, RegistryError> {
        if self.upstream.is_none() {
            return Ok(Blocks::default());
        }
        let blocks = self.namespace.blocks(self.upstream_index.as_ref()).await?;
        Ok(blocks.get(project).cloned().unwrap_or_default())
    }

    /// The upstream files of `spec` fetched so far (never those only served from the cache
    /// after their first fetch), oldest first fetch first.
    pub async fn upstream_fetch_log(
        &self,
        spec: &ReleaseSpec,
    ) -> Result<Vec<UpstreamFetch>, RegistryError> {
        let mut log = self.upstream_index.upstream_fetches(&spec.project).await?;
        log.retain(|fetch| spec.matches(fetch.version.as_deref()));
        Ok(log)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(s: &str) -> ReleaseSpec {
        ReleaseSpec::parse(s).unwrap()
    }

    #[test]
    fn a_release_spec_matches_by_pep_440_equality() {
        let one = spec("Evil_Pkg==1.0");
        assert_eq!(one.project, "evil-pkg");
        assert_eq!(one.to_string(), "evil-pkg==1.0");
        for same in ["1.0", "1.0.0", "1", "1.0+cpu", "1.0.0+local.7"] {
            assert!(one.matches(Some(same)), "{same}");
        }
        for other in ["1.0.1", "1.0rc1", "1.0.post1", "10", "not a version"] {
            assert!(!one.matches(Some(other)), "{other}");
        }
        assert!(!one.matches(None), "an unknown version is not a release's");
        let local = spec("evil==1.0+cpu");
        assert!(local.matches(Some("1.0.0+cpu")));
        assert!(!local.matches(Some("1.0")));
        let whole = spec("evil");
        assert!(whole.matches(None) && whole.matches(Some("9")));
        assert_eq!(one.version_key(), spec("evil-pkg==1.0.0").version_key());
        assert_eq!(whole.version_key(), "");
    }

    #[test]
    fn bad_specs_are_refused_with_the_form_to_use() {
        for bad in ["", "==1.0", "evil==", "evil==1.0.*", "evil==abc", "-bad-"] {
            assert!(ReleaseSpec::parse(bad).is_err(), "{bad}");
        }
        let message = ReleaseSpec::parse("evil==abc").unwrap_err().to_string();
        assert!(message.contains("NAME==VERSION"), "{message}");
    }

    fn block(version: Option<&str>) -> UpstreamBlock {
        UpstreamBlock {
            project: "evil".into(),
            version: version.map(Into::into),
            version_key: String::new(),
            reason: "hijacked".into(),
            created: OffsetDateTime::UNIX_EPOCH,
            created_by: "cli".into(),
        }
    }

    #[test]
    fn blocks_hide_their_release_or_the_whole_project() {
        let releases = Blocks::of(vec![block(Some("1.2")), block(Some("2.0"))]);
        assert!(releases.project().is_none());
        assert!(releases.blocking(Some("1.2.0")).is_some());
        assert!(releases.blocking(Some("2")).is_some());
        assert!(releases.blocking(Some("1.1")).is_none());
        assert!(releases.blocking(None).is_none());
        let whole = Blocks::of(vec![block(None), block(Some("1.2"))]);
        assert!(whole.blocking(Some("0.1")).is_some());
        assert!(whole.blocking(None).is_some());
        assert!(Blocks::default().is_empty());
        let said = describe(&block(Some("1.2")));
        assert!(
            said.contains("release evil 1.2") && said.contains("hijacked"),
            "{said}"
        );
    }

    use crate::test_support::Harness;
    use pyindex_catalog::{Accounts, UpstreamIndex};
    use std::sync::{Arc, Mutex};

    #[derive(Default)]
    struct Seen(Mutex<Vec<Change>>);

    impl crate::ChangeObserver for Seen {
        fn changed(&self, change: &Change) {
            self.0.lock().unwrap().push(change.clone());
        }
    }

    /// A registry whose only upstream cannot be reached: what answers without asking it
    /// shows that it was not asked.
    fn unreachable_upstream(h: &Harness, seen: Arc<Seen>) -> Registry {
        let index = pyindex_upstream::IndexUrl::parse("http://127.0.0.1:9/simple/", None).unwrap();
        h.registry
            .clone()
            .with_observer(seen)
            .with_upstream(pyindex_upstream::Settings {
                indexes: vec![index],
                timeout: std::time::Duration::from_millis(200),
                ttl: std::time::Duration::from_secs(60),
                cache_size: 1 << 20,
                max_file_size: 1 << 20,
            })
            .unwrap()
    }

    #[tokio::test]
    async fn a_blocked_project_is_refused_without_asking_the_upstream_until_unblocked() {
        let h = Harness::new().await;
        let seen = Arc::new(Seen::default());
        let registry = unreachable_upstream(&h, seen.clone());
        let whole = spec("Evil");
        let (block, created) = registry
            .block_upstream(Actor::Cli, &whole, "  typosquat  ")
            .await
            .unwrap();
        assert!(created);
        assert_eq!(block.reason, "typosquat");
        assert_eq!(*seen.0.lock().unwrap(), [Change::Project("evil".into())]);
        let page = registry.index_page("evil").await.unwrap_err().to_string();
        assert!(
            page.contains("blocked") && page.contains("typosquat"),
            "{page}"
        );
        let download = registry
            .upstream_download("evil", "evil-1.0.tar.gz")
            .await
            .unwrap_err();
        assert!(
            matches!(&download, RegistryError::Rejected { rejection: Rejection::Forbidden, message } if message.contains("typosquat")),
            "{download:?}"
        );

        let (_, again) = registry
            .block_upstream(Actor::Cli, &whole, "confirmed")
            .await
            .unwrap();
        assert!(!again, "blocking again replaces the reason");
        registry.unblock_upstream(Actor::Cli, &whole).await.unwrap();
        assert!(
            matches!(
                registry.index_page("evil").await,
                Err(RegistryError::Internal(_)
                    | RegistryError::Rejected {
                        rejection: Rejection::BadGateway,
                        ..
                    })
            ),
            "unblocked, the upstream is asked (and is down)"
        );
        let missing = registry.unblock_upstream(Actor::Cli, &whole).await;
        assert!(matches!(
            missing,
            Err(RegistryError::Rejected {
                rejection: Rejection::NotFound,
                ..
            })
        ));
        let actions: Vec<String> = h
            .database
            .audit(10)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.action)
            .collect();
        assert_eq!(
            actions,
            ["upstream.block", "upstream.block", "upstream.unblock"]
        );
    }

    #[tokio::test]
    async fn only_admins_block_and_a_reason_is_required() {
        let h = Harness::new().await;
        let user = h.user("uma", false).await;
        let as_user = Actor::User {
            identity: &user,
            address: "127.0.0.1",
        };
        let refused = h.registry.block_upstream(as_user, &spec("evil"), "x").await;
        assert!(matches!(
            refused,
            Err(RegistryError::Rejected {
                rejection: Rejection::Forbidden,
                ..
            })
        ));
        let anonymous = Actor::Anonymous {
            address: "127.0.0.1",
        };
        assert!(
            h.registry
                .block_upstream(anonymous, &spec("evil"), "x")
                .await
                .is_err()
        );
        let admin = h.user("ada", true).await;
        let as_admin = Actor::User {
            identity: &admin,
            address: "127.0.0.1",
        };
        let no_reason = h
            .registry
            .block_upstream(as_admin, &spec("evil"), " ")
            .await;
        assert!(matches!(
            no_reason,
            Err(RegistryError::Rejected {
                rejection: Rejection::BadRequest,
                ..
            })
        ));
        let (block, _) = h
            .registry
            .block_upstream(as_admin, &spec("evil==1.0.0"), "bad")
            .await
            .unwrap();
        assert_eq!(
            (block.version.as_deref(), block.created_by.as_str()),
            (Some("1.0.0"), "ada")
        );
        // `==1` names the same release.
        h.registry
            .unblock_upstream(as_admin, &spec("evil==1"))
            .await
            .unwrap();
        assert!(
            h.registry
                .upstream_blocks(Actor::Cli, None)
                .await
                .unwrap()
                .is_empty()
        );
    }

    #[tokio::test]
    async fn the_fetch_log_is_read_by_release() {
        let h = Harness::new().await;
        for (filename, version) in [("up-1.0.tar.gz", "1.0"), ("up-1.0.1.tar.gz", "1.0.1")] {
            let at = OffsetDateTime::now_utc();
            let fetch = UpstreamFetch {
                project: "up".into(),
                version: Some(version.into()),
                filename: filename.into(),
                sha256: format!("{:0>64}", version.len()),
                upload_time: None,
                first_fetched: at,
                last_fetched: at,
                fetches: 1,
                last_served: at,
            };
            h.database.record_upstream_fetch(&fetch).await.unwrap();
        }
        let names =
            |log: Vec<UpstreamFetch>| log.into_iter().map(|f| f.filename).collect::<Vec<_>>();
        let one = h
            .registry
            .upstream_fetch_log(&spec("UP==1.0.0"))
            .await
            .unwrap();
        assert_eq!(names(one), ["up-1.0.tar.gz"]);
        assert_eq!(
            h.registry
                .upstream_fetch_log(&spec("up"))
                .await
                .unwrap()
                .len(),
            2
        );
        assert!(
            h.registry
                .upstream_fetch_log(&spec("up==2"))
                .await
                .unwrap()
                .is_empty()
        );
    }
}
