//! The record kinds that `clientele import` and `clientele export` move in
//! and out of files, each bound to the surface whose wire format its rows
//! use: a row is the body that surface's create takes (a PATCH body when
//! upserting), an exported row is what its GET returns. [`KINDS`] is the
//! one list; the engine itself is [`crate::core::import`].

use std::any::Any;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;

use serde_json::{Map, Value};

use crate::core::auth::Principal;
use crate::core::client::Client;
use crate::core::error::DomainError;
use crate::core::fields::{Dialect, Mode, View};
use crate::core::hood::{Profile, ProfileList};
use crate::core::icp::Icp;
use crate::core::import::rows::Columns;
use crate::core::import::{
    ImportCheckpoint, Importable, Importer, MatchBy, Outcome, Prepared, Progress,
};
use crate::core::leads::{Company, Person};
use crate::core::records::Records;

use crate::http::Surface;
use crate::surfaces::clientsuccess::ClientSuccess;
use crate::surfaces::hood::Hood;
use crate::surfaces::lance::Lance;

/// A future that borrows nothing.
pub type Pending<T> = Pin<Box<dyn Future<Output = Result<T, DomainError>> + Send>>;

/// Where an export's next page starts: the last record's creation time
/// and id.
pub struct ExportCursor(chrono::DateTime<chrono::Utc>, String);

/// Records as the surface shows them, and where the next page starts.
pub type ExportPage = (Vec<Map<String, Value>>, Option<ExportCursor>);

/// Rows read and checked, ready to be written (their type is the kind's).
pub struct PreparedBatch(Box<dyn Any + Send>);

/// One kind, as files see it.
pub trait BulkKind: Send + Sync {
    /// The name `--kind` takes.
    fn name(&self) -> &'static str;
    /// The surface whose format the rows use.
    fn surface(&self) -> &'static str;
    /// The columns a CSV file of this kind may have.
    fn columns(&self) -> Columns;
    /// The columns of an exported CSV, in order.
    fn export_columns(&self) -> Vec<String>;
    /// What `--match` may name.
    fn match_names(&self) -> Vec<&'static str>;
    /// An importer writing as `actor`, upserting by `match_by` if given.
    fn importer(
        &self,
        records: Records,
        actor: Principal,
        match_by: Option<&str>,
    ) -> Result<Box<dyn RowImporter>, String>;
    /// Up to `limit` records in creation order after `after`, as the
    /// surface shows them, and where the next page starts.
    fn export_page(
        &self,
        records: Records,
        principal: Principal,
        after: Option<ExportCursor>,
        limit: u32,
    ) -> Pending<ExportPage>;
}

/// An import of one kind, with its kind's type erased.
pub trait RowImporter: Send + Sync {
    /// Reads and checks rows (CPU work, off the writer).
    fn prepare(&self, rows: Vec<(u64, Map<String, Value>)>) -> PreparedBatch;
    /// Writes a prepared batch in one transaction.
    fn write(
        &self,
        batch: PreparedBatch,
        progress: Option<Progress>,
    ) -> Pending<Vec<(u64, Outcome)>>;
    /// The principal the import writes as.
    fn actor(&self) -> &Principal;
    /// How far an earlier import of the file `source` got.
    fn checkpoint(&self, source: String) -> Pending<Option<ImportCheckpoint>>;
}

struct Bound<T, D>(PhantomData<fn() -> (T, D)>);

