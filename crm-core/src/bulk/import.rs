//! Imports: a CSV or XLSX file of contacts, companies, deals or tasks into the CRM.
//!
//! An upload ([`Crm::create_import`]) reads the file (CSV with any common separator,
//! quoted fields and newlines, UTF-8 with or without a BOM, UTF-16 or Latin-1; or the first
//! sheet of an XLSX workbook), keeps it in the blob store and suggests which field each
//! column fills. Starting it ([`Crm::start_import`]) fixes the mapping and how rows find
//! the record they update (`email`, `domain`, `id` or a custom field): that is the upsert.
//! A worker ([`Crm::run_imports`]) then imports it in batches of [`BATCH_ROWS`]: each row
//! goes through the record's own create or update (so validation and rights are the
//! single call's), and each batch commits its records, one audit event naming them, one
//! outbox event and the job's progress in one write; the next batch is staged while that
//! write runs (on SQLite's writer thread or the database server). A worker that dies
//! leaves its batch uncommitted; once its lease runs out another takes the job up at the
//! first row not committed, so no row is imported twice. Every row's outcome (created, updated,
//! unchanged, failed with its column and message) goes to a results file.

use std::collections::{HashMap, HashSet};

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};
use uuid::Uuid;

use super::batch::Batchable;
use crate::error::{Error, Errors, Result};
use crate::model::import::{ImportJob, ImportStatus};
use crate::model::user::User;
use crate::policy::{Action, Actor};
use crate::query::{Direction, StoreQuery};
use crate::schema::{to_row, EntityKind, Value};
use crate::service::Crm;
use crate::store::{Changeset, StoreExt, Write};
use crate::{Company, Contact, Deal, Task};

/// Rows per committed batch.
pub const BATCH_ROWS: usize = 500;
/// How long a worker holds a job between two batches before another may take it up.
pub const LEASE_SECONDS: i64 = 30;
/// The largest file taken.
pub const MAX_FILE_BYTES: usize = 512 * 1024 * 1024;
/// The kinds a file can be imported into.
pub const IMPORTABLE: [EntityKind; 4] = [EntityKind::Contact, EntityKind::Company, EntityKind::Deal, EntityKind::Task];
/// Rows shown with an upload.
const PREVIEW_ROWS: usize = 5;

// ----------------------------------------------------------------------------------------
// Reading files

/// A file's table: its header and data rows as text.
pub struct Source {
    headers: Vec<String>,
    body: Body,
    /// `csv` or `xlsx`.
    pub format: &'static str,
    /// The CSV separator found.
    pub delimiter: Option<u8>,
    /// The text encoding found.
    pub encoding: Option<&'static str>,
}

enum Body {
    Csv(Vec<u8>),
    Sheet(Vec<Vec<String>>),
}

impl Source {
    /// Reads a file: an XLSX workbook (its first sheet) when it is a zip, else CSV. An
    /// unreadable file is an error on `file`.
    pub fn read(bytes: &[u8]) -> Result<Self> {
        if bytes.len() > MAX_FILE_BYTES {
            return Err(Error::invalid("file", "too_long", format!("a file has at most {MAX_FILE_BYTES} bytes")));
        }
        if bytes.starts_with(b"PK\x03\x04") {
            return Self::xlsx(bytes);
        }
        let (text, encoding) = decode(bytes);
        let delimiter = sniff_delimiter(&text);
        let mut reader = csv_reader(&text, delimiter);
        let headers = reader
            .headers()
            .map_err(|e| Error::invalid("file", "invalid_format", format!("the header row cannot be read: {e}")))?
            .iter()
            .enumerate()
            .map(|(i, h)| header_name(i, h))
            .collect::<Vec<_>>();
        if text.trim_ascii().is_empty() {
            return Err(Error::invalid("file", "required", "the file is empty"));
        }
        Ok(Self { headers, body: Body::Csv(text), format: "csv", delimiter: Some(delimiter), encoding: Some(encoding) })
    }

    fn xlsx(bytes: &[u8]) -> Result<Self> {
        use calamine::Reader;
        let bad = |e: String| Error::invalid("file", "invalid_format", format!("the workbook cannot be read: {e}"));
        let mut book: calamine::Xlsx<_> = calamine::open_workbook_from_rs(std::io::Cursor::new(bytes.to_vec()))
            .map_err(|e: calamine::XlsxError| bad(e.to_string()))?;
        let first = book.sheet_names().first().cloned().ok_or_else(|| bad("it has no sheet".into()))?;
        let range = book.worksheet_range(&first).map_err(|e| bad(e.to_string()))?;
        let mut rows = range.rows().map(|r| r.iter().map(cell_text).collect::<Vec<String>>());
        let headers = rows
            .next()
            .ok_or_else(|| Error::invalid("file", "required", "the sheet is empty"))?
            .iter()
            .enumerate()
            .map(|(i, h)| header_name(i, h))
            .collect();
        let rows = rows.filter(|r| r.iter().any(|c| !c.is_empty())).collect();
        Ok(Self { headers, body: Body::Sheet(rows), format: "xlsx", delimiter: None, encoding: None })
    }

    /// The header row.
    pub fn headers(&self) -> &[String] {
        &self.headers
    }

    /// The data rows, from the first: each one's cells, or why it cannot be read.
    pub fn rows(&self) -> Box<dyn Iterator<Item = Result<Vec<String>>> + Send + '_> {
        match &self.body {
            Body::Csv(text) => {
                let reader = csv_reader(text, self.delimiter.unwrap_or(b','));
                Box::new(reader.into_records().filter_map(|r| match r {
                    Ok(rec) if rec.iter().all(|c| c.trim().is_empty()) => None,
                    Ok(rec) => Some(Ok(rec.iter().map(str::to_string).collect())),
                    Err(e) => Some(Err(Error::invalid("file", "invalid_format", e.to_string()))),
                }))
            }
            Body::Sheet(rows) => Box::new(rows.iter().cloned().map(Ok)),
        }
    }
}

fn csv_reader(text: &[u8], delimiter: u8) -> csv::Reader<&[u8]> {
    csv::ReaderBuilder::new().delimiter(delimiter).flexible(true).has_headers(true).from_reader(text)
}

fn header_name(i: usize, h: &str) -> String {
    let h = h.trim().trim_start_matches('\u{feff}').trim();
    if h.is_empty() {
        format!("column {}", i + 1)
    } else {
        h.to_string()
    }
}

/// The text of a file as UTF-8, and the encoding it was in: UTF-8 (a BOM dropped),
/// UTF-16 with a BOM, else Windows-1252 (the Latin-1 of spreadsheets).
fn decode(bytes: &[u8]) -> (Vec<u8>, &'static str) {
    if let Some(rest) = bytes.strip_prefix(b"\xEF\xBB\xBF") {
        return (rest.to_vec(), "UTF-8");
    }
    if bytes.starts_with(b"\xFF\xFE") || bytes.starts_with(b"\xFE\xFF") {
        let (text, enc, _) = encoding_rs::UTF_16LE.decode(bytes);
        return (text.into_owned().into_bytes(), enc.name());
    }
    match std::str::from_utf8(bytes) {
        Ok(_) => (bytes.to_vec(), "UTF-8"),
        Err(_) => {
            let (text, _, _) = encoding_rs::WINDOWS_1252.decode(bytes);
            (text.into_owned().into_bytes(), "windows-1252")
        }
    }
}

/// The separator of a CSV: of `,` `;` tab `|`, the one the header line (outside quotes)
/// holds most of; `,` when none.
fn sniff_delimiter(text: &[u8]) -> u8 {
    let mut counts = [0usize; 4];
    let candidates = [b',', b';', b'\t', b'|'];
    let mut quoted = false;
    for &b in text {
        match b {
            b'"' => quoted = !quoted,
            b'\n' | b'\r' if !quoted => break,
            _ if !quoted => {
                if let Some(i) = candidates.iter().position(|c| *c == b) {
                    counts[i] += 1;
                }
            }
            _ => {}
        }
    }
    let best = (0..4).max_by_key(|&i| (counts[i], std::cmp::Reverse(i))).unwrap_or(0);
    if counts[best] == 0 {
        b','
    } else {
        candidates[best]
    }
}

