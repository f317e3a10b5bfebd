//! The `dynamo-flatten` program as ClickHouse drives it: blocks on stdin,
//! answers on stdout, in both executable modes and every format.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_dynamo-flatten");

fn spawn(args: &[&str]) -> Child {
    Command::new(BIN)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start dynamo-flatten")
}

fn varint(mut v: usize, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn rowbinary(rows: &[&[u8]]) -> Vec<u8> {
    let mut b = Vec::new();
    for r in rows {
        varint(r.len(), &mut b);
        b.extend_from_slice(r);
    }
    b
}

fn read_rowbinary_string(r: &mut impl Read) -> String {
    let (mut len, mut shift) = (0usize, 0);
    loop {
        let mut byte = [0u8];
        r.read_exact(&mut byte).expect("read length");
        len |= usize::from(byte[0] & 0x7f) << shift;
        shift += 7;
        if byte[0] & 0x80 == 0 {
            break;
        }
    }
    let mut v = vec![0; len];
    r.read_exact(&mut v).expect("read value");
    String::from_utf8(v).expect("utf-8 output")
}

/// Reads `n` RowBinary strings on a thread, failing if they do not arrive in
/// time: the program must answer a block without waiting for end of input.
fn answer_within(stdout: ChildStdout, n: usize) -> (Vec<String>, ChildStdout) {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut s = stdout;
        let rows: Vec<String> = (0..n).map(|_| read_rowbinary_string(&mut s)).collect();
        let _ = tx.send((rows, s));
    });
    rx.recv_timeout(Duration::from_secs(10))
        .expect("the block was not answered while stdin stayed open")
}

const A: &[u8] = br#"{"Item":{"id":{"S":"a"},"n":{"N":"1"}}}"#;
const B: &[u8] = br#"{"Item":{"id":{"S":"b"},"n":{"N":"2"}}}"#;
const BAD: &[u8] = b"{\"Item\":{\"id\":{\"N\":5}}}";

