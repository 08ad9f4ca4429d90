//! Record operations every surface shares: tenancy, access checks,
//! versions and `If-Match` preconditions, and atomic read-modify-write.
//!
//! A record type implements [`Document`]; [`Records`] then lists, creates,
//! reads, updates and deletes it through the store. Updates take a closure
//! that changes the current value: it runs inside the store's write
//! transaction, so two updates of different fields never lose each other.
//! Rules that involve other records (a parent that must exist, a list id
//! that must name a list) run in the same transaction through
//! [`Document::check_relations`]; flows that write several records at once
//! get a [`WriteSession`] through [`Records::transact`]. Every write leaves
//! an entry in the record's audit trail, read back as typed
//! [`HistoryEntry`] values by [`Records::history`].

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::auth::{Principal, WorkspaceId};
use super::error::{DomainError, RecordKind};
pub use crate::store::stats::{
    Histogram, HistogramSnapshot, PoolReport, SECONDS_BUCKETS, StoreStats, WriterReport,
};
use crate::store::{self, SharedStore, StoredRecord, WriteTx};

/// How a new record's id is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdScheme {
    /// A new time-ordered UUID (version 7) is the id.
    Uuid,
    /// The next number of the kind's counter in the record's workspace, as
    /// a decimal string, is the id: unique in the workspace, not across
    /// workspaces.
    Sequence { start: i64 },
    /// A new time-ordered UUID (version 7) is the id, and the record also
    /// gets the next number of the kind's counter in its workspace (for
    /// surfaces that show both).
    UuidAndSequence { start: i64 },
}

/// The ids given to a record being created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewIds {
    pub key: String,
    pub number: Option<i64>,
}

/// A record type the core can store.
#[async_trait]
pub trait Document: Serialize + DeserializeOwned + Send + Sync + 'static {
    const KIND: RecordKind;
    const ID_SCHEME: IdScheme = IdScheme::Uuid;
    /// Whether [`Document::accessible_by`] can refuse a member: such kinds
    /// cannot be paged by the database for members (the page would count
    /// records they may not see).
    const PER_RECORD_ACCESS: bool = false;
    /// Whether writes of this kind go to the audit trail (customer records
    /// do; operational ones, such as an upload, need not).
    const AUDITED: bool = true;

    /// Whether `principal` (already known to be of the record's workspace)
    /// may read and change this record.
    fn accessible_by(&self, _principal: &Principal) -> bool {
        true
    }

    /// The record completed with the ids it was given on creation (for
    /// kinds that keep their number in the body).
    fn with_ids(self, _ids: &NewIds) -> Self {
        self
    }

    /// A second key, unique per workspace and kind, by which the record can
    /// also be found (see [`WriteSession::get_by_lookup`]).
    fn lookup_key(&self) -> Option<String> {
        None
    }

    /// Whether records of this kind keep search terms ([`Document::terms`])
    /// for [`Records::search`].
    const SEARCHABLE: bool = false;

    /// The record's search terms: `(field, normalised value)` pairs, kept
    /// in the record's own write transaction.
    fn terms(&self) -> Vec<(&'static str, String)> {
        Vec::new()
    }

    /// What a delete of this record changes in others, in the delete's
    /// own transaction (before the record goes).
    async fn before_delete(
        &self,
        _id: &str,
        _session: &mut WriteSession,
    ) -> Result<(), DomainError> {
        Ok(())
    }

    /// Rules that involve other records, checked inside the write
    /// transaction before the record is stored. `previous` is the value
    /// before an update (`None` on create), so a rule can check only what
    /// changed.
    async fn check_relations(
        &self,
        _id: &str,
        _previous: Option<&Self>,
        _session: &mut WriteSession,
    ) -> Result<(), DomainError> {
        Ok(())
    }
}

/// A record with the metadata the store keeps for it.
#[derive(Debug, Clone, PartialEq)]
pub struct Record<T> {
    pub id: String,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub data: T,
}

impl<T> Record<T> {
    /// The strong entity tag of this version, quotes included.
    pub fn etag(&self) -> String {
        etag_of(self.version)
    }
}

fn etag_of(version: i64) -> String {
    format!("\"{version}\"")
}

/// What an `If-Match` header asked for.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Precondition {
    /// No `If-Match`: the write applies to whatever is current.
    #[default]
    None,
    /// `If-Match: *`: the record must exist.
    Exists,
    /// `If-Match: "3", "4"`: the current version's tag must be listed. Weak
    /// tags never match, as RFC 9110 requires for `If-Match`.
    OneOf(Vec<String>),
    /// A header that is not `*` or entity tags: the write is refused (400),
    /// as a precondition nobody can read cannot be honoured.
    Malformed,
}

/// The syntax of `If-Match` (RFC 9110): `*`, or entity tags (`"3"`,
/// `W/"3"`) separated by commas. The OpenAPI document states the same.
pub const IF_MATCH_PATTERN: &str = r#"^(\*|(W/)?"[!#-~]*"( *, *(W/)?"[!#-~]*")*)$"#;