fn cell_text(c: &calamine::Data) -> String {
    use calamine::Data;
    match c {
        Data::Empty => String::new(),
        Data::String(s) => s.clone(),
        Data::Float(f) if f.fract() == 0.0 && f.abs() < 9e15 => format!("{}", *f as i64),
        Data::Float(f) => f.to_string(),
        Data::Int(i) => i.to_string(),
        Data::Bool(b) => b.to_string(),
        Data::DateTime(d) => match d.as_datetime() {
            Some(t) if t.time() == chrono::NaiveTime::MIN => t.date().format("%Y-%m-%d").to_string(),
            Some(t) => format!("{}Z", t.format("%Y-%m-%dT%H:%M:%S")),
            None => d.to_string(),
        },
        Data::DateTimeIso(s) | Data::DurationIso(s) => s.clone(),
        Data::Error(e) => format!("#{e:?}"),
    }
}

// ----------------------------------------------------------------------------------------
// Mapping columns to fields

/// How a mapped column's text becomes a field's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    /// Text as it is.
    Text,
    /// A whole number.
    Int,
    /// A list, split on `;` (or `,` when there is no `;`).
    List,
    /// A company by domain (text with a dot) or name: fills `companyId`.
    Company,
    /// A user by email or user name: fills `ownerId` (or a task's `assignedUser`).
    User(&'static str),
    /// Contacts by email, split like a list: fills `contactIds`.
    Contacts,
    /// A contact's first name or last name: joined into `name`.
    NamePart,
    /// The record's id: only for finding the record a row updates.
    Id,
    /// A JSON object, as an export writes one (`{"city":"London"}`).
    Object,
}

/// The fields of a kind a column can fill, with their other common header spellings, in
/// English, French, German and Spanish (compared lower-case, letters and digits only).
fn fields(kind: EntityKind) -> &'static [(&'static str, Target, &'static [&'static str])] {
    use Target::*;
    match kind {
        EntityKind::Contact => &[
            ("id", Id, &[]),
            ("name", Text, &["fullname", "contactname", "contact", "nomcomplet", "vollständigername"]),
            (
                "firstName",
                NamePart,
                &["firstname", "givenname", "forename", "first", "prénom", "prenom", "vorname", "nombre"],
            ),
            (
                "lastName",
                NamePart,
                &[
                    "lastname",
                    "surname",
                    "familyname",
                    "last",
                    "nom",
                    "nomdefamille",
                    "nachname",
                    "apellido",
                    "apellidos",
                ],
            ),
            (
                "email",
                Text,
                &[
                    "emailaddress",
                    "mail",
                    "email1",
                    "workemail",
                    "courriel",
                    "adresseemail",
                    "emailadresse",
                    "correo",
                    "correoelectrónico",
                ],
            ),
            (
                "phoneNumber",
                Text,
                &[
                    "phone",
                    "telephone",
                    "tel",
                    "mobile",
                    "mobilephone",
                    "cell",
                    "téléphone",
                    "tél",
                    "portable",
                    "telefon",
                    "handy",
                    "teléfono",
                    "telefono",
                ],
            ),
            (
                "jobTitle",
                Text,
                &["title", "position", "role", "poste", "fonction", "titre", "beruf", "cargo", "puesto"],
            ),
            ("companyId", Text, &[]),
            (
                "company",
                Company,
                &[
                    "companyname",
                    "companydomain",
                    "organization",
                    "organisation",
                    "account",
                    "société",
                    "societe",
                    "entreprise",
                    "firma",
                    "unternehmen",
                    "empresa",
                ],
            ),
            ("ownerId", Text, &[]),
            ("owner", User("ownerId"), &["owneremail", "contactowner", "salesrep", "propriétaire", "responsable"]),
            ("leadSource", Text, &["source", "leadsource", "origin", "origine", "quelle", "fuente"]),
            ("lifecycleStage", Text, &["stage", "lifecycle"]),
            ("tags", List, &["labels", "tag", "étiquettes", "etiquettes", "schlagworte", "etiquetas"]),
            ("address", Object, &[]),
            ("social", Object, &[]),
            ("preferences", Object, &[]),
            ("customFields", Object, &[]),
            (
                "address.street",
                Text,
                &[
                    "street",
                    "streetaddress",
                    "address",
                    "address1",
                    "adresse",
                    "rue",
                    "straße",
                    "strasse",
                    "calle",
                    "dirección",
                    "direccion",
                ],
            ),
            ("address.city", Text, &["city", "town", "ville", "stadt", "ort", "ciudad"]),
            (
                "address.postalCode",
                Text,
                &[
                    "zip",
                    "zipcode",
                    "postcode",
                    "postalcode",
                    "codepostal",
                    "cp",
                    "plz",
                    "postleitzahl",
                    "códigopostal",
                    "codigopostal",
                ],
            ),
            (
                "address.region",
                Text,
                &[
                    "state",
                    "region",
                    "province",
                    "county",
                    "région",
                    "département",
                    "departement",
                    "bundesland",
                    "provincia",
                ],
            ),
            ("address.country", Text, &["country", "pays", "land", "país", "pais"]),
        ],
        EntityKind::Company => &[
            ("id", Id, &[]),
            (
                "name",
                Text,
                &[
                    "companyname",
                    "company",
                    "organization",
                    "organisation",
                    "account",
                    "nom",
                    "raisonsociale",
                    "société",
                    "societe",
                    "entreprise",
                    "firma",
                    "firmenname",
                    "empresa",
                ],
            ),
            (
                "domain",
                Text,
                &["website", "companydomain", "url", "web", "siteweb", "siteinternet", "webseite", "sitioweb"],
            ),
            ("industry", Text, &["sector", "secteur", "secteurdactivité", "branche", "industrie"]),
            (
                "size",
                Int,
                &[
                    "employees",
                    "numberofemployees",
                    "headcount",
                    "companysize",
                    "effectif",
                    "effectifs",
                    "taille",
                    "mitarbeiter",
                    "empleados",
                ],
            ),
            ("country", Text, &["countrycode", "pays", "land", "país", "pais"]),
            ("contactDetails", Object, &[]),
            ("customFields", Object, &[]),
            ("contactDetails.email", Text, &["email", "emailaddress", "courriel"]),
            ("contactDetails.phoneNumber", Text, &["phone", "telephone", "phonenumber", "téléphone", "telefon"]),
            ("ownerId", Text, &[]),
            ("owner", User("ownerId"), &["owneremail", "companyowner", "salesrep"]),
        ],
        EntityKind::Deal => &[
            ("id", Id, &[]),
            ("name", Text, &["dealname", "deal", "opportunity", "title", "affaire", "opportunité", "titre", "nom"]),
            ("description", Text, &[]),
            ("amount", Int, &["value", "dealvalue", "amountcents", "montant", "betrag", "importe"]),
            ("currency", Text, &[]),
            ("stage", Text, &["dealstage", "pipelinestage", "étape", "phase"]),
            ("probability", Int, &[]),
            ("expectedCloseDate", Text, &["closedate", "expectedclose", "closingdate", "dateclôture", "datedeclôture"]),
            ("companyId", Text, &[]),
            (
                "company",
                Company,
                &[
                    "companyname",
                    "companydomain",
                    "account",
                    "organization",
                    "organisation",
                    "société",
                    "entreprise",
                    "firma",
                    "empresa",
                ],
            ),
            ("contactIds", List, &[]),
            ("contacts", Contacts, &["contactemails", "contactemail", "contact"]),
            ("ownerId", Text, &[]),
            ("owner", User("ownerId"), &["owneremail", "dealowner", "salesrep"]),
            ("notes", Text, &["note", "comments", "remarques", "notizen"]),
            ("lostReason", Text, &["reasonlost", "closedlostreason"]),
        ],
        _ => &[
            ("id", Id, &[]),
            ("name", Text, &["task", "subject", "title", "taskname", "tâche", "titre", "aufgabe", "tarea"]),
            ("description", Text, &["notes", "details", "body", "beschreibung"]),
            ("dueDate", Text, &["due", "duedate", "deadline", "échéance", "fällig", "vencimiento"]),
            ("priority", Text, &[]),
            ("status", Text, &["state"]),
            ("assignedUser", Text, &[]),
            ("assignee", User("assignedUser"), &["assignedto", "assigneeemail", "owner"]),
        ],
    }
}