impl<T: Importable, D: Dialect + Surface> BulkKind for (&'static str, Bound<T, D>) {
    fn name(&self) -> &'static str {
        self.0
    }

    fn surface(&self) -> &'static str {
        D::NAME
    }

    fn columns(&self) -> Columns {
        let mut extra = T::read_only_keys::<D>();
        extra.push(D::ID_KEY);
        Columns::of(&T::request_shape(Mode::Create), &extra)
    }

    fn export_columns(&self) -> Vec<String> {
        T::view_shape::<D>()
            .properties
            .into_iter()
            .map(|(name, _)| name)
            .collect()
    }

    fn match_names(&self) -> Vec<&'static str> {
        let mut names = vec!["id"];
        names.extend(T::MATCH_FIELDS);
        names
    }

    fn importer(
        &self,
        records: Records,
        actor: Principal,
        match_by: Option<&str>,
    ) -> Result<Box<dyn RowImporter>, String> {
        let match_by = match_by.map(MatchBy::parse::<T>).transpose()?;
        Ok(Box::new(Importer::<T, D>::new(records, actor, match_by)))
    }

    fn export_page(
        &self,
        records: Records,
        principal: Principal,
        after: Option<ExportCursor>,
        limit: u32,
    ) -> Pending<ExportPage> {
        Box::pin(async move {
            let after = after.as_ref().map(|cursor| (cursor.0, cursor.1.as_str()));
            let page = records
                .scan_by_creation::<T>(&principal, after, limit)
                .await?;
            let next = page
                .last()
                .map(|record| ExportCursor(record.created_at, record.id.clone()));
            let views = page
                .iter()
                .map(
                    |record| match serde_json::to_value(View::<T, D>::of(record)) {
                        Ok(Value::Object(view)) => Ok(view),
                        _ => Err(DomainError::Internal(format!(
                            "the view of {} {} is not an object",
                            T::KIND.as_str(),
                            record.id
                        ))),
                    },
                )
                .collect::<Result<_, _>>()?;
            Ok((views, next))
        })
    }
}

impl<T: Importable, D: Dialect> RowImporter for Importer<T, D> {
    fn prepare(&self, rows: Vec<(u64, Map<String, Value>)>) -> PreparedBatch {
        let prepared: Vec<Prepared<T>> = rows
            .into_iter()
            .map(|(line, row)| Importer::prepare(self, line, row))
            .collect();
        PreparedBatch(Box::new(prepared))
    }

    fn write(
        &self,
        batch: PreparedBatch,
        progress: Option<Progress>,
    ) -> Pending<Vec<(u64, Outcome)>> {
        let importer = self.clone();
        Box::pin(async move {
            let batch = batch.0.downcast::<Vec<Prepared<T>>>().map_err(|_| {
                DomainError::Internal("a batch was prepared for another kind".into())
            })?;
            Importer::write(&importer, *batch, progress).await
        })
    }

    fn actor(&self) -> &Principal {
        Importer::actor(self)
    }

    fn checkpoint(&self, source: String) -> Pending<Option<ImportCheckpoint>> {
        let importer = self.clone();
        Box::pin(async move { importer.checkpoint(&source).await })
    }
}

/// Every kind files can hold, by the name `--kind` takes.
pub static KINDS: [&dyn BulkKind; 6] = [
    &("icp", Bound::<Icp, Lance>(PhantomData)),
    &("company", Bound::<Company, Lance>(PhantomData)),
    &("person", Bound::<Person, Lance>(PhantomData)),
    &("client", Bound::<Client, ClientSuccess>(PhantomData)),
    &("profile", Bound::<Profile, Hood>(PhantomData)),
    &("profile-list", Bound::<ProfileList, Hood>(PhantomData)),
];

/// The kind named `name`, or a message listing the names.
pub fn kind(name: &str) -> Result<&'static dyn BulkKind, String> {
    KINDS
        .iter()
        .copied()
        .find(|kind| kind.name() == name)
        .ok_or_else(|| {
            let names: Vec<&str> = KINDS.iter().map(|kind| kind.name()).collect();
            format!(
                "no record kind {name:?}; the kinds are: {}",
                names.join(", ")
            )
        })
}

/// What every kind's rows are, for `--help`.
pub fn describe() -> String {
    KINDS
        .iter()
        .map(|kind| format!("{} ({} format)", kind.name(), kind.surface()))
        .collect::<Vec<_>>()
        .join(", ")
}
