//! Work on many records: list exports, batches and imports.

use std::io::Write;
use std::sync::{Arc, Mutex};

use crm_core::analytics::polars::prelude::{DataType, ParquetReader, SerReader, TimeUnit};
use crm_core::bulk::{
    BatchMode, BatchRequest, Batchable, ExportFormat, ImportStart, ImportUpload, ItemOutcome, ItemResult,
};
use crm_core::model::import::{ImportJob, ImportStatus};
use crm_core::service::*;
use crm_core::*;

use super::{assert_code, fields, q};
use crate::{Harness, TestBackend};

/// A writer whose bytes the test reads afterwards.
#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("buffer").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Exports `query` as `actor`, answering the file's bytes and the records counted.
async fn export(
    h: &Harness,
    actor: &Actor,
    kind: EntityKind,
    query: ListQuery,
    format: ExportFormat,
) -> (Vec<u8>, u64) {
    let out = Shared::default();
    let n = h
        .crm
        .export_records(actor, kind, query, format)
        .await
        .expect("export starts")
        .write_to(out.clone())
        .await
        .expect("export written");
    let bytes = out.0.lock().expect("buffer").clone();
    (bytes, n)
}

/// The CSV's header and records.
fn csv_rows(bytes: &[u8]) -> (Vec<String>, Vec<Vec<String>>) {
    let mut r = csv::Reader::from_reader(bytes);
    let header = r.headers().expect("header").iter().map(str::to_string).collect();
    let rows = r.records().map(|rec| rec.expect("record").iter().map(str::to_string).collect()).collect();
    (header, rows)
}

fn column(header: &[String], name: &str) -> usize {
    header.iter().position(|h| h == name).unwrap_or_else(|| panic!("no column {name} in {header:?}"))
}

