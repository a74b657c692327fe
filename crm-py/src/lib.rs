//! The compiled part of the `crm` Python package (`crm._crm`): the analytics engine of
//! crm-core on polars DataFrames. The Python modules beside it (`python/crm`) give it its
//! documented face; errors are raised as the classes of `crm.errors`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use chrono::{NaiveDate, NaiveDateTime};
use crm_core::analytics::{self, Params, Tables};
use crm_core::{Actor, Crm, Role, Store, UserId};
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use pyo3_polars::{PolarsAllocator, PyDataFrame};

/// Allocations go to the allocator of the polars Python package (jemalloc or mimalloc):
/// the frames handed to it are freed by it, and reading a snapshot allocates much.
#[global_allocator]
static ALLOC: PolarsAllocator = PolarsAllocator::new();

/// A crm-core error as the matching exception of `crm.errors`, carrying the machine code
/// and, for validation errors, the offending fields.
fn raise(py: Python<'_>, e: crm_core::Error) -> PyErr {
    let class = match &e {
        crm_core::Error::Validation(_) | crm_core::Error::Malformed(_) => "ValidationError",
        crm_core::Error::NotFound { .. } => "NotFoundError",
        crm_core::Error::Conflict { .. } | crm_core::Error::VersionConflict { .. } => "ConflictError",
        crm_core::Error::Unauthenticated | crm_core::Error::Forbidden(_) => "PermissionDeniedError",
        _ => "CrmError",
    };
    let build = || -> PyResult<PyErr> {
        let fields = PyList::empty(py);
        for f in e.field_errors() {
            let d = PyDict::new(py);
            d.set_item("field", &f.field)?;
            d.set_item("code", f.code)?;
            d.set_item("message", &f.message)?;
            fields.append(d)?;
        }
        let class = py.import("crm.errors")?.getattr(class)?;
        // A library's caller runs the process: internal errors keep their causes.
        let mut message = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(cause) = source {
            message.push_str(&format!(": {cause}"));
            source = cause.source();
        }
        let instance = class.call1((message, e.code(), fields))?;
        Ok(PyErr::from_value(instance))
    };
    build().unwrap_or_else(|import| PyRuntimeError::new_err(format!("{e} (and crm.errors failed: {import})")))
}

fn tables(frames: HashMap<String, PyDataFrame>) -> Tables {
    Tables(frames.into_iter().map(|(name, df)| (name, df.0)).collect())
}

/// Runs a standard report on the given tables; the parameters left `None` take their
/// defaults from the data. The GIL is released while the engine works.
#[pyfunction]
#[pyo3(signature = (name, tables, as_of=None, forecast_end=None, engagement_start=None))]
fn report(
    py: Python<'_>,
    name: String,
    tables: HashMap<String, PyDataFrame>,
    as_of: Option<NaiveDateTime>,
    forecast_end: Option<NaiveDate>,
    engagement_start: Option<NaiveDateTime>,
) -> PyResult<PyDataFrame> {
    let tables = self::tables(tables);
    let params = Params { as_of, forecast_end, engagement_start };
    py.detach(|| analytics::report(&name, &tables, &params)).map(PyDataFrame).map_err(|e| raise(py, e))
}

/// Runs a custom report (a `ReportSpec` as JSON) on the given tables.
#[pyfunction]
fn custom(py: Python<'_>, spec: String, tables: HashMap<String, PyDataFrame>) -> PyResult<PyDataFrame> {
    let tables = self::tables(tables);
    py.detach(|| analytics::ReportSpec::from_json(&spec).and_then(|s| analytics::custom(&s, &tables)))
        .map(PyDataFrame)
        .map_err(|e| raise(py, e))
}

/// Writes a DataFrame to a file as CSV, Parquet, JSON, XLSX or PDF (`format` defaults to
/// the file's extension; `chart` is a PDF's chart as JSON); returns the format written.
#[pyfunction]
#[pyo3(signature = (frame, path, format=None, title=None, parameters=None, chart=None))]
fn export(
    py: Python<'_>,
    frame: PyDataFrame,
    path: PathBuf,
    format: Option<String>,
    title: Option<String>,
    parameters: Option<Vec<(String, String)>>,
    chart: Option<String>,
) -> PyResult<&'static str> {
    py.detach(|| {
        let chart = chart
            .map(|c| {
                serde_json::from_str::<crm_core::ChartSpec>(&c)
                    .map_err(|e| crm_core::Error::invalid("chart", "invalid_value", e.to_string()))
            })
            .transpose()?;
        let about = analytics::About { title, parameters: parameters.unwrap_or_default(), chart };
        let format = format.as_deref().map(analytics::Format::parse).transpose()?;
        analytics::export_to(&frame.0, &path, format, &about)
    })
    .map(|f| f.name())
    .map_err(|e| raise(py, e))
}

