//! The rules of a roster file for `server user import`, pure: bytes in,
//! the accounts to make (or every bad row) out. No file, no database, no
//! randomness here.
//!
//! # Format
//!
//! ```text
//! name,password
//! ana
//! Bruno,"a password, with a comma"
//! carla,
//! ```
//!
//! - CSV as RFC 4180 has it: fields separated by commas; a field in double
//!   quotes may hold a comma, a line break or a doubled `""` quote. Lines
//!   may end in LF or CRLF; a UTF-8 byte order mark at the start (what
//!   spreadsheets write) is ignored.
//! - One account per row: `name`, or `name,password`. An empty password
//!   (`carla,` or just `carla`) means "generate one".
//! - The first row may be a header: `name` or `name,password`, in any
//!   letter case. (So a student cannot be called `name` in the first row.)
//! - Blank lines, and rows whose every field is empty (what a spreadsheet
//!   leaves below a table), are skipped; so are empty fields after the
//!   second (a spreadsheet's empty columns). Spaces and tabs around a
//!   field are ignored, even inside quotes: `ana, secret` gives the
//!   password `secret`.
//! - Refused rows: a bad name, a bad password, a name that appeared on an
//!   earlier row in any letter case, a third field that is not empty, text
//!   that is not UTF-8. Each is reported with the line it starts on,
//!   counted from 1, and any one of them refuses the whole file: a class
//!   gets all its accounts or none, never half.
//! - At most [`MAX_ROSTER_ROWS`] rows, so that a wrong file (a database
//!   dump, a log) is refused at once instead of costing a slow argon2 hash
//!   per line.

use std::collections::HashMap;
use std::fmt;

use super::{name_rule, PASSWORD_RULE};
use crate::protocol::text::is_valid_password;
use crate::protocol::Name;

/// The most accounts one roster file may hold. A school's class is
/// forty; a whole school's year fits too.
pub const MAX_ROSTER_ROWS: usize = 2000;

/// One account to make: a valid name, and the password given for it (a
/// valid one), or `None` for "generate one".
#[derive(Clone, PartialEq, Eq)]
pub struct RosterRow {
    /// The line of the file the row starts on, counted from 1.
    pub line: u64,
    /// The user name, as written in the file.
    pub name: Name,
    /// The password given in the file, if any.
    pub password: Option<String>,
}

impl fmt::Debug for RosterRow {
    /// Never shows the password: a `{:?}` in a log or a failed test must
    /// not print one.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RosterRow")
            .field("line", &self.line)
            .field("name", &self.name.as_str())
            .field("password", &self.password.as_ref().map(|_| "<given>"))
            .finish()
    }
}

/// A refused row: where, and why (the reason never shows a password).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadRow {
    /// The line of the file the row starts on, counted from 1.
    pub line: u64,
    /// Why it was refused, in a sentence.
    pub reason: String,
}

impl fmt::Display for BadRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.reason)
    }
}

/// Why a roster file was refused as a whole; nothing was created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RosterError {
    /// These rows are bad (at least one), in the order of the file.
    BadRows(Vec<BadRow>),
    /// The file has no account in it (empty, blank, or a header only).
    NoRows,
    /// The file has more than [`MAX_ROSTER_ROWS`] rows.
    TooManyRows,
}

impl fmt::Display for RosterError {
    /// One sentence for the whole file; the bad rows themselves are listed
    /// by the caller, one line each.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RosterError::BadRows(rows) => {
                const SHOWN: usize = 10;
                let lines: Vec<String> = rows
                    .iter()
                    .take(SHOWN)
                    .map(|r| r.line.to_string())
                    .collect();
                let more = if rows.len() > SHOWN { ", …" } else { "" };
                let (count, s) = (rows.len(), if rows.len() == 1 { "" } else { "s" });
                write!(
                    f,
                    "{count} bad row{s} (line{s} {}{more}); nothing was created: fix the \
                     file and import it again",
                    lines.join(", ")
                )
            }
            RosterError::NoRows => write!(
                f,
                "no accounts in it: give one row per account, `name` or `name,password`"
            ),
            RosterError::TooManyRows => write!(
                f,
                "more than {MAX_ROSTER_ROWS} rows; nothing was created: split it into \
                 several files"
            ),
        }
    }
}

