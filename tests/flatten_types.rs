//! The flatten core, type by type and shape by shape.

use dynamo_flatten::flatten::{
    write_error_row, ErrorKind, Flattener, KinesisBinary, NumberFormat, Options, Shape, ShapeHint,
};

fn flat_with(opts: Options, doc: &str) -> Result<String, ErrorKind> {
    let mut f = Flattener::new(opts);
    let mut out = b"prefix|".to_vec();
    match f.flatten(doc.as_bytes(), &mut out) {
        Ok(_) => Ok(String::from_utf8(out).unwrap()["prefix|".len()..].to_string()),
        Err(e) => {
            assert_eq!(out, b"prefix|", "output must be untouched on error");
            Err(e.kind().clone())
        }
    }
}

fn flat(doc: &str) -> String {
    flat_with(Options::default(), doc).unwrap_or_else(|e| panic!("{doc}: {e}"))
}

fn attrs_only() -> Options {
    Options {
        metadata: false,
        ..Options::default()
    }
}

fn attr(value: &str) -> String {
    flat_with(attrs_only(), &format!("{{\"a\":{value}}}"))
        .unwrap_or_else(|e| panic!("{value}: {e}"))
}

fn err(doc: &str) -> ErrorKind {
    flat_with(Options::default(), doc).expect_err(doc)
}