/// The objects whose members a column may fill (`address.city`, `customFields.vip`).
fn families(kind: EntityKind) -> &'static [&'static str] {
    match kind {
        EntityKind::Contact => &["address", "social", "preferences", "customFields"],
        EntityKind::Company => &["contactDetails", "customFields"],
        _ => &[],
    }
}

/// Columns an export writes that an import leaves out: the engine sets them.
const SYSTEM_FIELDS: [&str; 10] = [
    "teamId",
    "version",
    "createdAt",
    "updatedAt",
    "createdBy",
    "updatedBy",
    "deletedAt",
    "deletedBy",
    "convertedAt",
    "closedAt",
];

fn normalize(header: &str) -> String {
    header.chars().filter(|c| c.is_alphanumeric()).flat_map(char::to_lowercase).collect()
}

/// A header as a custom field's key (`Favourite colour` → `favouriteColour`).
fn camel(header: &str) -> String {
    let mut out = String::new();
    for (i, word) in header.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).enumerate() {
        let mut chars = word.chars();
        if let Some(first) = chars.next() {
            if i == 0 {
                out.extend(first.to_lowercase());
            } else {
                out.extend(first.to_uppercase());
            }
            out.push_str(chars.as_str());
        }
    }
    out
}

/// The field each column fills, guessed from the headers: the API's own names (so an
/// export comes back as it went), then the common spellings; any other column goes to
/// a custom field of its name, where the kind has them. Also the match it suggests.
pub fn suggest(kind: EntityKind, headers: &[String]) -> (Vec<Option<String>>, Option<String>) {
    let table = fields(kind);
    let mut taken: Vec<String> = Vec::new();
    let mut out = Vec::with_capacity(headers.len());
    for h in headers {
        let n = normalize(h);
        let exact = table.iter().find(|(f, ..)| normalize(f) == n && !f.contains('.'));
        let alias = || table.iter().find(|(_, _, aliases)| aliases.contains(&n.as_str()));
        let nested = || table.iter().find(|(f, ..)| f.contains('.') && normalize(f) == n);
        let guess = exact.or_else(alias).or_else(nested).map(|(f, ..)| f.to_string()).or_else(|| {
            if SYSTEM_FIELDS.iter().any(|s| normalize(s) == n) || n.is_empty() {
                None
            } else if let Some(family) = families(kind).iter().find(|f| h.starts_with(&format!("{f}."))) {
                Some(format!("{family}.{}", camel(&h[family.len() + 1..])))
            } else if families(kind).contains(&"customFields") && !camel(h).is_empty() {
                Some(format!("customFields.{}", camel(h)))
            } else {
                None
            }
        });
        // A field filled by two columns: the first keeps it.
        let guess = guess.filter(|g| !taken.contains(g));
        if let Some(g) = &guess {
            taken.push(g.clone());
        }
        out.push(guess);
    }
    let mapped = |f: &str| out.iter().any(|m| m.as_deref() == Some(f));
    let match_by = match kind {
        EntityKind::Contact if mapped("email") => Some("email".to_string()),
        EntityKind::Company if mapped("domain") => Some("domain".to_string()),
        _ if mapped("id") => Some("id".to_string()),
        _ => None,
    };
    (out, match_by)
}

/// How a mapped field is filled, or `None` when the kind has no such field.
fn target(kind: EntityKind, field: &str) -> Option<Target> {
    if let Some((_, t, _)) = fields(kind).iter().find(|(f, ..)| *f == field) {
        return Some(*t);
    }
    let (family, member) = field.split_once('.')?;
    (families(kind).contains(&family) && !member.is_empty() && !member.contains('.') && !member.starts_with('$'))
        .then_some(Target::Text)
}

/// Checks a mapping and a match against a file's columns, naming the bad entry
/// (`mapping.3`, `matchBy`).
fn check_mapping(
    kind: EntityKind,
    headers: &[String],
    mapping: &[Option<String>],
    match_by: Option<&str>,
) -> Result<()> {
    let mut errs = Errors::new();
    if mapping.len() != headers.len() {
        errs.add(
            "mapping",
            "invalid_value",
            format!("the mapping has {} entries for {} columns", mapping.len(), headers.len()),
        );
    }
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (i, m) in mapping.iter().enumerate() {
        let Some(field) = m.as_deref() else { continue };
        if target(kind, field).is_none() {
            let known: Vec<&str> = fields(kind).iter().map(|(f, ..)| *f).collect();
            errs.add(
                format!("mapping.{i}"),
                "invalid_value",
                format!("{} have no field '{field}'; they have {}", kind.table(), known.join(", ")),
            );
        } else if let Some(first) = seen.insert(field, i) {
            errs.add(format!("mapping.{i}"), "duplicate", format!("column {first} fills {field} already"));
        }
    }
    if !mapping.iter().any(|m| matches!(m.as_deref(), Some("name" | "firstName" | "lastName"))) && match_by.is_none() {
        errs.add("mapping", "required", "no column fills name");
    }
    if let Some(m) = match_by {
        let ok = match m {
            "email" => kind == EntityKind::Contact,
            "domain" => kind == EntityKind::Company,
            "id" => true,
            other => {
                other.strip_prefix("customFields.").is_some_and(|k| !k.is_empty())
                    && families(kind).contains(&"customFields")
            }
        };
        if !ok {
            errs.add("matchBy", "invalid_value", format!("{} cannot be matched by '{m}'", kind.table()));
        } else if !mapping.iter().any(|f| f.as_deref() == Some(m)) {
            errs.add("matchBy", "invalid_value", format!("no column fills {m}, which rows are matched by"));
        }
    }
    errs.finish()
}

// ----------------------------------------------------------------------------------------
// Jobs

/// What an upload answers: the job and the first rows, to check the mapping against.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ImportUpload {
    /// The job, `uploaded`, with the suggested mapping and match.
    pub job: ImportJob,
    /// The first rows as read.
    pub preview: Vec<Vec<String>>,
    /// The fields a column of this kind can fill (besides members of its objects, such
    /// as `customFields.<name>`).
    pub fields: Vec<String>,
}

/// How to run an uploaded import.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ImportStart {
    /// The field each column fills (`null`: leave the column out), in column order;
    /// absent: the suggested mapping.
    #[serde(default)]
    pub mapping: Option<Vec<Option<String>>>,
    /// `email` (contacts), `domain` (companies), `id` or `customFields.<name>`: rows
    /// update the live record with the same value and create the others; `null`: every
    /// row is a new record; absent: the suggested match.
    #[serde(default, deserialize_with = "crate::service::input::nullable")]
    pub match_by: Option<Option<String>>,
    /// Check every row and say what would happen, writing no record.
    #[serde(default)]
    pub dry_run: bool,
}

/// The blob key of a job's file.
fn source_key(id: Uuid) -> String {
    format!("imports/{id}/source")
}

/// The blob key of a job's `n`th results piece.
fn results_key(id: Uuid, n: i64) -> String {
    format!("imports/{id}/results/{n:08}.csv")
}

/// The header of the results file.
pub const RESULTS_HEADER: &str = "row,result,id,columns,message\r\n";