static IF_MATCH_SYNTAX: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
    #[allow(clippy::expect_used)]
    regex::Regex::new(IF_MATCH_PATTERN).expect("IF_MATCH_PATTERN compiles (unit-tested)")
});

impl Precondition {
    /// Parses an `If-Match` header value.
    pub fn from_if_match(header: &str) -> Self {
        // HTTP drops whitespace at a field value's ends.
        let header = header.trim_matches([' ', '\t']);
        if !IF_MATCH_SYNTAX.is_match(header) {
            return Precondition::Malformed;
        }
        if header == "*" {
            return Precondition::Exists;
        }
        Precondition::OneOf(
            header
                .split(',')
                .map(|tag| tag.trim_matches(' ').to_owned())
                .collect(),
        )
    }

    /// A malformed header is refused whether or not the record exists
    /// (400 before 404, or before a delete's "already absent" 204).
    pub fn well_formed(&self) -> Result<(), DomainError> {
        match self {
            Precondition::Malformed => Err(DomainError::InvalidHeader {
                name: "If-Match",
                message: "must be * or entity tags such as \"3\" (the ETag a GET answered), separated by commas".to_owned(),
            }),
            _ => Ok(()),
        }
    }

    pub fn check(&self, current_version: i64) -> Result<(), DomainError> {
        self.well_formed()?;
        let current = etag_of(current_version);
        match self {
            Precondition::None | Precondition::Exists | Precondition::Malformed => Ok(()),
            Precondition::OneOf(tags) if tags.contains(&current) => Ok(()),
            Precondition::OneOf(_) => Err(DomainError::PreconditionFailed {
                current_etag: current,
            }),
        }
    }
}

fn decode<T: Document>(stored: StoredRecord) -> Result<Record<T>, DomainError> {
    let data = serde_json::from_str(&stored.body).map_err(|error| {
        DomainError::Internal(format!(
            "stored {} {} does not decode: {error}",
            stored.kind, stored.id
        ))
    })?;
    Ok(Record {
        id: stored.id,
        version: stored.version,
        created_at: stored.created_at,
        updated_at: stored.updated_at,
        data,
    })
}

fn to_text<T: Document>(document: &T) -> Result<String, DomainError> {
    serde_json::to_string(document)
        .map_err(|error| DomainError::Internal(format!("encoding a record: {error}")))
}

fn encode<T: Document>(record: &Record<T>) -> Result<StoredRecord, DomainError> {
    Ok(encode_with_body(record, to_text(&record.data)?))
}

/// [`encode`] with the record's text already made.
fn encode_with_body<T: Document>(record: &Record<T>, body: String) -> StoredRecord {
    StoredRecord {
        kind: T::KIND.as_str().to_owned(),
        id: record.id.clone(),
        version: record.version,
        lookup: record.data.lookup_key(),
        body,
        created_at: record.created_at,
        updated_at: record.updated_at,
    }
}

fn decode_optional<T: Document>(
    stored: Option<StoredRecord>,
) -> Result<Option<Record<T>>, DomainError> {
    stored.map(decode::<T>).transpose()
}

/// What a [`Records::transact`] work function returns: a future borrowing
/// the session.
pub type SessionFuture<'s, R> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<R, DomainError>> + Send + 's>>;

/// One write transaction in one workspace, typed by record kind. Reads see
/// the latest committed data and hold the write lock; dropping the session
/// without [`WriteSession::commit`] rolls everything back.
pub struct WriteSession {
    transaction: Box<dyn WriteTx>,
    workspace: WorkspaceId,
    actor: Principal,
}

impl WriteSession {
    pub fn workspace(&self) -> &WorkspaceId {
        &self.workspace
    }

    /// Who is writing.
    pub fn actor(&self) -> &Principal {
        &self.actor
    }

    /// Which of `ids` name records of kind `T` in this workspace.
    pub async fn existing_ids<T: Document>(
        &mut self,
        ids: &[String],
    ) -> Result<std::collections::HashSet<String>, DomainError> {
        let mut found = std::collections::HashSet::new();
        // Bounded statements: a list may name ten thousand ids.
        for chunk in ids.chunks(1_000) {
            found.extend(
                self.transaction
                    .existing_ids(&self.workspace, T::KIND.as_str(), chunk)
                    .await?,
            );
        }
        Ok(found)
    }