#[test]
fn scalar_types() {
    assert_eq!(attr(r#"{"S":"x"}"#), r#"{"a":"x"}"#);
    assert_eq!(attr(r#"{"S":""}"#), r#"{"a":""}"#);
    assert_eq!(attr(r#"{"N":"26"}"#), r#"{"a":26}"#);
    assert_eq!(attr(r#"{"B":"iVBORw0KGgo="}"#), r#"{"a":"iVBORw0KGgo="}"#);
    assert_eq!(attr(r#"{"BOOL":true}"#), r#"{"a":true}"#);
    assert_eq!(attr(r#"{"BOOL":false}"#), r#"{"a":false}"#);
    assert_eq!(attr(r#"{"NULL":true}"#), r#"{"a":null}"#);
}

#[test]
fn document_and_set_types() {
    assert_eq!(
        attr(r#"{"M":{"c":{"S":"Z"},"g":{"L":[{"N":"1"},{"BOOL":false}]}}}"#),
        r#"{"a":{"c":"Z","g":[1,false]}}"#
    );
    assert_eq!(attr(r#"{"M":{}}"#), r#"{"a":{}}"#);
    assert_eq!(attr(r#"{"L":[]}"#), r#"{"a":[]}"#);
    assert_eq!(attr(r#"{"SS":["x","y"]}"#), r#"{"a":["x","y"]}"#);
    assert_eq!(attr(r#"{"NS":["1.5","-7"]}"#), r#"{"a":[1.5,-7]}"#);
    assert_eq!(
        attr(r#"{"BS":["AAEC","/w=="]}"#),
        r#"{"a":["AAEC","/w=="]}"#
    );
}

#[test]
fn whitespace_is_dropped_strings_are_kept() {
    assert_eq!(
        attr("{ \"S\" :\t\"a b\\tc\\n\" }\r\n"),
        r#"{"a":"a b\tc\n"}"#
    );
}

#[test]
fn strings_keep_every_character() {
    for s in [
        r#"Zoë \"zee\" O'Neil"#,
        r#"\u674e\u96f7 \ud83d\ude80"#,
        "李雷 🚀",
        r#"tab\there\nnew\\line\/slash\b\f\r"#,
    ] {
        assert_eq!(
            attr(&format!(r#"{{"S":"{s}"}}"#)),
            format!(r#"{{"a":"{s}"}}"#)
        );
    }
}

#[test]
fn numbers_are_never_rewritten() {
    for n in [
        "1E+2",
        "-0.000001",
        "12345678901234567890123456789.123456789",
        "99999999999999999999999999999999999999",
        "1e100",
        "0",
        "-0",
    ] {
        assert_eq!(
            attr(&format!(r#"{{"N":"{n}"}}"#)),
            format!(r#"{{"a":{n}}}"#)
        );
        let s = flat_with(
            Options {
                numbers: NumberFormat::String,
                ..attrs_only()
            },
            &format!(r#"{{"a":{{"N":"{n}"}}}}"#),
        )
        .unwrap();
        assert_eq!(s, format!(r#"{{"a":"{n}"}}"#));
    }
    let hundred_one = format!("1{}", "0".repeat(100));
    assert_eq!(
        attr(&format!(r#"{{"N":"{hundred_one}"}}"#)),
        format!(r#"{{"a":{hundred_one}}}"#)
    );
}

#[test]
fn malformed_values_are_errors() {
    use ErrorKind::*;
    assert_eq!(err(""), Empty);
    assert_eq!(err("   "), Empty);
    assert_eq!(err("[1]"), NotAnObject);
    assert_eq!(err("{}"), EmptyItem);
    assert!(matches!(err(r#"{"a":{"X":"1"}}"#), UnknownTypeTag(t) if t == "X"));
    assert_eq!(err(r#"{"a":{"S":"x","N":"1"}}"#), TwoTypeTags);
    assert_eq!(err(r#"{"a":{}}"#), MissingTypeTag);
    assert!(matches!(
        err(r#"{"a":{"N":5}}"#),
        WrongValue { tag: "N", .. }
    ));
    for bad in ["12a", "", " 1", "+1", ".5", "1.", "0x1", "NaN", "1e", "--1"] {
        assert!(
            matches!(
                err(&format!(r#"{{"a":{{"N":"{bad}"}}}}"#)),
                InvalidNumber(_)
            ),
            "{bad}"
        );
    }
    assert!(matches!(err(r#"{"a":{"N":"\u0031"}}"#), InvalidNumber(_)));
    assert_eq!(err(r#"{"a":{"NULL":false}}"#), NullNotTrue);
    assert!(matches!(
        err(r#"{"a":{"BOOL":"true"}}"#),
        WrongValue { tag: "BOOL", .. }
    ));
    assert!(matches!(
        err(r#"{"a":{"SS":"x"}}"#),
        WrongValue { tag: "SS", .. }
    ));
    assert!(matches!(
        err(r#"{"a":{"SS":[1]}}"#),
        WrongValue { tag: "SS", .. }
    ));
    assert!(matches!(
        err(r#"{"a":{"M":[]}}"#),
        WrongValue { tag: "M", .. }
    ));
    assert!(matches!(
        err(r#"{"a":{"L":{}}}"#),
        WrongValue { tag: "L", .. }
    ));
    assert!(matches!(err(r#"{"a":"x"}"#), Expected { .. }));
    assert_eq!(err(r#"{"a":{"S":"tru"#), UnexpectedEnd);
    assert_eq!(err(r#"{"a":{"S":"x"}} {}"#), TrailingCharacters);
    assert_eq!(err("{\"a\":{\"S\":\"a\tb\"}}"), ControlCharacter);
    assert_eq!(err(r#"{"a":{"S":"\q"}}"#), InvalidEscape);
    // A missing colon is reported where it is missing.
    let mut f = Flattener::new(Options::default());
    for (doc, at) in [
        (r#"{"a":{"S" "x"}}"#, 10),
        (r#"{"a":{"BOOL"}}"#, 12),
        (r#"{"a" {"S":"x"}}"#, 5),
    ] {
        let e = f.flatten(doc.as_bytes(), &mut Vec::new()).unwrap_err();
        assert!(
            matches!(e.kind(), Expected { what: "':'", .. }),
            "{doc}: {e}"
        );
        assert_eq!(e.offset(), at, "{doc}");
    }
    let mut f = Flattener::new(Options::default());
    let e = f
        .flatten(b"{\"a\":{\"S\":\"\xff\"}}", &mut Vec::new())
        .unwrap_err();
    assert_eq!((e.kind(), e.offset()), (&InvalidUtf8, 11));
}

#[test]
fn nesting_depth() {
    // DynamoDB's 32 levels work.
    let mut v = r#"{"S":"leaf"}"#.to_string();
    for i in 0..32 {
        v = if i % 2 == 0 {
            format!(r#"{{"M":{{"k":{v}}}}}"#)
        } else {
            format!(r#"{{"L":[{v}]}}"#)
        };
    }
    let out = attr(&v);
    assert!(out.contains(r#""leaf""#));
    // Hostile depth is an error, not a crash.
    let deep = format!(
        r#"{{"a":{}{{"S":"x"}}{}}}"#,
        r#"{"L":["#.repeat(10_000),
        "]}".repeat(10_000)
    );
    assert_eq!(err(&deep), ErrorKind::TooDeep);
}

#[test]
fn export_line_and_snapshot_version() {
    let line = r#"{"Item":{"id":{"S":"a"},"age":{"N":"26"}}}"#;
    assert_eq!(
        flat(line),
        r#"{"id":"a","age":26,"version":0,"is_deleted":0}"#
    );
    let opts = Options {
        snapshot_version: 1_732_406_400_000_000,
        ..Options::default()
    };
    assert_eq!(
        flat_with(opts, line).unwrap(),
        r#"{"id":"a","age":26,"version":1732406400000000,"is_deleted":0}"#
    );
    // An item whose attributes include one named Item is a bare item.
    assert_eq!(
        flat(r#"{"Item":{"S":"x"},"id":{"S":"a"}}"#),
        r#"{"Item":"x","id":"a","version":0,"is_deleted":0}"#
    );
    // A bare item whose only attribute is Item needs the shape given.
    let opts = Options {
        shape: ShapeHint::Item,
        ..Options::default()
    };
    assert_eq!(
        flat_with(opts, r#"{"Item":{"S":"x"}}"#).unwrap(),
        r#"{"Item":"x","version":0,"is_deleted":0}"#
    );
}

#[test]
fn metadata_names_and_collisions() {
    let opts = Options {
        version_field: "_v".into(),
        deleted_field: "_del".into(),
        ..Options::default()
    };
    assert_eq!(
        flat_with(opts, r#"{"id":{"S":"a"}}"#).unwrap(),
        r#"{"id":"a","_v":0,"_del":0}"#
    );
    assert_eq!(
        flat(r#"{"version":{"N":"7"},"is_deleted":{"BOOL":true},"id":{"S":"a"}}"#),
        r#"{"item_version":7,"item_is_deleted":true,"id":"a","version":0,"is_deleted":0}"#
    );
    // Nested attributes are not renamed: they do not collide.
    assert_eq!(
        flat(r#"{"m":{"M":{"version":{"N":"7"}}}}"#),
        r#"{"m":{"version":7},"version":0,"is_deleted":0}"#
    );
    assert!(matches!(
        err(r#"{"version":{"N":"7"},"item_version":{"N":"8"}}"#),
        ErrorKind::MetadataCollision(n) if n == "version"
    ));
    assert!(matches!(
        err(r#"{"item_version":{"N":"8"},"vers\u0069on":{"N":"7"}}"#),
        ErrorKind::MetadataCollision(_)
    ));
    // Without metadata nothing is renamed.
    assert_eq!(
        flat_with(attrs_only(), r#"{"version":{"N":"7"}}"#).unwrap(),
        r#"{"version":7}"#
    );
}

const KDS_INSERT_US: &str = r#"{"awsRegion":"us-east-1","eventID":"e1","eventName":"INSERT","userIdentity":null,"recordFormat":"application/json","tableName":"people","dynamodb":{"ApproximateCreationDateTime":1732406500123456,"Keys":{"id":{"S":"3"}},"NewImage":{"id":{"S":"3"},"age":{"N":"33"}},"SizeBytes":99,"ApproximateCreationDateTimePrecision":"MICROSECOND"},"eventSource":"aws:dynamodb"}"#;

fn shape_of(doc: &str) -> (Shape, u64, bool, String) {
    let mut f = Flattener::new(Options::default());
    let mut out = Vec::new();
    let r = f
        .flatten(doc.as_bytes(), &mut out)
        .unwrap_or_else(|e| panic!("{doc}: {e}"));
    (
        r.shape,
        r.version,
        r.deleted,
        String::from_utf8(out).unwrap(),
    )
}

#[test]
fn kinesis_records() {
    let (shape, v, d, out) = shape_of(KDS_INSERT_US);
    assert_eq!(
        (shape, v, d),
        (Shape::Kinesis, 1_732_406_500_123_456, false)
    );
    assert_eq!(
        out,
        r#"{"id":"3","age":33,"version":1732406500123456,"is_deleted":0}"#
    );
    // No precision field: milliseconds.
    let ms = r#"{"eventName":"MODIFY","dynamodb":{"ApproximateCreationDateTime":1732406501000,"Keys":{"id":{"S":"0"}},"NewImage":{"id":{"S":"0"},"age":{"N":"27"}},"OldImage":{"id":{"S":"0"},"age":{"N":"26"}}}}"#;
    let (_, v, d, out) = shape_of(ms);
    assert_eq!((v, d), (1_732_406_501_000_000, false));
    assert!(out.contains(r#""age":27"#));
    // MILLISECOND given explicitly.
    let ms2 = ms.replace(
        r#""ApproximateCreationDateTime":1732406501000,"#,
        r#""ApproximateCreationDateTime":1732406501000,"ApproximateCreationDateTimePrecision":"MILLISECOND","#,
    );
    assert_eq!(shape_of(&ms2).1, 1_732_406_501_000_000);
    // REMOVE: the old image, flagged deleted; TTL deletes alike.
    let remove = r#"{"eventName":"REMOVE","userIdentity":{"type":"Service","principalId":"dynamodb.amazonaws.com"},"dynamodb":{"ApproximateCreationDateTime":1732406503000001,"ApproximateCreationDateTimePrecision":"MICROSECOND","Keys":{"id":{"S":"2"}},"OldImage":{"id":{"S":"2"},"n":{"N":"1"}}}}"#;
    let (_, v, d, out) = shape_of(remove);
    assert_eq!((v, d), (1_732_406_503_000_001, true));
    assert_eq!(
        out,
        r#"{"id":"2","n":1,"version":1732406503000001,"is_deleted":1}"#
    );
    // REMOVE without an old image: the keys.
    let keys_only = r#"{"eventName":"REMOVE","dynamodb":{"ApproximateCreationDateTime":5,"ApproximateCreationDateTimePrecision":"MICROSECOND","Keys":{"id":{"S":"2"}}}}"#;
    assert_eq!(
        shape_of(keys_only).3,
        r#"{"id":"2","version":5,"is_deleted":1}"#
    );
}

#[test]
fn kinesis_binary_is_unwrapped_once() {
    // "EgIIew==" is the base64 of the bytes; Kinesis records carry base64 of that.
    let rec = r#"{"eventName":"INSERT","recordFormat":"application/json","dynamodb":{"ApproximateCreationDateTime":1,"ApproximateCreationDateTimePrecision":"MICROSECOND","NewImage":{"id":{"S":"1"},"b":{"B":"RWdJSWV3PT0="},"bs":{"BS":["RWdJSWV3PT0="]}}}}"#;
    assert!(shape_of(rec)
        .3
        .contains(r#""b":"EgIIew==","bs":["EgIIew=="]"#));
    let as_is = Options {
        kinesis_binary: KinesisBinary::AsIs,
        ..Options::default()
    };
    assert!(flat_with(as_is, rec)
        .unwrap()
        .contains(r#""b":"RWdJSWV3PT0=""#));
    // Single-encoded binary in a Kinesis record is an error, not a silent change.
    let single = rec.replace("RWdJSWV3PT0=", "EgIIew==");
    assert_eq!(err(&single), ErrorKind::BinaryNotDoubleEncoded);
}

#[test]
fn streams_records_are_in_seconds() {
    let rec = r#"{"eventID":"1","eventName":"MODIFY","eventVersion":"1.1","eventSource":"aws:dynamodb","awsRegion":"us-east-1","dynamodb":{"ApproximateCreationDateTime":1732406510,"Keys":{"id":{"S":"0"}},"NewImage":{"id":{"S":"0"},"b":{"B":"EgIIew=="}},"SequenceNumber":"1100000000000136137170","SizeBytes":60,"StreamViewType":"NEW_AND_OLD_IMAGES"}}"#;
    let (shape, v, d, out) = shape_of(rec);
    assert_eq!(
        (shape, v, d),
        (Shape::Streams, 1_732_406_510_000_000, false)
    );
    assert!(
        out.contains(r#""b":"EgIIew==""#),
        "Streams binary is single-encoded"
    );
    let fractional = rec.replace("1732406510,", "1568013979.0,");
    assert_eq!(shape_of(&fractional).1, 1_568_013_979_000_000);
}

#[test]
fn incremental_export_lines() {
    let upsert = r#"{"Metadata":{"WriteTimestampMicros":{"N":"1732406600000123"}},"Keys":{"id":{"S":"0"}},"NewImage":{"id":{"S":"0"},"age":{"N":"29"}},"OldImage":{"id":{"S":"0"},"age":{"N":"28"}}}"#;
    let (shape, v, d, out) = shape_of(upsert);
    assert_eq!(
        (shape, v, d),
        (Shape::Incremental, 1_732_406_600_000_123, false)
    );
    assert_eq!(
        out,
        r#"{"id":"0","age":29,"version":1732406600000123,"is_deleted":0}"#
    );
    let delete =
        r#"{"Metadata":{"WriteTimestampMicros":{"N":"1732406600500000"}},"Keys":{"id":{"S":"3"}}}"#;
    assert_eq!(
        shape_of(delete).3,
        r#"{"id":"3","version":1732406600500000,"is_deleted":1}"#
    );
}

#[test]
fn change_record_errors() {
    use ErrorKind::*;
    assert!(matches!(
        err(r#"{"eventName":"UPSERT","dynamodb":{"ApproximateCreationDateTime":1}}"#),
        UnknownEventName(n) if n == "UPSERT"
    ));
    assert_eq!(
        err(
            r#"{"eventName":"MODIFY","dynamodb":{"ApproximateCreationDateTime":1,"Keys":{"id":{"S":"1"}}}}"#
        ),
        NoNewImage("MODIFY")
    );
    assert!(matches!(
        err(r#"{"eventName":"INSERT","dynamodb":{"NewImage":{"id":{"S":"1"}}}}"#),
        MissingField(_)
    ));
    assert!(matches!(
        err(
            r#"{"eventName":"INSERT","dynamodb":{"ApproximateCreationDateTime":-5,"NewImage":{"id":{"S":"1"}}}}"#
        ),
        BadTimestamp(_)
    ));
    assert!(matches!(
        err(
            r#"{"eventName":"INSERT","dynamodb":{"ApproximateCreationDateTime":5,"ApproximateCreationDateTimePrecision":"NANOSECOND","NewImage":{"id":{"S":"1"}}}}"#
        ),
        BadPrecision(_)
    ));
    assert_eq!(err(r#"{"Records":[]}"#), LambdaEvent);
    assert_eq!(err(r#"{"eventName":"INSERT"}"#), MissingField("dynamodb"));
    // An item may have an attribute named eventName.
    assert!(flat_with(Options::default(), r#"{"eventName":{"S":"x"}}"#).is_ok());
    let opts = Options {
        shape: ShapeHint::Change,
        ..Options::default()
    };
    assert!(matches!(
        flat_with(opts, r#"{"id":{"S":"1"}}"#),
        Err(WrongShape(_))
    ));
}

#[test]
fn error_rows_are_json_and_routable() {
    let mut f = Flattener::new(Options::default());
    let input = b"{\"a\":{\"X\":\"\xff\"\"}}";
    let e = f.flatten(input, &mut Vec::new()).unwrap_err();
    let mut out = Vec::new();
    write_error_row(&e, input, &mut out);
    let s = String::from_utf8(out).unwrap();
    assert!(
        s.starts_with(r#"{"_error":"invalid UTF-8 at byte 11","_input":"#),
        "{s}"
    );
    let v: serde_json::Value = serde_json::from_str(&s).unwrap();
    assert_eq!(v["_input"], "{\"a\":{\"X\":\"\u{fffd}\"\"}}");
    // Long inputs are cut.
    let long = format!("[{}]", "1,".repeat(1000));
    let e = f.flatten(long.as_bytes(), &mut Vec::new()).unwrap_err();
    let mut out = Vec::new();
    write_error_row(&e, long.as_bytes(), &mut out);
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["_input"].as_str().unwrap().len(), 256);
}

/// Every flatten mode a row can be read in (the shape is detected).
fn every_mode() -> Vec<Options> {
    vec![
        Options::default(),
        Options {
            numbers: NumberFormat::String,
            ..Options::default()
        },
        attrs_only(),
        Options {
            kinesis_binary: KinesisBinary::AsIs,
            snapshot_version: 9,
            ..Options::default()
        },
    ]
}

/// The `_error` text of the error row for `doc`, in every mode (all must agree).
fn error_text(doc: &str) -> String {
    let mut texts = every_mode().into_iter().map(|opts| {
        let e = Flattener::new(opts)
            .flatten(doc.as_bytes(), &mut Vec::new())
            .expect_err(doc);
        let mut row = Vec::new();
        write_error_row(&e, doc.as_bytes(), &mut row);
        let v: serde_json::Value = serde_json::from_slice(&row).unwrap();
        v["_error"].as_str().unwrap().to_string()
    });
    let first = texts.next().unwrap();
    for t in texts {
        assert_eq!(t, first, "{doc}");
    }
    first
}

const LONE_SURROGATE: &str =
    "string has a \\u escape that is not valid Unicode (a lone surrogate); \
                              DynamoDB cannot store such a string";

#[test]
fn lone_surrogates_are_error_rows() {
    let kds = |image: &str, id: &str| {
        format!(
            r#"{{"eventID":"{id}","eventName":"INSERT","dynamodb":{{"ApproximateCreationDateTime":1,"NewImage":{image}}}}}"#
        )
    };
    let cases: Vec<(String, usize)> = vec![
        // S value, alone, with text after it, before a non-surrogate escape.
        (r#"{"a":{"S":"\ud800"}}"#.into(), 11),
        (r#"{"a":{"S":"x\ud800yz"}}"#.into(), 12),
        (r#"{"a":{"S":"\ud83d\n"}}"#.into(), 11),
        (r#"{"a":{"S":"\ud83d\u0041"}}"#.into(), 11),
        (r#"{"a":{"S":"\udc00"}}"#.into(), 11),
        (r#"{"a":{"S":"\ude00\ud83d"}}"#.into(), 11),
        // Attribute names, first and later, map keys, set elements, lists.
        (r#"{"\ud800":{"S":"x"}}"#.into(), 2),
        (r#"{"id":{"S":"x"},"k\udfff":{"S":"x"}}"#.into(), 18),
        (r#"{"m":{"M":{"\udbff":{"N":"1"}}}}"#.into(), 12),
        (r#"{"s":{"SS":["ok","\ud800"]}}"#.into(), 18),
        (r#"{"l":{"L":[{"S":"\ud800"}]}}"#.into(), 17),
        (r#"{"n":{"N":"\ud800"}}"#.into(), 11),
        // Export lines and envelopes, in their own fields too.
        (r#"{"Item":{"a":{"S":"\ud800"}}}"#.into(), 19),
        (kds(r#"{"a":{"S":"\ud800"}}"#, "e"), 102),
        (kds(r#"{"a":{"S":"b"}}"#, "\\udc00"), 12),
    ];
    for (doc, at) in &cases {
        assert_eq!(
            error_text(doc),
            format!("{LONE_SURROGATE} at byte {at}"),
            "{doc}"
        );
        assert_eq!(err(doc), ErrorKind::InvalidUnicodeEscape, "{doc}");
    }
}

#[test]
fn surrogate_pairs_are_kept_verbatim() {
    for s in [
        r#"\ud83d\ude00"#,
        r#"\uD83D\uDE00"#,
        r#"a\ud800\udc00b\udbff\udfff"#,
        r#"\u00e9\ud7ff\ue000\uffff"#,
    ] {
        for opts in every_mode() {
            let doc = format!(r#"{{"k{s}":{{"S":"{s}"}},"m":{{"M":{{"{s}":{{"SS":["{s}"]}}}}}}}}"#);
            let row = flat_with(opts, &doc).unwrap_or_else(|e| panic!("{doc}: {e}"));
            assert!(
                row.starts_with(&format!(r#"{{"k{s}":"{s}","m":{{"{s}":["{s}"]}}"#)),
                "{row}"
            );
            let v: serde_json::Value = serde_json::from_str(&row).unwrap();
            assert!(v.is_object());
        }
    }
}

#[test]
fn numbers_outside_dynamodb_range_are_error_rows() {
    let nines38 = "9".repeat(38);
    let bad = [
        "1e400".to_string(),
        "-1e400".into(),
        "1e126".into(),
        "10E+125".into(),
        "1e-131".into(),
        "-0.1E-130".into(),
        "1e99999999999999999999".into(),
        "1e-99999999999999999999".into(),
        format!("{nines38}9"),
        format!("-1.{}1", "0".repeat(37)),
        format!("1{}", "0".repeat(126)),
    ];
    for n in &bad {
        for doc in [
            format!(r#"{{"a":{{"N":"{n}"}}}}"#),
            format!(r#"{{"a":{{"NS":["1","{n}"]}}}}"#),
            format!(r#"{{"Item":{{"a":{{"L":[{{"N":"{n}"}}]}}}}}}"#),
        ] {
            assert!(
                matches!(err(&doc), ErrorKind::NumberOutOfRange(t) if t == n[..n.len().min(64)]),
                "{doc}"
            );
        }
    }
    assert_eq!(
        error_text(r#"{"id":{"S":"a"},"n":{"N":"1e400"}}"#),
        "N value \"1e400\" is outside DynamoDB's range (at most 38 significant digits, \
         magnitude 0 or 1E-130 to 9.9999999999999999999999999999999999999E+125) at byte 26"
    );
    let d39 = "123456789012345678901234567890123456789";
    assert_eq!(
        error_text(&format!(r#"{{"n":{{"N":"{d39}"}}}}"#)),
        format!(
            "N value \"{d39}\" is outside DynamoDB's range (at most 38 significant digits, \
             magnitude 0 or 1E-130 to 9.9999999999999999999999999999999999999E+125) at byte 11"
        )
    );
    // Long text is shown cut, as for other bad numbers.
    let long = format!("1{}", "0".repeat(200));
    assert!(
        matches!(err(&format!(r#"{{"a":{{"N":"{long}"}}}}"#)), ErrorKind::NumberOutOfRange(t) if t == long[..64])
    );
    // Malformed text is still "not a number".
    assert!(matches!(
        err(r#"{"a":{"N":"1e"}}"#),
        ErrorKind::InvalidNumber(_)
    ));
}

#[test]
fn numbers_at_dynamodb_limits_pass_unchanged() {
    let nines38 = "9".repeat(38);
    let good = [
        "0".to_string(),
        "-0".into(),
        "0.000".into(),
        "0e999".into(),
        "1E+125".into(),
        "-1E+125".into(),
        "9.9999999999999999999999999999999999999E+125".into(),
        "-9.9999999999999999999999999999999999999E+125".into(),
        format!("{nines38}E+88"),
        "1E-130".into(),
        "-1E-130".into(),
        "10e-131".into(),
        format!("0.{}1", "0".repeat(129)),
        "100000000000000000000000000000000000000000".into(),
        format!("1{}", "0".repeat(125)),
        nines38.clone(),
        format!("-0.00{nines38}00"),
        "12345678901234567890123456789.123456789".into(),
    ];
    for n in &good {
        for opts in every_mode() {
            let strings = opts.numbers == NumberFormat::String;
            let row = flat_with(
                opts,
                &format!(r#"{{"a":{{"N":"{n}"}},"s":{{"NS":["{n}"]}}}}"#),
            )
            .unwrap_or_else(|e| panic!("{n}: {e}"));
            let shown = if strings {
                format!("\"{n}\"")
            } else {
                n.clone()
            };
            assert!(
                row.starts_with(&format!(r#"{{"a":{shown},"s":[{shown}]"#)),
                "{row}"
            );
            // A strict parser takes the row: every DynamoDB number fits a double.
            let v: serde_json::Value = serde_json::from_str(&row).unwrap();
            assert!(v.is_object());
        }
    }
}

fn permutations<T: Clone>(v: &[T]) -> Vec<Vec<T>> {
    if v.len() <= 1 {
        return vec![v.to_vec()];
    }
    let mut all = Vec::new();
    for i in 0..v.len() {
        let mut rest = v.to_vec();
        let first = rest.remove(i);
        for mut p in permutations(&rest) {
            p.insert(0, first.clone());
            all.push(p);
        }
    }
    all
}

/// What flattening a document gives, up to the order of the keys of the row.
#[derive(Debug, PartialEq)]
enum Outcome {
    Row(Shape, u64, bool, serde_json::Value),
    Error(ErrorKind),
}

fn outcome(opts: &Options, doc: &str) -> Outcome {
    let mut f = Flattener::new(opts.clone());
    let mut out = Vec::new();
    match f.flatten(doc.as_bytes(), &mut out) {
        Ok(r) => {
            // locate() reads the document by the same rules.
            let loc = f.locate(doc.as_bytes()).unwrap();
            assert_eq!(
                (loc.shape, loc.version, loc.deleted),
                (r.shape, r.version, r.deleted)
            );
            let v = serde_json::from_slice(&out).unwrap();
            Outcome::Row(r.shape, r.version, r.deleted, v)
        }
        Err(e) => Outcome::Error(e.kind().clone()),
    }
}

#[test]
fn shape_does_not_depend_on_key_order() {
    use ErrorKind::*;
    const NEW: &str = r#"{"id":{"S":"a"},"n":{"N":"1"}}"#;
    const DDB: &str = r#"{"ApproximateCreationDateTime":1732406500123456,"ApproximateCreationDateTimePrecision":"MICROSECOND","Keys":{"id":{"S":"a"}},"NewImage":{"id":{"S":"a"},"n":{"N":"1"}}}"#;
    type Members = Vec<(&'static str, &'static str)>;
    let docs: Vec<(Members, Result<Shape, ErrorKind>)> = vec![
        // Items whose attributes are named like envelope keys.
        (
            vec![("id", r#"{"S":"a"}"#), ("Records", r#"{"N":"1"}"#)],
            Ok(Shape::Item),
        ),
        (
            vec![
                ("Records", r#"{"L":[]}"#),
                ("eventName", r#"{"S":"INSERT"}"#),
                (
                    "dynamodb",
                    r#"{"M":{"ApproximateCreationDateTime":{"N":"1"}}}"#,
                ),
                ("Metadata", r#"{"M":{"WriteTimestampMicros":{"N":"1"}}}"#),
                ("Keys", r#"{"M":{"id":{"S":"a"}}}"#),
                ("id", r#"{"S":"a"}"#),
            ],
            Ok(Shape::Item),
        ),
        (
            vec![
                ("Metadata", r#"{"NULL":true}"#),
                ("NewImage", r#"{"BOOL":false}"#),
                ("OldImage", r#"{"SS":["x"]}"#),
                ("Item", r#"{"S":"x"}"#),
            ],
            Ok(Shape::Item),
        ),
        (
            vec![("Item", r#"{"S":"x"}"#), ("eventID", r#"{"N":"2"}"#)],
            Ok(Shape::Item),
        ),
        // Envelopes with other keys.
        (
            vec![
                ("eventName", r#""INSERT""#),
                ("dynamodb", DDB),
                ("eventID", r#""e1""#),
                ("awsRegion", r#""us-east-1""#),
                ("id", r#"{"S":"not the image"}"#),
                ("eventSource", r#""aws:dynamodb""#),
            ],
            Ok(Shape::Kinesis),
        ),
        (
            vec![
                ("eventName", r#""MODIFY""#),
                ("eventVersion", r#""1.1""#),
                ("x", "[1]"),
                (
                    "dynamodb",
                    r#"{"ApproximateCreationDateTime":1732406510,"Keys":{"id":{"S":"a"}},"NewImage":{"id":{"S":"a"}}}"#,
                ),
            ],
            Ok(Shape::Streams),
        ),
        (
            vec![
                (
                    "Metadata",
                    r#"{"WriteTimestampMicros":{"N":"1732406600000123"}}"#,
                ),
                ("Keys", r#"{"id":{"S":"a"}}"#),
                ("NewImage", NEW),
                ("OldImage", r#"{"id":{"S":"a"}}"#),
                ("Records", r#"{"N":"1"}"#),
            ],
            Ok(Shape::Incremental),
        ),
        (
            vec![
                (
                    "Metadata",
                    r#"{"WriteTimestampMicros":{"N":"1732406600000123"}}"#,
                ),
                ("Keys", r#"{"id":{"S":"a"}}"#),
            ],
            Ok(Shape::Incremental),
        ),
        // Errors are the same error in every order.
        (
            vec![("Records", "[]"), ("id", r#"{"S":"a"}"#)],
            Err(LambdaEvent),
        ),
        (
            vec![
                ("id", r#"{"S":"a"}"#),
                ("eventName", r#""UPSERT""#),
                ("dynamodb", DDB),
            ],
            Err(UnknownEventName("UPSERT".into())),
        ),
        (
            vec![("id", r#"{"S":"a"}"#), ("eventName", r#""INSERT""#)],
            Err(MissingField("dynamodb")),
        ),
        (
            vec![
                ("a", r#"{"S":"x"}"#),
                ("b", r#"{"N":"1e400"}"#),
                ("Keys", r#"{"S":"x"}"#),
            ],
            Err(NumberOutOfRange("1e400".into())),
        ),
    ];
    let opts = [Options::default(), every_mode().remove(1)];
    for (members, want) in &docs {
        let text = |m: &[(&str, &str)]| {
            let body: Vec<String> = m.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
            format!("{{{}}}", body.join(","))
        };
        for o in &opts {
            let first = outcome(o, &text(members));
            match (&first, want) {
                (Outcome::Row(shape, ..), Ok(s)) => assert_eq!(shape, s, "{}", text(members)),
                (Outcome::Error(e), Err(w)) => assert_eq!(e, w, "{}", text(members)),
                _ => panic!("{}: {first:?}", text(members)),
            }
            for p in permutations(members) {
                assert_eq!(outcome(o, &text(&p)), first, "{}", text(&p));
            }
        }
    }
}

#[test]
fn a_spaced_tag_is_read_to_its_own_closing_quote() {
    // `{"S" :":x"}`: the short tag reader once took `"S" :"` as the four-byte tag `S" :`.
    assert_eq!(attr(r#"{"S" :":x"}"#), r#"{"a":":x"}"#);
    assert_eq!(attr(r#"{"N" :"1"}"#), r#"{"a":1}"#);
    assert_eq!(attr(r#"{"SS" :[":a\"b"]}"#), r#"{"a":[":a\"b"]}"#);
    assert_eq!(attr(r#"{"S" :"\":"}"#), r#"{"a":"\":"}"#);
}