/// The standard parameters with their defaults filled in from the tables, as a tuple
/// `(as_of, forecast_end, engagement_start)`.
#[pyfunction]
#[pyo3(signature = (tables, as_of=None, forecast_end=None, engagement_start=None))]
fn resolve_params(
    py: Python<'_>,
    tables: HashMap<String, PyDataFrame>,
    as_of: Option<NaiveDateTime>,
    forecast_end: Option<NaiveDate>,
    engagement_start: Option<NaiveDateTime>,
) -> PyResult<(NaiveDateTime, NaiveDate, NaiveDateTime)> {
    let tables = self::tables(tables);
    let params = Params { as_of, forecast_end, engagement_start };
    let r = py.detach(|| params.resolve(&tables)).map_err(|e| raise(py, e))?;
    Ok((r.as_of, r.forecast_end, r.engagement_start))
}

/// Reads the analytics tables (`<name>.parquet`) found in a directory.
#[pyfunction]
fn read_parquet(py: Python<'_>, directory: PathBuf) -> PyResult<HashMap<String, PyDataFrame>> {
    let read = py.detach(|| analytics::read_parquet(&directory)).map_err(|e| raise(py, e))?;
    Ok(read.0.into_iter().map(|(name, df)| (name, PyDataFrame(df))).collect())
}

/// The names of the standard reports, in order.
#[pyfunction]
fn standard_reports() -> Vec<&'static str> {
    analytics::REPORTS.to_vec()
}

/// The names of the analytics tables.
#[pyfunction]
fn table_names() -> Vec<&'static str> {
    analytics::TABLES.to_vec()
}

/// Opens the store behind a database URL (`sqlite://…`, `postgres://…`, `mysql://…`,
/// `mongodb://…`).
async fn open(url: &str) -> crm_core::Result<Arc<dyn Store>> {
    Ok(crm_storage::open(url).await?.store())
}

fn runtime() -> PyResult<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| PyRuntimeError::new_err(format!("starting the runtime: {e}")))
}

/// The whole-store reader of a library connection: an embedding program reads its own
/// data, as crm-server's operator commands do.
fn system() -> Actor {
    Actor::new(UserId(uuid::Uuid::nil()), Role::Admin, None)
}

/// A connection to a CRM's store, reading as one user (their scope) or as the system.
#[pyclass(frozen, module = "crm._crm")]
struct Client {
    runtime: tokio::runtime::Runtime,
    crm: Crm,
    actor: Actor,
    url: String,
}

#[pymethods]
impl Client {
    /// The analytics tables of the store, as this connection may read them (cached until
    /// the store changes).
    fn tables(&self, py: Python<'_>) -> PyResult<HashMap<String, PyDataFrame>> {
        let tables =
            py.detach(|| self.runtime.block_on(self.crm.analytics_tables(&self.actor))).map_err(|e| raise(py, e))?;
        Ok(tables.0.iter().map(|(name, df)| (name.clone(), PyDataFrame(df.clone()))).collect())
    }

    /// A standard report on the store's snapshot.
    #[pyo3(signature = (name, as_of=None, forecast_end=None, engagement_start=None))]
    fn report(
        &self,
        py: Python<'_>,
        name: String,
        as_of: Option<NaiveDateTime>,
        forecast_end: Option<NaiveDate>,
        engagement_start: Option<NaiveDateTime>,
    ) -> PyResult<PyDataFrame> {
        let params = Params { as_of, forecast_end, engagement_start };
        py.detach(|| self.runtime.block_on(self.crm.standard_report(&self.actor, &name, &params)))
            .map(PyDataFrame)
            .map_err(|e| raise(py, e))
    }

    /// A custom report (a `ReportSpec` as JSON) on the store's snapshot.
    fn custom(&self, py: Python<'_>, spec: String) -> PyResult<PyDataFrame> {
        py.detach(|| {
            let spec = analytics::ReportSpec::from_json(&spec)?;
            self.runtime.block_on(self.crm.custom_report(&self.actor, &spec))
        })
        .map(PyDataFrame)
        .map_err(|e| raise(py, e))
    }

    /// The invoices and credit notes this connection may read, one row each; with
    /// `currency`, their totals and balances converted to it at each issue date's rate.
    #[pyo3(signature = (currency=None))]
    fn invoices(&self, py: Python<'_>, currency: Option<String>) -> PyResult<PyDataFrame> {
        py.detach(|| self.runtime.block_on(self.crm.billing().invoice_frame(&self.actor, currency.as_deref())))
            .map(PyDataFrame)
            .map_err(|e| raise(py, e))
    }

    /// The payments and refunds this connection may read, one row each.
    fn payments(&self, py: Python<'_>) -> PyResult<PyDataFrame> {
        py.detach(|| self.runtime.block_on(self.crm.billing().payment_frame(&self.actor)))
            .map(PyDataFrame)
            .map_err(|e| raise(py, e))
    }

