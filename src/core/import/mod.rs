//! Bulk import: rows of a file become records through the same reading,
//! validation, relation checks and audit trail as an API request, many
//! rows per write transaction.
//!
//! [`rows`] turns a CSV or NDJSON file into JSON objects, one per row, as a
//! stream. [`Importer`] then works in two steps, so that the store's writer
//! spends its time writing: [`Importer::prepare`] reads a row into a new
//! record (and, when upserting, a patch) on the caller's thread, and
//! [`Importer::write`] writes a batch of prepared rows in one transaction,
//! deciding per row whether it creates, updates, leaves unchanged or
//! rejects. A rejected row never stops the batch; a failure of the store
//! does, and then nothing of the batch is written.
//!
//! Upserts (`--match`) find the record by its id or by a natural key the
//! kind declares ([`Importable::MATCH_FIELDS`]); a key that names two
//! records rejects the row with both ids. A file's progress is saved with
//! each batch ([`ImportCheckpoint`]), so a run that stopped can resume
//! after its last committed batch.

pub mod rows;

use serde_json::{Map, Value};

use super::auth::{Principal, Role};
use super::error::{DomainError, FieldError, FieldPath};
use super::fields::{Declared, Dialect};
use super::records::{Document, IdScheme, NewIds, Records, WriteSession};
pub use crate::store::ImportCheckpoint;
use crate::store::WorkspaceId;

/// Rows written per transaction: large enough that a commit's fsync and
/// WAL checkpoint are shared by many rows (1,000 → 5,000 took 100k profiles
/// from 5,389 to 6,820 rows/s), small enough that a batch's memory stays small
/// and Ctrl-C stops soon.
pub const BATCH_ROWS: usize = 5_000;

/// A record kind that files can bring in.
pub trait Importable: Document + Declared + Clone + PartialEq {
    /// Top-level fields `--match` may name besides `id`: natural keys,
    /// each unique in practice, not by a constraint (so a key found twice
    /// is reported, never guessed).
    const MATCH_FIELDS: &'static [&'static str] = &[];

    /// The value a record holds for a match field, given the row's value:
    /// normalised as the field's rule stores it (an email in lower case, a
    /// phone number in E.164), so the lookup compares like with like.
    fn match_value(_field: &str, value: &Value) -> Result<String, String> {
        match value {
            Value::String(text) => Ok(text.clone()),
            Value::Number(number) => Ok(number.to_string()),
            _ => Err("must be a string".into()),
        }
    }

    /// The number a row asks its new record to keep, for kinds that carry
    /// a number beside their id (so an export imported elsewhere keeps it).
    fn given_number(_row: &Map<String, Value>) -> Option<i64> {
        None
    }
}

/// What an import matches existing records by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchBy {
    /// The record's id, in the surface's id column.
    Id,
    /// A natural key from [`Importable::MATCH_FIELDS`].
    Field(&'static str),
}

impl MatchBy {
    /// `--match NAME` for kind `T`: `id` or one of its match fields.
    pub fn parse<T: Importable>(name: &str) -> Result<Self, String> {
        if name == "id" {
            return Ok(MatchBy::Id);
        }
        T::MATCH_FIELDS
            .iter()
            .find(|field| **field == name)
            .map(|field| MatchBy::Field(field))
            .ok_or_else(|| {
                let mut names = vec!["id"];
                names.extend(T::MATCH_FIELDS);
                format!(
                    "cannot match {} by {name:?}; choose one of: {}",
                    T::KIND.as_str(),
                    names.join(", ")
                )
            })
    }
}

/// What happened to one row.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Created(String),
    Updated(String),
    Unchanged(String),
    Rejected(DomainError),
}

/// One row, read and validated, ready for [`Importer::write`].
pub struct Prepared<T: Declared> {
    pub line: u64,
    /// The row's id column, if it had one.
    given_id: Option<String>,
    given_number: Option<i64>,
    /// The match key, when upserting.
    key: Option<Result<String, DomainError>>,
    new: Result<T, DomainError>,
    patch: Option<Result<T::Patch, DomainError>>,
}

/// Counts of what an import did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    pub created: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub rejected: u64,
}

impl Summary {
    pub fn count(&mut self, outcome: &Outcome) {
        match outcome {
            Outcome::Created(_) => self.created += 1,
            Outcome::Updated(_) => self.updated += 1,
            Outcome::Unchanged(_) => self.unchanged += 1,
            Outcome::Rejected(_) => self.rejected += 1,
        }
    }