/// Every record a list query finds, in its order and within the caller's export scope,
/// as CSV (API field names, formula-safe, lists and objects flattened), XLSX and Parquet
/// (typed); more than one page read without a gap or a repeat; deleted records only for
/// those who may see them; each export audited.
pub async fn record_exports_follow_query_and_scope(b: &dyn TestBackend) {
    let h = Harness::new(b).await;
    let rep = h.user("rep", Role::User, None).await;
    let contacts = h.crm.contacts();
    let ann = contacts
        .create(
            &h.admin,
            NewContact {
                name: "Ann Lee".into(),
                email: Some("ann@example.com".into()),
                phone_number: Some("+44 20 7946 0958".into()),
                tags: vec!["vip".into(), "b2b".into()],
                lifecycle_stage: Some(LifecycleStage::Customer),
                address: serde_json::json!({"city": "London"}).as_object().cloned().expect("object"),
                ..Default::default()
            },
        )
        .await
        .expect("ann");
    contacts
        .create(&h.admin, NewContact { name: "=HYPERLINK(\"http://evil\")".into(), ..Default::default() })
        .await
        .expect("formula");
    let gone = contacts.create(&h.admin, NewContact { name: "Gone".into(), ..Default::default() }).await.expect("gone");
    contacts.delete(&h.admin, gone.id, None).await.expect("delete");
    contacts.create(&rep, NewContact { name: "Rep's own".into(), ..Default::default() }).await.expect("rep's");

    // CSV: the header is the API's field names; text a spreadsheet would run is defused.
    let by_name = ListQuery::new().sort_str(EntityKind::Contact, "name").expect("sort");
    let (bytes, n) = export(&h, &h.admin, EntityKind::Contact, by_name.clone(), ExportFormat::Csv).await;
    let (header, rows) = csv_rows(&bytes);
    assert_eq!(n, 3, "three live contacts");
    assert_eq!(rows.len(), 3);
    assert!(!header.iter().any(|h| h.is_empty() || h == "searchText"), "no computed columns: {header:?}");
    let (name, email, tags, stage, address, phone, id) = (
        column(&header, "name"),
        column(&header, "email"),
        column(&header, "tags"),
        column(&header, "lifecycleStage"),
        column(&header, "address"),
        column(&header, "phoneNumber"),
        column(&header, "id"),
    );
    let names: Vec<&str> = rows.iter().map(|r| r[name].as_str()).collect();
    assert_eq!(names, vec!["'=HYPERLINK(\"http://evil\")", "Ann Lee", "Rep's own"], "sorted by name, defused");
    let ann_row = &rows[1];
    assert_eq!(ann_row[id], ann.id.to_string());
    assert_eq!(ann_row[email], "ann@example.com");
    assert_eq!(ann_row[tags], "vip; b2b");
    assert_eq!(ann_row[stage], "customer");
    assert_eq!(ann_row[address], r#"{"city":"London"}"#);
    assert_eq!(ann_row[phone], "'+442079460958", "a leading + is defused too");
    assert_eq!(rows[0][address], "", "an empty object is an empty cell");

    // The query's filter and search apply; a user exports their own records only.
    let (bytes, _) = export(
        &h,
        &h.admin,
        EntityKind::Contact,
        q(EntityKind::Contact, "lifecycleStage[eq]:customer"),
        ExportFormat::Csv,
    )
    .await;
    assert_eq!(csv_rows(&bytes).1.len(), 1);
    let (bytes, _) = export(&h, &rep, EntityKind::Contact, ListQuery::new(), ExportFormat::Csv).await;
    let (header, rows) = csv_rows(&bytes);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0][column(&header, "name")], "Rep's own");

    // Deleted records: only for those who may see them.
    let deleted = ListQuery { include_deleted: true, ..ListQuery::new() };
    assert_code(h.crm.export_records(&rep, EntityKind::Contact, deleted.clone(), ExportFormat::Csv).await, "forbidden");
    let (_, n) = export(&h, &h.admin, EntityKind::Contact, deleted, ExportFormat::Csv).await;
    assert_eq!(n, 4);

    // Parquet keeps the types: lists are lists, times are UTC timestamps.
    let (bytes, n) = export(&h, &h.admin, EntityKind::Contact, by_name.clone(), ExportFormat::Parquet).await;
    let df = ParquetReader::new(std::io::Cursor::new(bytes)).finish().expect("parquet");
    assert_eq!((df.height() as u64, n), (3, 3));
    assert_eq!(df.column("tags").expect("tags").dtype(), &DataType::List(Box::new(DataType::String)));
    assert!(matches!(
        df.column("createdAt").expect("createdAt").dtype(),
        DataType::Datetime(TimeUnit::Milliseconds, Some(z)) if z.as_str() == "UTC"
    ));
    assert_eq!(df.column("version").expect("version").dtype(), &DataType::Int64);
    let frame = h.crm.records_frame(&h.admin, EntityKind::Contact, by_name.clone()).await.expect("frame");
    assert_eq!(frame.height(), 3);
    assert_eq!(frame.get_column_names(), df.get_column_names());

    // XLSX: a sheet with the same header and cells, numbers as numbers.
    let (bytes, _) = export(&h, &h.admin, EntityKind::Contact, by_name, ExportFormat::Xlsx).await;
    let mut book: calamine::Xlsx<_> = calamine::open_workbook_from_rs(std::io::Cursor::new(bytes)).expect("xlsx");
    let sheet = calamine::Reader::worksheet_range(&mut book, "Export").expect("sheet");
    let cells: Vec<Vec<String>> = sheet.rows().map(|r| r.iter().map(|c| c.to_string()).collect()).collect();
    assert_eq!(cells.len(), 4, "a header and three records");
    assert_eq!(cells[0], header);
    assert_eq!(cells[2][name], "Ann Lee");
    assert_eq!(cells[1][name], "=HYPERLINK(\"http://evil\")", "a sheet's text cell is never a formula");
    assert_eq!(cells[2][column(&header, "version")], "1");

    // Bad inputs name their field.
    let e = assert_code(ExportFormat::parse("pdf"), "validation_failed");
    assert_eq!(fields(&e), vec!["format"]);
    let e = assert_code(
        h.crm.export_records(&h.admin, EntityKind::Team, ListQuery::new(), ExportFormat::Csv).await,
        "validation_failed",
    );
    assert_eq!(fields(&e), vec!["kind"]);

    // More than a page: every record once, in order.
    let acme = h.crm.companies().create(&h.admin, NewCompany { name: "Acme".into(), ..Default::default() }).await;
    let acme = acme.expect("acme");
    for batch in 0..3 {
        let items = (0..400)
            .map(|i| NewDeal { name: format!("Deal {batch}-{i:03}"), company_id: Some(acme.id), ..Default::default() })
            .collect::<Vec<_>>();
        for d in items {
            h.crm.deals().create(&h.admin, d).await.expect("deal");
        }
    }
    let by_name = ListQuery::new().sort_str(EntityKind::Deal, "-name").expect("sort");
    let (bytes, n) = export(&h, &h.admin, EntityKind::Deal, by_name, ExportFormat::Csv).await;
    let (header, rows) = csv_rows(&bytes);
    assert_eq!((n, rows.len()), (1200, 1200));
    let got: Vec<&str> = rows.iter().map(|r| r[column(&header, "name")].as_str()).collect();
    let mut want = got.clone();
    want.sort_unstable_by(|a, b| b.cmp(a));
    want.dedup();
    assert_eq!(got, want, "every deal once, by name descending");

    // Each export is in the audit log, with its query and format.
    let log =
        h.crm.audit().list(&h.admin, q(EntityKind::AuditEvent, "action[eq]:contact.exported")).await.expect("audit");
    assert_eq!(log.data.len(), 7, "every contact export started, refused ones aside");
    assert!(log.data.iter().any(|e| e.changes["format"] == "xlsx"));
    assert!(log.data.iter().any(|e| e.changes["format"] == "dataframe"));
}

