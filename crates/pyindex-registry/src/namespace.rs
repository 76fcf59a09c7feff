//! Which names are local, and what the operator blocked upstream: read from the catalog once and
//! kept in memory until a change says otherwise, so that deciding where a name is served from
//! (a page, a file or a metadata file of a proxied project) costs no catalog query.
//!
//! Both sets are small (a private index's projects; the operator's blocks) and change rarely.
//! The local names are read again after a project is created ([`Change::ProjectList`]) or when a
//! name not known as local changes; the blocks after any project changes (a block or unblock is
//! a change of its project). A read that started before an invalidation never puts its result
//! in place afterwards (the epoch check below), so a request cannot bring back what a change
//! dropped. Each part is read by one request at a time: the others that find it missing at the
//! same moment (the burst of a client's first install, fifty requests at once) wait for that read
//! instead of each making its own (59 catalog queries in one cold install before).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};

use pyindex_catalog::{Catalog, Change, UpstreamIndex};
use tokio::sync::{Mutex, MutexGuard};

use crate::RegistryError;
use crate::blocks::Blocks;

/// Every local project's normalized name.
pub(crate) type LocalNames = Arc<HashSet<String>>;
/// The blocks of every blocked upstream project, by normalized name.
pub(crate) type BlockMap = Arc<HashMap<String, Blocks>>;

/// The memo of local names and upstream blocks.
#[derive(Default)]
pub(crate) struct Namespace {
    state: RwLock<State>,
    /// Held while the local names are read.
    reading_local: Mutex<()>,
    /// Held while the blocks are read.
    reading_blocks: Mutex<()>,
}

/// The right to read a missing part: its reading lock, and the epoch the read starts in.
type Turn<'a> = (MutexGuard<'a, ()>, u64);

#[derive(Default)]
struct State {
    /// Bumped by every invalidation: a read started in an older epoch is not kept.
    epoch: u64,
    local: Option<LocalNames>,
    blocks: Option<BlockMap>,
}

impl Namespace {
    /// The local project names, read from `catalog` when not held.
    pub(crate) async fn local_names(
        &self,
        catalog: &dyn Catalog,
    ) -> Result<LocalNames, RegistryError> {
        let (_turn, epoch) = match self
            .held_or_turn(&self.reading_local, |state| state.local.clone())
            .await
        {
            Ok(held) => return Ok(held),
            Err(turn) => turn,
        };
        let names: LocalNames = Arc::new(catalog.project_names().await?.into_iter().collect());
        self.keep(epoch, |state| state.local = Some(names.clone()));
        Ok(names)
    }

    /// The blocks on every blocked upstream project, read from `index` when not held.
    pub(crate) async fn blocks(
        &self,
        index: &dyn UpstreamIndex,
    ) -> Result<BlockMap, RegistryError> {
        let (_turn, epoch) = match self
            .held_or_turn(&self.reading_blocks, |state| state.blocks.clone())
            .await
        {
            Ok(held) => return Ok(held),
            Err(turn) => turn,
        };
        let mut by_project: HashMap<String, Vec<_>> = HashMap::new();
        for block in index.upstream_blocks(None).await? {
            by_project
                .entry(block.project.clone())
                .or_default()
                .push(block);
        }
        let blocks: BlockMap = Arc::new(
            by_project
                .into_iter()
                .map(|(project, blocks)| (project, Blocks::of(blocks)))
                .collect(),
        );
        self.keep(epoch, |state| state.blocks = Some(blocks.clone()));
        Ok(blocks)
    }