    /// The records of kind `T` a term search selects, locked for update,
    /// whoever may see them: for rules that span records (an ICP's delete
    /// unlinks its lead lists).
    pub async fn search<T: Document>(
        &mut self,
        query: &store::search::TermQuery,
    ) -> Result<Vec<Record<T>>, DomainError> {
        let ids = self
            .transaction
            .search_ids(&self.workspace, T::KIND.as_str(), query)
            .await?;
        let mut records = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(record) = self.get::<T>(&id).await? {
                records.push(record);
            }
        }
        Ok(records)
    }

    /// The records of kind `T` among `ids`, in id order (absent ones left
    /// out), read in this transaction.
    pub async fn get_many<T: Document>(
        &mut self,
        ids: &[String],
    ) -> Result<Vec<Record<T>>, DomainError> {
        let mut records = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(1_000) {
            for stored in self
                .transaction
                .get_many_for_update(&self.workspace, T::KIND.as_str(), chunk)
                .await?
            {
                records.push(decode::<T>(stored)?);
            }
        }
        Ok(records)
    }

    /// Rewrites the search terms of a record of a searchable kind.
    async fn index<T: Document>(&mut self, id: &str, data: Option<&T>) -> Result<(), DomainError> {
        if !T::SEARCHABLE {
            return Ok(());
        }
        let terms = data.map(Document::terms).unwrap_or_default();
        Ok(self
            .transaction
            .set_terms(&self.workspace, T::KIND.as_str(), id, &terms)
            .await?)
    }

    pub async fn get<T: Document>(&mut self, id: &str) -> Result<Option<Record<T>>, DomainError> {
        let stored = self
            .transaction
            .get_for_update(&self.workspace, T::KIND.as_str(), id)
            .await?;
        decode_optional(stored)
    }

    /// The record `id`, if the session's caller may change it and it
    /// meets `precondition`: not found, forbidden or precondition failed
    /// otherwise.
    pub async fn get_accessible<T: Document>(
        &mut self,
        id: &str,
        precondition: &Precondition,
    ) -> Result<Record<T>, DomainError> {
        precondition.well_formed()?;
        let record = self.get::<T>(id).await?.ok_or_else(|| not_found::<T>(id))?;
        authorize(&self.actor, &record)?;
        precondition.check(record.version)?;
        Ok(record)
    }

    /// The record whose [`Document::lookup_key`] is `key`.
    pub async fn get_by_lookup<T: Document>(
        &mut self,
        key: &str,
    ) -> Result<Option<Record<T>>, DomainError> {
        let stored = self
            .transaction
            .get_by_lookup_for_update(&self.workspace, T::KIND.as_str(), key)
            .await?;
        decode_optional(stored)
    }

    /// Stores a new record (version 1) with ids made by `T::ID_SCHEME`,
    /// after its relation checks.
    pub async fn insert<T: Document>(
        &mut self,
        build: impl FnOnce(&NewIds) -> T + Send,
    ) -> Result<Record<T>, DomainError> {
        let ids = self.new_ids::<T>().await?;
        let data = build(&ids);
        self.insert_checked(ids.key, data).await
    }

    /// Stores `data` as a new record (version 1) under `id`, after its
    /// relation checks, with its `create` history entry.
    async fn insert_checked<T: Document>(
        &mut self,
        id: String,
        data: T,
    ) -> Result<Record<T>, DomainError> {
        let now = Utc::now();
        let record = Record {
            id,
            version: 1,
            created_at: now,
            updated_at: now,
            data,
        };
        record.data.check_relations(&record.id, None, self).await?;
        self.insert_record(&record).await?;
        Ok(record)
    }

    /// Up to `limit` records whose top-level field `field` holds `value`
    /// (a natural key, e.g. a profile's email), locked for update.
    pub async fn find_by_field<T: Document>(
        &mut self,
        field: &'static str,
        value: &str,
        limit: u32,
    ) -> Result<Vec<Record<T>>, DomainError> {
        self.transaction
            .find_by_field(&self.workspace, T::KIND.as_str(), field, value, limit)
            .await?
            .into_iter()
            .map(decode::<T>)
            .collect()
    }

    /// Stores a new record under ids it arrived with (an import keeping
    /// the ids of an export), after its relation checks. A number is
    /// taken out of the kind's counter, so later creates never reuse it.
    pub async fn insert_given<T: Document>(
        &mut self,
        ids: NewIds,
        data: T,
    ) -> Result<Record<T>, DomainError> {
        if self.get::<T>(&ids.key).await?.is_some() {
            return Err(DomainError::invalid(
                super::error::FieldPath::root().key("id"),
                format!("{} is taken by another record", ids.key),
            ));
        }
        let ids = match (T::ID_SCHEME, ids.number) {
            (IdScheme::Sequence { start } | IdScheme::UuidAndSequence { start }, Some(number)) => {
                self.transaction
                    .raise_sequence(&self.workspace, T::KIND.as_str(), number, start)
                    .await?;
                ids
            }
            (IdScheme::UuidAndSequence { start }, None) => NewIds {
                number: Some(self.next_number::<T>(start).await?),
                key: ids.key,
            },
            _ => ids,
        };
        let data = data.with_ids(&ids);
        self.insert_checked(ids.key, data).await
    }

    /// Saves how far an import of the file `source` got, in this
    /// transaction (with the batch it counts).
    pub async fn save_import_checkpoint(
        &mut self,
        kind: &str,
        source: &str,
        checkpoint: &store::ImportCheckpoint,
    ) -> Result<(), DomainError> {
        Ok(self
            .transaction
            .save_import_checkpoint(&self.workspace, kind, source, checkpoint)
            .await?)
    }

    /// Stores a new record under an id the caller chose (e.g. a natural key).
    pub async fn insert_with_id<T: Document>(
        &mut self,
        id: String,
        data: T,
    ) -> Result<Record<T>, DomainError> {
        let now = Utc::now();
        let record = Record {
            id,
            version: 1,
            created_at: now,
            updated_at: now,
            data,
        };
        self.insert_record(&record).await?;
        Ok(record)
    }

    /// Inserts a new record and its `create` entry in the audit trail.
    async fn insert_record<T: Document>(&mut self, record: &Record<T>) -> Result<(), DomainError> {
        let stored = encode(record)?;
        self.transaction.insert(&self.workspace, &stored).await?;
        self.index(&record.id, Some(&record.data)).await?;
        self.record_history::<T>(
            &record.id,
            record.version,
            "create",
            None,
            Some(&stored.body),
        )
        .await
    }

    async fn new_ids<T: Document>(&mut self) -> Result<NewIds, DomainError> {
        // Version 7 (time-ordered), not 4: a new record's key then lands at
        // the end of the record index and of each search term's postings
        // instead of at a random page of each, which is what keeps bulk
        // inserts (import, add-prospects) at a steady rate past a few
        // hundred thousand records on both backends. It also makes id
        // order creation order, the order lead lists are generated in.
        let uuid = || uuid::Uuid::now_v7().hyphenated().to_string();
        Ok(match T::ID_SCHEME {
            IdScheme::Uuid => NewIds {
                key: uuid(),
                number: None,
            },
            IdScheme::Sequence { start } => {
                let number = self.next_number::<T>(start).await?;
                NewIds {
                    key: number.to_string(),
                    number: Some(number),
                }
            }
            IdScheme::UuidAndSequence { start } => NewIds {
                key: uuid(),
                number: Some(self.next_number::<T>(start).await?),
            },
        })
    }

    /// The next number of the kind's counter in this session's workspace.
    async fn next_number<T: Document>(&mut self, start: i64) -> Result<i64, DomainError> {
        self.transaction
            .next_sequence(&self.workspace, T::KIND.as_str(), start)
            .await
            .map_err(DomainError::from)
    }

    /// Applies `change` to a record read in this session, checks its
    /// relations, bumps the version and writes it. A change that leaves
    /// the record as it was writes nothing: the version, the update time
    /// (and so the entity tag) and the history stay as they were, and the
    /// record is answered as read.
    pub async fn update<T: Document + Clone>(
        &mut self,
        mut record: Record<T>,
        change: impl FnOnce(&mut T) -> Result<(), DomainError> + Send,
    ) -> Result<Record<T>, DomainError> {
        let previous = record.data.clone();
        let previous_text = to_text(&previous)?;
        change(&mut record.data)?;
        // Compared as stored text: the same text is the same record (maps
        // serialise in key order), whatever the change did on the way.
        let text = to_text(&record.data)?;
        if text == previous_text {
            return Ok(record);
        }
        record
            .data
            .check_relations(&record.id, Some(&previous), self)
            .await?;
        record.version += 1;
        record.updated_at = Utc::now().max(record.updated_at);
        let stored = encode_with_body(&record, text);
        self.transaction.update(&self.workspace, &stored).await?;
        self.index(&record.id, Some(&record.data)).await?;
        self.record_history::<T>(
            &record.id,
            record.version,
            "update",
            Some(&previous_text),
            Some(&stored.body),
        )
        .await?;
        Ok(record)
    }

    /// Appends who changed what to the audit trail, in this transaction;
    /// `old` and `new` are the record's JSON text before and after.
    async fn record_history<T: Document>(
        &mut self,
        id: &str,
        version: i64,
        action: &str,
        old: Option<&str>,
        new: Option<&str>,
    ) -> Result<(), DomainError> {
        if !T::AUDITED {
            return Ok(());
        }
        let entry = store::HistoryEntry {
            kind: T::KIND.as_str().to_owned(),
            record_id: id.to_owned(),
            version,
            action: action.to_owned(),
            user_id: self.actor.user_id.clone(),
            key_id: self.actor.key_id.clone(),
            request_id: self.actor.request_id.clone(),
            client_request_id: self.actor.client_request_id.clone(),
            at: Utc::now(),
            changes: changed_fields(old, new)?,
        };
        self.transaction
            .append_history(&self.workspace, &entry)
            .await
            .map_err(DomainError::from)
    }

    /// Deletes a record read in this session; its history stays.
    pub async fn delete<T: Document>(&mut self, record: &Record<T>) -> Result<bool, DomainError> {
        record.data.before_delete(&record.id, self).await?;
        let deleted = self
            .transaction
            .delete(&self.workspace, T::KIND.as_str(), &record.id)
            .await?;
        if deleted {
            self.index::<T>(&record.id, None).await?;
            self.record_history::<T>(
                &record.id,
                record.version,
                "delete",
                Some(&to_text(&record.data)?),
                None,
            )
            .await?;
        }
        Ok(deleted)
    }

    /// Keeps the response `keeper` renders of `result` under its
    /// idempotency key, in this transaction: the key and the write it
    /// answers commit together.
    pub async fn keep<R>(&mut self, keeper: Keeper<R>, result: &R) -> Result<(), DomainError> {
        let response = (keeper.render)(result);
        Ok(self
            .transaction
            .idempotency_keep(&keeper.key, &keeper.fingerprint, &response)
            .await?)
    }

    /// Makes every write of the session durable.
    pub async fn commit(self) -> Result<(), DomainError> {
        self.transaction.commit().await.map_err(DomainError::from)
    }
}