impl Crm {
    /// Takes in a file for import into `kind` (`file_name` for people): reads it, keeps
    /// it, counts its rows and suggests a mapping. Needs the right to create such records.
    pub async fn create_import(
        &self,
        actor: &Actor,
        kind: EntityKind,
        file_name: &str,
        bytes: Bytes,
    ) -> Result<ImportUpload> {
        if !IMPORTABLE.contains(&kind) {
            return Err(Error::invalid("kind", "invalid_value", format!("{} cannot be imported", kind.name())));
        }
        self.policy().require(actor, kind.resource(), Action::Create)?;
        let file_name = file_name.trim();
        let file_name = if file_name.is_empty() { "import" } else { file_name };
        let read = bytes.clone();
        let (source, total, preview) = tokio::task::spawn_blocking(move || -> Result<_> {
            let source = Source::read(&read)?;
            let mut total = 0usize;
            let mut preview = Vec::new();
            for row in source.rows() {
                let row = row?;
                if preview.len() < PREVIEW_ROWS {
                    preview.push(row);
                }
                total += 1;
            }
            Ok((source, total, preview))
        })
        .await
        .map_err(|e| Error::internal("reading an import", e))??;
        let (mapping, match_by) = suggest(kind, source.headers());
        let now = self.now();
        let job = ImportJob {
            id: self.new_id(now),
            kind: kind.table().to_string(),
            status: ImportStatus::Uploaded,
            file_name: file_name.chars().take(200).collect(),
            format: source.format.to_string(),
            delimiter: source.delimiter.map(|d| (d as char).to_string()),
            encoding: source.encoding.map(str::to_string),
            headers: source.headers().to_vec(),
            mapping,
            match_by,
            dry_run: false,
            total_rows: total as i64,
            rows_done: 0,
            created: 0,
            updated: 0,
            unchanged: 0,
            failed: 0,
            batches: 0,
            error: None,
            owner_id: actor.user_id.as_uuid(),
            started_at: None,
            started_rows: 0,
            finished_at: None,
            lease_until: None,
            attempts: 0,
            created_at: now,
            updated_at: now,
            version: 1,
        };
        self.blobs().put(&source_key(job.id), bytes).await?;
        let about = serde_json::json!({"kind": job.kind, "fileName": job.file_name, "rows": total});
        let ev = self.audit_event(actor, "import.uploaded".into(), EntityKind::ImportJob, Some(job.id), about);
        self.store()
            .apply(Changeset {
                writes: vec![Write::Insert { kind: EntityKind::ImportJob, row: to_row(&job)? }],
                audit: vec![ev],
            })
            .await?;
        let fields = fields(kind).iter().map(|(f, ..)| f.to_string()).collect();
        Ok(ImportUpload { job, preview, fields })
    }

    /// An import job its owner (or an admin) may see.
    pub async fn import_job(&self, actor: &Actor, id: Uuid) -> Result<ImportJob> {
        let job = self.store().get_as::<ImportJob>(id).await?.ok_or(Error::NotFound { entity: "import_job" })?;
        if job.owner_id != actor.user_id.as_uuid() && actor.role != crate::policy::Role::Admin {
            return Err(Error::NotFound { entity: "import_job" });
        }
        Ok(job)
    }

    /// The actor's import jobs, newest first (an admin's: everyone's).
    pub async fn import_jobs(&self, actor: &Actor, limit: u32) -> Result<Vec<ImportJob>> {
        let kind = EntityKind::ImportJob;
        let mine = (actor.role != crate::policy::Role::Admin)
            .then(|| crate::service::write_path::scope_filter(kind, crate::policy::Scope::Own, actor))
            .flatten();
        let created = kind.column("created_at").ok_or_else(|| Error::internal_msg("no created_at"))?;
        let q = StoreQuery {
            filter: mine,
            sort: vec![
                crate::query::SortKey { column: created, direction: Direction::Desc },
                crate::query::id_key(kind, Direction::Desc),
            ],
            limit: limit.clamp(1, 200),
            include_deleted: false,
        };
        self.store().list_as::<ImportJob>(&q).await
    }

    /// Starts (or resumes) an import: a job `uploaded`, or one that failed, was
    /// cancelled or completed a dry run. The mapping and match may change only while no
    /// row is committed. A worker takes it up ([`Crm::run_imports`]).
    pub async fn start_import(&self, actor: &Actor, id: Uuid, start: ImportStart) -> Result<ImportJob> {
        let before = self.import_job(actor, id).await?;
        let kind = import_kind(&before)?;
        self.policy().require(actor, kind.resource(), Action::Create)?;
        let mut job = before.clone();
        let restartable = match job.status {
            ImportStatus::Uploaded => true,
            ImportStatus::Completed => job.dry_run,
            ImportStatus::Failed | ImportStatus::Cancelled => true,
            ImportStatus::Queued | ImportStatus::Running => false,
        };
        if !restartable {
            return Err(Error::Conflict {
                field: Some("status".into()),
                message: format!("the import is {}; only an uploaded, stopped or dry-run import starts", job.status),
            });
        }
        // A dry run, or a run that committed nothing, starts again from the first row.
        if job.dry_run || job.rows_done == 0 {
            job.rows_done = 0;
            job.created = 0;
            job.updated = 0;
            job.unchanged = 0;
            job.failed = 0;
            job.batches = 0;
            if let Some(m) = start.mapping {
                job.mapping = m;
            }
            if let Some(m) = start.match_by {
                job.match_by = m;
            }
        } else if start.mapping.is_some() || start.match_by.is_some() {
            return Err(Error::invalid(
                "mapping",
                "invalid_value",
                "rows are committed with this mapping already; the import resumes with it",
            ));
        }
        job.dry_run = start.dry_run;
        check_mapping(kind, &job.headers, &job.mapping, job.match_by.as_deref())?;
        job.status = ImportStatus::Queued;
        job.error = None;
        job.finished_at = None;
        job.lease_until = None;
        self.save_job(&before, &mut job, Some((actor, "import.started"))).await?;
        Ok(job)
    }

    /// Queues a stopped import again for an operator who knows its worker is gone (a
    /// killed `crm-server import`): a running job's lease is dropped, a failed or
    /// cancelled one is queued; it resumes after its last committed batch.
    pub async fn resume_import(&self, id: Uuid) -> Result<ImportJob> {
        let before = self.store().get_as::<ImportJob>(id).await?.ok_or(Error::NotFound { entity: "import_job" })?;
        if !matches!(before.status, ImportStatus::Running | ImportStatus::Failed | ImportStatus::Cancelled) {
            return Ok(before);
        }
        let mut job = before.clone();
        job.status = ImportStatus::Queued;
        job.lease_until = None;
        job.error = None;
        job.finished_at = None;
        self.save_job(&before, &mut job, None).await?;
        Ok(job)
    }

    /// Cancels a queued or running import: the batches committed stay.
    pub async fn cancel_import(&self, actor: &Actor, id: Uuid) -> Result<ImportJob> {
        let before = self.import_job(actor, id).await?;
        if !matches!(before.status, ImportStatus::Queued | ImportStatus::Running | ImportStatus::Uploaded) {
            return Ok(before);
        }
        let mut job = before.clone();
        job.status = ImportStatus::Cancelled;
        job.finished_at = Some(self.now());
        job.lease_until = None;
        self.save_job(&before, &mut job, Some((actor, "import.cancelled"))).await?;
        Ok(job)
    }

    /// One piece of a job's results (`n` from 0 to `batches`), CSV rows without the header.
    pub async fn import_results_piece(&self, job: &ImportJob, n: i64) -> Result<Bytes> {
        Ok(self.blobs().get(&results_key(job.id, n)).await?.unwrap_or_default())
    }

    /// Writes a job's changed row (version raised), with an audit event when `audited`.
    async fn save_job(&self, before: &ImportJob, job: &mut ImportJob, audited: Option<(&Actor, &str)>) -> Result<()> {
        job.version = before.version + 1;
        job.updated_at = self.now();
        let mut cs = Changeset {
            writes: vec![Write::Update {
                kind: EntityKind::ImportJob,
                row: to_row(&*job)?,
                expected_version: before.version,
            }],
            audit: vec![],
        };
        if let Some((actor, action)) = audited {
            let about = serde_json::json!({"status": job.status, "dryRun": job.dry_run, "matchBy": job.match_by});
            cs.audit.push(self.audit_event(actor, action.into(), EntityKind::ImportJob, Some(job.id), about));
        }
        self.store().apply(cs).await
    }