fn batch(mode: BatchMode, items: serde_json::Value) -> BatchRequest {
    BatchRequest { mode, items: serde_json::from_value(items).expect("items") }
}

/// Runs a batch of `items` as `actor`.
async fn run<R: Batchable>(
    h: &Harness,
    actor: &Actor,
    mode: BatchMode,
    items: serde_json::Value,
) -> crm_core::Result<Vec<ItemOutcome<R>>> {
    h.crm.batch::<R>(actor, batch(mode, items)).await
}

async fn contact_count(h: &Harness) -> usize {
    let all = ListQuery { limit: Some(200), ..ListQuery::new() };
    h.crm.contacts().list(&h.admin, all).await.expect("list").data.len()
}

/// Batches: all or nothing, each bad item named (`items.2.record.email`) with nothing
/// written; upserts by natural key that update rather than duplicate (and say when
/// nothing changed); two items on one record refused; per-item batches that apply what
/// they can and report each item; each item authorized and audited as a single call.
pub async fn batches_apply_all_or_each(b: &dyn TestBackend) {
    let h = Harness::new(b).await;
    let rep = h.user("rep", Role::User, None).await;
    let audit_before = h.crm.audit().list(&h.admin, ListQuery::new()).await.expect("audit").data.len();

    // One bad item: nothing is written, every bad field named.
    let e = assert_code(
        run::<Contact>(
            &h,
            &h.admin,
            BatchMode::Atomic,
            serde_json::json!([
                {"op": "create", "record": {"name": "Ann", "email": "ann@example.com"}},
                {"op": "upsert", "record": {"name": "Bob", "email": "bob@example.com"}},
                {"op": "create", "record": {"name": "", "email": "not an email", "shoeSize": 43}},
                {"op": "update", "record": {"name": "X"}},
                {"op": "delete", "id": uuid::Uuid::now_v7()},
            ]),
        )
        .await,
        "validation_failed",
    );
    let mut named = fields(&e);
    named.sort();
    assert_eq!(named, vec!["items.2.record.shoeSize", "items.3.id", "items.4"], "{e:?}");
    assert_eq!(contact_count(&h).await, 0, "a refused batch writes nothing");
    let e = assert_code(
        run::<Contact>(
            &h,
            &h.admin,
            BatchMode::Atomic,
            serde_json::json!([{"op": "create", "record": {"name": "", "email": "bad"}}]),
        )
        .await,
        "validation_failed",
    );
    let mut named = fields(&e);
    named.sort();
    assert_eq!(named, vec!["items.0.record.email", "items.0.record.name"]);

    // All good: everything is written, each as its single call would.
    let done = run::<Contact>(
        &h,
        &h.admin,
        BatchMode::Atomic,
        serde_json::json!([
            {"op": "create", "record": {"name": "Ann", "email": "ann@example.com"}},
            {"op": "upsert", "record": {"name": "Bob", "email": "bob@example.com", "tags": ["vip"]}},
        ]),
    )
    .await
    .expect("batch");
    assert_eq!(done.iter().map(|o| o.result).collect::<Vec<_>>(), vec![ItemResult::Created, ItemResult::Created]);
    let ann = done[0].record.clone().expect("ann");
    assert_eq!(contact_count(&h).await, 2);
    let audit_after = h.crm.audit().list(&h.admin, ListQuery::new()).await.expect("audit").data.len();
    assert_eq!(audit_after, audit_before + 2, "one audit event per record");

    // Upserts match by email (any case) and update; the same again changes nothing.
    let up = serde_json::json!([{"op": "upsert", "record": {"name": "Ann Lee", "email": "ANN@example.com", "jobTitle": "CTO"}}]);
    let done = run::<Contact>(&h, &h.admin, BatchMode::Atomic, up.clone()).await.expect("upsert");
    assert_eq!(done[0].result, ItemResult::Updated);
    let updated = done[0].record.clone().expect("record");
    assert_eq!((updated.id, updated.job_title.as_deref(), updated.meta.version), (ann.id, Some("CTO"), 2));
    let done = run::<Contact>(&h, &h.admin, BatchMode::Atomic, up).await.expect("again");
    assert_eq!(done[0].result, ItemResult::Unchanged);
    assert_eq!(done[0].record.as_ref().map(|r| r.meta.version), Some(2));
    assert_eq!(contact_count(&h).await, 2, "an upsert never duplicates");

    // Two items on one email or one record; a create of an email in use; a stale version.
    let e = assert_code(
        run::<Contact>(
            &h,
            &h.admin,
            BatchMode::Atomic,
            serde_json::json!([
                {"op": "upsert", "record": {"name": "Cy", "email": "cy@example.com"}},
                {"op": "upsert", "record": {"name": "Cy 2", "email": "cy@example.com"}},
                {"op": "update", "id": ann.id, "record": {"jobTitle": "CEO"}},
                {"op": "delete", "id": ann.id},
                {"op": "create", "record": {"name": "Bob again", "email": "bob@example.com"}},
                {"op": "update", "id": ann.id, "version": 1, "record": {"jobTitle": "CFO"}},
            ]),
        )
        .await,
        "validation_failed",
    );
    let mut named: Vec<(String, &str)> = e.field_errors().iter().map(|f| (f.field.clone(), f.code)).collect();
    named.sort();
    assert_eq!(
        named,
        vec![
            ("items.1.record.email".to_string(), "duplicate"),
            ("items.3.id".to_string(), "duplicate"),
            ("items.4.record.email".to_string(), "conflict"),
            ("items.5".to_string(), "version_conflict"),
        ]
    );
    assert!(h.crm.contacts().get(&h.admin, ann.id).await.is_ok(), "nothing applied");

    // Each on its own: what can be applied is, and every item says what became of it.
    let done = run::<Contact>(
        &h,
        &h.admin,
        BatchMode::PerItem,
        serde_json::json!([
            {"op": "create", "record": {"name": "Dee", "email": "dee@example.com"}},
            {"op": "create", "record": {"name": "Dee twin", "email": "dee@example.com"}},
            {"op": "update", "id": uuid::Uuid::now_v7(), "record": {"name": "Nobody"}},
            {"op": "delete", "id": ann.id, "version": 2},
        ]),
    )
    .await
    .expect("per item");
    let results: Vec<ItemResult> = done.iter().map(|o| o.result).collect();
    assert_eq!(results, vec![ItemResult::Created, ItemResult::Failed, ItemResult::Failed, ItemResult::Deleted]);
    assert_eq!(done[1].error.as_ref().map(|e| e.code()), Some("conflict"));
    assert_eq!(done[2].error.as_ref().map(|e| e.code()), Some("not_found"));
    assert_code(h.crm.contacts().get(&h.admin, ann.id).await, "not_found");
    assert_eq!(contact_count(&h).await, 2, "Bob and Dee");

    // A user's items are authorized as their single calls: another's record is not found.
    let page = h.crm.contacts().list(&h.admin, q(EntityKind::Contact, "email[eq]:bob@example.com")).await;
    let bob = page.expect("bob").data.remove(0);
    let done = run::<Contact>(
        &h,
        &rep,
        BatchMode::PerItem,
        serde_json::json!([
            {"op": "update", "id": bob.id, "record": {"name": "Mine now"}},
            {"op": "create", "record": {"name": "Rep's", "ownerId": h.admin.user_id}},
            {"op": "create", "record": {"name": "Rep's own"}},
        ]),
    )
    .await
    .expect("rep");
    assert_eq!(done[0].error.as_ref().map(|e| e.code()), Some("not_found"));
    assert_eq!(done[1].error.as_ref().map(|e| e.code()), Some("forbidden"));
    assert_eq!(done[2].record.as_ref().map(|r| r.owner_id), Some(rep.user_id));

    // Companies upsert by domain; deals and tasks have no natural key.
    let acme = run::<Company>(
        &h,
        &h.admin,
        BatchMode::Atomic,
        serde_json::json!([{"op": "upsert", "record": {"name": "Acme", "domain": "acme.com"}}]),
    )
    .await
    .expect("acme");
    let again = run::<Company>(
        &h,
        &h.admin,
        BatchMode::Atomic,
        serde_json::json!([{"op": "upsert", "record": {"name": "Acme Inc", "domain": "ACME.com"}}]),
    )
    .await
    .expect("acme again");
    assert_eq!(again[0].result, ItemResult::Updated);
    assert_eq!(again[0].record.as_ref().map(|c| c.id), acme[0].record.as_ref().map(|c| c.id));
    let e = assert_code(
        run::<Deal>(&h, &h.admin, BatchMode::Atomic, serde_json::json!([{"op": "upsert", "record": {"name": "D"}}]))
            .await,
        "validation_failed",
    );
    assert_eq!(fields(&e), vec!["items.0.op"]);
    let deals = run::<Deal>(
        &h,
        &h.admin,
        BatchMode::Atomic,
        serde_json::json!([
            {"op": "create", "record": {"name": "Big", "amount": 1000, "currency": "EUR", "stage": "proposal"}},
            {"op": "create", "record": {"name": "Small", "amount": 10, "currency": "EUR"}},
        ]),
    )
    .await
    .expect("deals");
    let big = deals[0].record.clone().expect("big");
    assert_eq!(h.crm.deals().history(&h.admin, big.id).await.expect("history").len(), 1, "with its stage history");
    let tasks = run::<Task>(
        &h,
        &h.admin,
        BatchMode::PerItem,
        serde_json::json!([{"op": "create", "record": {"name": "Call"}}]),
    )
    .await
    .expect("tasks");
    assert_eq!(tasks[0].result, ItemResult::Created);

    // Sizes.
    let many: Vec<serde_json::Value> =
        (0..101).map(|i| serde_json::json!({"op": "create", "record": {"name": format!("N{i}")}})).collect();
    let e = assert_code(
        run::<Contact>(&h, &h.admin, BatchMode::Atomic, serde_json::Value::Array(many)).await,
        "validation_failed",
    );
    assert_eq!(fields(&e), vec!["items"]);
    let e =
        assert_code(run::<Contact>(&h, &h.admin, BatchMode::Atomic, serde_json::json!([])).await, "validation_failed");
    assert_eq!(fields(&e), vec!["items"]);
}

