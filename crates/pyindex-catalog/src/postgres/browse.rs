//! [`Browse`] on PostgreSQL: the web pages' reads and browser sessions.

use async_trait::async_trait;
use sqlx::Row;
use sqlx::postgres::PgRow;
use time::OffsetDateTime;

use super::{PgCatalog, from_micros, micros, project_status};
use crate::sqlite::browse::{details_json, like_escaped};
use crate::{
    Browse, CatalogError, Counts, MissingDetails, NewSession, ReleaseDetails, ReleaseRecord,
    ReleaseSummary, SearchHit, SearchPage, SearchQuery, SessionRecord, StoredReadme, Yank,
};

/// The rank and filter of a search; `$1` exact name, `$2` name prefix pattern, `$3` name
/// substring pattern, `$4` summary substring pattern (patterns escaped with `\`). The summary
/// searched is the newest release's, kept on the project in lower case (see
/// [`set_project_summary`]) so that a search reads one table and `LIKE` means the same on
/// engines whose `LIKE` is case-sensitive.
const SEARCH_FROM: &str = "FROM projects p \
     WHERE p.name = $1 OR p.name LIKE $2 ESCAPE '\\' OR p.name LIKE $3 ESCAPE '\\' \
     OR p.summary_folded LIKE $4 ESCAPE '\\'";

