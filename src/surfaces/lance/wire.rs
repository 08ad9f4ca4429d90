//! Lance's wire format for ICPs: what Lance decides for every record it
//! serves (its words for reader errors, the names and format of ids and
//! times: the [`Dialect`]), the schemas of ICP bodies and views as the
//! document names them, and the history views. The ICP's fields, rules and
//! view are declared once, in [`crate::core::icp`].

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::Lance;
use crate::core::fields::{Declared, Dialect, Mode};
use crate::core::icp::Icp;
use crate::core::shape::{self, Shape};
use crate::described;
use crate::surfaces::{iso_millis, iso_millis_shape};

/// Lance's errors use Zod's words (the core's defaults); ids are UUIDs and
/// times ISO 8601 with milliseconds.
impl Dialect for Lance {
    const ID_KEY: &'static str = "id";
    const TIME_KEYS: [&'static str; 2] = ["createdAt", "updatedAt"];

    fn serialize_time<S: serde::Serializer>(
        time: &DateTime<Utc>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&iso_millis(time))
    }

    fn id_shape() -> Shape {
        shape::string()
            .format("uuid")
            .describe("UUID of the record.")
    }

    fn time_shape() -> Shape {
        iso_millis_shape()
    }
}

described!(
    /// An ICP as Lance returns it (the document's name for its view).
    IcpView,
    "An ICP as Lance returns it.",
    Icp::view_shape::<Lance>()
);

described!(
    /// The body of `POST /api/v1/entities/icps`.
    CreateIcpRequest,
    "The body of `POST /api/v1/entities/icps`. The creator is always added to `userIds`.",
    Icp::request_shape(Mode::Create)
);

described!(
    /// The body of `PATCH /api/v1/entities/icps/{id}`.
    UpdateIcpRequest,
    "The body of `PATCH /api/v1/entities/icps/{id}`: only the fields sent change; `null` clears `description`, `activeUntil` and `crmFilters`.",
    Icp::request_shape(Mode::Patch)
);

/// One create, update or delete of an ICP: who, when, in which request,
/// and what changed.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct IcpHistoryEntryView {
    /// The ICP's version after the change.
    pub version: i64,
    /// `create`, `update` or `delete`.
    pub action: String,
    pub user_id: String,
    /// The API key used; null for JWT callers.
    pub key_id: Option<String>,
    /// The server's id of the request that made the change (that
    /// response's `X-Request-Id`; the logs' `request_id`). Entries written
    /// before `clientRequestId` existed may hold the id the client sent.
    pub request_id: String,
    /// The `X-Request-Id` the client sent with that request, kept for
    /// tracing; null when none was sent. The client chose it: it proves
    /// nothing about which request made the change.
    pub client_request_id: Option<String>,
    #[schema(format = DateTime)]
    pub at: String,
    pub changes: Vec<crate::surfaces::FieldChange>,
}

/// A page of an ICP's audit trail, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct IcpHistoryPage {
    pub entries: Vec<IcpHistoryEntryView>,
    pub total: u64,
    pub limit: u64,
    pub offset: u64,
}

impl From<&crate::core::records::HistoryEntry> for IcpHistoryEntryView {
    fn from(entry: &crate::core::records::HistoryEntry) -> Self {
        Self {
            version: entry.version,
            action: entry.action.clone(),
            user_id: entry.user_id.clone(),
            key_id: entry.key_id.clone(),
            request_id: entry.request_id.clone(),
            client_request_id: entry.client_request_id.clone(),
            at: iso_millis(&entry.at),
            changes: entry
                .changes
                .iter()
                .map(crate::surfaces::FieldChange::from)
                .collect(),
        }
    }
}
