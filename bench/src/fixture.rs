//! The database under test: a fresh one per run (a SQLite file in a
//! temporary directory, or a PostgreSQL database dropped on exit), opened
//! with the admin key every workload uses, preloaded through the library in
//! batches and settled before anything is measured. The only module that
//! calls the `clientele` library, so that a change to its API (the wire
//! readers the preload uses, say) is made in one place.

use std::process::Command;

use clientele::core::auth::{Principal, Role, WorkspaceId, issue_api_key};
use clientele::core::error::DomainError;
use clientele::core::fields::Declared;
use clientele::core::hood::Profile;
use clientele::core::icp::{Icp, IcpPatch};
use clientele::core::records::{Precondition, Records};
use clientele::surfaces::hood::Hood;
use clientele::surfaces::lance::Lance;
use serde_json::{Value, json};

/// Readies reqwest, built without a TLS provider as the server builds it,
/// for the webhook benchmark's HTTP client.
pub use clientele::delivery::install_tls_provider;
pub use clientele::store::SharedStore;

use crate::cli::{Backend, Target};

const WORKSPACE: &str = "bench";
const USER: &str = "user_bench";

/// Removed when dropped (the SQLite file's directory, or the PostgreSQL
/// database), so that runs leave nothing behind.
pub struct Database {
    pub url: String,
    _directory: Option<tempfile::TempDir>,
    drop_on_exit: Option<(String, String)>,
}

impl Drop for Database {
    fn drop(&mut self) {
        if let Some((admin, name)) = &self.drop_on_exit {
            let _ = Command::new("psql")
                .args([
                    admin.as_str(),
                    "-qc",
                    &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
                ])
                .status();
        }
    }
}

pub fn fresh_database(backend: Backend, postgres_url: &str) -> Result<Database, String> {
    match backend {
        Backend::Sqlite => {
            let directory = tempfile::tempdir().map_err(|error| error.to_string())?;
            Ok(Database {
                url: format!("sqlite://{}", directory.path().join("bench.db").display()),
                _directory: Some(directory),
                drop_on_exit: None,
            })
        }
        Backend::Postgres => {
            let name = format!("clientele_bench_{}", std::process::id());
            let status = Command::new("psql")
                .args([postgres_url, "-qc", &format!("CREATE DATABASE {name}")])
                .status()
                .map_err(|error| format!("psql: {error}"))?;
            if !status.success() {
                return Err("could not create the PostgreSQL benchmark database".into());
            }
            let base = postgres_url
                .rsplit_once('/')
                .map_or(postgres_url, |(base, _)| base);
            Ok(Database {
                url: format!("{base}/{name}"),
                _directory: None,
                drop_on_exit: Some((postgres_url.to_owned(), name)),
            })
        }
    }
}

fn principal() -> Principal {
    Principal {
        workspace: WorkspaceId::new(WORKSPACE),
        user_id: USER.to_owned(),
        role: Role::Admin,
        key_id: None,
        request_id: "bench-preload".to_owned(),
        client_request_id: None,
    }
}

/// The ICP and the Hood profile preloaded as number `index`.
fn preload_bodies(index: usize) -> Result<(Icp, Profile), DomainError> {
    let principal = principal();
    let body = json!({
        "name": format!("ICP {index}"),
        "description": "C-level and VP-level technology leaders at enterprise companies",
        "userIds": [USER],
        "leadProviderCriteria": [{"provider": "baseProvider", "type": "person",
            "filters": {"job_titles": ["CTO", "VP Engineering"]}}]
    });
    let icp = Icp::read_new::<Lance>(&body)?.created_by(&principal);
    let body = json!({
        "email": format!("person{index}@example.com"),
        "full_name": format!("Person {index}"),
        "organization_id": format!("{}", 1000 + index % 10),
        "custom_properties": {"clicker": "1"}
    });
    Ok((icp, Profile::read_new::<Hood>(&body)?))
}

/// The ids of the preloaded records, in the order they were inserted.
#[derive(Default)]
pub struct Ids {
    pub icps: Vec<String>,
    pub profiles: Vec<String>,
}

