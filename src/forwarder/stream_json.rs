//! DynamoDB Streams records as JSON: the shape of a record in a Lambda event, which the
//! flatten core reads (`eventName`, `dynamodb.ApproximateCreationDateTime` in seconds,
//! `Keys`, `NewImage`, `OldImage`). Pure.
//!
//! Every value is written as DynamoDB JSON exactly as the SDK holds it: numbers as their
//! text, binary as base64 once (a Lambda event's encoding; the Kinesis destination encodes
//! it twice). Map keys are sorted, so the same record gives the same bytes in every run.
//! What the SDK could not read (a type newer than it, which the SDK's `Unknown` stands
//! for and no test can build) is written with the type tag `?`: the core then refuses the
//! record and it reaches the errors table, not nowhere.

use std::collections::HashMap;

use aws_sdk_dynamodbstreams::primitives::DateTime;
use aws_sdk_dynamodbstreams::types::{AttributeValue, Record};
use base64::Engine;

/// Appends `r` as one JSON object; `arn` is the stream's ARN (`eventSourceARN`).
pub fn write_record(r: &Record, arn: &str, out: &mut Vec<u8>) {
    out.push(b'{');
    let mut field = Keys::default();
    if let Some(id) = r.event_id() {
        field.key(out, "eventID");
        string(out, id);
    }
    if let Some(name) = r.event_name() {
        field.key(out, "eventName");
        string(out, name.as_str());
    }
    field.key(out, "eventVersion");
    string(out, r.event_version().unwrap_or("1.1"));
    field.key(out, "eventSource");
    string(out, r.event_source().unwrap_or("aws:dynamodb"));
    if let Some(region) = r.aws_region() {
        field.key(out, "awsRegion");
        string(out, region);
    }
    if let Some(d) = r.dynamodb() {
        field.key(out, "dynamodb");
        out.push(b'{');
        let mut inner = Keys::default();
        if let Some(t) = d.approximate_creation_date_time() {
            inner.key(out, "ApproximateCreationDateTime");
            seconds(out, t);
        }
        for (name, image) in [
            ("Keys", d.keys()),
            ("NewImage", d.new_image()),
            ("OldImage", d.old_image()),
        ] {
            if let Some(m) = image {
                inner.key(out, name);
                map(out, m);
            }
        }
        if let Some(seq) = d.sequence_number() {
            inner.key(out, "SequenceNumber");
            string(out, seq);
        }
        if let Some(size) = d.size_bytes() {
            inner.key(out, "SizeBytes");
            out.extend_from_slice(itoa::Buffer::new().format(size).as_bytes());
        }
        if let Some(view) = d.stream_view_type() {
            inner.key(out, "StreamViewType");
            string(out, view.as_str());
        }
        out.push(b'}');
    }
    field.key(out, "eventSourceARN");
    string(out, arn);
    if let Some(who) = r.user_identity() {
        // TTL deletions: {"principalId":"dynamodb.amazonaws.com","type":"Service"}.
        field.key(out, "userIdentity");
        out.push(b'{');
        let mut keys = Keys::default();
        for (k, v) in [("principalId", who.principal_id()), ("type", who.r#type())] {
            if let Some(v) = v {
                keys.key(out, k);
                string(out, v);
            }
        }
        out.push(b'}');
    }
    out.push(b'}');
}

/// The keys of one JSON object: a comma before every key but the first.
#[derive(Default)]
struct Keys {
    started: bool,
}

impl Keys {
    fn key(&mut self, out: &mut Vec<u8>, name: &str) {
        if self.started {
            out.push(b',');
        }
        self.started = true;
        string(out, name);
        out.push(b':');
    }
}

/// A time as seconds since the epoch, with the fraction to the microsecond when there is
/// one (AWS gives whole seconds; moto milliseconds). The SDK reads `1796206046.853` through
/// a float, as 1796206046.852999925: rounding to the nearest microsecond gives back the
/// time the service wrote.
fn seconds(out: &mut Vec<u8>, t: &DateTime) {
    let mut secs = t.secs();
    let mut micros = (t.subsec_nanos() + 500) / 1000;
    if micros >= 1_000_000 {
        secs += 1;
        micros -= 1_000_000;
    }
    out.extend_from_slice(itoa::Buffer::new().format(secs).as_bytes());
    if micros > 0 {
        let mut frac = format!("{micros:06}");
        while frac.ends_with('0') {
            frac.pop();
        }
        out.push(b'.');
        out.extend_from_slice(frac.as_bytes());
    }
}

/// An attribute map, keys sorted.
fn map(out: &mut Vec<u8>, m: &HashMap<String, AttributeValue>) {
    let mut entries: Vec<(&String, &AttributeValue)> = m.iter().collect();
    entries.sort_unstable_by_key(|(k, _)| *k);
    out.push(b'{');
    let mut keys = Keys::default();
    for (k, v) in entries {
        keys.key(out, k);
        value(out, v);
    }
    out.push(b'}');
}

/// One attribute value: `{"T":…}`.
fn value(out: &mut Vec<u8>, v: &AttributeValue) {
    let tag = |out: &mut Vec<u8>, t: &[u8]| {
        out.extend_from_slice(b"{\"");
        out.extend_from_slice(t);
        out.extend_from_slice(b"\":");
    };
    match v {
        AttributeValue::S(s) => {
            tag(out, b"S");
            string(out, s);
        }
        AttributeValue::N(n) => {
            tag(out, b"N");
            string(out, n);
        }
        AttributeValue::B(b) => {
            tag(out, b"B");
            blob(out, b.as_ref());
        }
        AttributeValue::Ss(list) => {
            tag(out, b"SS");
            array(out, list, |out, s| string(out, s));
        }
        AttributeValue::Ns(list) => {
            tag(out, b"NS");
            array(out, list, |out, s| string(out, s));
        }
        AttributeValue::Bs(list) => {
            tag(out, b"BS");
            array(out, list, |out, b| blob(out, b.as_ref()));
        }
        AttributeValue::M(m) => {
            tag(out, b"M");
            map(out, m);
        }
        AttributeValue::L(list) => {
            tag(out, b"L");
            array(out, list, value);
        }
        AttributeValue::Null(b) => {
            tag(out, b"NULL");
            out.extend_from_slice(if *b { b"true" } else { b"false" });
        }
        AttributeValue::Bool(b) => {
            tag(out, b"BOOL");
            out.extend_from_slice(if *b { b"true" } else { b"false" });
        }
        _ => {
            tag(out, b"?");
            string(out, "a type this build's AWS SDK cannot read");
        }
    }
    out.push(b'}');
}

fn array<T>(out: &mut Vec<u8>, items: &[T], mut each: impl FnMut(&mut Vec<u8>, &T)) {
    out.push(b'[');
    for (i, x) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        each(out, x);
    }
    out.push(b']');
}

