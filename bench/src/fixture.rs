//! The database under test: a fresh one per run (a SQLite file in a
//! temporary directory, or a PostgreSQL database dropped on exit), opened
//! with the admin key every workload uses, preloaded through the library in
//! batches (ICPs and Hood profiles; or Lance companies and persons, with
//! the ICP lists are generated from) and settled before anything is
//! measured. The only module that
//! calls the `clientele` library, so that a change to its API (the wire
//! readers the preload uses, say) is made in one place.

use std::process::Command;

use clientele::core::auth::{Principal, Role, WorkspaceId, issue_api_key};
use clientele::core::error::{DomainError, RecordKind};
use clientele::core::fields::Declared;
use clientele::core::hood::Profile;
use clientele::core::icp::{Icp, IcpPatch};
use clientele::core::leads::{Company, Person};
use clientele::core::prospecting::{Plan, read_person_search};
use clientele::core::records::{Document, Precondition, Records};
use clientele::store::search::{TermQuery, page_sql};
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

/// A database the caller keeps: neither created nor dropped here.
pub fn kept_database(url: &str) -> Database {
    Database {
        url: url.to_owned(),
        _directory: None,
        drop_on_exit: None,
    }
}

/// How many persons the benchmark's workspace already holds.
pub async fn persons_present(store: &SharedStore) -> Result<u64, String> {
    let (_, total) = store
        .search(
            &WorkspaceId::new(WORKSPACE),
            "person",
            &clientele::store::search::TermQuery::default(),
            true,
        )
        .await
        .map_err(|error| format!("counting persons: {error}"))?;
    Ok(total.unwrap_or(0))
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

/// The seed's PATCH ICP body with a random number in the name, as
/// bench/lua/workload.lua sends it: a PATCH that changes nothing writes
/// nothing (no version, no history, no event), so the seed's own body,
/// sent twice, would time a read.
pub fn seed_patch_body() -> Value {
    json!({"name": format!("Updated ICP Name {}", rand::random::<u32>()),
        "leadsPerList": 50,
        "customFilterCriteria": [{"type": "maxPeoplePerCompany", "value": 5}]})
}

/// The seed PATCH ICP as its handler runs it, without HTTP: the body read
/// from its wire form, then applied in one transaction. Two steps, so that
/// the storage floor can time the transaction alone.
pub struct SeedPatch {
    records: Records,
    principal: Principal,
}

impl SeedPatch {
    pub fn new(store: &SharedStore) -> Self {
        Self {
            records: Records::new(store.clone()),
            principal: principal(),
        }
    }

    /// Read once per PATCH, as each request's body is: applying consumes it.
    pub fn read(&self) -> Result<IcpPatch, String> {
        Icp::read_patch::<Lance>(&seed_patch_body()).map_err(|error| error.to_string())
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

// ---- lead records (`clientele-bench leads`) ---------------------------------

/// The values persons and companies are spread over: each record picks
/// from every list by a hash of its number, so the same counts always give
/// the same data and no two fields move in step.
const JOB_TITLES: [&str; 30] = [
    "CTO",
    "VP Engineering",
    "Head of Sales",
    "CEO",
    "CFO",
    "COO",
    "CMO",
    "VP Sales",
    "VP Marketing",
    "VP Product",
    "Director of Engineering",
    "Engineering Manager",
    "Software Engineer",
    "Senior Software Engineer",
    "Staff Engineer",
    "Product Manager",
    "Head of Marketing",
    "Head of Product",
    "Sales Manager",
    "Account Executive",
    "Marketing Manager",
    "Data Scientist",
    "Head of Data",
    "Recruiter",
    "HR Manager",
    "Office Manager",
    "Customer Success Manager",
    "Solutions Architect",
    "DevOps Engineer",
    "Designer",
];
const SENIORITIES: [&str; 8] = [
    "C-Suite", "VP", "Director", "Head", "Manager", "Senior", "Entry", "Intern",
];
/// Countries and a city in each.
const PLACES: [(&str, &str); 20] = [
    ("United States", "New York"),
    ("United Kingdom", "London"),
    ("Germany", "Berlin"),
    ("France", "Paris"),
    ("Spain", "Madrid"),
    ("Italy", "Rome"),
    ("Netherlands", "Amsterdam"),
    ("Sweden", "Stockholm"),
    ("Canada", "Toronto"),
    ("Australia", "Sydney"),
    ("Brazil", "São Paulo"),
    ("India", "Bangalore"),
    ("Japan", "Tokyo"),
    ("Singapore", "Singapore"),
    ("Ireland", "Dublin"),
    ("Switzerland", "Zurich"),
    ("Poland", "Warsaw"),
    ("Israel", "Tel Aviv"),
    ("Mexico", "Mexico City"),
    ("South Africa", "Cape Town"),
];
const DEPARTMENTS: [&str; 10] = [
    "Engineering",
    "Sales",
    "Marketing",
    "Product",
    "Finance",
    "Operations",
    "Human Resources",
    "Customer Success",
    "Data",
    "Legal",
];
const SKILLS: [&str; 20] = [
    "Rust",
    "Python",
    "Go",
    "Kubernetes",
    "AWS",
    "SQL",
    "Machine Learning",
    "Leadership",
    "Negotiation",
    "Salesforce",
    "SEO",
    "Product Strategy",
    "Recruiting",
    "Accounting",
    "Figma",
    "Public Speaking",
    "React",
    "Java",
    "Data Analysis",
    "Customer Success",
];
const HEADCOUNTS: [&str; 8] = [
    "1-10",
    "11-50",
    "51-200",
    "201-500",
    "501-1000",
    "1001-5000",
    "5001-10000",
    "10001+",
];
const INDUSTRIES: [&str; 15] = [
    "Software",
    "Financial Services",
    "Healthcare",
    "Retail",
    "Manufacturing",
    "Education",
    "Telecommunications",
    "Media",
    "Logistics",
    "Energy",
    "Real Estate",
    "Consulting",
    "Biotechnology",
    "Automotive",
    "E-commerce",
];
const FIRST_NAMES: [&str; 16] = [
    "Jane", "John", "Maria", "Wei", "Aisha", "Lukas", "Sofia", "Hiro", "Olivia", "Mateo", "Priya",
    "Noah", "Elena", "Kwame", "Emma", "Omar",
];
const LAST_NAMES: [&str; 16] = [
    "Doe", "Smith", "Garcia", "Chen", "Khan", "Müller", "Rossi", "Tanaka", "Brown", "Silva",
    "Patel", "Johnson", "Novak", "Mensah", "Dubois", "Haddad",
];
const COMPANY_WORDS: [&str; 12] = [
    "Acme",
    "Northwind",
    "Globex",
    "Initech",
    "Umbrella",
    "Hooli",
    "Vandelay",
    "Stark",
    "Wayne",
    "Tyrell",
    "Cyberdyne",
    "Soylent",
];

/// The lead records' inserts, 1,000 per transaction as [`preload`]'s.
const LEADS_BATCH: usize = 1_000;

/// Picks one of `count` values for record `index` and field `salt`
/// (splitmix64 of the two).
fn spread(index: usize, salt: u64, count: usize) -> usize {
    let mut z = (index as u64)
        .wrapping_add(salt.wrapping_mul(0x9E37_79B9_7F4A_7C15))
        .wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z % count as u64) as usize
}

fn company_industry(index: usize) -> &'static str {
    INDUSTRIES[spread(index, 11, INDUSTRIES.len())]
}

/// Company number `index`, read from its wire form.
fn company_body(index: usize) -> Result<Company, DomainError> {
    let (country, city) = PLACES[spread(index, 12, PLACES.len())];
    let word = COMPANY_WORDS[spread(index, 13, COMPANY_WORDS.len())];
    let body = json!({
        "name": format!("{word} {index}"),
        "industry": company_industry(index),
        "headcount": HEADCOUNTS[spread(index, 14, HEADCOUNTS.len())],
        "domain": format!("company{index}.example.com"),
        "websiteUrl": format!("https://company{index}.example.com"),
        "linkedinUrl": format!("https://www.linkedin.com/company/company{index}"),
        "city": city,
        "country": country,
        "foundedYear": 1950 + spread(index, 15, 70),
    });
    Company::read_new::<Lance>(&body)
}

/// Person number `index`, working at company number `company` (whose id
/// is `company_id`); every tenth is in the CRM (a `bullhornId`).
fn person_body(index: usize, company: usize, company_id: &str) -> Result<Person, DomainError> {
    let (country, city) = PLACES[spread(index, 1, PLACES.len())];
    let first = FIRST_NAMES[spread(index, 2, FIRST_NAMES.len())];
    let last = LAST_NAMES[spread(index, 3, LAST_NAMES.len())];
    let skills: Vec<&str> = (0..3)
        .map(|n| SKILLS[spread(index, 20 + n, SKILLS.len())])
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut body = json!({
        "firstName": first,
        "lastName": last,
        "jobTitle": JOB_TITLES[spread(index, 4, JOB_TITLES.len())],
        "seniority": SENIORITIES[spread(index, 5, SENIORITIES.len())],
        "departments": [DEPARTMENTS[spread(index, 6, DEPARTMENTS.len())]],
        "skills": skills,
        "industry": company_industry(company),
        "city": city,
        "country": country,
        "linkedinUrl": format!("https://www.linkedin.com/in/person{index}"),
        "emails": [format!("person{index}@company{company}.example.com")],
        "companyId": company_id,
    });
    if index.is_multiple_of(10) {
        body["bullhornId"] = json!(index + 1);
    }
    Person::read_new::<Lance>(&body)
}

/// How long the lead records' preload took, by kind.
#[derive(Default)]
pub struct LeadsPreload {
    pub companies: std::time::Duration,
    pub persons: std::time::Duration,
}

/// Inserts `companies` companies, then `persons` persons (each at a
/// company picked by its number), 1,000 per transaction, printing
/// progress.
pub async fn preload_leads(
    store: &SharedStore,
    companies: usize,
    persons: usize,
) -> Result<LeadsPreload, String> {
    if persons > 0 && companies == 0 {
        return Err("persons need companies: --companies must be at least 1".into());
    }
    let records = Records::new(store.clone());
    let started = std::time::Instant::now();
    let company_ids = insert_batches(&records, "companies", companies, company_body).await?;
    let companies_took = started.elapsed();
    let company_ids = std::sync::Arc::new(company_ids);
    let started = std::time::Instant::now();
    insert_batches(&records, "persons", persons, move |index| {
        let company = spread(index, 7, company_ids.len());
        person_body(index, company, &company_ids[company])
    })
    .await?;
    Ok(LeadsPreload {
        companies: companies_took,
        persons: started.elapsed(),
    })
}

/// Inserts records `0..total` built by `build`, [`LEADS_BATCH`] per
/// transaction, printing progress every tenth; returns their ids in order.
async fn insert_batches<T, F>(
    records: &Records,
    what: &str,
    total: usize,
    build: F,
) -> Result<Vec<String>, String>
where
    T: Document,
    F: Fn(usize) -> Result<T, DomainError> + Clone + Send + Sync + 'static,
{
    let principal = principal();
    let started = std::time::Instant::now();
    let step = (total / 10).max(LEADS_BATCH);
    let mut ids = Vec::with_capacity(total);
    for batch_start in (0..total).step_by(LEADS_BATCH) {
        let batch = batch_start..(batch_start + LEADS_BATCH).min(total);
        let build = build.clone();
        let inserted = records
            .transact(&principal, move |session| {
                Box::pin(async move {
                    let mut ids = Vec::with_capacity(batch.len());
                    for index in batch {
                        let data = build(index)?;
                        ids.push(session.insert(|_| data).await?.id);
                    }
                    Ok(ids)
                })
            })
            .await
            .map_err(|error| format!("preload {what}: {error}"))?;
        let before = ids.len();
        ids.extend(inserted);
        if before / step != ids.len() / step || ids.len() == total {
            let seconds = started.elapsed().as_secs_f64();
            eprintln!(
                "   {what}: {}/{total} in {seconds:.1} s ({:.0}/s)",
                ids.len(),
                ids.len() as f64 / seconds.max(1e-9)
            );
        }
    }
    Ok(ids)
}

/// The ICP lists are generated from, as the seed's: CTOs and VPs of
/// Engineering at companies of 501 to 5,000, at most 5 per company.
fn leads_icp_body() -> Value {
    json!({
        "name": "Enterprise technology leaders",
        "description": "C-level and VP-level technology leaders at enterprise companies",
        "userIds": [USER],
        "leadsPerList": 50,
        "leadProviderCriteria": [{"provider": "baseProvider", "type": "person",
            "filters": {"job_titles": ["CTO", "VP Engineering"],
                        "company_size": ["501-1000", "1001-5000"]}}],
        "customFilterCriteria": [{"type": "maxPeoplePerCompany", "value": 5}]
    })
}

/// The ICP's body, for the report.
pub fn leads_icp_json() -> String {
    leads_icp_body().to_string()
}

fn leads_icp() -> Result<Icp, String> {
    Icp::read_new::<Lance>(&leads_icp_body())
        .map(|icp| icp.created_by(&principal()))
        .map_err(|error| format!("the benchmark ICP: {error}"))
}

/// Creates the ICP lists are generated from; returns its id.
pub async fn create_leads_icp(store: &SharedStore) -> Result<String, String> {
    let icp = leads_icp()?;
    Records::new(store.clone())
        .create(&principal(), move |_| icp)
        .await
        .map(|record| record.id)
        .map_err(|error| format!("create the ICP: {error}"))
}

/// The body of the prospect search measured: VPs in the United States,
/// first page (10).
pub fn prospect_search_body() -> Value {
    json!({"contact": {
        "seniority": {"any": {"include": ["VP"]}},
        "location": {"any": {"include": ["United States"]}}
    }})
}

/// A query to `EXPLAIN`: its SQL and every parameter, the workspace and
/// the kind first.
pub struct PlannedQuery {
    pub name: &'static str,
    pub sql: String,
    pub parameters: Vec<String>,
}

/// The SQL of the generation's candidate page (the ICP's criteria, 500 in
/// id order, as `generate` reads them) and of the prospect search's first
/// page, as the server runs them on the backend.
pub fn leads_queries(postgres: bool) -> Result<Vec<PlannedQuery>, String> {
    let plan = Plan::of(&leads_icp()?, chrono::Utc::now())
        .map_err(|error| format!("the ICP's plan: {error}"))?;
    let candidates = TermQuery {
        condition: Some(plan.candidates),
        after: None,
        offset: 0,
        limit: 500,
    };
    let search = read_person_search(&prospect_search_body())
        .map_err(|error| format!("the search body: {error}"))?
        .query();
    [
        ("generation: candidate page (500)", candidates),
        ("prospect search: first page", search),
    ]
    .into_iter()
    .map(|(name, query)| {
        let (sql, binds) = page_sql(&query, postgres)?;
        let mut parameters = vec![WORKSPACE.to_owned(), RecordKind::Person.as_str().to_owned()];
        parameters.extend(binds);
        Ok(PlannedQuery {
            name,
            sql,
            parameters,
        })
    })
    .collect()
}