/// What a write keeps for its idempotency key: the key, the request's
/// fingerprint, and how to render the response from the write's result
/// (inside the transaction, so the response commits with the write).
pub struct Keeper<R> {
    pub key: crate::core::idempotency::IdempotencyKey,
    pub fingerprint: String,
    pub render: Box<dyn FnOnce(&R) -> crate::core::idempotency::KeptResponse + Send>,
}

/// The record operations, over one store.
#[derive(Clone)]
pub struct Records {
    store: SharedStore,
}

impl Records {
    pub fn new(store: SharedStore) -> Self {
        Self { store }
    }

    /// Succeeds when the store answers (readiness).
    pub async fn ping(&self) -> Result<(), DomainError> {
        Ok(self.store.ping().await?)
    }

    /// What the store measured about its writes and pools (`/metrics`).
    pub fn store_stats(&self) -> StoreStats {
        self.store.stats()
    }

    /// Starts a write transaction in the caller's workspace. Private: a
    /// session must run where the store wants it (SQLite's writer thread,
    /// whose statements block), which [`Records::transact`] sees to.
    async fn begin(&self, principal: &Principal) -> Result<WriteSession, DomainError> {
        Ok(WriteSession {
            transaction: self.store.begin().await?,
            workspace: principal.workspace.clone(),
            actor: principal.clone(),
        })
    }