/// Uploads a file, starts it as suggested (with `start` changes) and runs it to its end.
async fn import_file(
    h: &Harness,
    actor: &Actor,
    kind: EntityKind,
    name: &str,
    bytes: &[u8],
    start: ImportStart,
) -> (ImportUpload, ImportJob) {
    let up = h.crm.create_import(actor, kind, name, bytes.to_vec().into()).await.expect("upload");
    h.crm.start_import(actor, up.job.id, start).await.expect("start");
    let job = h.crm.run_import(up.job.id, None).await.expect("run").expect("ran");
    (up, job)
}

/// The results file of a job: (row, result, id, columns, message) per row.
async fn results(h: &Harness, job: &ImportJob) -> Vec<Vec<String>> {
    let mut text = crm_core::bulk::import::RESULTS_HEADER.as_bytes().to_vec();
    for n in 0..job.batches {
        text.extend_from_slice(&h.crm.import_results_piece(job, n).await.expect("piece"));
    }
    csv_rows(&text).1
}

/// Imports: a CSV with a BOM, semicolons and a quoted newline, a bad email, the same
/// email twice and an unknown company; the suggested mapping (custom fields for unknown
/// columns); upserts that update rather than duplicate; Latin-1; a dry run that writes
/// nothing; an export that comes back unchanged; a job whose worker died resumed after its
/// last committed batch without a duplicate.
pub async fn imports_upsert_report_and_resume(b: &dyn TestBackend) {
    let h = Harness::new(b).await;
    let acme = h
        .crm
        .companies()
        .create(&h.admin, NewCompany { name: "Acme Ltd".into(), domain: Some("acme.com".into()), ..Default::default() })
        .await
        .expect("acme");

    let file = "\u{feff}Name;E-mail;Company;Tags;Notes;City\r\n\
                Ann Lee;ann@example.com;acme.com;vip,b2b;\"line one\nline two\";London\r\n\
                Bob;bob@@bad;;;;\r\n\
                Ann Again;ANN@example.com;Acme Ltd;;;Paris\r\n\
                Cy;cy@example.com;Nowhere Inc;;;\r\n";
    let up = h.crm.create_import(&h.admin, EntityKind::Contact, "people.csv", file.as_bytes().to_vec().into()).await;
    let up = up.expect("upload");
    assert_eq!(up.job.headers, vec!["Name", "E-mail", "Company", "Tags", "Notes", "City"]);
    assert_eq!(
        (up.job.delimiter.as_deref(), up.job.encoding.as_deref(), up.job.total_rows),
        (Some(";"), Some("UTF-8"), 4)
    );
    let suggested: Vec<Option<&str>> = up.job.mapping.iter().map(|m| m.as_deref()).collect();
    assert_eq!(
        suggested,
        vec![
            Some("name"),
            Some("email"),
            Some("company"),
            Some("tags"),
            Some("customFields.notes"),
            Some("address.city")
        ]
    );
    assert_eq!(up.job.match_by.as_deref(), Some("email"));
    assert_eq!(up.preview[0][4], "line one\nline two", "a quoted newline stays in its cell");
    h.crm.start_import(&h.admin, up.job.id, ImportStart::default()).await.expect("start");
    let job = h.crm.run_import(up.job.id, None).await.expect("run").expect("ran");
    assert_eq!(job.status, ImportStatus::Completed);
    assert_eq!((job.created, job.updated, job.unchanged, job.failed, job.rows_done), (1, 1, 0, 2, 4));
    let rows = results(&h, &job).await;
    let outcome: Vec<(&str, &str)> = rows.iter().map(|r| (r[0].as_str(), r[1].as_str())).collect();
    assert_eq!(outcome, vec![("2", "created"), ("3", "failed"), ("4", "updated"), ("5", "failed")]);
    assert_eq!(rows[1][3], "E-mail", "the failed cell's column");
    assert!(rows[3][4].contains("Nowhere Inc"), "{:?}", rows[3]);
    assert_eq!(rows[0][2], rows[2][2], "the second Ann updated the first");
    let page = h.crm.contacts().list(&h.admin, ListQuery::new()).await.expect("list");
    assert_eq!(page.data.len(), 1, "one contact: Ann, once");
    let ann = &page.data[0];
    assert_eq!(ann.name, "Ann Again");
    assert_eq!(ann.company_id, Some(acme.id));
    assert_eq!(ann.tags, vec!["vip", "b2b"]);
    assert_eq!(ann.custom_fields.get("notes"), Some(&serde_json::json!("line one\nline two")));
    assert_eq!(ann.address.get("city"), Some(&serde_json::json!("Paris")));
    let log = h.crm.audit().list(&h.admin, q(EntityKind::AuditEvent, "action[eq]:contact.imported")).await;
    assert_eq!(log.expect("audit").data.len(), 2, "one audit event per committed batch");

    // The same file again updates; it never duplicates.
    let (_, again) =
        import_file(&h, &h.admin, EntityKind::Contact, "people.csv", file.as_bytes(), ImportStart::default()).await;
    assert_eq!((again.created, again.failed), (0, 2));
    assert_eq!(h.crm.contacts().list(&h.admin, ListQuery::new()).await.expect("list").data.len(), 1);

    // Latin-1, commas; no match: every row is new.
    let latin = b"name,email,jobTitle\nJos\xe9 M\xfcller,jose@example.com,Directeur g\xe9n\xe9ral\n";
    let start = ImportStart { match_by: Some(None), ..Default::default() };
    let (up, job) = import_file(&h, &h.admin, EntityKind::Contact, "latin.csv", latin, start).await;
    assert_eq!(up.job.encoding.as_deref(), Some("windows-1252"));
    assert_eq!(job.created, 1);
    let jose = h.crm.contacts().list(&h.admin, q(EntityKind::Contact, "email[eq]:jose@example.com")).await;
    let jose = jose.expect("jose").data.remove(0);
    assert_eq!((jose.name.as_str(), jose.job_title.as_deref()), ("José Müller", Some("Directeur général")));

    // A dry run says what would happen and writes nothing.
    let companies = "name,domain,size\nGlobex,globex.com,50\nInitech,initech.com,lots\nAcme again,ACME.com,9\n";
    let start = ImportStart { dry_run: true, ..Default::default() };
    let (up, job) = import_file(&h, &h.admin, EntityKind::Company, "co.csv", companies.as_bytes(), start).await;
    assert_eq!(job.status, ImportStatus::Completed);
    assert!(job.dry_run);
    assert_eq!((job.created, job.updated, job.failed), (1, 1, 1));
    let all = h.crm.companies().list(&h.admin, ListQuery::new()).await.expect("companies");
    assert_eq!(all.data.len(), 1, "a dry run creates nothing");
    let rows = results(&h, &job).await;
    assert_eq!(rows[1][1], "failed");
    assert_eq!(rows[1][3], "size");
    // Then for real, with the same mapping.
    h.crm.start_import(&h.admin, up.job.id, ImportStart::default()).await.expect("start for real");
    let job = h.crm.run_import(up.job.id, None).await.expect("run").expect("ran");
    assert!(!job.dry_run);
    assert_eq!((job.created, job.updated, job.failed), (1, 1, 1));
    let acme_now = h.crm.companies().get(&h.admin, acme.id).await.expect("acme");
    assert_eq!((acme_now.name.as_str(), acme_now.size), ("Acme again", Some(9)));

    // A bad mapping or match names its entry.
    let up = h.crm.create_import(&h.admin, EntityKind::Deal, "d.csv", b"name,amount\nBig,100\n".to_vec().into()).await;
    let up = up.expect("deals");
    let bad = ImportStart { mapping: Some(vec![Some("name".into()), Some("shoeSize".into())]), ..Default::default() };
    let e = assert_code(h.crm.start_import(&h.admin, up.job.id, bad).await, "validation_failed");
    assert_eq!(fields(&e), vec!["mapping.1"]);
    let bad = ImportStart { match_by: Some(Some("email".into())), ..Default::default() };
    let e = assert_code(h.crm.start_import(&h.admin, up.job.id, bad).await, "validation_failed");
    assert_eq!(fields(&e), vec!["matchBy"]);
    let e = assert_code(
        h.crm.create_import(&h.admin, EntityKind::Team, "t.csv", b"name\nx\n".to_vec().into()).await,
        "validation_failed",
    );
    assert_eq!(fields(&e), vec!["kind"]);

    // An export comes back unchanged (XLSX and CSV).
    for format in [ExportFormat::Xlsx, ExportFormat::Csv] {
        let (bytes, n) = export(&h, &h.admin, EntityKind::Contact, ListQuery::new(), format).await;
        let (_, job) = import_file(&h, &h.admin, EntityKind::Contact, "export", &bytes, ImportStart::default()).await;
        assert_eq!((job.unchanged, job.rows_done), (n as i64, n as i64), "{format:?}: {:?}", results(&h, &job).await);
    }

    // A worker that dies after its first batch: the job is taken up again once its lease
    // runs out, after the last committed batch, and no row is imported twice.
    let mut big = String::from("name,email\n");
    for i in 0..1_200 {
        big.push_str(&format!("Person {i},p{i}@example.com\n"));
    }
    let up = h.crm.create_import(&h.admin, EntityKind::Contact, "big.csv", big.into_bytes().into()).await.expect("big");
    h.crm.start_import(&h.admin, up.job.id, ImportStart::default()).await.expect("start");
    let died = h.crm.run_import(up.job.id, Some(1)).await.expect("run").expect("ran");
    assert_eq!((died.status, died.rows_done), (ImportStatus::Running, 500));
    assert_eq!(h.crm.run_imports().await.expect("pass"), 0, "its lease still holds");
    h.clock.advance(chrono::Duration::seconds(31));
    assert_eq!(h.crm.run_imports().await.expect("pass"), 1);
    let job = h.crm.import_job(&h.admin, up.job.id).await.expect("job");
    assert_eq!((job.status, job.created, job.rows_done, job.attempts), (ImportStatus::Completed, 1_200, 1_200, 2));
    let n = h.crm.store().count(EntityKind::Contact, None, false).await.expect("count");
    assert_eq!(n, 1_202, "Ann, José and every row once");
    assert_eq!(results(&h, &job).await.len(), 1_200);

    // Batches are staged while the one before is written. A row that repeats the key of a
    // row in the batch before waits for that write, and updates the record it created.
    let mut twins = String::from("name,email\n");
    for i in 0..1_000 {
        let n = if i == 700 { 400 } else { i };
        twins.push_str(&format!("Twin {i},twin{n}@example.com\n"));
    }
    let (_, job) =
        import_file(&h, &h.admin, EntityKind::Contact, "twins.csv", twins.as_bytes(), ImportStart::default()).await;
    let odd: Vec<Vec<String>> = results(&h, &job).await.into_iter().filter(|r| r[1] != "created").collect();
    assert_eq!((job.status, job.created, job.updated, job.failed), (ImportStatus::Completed, 999, 1, 0), "{odd:?}");
    assert_eq!(odd[0][0], "702", "row 702 of the file (the 701st contact) updated the 401st");
    let twin = h.crm.contacts().list(&h.admin, q(EntityKind::Contact, "email[eq]:twin400@example.com")).await;
    let twin = twin.expect("twin").data;
    assert_eq!((twin.len(), twin[0].name.as_str()), (1, "Twin 700"));

    // Only the owner (and admins) see a job; a user may not import what they may not create.
    let rep = h.user("rep", Role::User, None).await;
    assert_code(h.crm.import_job(&rep, job.id).await, "not_found");
    assert!(h.crm.import_jobs(&rep, 50).await.expect("list").is_empty());
    assert_eq!(h.crm.import_jobs(&h.admin, 50).await.expect("list").len(), 9);
}