    /// Takes up the imports waiting (queued, or running with a lease run out) and runs
    /// each to its end; answers how many were run. Two workers never run one job at once.
    pub async fn run_imports(&self) -> Result<usize> {
        let kind = EntityKind::ImportJob;
        let status = kind.column("status").ok_or_else(|| Error::internal_msg("no status"))?;
        let cmp = |s: ImportStatus| {
            crate::query::Filter::Cmp(crate::query::Cmp {
                column: status,
                pred: crate::query::Predicate::Eq(Value::Text(s.as_str().into())),
            })
        };
        let q = StoreQuery {
            filter: Some(crate::query::Filter::Or(vec![cmp(ImportStatus::Queued), cmp(ImportStatus::Running)])),
            sort: vec![crate::query::id_key(kind, Direction::Asc)],
            limit: 20,
            include_deleted: false,
        };
        let now = self.now();
        let mut ran = 0;
        for job in self.store().list_as::<ImportJob>(&q).await? {
            if job.status == ImportStatus::Running && job.lease_until.is_some_and(|l| l > now) {
                continue;
            }
            if self.run_import(job.id, None).await?.is_some() {
                ran += 1;
            }
        }
        Ok(ran)
    }

    /// Runs one import if it is waiting and no other worker holds it: takes it (a lease,
    /// renewed with each batch), imports its rows from the first not committed, and
    /// answers the job as it ended; `None` when it was not this worker's to run.
    /// `stop_after` stops after that many batches, as a worker that died would (tests).
    pub async fn run_import(&self, id: Uuid, stop_after: Option<usize>) -> Result<Option<ImportJob>> {
        let Some(before) = self.store().get_as::<ImportJob>(id).await? else { return Ok(None) };
        let now = self.now();
        let waiting = before.status == ImportStatus::Queued
            || (before.status == ImportStatus::Running && before.lease_until.is_none_or(|l| l <= now));
        if !waiting {
            return Ok(None);
        }
        let mut job = before.clone();
        job.status = ImportStatus::Running;
        job.lease_until = Some(now + chrono::Duration::seconds(LEASE_SECONDS));
        job.attempts += 1;
        job.started_at = Some(now);
        job.started_rows = job.rows_done;
        match self.save_job(&before, &mut job, None).await {
            Ok(()) => {}
            Err(Error::VersionConflict { .. }) => return Ok(None),
            Err(e) => return Err(e),
        }
        let kind = import_kind(&job)?;
        let mut reruns = 0;
        let outcome = loop {
            let outcome = match kind {
                EntityKind::Contact => Runner::<Contact>::new(self, job.clone()).await?.run(stop_after).await,
                EntityKind::Company => Runner::<Company>::new(self, job.clone()).await?.run(stop_after).await,
                EntityKind::Deal => Runner::<Deal>::new(self, job.clone()).await?.run(stop_after).await,
                _ => Runner::<Task>::new(self, job.clone()).await?.run(stop_after).await,
            };
            // A run that stopped on a version conflict while the job is still this
            // worker's (neither cancelled nor taken over, and not stopped by
            // `stop_after`): a record its batch updated was changed by someone else
            // between staging and writing. Run again from the last committed batch,
            // its rows staged afresh, rather than wait for the lease to run out.
            match outcome {
                Ok(ended)
                    if stop_after.is_none()
                        && ended.status == ImportStatus::Running
                        && ended.attempts == job.attempts
                        && reruns < MAX_RERUNS =>
                {
                    reruns += 1;
                    tracing::info!(job = %id, rows_done = ended.rows_done, "an import's record changed under it; staging again");
                    job = ended;
                }
                other => break other,
            }
        };
        match outcome {
            Ok(job) => Ok(Some(job)),
            Err(e) => {
                // Stopped by something no row caused: say so on the job (it can be started
                // again, and resumes after its last committed batch).
                let Some(now_job) = self.store().get_as::<ImportJob>(id).await? else { return Err(e) };
                if now_job.status != ImportStatus::Running {
                    return Ok(Some(now_job));
                }
                let mut failed = now_job.clone();
                failed.status = ImportStatus::Failed;
                failed.error = Some(e.to_string());
                failed.finished_at = Some(self.now());
                failed.lease_until = None;
                tracing::warn!(job = %id, error = %e, "an import failed");
                self.save_job(&now_job, &mut failed, None).await?;
                Ok(Some(failed))
            }
        }
    }
}

/// How many times one worker's run stages a job again after records changed under its
/// batches; past that it leaves the job to the next worker once its lease runs out.
const MAX_RERUNS: usize = 5;

fn import_kind(job: &ImportJob) -> Result<EntityKind> {
    IMPORTABLE
        .into_iter()
        .find(|k| k.table() == job.kind)
        .ok_or_else(|| Error::internal_msg(format!("an import job of unknown kind {}", job.kind)))
}

// ----------------------------------------------------------------------------------------
// Running a job

/// One row's outcome, for the results file and the counts.
struct RowResult {
    row: usize,
    result: &'static str,
    id: Option<Uuid>,
    columns: String,
    message: String,
}

/// The lookups a job's rows need, read once per run: the records by the match key, and
/// the companies, users and contacts that references name.
#[derive(Default)]
struct Lookups {
    by_key: HashMap<String, Uuid>,
    companies_by_domain: HashMap<String, Uuid>,
    companies_by_name: HashMap<String, Option<Uuid>>,
    users: HashMap<String, Uuid>,
    contacts_by_email: HashMap<String, Uuid>,
}

struct Runner<'a, R: Batchable> {
    crm: &'a Crm,
    job: ImportJob,
    actor: Actor,
    kind: EntityKind,
    lookups: Lookups,
    _kind: std::marker::PhantomData<R>,
}

/// A row of the source as a batch holds it: its number in the file, its cells (or why
/// they could not be read) and the match key they hold, worked out once.
struct Line {
    no: usize,
    cells: Result<Vec<String>>,
    key: Option<String>,
}

/// A batch staged by `Runner::stage_batch`, ready to write.
struct Staged {
    /// The records, the batch's audit and outbox events, and the job's progress.
    changes: Changeset,
    /// The match keys its rows hold.
    keys: HashSet<String>,
    /// The keys of the records it creates, with their ids.
    created: Vec<(String, Uuid)>,
}

/// A batch's write under way while the next batch is staged.
struct Flight<'a> {
    write: std::pin::Pin<Box<dyn std::future::Future<Output = Result<()>> + Send + 'a>>,
    /// The match keys its rows hold: a row with one of them waits until it has landed.
    keys: HashSet<String>,
    /// The keys of the records it creates, with their ids.
    created: Vec<(String, Uuid)>,
}

/// The nil id a dry run gives the records it would create, so later rows match them.
const WOULD_BE: Uuid = Uuid::nil();

impl<'a, R: Batchable> Runner<'a, R> {
    async fn new(crm: &'a Crm, job: ImportJob) -> Result<Self> {
        let owner = crm.store().get_as::<User>(job.owner_id).await?;
        let actor = match owner {
            Some(u) if u.is_assignable() => u.actor(),
            _ => return Err(Error::forbidden("the user who started the import is no longer active")),
        };
        let kind = R::KIND;
        let mut me = Self { crm, job, actor, kind, lookups: Lookups::default(), _kind: std::marker::PhantomData };
        me.read_lookups().await?;
        Ok(me)
    }

    fn maps(&self, field: &str) -> bool {
        self.job.mapping.iter().any(|m| m.as_deref() == Some(field))
    }

