//! What a ClickHouse error says about the rows of an insert. Pure.
//!
//! Only an error that can only come from the rows themselves may send rows to the errors
//! table: a server that is unwell (a UDF that times out, a view broken by DDL, memory,
//! a new error code) must never be taken for bad data, or good records would be
//! dead-lettered while the destination stops changing. So the rule is an allow-list:
//! a refusal is about the data only when the server's code, and every code it wraps
//! (`… Original error: Code: N …`, as a UDF or a view passes on the error under it),
//! is in [`DATA_CODES`]. Anything else is retried as is, without end.
//!
//! Even a data code can come from the server's side (a view that throws for every row
//! after an `ALTER`); the breaker in [`super::breaker`] catches that case.

/// Server error codes that mean "these rows cannot be stored", with why. Names as in
/// ClickHouse's `errorCodeToName` (a test checks them against the engine).
pub(crate) const DATA_CODES: &[(u32, &str, &str)] = &[
    (
        6,
        "CANNOT_PARSE_TEXT",
        "a value's text does not parse as its column's type",
    ),
    (
        19,
        "SIZE_OF_FIXED_STRING_DOESNT_MATCH",
        "a value is longer than its FixedString column",
    ),
    (
        25,
        "CANNOT_PARSE_ESCAPE_SEQUENCE",
        "a string holds a bad escape",
    ),
    (
        26,
        "CANNOT_PARSE_QUOTED_STRING",
        "a string value is cut or badly quoted",
    ),
    (
        27,
        "CANNOT_PARSE_INPUT_ASSERTION_FAILED",
        "the row's text is not in the insert's format",
    ),
    (38, "CANNOT_PARSE_DATE", "a value is not a date"),
    (
        41,
        "CANNOT_PARSE_DATETIME",
        "a value is not a date and time",
    ),
    (
        53,
        "TYPE_MISMATCH",
        "a value has a type its column cannot take",
    ),
    (
        69,
        "ARGUMENT_OUT_OF_BOUND",
        "a value is outside what a function of a view accepts",
    ),
    (
        70,
        "CANNOT_CONVERT_TYPE",
        "a value does not convert to its column's type",
    ),
    (72, "CANNOT_PARSE_NUMBER", "a value is not a number"),
    (
        117,
        "INCORRECT_DATA",
        "the row is malformed (bad JSON, an unknown field)",
    ),
    (
        128,
        "TOO_LARGE_ARRAY_SIZE",
        "an array is larger than the server allows",
    ),
    (
        130,
        "CANNOT_READ_ARRAY_FROM_TEXT",
        "a value is not an array",
    ),
    (
        131,
        "TOO_LARGE_STRING_SIZE",
        "a string is larger than the server allows",
    ),
    (
        190,
        "SIZES_OF_ARRAYS_DONT_MATCH",
        "arrays that must have one length differ",
    ),
    (
        321,
        "VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE",
        "a number is out of its column's range",
    ),
    (
        349,
        "CANNOT_INSERT_NULL_IN_ORDINARY_COLUMN",
        "a null value for a column that is not Nullable",
    ),
    (376, "CANNOT_PARSE_UUID", "a value is not a UUID"),
    (
        395,
        "FUNCTION_THROW_IF_VALUE_IS_NON_ZERO",
        "a view's throwIf check refused the row",
    ),
    (
        407,
        "DECIMAL_OVERFLOW",
        "a number does not fit its Decimal column",
    ),
    (
        441,
        "CANNOT_PARSE_DOMAIN_VALUE_FROM_STRING",
        "a value is not an IP address",
    ),
    (467, "CANNOT_PARSE_BOOL", "a value is not a Bool"),
    (
        469,
        "VIOLATED_CONSTRAINT",
        "the row breaks a CONSTRAINT of the table",
    ),
];

/// The leading `Code: N.` of a server message.
pub(crate) fn leading_code(message: &str) -> Option<u32> {
    let at = message.find("Code: ")?;
    number_at(&message[at + 6..])
}

/// Every code the message carries: the leading one, then those after each
/// `Original error: Code: `, outermost first.
pub(crate) fn codes(message: &str) -> Vec<u32> {
    const WRAPPED: &str = "Original error: Code: ";
    let mut out: Vec<u32> = leading_code(message).into_iter().collect();
    let mut rest = message;
    while let Some(at) = rest.find(WRAPPED) {
        rest = &rest[at + WRAPPED.len()..];
        if let Some(code) = number_at(rest) {
            out.push(code);
        }
    }
    out
}

fn number_at(s: &str) -> Option<u32> {
    let end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    s[..end].parse().ok()
}

/// The name of data code `code` ("" for another code), for logs.
pub(crate) fn data_code_name(code: u32) -> &'static str {
    DATA_CODES
        .iter()
        .find(|(c, _, _)| *c == code)
        .map_or("", |(_, name, _)| name)
}

