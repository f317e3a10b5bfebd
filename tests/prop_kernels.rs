//! Every kernel against the scalar path: the same result (row, or error with its kind
//! and offset), the same bytes, and so the same error row, for generated DynamoDB JSON
//! (compact, as exports are, and spaced), for mutations of it, and for arbitrary bytes;
//! with every option set that changes what plain flattening writes.

mod common;

use common::{mutate, mutation};
use dynamo_flatten::flatten::differential::{compare, option_sets};
use dynamo_flatten::flatten::{Flattener, Kernel};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;

/// The kernels to compare with the scalar path: those this CPU runs.
fn kernels() -> Vec<Kernel> {
    Kernel::ALL
        .into_iter()
        .filter(|&k| k != Kernel::Scalar && k.is_available())
        .collect()
}

/// Flattens `input` with every kernel and every option set; each must give what the
/// scalar path gives.
fn same_as_scalar(input: &[u8]) -> Result<(), TestCaseError> {
    for opts in option_sets() {
        let mut scalar = Flattener::new(opts.clone());
        prop_assert!(scalar.set_kernel(Kernel::Scalar));
        for k in kernels() {
            let mut f = Flattener::new(opts.clone());
            prop_assert!(f.set_kernel(k));
            // Twice: a reused flattener (its buffers grown) gives the same again.
            for _ in 0..2 {
                compare(&mut scalar, &mut f, input)
                    .map_err(|e| TestCaseError::fail(format!("{opts:?}: {e}")))?;
            }
        }
    }
    Ok(())
}

/// A piece of string text for the UTF-8 checks: a character, an ASCII run, or a byte
/// sequence at an edge of UTF-8, valid or not.
fn text_piece() -> BoxedStrategy<Vec<u8>> {
    let edges: Vec<&[u8]> = vec![
        // Valid, at the ends of each class.
        b"\xc2\x80",
        b"\xdf\xbf",
        b"\xe0\xa0\x80",
        b"\xed\x9f\xbf",
        b"\xee\x80\x80",
        b"\xef\xbf\xbf",
        b"\xf0\x90\x80\x80",
        b"\xf4\x8f\xbf\xbf",
        // Overlong, surrogates, above U+10FFFF.
        b"\xc0\x80",
        b"\xc1\xbf",
        b"\xe0\x80\x80",
        b"\xe0\x9f\xbf",
        b"\xed\xa0\x80",
        b"\xed\xbf\xbf",
        b"\xf0\x80\x80\x80",
        b"\xf0\x8f\xbf\xbf",
        b"\xf4\x90\x80\x80",
        b"\xf5\x80\x80\x80",
        b"\xff",
        // Cut short, and continuation bytes alone.
        b"\xc2",
        b"\xe1\x80",
        b"\xf1\x80\x80",
        b"\x80",
        b"\xbf",
    ];
    prop_oneof![
        4 => any::<char>().prop_map(|c| c.to_string().into_bytes()),
        2 => "[a-z ]{1,70}".prop_map(String::into_bytes),
        1 => select(edges).prop_map(<[u8]>::to_vec),
    ]
    .prop_filter("no quote, backslash or control character", |p| {
        !p.iter().any(|&c| c == b'"' || c == b'\\' || c < 0x20)
    })
    .boxed()
}

// ---------------------------------------------------------------------------
// DynamoDB JSON as text.

/// A JSON string literal: plain text of every length (to cross the blocks), escapes
/// good and bad, raw control characters, non-ASCII text.
fn string_lit(bad: bool) -> BoxedStrategy<String> {
    let good = prop_oneof![
        8 => "[a-z0-9 #:.-]{1,12}",
        2 => "[a-z]{20,90}",
        1 => select(vec![
            "\\\"", "\\\\", "\\/", "\\b", "\\f", "\\n", "\\r", "\\t", "\\u00e9", "\\u0000",
            "\\ud83d\\ude00", "\\uD83D\\uDE00", "é", "ü", "中文", "🎁", "\u{7f}", "\u{2028}",
            "{\\\"S\\\":\\\"x\\\"}", "}", "]", ",", ":", "{", "[",
        ])
        .prop_map(String::from),
    ];
    let piece = if !bad {
        good.boxed()
    } else {
        prop_oneof![
        10 => good,
        1 => select(vec![
            "\\ud800", "\\udc00", "\\x", "\\u12g4", "\\", "\u{1}", "\t", "\n", "\u{1f}",
            "\\ud800\\u0041",
        ])
        .prop_map(String::from),
        ]
        .boxed()
    };
    vec(piece, 0..6)
        .prop_map(|ps| format!("\"{}\"", ps.concat()))
        .boxed()
}