    pub fn rows(&self) -> u64 {
        self.created + self.updated + self.unchanged + self.rejected
    }
}

/// Where a batch's progress is saved: the file's SHA-256, and the line of
/// the batch's last row.
#[derive(Debug, Clone)]
pub struct Progress {
    pub source: String,
    pub checkpoint: ImportCheckpoint,
}

/// The principal an import writes as: an admin of `workspace` whose user
/// id says it was an import and whose request names the file, so history
/// shows where each change came from.
pub fn import_actor(workspace: WorkspaceId, file_name: &str) -> Principal {
    Principal {
        workspace,
        user_id: "import".into(),
        role: Role::Admin,
        key_id: None,
        request_id: format!("import-{}", uuid::Uuid::new_v4().simple()),
        client_request_id: Some(file_name.to_owned()),
    }
}

/// Imports rows of kind `T` as surface `D` reads its bodies.
pub struct Importer<T, D> {
    records: Records,
    actor: Principal,
    match_by: Option<MatchBy>,
    kind: std::marker::PhantomData<fn() -> (T, D)>,
}

impl<T, D> Clone for Importer<T, D> {
    fn clone(&self) -> Self {
        Self {
            records: self.records.clone(),
            actor: self.actor.clone(),
            match_by: self.match_by,
            kind: std::marker::PhantomData,
        }
    }
}

impl<T: Importable, D: Dialect> Importer<T, D> {
    pub fn new(records: Records, actor: Principal, match_by: Option<MatchBy>) -> Self {
        Self {
            records,
            actor,
            match_by,
            kind: std::marker::PhantomData,
        }
    }

    pub fn actor(&self) -> &Principal {
        &self.actor
    }

    /// Reads one row: the id and the columns the server sets are taken
    /// out (a view exported by `clientele export` imports as it is), the
    /// rest is read as a create body and, when upserting, as a PATCH body.
    pub fn prepare(&self, line: u64, mut row: Map<String, Value>) -> Prepared<T> {
        let given_number = T::given_number(&row);
        let given_id = match row.remove(D::ID_KEY) {
            Some(Value::String(id)) => Some(id),
            Some(Value::Number(id)) => Some(id.to_string()),
            _ => None,
        };
        for key in T::read_only_keys::<D>() {
            row.remove(key);
        }
        let key = self.match_by.map(|match_by| match match_by {
            MatchBy::Id => given_id.clone().ok_or_else(|| {
                DomainError::invalid(
                    FieldPath::root().key(D::ID_KEY),
                    format!("required to match records by id (the {} column)", D::ID_KEY),
                )
            }),
            MatchBy::Field(field) => match row.get(field) {
                None | Some(Value::Null) => Err(DomainError::invalid(
                    FieldPath::root().key(field),
                    format!("required to match records by {field}"),
                )),
                Some(value) => T::match_value(field, value)
                    .map_err(|message| DomainError::invalid(FieldPath::root().key(field), message)),
            },
        });
        let body = Value::Object(row);
        let patch = self.match_by.map(|_| T::read_patch::<D>(&body));
        Prepared {
            line,
            given_id,
            given_number,
            key,
            new: T::read_new::<D>(&body),
            patch,
        }
    }

    /// How far an earlier import of the file `source` (its SHA-256) got.
    pub async fn checkpoint(&self, source: &str) -> Result<Option<ImportCheckpoint>, DomainError> {
        self.records
            .import_checkpoint(&self.actor, T::KIND.as_str(), source)
            .await
    }

    /// Writes `batch` in one transaction (with `progress`, if given) and
    /// says what happened to each row, in order.
    pub async fn write(
        &self,
        batch: Vec<Prepared<T>>,
        progress: Option<Progress>,
    ) -> Result<Vec<(u64, Outcome)>, DomainError> {
        let match_by = self.match_by;
        let kind = T::KIND.as_str();
        self.records
            .transact(&self.actor, move |session| {
                Box::pin(async move {
                    let mut outcomes = Vec::with_capacity(batch.len());
                    for prepared in batch {
                        let line = prepared.line;
                        let outcome = match write_one(session, match_by, prepared).await {
                            Ok(outcome) => outcome,
                            Err(error) if is_about_the_row(&error) => Outcome::Rejected(error),
                            Err(error) => return Err(error),
                        };
                        outcomes.push((line, outcome));
                    }
                    if let Some(progress) = progress {
                        session
                            .save_import_checkpoint(kind, &progress.source, &progress.checkpoint)
                            .await?;
                    }
                    Ok(outcomes)
                })
            })
            .await
    }
}