    /// The records of the caller's workspace that the caller may see.
    pub async fn list<T: Document>(
        &self,
        principal: &Principal,
    ) -> Result<Vec<Record<T>>, DomainError> {
        let stored = self
            .store
            .list(&principal.workspace, T::KIND.as_str())
            .await?;
        let mut visible = Vec::with_capacity(stored.len());
        for record in stored {
            let record = decode::<T>(record)?;
            if may_access(principal, &record) {
                visible.push(record);
            }
        }
        Ok(visible)
    }

    /// Runs `work` in one write transaction and commits it: all of its
    /// writes become durable together, or none does. The work runs where
    /// the store wants write transactions to run (SQLite's writer thread),
    /// so it owns what it captures.
    pub async fn transact<R, F>(&self, principal: &Principal, work: F) -> Result<R, DomainError>
    where
        R: Send + 'static,
        F: for<'s> FnOnce(&'s mut WriteSession) -> SessionFuture<'s, R> + Send + 'static,
    {
        let records = self.clone();
        let principal = principal.clone();
        let job = async move {
            let mut session = records.begin(&principal).await?;
            let result = work(&mut session).await?;
            session.commit().await?;
            Ok(result)
        };
        match self.store.write_runtime() {
            Some(runtime) => store::run_on(&runtime, job).await?,
            None => job.await,
        }
    }

    /// Stores a new record in the caller's workspace; `build` receives the
    /// ids the record's [`IdScheme`] produced.
    pub async fn create<T: Document>(
        &self,
        principal: &Principal,
        build: impl FnOnce(&NewIds) -> T + Send + 'static,
    ) -> Result<Record<T>, DomainError> {
        self.create_keeping(principal, build, None).await
    }

    /// [`Records::create`], keeping the response under an idempotency key.
    pub async fn create_keeping<T: Document>(
        &self,
        principal: &Principal,
        build: impl FnOnce(&NewIds) -> T + Send + 'static,
        keeper: Option<Keeper<Record<T>>>,
    ) -> Result<Record<T>, DomainError> {
        self.transact(principal, move |session| {
            Box::pin(async move {
                let record = session.insert(build).await?;
                if let Some(keeper) = keeper {
                    session.keep(keeper, &record).await?;
                }
                Ok(record)
            })
        })
        .await
    }

    /// One record the caller may see.
    pub async fn get<T: Document>(
        &self,
        principal: &Principal,
        id: &str,
    ) -> Result<Record<T>, DomainError> {
        let stored = self
            .store
            .get(&principal.workspace, T::KIND.as_str(), id)
            .await?;
        let record = decode::<T>(stored.ok_or_else(|| not_found::<T>(id))?)?;
        authorize(principal, &record)?;
        Ok(record)
    }

    /// One record the caller may see, found by its lookup key.
    pub async fn get_by_lookup<T: Document>(
        &self,
        principal: &Principal,
        key: &str,
    ) -> Result<Record<T>, DomainError> {
        let stored = self
            .store
            .get_by_lookup(&principal.workspace, T::KIND.as_str(), key)
            .await?;
        let record = decode::<T>(stored.ok_or_else(|| not_found::<T>(key))?)?;
        authorize(principal, &record)?;
        Ok(record)
    }

    /// Applies `change` to the current value under the write lock, checks
    /// the precondition and relations, bumps the version and commits. If
    /// anything fails, nothing is written.
    pub async fn update<T: Document + Clone>(
        &self,
        principal: &Principal,
        id: &str,
        precondition: &Precondition,
        change: impl FnOnce(&mut T) -> Result<(), DomainError> + Send + 'static,
    ) -> Result<Record<T>, DomainError> {
        self.update_keeping(principal, id, precondition, change, None)
            .await
    }

    /// [`Records::update`], keeping the response under an idempotency key.
    pub async fn update_keeping<T: Document + Clone>(
        &self,
        principal: &Principal,
        id: &str,
        precondition: &Precondition,
        change: impl FnOnce(&mut T) -> Result<(), DomainError> + Send + 'static,
        keeper: Option<Keeper<Record<T>>>,
    ) -> Result<Record<T>, DomainError> {
        let (id, precondition) = (id.to_owned(), precondition.clone());
        self.transact(principal, move |session| {
            Box::pin(async move {
                let record = session.get_accessible::<T>(&id, &precondition).await?;
                let record = session.update(record, change).await?;
                if let Some(keeper) = keeper {
                    session.keep(keeper, &record).await?;
                }
                Ok(record)
            })
        })
        .await
    }

    /// Deletes a record the caller may change.
    pub async fn delete<T: Document>(
        &self,
        principal: &Principal,
        id: &str,
        precondition: &Precondition,
    ) -> Result<(), DomainError> {
        self.delete_keeping::<T>(principal, id, precondition, None)
            .await
    }

    /// [`Records::delete`], keeping the response under an idempotency key.
    pub async fn delete_keeping<T: Document>(
        &self,
        principal: &Principal,
        id: &str,
        precondition: &Precondition,
        keeper: Option<Keeper<()>>,
    ) -> Result<(), DomainError> {
        let (id, precondition) = (id.to_owned(), precondition.clone());
        self.transact(principal, move |session| {
            Box::pin(async move {
                let record = session.get_accessible::<T>(&id, &precondition).await?;
                session.delete(&record).await?;
                if let Some(keeper) = keeper {
                    session.keep(keeper, &()).await?;
                }
                Ok(())
            })
        })
        .await
    }
}