fn blob(out: &mut Vec<u8>, b: &[u8]) {
    out.push(b'"');
    let mut text = String::new();
    base64::engine::general_purpose::STANDARD.encode_string(b, &mut text);
    out.extend_from_slice(text.as_bytes());
    out.push(b'"');
}

/// A JSON string (serde_json's escaping).
fn string(out: &mut Vec<u8>, s: &str) {
    // Writing into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flatten::{Flattener, Options};
    use aws_sdk_dynamodbstreams::primitives::Blob;
    use aws_sdk_dynamodbstreams::types::{Identity, OperationType, StreamRecord, StreamViewType};

    fn every_type() -> HashMap<String, AttributeValue> {
        let s = |v: &str| AttributeValue::S(v.into());
        let n = |v: &str| AttributeValue::N(v.into());
        HashMap::from([
            ("id".to_string(), s("p-1")),
            ("text".to_string(), s("Zoë \"zee\" \\ \u{1F680}\n")),
            (
                "big".to_string(),
                n("12345678901234567890123456789012345678"),
            ),
            ("tiny".to_string(), n("-1E-130")),
            (
                "bin".to_string(),
                AttributeValue::B(Blob::new(vec![0u8, 255, 16])),
            ),
            (
                "ss".to_string(),
                AttributeValue::Ss(vec!["a".into(), "".into()]),
            ),
            (
                "ns".to_string(),
                AttributeValue::Ns(vec![
                    "1".into(),
                    "9.9999999999999999999999999999999999999E+125".into(),
                ]),
            ),
            (
                "bs".to_string(),
                AttributeValue::Bs(vec![Blob::new(b"hi".to_vec())]),
            ),
            (
                "m".to_string(),
                AttributeValue::M(HashMap::from([
                    (
                        "z".to_string(),
                        AttributeValue::L(vec![n("1"), AttributeValue::Null(true)]),
                    ),
                    ("a".to_string(), AttributeValue::Bool(false)),
                ])),
            ),
            ("nul".to_string(), AttributeValue::Null(true)),
            ("yes".to_string(), AttributeValue::Bool(true)),
        ])
    }

    fn record(event: OperationType, seconds: f64) -> Record {
        let keys = HashMap::from([("id".to_string(), AttributeValue::S("p-1".into()))]);
        let mut d = StreamRecord::builder()
            .approximate_creation_date_time(DateTime::from_secs_f64(seconds))
            .set_keys(Some(keys))
            .sequence_number("000000000000000000042")
            .size_bytes(321)
            .stream_view_type(StreamViewType::NewAndOldImages);
        if event != OperationType::Remove {
            d = d.set_new_image(Some(every_type()));
        } else {
            d = d.set_old_image(Some(every_type()));
        }
        Record::builder()
            .event_id("e1")
            .event_name(event)
            .aws_region("eu-west-1")
            .dynamodb(d.build())
            .build()
    }

    /// The flattened row, as text and parsed (serde_json's numbers are f64: compare those
    /// in the text).
    fn flat(line: &[u8]) -> (String, serde_json::Value) {
        let mut f = Flattener::new(Options::default());
        let mut out = Vec::new();
        match f.flatten(line, &mut out) {
            Ok(_) => (
                String::from_utf8_lossy(&out).into_owned(),
                serde_json::from_slice(&out).unwrap_or(serde_json::Value::Null),
            ),
            Err(e) => panic!("{e}: {}", String::from_utf8_lossy(line)),
        }
    }

    #[test]
    fn a_record_reads_back_through_the_core_value_for_value() {
        let arn = "arn:aws:dynamodb:eu-west-1:1:table/people/stream/2026-12-01T00:00:00.000";
        let mut line = Vec::new();
        write_record(
            &record(OperationType::Modify, 1_764_000_000.0),
            arn,
            &mut line,
        );
        let doc: serde_json::Value = serde_json::from_slice(&line).unwrap_or_default();
        assert_eq!(doc["eventName"], "MODIFY");
        assert_eq!(doc["eventSourceARN"], arn);
        assert_eq!(
            doc["dynamodb"]["ApproximateCreationDateTime"],
            1_764_000_000
        );
        assert_eq!(doc["dynamodb"]["NewImage"]["bin"]["B"], "AP8Q");
        assert_eq!(doc["dynamodb"]["SequenceNumber"], "000000000000000000042");
        let (text, row) = flat(&line);
        assert_eq!(row["version"], 1_764_000_000_000_000u64);
        assert_eq!(row["is_deleted"], 0);
        assert_eq!(row["text"], "Zoë \"zee\" \\ \u{1F680}\n");
        // Numbers keep every digit; binary is decoded once.
        assert!(
            text.contains(r#""big":12345678901234567890123456789012345678,"#),
            "{text}"
        );
        assert!(text.contains(r#""tiny":-1E-130,"#), "{text}");
        assert!(
            text.contains(r#""ns":[1,9.9999999999999999999999999999999999999E+125]"#),
            "{text}"
        );
        assert_eq!(row["bin"], "AP8Q");
        assert_eq!(row["bs"], serde_json::json!(["aGk="]));
        assert_eq!(row["ss"], serde_json::json!(["a", ""]));
        assert_eq!(row["m"], serde_json::json!({"a": false, "z": [1, null]}));
        assert_eq!(row["nul"], serde_json::Value::Null);
        assert_eq!(row["yes"], true);
    }

    #[test]
    fn the_same_record_gives_the_same_bytes_and_a_removal_is_a_delete() {
        let (mut a, mut b) = (Vec::new(), Vec::new());
        write_record(
            &record(OperationType::Remove, 1_764_000_000.25),
            "arn",
            &mut a,
        );
        write_record(
            &record(OperationType::Remove, 1_764_000_000.25),
            "arn",
            &mut b,
        );
        assert_eq!(a, b, "map keys are sorted");
        let (_, row) = flat(&a);
        assert_eq!(row["is_deleted"], 1);
        // A fraction of a second (moto gives milliseconds) is kept in the version.
        assert_eq!(row["version"], 1_764_000_000_250_000u64);
    }

    #[test]
    fn times_are_rounded_to_the_microsecond_the_service_wrote() {
        let text = |t: DateTime| {
            let mut out = Vec::new();
            seconds(&mut out, &t);
            String::from_utf8_lossy(&out).into_owned()
        };
        assert_eq!(
            text(DateTime::from_secs_f64(1_796_206_046.853)),
            "1796206046.853"
        );
        assert_eq!(
            text(DateTime::from_secs_and_nanos(1_796_206_046, 852_999_925)),
            "1796206046.853"
        );
        assert_eq!(text(DateTime::from_secs_and_nanos(7, 999_999_600)), "8");
        assert_eq!(text(DateTime::from_secs(1_764_000_000)), "1764000000");
        assert_eq!(text(DateTime::from_secs_and_nanos(1, 120_000)), "1.00012");
    }

    #[test]
    fn a_ttl_deletion_names_the_service() {
        let r = record(OperationType::Insert, 1.0);
        let r = Record::builder()
            .set_event_id(r.event_id().map(str::to_string))
            .event_name(OperationType::Remove)
            .set_dynamodb(r.dynamodb().cloned())
            .user_identity(
                Identity::builder()
                    .principal_id("dynamodb.amazonaws.com")
                    .r#type("Service")
                    .build(),
            )
            .build();
        let mut line = Vec::new();
        write_record(&r, "arn", &mut line);
        let doc: serde_json::Value = serde_json::from_slice(&line).unwrap_or_default();
        assert_eq!(
            doc["userIdentity"],
            serde_json::json!({"principalId": "dynamodb.amazonaws.com", "type": "Service"})
        );
    }
}