/// Inserts ICPs and profiles, 1,000 per transaction, until there are
/// `total` of each, and adds their ids to `ids`: scale grows one database
/// in steps, numbering on from the records already there.
pub async fn preload(store: &SharedStore, ids: &mut Ids, total: usize) -> Result<(), String> {
    let records = Records::new(store.clone());
    let principal = principal();
    let (start, end) = (ids.icps.len(), total);
    ids.icps.reserve(end - start);
    ids.profiles.reserve(end - start);
    let fail = |error: DomainError| format!("preload: {error}");
    for batch_start in (start..end).step_by(1_000) {
        let batch = batch_start..(batch_start + 1_000).min(end);
        let (icps, profiles) = records
            .transact(&principal, move |session| {
                Box::pin(async move {
                    let mut icp_ids = Vec::with_capacity(batch.len());
                    let mut profile_ids = Vec::with_capacity(batch.len());
                    for index in batch {
                        let (icp, profile) = preload_bodies(index)?;
                        icp_ids.push(session.insert(|_| icp).await?.id);
                        profile_ids.push(session.insert(|_| profile).await?.id);
                    }
                    Ok((icp_ids, profile_ids))
                })
            })
            .await
            .map_err(fail)?;
        ids.icps.extend(icps);
        ids.profiles.extend(profiles);
    }
    Ok(())
}

/// After a bulk load, lets PostgreSQL write it out before anything is
/// measured: a checkpoint (otherwise it writes the load out during the
/// first measurement; in a first run without one, the storage floor right
/// after the load measured 38 tx/s). With `analyze`, also `VACUUM
/// ANALYZE`, as an operator might after a bulk load. Without it the
/// planner statistics are left as a new deployment has them, to the
/// server (which refreshes stale ones itself, see
/// `Store::refresh_statistics`) and to autovacuum.
pub fn settle(backend: Backend, database_url: &str, analyze: bool) -> Result<(), String> {
    if backend != Backend::Postgres {
        return Ok(());
    }
    let mut command = Command::new("psql");
    command.args([database_url, "-q"]);
    if analyze {
        command.args(["-c", "VACUUM ANALYZE"]);
    }
    let status = command
        .args(["-c", "CHECKPOINT"])
        .status()
        .map_err(|error| format!("psql: {error}"))?;
    if status.success() {
        Ok(())
    } else {
        Err("VACUUM ANALYZE / CHECKPOINT after the preload failed".into())
    }
}

/// Opens (and migrates) the benchmark database.
pub async fn open(database_url: &str) -> Result<SharedStore, String> {
    clientele::store::connect(database_url)
        .await
        .map_err(|error| format!("open the database: {error}"))
}

/// Opens the benchmark database and issues the admin key every workload
/// uses.
pub async fn open_with_key(database_url: &str) -> Result<(SharedStore, String), String> {
    let store = open(database_url).await?;
    let token = issue_api_key(&store, &WorkspaceId::new(WORKSPACE), USER, Role::Admin)
        .await
        .map_err(|error| format!("key: {error}"))?
        .token;
    Ok((store, token))
}

/// The seed PATCH ICP as its handler runs it, without HTTP: the body read
/// from its wire form, then applied in one transaction. Two steps, so that
/// the storage floor can time the transaction alone.
pub struct SeedPatch {
    records: Records,
    principal: Principal,
    body: Value,
}

impl SeedPatch {
    pub fn new(store: &SharedStore) -> Self {
        Self {
            records: Records::new(store.clone()),
            principal: principal(),
            body: json!({"name": "Updated ICP Name", "leadsPerList": 50,
                "customFilterCriteria": [{"type": "maxPeoplePerCompany", "value": 5}]}),
        }
    }

    /// Read once per PATCH, as each request's body is: applying consumes it.
    pub fn read(&self) -> Result<IcpPatch, String> {
        Icp::read_patch::<Lance>(&self.body).map_err(|error| error.to_string())
    }

    pub async fn apply(&self, patch: IcpPatch, id: &str) -> Result<(), String> {
        self.records
            .update::<Icp>(&self.principal, id, &Precondition::None, |icp| {
                patch.apply(icp)
            })
            .await
            .map_err(|error| format!("floor: {error}"))?;
        Ok(())
    }
}

/// Opens the fresh database at `database_url`, preloads `records` ICPs and
/// as many Hood profiles and settles it, timed; returns the store (still
/// open), the admin key and the ids.
pub async fn load(
    target: &Target,
    database_url: &str,
    records: usize,
) -> Result<(SharedStore, String, Ids), String> {
    eprintln!(
        "== {}: preloading {records} ICPs and {records} Hood profiles",
        target.backend.describe(),
    );
    let started = std::time::Instant::now();
    let (store, token) = open_with_key(database_url).await?;
    let mut ids = Ids::default();
    preload(&store, &mut ids, records).await?;
    settle(target.backend, database_url, target.analyze)?;
    eprintln!("   preloaded in {:.1} s", started.elapsed().as_secs_f64());
    Ok((store, token, ids))
}