impl std::error::Error for RosterError {}

/// Reads a roster (see the module doc for the rules).
///
/// # Errors
///
/// [`RosterError::BadRows`] listing every bad row if there is any,
/// [`RosterError::NoRows`] for a file without accounts,
/// [`RosterError::TooManyRows`] past [`MAX_ROSTER_ROWS`].
pub fn parse_roster(bytes: &[u8]) -> Result<Vec<RosterRow>, RosterError> {
    // No header handling by the reader (we decide what a header is), rows
    // of any length (we count the fields ourselves, to say which line has
    // too many), every field trimmed.
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(bytes);
    let mut rows = Vec::new();
    let mut bad = Vec::new();
    // The line each name (by its lowercase key) first appeared on.
    let mut seen: HashMap<String, u64> = HashMap::new();
    let mut record = csv::ByteRecord::new();
    let mut first = true;
    let mut lines = LineCounter::new(bytes);
    loop {
        // Reading from a byte slice cannot fail: no I/O, and `flexible`
        // allows rows of any length. Should it fail anyway, the file is
        // refused on the line it was at.
        match reader.read_byte_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                let line = lines.at(e.position().map_or(0, csv::Position::byte));
                bad.push(BadRow {
                    line,
                    reason: format!("unreadable CSV: {e}"),
                });
                break;
            }
        }
        let line = lines.at(record.position().map_or(0, csv::Position::byte));
        if record.iter().all(<[u8]>::is_empty) {
            continue;
        }
        let fields: Vec<&str> = match record.iter().map(std::str::from_utf8).collect() {
            Ok(fields) => fields,
            Err(_) => {
                bad.push(BadRow {
                    line,
                    reason: "not UTF-8 text: save the file as CSV UTF-8".into(),
                });
                continue;
            }
        };
        if std::mem::take(&mut first) && is_header(&fields) {
            continue;
        }
        if rows.len() + bad.len() >= MAX_ROSTER_ROWS {
            return Err(RosterError::TooManyRows);
        }
        match check_row(&fields, line, &mut seen) {
            Ok(row) => rows.push(row),
            Err(reason) => bad.push(BadRow { line, reason }),
        }
    }
    if !bad.is_empty() {
        Err(RosterError::BadRows(bad))
    } else if rows.is_empty() {
        Err(RosterError::NoRows)
    } else {
        Ok(rows)
    }
}

/// The line number of each record, from its byte offset.
///
/// The reader's own `Position::line` does not count the blank lines it
/// skips, nor a CRLF as one line end, and its `Position::byte` points at
/// the end of the previous record, before the line ends (and blank lines)
/// that it skipped. So the record starts after those, and its line is one
/// more than the LFs before it. Records come in order, so the count goes
/// on from the previous one: the whole file is read once.
struct LineCounter<'a> {
    /// The whole roster.
    bytes: &'a [u8],
    /// The offset counted up to.
    offset: usize,
    /// The line at `offset`, from 1.
    line: u64,
}

impl<'a> LineCounter<'a> {
    /// A counter at the start of `bytes`.
    fn new(bytes: &'a [u8]) -> Self {
        LineCounter {
            bytes,
            offset: 0,
            line: 1,
        }
    }

    /// The line of the record the reader says is at `byte` (not before
    /// the last one asked).
    fn at(&mut self, byte: u64) -> u64 {
        let mut start = usize::try_from(byte).map_or(self.bytes.len(), |b| b.min(self.bytes.len()));
        while self
            .bytes
            .get(start)
            .is_some_and(|b| matches!(b, b'\r' | b'\n'))
        {
            start += 1;
        }
        if start > self.offset {
            let newlines = self.bytes[self.offset..start]
                .iter()
                .filter(|&&b| b == b'\n')
                .count();
            self.line += newlines as u64;
            self.offset = start;
        }
        self.line
    }
}

