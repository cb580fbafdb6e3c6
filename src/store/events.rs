//! The audit log: events keyed by sequence number, and an index by deployment id.

use sled::transaction::TransactionalTree;
use sled::Transactional;
use time::OffsetDateTime;

use crate::model::{DeploymentKey, Event, EventOutcome};

use super::{
    abort, decode, encode, keys, storage, transaction_error, Change, Scan, Store, StoreError,
    EVENTS, EVENTS_BY_DEPLOYMENT, META,
};

/// Key in `meta` of the last assigned event sequence number. A counter in the
/// transaction, unlike sled's `generate_id`, gives numbers without gaps.
const EVENT_SEQ_KEY: &[u8] = b"event_seq";

/// An event before the store assigns its sequence number.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    pub time: OffsetDateTime,
    pub deployment: Option<DeploymentKey>,
    /// Id under which the event is indexed. If it is `None` and `deployment`
    /// names a stored deployment, the store uses that deployment's id.
    pub deployment_id: Option<String>,
    /// OS user of the client that made the request, or `agent`.
    pub user: String,
    pub action: String,
    pub outcome: EventOutcome,
    pub message: String,
}

impl Store {
    /// Assigns the next sequence number to `new` and stores it, with its
    /// deployment index entry, in one transaction.
    pub fn append_event(&self, new: NewEvent) -> Result<Event, StoreError> {
        if let Some(id) = &new.deployment_id {
            keys::check_component("deployment id", id)?;
        }
        let index_key = new.deployment.as_ref().map(keys::deployment_index);
        let trees = (
            &self.events,
            &self.events_by_deployment,
            &self.deployment_keys,
            &self.meta,
        );

        trees
            .transaction(|(events, by_deployment, deployment_keys, meta)| {
                let seq = next_seq(meta)?;
                let event = event_from(&new, seq);
                let key = keys::sequence(seq);
                let value = match encode(EVENTS, &key, &event) {
                    Ok(value) => value,
                    Err(error) => return abort(error),
                };
                events.insert(&key, value)?;

                let id = match &new.deployment_id {
                    Some(id) => Some(id.clone()),
                    None => lookup_id(deployment_keys, index_key.as_deref())?,
                };
                if let Some(id) = id {
                    by_deployment.insert(keys::numbered(&id, seq), &[])?;
                }
                Ok(event)
            })
            .map_err(transaction_error(
                "events, events_by_deployment, deployment_keys, meta",
            ))
            .inspect(|event| self.announce(Change::Event(Box::new(event.clone()))))
    }

    /// Lists the `limit` most recent events, oldest first, of one deployment
    /// id or of all deployments.
    pub fn events(
        &self,
        deployment_id: Option<&str>,
        limit: usize,
    ) -> Result<Scan<Event>, StoreError> {
        let mut scan = match deployment_id {
            None => self.recent_events(limit)?,
            Some(id) => self.recent_deployment_events(id, limit)?,
        };
        scan.records.reverse();
        Ok(scan)
    }

    /// Reads the newest `limit` events, newest first.
    fn recent_events(&self, limit: usize) -> Result<Scan<Event>, StoreError> {
        let mut scan = Scan::default();

        for entry in self.events.iter().rev().take(limit) {
            let (key, value) = entry.map_err(storage(EVENTS))?;
            scan.push(decode(EVENTS, &key, &value));
        }
        Ok(scan)
    }

    /// Reads the newest `limit` events of one deployment, newest first.
    fn recent_deployment_events(&self, id: &str, limit: usize) -> Result<Scan<Event>, StoreError> {
        let mut scan = Scan::default();
        let index = self.events_by_deployment.scan_prefix(keys::prefix(id));

        for entry in index.rev().take(limit) {
            let (index_key, _) = entry.map_err(storage(EVENTS_BY_DEPLOYMENT))?;
            scan.push(self.resolve_event(&index_key));
        }
        Ok(scan)
    }

    fn resolve_event(&self, index_key: &[u8]) -> Result<Event, StoreError> {
        let dangling = || StoreError::DanglingIndex {
            tree: EVENTS_BY_DEPLOYMENT,
            key: keys::describe(EVENTS_BY_DEPLOYMENT, index_key),
            target: EVENTS,
        };

        let seq = keys::trailing_number(index_key).ok_or_else(dangling)?;
        let key = keys::sequence(seq);
        let value = self.events.get(key).map_err(storage(EVENTS))?;
        let value = value.ok_or_else(dangling)?;
        decode(EVENTS, &key, &value)
    }
}

type TxResult<T> = Result<T, sled::transaction::ConflictableTransactionError<StoreError>>;

/// Increments the event counter in `meta` and returns the new value, which
/// is 1 for the first event.
fn next_seq(meta: &TransactionalTree) -> TxResult<u64> {
    let last = match meta.get(EVENT_SEQ_KEY)? {
        None => 0,
        Some(bytes) => match decode::<u64>(META, EVENT_SEQ_KEY, &bytes) {
            Ok(last) => last,
            Err(error) => return abort(error),
        },
    };

    let seq = last + 1;
    meta.insert(EVENT_SEQ_KEY, seq.to_string().into_bytes())?;
    Ok(seq)
}

/// Reads the deployment id that the name index stores for `index_key`.
fn lookup_id(
    deployment_keys: &TransactionalTree,
    index_key: Option<&[u8]>,
) -> TxResult<Option<String>> {
    let Some(index_key) = index_key else {
        return Ok(None);
    };
    let id = deployment_keys.get(index_key)?;
    Ok(id.map(|id| String::from_utf8_lossy(&id).into_owned()))
}

fn event_from(new: &NewEvent, seq: u64) -> Event {
    Event {
        seq,
        time: new.time,
        deployment: new.deployment.clone(),
        user: new.user.clone(),
        action: new.action.clone(),
        outcome: new.outcome,
        message: new.message.clone(),
    }
}