impl Records {
    /// Up to `limit` records of kind `T` of the caller's workspace in
    /// creation order, after `after` (the last record of the previous
    /// page): pages of a walk over the whole kind (an export), for admins.
    pub async fn scan_by_creation<T: Document>(
        &self,
        principal: &Principal,
        after: Option<(DateTime<Utc>, &str)>,
        limit: u32,
    ) -> Result<Vec<Record<T>>, DomainError> {
        if !principal.is_admin() {
            return Err(DomainError::Forbidden { kind: T::KIND });
        }
        self.store
            .scan_by_creation(&principal.workspace, T::KIND.as_str(), after, limit)
            .await?
            .into_iter()
            .map(decode::<T>)
            .collect()
    }

    /// How far an import of the file `source` into the caller's workspace
    /// got.
    pub async fn import_checkpoint(
        &self,
        principal: &Principal,
        kind: &str,
        source: &str,
    ) -> Result<Option<store::ImportCheckpoint>, DomainError> {
        Ok(self
            .store
            .import_checkpoint(&principal.workspace, kind, source)
            .await?)
    }

    /// The page of records that `query` selects, run by the database, and
    /// how many match in all.
    pub async fn query<T: Document>(
        &self,
        principal: &Principal,
        query: &store::query::RecordQuery,
    ) -> Result<(Vec<Record<T>>, u64), DomainError> {
        if T::PER_RECORD_ACCESS && !principal.is_admin() {
            return Err(DomainError::Internal(format!(
                "{} has per-record access; it cannot be queried for members",
                T::KIND.as_str()
            )));
        }
        let (stored, total) = self
            .store
            .query(&principal.workspace, T::KIND.as_str(), query)
            .await?;
        let records = stored
            .into_iter()
            .map(decode::<T>)
            .collect::<Result<Vec<_>, _>>()?;
        Ok((records, total))
    }
}

impl Records {
    /// The page of records of kind `T` that a term search selects (in id
    /// order), and how many match in all if `count`. Searchable kinds are
    /// the workspace's to read: no per-record access.
    pub async fn search<T: Document>(
        &self,
        principal: &Principal,
        query: &store::search::TermQuery,
        count: bool,
    ) -> Result<(Vec<Record<T>>, Option<u64>), DomainError> {
        if !T::SEARCHABLE || T::PER_RECORD_ACCESS {
            return Err(DomainError::Internal(format!(
                "{} is not searchable by term for every member",
                T::KIND.as_str()
            )));
        }
        self.search_regardless_of_access(principal, query, count)
            .await
    }

