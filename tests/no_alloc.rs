//! Once its buffers have grown, the flattener allocates nothing per row.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::Arc;

use dynamo_flatten::flatten::{ColumnPlan, Flattener, NumberFormat, Options};

struct Counting;

thread_local! {
    // Per thread: the test harness's other threads may allocate while the test runs.
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

fn count() {
    // `try_with`: the allocator also runs while a thread's locals are being torn down.
    let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
}

fn allocations() -> usize {
    ALLOCATIONS.with(Cell::get)
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const DOCS: &[&str] = &[
    r#"{"Item":{"id":{"S":"a"},"n":{"N":"12345678901234567890123456789.123456789"},"m":{"M":{"l":{"L":[{"BOOL":true},{"NULL":true}]}}},"ss":{"SS":["x","y"]},"ns":{"NS":["1","2"]},"b":{"B":"AAEC"},"bs":{"BS":["AAEC"]},"version":{"N":"1"}}}"#,
    r#"{"id":{"S":"bare \"item\" \u00e9"},"n":{"N":"1E+2"}}"#,
    r#"{"Metadata":{"WriteTimestampMicros":{"N":"1732406600000123"}},"Keys":{"id":{"S":"0"}},"NewImage":{"id":{"S":"0"},"age":{"N":"29"}}}"#,
    r#"{"awsRegion":"us-east-1","eventName":"MODIFY","recordFormat":"application/json","dynamodb":{"ApproximateCreationDateTime":1732406501000,"Keys":{"id":{"S":"0"}},"NewImage":{"id":{"S":"0"},"b":{"B":"RWdJSWV3PT0="}}}}"#,
    r#"{"eventName":"REMOVE","eventVersion":"1.1","dynamodb":{"ApproximateCreationDateTime":1732406510,"Keys":{"id":{"S":"0"}},"SequenceNumber":"1"}}"#,
];

#[test]
fn steady_state_rows_do_not_allocate() {
    let plan = ColumnPlan::parse(
        "id String, n Decimal(38, 9), m JSON, ss Array(String), ns Array(UInt8), \
         b String, age Float32, item_version Int64",
    )
    .unwrap();
    let option_sets = [
        Options::default(),
        Options {
            numbers: NumberFormat::String,
            ..Options::default()
        },
        Options {
            columns: Some(Arc::new(plan)),
            ..Options::default()
        },
    ];
    for opts in option_sets {
        let mut f = Flattener::new(opts);
        let mut out = Vec::new();
        let start = allocations();
        // Let every buffer reach its size.
        for d in DOCS {
            out.clear();
            f.flatten(d.as_bytes(), &mut out).expect(d);
        }
        let before = allocations();
        assert!(before > start, "the counter sees the warm-up's allocations");
        for _ in 0..100 {
            for d in DOCS {
                out.clear();
                f.flatten(d.as_bytes(), &mut out).expect(d);
            }
        }
        let after = allocations();
        assert_eq!(after - before, 0, "allocations in 500 rows");
    }
}