/// A bulk read (the analytics snapshot's, `copy`'s) reaches its reader in pieces of at
/// most 10,000 rows, whatever the table's size and whichever statement serves it: the
/// backend's streaming read, or bound queries by page (MariaDB, and PostgreSQL where a
/// filter compares text). A reader holds a piece or two, never the table.
pub async fn bulk_reads_come_in_pieces(b: &dyn TestBackend) {
    use crm_core::query::{Cmp, Filter, Predicate};
    const ROWS: usize = 10_500;
    let h = Harness::new(b).await;
    for chunk in 0..ROWS.div_ceil(service::MAX_BATCH) {
        let from = chunk * service::MAX_BATCH;
        let inputs: Vec<NewContact> = (from..ROWS.min(from + service::MAX_BATCH))
            .map(|i| NewContact { name: format!("Reader {i:05}"), ..Default::default() })
            .collect();
        h.crm.contacts().create_many(&h.admin, inputs).await.expect("contacts");
    }
    let kind = EntityKind::Contact;
    let stage = kind.require_column("lifecycle_stage").expect("column");
    let leads = Filter::Cmp(Cmp { column: stage, pred: Predicate::Eq(Value::Text("lead".into())) });
    for (what, filter) in [("every contact", None), ("a filter on text", Some(leads))] {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<crm_core::schema::Row>>(1);
        let store = b.store();
        let read =
            tokio::spawn(async move { store.scan_batches(kind, filter.as_ref(), false, &all_of(kind), tx).await });
        let mut pieces = Vec::new();
        while let Some(rows) = rx.recv().await {
            pieces.push(rows.len());
        }
        read.await.expect("the read").expect("read whole");
        assert_eq!(pieces.iter().sum::<usize>(), ROWS, "{what}: {pieces:?}");
        assert!(pieces.len() >= 2 && pieces.iter().all(|n| *n <= 10_000), "{what}: {pieces:?}");
    }
}

