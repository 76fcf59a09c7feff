//! The change signal on PostgreSQL: every transaction that appends to the change log also sends
//! `NOTIFY` on [`CHANNEL`] (delivered when it commits), and each replica's change watcher
//! `LISTEN`s on a connection of its own, so a change reaches the other replicas within
//! milliseconds instead of at their next poll.

use std::time::Duration;

use sqlx::PgConnection;
use sqlx::postgres::{PgListener, PgPool, PgPoolOptions};
use tokio::sync::Notify;

use crate::CatalogError;

/// The notification channel. One per database; the payload is the schema whose change log
/// grew, so that catalogs in other schemas of one database (tests) ignore it.
pub(super) const CHANNEL: &str = "pyindex_changes";

/// The `application_name` of the listening connections, followed by the schema in parentheses,
/// so that an operator can tell them in `pg_stat_activity` (one per replica, apart from its
/// pool), and tell apart the catalogs of several schemas in one database.
pub(super) const APPLICATION_NAME: &str = "pyindex change listener";

/// The `application_name` of the listening connections of the catalog in `schema`, cut to the
/// 63 bytes PostgreSQL keeps.
pub(super) fn application_name(schema: &str) -> String {
    let mut name = format!("{APPLICATION_NAME} ({schema})");
    let mut end = name.len().min(63);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    name.truncate(end);
    name
}

/// The first wait before listening again after the listening connection failed; doubled after
/// each failure up to [`MAX_BACKOFF`]. Polling keeps readers current meanwhile.
const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// Queues the signal for the writer's transaction: PostgreSQL delivers it on commit (never on
/// rollback) and folds repeats within one transaction into one.
pub(super) async fn notify(tx: &mut PgConnection) -> Result<(), CatalogError> {
    sqlx::query("SELECT pg_notify($1, COALESCE(current_schema(), ''))")
        .bind(CHANNEL)
        .execute(tx)
        .await?;
    Ok(())
}

/// Listens for [`CHANNEL`] on a connection apart from `pool` (the pool's connections stay free
/// for queries), waking `wake` for each signal of this catalog's schema and after every
/// (re)connection; retries with backoff when the connection fails. Runs until cancelled.
pub(super) async fn listen(pool: &PgPool, wake: &Notify) {
    let mut backoff = MIN_BACKOFF;
    loop {
        let error = listen_once(pool, wake, &mut backoff).await;
        tracing::warn!(
            %error,
            retry_in = ?backoff,
            "lost the catalog's change notifications; polling the change log until they return"
        );
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// One listening connection, from connecting until it fails. Resets `backoff` once listening.
async fn listen_once(pool: &PgPool, wake: &Notify, backoff: &mut Duration) -> sqlx::Error {
    let schema = match schema_of(pool).await {
        Ok(schema) => schema,
        Err(e) => return e,
    };
    // A pool of one connection for the listener, with the catalog's options (address,
    // credentials, search_path).
    let own = PgPoolOptions::new()
        .max_connections(1)
        .idle_timeout(None)
        .max_lifetime(None)
        .connect_lazy_with(
            (*pool.connect_options())
                .clone()
                .application_name(&application_name(&schema)),
        );
    let mut listener = match PgListener::connect_with(&own).await {
        Ok(listener) => listener,
        Err(e) => return e,
    };
    // After a loss, connect again here (with backoff), not inside `try_recv`.
    listener.eager_reconnect(false);
    if let Err(e) = listener.listen(CHANNEL).await {
        return e;
    }
    *backoff = MIN_BACKOFF;
    // Writes committed before LISTEN took effect were not signalled: read the log now.
    wake.notify_one();
    loop {
        match listener.try_recv().await {
            Ok(Some(signal)) if signal.payload() == schema => wake.notify_one(),
            Ok(Some(_)) => {}
            Ok(None) => return sqlx::Error::Protocol("the listening connection closed".into()),
            Err(e) => return e,
        }
    }
}

/// The schema this catalog's connections write to (what writers send as the payload).
pub(super) async fn schema_of(pool: &PgPool) -> Result<String, sqlx::Error> {
    sqlx::query_scalar("SELECT COALESCE(current_schema(), '')")
        .fetch_one(pool)
        .await
}