    /// [`Records::search`] of any searchable kind, whoever may see the
    /// records: for rules that span records (a reuse window counts every
    /// list of an ICP), never to answer a caller with.
    pub async fn search_regardless_of_access<T: Document>(
        &self,
        principal: &Principal,
        query: &store::search::TermQuery,
        count: bool,
    ) -> Result<(Vec<Record<T>>, Option<u64>), DomainError> {
        let (stored, total) = self
            .store
            .search(&principal.workspace, T::KIND.as_str(), query, count)
            .await?;
        let records = stored
            .into_iter()
            .map(decode::<T>)
            .collect::<Result<Vec<_>, _>>()?;
        Ok((records, total))
    }

    /// The records of kind `T` among `ids` that the caller may see, in id
    /// order (absent ones left out).
    pub async fn get_many<T: Document>(
        &self,
        principal: &Principal,
        ids: &[String],
    ) -> Result<Vec<Record<T>>, DomainError> {
        let mut records = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(1_000) {
            for stored in self
                .store
                .get_many(&principal.workspace, T::KIND.as_str(), chunk)
                .await?
            {
                let record = decode::<T>(stored)?;
                if may_access(principal, &record) {
                    records.push(record);
                }
            }
        }
        Ok(records)
    }
}

/// One changed top-level field of a record (absent on one side reads as
/// null).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct ChangedField {
    pub field: String,
    #[serde(default)]
    pub old: serde_json::Value,
    #[serde(default)]
    pub new: serde_json::Value,
}

/// One create, update or delete of a record: who made it, when, in which
/// request, and which fields it changed.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryEntry {
    /// The record's version after the change (for a delete, the last one).
    pub version: i64,
    /// `create`, `update` or `delete`.
    pub action: String,
    pub user_id: String,
    /// The API key used; `None` for JWT callers.
    pub key_id: Option<String>,
    /// The server's id of the request that made the change (entries
    /// written before the client's id was stored apart may hold the id the
    /// client sent instead).
    pub request_id: String,
    /// The `X-Request-Id` the client sent with that request, if any: the
    /// client's word, kept for tracing.
    pub client_request_id: Option<String>,
    pub at: DateTime<Utc>,
    pub changes: Vec<ChangedField>,
}

impl TryFrom<store::HistoryEntry> for HistoryEntry {
    type Error = DomainError;

    /// Reads the stored `[{"field", "old", "new"}, …]`; anything else is
    /// corrupt data, reported as an internal error rather than hidden.
    fn try_from(stored: store::HistoryEntry) -> Result<Self, DomainError> {
        let changes = serde_json::from_value(stored.changes).map_err(|error| {
            DomainError::Internal(format!(
                "stored history of {} {} version {} does not decode: {error}",
                stored.kind, stored.record_id, stored.version
            ))
        })?;
        Ok(Self {
            version: stored.version,
            action: stored.action,
            user_id: stored.user_id,
            key_id: stored.key_id,
            request_id: stored.request_id,
            client_request_id: stored.client_request_id,
            at: stored.at,
            changes,
        })
    }
}

/// One page of a record's audit trail.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryPage {
    pub entries: Vec<HistoryEntry>,
    /// Entries in all, over every page.
    pub total: u64,
}

impl Records {
    /// A page of the audit trail of a record, for whoever may read the
    /// record; once the record is deleted, for admins only.
    pub async fn history<T: Document>(
        &self,
        principal: &Principal,
        id: &str,
        offset: u64,
        limit: u64,
    ) -> Result<HistoryPage, DomainError> {
        let current = self
            .store
            .get(&principal.workspace, T::KIND.as_str(), id)
            .await?;
        match current {
            Some(stored) => authorize(principal, &decode::<T>(stored)?)?,
            None if principal.is_admin() => {}
            None => return Err(not_found::<T>(id)),
        }
        let (entries, total) = self
            .store
            .history(&principal.workspace, T::KIND.as_str(), id, offset, limit)
            .await?;
        if total == 0 {
            return Err(not_found::<T>(id));
        }
        let entries = entries
            .into_iter()
            .map(HistoryEntry::try_from)
            .collect::<Result<_, _>>()?;
        Ok(HistoryPage { entries, total })
    }
}