/// Whether `code` is in [`DATA_CODES`].
pub(crate) fn is_data_code(code: u32) -> bool {
    !data_code_name(code).is_empty()
}

/// The code a server refusal is about the rows with: `Some(code)` (the innermost) when
/// every code of the message is a data code, `None` when the message is not about the
/// rows (no code at all, or any code off the list).
pub(crate) fn data_refusal(message: &str) -> Option<u32> {
    let codes = codes(message);
    let innermost = *codes.last()?;
    codes.iter().all(|&c| is_data_code(c)).then_some(innermost)
}

/// Codes that no retry can fix when the forwarder starts: the user, the password, the
/// database or the rights are wrong. (Once running, they are retried: an operator may be
/// rotating a password.)
pub(crate) const START_UP_FATAL_CODES: &[(u32, &str)] = &[
    (81, "UNKNOWN_DATABASE"),
    (192, "UNKNOWN_USER"),
    (193, "WRONG_PASSWORD"),
    (194, "REQUIRED_PASSWORD"),
    (195, "IP_ADDRESS_NOT_ALLOWED"),
    (291, "DATABASE_ACCESS_DENIED"),
    (497, "ACCESS_DENIED"),
    (516, "AUTHENTICATION_FAILED"),
];

/// Whether a message's leading code is one of [`START_UP_FATAL_CODES`].
pub(crate) fn is_start_up_fatal(message: &str) -> bool {
    leading_code(message).is_some_and(|c| START_UP_FATAL_CODES.iter().any(|(f, _)| *f == c))
}

#[cfg(test)]
mod tests {
    use super::*;

    const UDF_TIMEOUT: &str = "Code: 754. DB::Exception: Executable UDF dynamo_flatten failed: \
        Original error: Code: 159. DB::Exception: Timeout exceeded: elapsed 10.0 seconds, \
        maximum: 10. (TIMEOUT_EXCEEDED) (version 26.9.1.1)";

    #[test]
    fn reads_the_leading_and_the_wrapped_codes() {
        assert_eq!(
            leading_code("Code: 395. DB::Exception: Value passed to 'throwIf'"),
            Some(395)
        );
        assert_eq!(
            leading_code("bad response: Code: 60. DB::Exception: Unknown table"),
            Some(60)
        );
        assert_eq!(leading_code("connection refused"), None);
        assert_eq!(codes(UDF_TIMEOUT), vec![754, 159]);
        assert_eq!(
            codes("Code: 27. A: Original error: Code: 6. B: Original error: Code: 72. C"),
            vec![27, 6, 72]
        );
    }

    #[test]
    fn only_data_codes_all_the_way_down_are_refusals_of_the_rows() {
        // A view's check, a parse error, a parse error under a view's wrapper.
        assert_eq!(data_refusal("Code: 395. DB::Exception: poison"), Some(395));
        assert_eq!(
            data_refusal("Code: 117. DB::Exception: Unknown field"),
            Some(117)
        );
        assert_eq!(
            data_refusal("Code: 27. DB::Exception: x: Original error: Code: 72. y"),
            Some(72)
        );
        // Sick servers: a UDF timeout (a data-looking wrapper does not help), a broken
        // view, memory, a code this list does not know, no code at all.
        assert_eq!(data_refusal(UDF_TIMEOUT), None);
        assert_eq!(
            data_refusal("Code: 53. A: Original error: Code: 241. B"),
            None
        );
        assert_eq!(
            data_refusal("Code: 47. DB::Exception: Unknown identifier"),
            None
        );
        assert_eq!(data_refusal("Code: 241. DB::Exception: Memory limit"), None);
        assert_eq!(data_refusal("Code: 2999. DB::Exception: new"), None);
        assert_eq!(data_refusal("<html>502 Bad Gateway</html>"), None);
    }

    #[test]
    fn the_lists_are_sorted_and_without_repeats() {
        assert!(DATA_CODES.windows(2).all(|w| w[0].0 < w[1].0));
        assert!(START_UP_FATAL_CODES.windows(2).all(|w| w[0].0 < w[1].0));
        assert!(START_UP_FATAL_CODES.iter().all(|(c, _)| !is_data_code(*c)));
    }

    #[test]
    fn start_up_fatal_codes() {
        assert!(is_start_up_fatal(
            "Code: 516. DB::Exception: default: Authentication failed"
        ));
        assert!(is_start_up_fatal(
            "Code: 81. DB::Exception: Database nope does not exist"
        ));
        assert!(!is_start_up_fatal("Code: 60. DB::Exception: Unknown table"));
        assert!(!is_start_up_fatal("connection refused"));
    }
}