    /// Every record of a list (`contacts`, `companies`, `deals`, `tasks`,
    /// `interactions`) this connection may export that the filter, search and sort find,
    /// one row each, with the API's field names.
    #[pyo3(signature = (kind, filter=None, q=None, sort=None, include_deleted=false))]
    fn records(
        &self,
        py: Python<'_>,
        kind: String,
        filter: Option<String>,
        q: Option<String>,
        sort: Option<String>,
        include_deleted: bool,
    ) -> PyResult<PyDataFrame> {
        py.detach(|| {
            let kind = crm_core::bulk::export::EXPORTABLE.into_iter().find(|k| k.table() == kind).ok_or_else(|| {
                crm_core::Error::invalid(
                    "kind",
                    "invalid_value",
                    format!("'{kind}' is not a list; they are contacts, companies, deals, tasks, interactions"),
                )
            })?;
            let deleted = include_deleted.to_string();
            let raw = crm_core::RawListParams {
                filter: filter.as_deref(),
                q: q.as_deref(),
                sort: sort.as_deref(),
                include_deleted: Some(&deleted),
                ..Default::default()
            };
            let query = crm_core::ListQuery::parse(kind, &raw)?;
            self.runtime.block_on(self.crm.records_frame(&self.actor, kind, query))
        })
        .map(PyDataFrame)
        .map_err(|e| raise(py, e))
    }

    /// The user this connection reads as (`None`: the whole store).
    #[getter]
    fn user(&self) -> Option<String> {
        (self.actor.user_id.0 != uuid::Uuid::nil()).then(|| self.actor.user_id.to_string())
    }

    fn __repr__(&self) -> String {
        let backend = self.crm.store().backend();
        format!("<crm.Client {backend} {}>", redact(&self.url))
    }
}

/// A URL without its password.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}{user}:***{}", &url[..scheme + 3], &url[at..])
        }
        _ => url.to_string(),
    }
}

/// Connects to a CRM's store. With `user` (a user name or email), reports cover only what
/// that user may read; without, the whole store.
#[pyfunction]
#[pyo3(signature = (url, user=None))]
fn connect(py: Python<'_>, url: String, user: Option<String>) -> PyResult<Client> {
    let runtime = runtime()?;
    let (crm, actor) = py
        .detach(|| {
            runtime.block_on(async {
                let crm = Crm::new(open(&url).await?);
                let actor = match user {
                    None => system(),
                    Some(name) => match crm.users().by_login(&name).await? {
                        Some(u) => u.actor(),
                        None => {
                            return Err(crm_core::Error::invalid(
                                "user",
                                "not_found",
                                format!("no user '{name}' in this CRM"),
                            ))
                        }
                    },
                };
                Ok((crm, actor))
            })
        })
        .map_err(|e| raise(py, e))?;
    Ok(Client { runtime, crm, actor, url })
}

/// Fills a CRM with crm-server's demo data (teams, reps, companies, contacts, deals moved
/// through the pipeline, tasks, interactions), making the admin `admin` if there is none.
/// Returns what was made.
#[pyfunction]
#[pyo3(signature = (url, companies=40, contacts=200, deals=150))]
fn seed_demo(
    py: Python<'_>,
    url: String,
    companies: usize,
    contacts: usize,
    deals: usize,
) -> PyResult<HashMap<String, usize>> {
    let runtime = runtime()?;
    let report = py
        .detach(|| {
            runtime.block_on(async {
                let crm = Crm::new(open(&url).await?);
                let (admin, _) = crm_core::demo::admin(&crm).await?;
                let size = crm_core::demo::DemoSize { companies, contacts, deals };
                crm_core::demo::seed(&crm, &admin.actor(), size, &|_, _, _| {}).await
            })
        })
        .map_err(|e| raise(py, e))?;
    Ok(HashMap::from([
        ("companies".to_string(), report.companies),
        ("contacts".to_string(), report.contacts),
        ("deals".to_string(), report.deals),
        ("tasks".to_string(), report.tasks),
        ("interactions".to_string(), report.interactions),
        ("reps".to_string(), report.reps.len()),
    ]))
}

/// The module `crm._crm`.
#[pymodule]
fn _crm(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(report, m)?)?;
    m.add_function(wrap_pyfunction!(custom, m)?)?;
    m.add_function(wrap_pyfunction!(export, m)?)?;
    m.add_function(wrap_pyfunction!(resolve_params, m)?)?;
    m.add_function(wrap_pyfunction!(read_parquet, m)?)?;
    m.add_function(wrap_pyfunction!(standard_reports, m)?)?;
    m.add_function(wrap_pyfunction!(table_names, m)?)?;
    m.add_function(wrap_pyfunction!(connect, m)?)?;
    m.add_function(wrap_pyfunction!(seed_demo, m)?)?;
    m.add_class::<Client>()?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