    async fn read_lookups(&mut self) -> Result<()> {
        let store = self.crm.store();
        let pos = |kind: EntityKind, c: &str| {
            kind.columns().iter().position(|col| col.name == c).ok_or_else(|| Error::internal_msg("no such column"))
        };
        let text = |v: &Value| match v {
            Value::Text(s) => Some(s.to_lowercase()),
            _ => None,
        };
        let id_of = |v: &Value| match v {
            Value::Uuid(u) => Some(*u),
            _ => None,
        };
        match self.job.match_by.as_deref() {
            Some(m @ ("email" | "domain")) => {
                let rows =
                    store.scan_columns(self.kind, None, false, &[pos(self.kind, "id")?, pos(self.kind, m)?]).await?;
                self.lookups.by_key = rows.iter().filter_map(|r| Some((text(&r[1])?, id_of(&r[0])?))).collect();
            }
            Some(m) if m.starts_with("customFields.") => {
                let key = &m["customFields.".len()..];
                let cols = [pos(self.kind, "id")?, pos(self.kind, "custom_fields")?];
                let rows = store.scan_columns(self.kind, None, false, &cols).await?;
                self.lookups.by_key = rows
                    .iter()
                    .filter_map(|r| match &r[1] {
                        Value::Json(j) => Some((key_text(j.get(key)?)?, id_of(&r[0])?)),
                        _ => None,
                    })
                    .collect();
            }
            _ => {}
        }
        if self.maps("company") {
            let k = EntityKind::Company;
            let rows = store.scan_columns(k, None, false, &[pos(k, "id")?, pos(k, "domain")?, pos(k, "name")?]).await?;
            for r in rows {
                let Some(id) = id_of(&r[0]) else { continue };
                if let Some(d) = text(&r[1]) {
                    self.lookups.companies_by_domain.insert(d, id);
                }
                if let Some(n) = text(&r[2]) {
                    // Two companies of one name: the name alone names neither.
                    self.lookups
                        .companies_by_name
                        .entry(n)
                        .and_modify(|e| {
                            if *e != Some(id) {
                                *e = None
                            }
                        })
                        .or_insert(Some(id));
                }
            }
        }
        if self.maps("contacts") {
            let k = EntityKind::Contact;
            let rows = store.scan_columns(k, None, false, &[pos(k, "id")?, pos(k, "email")?]).await?;
            self.lookups.contacts_by_email = rows.iter().filter_map(|r| Some((text(&r[1])?, id_of(&r[0])?))).collect();
        }
        if self.maps("owner") || self.maps("assignee") {
            let k = EntityKind::User;
            let rows =
                store.scan_columns(k, None, false, &[pos(k, "id")?, pos(k, "username")?, pos(k, "email")?]).await?;
            for r in rows {
                let Some(id) = id_of(&r[0]) else { continue };
                for v in [&r[1], &r[2]] {
                    if let Some(t) = text(v) {
                        self.lookups.users.insert(t, id);
                    }
                }
            }
        }
        Ok(())
    }

    /// Imports the rows after the last committed batch, batch by batch.
    async fn run(mut self, stop_after: Option<usize>) -> Result<ImportJob> {
        let bytes = self
            .crm
            .blobs()
            .get(&source_key(self.job.id))
            .await?
            .ok_or_else(|| Error::internal_msg("the import's file is gone"))?;
        let source = tokio::task::spawn_blocking(move || Source::read(&bytes))
            .await
            .map_err(|e| Error::internal("reading an import", e))??;
        let skip = self.job.rows_done as usize;
        // Row numbers as a spreadsheet shows them: the header is row 1.
        let mut rows = source.rows().enumerate().skip(skip).map(|(i, r)| (i + 2, r));
        // The batch being written while the next is staged: the store writes on a thread
        // of its own (SQLite's writer) or on its server (PostgreSQL) while this task
        // validates and builds the next rows, so the two halves of the work overlap.
        let mut flight: Option<Flight<'a>> = None;
        let (mut batches, mut stopped) = (0usize, false);
        loop {
            let mut batch: Vec<Line> = Vec::with_capacity(BATCH_ROWS);
            for (no, cells) in rows.by_ref() {
                let key = cells.as_ref().ok().and_then(|c| self.row_key(c));
                batch.push(Line { no, cells, key });
                if batch.len() == BATCH_ROWS {
                    break;
                }
            }
            if batch.is_empty() {
                break;
            }
            // A row whose key an earlier row holds waits for that row's write, so it
            // updates the record rather than creating a second: the batch goes out in as
            // few writes as its keys allow.
            let mut pending = batch;
            while !pending.is_empty() {
                let rest = Self::split_at_repeated_key(&mut pending);
                let keys: HashSet<String> = pending.iter().filter_map(|l| l.key.clone()).collect();
                if let Some(f) = flight.take_if(|f| !f.keys.is_disjoint(&keys)) {
                    if !self.land(f).await? {
                        return self.as_stored().await;
                    }
                }
                let staged = match flight.take() {
                    Some(Flight { write, created, .. }) => {
                        let (landed, staged) = tokio::join!(write, self.stage_batch(pending, keys));
                        if !self.landed(landed, created)? {
                            return self.as_stored().await;
                        }
                        staged?
                    }
                    None => self.stage_batch(pending, keys).await?,
                };
                let crm: &'a Crm = self.crm;
                flight = Some(Flight {
                    write: crm.store().apply(staged.changes),
                    keys: staged.keys,
                    created: staged.created,
                });
                pending = rest;
            }
            batches += 1;
            if stop_after.is_some_and(|n| batches >= n) {
                stopped = true;
                break;
            }
        }
        if let Some(f) = flight.take() {
            if !self.land(f).await? {
                return self.as_stored().await;
            }
        }
        if stopped {
            return Ok(self.job);
        }
        let before = self.job.clone();
        self.job.status = ImportStatus::Completed;
        self.job.finished_at = Some(self.crm.now());
        self.job.lease_until = None;
        let action = if self.job.dry_run { "import.checked" } else { "import.completed" };
        let actor = self.actor.clone();
        self.crm.save_job(&before, &mut self.job, Some((&actor, action))).await?;
        Ok(self.job)
    }

    /// The job as stored, when it changed under this worker (cancelled, or taken over).
    async fn as_stored(&self) -> Result<ImportJob> {
        self.crm.store().get_as::<ImportJob>(self.job.id).await?.ok_or(Error::NotFound { entity: "import_job" })
    }

    /// Waits for a batch's write; see [`Self::landed`].
    async fn land(&mut self, flight: Flight<'a>) -> Result<bool> {
        let Flight { write, created, .. } = flight;
        let outcome = write.await;
        self.landed(outcome, created)
    }