/// Errors that reject one row and let the others go on; anything else
/// (the store failing, a bug) stops the batch.
fn is_about_the_row(error: &DomainError) -> bool {
    matches!(
        error,
        DomainError::Invalid(_) | DomainError::NotFound { .. } | DomainError::Forbidden { .. }
    )
}

async fn write_one<T: Importable>(
    session: &mut WriteSession,
    match_by: Option<MatchBy>,
    prepared: Prepared<T>,
) -> Result<Outcome, DomainError> {
    let existing = match (match_by, prepared.key) {
        (None, _) | (Some(_), None) => None,
        (Some(_), Some(Err(error))) => return Err(error),
        (Some(MatchBy::Id), Some(Ok(id))) => session.get::<T>(&id).await?,
        (Some(MatchBy::Field(field)), Some(Ok(value))) => {
            let mut found = session.find_by_field::<T>(field, &value, 2).await?;
            if found.len() > 1 {
                let ids: Vec<&str> = found.iter().map(|record| record.id.as_str()).collect();
                return Err(DomainError::invalid(
                    FieldPath::root().key(field),
                    format!(
                        "{value} matches more than one record ({}); fix the duplicates first",
                        ids.join(" and ")
                    ),
                ));
            }
            found.pop()
        }
    };
    match existing {
        Some(record) => {
            let patch = prepared.patch.ok_or_else(|| {
                DomainError::Internal("an upsert row was prepared without its patch".into())
            })??;
            let mut changed = record.data.clone();
            T::apply_patch(patch, &mut changed)?;
            if changed == record.data {
                return Ok(Outcome::Unchanged(record.id));
            }
            let updated = session
                .update(record, move |data| {
                    *data = changed;
                    Ok(())
                })
                .await?;
            Ok(Outcome::Updated(updated.id))
        }
        None => {
            let new = prepared.new?;
            let created = match (match_by, prepared.given_id) {
                (Some(MatchBy::Id), Some(id)) => {
                    let ids = given_ids::<T>(id, prepared.given_number, session).await?;
                    session.insert_given(ids, new).await?
                }
                _ => session.insert(|ids| new.with_ids(ids)).await?,
            };
            Ok(Outcome::Created(created.id))
        }
    }
}

/// The ids a new record keeps when a row names them (`--match id`): the
/// row's id, and for numbered kinds its number, unless another record of
/// the workspace holds that number already.
async fn given_ids<T: Importable>(
    id: String,
    number: Option<i64>,
    session: &mut WriteSession,
) -> Result<NewIds, DomainError> {
    let id_error = |message: &str| DomainError::invalid(FieldPath::root().key("id"), message);
    match T::ID_SCHEME {
        IdScheme::Uuid | IdScheme::UuidAndSequence { .. } => {
            if uuid::Uuid::try_parse(&id).is_err() {
                return Err(id_error("must be a UUID"));
            }
        }
        IdScheme::Sequence { .. } => {
            if !id.bytes().all(|byte| byte.is_ascii_digit()) || id.parse::<i64>().is_err() {
                return Err(id_error("must be a number of at most 19 digits"));
            }
        }
    }
    let number = match (T::ID_SCHEME, number) {
        (IdScheme::Sequence { .. }, _) => id.parse::<i64>().ok(),
        (IdScheme::UuidAndSequence { .. }, Some(number))
            if number >= 1
                && session
                    .get_by_lookup::<T>(&number.to_string())
                    .await?
                    .is_none() =>
        {
            Some(number)
        }
        _ => None,
    };
    Ok(NewIds { key: id, number })
}

/// The errors of a rejected row, each with its path: the same list an API
/// response would give for the same body.
pub fn row_errors(error: &DomainError) -> Vec<FieldError> {
    match error {
        DomainError::Invalid(errors) => errors.clone(),
        other => vec![FieldError {
            path: FieldPath::root(),
            message: other.to_string(),
        }],
    }
}