/// `[{"field", "old", "new"}, …]` for each top-level field whose value
/// differs between the JSON texts `old` and `new` (absent on one side reads
/// as null).
///
/// The texts are split into their top-level fields without building value
/// trees; only a field whose text differs is parsed, to compare the values
/// themselves (the same value may be written two ways) and to record them.
fn changed_fields(old: Option<&str>, new: Option<&str>) -> Result<serde_json::Value, DomainError> {
    use serde_json::value::RawValue;
    use serde_json::{Value, json};
    use std::collections::BTreeMap;
    type Fields<'a> = BTreeMap<String, &'a RawValue>;
    fn fields(text: Option<&str>) -> Result<Fields<'_>, DomainError> {
        match text {
            None => Ok(Fields::new()),
            Some(text) => serde_json::from_str(text)
                .map_err(|error| DomainError::Internal(format!("diffing history: {error}"))),
        }
    }
    let parse = |raw: Option<&&RawValue>| -> Result<Value, DomainError> {
        raw.map_or(Ok(Value::Null), |raw| {
            serde_json::from_str(raw.get())
                .map_err(|error| DomainError::Internal(format!("diffing history: {error}")))
        })
    };
    let (old, new) = (fields(old)?, fields(new)?);
    let mut names: Vec<&String> = old.keys().chain(new.keys()).collect();
    names.sort();
    names.dedup();
    let mut changes = Vec::new();
    for name in names {
        let (before, after) = (old.get(name), new.get(name));
        if before.map(|raw| raw.get()) == after.map(|raw| raw.get()) {
            continue;
        }
        let (before, after) = (parse(before)?, parse(after)?);
        if before != after {
            changes.push(json!({"field": name, "old": before, "new": after}));
        }
    }
    Ok(Value::Array(changes))
}

/// The error for a record that is absent from the caller's workspace.
pub fn not_found<T: Document>(id: &str) -> DomainError {
    DomainError::NotFound {
        kind: T::KIND,
        id: id.to_owned(),
    }
}

fn may_access<T: Document>(principal: &Principal, record: &Record<T>) -> bool {
    principal.is_admin() || record.data.accessible_by(principal)
}

/// Forbidden unless the caller may access the record.
pub fn authorize<T: Document>(
    principal: &Principal,
    record: &Record<T>,
) -> Result<(), DomainError> {
    if may_access(principal, record) {
        Ok(())
    } else {
        Err(DomainError::Forbidden { kind: T::KIND })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_match_parses_star_and_lists() {
        assert_eq!(Precondition::from_if_match("*"), Precondition::Exists);
        assert_eq!(
            Precondition::from_if_match("\"1\", W/\"2\""),
            Precondition::OneOf(vec!["\"1\"".into(), "W/\"2\"".into()])
        );
    }

    #[test]
    fn history_lists_only_fields_whose_values_changed() {
        let changes = changed_fields(
            Some(r#"{"name":"A","n":1.0,"tags":{"x":1,"y":[2]},"gone":true,"nil":null}"#),
            // The same values written another way (PostgreSQL's JSONB text).
            Some(r#"{"name": "B", "n": 1.0, "tags": {"y": [2], "x": 1}, "new": "v"}"#),
        )
        .expect("diffs");
        assert_eq!(
            changes,
            serde_json::json!([
                {"field": "gone", "old": true, "new": null},
                {"field": "name", "old": "A", "new": "B"},
                {"field": "new", "old": null, "new": "v"},
            ])
        );
        let created = changed_fields(None, Some(r#"{"a":1,"b":null}"#)).expect("diffs");
        assert_eq!(
            created,
            serde_json::json!([{"field": "a", "old": null, "new": 1}])
        );
        assert!(changed_fields(Some("[1]"), None).is_err());
    }

    #[test]
    fn stored_history_reads_into_typed_changes_or_fails_loudly() {
        let stored = |changes: serde_json::Value| store::HistoryEntry {
            kind: "icp".into(),
            record_id: "r".into(),
            version: 2,
            action: "update".into(),
            user_id: "user_1".into(),
            key_id: None,
            request_id: "req".into(),
            client_request_id: None,
            at: Utc::now(),
            changes,
        };
        let entry = HistoryEntry::try_from(stored(serde_json::json!([
            {"field": "name", "old": "A", "new": "B"},
            {"field": "gone", "old": true},
        ])))
        .expect("decodes");
        assert_eq!(
            entry.changes,
            vec![
                ChangedField {
                    field: "name".into(),
                    old: "A".into(),
                    new: "B".into(),
                },
                ChangedField {
                    field: "gone".into(),
                    old: true.into(),
                    new: serde_json::Value::Null,
                },
            ]
        );
        for corrupt in [
            serde_json::json!({"field": "name"}),
            serde_json::json!([{"old": 1}]),
            serde_json::json!([{"field": 3}]),
        ] {
            assert!(matches!(
                HistoryEntry::try_from(stored(corrupt)),
                Err(DomainError::Internal(_))
            ));
        }
    }

    #[test]
    fn only_the_current_strong_tag_matches() {
        let tags = Precondition::from_if_match("\"2\", W/\"3\"");
        assert!(tags.check(2).is_ok());
        assert_eq!(
            tags.check(3),
            Err(DomainError::PreconditionFailed {
                current_etag: "\"3\"".into()
            })
        );
        assert!(Precondition::Exists.check(9).is_ok());
        assert!(Precondition::None.check(9).is_ok());
    }
}