    /// Takes in how a batch's write ended: the records it created become matches for
    /// later rows. False when the job changed under this worker.
    fn landed(&mut self, outcome: Result<()>, created: Vec<(String, Uuid)>) -> Result<bool> {
        match outcome {
            Ok(()) => {
                self.lookups.by_key.extend(created);
                Ok(true)
            }
            Err(Error::VersionConflict { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Leaves in `rows` those before the first row whose key an earlier row holds (at
    /// least one row), and answers the rest.
    fn split_at_repeated_key(rows: &mut Vec<Line>) -> Vec<Line> {
        let mut keys: HashSet<&str> = HashSet::new();
        let mut take = rows.len();
        for (i, line) in rows.iter().enumerate() {
            if let Some(k) = &line.key {
                if !keys.insert(k) {
                    take = i;
                    break;
                }
            }
        }
        rows.split_off(take.max(1))
    }

    /// The match key a row's cells hold (as stored), if any.
    fn row_key(&self, cells: &[String]) -> Option<String> {
        let m = self.job.match_by.as_deref()?;
        let col = self.job.mapping.iter().position(|f| f.as_deref() == Some(m))?;
        let raw = cells.get(col)?.trim();
        if raw.is_empty() {
            return None;
        }
        match m {
            "email" | "domain" => R::key_of(raw),
            "id" => Uuid::parse_str(raw).ok().map(|u| u.to_string()),
            _ => Some(raw.to_lowercase()),
        }
    }

    /// One batch staged: every row run through its create or update, the records'
    /// writes (none in a dry run), one audit and one outbox event naming them, and the
    /// job's progress, to be written at once. `self.job` moves on to the job as that
    /// write leaves it. `keys` are the match keys the rows hold.
    async fn stage_batch(&mut self, rows: Vec<Line>, keys: HashSet<String>) -> Result<Staged> {
        let crm = self.crm;
        let n = rows.len();
        let mut staged = Changeset::default();
        let mut results: Vec<RowResult> = Vec::with_capacity(n);
        let mut named: Vec<Json> = Vec::new();
        let mut new_keys: Vec<(String, Uuid)> = Vec::new();
        for Line { no: row_no, cells, key } in rows {
            let (result, cs) = match cells {
                Ok(cells) => self.row(row_no, &cells, key.as_deref()).await?,
                Err(e) => (
                    RowResult {
                        row: row_no,
                        result: "failed",
                        id: None,
                        columns: String::new(),
                        message: e.to_string(),
                    },
                    Changeset::default(),
                ),
            };
            if result.result != "failed" && !self.job.dry_run {
                staged.writes.extend(cs.writes);
                staged.audit.extend(cs.audit);
            }
            if let (Some(k), Some(id)) = (key, result.id) {
                if result.result == "created" {
                    new_keys.push((k, id));
                }
            }
            if let Some(id) = result.id.filter(|id| *id != WOULD_BE) {
                if matches!(result.result, "created" | "updated") {
                    named.push(serde_json::json!({"id": id, "action": result.result}));
                }
            }
            results.push(result);
        }
        // One audit event and one outbox event for the batch, naming its records, in
        // place of one per record.
        let (records, others) = collapse(self.kind, staged);
        let mut cs = Changeset { writes: records, audit: vec![] };
        cs.writes.extend(others);
        let first = results.first().map_or(0, |r| r.row);
        let last = results.last().map_or(0, |r| r.row);
        if !self.job.dry_run && !named.is_empty() {
            let about = serde_json::json!({"job": self.job.id, "rows": format!("{first}-{last}"), "records": named});
            let action = format!("{}.imported", self.kind.name());
            cs.audit.push(crm.audit_event(&self.actor, action.clone(), self.kind, None, about.clone()));
            cs.writes.push(crm.event(action, EntityKind::ImportJob, self.job.id, about)?);
        }
        // The results piece goes first (the same again if this batch is retried).
        let mut out = Vec::with_capacity(n * 64);
        {
            let mut w =
                csv::WriterBuilder::new().has_headers(false).terminator(csv::Terminator::CRLF).from_writer(&mut out);
            for r in &results {
                let id = r.id.filter(|id| *id != WOULD_BE).map(|u| u.to_string()).unwrap_or_default();
                let message = super::export::defuse(r.message.clone());
                w.write_record([r.row.to_string().as_str(), r.result, &id, &r.columns, &message])
                    .map_err(|e| Error::internal("writing import results", e))?;
            }
            w.flush().map_err(|e| Error::internal("writing import results", e))?;
        }
        crm.blobs().put(&results_key(self.job.id, self.job.batches), Bytes::from(out)).await?;
        let before = self.job.clone();
        for r in &results {
            match r.result {
                "created" => self.job.created += 1,
                "updated" => self.job.updated += 1,
                "unchanged" => self.job.unchanged += 1,
                _ => self.job.failed += 1,
            }
        }
        self.job.rows_done += n as i64;
        self.job.batches += 1;
        self.job.lease_until = Some(crm.now() + chrono::Duration::seconds(LEASE_SECONDS));
        self.job.version = before.version + 1;
        self.job.updated_at = crm.now();
        cs.writes.push(Write::Update {
            kind: EntityKind::ImportJob,
            row: to_row(&self.job)?,
            expected_version: before.version,
        });
        Ok(Staged { changes: cs, keys, created: new_keys })
    }

    /// One row: its record built from the cells, matched, and run through the single
    /// create or update with its writes staged. Answers the outcome, the staged changes
    /// and the row's match key (`key`, as [`Self::row_key`] found it in the cells).
    async fn row(&mut self, row_no: usize, cells: &[String], key: Option<&str>) -> Result<(RowResult, Changeset)> {
        let fail =
            |columns: String, message: String| RowResult { row: row_no, result: "failed", id: None, columns, message };
        let (record, problems) = self.record(cells);
        if !problems.is_empty() {
            let (cols, msgs): (Vec<String>, Vec<String>) = problems.into_iter().unzip();
            return Ok((fail(cols.join("; "), msgs.join("; ")), Changeset::default()));
        }
        let matched = match (self.job.match_by.as_deref(), key) {
            (Some("id"), Some(k)) => {
                let id = Uuid::parse_str(k).ok();
                match id {
                    Some(id) if self.crm.store().get(self.kind, id).await?.is_some() => Some(id),
                    _ => {
                        let col = self.column_of("id");
                        return Ok((fail(col, format!("no {} with id {k}", self.kind.name())), Changeset::default()));
                    }
                }
            }
            (Some(_), Some(k)) => self.lookups.by_key.get(k).copied(),
            _ => None,
        };
        let mut record = record;
        if let Json::Object(m) = &mut record {
            m.remove("id");
        }
        let crm = self.crm;
        let actor = self.actor.clone();
        let outcome: Result<(&'static str, Uuid)>;
        let mut staged = Changeset::default();
        match matched {
            Some(WOULD_BE) => {
                // A dry run's row matching a record an earlier row would create.
                outcome = crate::decode::from_json::<R::Patch>(record).map(|_| ("updated", WOULD_BE));
            }
            Some(id) => {
                let done = match crate::decode::from_json::<R::Patch>(record) {
                    Ok(patch) => {
                        let (r, cs) = crm.staged_quietly(R::update(crm, &actor, id, patch, None)).await;
                        staged = cs;
                        r
                    }
                    Err(e) => Err(e),
                };
                // An update that changes nothing stages nothing.
                let unchanged = staged.is_empty();
                outcome = done.map(|_| (if unchanged { "unchanged" } else { "updated" }, id));
            }
            None => {
                let done = match crate::decode::from_json::<R::New>(record) {
                    Ok(input) => {
                        let (r, cs) = crm.staged_quietly(R::create(crm, &actor, input)).await;
                        staged = cs;
                        r
                    }
                    Err(e) => Err(e),
                };
                outcome = done.map(|r| ("created", if self.job.dry_run { WOULD_BE } else { r.id() }));
            }
        }
        match outcome {
            Ok((result, id)) => {
                if self.job.dry_run && result == "created" {
                    if let Some(k) = key {
                        self.lookups.by_key.insert(k.to_string(), WOULD_BE);
                    }
                }
                let shown = if self.job.dry_run && result == "created" { None } else { Some(id) };
                Ok((
                    RowResult { row: row_no, result, id: shown, columns: String::new(), message: String::new() },
                    staged,
                ))
            }
            Err(e) => {
                let (cols, msg) = self.explain(e);
                Ok((fail(cols, msg), Changeset::default()))
            }
        }
    }

    /// The header of the column that fills `field` (or the fields a reference fills).
    fn column_of(&self, field: &str) -> String {
        let root = field.split('.').next().unwrap_or(field);
        let fills = |m: &str| {
            m == field
                || m == root
                || (field.starts_with(&format!("{m}.")))
                || match m {
                    "company" => root == "companyId",
                    "owner" => root == "ownerId",
                    "assignee" => root == "assignedUser",
                    "contacts" => root == "contactIds",
                    "firstName" | "lastName" => root == "name",
                    _ => m.starts_with(&format!("{root}.")),
                }
        };
        let cols: Vec<&str> = self
            .job
            .mapping
            .iter()
            .zip(&self.job.headers)
            .filter(|(m, _)| m.as_deref().is_some_and(fills))
            .map(|(_, h)| h.as_str())
            .collect();
        cols.join("; ")
    }

    /// An error as the columns it names and a message.
    fn explain(&self, e: Error) -> (String, String) {
        match &e {
            Error::Validation(list) | Error::Malformed(list) => {
                let cols: Vec<String> = list.iter().map(|f| self.column_of(&f.field)).collect();
                let msgs: Vec<String> = list.iter().map(|f| format!("{}: {}", f.field, f.message)).collect();
                (cols.join("; "), msgs.join("; "))
            }
            Error::Conflict { field: Some(field), .. } => (self.column_of(field), e.to_string()),
            _ => (String::new(), e.to_string()),
        }
    }

    /// A row's record as JSON (the fields its mapped cells fill; empty cells fill
    /// nothing), and the cells that could not be read, by column.
    fn record(&self, cells: &[String]) -> (Json, Vec<(String, String)>) {
        let mut out = Map::new();
        let mut problems = Vec::new();
        let mut first_last: (Option<String>, Option<String>) = (None, None);
        for ((field, header), cell) in self.job.mapping.iter().zip(&self.job.headers).zip(cells.iter()) {
            let Some(field) = field.as_deref() else { continue };
            let raw = cell.trim();
            // An export's defused text comes back as it was.
            let raw = match raw.strip_prefix('\'') {
                Some(rest) if rest.starts_with(['=', '+', '-', '@']) => rest,
                _ => raw,
            };
            if raw.is_empty() {
                continue;
            }
            let Some(t) = target(self.kind, field) else { continue };
            let mut bad = |m: String| problems.push((header.clone(), format!("{field}: {m}")));
            let value = match t {
                Target::Text => Json::String(raw.to_string()),
                Target::Id => Json::String(raw.to_string()),
                Target::Int => match raw.replace([' ', '_'], "").parse::<i64>() {
                    Ok(n) => Json::from(n),
                    Err(_) => {
                        bad(format!("'{raw}' is not a whole number"));
                        continue;
                    }
                },
                Target::List => Json::Array(split_list(raw).map(|s| Json::String(s.to_string())).collect()),
                Target::Object => match serde_json::from_str::<Json>(raw) {
                    Ok(Json::Object(m)) => {
                        // Members other columns filled stay.
                        let obj = out.entry(field.to_string()).or_insert_with(|| Json::Object(Map::new()));
                        if let Json::Object(into) = obj {
                            for (k, v) in m {
                                into.entry(k).or_insert(v);
                            }
                        }
                        continue;
                    }
                    _ => {
                        bad(format!("'{raw}' is not a JSON object"));
                        continue;
                    }
                },
                Target::NamePart => {
                    if field == "firstName" {
                        first_last.0 = Some(raw.to_string());
                    } else {
                        first_last.1 = Some(raw.to_string());
                    }
                    continue;
                }
                Target::Company => {
                    let k = raw.to_lowercase();
                    let by_domain = crate::Domain::parse(raw)
                        .ok()
                        .and_then(|d| self.lookups.companies_by_domain.get(d.as_str()).copied());
                    match by_domain.or_else(|| self.lookups.companies_by_name.get(&k).copied().flatten()) {
                        Some(id) => {
                            out.insert("companyId".into(), Json::String(id.to_string()));
                        }
                        None if self.lookups.companies_by_name.contains_key(&k) => {
                            bad(format!("several companies are named '{raw}'; give its domain"))
                        }
                        None => bad(format!("no company with the domain or name '{raw}'")),
                    }
                    continue;
                }
                Target::User(into) => {
                    match self.lookups.users.get(&raw.to_lowercase()) {
                        Some(id) => {
                            out.insert(into.into(), Json::String(id.to_string()));
                        }
                        None => bad(format!("no user with the email or user name '{raw}'")),
                    }
                    continue;
                }
                Target::Contacts => {
                    let mut ids = Vec::new();
                    for email in split_list(raw) {
                        match self.lookups.contacts_by_email.get(&email.to_lowercase()) {
                            Some(id) => ids.push(Json::String(id.to_string())),
                            None => bad(format!("no contact with the email '{email}'")),
                        }
                    }
                    out.insert("contactIds".into(), Json::Array(ids));
                    continue;
                }
            };
            match field.split_once('.') {
                Some((family, member)) => {
                    let obj = out.entry(family.to_string()).or_insert_with(|| Json::Object(Map::new()));
                    if let Json::Object(m) = obj {
                        m.insert(member.to_string(), value);
                    }
                }
                None => {
                    out.insert(field.to_string(), value);
                }
            }
        }
        if first_last.0.is_some() || first_last.1.is_some() {
            let joined = [first_last.0, first_last.1].into_iter().flatten().collect::<Vec<_>>().join(" ");
            out.entry("name").or_insert(Json::String(joined));
        }
        (Json::Object(out), problems)
    }
}

/// A list cell's items: split on `;`, or on `,` when there is no `;`.
fn split_list(raw: &str) -> impl Iterator<Item = &str> {
    let sep = if raw.contains(';') { ';' } else { ',' };
    raw.split(sep).map(str::trim).filter(|s| !s.is_empty())
}

/// A custom field's value as a match key (text or number, lower case).
fn key_text(v: &Json) -> Option<String> {
    match v {
        Json::String(s) if !s.trim().is_empty() => Some(s.trim().to_lowercase()),
        Json::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A batch's staged writes without the per-record audit events and `<kind>.created` /
/// `<kind>.updated` outbox events (the batch's own stand for them), the record inserts
/// first so the store sends them as multi-row inserts.
fn collapse(kind: EntityKind, staged: Changeset) -> (Vec<Write>, Vec<Write>) {
    let topic_at = EntityKind::OutboxEvent.columns().iter().position(|c| c.name == "topic");
    let own = [format!("{}.created", kind.name()), format!("{}.updated", kind.name())];
    let mut records = Vec::new();
    let mut others = Vec::new();
    for w in staged.writes {
        match &w {
            Write::Insert { kind: k, row } if *k == EntityKind::OutboxEvent => {
                let topic = topic_at.and_then(|i| row.get(i));
                if matches!(topic, Some(Value::Text(t)) if own.contains(t)) {
                    continue;
                }
                others.push(w);
            }
            Write::Insert { kind: k, .. } if *k == kind => records.push(w),
            _ => others.push(w),
        }
    }
    (records, others)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(h: &[&str]) -> Vec<String> {
        h.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn headers_in_english_french_german_and_the_apis_own_spelling_are_mapped() {
        let (m, by) = suggest(
            EntityKind::Contact,
            &headers(&["Prénom", "Nom", "Courriel", "Société", "Téléphone", "Code postal", "Ville", "Lieblingsfarbe"]),
        );
        let m: Vec<Option<&str>> = m.iter().map(|f| f.as_deref()).collect();
        assert_eq!(
            m,
            vec![
                Some("firstName"),
                Some("lastName"),
                Some("email"),
                Some("company"),
                Some("phoneNumber"),
                Some("address.postalCode"),
                Some("address.city"),
                Some("customFields.lieblingsfarbe"),
            ]
        );
        assert_eq!(by.as_deref(), Some("email"));
        // An export's header: system columns left out, objects as objects.
        let (m, _) = suggest(
            EntityKind::Company,
            &headers(&["id", "name", "domain", "contactDetails", "customFields", "version", "createdAt", "teamId"]),
        );
        let m: Vec<Option<&str>> = m.iter().map(|f| f.as_deref()).collect();
        assert_eq!(
            m,
            vec![
                Some("id"),
                Some("name"),
                Some("domain"),
                Some("contactDetails"),
                Some("customFields"),
                None,
                None,
                None
            ]
        );
        // Two columns for one field: the first keeps it.
        let (m, _) = suggest(EntityKind::Deal, &headers(&["Deal name", "Title", "Montant"]));
        assert_eq!(m, vec![Some("name".to_string()), None, Some("amount".to_string())]);
    }

    #[test]
    fn separators_and_encodings_are_found() {
        assert_eq!(sniff_delimiter(b"a;b;\"c,d\"\n1;2;3"), b';');
        assert_eq!(sniff_delimiter(b"a\tb\tc\n"), b'\t');
        assert_eq!(sniff_delimiter(b"name\n"), b',');
        assert_eq!(decode(b"\xEF\xBB\xBFname\n").0, b"name\n");
        assert_eq!(decode(b"Jos\xe9\n"), ("José\n".as_bytes().to_vec(), "windows-1252"));
        let utf16: Vec<u8> = [0xFF, 0xFE].into_iter().chain("ab".encode_utf16().flat_map(u16::to_le_bytes)).collect();
        assert_eq!(decode(&utf16).0, b"ab");
    }
}
