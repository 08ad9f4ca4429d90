//! Record operations every surface shares: tenancy, access checks,
//! versions and `If-Match` preconditions, and atomic read-modify-write.
//!
//! A record type implements [`Document`]; [`Records`] then lists, creates,
//! reads, updates and deletes it through the store. Updates take a closure
//! that changes the current value: it runs inside the store's write
//! transaction, so two updates of different fields never lose each other.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::auth::{Principal, store_failure};
use super::error::{DomainError, RecordKind};
use crate::store::{SharedStore, StoredRecord};

/// A record type the core can store.
pub trait Document: Serialize + DeserializeOwned + Send + 'static {
    const KIND: RecordKind;

    /// Whether `principal` (already known to be of the record's workspace)
    /// may read and change this record.
    fn accessible_by(&self, _principal: &Principal) -> bool {
        true
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
}

impl Precondition {
    /// Parses an `If-Match` header value.
    pub fn from_if_match(header: &str) -> Self {
        let header = header.trim();
        if header == "*" {
            return Precondition::Exists;
        }
        Precondition::OneOf(
            header
                .split(',')
                .map(str::trim)
                .filter(|tag| !tag.is_empty())
                .map(str::to_owned)
                .collect(),
        )
    }

    fn check(&self, current_version: i64) -> Result<(), DomainError> {
        let current = etag_of(current_version);
        match self {
            Precondition::None | Precondition::Exists => Ok(()),
            Precondition::OneOf(tags) if tags.contains(&current) => Ok(()),
            Precondition::OneOf(_) => Err(DomainError::PreconditionFailed {
                current_etag: current,
            }),
        }
    }
}

fn decode<T: Document>(stored: StoredRecord) -> Result<Record<T>, DomainError> {
    let data = serde_json::from_value(stored.body).map_err(|error| {
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

fn encode<T: Document>(record: &Record<T>) -> Result<StoredRecord, DomainError> {
    Ok(StoredRecord {
        kind: T::KIND.as_str().to_owned(),
        id: record.id.clone(),
        version: record.version,
        body: serde_json::to_value(&record.data)
            .map_err(|error| DomainError::Internal(format!("encoding a record: {error}")))?,
        created_at: record.created_at,
        updated_at: record.updated_at,
    })
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

    /// The records of the caller's workspace that the caller may see.
    pub async fn list<T: Document>(
        &self,
        principal: &Principal,
    ) -> Result<Vec<Record<T>>, DomainError> {
        let stored = self
            .store
            .list(&principal.workspace, T::KIND.as_str())
            .await
            .map_err(store_failure)?;
        let mut visible = Vec::with_capacity(stored.len());
        for record in stored {
            let record = decode::<T>(record)?;
            if may_access(principal, &record) {
                visible.push(record);
            }
        }
        Ok(visible)
    }

    /// Stores a new record under `id` in the caller's workspace.
    pub async fn create<T: Document>(
        &self,
        principal: &Principal,
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
        let stored = encode(&record)?;
        let mut transaction = self.store.begin().await.map_err(store_failure)?;
        transaction
            .insert(&principal.workspace, &stored)
            .await
            .map_err(store_failure)?;
        transaction.commit().await.map_err(store_failure)?;
        Ok(record)
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
            .await
            .map_err(store_failure)?;
        let record = decode::<T>(stored.ok_or_else(|| not_found::<T>(id))?)?;
        authorize(principal, &record)?;
        Ok(record)
    }

    /// Applies `change` to the current value under the write lock, checks
    /// the precondition, bumps the version and commits. If `change` fails,
    /// nothing is written.
    pub async fn update<T: Document>(
        &self,
        principal: &Principal,
        id: &str,
        precondition: &Precondition,
        change: impl FnOnce(&mut T) -> Result<(), DomainError> + Send,
    ) -> Result<Record<T>, DomainError> {
        let mut transaction = self.store.begin().await.map_err(store_failure)?;
        let stored = transaction
            .get_for_update(&principal.workspace, T::KIND.as_str(), id)
            .await
            .map_err(store_failure)?;
        let mut record = decode::<T>(stored.ok_or_else(|| not_found::<T>(id))?)?;
        authorize(principal, &record)?;
        precondition.check(record.version)?;
        change(&mut record.data)?;
        record.version += 1;
        record.updated_at = Utc::now().max(record.updated_at);
        let stored = encode(&record)?;
        transaction
            .update(&principal.workspace, &stored)
            .await
            .map_err(store_failure)?;
        transaction.commit().await.map_err(store_failure)?;
        Ok(record)
    }

    /// Deletes a record the caller may change.
    pub async fn delete<T: Document>(
        &self,
        principal: &Principal,
        id: &str,
        precondition: &Precondition,
    ) -> Result<(), DomainError> {
        let mut transaction = self.store.begin().await.map_err(store_failure)?;
        let stored = transaction
            .get_for_update(&principal.workspace, T::KIND.as_str(), id)
            .await
            .map_err(store_failure)?;
        let record = decode::<T>(stored.ok_or_else(|| not_found::<T>(id))?)?;
        authorize(principal, &record)?;
        precondition.check(record.version)?;
        transaction
            .delete(&principal.workspace, T::KIND.as_str(), id)
            .await
            .map_err(store_failure)?;
        transaction.commit().await.map_err(store_failure)
    }
}

fn not_found<T: Document>(id: &str) -> DomainError {
    DomainError::NotFound {
        kind: T::KIND,
        id: id.to_owned(),
    }
}

fn may_access<T: Document>(principal: &Principal, record: &Record<T>) -> bool {
    principal.is_admin() || record.data.accessible_by(principal)
}

fn authorize<T: Document>(principal: &Principal, record: &Record<T>) -> Result<(), DomainError> {
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