/// Whether the first row is a header: `name` or `name,password`, in any
/// letter case, with nothing but empty fields after.
fn is_header(fields: &[&str]) -> bool {
    let expected = ["name", "password"];
    fields
        .first()
        .is_some_and(|f| f.eq_ignore_ascii_case("name"))
        && fields.iter().enumerate().skip(1).all(|(i, f)| {
            f.is_empty() || expected.get(i).is_some_and(|e| f.eq_ignore_ascii_case(e))
        })
}

/// One row's account, or every reason it is refused, joined into one
/// sentence. A valid name is remembered in `seen` (even on a row refused
/// for another reason), so that a later row with the same name in any
/// case is refused too.
fn check_row(
    fields: &[&str],
    line: u64,
    seen: &mut HashMap<String, u64>,
) -> Result<RosterRow, String> {
    let mut reasons = Vec::new();
    let extra = fields.iter().skip(2).filter(|f| !f.is_empty()).count();
    if extra > 0 {
        let last = fields
            .iter()
            .rposition(|f| !f.is_empty())
            .map_or(0, |i| i + 1);
        reasons.push(format!(
            "too many columns ({last}): give `name` or `name,password`"
        ));
    }
    let given_name = fields.first().copied().unwrap_or_default();
    let name = match Name::parse(given_name) {
        Ok(name) => Some(name),
        Err(_) => {
            reasons.push(name_rule(given_name));
            None
        }
    };
    let password = fields.get(1).copied().filter(|p| !p.is_empty());
    if password.is_some_and(|p| !is_valid_password(p)) {
        reasons.push(PASSWORD_RULE.to_string());
    }
    if let Some(name) = &name {
        if let Some(earlier) = seen.get(&name.key()) {
            reasons.push(format!(
                "{name} is on line {earlier} already (names are the same in any letter case)"
            ));
        } else {
            seen.insert(name.key(), line);
        }
    }
    match name {
        Some(name) if reasons.is_empty() => Ok(RosterRow {
            line,
            name,
            password: password.map(str::to_string),
        }),
        _ => Err(reasons.join("; ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `(line, name, password)` of each row, for short assertions.
    fn summary(rows: &[RosterRow]) -> Vec<(u64, &str, Option<&str>)> {
        rows.iter()
            .map(|r| (r.line, r.name.as_str(), r.password.as_deref()))
            .collect()
    }

    /// The bad rows of a refused file, as `(line, reason)`.
    fn bad_rows(input: &str) -> Vec<(u64, String)> {
        match parse_roster(input.as_bytes()) {
            Err(RosterError::BadRows(rows)) => {
                rows.into_iter().map(|r| (r.line, r.reason)).collect()
            }
            other => panic!("expected bad rows, got {other:?}"),
        }
    }

    /// A header, `name` rows and `name,password` rows mixed, an empty
    /// password, blank lines and spreadsheet-empty rows skipped, spaces
    /// trimmed, and the line numbers of the file.
    #[test]
    fn names_and_passwords_with_a_header() {
        let input = "name,password\nana\n\nBruno,pw de bruno\n,\ncarla,\n  dan , s3cret \n";
        let rows = parse_roster(input.as_bytes()).unwrap();
        assert_eq!(
            summary(&rows),
            vec![
                (2, "ana", None),
                (4, "Bruno", Some("pw de bruno")),
                (6, "carla", None),
                (7, "dan", Some("s3cret")),
            ]
        );
    }

    /// The header is optional, in any case, `name` alone or with
    /// `password`; only the first row can be one.
    #[test]
    fn header_forms() {
        for input in [
            "NAME\nana\n",
            "Name,Password\nana\n",
            "name,password,\nana\n",
            "ana\n",
        ] {
            let rows = parse_roster(input.as_bytes()).unwrap();
            assert_eq!(
                summary(&rows),
                vec![(input.lines().count() as u64, "ana", None)],
                "{input:?}"
            );
        }
        let rows = parse_roster(b"ana\nname\n").unwrap();
        assert_eq!(summary(&rows), vec![(1, "ana", None), (2, "name", None)]);
        // `name,pw` is not a header: an account `name` with the password `pw`.
        let rows = parse_roster(b"name,pw\n").unwrap();
        assert_eq!(summary(&rows), vec![(1, "name", Some("pw"))]);
    }

    /// Quoted fields: a comma and a doubled quote in a password, a quoted
    /// name; CRLF line ends; a byte order mark before the header.
    #[test]
    fn quoted_fields_crlf_and_bom() {
        let input = "\u{feff}name,password\r\n\"ana\",\"a, \"\"quoted\"\" pw\"\r\nbob,x\r\n";
        let rows = parse_roster(input.as_bytes()).unwrap();
        assert_eq!(
            summary(&rows),
            vec![(2, "ana", Some("a, \"quoted\" pw")), (3, "bob", Some("x"))]
        );
    }

    /// A bad row is reported with the line it starts on, counted in the
    /// file's lines (a quoted field across two lines counts two).
    #[test]
    fn a_bad_row_names_its_line() {
        let input = "ana,\"two\nlines\"\nbob\na b\n";
        let bad = bad_rows(input);
        let lines: Vec<u64> = bad.iter().map(|b| b.0).collect();
        assert_eq!(lines, vec![1, 4]);
        // A line break is a control character: no password has one.
        assert_eq!(bad[0].1, PASSWORD_RULE);
        assert_eq!(
            bad[1].1,
            "\"a \"… is not a valid user name: ' ' is not allowed \
             (1 to 32 characters from A-Z a-z 0-9 _ - .)"
        );
    }

    /// Line numbers count blank lines, CRLF and LF alike, and the lines
    /// inside a quoted field.
    #[test]
    fn line_numbers_count_every_line() {
        let input = "\n\nana\r\n\r\n\r\nbob,\"a\r\nb\"\n\ncy\r\n  \nd/\n";
        let bad = bad_rows(input);
        let lines: Vec<u64> = bad.iter().map(|b| b.0).collect();
        assert_eq!(lines, vec![6, 11], "{bad:?}");
        let good = "\n\nana\r\n\r\n\r\nbob,\"a,\"\"b\"\n\ncy\r\n  \nd\n";
        let rows = parse_roster(good.as_bytes()).unwrap();
        assert_eq!(
            summary(&rows),
            vec![
                (3, "ana", None),
                (6, "bob", Some("a,\"b")),
                (8, "cy", None),
                (10, "d", None)
            ]
        );
    }

    /// The same name twice in any letter case refuses the later row,
    /// naming the line of the first.
    #[test]
    fn duplicates_in_any_case() {
        let bad = bad_rows("name\nAna\nbob\nANA\n");
        assert_eq!(
            bad,
            vec![(
                4,
                "ANA is on line 2 already (names are the same in any letter case)".to_string()
            )]
        );
        // The first row is bad for another reason: both are reported.
        let lines: Vec<u64> = bad_rows("ana,\"a\u{7}\"\nAna\n")
            .iter()
            .map(|b| b.0)
            .collect();
        assert_eq!(lines, vec![1, 2]);
    }

    /// All or nothing: every bad row is reported, and no row comes back
    /// even though others are good; each reason says what is wrong,
    /// several in one sentence, and never shows a password.
    #[test]
    fn every_bad_row_and_nothing_else() {
        let input = "ana\nbob,pw,extra\nc/d,ok\ngood\ne,\"tab\there\"\nf;secret\n,pw\n";
        let bad = bad_rows(input);
        let lines: Vec<u64> = bad.iter().map(|b| b.0).collect();
        assert_eq!(lines, vec![2, 3, 5, 6, 7]);
        assert_eq!(
            bad[0].1,
            "too many columns (3): give `name` or `name,password`"
        );
        assert!(
            bad[1]
                .1
                .starts_with("\"c/\"… is not a valid user name: '/' is not allowed"),
            "{}",
            bad[1].1
        );
        assert_eq!(bad[2].1, PASSWORD_RULE);
        assert!(
            bad[3]
                .1
                .starts_with("\"f;\"… is not a valid user name: ';' is not allowed")
                && bad[3]
                    .1
                    .ends_with("; separate the name and the password with a comma"),
            "{}",
            bad[3].1
        );
        assert!(!bad[3].1.contains("secret"), "{}", bad[3].1);
        assert!(bad[4].1.starts_with("the name is empty"), "{}", bad[4].1);
        let both = bad_rows("x_,\"a\u{7}\"\nx/\n");
        assert_eq!(both[0].1, PASSWORD_RULE);
        let long = bad_rows(&format!("{}\n", "a".repeat(33)));
        assert!(long[0].1.contains("not a valid user name"), "{}", long[0].1);
        let two = bad_rows("ana,b,c\n");
        assert!(two[0].1.starts_with("too many columns"), "{}", two[0].1);
        let several = bad_rows("a b,pw,c\n");
        assert!(
            several[0].1.starts_with("too many columns (3)")
                && several[0].1.contains("; \"a \"… is not a valid user name"),
            "{}",
            several[0].1
        );
        let err = parse_roster(input.as_bytes()).unwrap_err().to_string();
        assert!(
            err.starts_with("5 bad rows (lines 2, 3, 5, 6, 7); nothing was created"),
            "{err}"
        );
    }

    /// Empty columns after the second are a spreadsheet's, not data.
    #[test]
    fn trailing_empty_columns_are_ignored() {
        let rows = parse_roster(b"name,password,,\nana,pw,,\nbob,,,\n").unwrap();
        assert_eq!(
            summary(&rows),
            vec![(2, "ana", Some("pw")), (3, "bob", None)]
        );
        let bad = bad_rows("ana,pw,,x\n");
        assert_eq!(
            bad[0].1,
            "too many columns (4): give `name` or `name,password`"
        );
    }

    /// A file with no accounts, and one with too many rows, are refused
    /// as a whole.
    #[test]
    fn no_rows_and_too_many() {
        for input in ["", "\n\n", "name,password\n", ",,\n"] {
            assert_eq!(
                parse_roster(input.as_bytes()),
                Err(RosterError::NoRows),
                "{input:?}"
            );
        }
        let full: String = (0..MAX_ROSTER_ROWS).map(|i| format!("u{i}\n")).collect();
        assert_eq!(
            parse_roster(full.as_bytes()).unwrap().len(),
            MAX_ROSTER_ROWS
        );
        let over = format!("{full}one_more\n");
        assert_eq!(parse_roster(over.as_bytes()), Err(RosterError::TooManyRows));
    }

    /// Bytes that are not UTF-8 refuse their row (a file saved as
    /// Latin-1), with a hint; UTF-8 that is not a name is a bad name.
    #[test]
    fn not_utf8() {
        match parse_roster(b"ana\njos\xe9,x\n") {
            Err(RosterError::BadRows(bad)) => assert_eq!(
                bad,
                vec![BadRow {
                    line: 2,
                    reason: "not UTF-8 text: save the file as CSV UTF-8".into()
                }]
            ),
            other => panic!("{other:?}"),
        }
        let bad = bad_rows("jos\u{e9}\n");
        assert!(
            bad[0]
                .1
                .starts_with("\"jos\u{e9}\" is not a valid user name: '\u{e9}'"),
            "{}",
            bad[0].1
        );
    }

    /// `{:?}` of a row never shows its password.
    #[test]
    fn debug_hides_the_password() {
        let rows = parse_roster(b"ana,hunter2\n").unwrap();
        let shown = format!("{rows:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("<given>"), "{shown}");
    }
}