fn number_text(bad: bool) -> BoxedStrategy<String> {
    let good = prop_oneof![
        6 => "-?(0|[1-9][0-9]{0,12})(\\.[0-9]{1,6})?",
        2 => "-?[1-9][0-9]{0,20}(\\.[0-9]{1,20})?([eE][+-]?[0-9]{1,2})?",
        1 => "[1-9][0-9]{36,37}",
    ];
    if !bad {
        return good.boxed();
    }
    prop_oneof![
        8 => good,
        1 => "[1-9][0-9]{36,39}",
        1 => select(vec![
            "0", "-0", "01", "1.", ".5", "-", "", "1e400", "1e-131", "1E+125", "1e126",
            "9.9999999999999999999999999999999999999E+125", "0.0000000000000001", "+1",
            "1.2.3", "0x10", "1e", "12345678901234567", "1234567890123456", "-.5", "\\u0031",
        ])
        .prop_map(String::from),
    ]
    .boxed()
}

fn key_lit() -> impl Strategy<Value = String> {
    prop_oneof![
        10 => "\"[a-z_]{1,12}\"",
        2 => "\"[a-z]{20,70}\"",
        1 => select(vec![
            "\"version\"", "\"is_deleted\"", "\"item_version\"", "\"item_is_deleted\"",
            "\"vers\\u0069on\"", "\"a\\\"b\"", "\"é\"", "\"\"", "\"Item\"", "\"eventName\"",
            "\"S\"", "\"M\"", "\"v\\\"\\\\é\"", "\"item_x\"", "\"NewImage\"",
            // The columns of the column-aware option set.
            "\"pk\"", "\"n\"", "\"m\"", "\"l\"", "\"b\"", "\"d\"", "\"z\"", "\"mp\"",
            "\"a_column_name_of_20\"", "\"a_column-name_of_20\"",
        ])
        .prop_map(String::from),
    ]
}

fn value_lit(bad: bool) -> BoxedStrategy<String> {
    let leaf = prop_oneof![
        4 => string_lit(bad).prop_map(|s| format!("{{\"S\":{s}}}")),
        4 => number_text(bad).prop_map(|n| format!("{{\"N\":\"{n}\"}}")),
        1 => "[A-Za-z0-9+/]{0,40}={0,2}".prop_map(|b| format!("{{\"B\":\"{b}\"}}")),
        1 => select(vec!["{\"BOOL\":true}", "{\"BOOL\":false}", "{\"NULL\":true}"])
            .prop_map(String::from),
        1 => vec(string_lit(bad), 0..4).prop_map(|v| format!("{{\"SS\":[{}]}}", v.join(","))),
        1 => vec(number_text(bad), 0..4).prop_map(|v| {
            let v: Vec<String> = v.iter().map(|n| format!("\"{n}\"")).collect();
            format!("{{\"NS\":[{}]}}", v.join(","))
        }),
        1 => vec("[A-Za-z0-9+/]{4}", 0..3)
            .prop_map(|v| format!("{{\"BS\":[\"{}\"]}}", v.join("\",\""))),
    ];
    let leaf = if bad {
        prop_oneof![9 => leaf, 1 => odd_value()].boxed()
    } else {
        leaf.boxed()
    };
    leaf.prop_recursive(8, 64, 6, |inner| {
        prop_oneof![
            vec((key_lit(), inner.clone()), 0..6).prop_map(|kv| {
                let m: Vec<String> = kv.iter().map(|(k, v)| format!("{k}:{v}")).collect();
                format!("{{\"M\":{{{}}}}}", m.join(","))
            }),
            vec(inner, 0..6).prop_map(|l| format!("{{\"L\":[{}]}}", l.join(","))),
        ]
    })
    .boxed()
}