    /// What `part` picks, if held; else the turn to read it, once the read in progress (if
    /// any) is over and has not left it in place.
    async fn held_or_turn<'a, T>(
        &self,
        reading: &'a Mutex<()>,
        part: impl Fn(&State) -> Option<T>,
    ) -> Result<T, Turn<'a>> {
        if let Ok(held) = self.held(&part) {
            return Ok(held);
        }
        let turn = reading.lock().await;
        self.held(&part).map_err(|epoch| (turn, epoch))
    }

    /// What `part` picks, if held; else the epoch to read it in.
    fn held<T>(&self, part: impl FnOnce(&State) -> Option<T>) -> Result<T, u64> {
        match self.state.read() {
            Ok(state) => part(&state).ok_or(state.epoch),
            Err(_) => Err(0),
        }
    }

    /// Applies `put` if nothing was invalidated since `epoch`.
    fn keep(&self, epoch: u64, put: impl FnOnce(&mut State)) {
        if let Ok(mut state) = self.state.write()
            && state.epoch == epoch
        {
            put(&mut state);
        }
    }

    /// Drops what `change` may have made wrong.
    pub(crate) fn changed(&self, change: &Change) {
        let Ok(mut state) = self.state.write() else {
            return;
        };
        let (local, blocks) = match change {
            Change::Project(name) => {
                // A name not known as local that changes may have just become local.
                let unknown = state
                    .local
                    .as_ref()
                    .is_none_or(|names| !names.contains(name));
                (unknown, true)
            }
            Change::ProjectList | Change::Everything => (true, true),
            Change::Account(_) | Change::UpstreamFile(_) => (false, false),
        };
        if !(local || blocks) {
            return;
        }
        state.epoch += 1;
        if local {
            state.local = None;
        }
        if blocks {
            state.blocks = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(names: &[&str]) -> Namespace {
        let namespace = Namespace::default();
        namespace.keep(0, |state| {
            state.local = Some(Arc::new(names.iter().map(|n| n.to_string()).collect()));
            state.blocks = Some(BlockMap::default());
        });
        namespace
    }

    fn holds(namespace: &Namespace) -> (bool, bool) {
        let state = namespace.state.read().unwrap();
        (state.local.is_some(), state.blocks.is_some())
    }

    #[test]
    fn a_change_of_a_local_project_keeps_the_names_and_drops_the_blocks() {
        let namespace = held(&["mine"]);
        namespace.changed(&Change::Project("mine".into()));
        assert_eq!(holds(&namespace), (true, false));
    }

    #[test]
    fn a_change_of_another_name_or_a_new_project_drops_both() {
        for change in [
            Change::Project("new".into()),
            Change::ProjectList,
            Change::Everything,
        ] {
            let namespace = held(&["mine"]);
            namespace.changed(&change);
            assert_eq!(holds(&namespace), (false, false), "{change:?}");
        }
        let namespace = held(&["mine"]);
        namespace.changed(&Change::Account("alice".into()));
        assert_eq!(holds(&namespace), (true, true));
    }

    #[tokio::test]
    async fn requests_that_find_a_part_missing_together_wait_for_one_read() {
        let namespace = Arc::new(Namespace::default());
        let reads = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let requests: Vec<_> = (0..20)
            .map(|_| {
                let (namespace, reads) = (namespace.clone(), reads.clone());
                tokio::spawn(async move {
                    let turn = namespace
                        .held_or_turn(&namespace.reading_local, |state| state.local.clone())
                        .await;
                    if let Err((_turn, epoch)) = turn {
                        reads.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        // The others find the part missing meanwhile.
                        tokio::task::yield_now().await;
                        namespace.keep(epoch, |state| state.local = Some(LocalNames::default()));
                    }
                })
            })
            .collect();
        for request in requests {
            request.await.unwrap();
        }
        assert_eq!(reads.load(std::sync::atomic::Ordering::Relaxed), 1);
    }

    #[test]
    fn a_read_from_before_a_change_is_not_kept() {
        let namespace = Namespace::default();
        namespace.changed(&Change::ProjectList);
        namespace.keep(0, |state| state.local = Some(LocalNames::default()));
        assert_eq!(holds(&namespace), (false, false));
        namespace.keep(1, |state| state.local = Some(LocalNames::default()));
        assert_eq!(holds(&namespace), (true, false));
    }
}