/// Every column of `kind` but the id.
fn all_of(kind: EntityKind) -> Vec<usize> {
    (1..kind.columns().len()).collect()
}

/// A store that, once, changes a contact just before the first write that updates it:
/// someone editing the record between an import batch's staging and its write.
struct EditsFirst {
    inner: Arc<dyn Store>,
    contact: Mutex<Option<uuid::Uuid>>,
}

impl EditsFirst {
    /// Raises the contact's version, as another user's edit would.
    async fn edit(&self, id: uuid::Uuid) -> Result<()> {
        let kind = EntityKind::Contact;
        let mut row = self.inner.get(kind, id).await?.expect("the contact");
        let at = kind.columns().iter().position(|c| c.name == "version").expect("version column");
        let Value::Int(version) = row[at] else { panic!("version {:?}", row[at]) };
        row[at] = Value::Int(version + 1);
        let edit = crm_core::Write::Update { kind, row, expected_version: version };
        self.inner.apply(Changeset { writes: vec![edit], audit: Vec::new() }).await
    }
}

#[async_trait::async_trait]
impl Store for EditsFirst {
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }
    async fn get(&self, kind: EntityKind, id: uuid::Uuid) -> Result<Option<crm_core::schema::Row>> {
        self.inner.get(kind, id).await
    }
    async fn list(&self, kind: EntityKind, query: &crm_core::query::StoreQuery) -> Result<Vec<crm_core::schema::Row>> {
        self.inner.list(kind, query).await
    }
    async fn count(&self, kind: EntityKind, filter: Option<&crm_core::query::Filter>, deleted: bool) -> Result<u64> {
        self.inner.count(kind, filter, deleted).await
    }
    async fn apply(&self, changes: Changeset) -> Result<()> {
        let updates = |id: uuid::Uuid| {
            changes.writes.iter().any(|w| {
                matches!(w, crm_core::Write::Update { kind: EntityKind::Contact, row, .. } if row.first() == Some(&Value::Uuid(id)))
            })
        };
        let due = {
            let mut contact = self.contact.lock().expect("lock");
            contact.take_if(|id| updates(*id))
        };
        if let Some(id) = due {
            self.edit(id).await?;
        }
        self.inner.apply(changes).await
    }
    async fn audit_head(&self) -> Result<crm_core::audit::AuditHead> {
        self.inner.audit_head().await
    }
    async fn ping(&self) -> Result<()> {
        self.inner.ping().await
    }
    async fn live_schema(&self) -> Result<crm_core::schema_check::LiveSchema> {
        self.inner.live_schema().await
    }
}