#[test]
fn pool_mode_with_chunk_header_answers_each_block() {
    let mut child = spawn(&["--format", "RowBinary", "--chunk-header"]);
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    for block in 0..3 {
        let rows: Vec<&[u8]> = if block == 1 { vec![B] } else { vec![A, BAD, B] };
        let mut msg = format!("{}\n", rows.len()).into_bytes();
        msg.extend(rowbinary(&rows));
        stdin.write_all(&msg).unwrap();
        stdin.flush().unwrap();
        let (got, s) = answer_within(stdout, rows.len());
        stdout = s;
        assert_eq!(got.len(), rows.len());
        if block != 1 {
            assert_eq!(got[0], r#"{"id":"a","n":1,"version":0,"is_deleted":0}"#);
            assert!(got[1].starts_with(r#"{"_error":"N value must be a string at byte 19""#));
            assert_eq!(got[2], r#"{"id":"b","n":2,"version":0,"is_deleted":0}"#);
        }
    }
    drop(stdin);
    let mut rest = Vec::new();
    stdout.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty(), "no stray output after the last block");
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert!(out.stderr.is_empty(), "quiet stderr: {:?}", out.stderr);
}

#[test]
fn pool_mode_without_header_answers_rows_as_they_come() {
    let mut child = spawn(&["--format", "RowBinary"]);
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    for _ in 0..3 {
        stdin.write_all(&rowbinary(&[A, B])).unwrap();
        stdin.flush().unwrap();
        let (got, s) = answer_within(stdout, 2);
        stdout = s;
        assert!(got[0].contains(r#""id":"a""#) && got[1].contains(r#""id":"b""#));
    }
    drop(stdin);
    assert!(child.wait().unwrap().success());
}

#[test]
fn executable_mode_many_rows_one_answer_each() {
    let n = 50_000;
    let mut input = Vec::new();
    for i in 0..n {
        let doc = format!(r#"{{"Item":{{"id":{{"S":"r{i}"}},"n":{{"N":"{i}"}}}}}}"#);
        varint(doc.len(), &mut input);
        input.extend_from_slice(doc.as_bytes());
    }
    let mut child = spawn(&[]);
    let mut stdin = child.stdin.take().unwrap();
    let writer = thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(out.status.success());
    let mut r = &out.stdout[..];
    for i in 0..n {
        let row = read_rowbinary_string(&mut r);
        assert_eq!(
            row,
            format!(r#"{{"id":"r{i}","n":{i},"version":0,"is_deleted":0}}"#)
        );
    }
    assert!(r.is_empty());
}

#[test]
fn tab_separated_unescapes_and_escapes() {
    // ClickHouse escapes backslashes in TabSeparated: the JSON text
    // {"Item":{"s":{"S":"q\"t\tb\\"}}} arrives with every backslash doubled.
    let json = r#"{"Item":{"s":{"S":"q\"t\tb\\"}}}"#;
    let tsv = json.replace('\\', "\\\\");
    let mut child = spawn(&["--format", "TabSeparated", "--chunk-header"]);
    let mut stdin = child.stdin.take().unwrap();
    write!(stdin, "2\n{tsv}\nnot json\n").unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2);
    let want = r#"{"s":"q\"t\tb\\","version":0,"is_deleted":0}"#.replace('\\', "\\\\");
    assert_eq!(lines[0], want);
    assert!(lines[1].starts_with(r#"{"_error":"expected a JSON object at byte 0""#));
}

#[test]
fn lines_mode_keeps_one_line_per_line() {
    let mut child = spawn(&["--lines", "--numbers", "string"]);
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(b"{\"a\":{\"N\":\"1\"}}\r\n\n{\"a\":{\"N\":\"2\"}}")
        .unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines,
        [
            r#"{"a":"1","version":0,"is_deleted":0}"#,
            r#"{"_error":"empty input at byte 0","_input":""}"#,
            r#"{"a":"2","version":0,"is_deleted":0}"#,
        ]
    );
}

/// Rows many times the read buffer's size, between short ones, in both framings: the
/// buffer grows for them and every row is answered whole.
#[test]
fn rows_larger_than_the_read_buffer_are_answered_whole() {
    let value = |len: usize| "é".repeat(len / 2);
    let big = |v: &str| format!(r#"{{"Item":{{"id":{{"S":"{v}"}}}}}}"#);
    let flat = |v: &str| format!(r#"{{"id":"{v}","version":0,"is_deleted":0}}"#);
    let (v1, v2) = (value(3 << 20), value(700_000));
    let (b1, b2) = (big(&v1), big(&v2));
    let rows: [&[u8]; 5] = [A, b1.as_bytes(), B, b2.as_bytes(), A];
    let a = r#"{"id":"a","n":1,"version":0,"is_deleted":0}"#.to_string();
    let b = r#"{"id":"b","n":2,"version":0,"is_deleted":0}"#.to_string();
    let expected = [a.clone(), flat(&v1), b, flat(&v2), a];
    // Lines.
    let mut child = spawn(&["--lines"]);
    let mut stdin = child.stdin.take().unwrap();
    let input = rows.join(&b'\n');
    let writer = thread::spawn(move || stdin.write_all(&input).unwrap());
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let got: Vec<&str> = text.lines().collect();
    assert_eq!(got.len(), rows.len());
    for (g, w) in got.iter().zip(&expected) {
        assert!(g == w, "a row of {} bytes differs", w.len());
    }
    // RowBinary.
    let mut child = spawn(&[]);
    let mut stdin = child.stdin.take().unwrap();
    let input = rowbinary(&rows);
    let writer = thread::spawn(move || stdin.write_all(&input).unwrap());
    let mut stdout = child.stdout.take().unwrap();
    for w in &expected {
        let g = read_rowbinary_string(&mut stdout);
        assert!(g == *w, "a row of {} bytes differs", w.len());
    }
    writer.join().unwrap();
    assert!(child.wait().unwrap().success());
}

#[test]
fn on_error_fail_names_the_row_and_reason() {
    let mut child = spawn(&["--chunk-header", "--on-error", "fail"]);
    let mut stdin = child.stdin.take().unwrap();
    let mut msg = b"3\n".to_vec();
    msg.extend(rowbinary(&[A, B, BAD]));
    stdin.write_all(&msg).unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("row 3 (row 3 of block 1): N value must be a string at byte 19"),
        "{err}"
    );
}

#[test]
fn framing_errors_are_reported() {
    // Truncated RowBinary row.
    let mut child = spawn(&[]);
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"\x10{\"a\"").unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("input ended inside a row"));
    // A header where none belongs.
    let mut child = spawn(&["--chunk-header"]);
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"{\"a\":1}\n").unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("expected a chunk header"));
}

#[test]
fn unexpected_chunk_header_fails_instead_of_shifting_rows() {
    let mut child = spawn(&["--format", "TabSeparated"]);
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"1\n{\"a\":{\"S\":\"x\"}}\n").unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("needs --chunk-header"));
}

#[test]
fn broken_pipe_exits_quietly() {
    let mut child = spawn(&["--lines"]);
    let mut stdin = child.stdin.take().unwrap();
    drop(child.stdout.take());
    let line = b"{\"a\":{\"S\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}}\n".repeat(100_000);
    let _ = stdin.write_all(&line);
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{:?}", out.status);
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn help_explains_every_argument() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout.clone()).unwrap();
    for flag in [
        "--format",
        "--lines",
        "--chunk-header",
        "--on-error",
        "--numbers",
        "--version-field",
        "--deleted-field",
        "--snapshot-version",
        "--no-metadata",
        "--shape",
        "--kinesis-binary",
    ] {
        assert!(help.contains(flag), "--help lacks {flag}");
    }
    let reader = BufReader::new(&out.stdout[..]);
    assert!(reader.lines().count() > 30);
}