/// Values the scalar path refuses, or that the kernels leave to it.
fn odd_value() -> impl Strategy<Value = String> {
    select(vec![
        "{\"BOOL\":true}",
        "{\"BOOL\":false}",
        "{\"NULL\":true}",
        "{\"NULL\":false}",
        "{\"BOOL\":null}",
        "{\"NULL\":1}",
        "{\"S\":1}",
        "{\"N\":1}",
        "{}",
        "{\"X\":1}",
        "{\"S\":\"a\",\"N\":\"1\"}",
        "{\"SS\":[]}",
        "{\"L\":[]}",
        "{\"M\":{}}",
        "{\"SS\":[1]}",
        "{\"NS\":[\"1\",\"x\"]}",
        "{\"BOOL\":tru}",
        "{\"BOOLEAN\":true}",
        "{\"S\" :\"a\"}",
        "{ \"S\":\"a\"}",
        "{\"S\":\"a\" }",
    ])
    .prop_map(String::from)
}

fn item_lit(bad: bool) -> impl Strategy<Value = String> {
    vec((key_lit(), value_lit(bad)), 0..8).prop_map(|kv| {
        let m: Vec<String> = kv.iter().map(|(k, v)| format!("{k}:{v}")).collect();
        format!("{{{}}}", m.join(","))
    })
}

/// A document around an item: bare, a full-export line, a change record.
fn document() -> impl Strategy<Value = String> {
    (any::<bool>().prop_flat_map(item_lit), 0..4u8).prop_map(|(item, shape)| match shape {
        0 => item,
        1 | 2 => format!("{{\"Item\":{item}}}"),
        _ => format!(
            "{{\"eventName\":\"INSERT\",\"dynamodb\":{{\"ApproximateCreationDateTime\":\
             1732406501000,\"Keys\":{{\"k\":{{\"S\":\"a\"}}}},\"NewImage\":{item}}}}}"
        ),
    })
}