/// A contact edited by someone else while an import's batch that updates it is on its
/// way: that write fails on the contact's version, and the worker stages the batch again
/// from the last committed one and finishes (it stopped, and the job waited for its
/// lease to run out). Nothing is lost or written twice.
pub async fn an_edit_during_an_import_does_not_stop_it(b: &dyn TestBackend) {
    let store = Arc::new(EditsFirst { inner: b.store(), contact: Mutex::new(None) });
    let h = Harness::on_store(store.clone(), crm_core::CrmConfig::default()).await;
    let ann = NewContact { name: "Ann".into(), email: Some("ann@example.com".into()), ..Default::default() };
    let ann = h.crm.contacts().create(&h.admin, ann).await.expect("ann");
    let file = "name,email,jobTitle\nBo,bo@example.com,Buyer\nAnn Lee,ann@example.com,CFO\nCy,cy@example.com,\n";
    let up = h.crm.create_import(&h.admin, EntityKind::Contact, "people.csv", file.as_bytes().to_vec().into()).await;
    let up = up.expect("upload");
    h.crm.start_import(&h.admin, up.job.id, ImportStart::default()).await.expect("start");
    *store.contact.lock().expect("lock") = Some(ann.id.0);
    let job = h.crm.run_import(up.job.id, None).await.expect("run").expect("ran");
    assert!(store.contact.lock().expect("lock").is_none(), "the edit came first");
    assert_eq!(job.status, ImportStatus::Completed, "{job:?}");
    assert_eq!((job.created, job.updated, job.failed, job.rows_done, job.batches), (2, 1, 0, 3, 1));
    let all = h.crm.contacts().list(&h.admin, ListQuery::new()).await.expect("list").data;
    assert_eq!(all.len(), 3, "{all:?}");
    let ann = h.crm.contacts().get(&h.admin, ann.id).await.expect("ann");
    assert_eq!((ann.name.as_str(), ann.job_title.as_deref(), ann.meta.version), ("Ann Lee", Some("CFO"), 3));
    let rows = results(&h, &job).await;
    let outcome: Vec<&str> = rows.iter().map(|r| r[1].as_str()).collect();
    assert_eq!(outcome, vec!["created", "updated", "created"]);
}