/// Keeps the summary of the project's newest release on the project, inside the caller's
/// write transaction.
pub(crate) async fn set_project_summary(
    tx: &mut sqlx::PgConnection,
    project_id: i64,
    summary: Option<&str>,
) -> Result<(), CatalogError> {
    sqlx::query("UPDATE projects SET summary = $1, summary_folded = $2 WHERE id = $3")
        .bind(summary)
        .bind(summary.map(str::to_lowercase))
        .bind(project_id)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

fn details_from(json: Option<String>) -> Result<Option<ReleaseDetails>, CatalogError> {
    json.map(|json| {
        serde_json::from_str(&json)
            .map_err(|e| CatalogError::Corrupt(format!("release details: {e}")))
    })
    .transpose()
}

fn stored_readme(row: &PgRow) -> Result<StoredReadme, CatalogError> {
    Ok(StoredReadme {
        release_id: row.try_get("id")?,
        html: row.try_get("readme_html")?,
        description: row.try_get("description")?,
        content_type: row.try_get("description_content_type")?,
    })
}

fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

fn release_record(row: &PgRow) -> Result<ReleaseRecord, CatalogError> {
    let yanked: bool = row.try_get("yanked")?;
    let requires_dist: String = row.try_get("requires_dist")?;
    Ok(ReleaseRecord {
        version: row.try_get("version")?,
        canonical_version: row.try_get("canonical_version")?,
        summary: row.try_get("summary")?,
        description_content_type: row.try_get("description_content_type")?,
        requires_python: row.try_get("requires_python")?,
        requires_dist: serde_json::from_str(&requires_dist)
            .map_err(|e| CatalogError::Corrupt(format!("requires_dist: {e}")))?,
        yank: if yanked {
            Yank::Yanked(row.try_get("yanked_reason")?)
        } else {
            Yank::NotYanked
        },
        created: from_micros(row.try_get("created_us")?)?,
        details: details_from(row.try_get("details")?)?,
    })
}

#[async_trait]
impl Browse for PgCatalog {
    async fn counts(&self) -> Result<Counts, CatalogError> {
        let (projects, releases, files): (i64, i64, i64) = sqlx::query_as(
            "SELECT (SELECT COUNT(*) FROM projects), (SELECT COUNT(*) FROM releases), \
             (SELECT COUNT(*) FROM files)",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(Counts {
            projects: count(projects),
            releases: count(releases),
            files: count(files),
        })
    }

    async fn recent_releases(&self, limit: u32) -> Result<Vec<ReleaseSummary>, CatalogError> {
        let rows = sqlx::query(
            "SELECT p.name, p.display_name, r.version, r.summary, r.created_us \
             FROM releases r JOIN projects p ON p.id = r.project_id \
             ORDER BY r.id DESC LIMIT $1",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(ReleaseSummary {
                    project: row.try_get("name")?,
                    display_name: row.try_get("display_name")?,
                    version: row.try_get("version")?,
                    summary: row.try_get("summary")?,
                    created: from_micros(row.try_get("created_us")?)?,
                })
            })
            .collect()
    }

    async fn search(
        &self,
        query: &SearchQuery,
        limit: u32,
        offset: u64,
    ) -> Result<SearchPage, CatalogError> {
        let name = like_escaped(&query.name);
        let prefix = format!("{name}%");
        let inside = format!("%{name}%");
        let text = format!("%{}%", like_escaped(&query.text));
        let offset = i64::try_from(offset).unwrap_or(i64::MAX);
        let mut conn = self.pool.acquire().await?;
        // One scan gives the page and, as a window over every match, the total.
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT p.name, p.display_name, p.status, p.summary, \
             CASE WHEN p.name = $1 THEN 0 WHEN p.name LIKE $2 ESCAPE '\\' THEN 1 ELSE 2 END AS rank, \
             COUNT(*) OVER () AS total \
             {SEARCH_FROM} ORDER BY rank, p.name LIMIT $5 OFFSET $6"
        )))
        .bind(&query.name)
        .bind(&prefix)
        .bind(&inside)
        .bind(&text)
        .bind(i64::from(limit))
        .bind(offset)
        .fetch_all(&mut *conn)
        .await?;
        let total: i64 = match rows.first() {
            Some(row) => row.try_get("total")?,
            // A page past the last: the total needs a scan of its own.
            None if offset > 0 => {
                sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                    "SELECT COUNT(*) {SEARCH_FROM}"
                )))
                .bind(&query.name)
                .bind(&prefix)
                .bind(&inside)
                .bind(&text)
                .fetch_one(&mut *conn)
                .await?
            }
            None => 0,
        };
        let hits = rows
            .iter()
            .map(|row| {
                Ok(SearchHit {
                    name: row.try_get("name")?,
                    display_name: row.try_get("display_name")?,
                    status: project_status(row)?,
                    summary: row.try_get("summary")?,
                })
            })
            .collect::<Result<_, CatalogError>>()?;
        Ok(SearchPage {
            total: count(total),
            hits,
        })
    }

    async fn releases(&self, project: &str) -> Result<Vec<ReleaseRecord>, CatalogError> {
        sqlx::query(
            "SELECT r.version, r.canonical_version, r.summary, r.description_content_type, \
             r.requires_python, r.requires_dist, r.yanked, \
             r.yanked_reason, r.created_us, r.details \
             FROM releases r JOIN projects p ON p.id = r.project_id \
             WHERE p.name = $1 ORDER BY r.id",
        )
        .bind(project)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(release_record)
        .collect()
    }

    async fn releases_without_details(
        &self,
        limit: u32,
    ) -> Result<Vec<MissingDetails>, CatalogError> {
        let rows: Vec<(i64, Option<String>)> = sqlx::query_as(
            "SELECT r.id, (SELECT f.metadata_sha256 FROM files f WHERE f.release_id = r.id \
             AND f.metadata_sha256 IS NOT NULL ORDER BY f.id LIMIT 1) \
             FROM releases r WHERE r.details IS NULL ORDER BY r.id LIMIT $1",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(release_id, metadata_sha256)| MissingDetails {
                release_id,
                metadata_sha256,
            })
            .collect())
    }

    async fn set_release_details(
        &self,
        release_id: i64,
        details: &ReleaseDetails,
    ) -> Result<(), CatalogError> {
        sqlx::query("UPDATE releases SET details = $1 WHERE id = $2 AND details IS NULL")
            .bind(details_json(details)?)
            .bind(release_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn readme(
        &self,
        project: &str,
        canonical_version: &str,
    ) -> Result<Option<StoredReadme>, CatalogError> {
        // The description (possibly large) only when there is nothing rendered.
        sqlx::query(
            "SELECT r.id, r.readme_html, r.description_content_type, \
             CASE WHEN r.readme_html IS NULL THEN r.description END AS description \
             FROM releases r JOIN projects p ON p.id = r.project_id \
             WHERE p.name = $1 AND r.canonical_version = $2",
        )
        .bind(project)
        .bind(canonical_version)
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(stored_readme)
        .transpose()
    }

    async fn releases_without_readme(&self, limit: u32) -> Result<Vec<StoredReadme>, CatalogError> {
        sqlx::query(
            "SELECT id, readme_html, description, description_content_type FROM releases \
             WHERE readme_html IS NULL ORDER BY id LIMIT $1",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(stored_readme)
        .collect()
    }

    async fn set_release_readme(&self, release_id: i64, html: &str) -> Result<(), CatalogError> {
        sqlx::query("UPDATE releases SET readme_html = $1 WHERE id = $2 AND readme_html IS NULL")
            .bind(html)
            .bind(release_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn create_session(&self, session: &NewSession) -> Result<(), CatalogError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM ui_sessions WHERE expires_us <= $1")
            .bind(micros(session.created))
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO ui_sessions (id_hash, user_id, csrf, created_us, expires_us) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&session.id_hash)
        .bind(session.user_id)
        .bind(&session.csrf)
        .bind(micros(session.created))
        .bind(micros(session.expires))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn session(&self, id_hash: &str) -> Result<Option<SessionRecord>, CatalogError> {
        let row = sqlx::query(
            "SELECT u.*, s.csrf, s.expires_us FROM ui_sessions s JOIN users u ON u.id = s.user_id \
             WHERE s.id_hash = $1 AND s.expires_us > $2",
        )
        .bind(id_hash)
        .bind(micros(OffsetDateTime::now_utc()))
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            Ok(SessionRecord {
                user: super::accounts::user(&row)?,
                csrf: row.try_get("csrf")?,
                expires: from_micros(row.try_get("expires_us")?)?,
            })
        })
        .transpose()
    }

    async fn delete_session(&self, id_hash: &str) -> Result<bool, CatalogError> {
        Ok(sqlx::query("DELETE FROM ui_sessions WHERE id_hash = $1")
            .bind(id_hash)
            .execute(&self.pool)
            .await?
            .rows_affected()
            > 0)
    }

    async fn delete_sessions_of(&self, user: &str) -> Result<u64, CatalogError> {
        Ok(sqlx::query(
            "DELETE FROM ui_sessions WHERE user_id = (SELECT id FROM users WHERE name = $1)",
        )
        .bind(user)
        .execute(&self.pool)
        .await?
        .rows_affected())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Catalog;
    use crate::postgres::tests::open;

    fn query(q: &str) -> SearchQuery {
        SearchQuery {
            name: q.to_owned(),
            text: q.to_owned(),
        }
    }

    #[tokio::test]
    async fn search_ranks_exact_then_prefix_then_the_rest() {
        let Some((_schema, catalog)) = open().await else {
            return;
        };
        for (i, name) in ["aardvark_ranker", "ranker", "ranker_tools", "zebra"]
            .iter()
            .enumerate()
        {
            crate::suite::publish(
                &catalog,
                &format!("{name}-1.0-py3-none-any.whl"),
                &i.to_string(),
            )
            .await;
        }
        let page = catalog.search(&query("ranker"), 10, 0).await.unwrap();
        let names: Vec<_> = page.hits.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(names, ["ranker", "ranker-tools", "aardvark-ranker"]);
        assert_eq!(page.total, 3);
        let second = catalog.search(&query("ranker"), 2, 2).await.unwrap();
        assert_eq!(second.hits.len(), 1);
        assert_eq!(second.total, 3);
        let past = catalog.search(&query("ranker"), 2, 10).await.unwrap();
        assert!(past.hits.is_empty());
        assert_eq!(past.total, 3, "a page past the last still counts");
        // Summaries match too, whatever their case.
        let by_summary = SearchQuery {
            name: "zzz".into(),
            text: "s".into(),
        };
        assert_eq!(catalog.search(&by_summary, 10, 0).await.unwrap().total, 4);
        // `_` and `%` are literal characters, not wildcards.
        assert_eq!(
            catalog.search(&query("r_nker"), 10, 0).await.unwrap().total,
            0
        );
        assert_eq!(catalog.search(&query("%"), 10, 0).await.unwrap().total, 0);
    }

    #[tokio::test]
    async fn releases_counts_and_details_round_trip() {
        let Some((_schema, catalog)) = open().await else {
            return;
        };
        crate::suite::publish(&catalog, "shared_pkg-0.1.0-py3-none-any.whl", "aa").await;
        crate::suite::publish(&catalog, "shared_pkg-0.2.0-py3-none-any.whl", "bb").await;
        let counts = catalog.counts().await.unwrap();
        assert_eq!((counts.projects, counts.releases, counts.files), (1, 2, 2));
        let releases = catalog.releases("shared-pkg").await.unwrap();
        assert_eq!(releases.len(), 2);
        assert_eq!(releases[0].details, Some(ReleaseDetails::default()));
        let recent = catalog.recent_releases(1).await.unwrap();
        assert_eq!(recent[0].version, "0.2.0");
        sqlx::query("UPDATE releases SET details = NULL")
            .execute(&catalog.pool)
            .await
            .unwrap();
        let missing = catalog.releases_without_details(10).await.unwrap();
        assert_eq!(missing.len(), 2);
        let details = ReleaseDetails {
            license: Some("MIT".into()),
            project_urls: vec![("Home".into(), "https://example.invalid/".into())],
            ..ReleaseDetails::default()
        };
        catalog
            .set_release_details(missing[0].release_id, &details)
            .await
            .unwrap();
        let releases = catalog.releases("shared-pkg").await.unwrap();
        assert_eq!(releases[0].details, Some(details));
        assert_eq!(releases[1].details, None);
        assert!(catalog.project("shared-pkg").await.unwrap().is_some());
    }

    #[tokio::test]
    async fn readmes_are_stored_once_and_read_for_one_release() {
        let Some((_schema, catalog)) = open().await else {
            return;
        };
        crate::suite::publish(&catalog, "shared_pkg-0.1.0-py3-none-any.whl", "aa").await;
        // As a release from before schema version 7: a description, nothing rendered.
        sqlx::query("UPDATE releases SET description = 'old *text*', readme_html = NULL")
            .execute(&catalog.pool)
            .await
            .unwrap();
        let stored = catalog.readme("shared-pkg", "0.1").await.unwrap().unwrap();
        assert_eq!(stored.html, None);
        assert_eq!(stored.description.as_deref(), Some("old *text*"));
        let missing = catalog.releases_without_readme(10).await.unwrap();
        assert_eq!(missing, std::slice::from_ref(&stored));
        catalog
            .set_release_readme(stored.release_id, "<p>first</p>")
            .await
            .unwrap();
        catalog
            .set_release_readme(stored.release_id, "<p>second</p>")
            .await
            .unwrap();
        let stored = catalog.readme("shared-pkg", "0.1").await.unwrap().unwrap();
        assert_eq!(
            stored.html.as_deref(),
            Some("<p>first</p>"),
            "the first one stays"
        );
        assert_eq!(stored.description, None, "not read once rendered");
        assert!(
            catalog
                .releases_without_readme(10)
                .await
                .unwrap()
                .is_empty()
        );
        assert!(catalog.readme("shared-pkg", "9").await.unwrap().is_none());
    }
}