/// Whitespace between some tokens: the kernels leave such documents to the scalar path.
fn spaced(doc: &str, seed: u64) -> String {
    let mut out = String::new();
    let mut in_string = false;
    let mut escaped = false;
    let mut x = seed | 1;
    for c in doc.chars() {
        out.push(c);
        if in_string {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
            continue;
        }
        if c == '"' {
            in_string = true;
        }
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        if x.is_multiple_of(5) && !in_string {
            out.push([' ', '\n', '\t', '\r'][(x >> 8) as usize % 4]);
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    #[test]
    fn kernels_write_what_the_scalar_path_writes(doc in document()) {
        same_as_scalar(doc.as_bytes())?;
    }

    #[test]
    fn kernels_agree_on_spaced_documents(doc in document(), seed in any::<u64>()) {
        same_as_scalar(spaced(&doc, seed).as_bytes())?;
    }

    #[test]
    fn kernels_agree_on_mutated_documents(doc in document(), muts in vec(mutation(), 1..4)) {
        same_as_scalar(&mutate(doc.into_bytes(), &muts).0)?;
    }

    #[test]
    fn kernels_agree_on_any_bytes(input in vec(any::<u8>(), 0..96)) {
        same_as_scalar(&input)?;
    }

    /// Export lines whose string values hold UTF-8 and not: every character, the
    /// sequences at the edges of UTF-8 (overlong, surrogate, too large, cut short, lone
    /// continuation bytes), across the windows of the pass that checks them.
    #[test]
    fn kernels_agree_on_export_lines_of_any_text(
        texts in vec(vec(text_piece(), 0..40), 1..5),
        pick in any::<u64>(),
    ) {
        let mut line = br#"{"Item":{"#.to_vec();
        for (k, text) in texts.iter().enumerate() {
            let text = text.concat();
            if k > 0 {
                line.push(b',');
            }
            // The text as a value, or as an attribute name.
            if pick >> k & 1 == 0 {
                line.extend(format!(r#""a{k}":{{"S":""#).as_bytes());
                line.extend(&text);
                line.extend(br#""}"#);
            } else {
                line.push(b'"');
                line.extend(&text);
                line.extend(format!(r#"{k}":{{"N":"{k}"}}"#).as_bytes());
            }
        }
        line.extend(b"}}");
        same_as_scalar(&line)?;
    }
}

/// The documents of the other tests, deep nesting, and every cut of a long line (each
/// ending falls at another place of a block).
#[test]
fn kernels_agree_on_every_prefix_and_on_deep_nesting() {
    let line = concat!(
        r#"{"Item":{"pk":{"S":"CUSTOMER#00012345"},"n":{"N":"-12345678901234567890.12"},"#,
        r#""t":{"S":"Zoë \"Bob\" \u00e9 \ud83d\ude00 and a text that is longer than one block of "#,
        r#"sixty-four bytes, to cross it"},"b":{"BOOL":false},"z":{"NULL":true},"#,
        r#""m":{"M":{"l":{"L":[{"N":"1E+3"},{"SS":["a","b"]},{"NS":["1","2.5"]},{"M":{}},"#,
        r#"{"L":[]}]}}},"bs":{"BS":["AAEC"]},"e":{"S":""}}}"#
    );
    for cut in 0..=line.len() {
        same_as_scalar(&line.as_bytes()[..cut]).unwrap();
    }
    for depth in [1, 10, 40, 47, 48, 49, 60, 79, 80, 81, 100] {
        let doc = format!(
            "{{\"a\":{}{{\"S\":\"x\"}}{}}}",
            "{\"L\":[".repeat(depth),
            "]}".repeat(depth)
        );
        same_as_scalar(doc.as_bytes()).unwrap();
        let doc = format!(
            "{{\"Item\":{{\"a\":{}{{\"N\":\"1\"}}{}}}}}",
            "{\"M\":{\"k\":".repeat(depth),
            "}}".repeat(depth)
        );
        same_as_scalar(doc.as_bytes()).unwrap();
    }
}

/// Export lines are read by the fast path before the UTF-8 check (none is needed when
/// they are all ASCII): lines with and without non-ASCII bytes, with invalid UTF-8 in
/// the item or after it, with more than the item, and with an item the fast path leaves
/// to the transcoder give what the scalar path gives; invalid UTF-8 stays an error.
#[test]
fn export_lines_read_before_the_utf8_check() {
    let lines: &[&[u8]] = &[
        br#"{"Item":{"a":{"S":"x"},"n":{"N":"1"}}}"#,
        "{\"Item\":{\"a\":{\"S\":\"Zo\u{eb}\"}}}".as_bytes(),
        b"{\"Item\":{\"a\":{\"S\":\"Zo\xff\"}}}",
        b"{\"Item\":{\"a\":{\"S\":\"Zo\xc3\"}}}",
        b"{\"Item\":{\"a\":{\"S\":\"x\"}}}\xff",
        b"{\"Item\":{\"a\":{\"S\":\"x\"}}} \n",
        b"{\"Item\":{\"a\":{\"S\":\"x\"}},\"b\":1}",
        b"{\"Item\":{\"a\":{\"S\":\"x\"}},\"\xff\":1}",
        br#"{"Item":{"version":{"N":"7"},"a":{"S":"x"}}}"#,
        b"{\"Item\":{\"version\":{\"N\":\"7\"},\"a\":{\"S\":\"\xe9\"}}}",
        br#"{"Item":{"a" : {"S":"x"}}}"#,
        br#"{"Item":{"a":{"S":"x"}}"#,
    ];
    for line in lines {
        same_as_scalar(line).unwrap();
    }
    for (k, line) in lines.iter().enumerate() {
        let mut f = Flattener::new(Default::default());
        let got = f.flatten(line, &mut Vec::new());
        let invalid = std::str::from_utf8(line).is_err();
        assert_eq!(
            matches!(&got, Err(e) if *e.kind() == dynamo_flatten::flatten::ErrorKind::InvalidUtf8),
            invalid,
            "line {k}: {got:?}"
        );
    }
}
