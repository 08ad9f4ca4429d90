//! Every error at once, relations included. A body's fields are read
//! first and its relations (a list that must exist, a parent client, a
//! company of the workspace) are checked against the store only once the
//! whole body reads; so a body with a bad email *and* a missing list used
//! to hear about the email alone. When a body fails to read, this module
//! checks the relations of the fields that did read, and adds what it
//! finds to the field errors: one answer lists everything to fix.
//!
//! How: the fields in error are left out (a PATCH leaves them unchanged)
//! or, on a create, stood in for by their documented example, so that the
//! rest reads as a whole record; the kind's own
//! [`Document::check_relations`] then runs on it, in a transaction that
//! writes nothing. Errors at the stood-in fields are dropped (those fields
//! already have theirs). When the rest does not read either (a required
//! field with no example, an error about the body as a whole), the field
//! errors are answered alone, as before.

use serde_json::{Map, Value};

use super::auth::Principal;
use super::error::{DomainError, FieldError, PathSegment};
use super::fields::{Declared, Dialect, Mode};
use super::records::{Document, Precondition, Records};

impl Records {
    /// Reads a create body of `T` as surface `D` states it; if it does not
    /// read, the error lists the relation errors of its other fields too.
    pub async fn read_new<T, D>(
        &self,
        principal: &Principal,
        body: &Value,
    ) -> Result<T, DomainError>
    where
        T: Declared + Document + Clone,
        D: Dialect,
    {
        match T::read_new::<D>(body) {
            Ok(new) => Ok(new),
            Err(error) => Err(self
                .with_relations_of_new::<T, D>(principal, body, error)
                .await),
        }
    }

    /// Reads a PATCH body of `T` for record `id` as surface `D` states it;
    /// if it does not read, the error lists the relation errors of its
    /// other fields too, as the record stands.
    pub async fn read_patch<T, D>(
        &self,
        principal: &Principal,
        id: &str,
        body: &Value,
    ) -> Result<T::Patch, DomainError>
    where
        T: Declared + Document + Clone,
        D: Dialect,
    {
        match T::read_patch::<D>(body) {
            Ok(patch) => Ok(patch),
            Err(error) => Err(self
                .with_relations_of_patch::<T, D>(principal, id, body, error)
                .await),
        }
    }

    /// `error` (from reading a create body of `T`), with the relation
    /// errors of the body's other fields added.
    async fn with_relations_of_new<T, D>(
        &self,
        principal: &Principal,
        body: &Value,
        error: DomainError,
    ) -> DomainError
    where
        T: Declared + Document + Clone,
        D: Dialect,
    {
        let DomainError::Invalid(errors) = &error else {
            return error;
        };
        let Some((fields, in_error)) = fields_in_error(body, errors) else {
            return error;
        };
        let examples: Map<String, Value> = T::request_shape(Mode::Create)
            .properties
            .into_iter()
            .filter_map(|(key, shape)| shape.examples.into_iter().next().map(|e| (key, e)))
            .collect();
        let mut stood_in = fields;
        for key in &in_error {
            match examples.get(key) {
                Some(example) => {
                    stood_in.insert(key.clone(), example.clone());
                }
                None => {
                    stood_in.remove(key);
                }
            }
        }
        let Ok(new) = T::read_new::<D>(&Value::Object(stood_in)) else {
            return error;
        };
        let found = self
            .transact(principal, move |session| {
                Box::pin(async move { Ok(new.check_relations("", None, session).await.err()) })
            })
            .await;
        merged(error, in_error, found)
    }

    /// `error` (from reading a PATCH body of `T` for record `id`), with
    /// the relation errors of the body's other fields added, as the
    /// record stands.
    async fn with_relations_of_patch<T, D>(
        &self,
        principal: &Principal,
        id: &str,
        body: &Value,
        error: DomainError,
    ) -> DomainError
    where
        T: Declared + Document + Clone,
        D: Dialect,
    {
        let DomainError::Invalid(errors) = &error else {
            return error;
        };
        let Some((mut rest, in_error)) = fields_in_error(body, errors) else {
            return error;
        };
        rest.retain(|key, _| !in_error.contains(key));
        if rest.is_empty() {
            return error;
        }
        let Ok(patch) = T::read_patch::<D>(&Value::Object(rest)) else {
            return error;
        };
        let id = id.to_owned();
        let found = self
            .transact(principal, move |session| {
                Box::pin(async move {
                    let record = session
                        .get_accessible::<T>(&id, &Precondition::None)
                        .await?;
                    let mut changed = record.data.clone();
                    if T::apply_patch(patch, &mut changed).is_err() {
                        return Ok(None);
                    }
                    Ok(changed
                        .check_relations(&id, Some(&record.data), session)
                        .await
                        .err())
                })
            })
            .await;
        merged(error, in_error, found)
    }
}

/// The body's fields, and the top-level keys the field errors are at;
/// `None` when an error is about the body as a whole (nothing to isolate).
fn fields_in_error(
    body: &Value,
    errors: &[FieldError],
) -> Option<(Map<String, Value>, Vec<String>)> {
    let fields = body.as_object()?.clone();
    let mut in_error = Vec::new();
    for error in errors {
        let Some(PathSegment::Key(key)) = error.path.segments().first() else {
            return None;
        };
        if !in_error.contains(key) {
            in_error.push(key.clone());
        }
    }
    Some((fields, in_error))
}

/// The field errors of `error`, then the relation errors `found` reports
/// at fields that have none yet. Anything else `found` holds (the record
/// is gone, the store failed) leaves the field errors alone: they are the
/// answer the request was going to get.
fn merged(
    error: DomainError,
    in_error: Vec<String>,
    found: Result<Option<DomainError>, DomainError>,
) -> DomainError {
    match (error, found) {
        (DomainError::Invalid(mut errors), Ok(Some(DomainError::Invalid(relations)))) => {
            errors.extend(relations.into_iter().filter(|relation| {
                !matches!(
                    relation.path.segments().first(),
                    Some(PathSegment::Key(key)) if in_error.contains(key)
                )
            }));
            DomainError::Invalid(errors)
        }
        (error, _) => error,
    }
}
