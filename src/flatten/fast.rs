//! The fast path of plain flattening: one pass over an item's attribute map. The quotes,
//! backslashes and control characters of a 64-byte window are found at once (SSE2, AVX2
//! or AVX-512; eight bytes in a `u64` elsewhere) and a string's end is then a bit scan of
//! the window's mask; each type wrapper (`{"S":"`, `{"BOOL":`, …) is recognised with one
//! word compare and deleted, `S`, `N` and `B` values along one path (only `N` text is
//! checked); strings are copied 64 bytes at a time. Nested `M` and `L` values are followed
//! with a stack of one bit per level instead of recursion, so that the whole walk is one
//! function, compiled once per instruction set.
//!
//! It accepts a subset of what the [`Transcoder`](super::item::Transcoder) accepts:
//! compact DynamoDB JSON (no whitespace between tokens), attribute names without
//! escapes, no top-level attribute named like a metadata field, fewer than
//! [`MAX_LEVELS`] nested containers. For those it writes exactly the bytes the
//! transcoder writes. For anything else, errors included, it gives up ([`Bail`]) having
//! written nothing, and the caller runs the transcoder on the same item, which writes
//! the row or finds the error as it always did.

use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicU8, Ordering};

use super::item::Reserved;
use super::number::dynamo_number;
use super::scan::{is_json_number, u_escape};

/// Room left in the output after what the walk writes: its copies write up to 64 bytes
/// at a time.
const PAD: usize = 64;

/// Containers (`M` maps and `L` lists) nested in the item beyond which the fast path
/// gives up: far below what the transcoder allows (see [`super::MAX_JSON_DEPTH`]), and
/// one bit each in a `u64`.
const MAX_LEVELS: usize = 48;

/// The fast path gave up: the transcoder decides.
#[derive(Debug)]
pub(crate) struct Bail;

/// Which code flattens plain rows. Every kernel writes the same bytes; they differ in
/// speed only. [`Kernel::detected`] is the fastest one the CPU runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kernel {
    /// The transcoder alone (the reference).
    Scalar,
    /// The fast path, eight bytes at a time in a `u64`.
    Swar,
    /// The fast path, 16 bytes at a time (SSE2, every x86_64 CPU).
    Sse2,
    /// The fast path, 32 bytes at a time (AVX2).
    Avx2,
    /// The fast path, 64 bytes at a time (AVX-512BW).
    Avx512,
}

impl Kernel {
    /// Every kernel, available here or not.
    pub const ALL: [Kernel; 5] = [
        Kernel::Scalar,
        Kernel::Swar,
        Kernel::Sse2,
        Kernel::Avx2,
        Kernel::Avx512,
    ];

    /// Whether this CPU runs it.
    pub fn is_available(self) -> bool {
        match self {
            Kernel::Scalar | Kernel::Swar => true,
            #[cfg(target_arch = "x86_64")]
            Kernel::Sse2 => true,
            // Every feature its functions are compiled with (`run_avx2`, `run_avx512`).
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 => {
                std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("bmi1")
                    && std::arch::is_x86_feature_detected!("popcnt")
            }
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512 => {
                Kernel::Avx2.is_available()
                    && std::arch::is_x86_feature_detected!("bmi2")
                    && std::arch::is_x86_feature_detected!("avx512f")
                    && std::arch::is_x86_feature_detected!("avx512bw")
            }
            #[cfg(not(target_arch = "x86_64"))]
            _ => false,
        }
    }

    /// The kernel used by default: the widest this CPU runs (AVX-512, else AVX2, else
    /// SSE2, else eight bytes at a time), found once per process.
    pub fn detected() -> Kernel {
        static DETECTED: AtomicU8 = AtomicU8::new(u8::MAX);
        let k = DETECTED.load(Ordering::Relaxed);
        if let Some(&kernel) = Kernel::ALL.get(usize::from(k)) {
            return kernel;
        }
        let kernel = [Kernel::Avx512, Kernel::Avx2, Kernel::Sse2, Kernel::Swar]
            .into_iter()
            .find(|k| k.is_available())
            .unwrap_or(Kernel::Scalar);
        let index = Kernel::ALL.iter().position(|&k| k == kernel).unwrap_or(0);
        DETECTED.store(index as u8, Ordering::Relaxed);
        kernel
    }

    /// The kernel of a name: `scalar`, `swar`, `sse2`, `avx2`, `avx512`.
    pub fn from_name(name: &str) -> Option<Kernel> {
        Kernel::ALL.into_iter().find(|k| k.name() == name)
    }

    pub fn name(self) -> &'static str {
        match self {
            Kernel::Scalar => "scalar",
            Kernel::Swar => "swar",
            Kernel::Sse2 => "sse2",
            Kernel::Avx2 => "avx2",
            Kernel::Avx512 => "avx512",
        }
    }
}

/// Transcodes the attribute map at the start of `item` (the document from the map's `{`
/// on) with `kernel`, appending to `out` what the transcoder would: `{` and the
/// attributes, without the closing brace. Returns the bytes of `item` read and what the
/// window pass found of its UTF-8, or [`Bail`] with `out` unchanged. With `attrs`, it
/// also gets where each attribute stands in `item` and in `out` ([`Attr`]), for the
/// column-aware mode: it then copies the values it keeps as DynamoDB JSON, and the
/// plain values of the columns that take them as they are.
/// `pad` and `bits` are reused buffers.
#[allow(clippy::too_many_arguments)]
pub(crate) fn transcode(
    kernel: Kernel,
    item: &[u8],
    reserved: Option<&Reserved>,
    quote_numbers: bool,
    pad: &mut Vec<u8>,
    bits: &mut Vec<u64>,
    out: &mut Vec<u8>,
    attrs: Option<&mut Vec<Attr>>,
) -> Result<Scanned, Bail> {
    // The item, then zeros to the end of its last 64-byte window and one more: at least
    // 65 zeros (the copies read up to 63 bytes past the end of a string, which ends
    // before the item's end), and the index has the word after the one of any position
    // up to the item's end.
    let n = item.len();
    let need = (n / 64 + 2) * 64;
    if pad.len() < need {
        pad.resize(need, 0);
    }
    pad[..n].copy_from_slice(item);
    pad[n..need].fill(0);
    if bits.len() < need / 64 {
        bits.resize(need / 64, 0);
    }
    let (b, bits) = (&pad[..need], &mut bits[..need / 64]);
    // The output is never longer than the input read (every wrapper is deleted, `null`
    // is as long as the `true` it replaces), so this leaves a copy's room after it.
    out.reserve(n + PAD);
    let spare = out.spare_capacity_mut();
    let q = quote_numbers;
    let (read, written, utf8) = match attrs {
        None => dispatch::<false>(kernel, b, n, bits, spare, q, reserved, &mut Vec::new())?,
        Some(attrs) => {
            attrs.clear();
            dispatch::<true>(kernel, b, n, bits, spare, q, reserved, attrs)?
        }
    };
    let len = out.len() + written;
    // SAFETY: the walk initialised every byte of the spare capacity below `written`
    // (see `Walk::o`), and `written` is within it (see [`Walk`]).
    unsafe { out.set_len(len) };
    Ok(Scanned { read, utf8 })
}

/// [`run`] with `kernel`'s block, through the entry compiled for its instruction set.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn dispatch<const ATTRS: bool>(
    kernel: Kernel,
    b: &[u8],
    n: usize,
    bits: &mut [u64],
    spare: &mut [MaybeUninit<u8>],
    q: bool,
    reserved: Option<&Reserved>,
    attrs: &mut Vec<Attr>,
) -> Result<(usize, usize, bool), Bail> {
    match kernel {
        Kernel::Scalar => Err(Bail),
        Kernel::Swar => run::<Swar, ATTRS>(b, n, bits, spare, q, reserved, attrs),
        #[cfg(target_arch = "x86_64")]
        Kernel::Sse2 => run::<Sse2, ATTRS>(b, n, bits, spare, q, reserved, attrs),
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the kernel is only chosen where `is_available` found AVX2
        // (`Flattener::set_kernel` refuses others).
        Kernel::Avx2 => unsafe { run_avx2::<ATTRS>(b, n, bits, spare, q, reserved, attrs) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as for AVX2, with AVX-512F and AVX-512BW.
        Kernel::Avx512 => unsafe { run_avx512::<ATTRS>(b, n, bits, spare, q, reserved, attrs) },
        #[cfg(not(target_arch = "x86_64"))]
        _ => Err(Bail),
    }
}

/// Where one attribute of the item stands, as the column-aware mode's fast pass
/// records it: offsets in the item, and in the output from where the walk began
/// writing. The name is `item[name..value - 2]` (it has no escape: the walk leaves
/// those to the transcoder), in quotes at `name - 1..value - 1`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Attr {
    /// The name's first byte, after its quote.
    pub(crate) name: usize,
    /// The value object's `{`.
    pub(crate) value: usize,
    /// Just after the value object's `}`.
    pub(crate) end: usize,
    /// The plain value written: `out.0..out.1`.
    pub(crate) out: (usize, usize),
}

/// What [`transcode`] read.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Scanned {
    /// The bytes of the item read.
    pub(crate) read: usize,
    /// The whole item (not only the part read) was found to be UTF-8 by the window
    /// pass: all ASCII, or (AVX-512) checked there. False: not known.
    pub(crate) utf8: bool,
}

/// Marks the special bytes of every window of `b` in `bits`, then walks the item with
/// its state in locals (registers); returns the bytes read and written, and whether the
/// window pass found `b` to be UTF-8.
#[inline(always)]
fn run<K: Block, const ATTRS: bool>(
    b: &[u8],
    n: usize,
    bits: &mut [u64],
    out: &mut [MaybeUninit<u8>],
    quote_numbers: bool,
    reserved: Option<&Reserved>,
    attrs: &mut Vec<Attr>,
) -> Result<(usize, usize, bool), Bail> {
    // SAFETY: the kernel `K` was chosen for a CPU that has its instruction set.
    let mut utf8 = unsafe { K::Utf8::new() };
    for (window, m) in b.chunks_exact(64).zip(bits.iter_mut()) {
        // Both read the same 64 bytes: inlined, the loads are shared.
        // SAFETY: the window holds 64 bytes (`chunks_exact`), and the kernel `K` was
        // chosen for a CPU that has its instruction set.
        unsafe {
            *m = K::mask64(window.as_ptr());
            utf8.window::<K>(window.as_ptr());
        }
    }
    let mut walk = Walk {
        b,
        n,
        bits,
        i: 0,
        out,
        o: 0,
        quote_numbers,
        attrs,
    };
    walk.item::<K, ATTRS>(reserved)?;
    // SAFETY: as above.
    Ok((walk.i, walk.o, unsafe { utf8.valid() }))
}

/// `run::<$block>` compiled with the instruction sets `$features`: the entry of a kernel
/// beyond the target's baseline. Safety: only called on a CPU that has `$features`
/// (see [`Kernel::is_available`]).
macro_rules! entry {
    ($name:ident, $block:ty, $features:literal) => {
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = $features)]
        unsafe fn $name<const ATTRS: bool>(
            b: &[u8],
            n: usize,
            bits: &mut [u64],
            out: &mut [MaybeUninit<u8>],
            quote_numbers: bool,
            reserved: Option<&Reserved>,
            attrs: &mut Vec<Attr>,
        ) -> Result<(usize, usize, bool), Bail> {
            run::<$block, ATTRS>(b, n, bits, out, quote_numbers, reserved, attrs)
        }
    };
}

entry!(run_avx2, Avx2, "avx2,bmi1,popcnt");
entry!(run_avx512, Avx512, "avx512f,avx512bw,avx2,bmi1,bmi2,popcnt");

/// The special bytes of a window of the input, with one instruction set.
trait Block {
    /// What the window pass finds of the input's UTF-8.
    type Utf8: Utf8Pass;

    /// The mask of the bytes among the 64 at `src` that are `"`, `\` or below 0x20 (bit
    /// k: byte k). It may mark a few more bytes (never fewer): each marked byte is looked
    /// at before it is used.
    ///
    /// # Safety
    /// `src` holds at least 64 bytes, and the CPU has the block's instruction set.
    unsafe fn mask64(src: *const u8) -> u64;

    /// Not zero when one of the 64 bytes at `src` is above 0x7f.
    ///
    /// # Safety
    /// As for [`Block::mask64`].
    unsafe fn high64(src: *const u8) -> u64;

    /// The classes of number characters among the first [`SHORT_READ`] bytes at `src`
    /// (or more), for [`short_number`]; here 16 bytes at a time (SSE2 on x86_64).
    ///
    /// # Safety
    /// As for [`Block::mask64`].
    #[inline(always)]
    unsafe fn classes(src: *const u8) -> Classes {
        // SAFETY: the caller guarantees 64 bytes at `src`.
        let w = unsafe { std::slice::from_raw_parts(src, SHORT_READ) };
        let mut c = Classes::default();
        for (k, chunk) in w.chunks_exact(16).enumerate() {
            let (digits, dots, minus, zeros) = classify_16(chunk);
            c.digits |= u64::from(digits) << (16 * k);
            c.dots |= u64::from(dots) << (16 * k);
            c.minus |= u64::from(minus) << (16 * k);
            c.zeros |= u64::from(zeros) << (16 * k);
        }
        c
    }
}

struct Swar;

impl Block for Swar {
    type Utf8 = Ascii;
    #[inline(always)]
    unsafe fn mask64(src: *const u8) -> u64 {
        let mut mask = 0u64;
        for k in 0..8 {
            // SAFETY: the caller guarantees 64 bytes; unaligned reads are allowed.
            let w = unsafe { src.add(8 * k).cast::<u64>().read_unaligned() };
            // One mark (0x80) per byte; bytes above a special one may be marked too.
            let m = super::scan::special_bytes(u64::from_le(w)) >> 7;
            // Gathers bits 0, 8, …, 56 into the top byte.
            let bits = m.wrapping_mul(0x0102_0408_1020_4080) >> 56;
            mask |= bits << (8 * k);
        }
        mask
    }

    #[inline(always)]
    unsafe fn high64(src: *const u8) -> u64 {
        let mut any = 0u64;
        for k in 0..8 {
            // SAFETY: as in `mask64`.
            any |= unsafe { src.add(8 * k).cast::<u64>().read_unaligned() };
        }
        any & 0x8080_8080_8080_8080
    }
}

#[cfg(target_arch = "x86_64")]
struct Sse2;

#[cfg(target_arch = "x86_64")]
impl Block for Sse2 {
    type Utf8 = Ascii;
    #[inline(always)]
    unsafe fn mask64(src: *const u8) -> u64 {
        // SAFETY: the caller guarantees 64 bytes at `src`.
        let window = unsafe { std::slice::from_raw_parts(src, 64) };
        let mut mask = 0u64;
        for (k, chunk) in window.chunks_exact(16).enumerate() {
            mask |= u64::from(super::scan::special_bytes_16(chunk)) << (16 * k);
        }
        mask
    }

    #[inline(always)]
    unsafe fn high64(src: *const u8) -> u64 {
        use std::arch::x86_64::*;
        // SAFETY: the caller guarantees 64 bytes at `src`; SSE2 is part of x86_64.
        unsafe {
            let a = _mm_or_si128(
                _mm_loadu_si128(src.cast()),
                _mm_loadu_si128(src.add(16).cast()),
            );
            let b = _mm_or_si128(
                _mm_loadu_si128(src.add(32).cast()),
                _mm_loadu_si128(src.add(48).cast()),
            );
            _mm_movemask_epi8(_mm_or_si128(a, b)) as u64
        }
    }
}

#[cfg(target_arch = "x86_64")]
struct Avx2;

#[cfg(target_arch = "x86_64")]
impl Block for Avx2 {
    type Utf8 = Ascii;
    #[inline(always)]
    unsafe fn mask64(src: *const u8) -> u64 {
        use std::arch::x86_64::*;
        // SAFETY: the caller guarantees AVX2 and 64 bytes at `src`.
        unsafe {
            let quote = _mm256_set1_epi8(b'"' as i8);
            let backslash = _mm256_set1_epi8(b'\\' as i8);
            let below = _mm256_set1_epi8(0x1f);
            let a = _mm256_loadu_si256(src.cast());
            let b = _mm256_loadu_si256(src.add(32).cast());
            let sa = _mm256_or_si256(
                _mm256_or_si256(_mm256_cmpeq_epi8(a, quote), _mm256_cmpeq_epi8(a, backslash)),
                _mm256_cmpeq_epi8(_mm256_min_epu8(a, below), a),
            );
            let sb = _mm256_or_si256(
                _mm256_or_si256(_mm256_cmpeq_epi8(b, quote), _mm256_cmpeq_epi8(b, backslash)),
                _mm256_cmpeq_epi8(_mm256_min_epu8(b, below), b),
            );
            u64::from(_mm256_movemask_epi8(sa) as u32)
                | u64::from(_mm256_movemask_epi8(sb) as u32) << 32
        }
    }

    #[inline(always)]
    unsafe fn high64(src: *const u8) -> u64 {
        use std::arch::x86_64::*;
        // SAFETY: as in `mask64`.
        unsafe {
            let a = _mm256_loadu_si256(src.cast());
            let b = _mm256_loadu_si256(src.add(32).cast());
            u64::from(_mm256_movemask_epi8(_mm256_or_si256(a, b)) as u32)
        }
    }
}

#[cfg(target_arch = "x86_64")]
struct Avx512;

#[cfg(target_arch = "x86_64")]
impl Block for Avx512 {
    type Utf8 = Utf8Avx512;
    #[inline(always)]
    unsafe fn mask64(src: *const u8) -> u64 {
        use std::arch::x86_64::*;
        // SAFETY: the caller guarantees AVX-512F/BW and 64 bytes at `src`.
        unsafe {
            let v = _mm512_loadu_si512(src.cast());
            _mm512_cmpeq_epi8_mask(v, _mm512_set1_epi8(b'"' as i8))
                | _mm512_cmpeq_epi8_mask(v, _mm512_set1_epi8(b'\\' as i8))
                | _mm512_cmple_epu8_mask(v, _mm512_set1_epi8(0x1f))
        }
    }

    #[inline(always)]
    unsafe fn high64(src: *const u8) -> u64 {
        use std::arch::x86_64::*;
        // SAFETY: as in `mask64`.
        unsafe { _mm512_movepi8_mask(_mm512_loadu_si512(src.cast())) }
    }

    /// All 64 bytes in one step, each class a mask compare.
    #[inline(always)]
    unsafe fn classes(src: *const u8) -> Classes {
        use std::arch::x86_64::*;
        // SAFETY: as in `mask64`.
        unsafe {
            let v = _mm512_loadu_si512(src.cast());
            let set = |c: u8| _mm512_set1_epi8(c as i8);
            Classes {
                // c - '0' < 10, unsigned.
                digits: _mm512_cmplt_epu8_mask(_mm512_sub_epi8(v, set(b'0')), set(10)),
                dots: _mm512_cmpeq_epi8_mask(v, set(b'.')),
                minus: _mm512_cmpeq_epi8_mask(v, set(b'-')),
                zeros: _mm512_cmpeq_epi8_mask(v, set(b'0')),
            }
        }
    }
}

/// The UTF-8 check of the window pass, window after window.
trait Utf8Pass {
    /// # Safety
    /// The CPU has the instruction set of the block that uses it.
    unsafe fn new() -> Self;

    /// Takes the next 64 bytes.
    ///
    /// # Safety
    /// `src` holds at least 64 bytes, and the CPU has `K`'s instruction set (the block
    /// that uses this pass).
    unsafe fn window<K: Block>(&mut self, src: *const u8);

    /// True when the windows so far are UTF-8, taken together (the last one ending a
    /// character); false when they are not, or when the pass cannot tell.
    ///
    /// # Safety
    /// As for [`Utf8Pass::new`].
    unsafe fn valid(&self) -> bool;
}

/// Only whether every byte is ASCII (then the input is UTF-8); other inputs are left to
/// the caller's check.
struct Ascii(u64);

impl Utf8Pass for Ascii {
    #[inline(always)]
    unsafe fn new() -> Self {
        Ascii(0)
    }

    #[inline(always)]
    unsafe fn window<K: Block>(&mut self, src: *const u8) {
        // SAFETY: the caller's guarantee is `high64`'s.
        self.0 |= unsafe { K::high64(src) };
    }

    #[inline(always)]
    unsafe fn valid(&self) -> bool {
        self.0 == 0
    }
}

/// A whole UTF-8 check in the window pass: the lookup algorithm of Keiser and Lemire
/// ("Validating UTF-8 in less than one instruction per byte", 2021), as simdjson and the
/// simdutf8 crate run it 16 or 32 bytes at a time, here on the 64 bytes of a window in
/// one step. Every window is checked (no branch on ASCII ones: their check costs less
/// than a mispredicted branch).
#[cfg(target_arch = "x86_64")]
struct Utf8Avx512 {
    /// The previous window (zeros before the first).
    prev: std::arch::x86_64::__m512i,
    /// Not zero where an error was found.
    error: std::arch::x86_64::__m512i,
}

#[cfg(target_arch = "x86_64")]
mod utf8_lookup {
    //! The three nibble tables of the lookup algorithm (the bits are error classes).
    const TOO_SHORT: u8 = 1 << 0;
    const TOO_LONG: u8 = 1 << 1;
    const OVERLONG_3: u8 = 1 << 2;
    const TOO_LARGE: u8 = 1 << 3;
    const SURROGATE: u8 = 1 << 4;
    const OVERLONG_2: u8 = 1 << 5;
    const TOO_LARGE_1000: u8 = 1 << 6;
    const OVERLONG_4: u8 = 1 << 6;
    const TWO_CONTS: u8 = 1 << 7;
    const CARRY: u8 = TOO_SHORT | TOO_LONG | TWO_CONTS;
    const LARGE: u8 = CARRY | TOO_LARGE | TOO_LARGE_1000;

    /// By the high nibble of the byte before.
    pub(super) const BYTE_1_HIGH: [u8; 16] = [
        TOO_LONG,
        TOO_LONG,
        TOO_LONG,
        TOO_LONG,
        TOO_LONG,
        TOO_LONG,
        TOO_LONG,
        TOO_LONG,
        TWO_CONTS,
        TWO_CONTS,
        TWO_CONTS,
        TWO_CONTS,
        TOO_SHORT | OVERLONG_2,
        TOO_SHORT,
        TOO_SHORT | OVERLONG_3 | SURROGATE,
        TOO_SHORT | TOO_LARGE | TOO_LARGE_1000 | OVERLONG_4,
    ];

    /// By the low nibble of the byte before.
    pub(super) const BYTE_1_LOW: [u8; 16] = [
        CARRY | OVERLONG_3 | OVERLONG_2 | OVERLONG_4,
        CARRY | OVERLONG_2,
        CARRY,
        CARRY,
        CARRY | TOO_LARGE,
        LARGE,
        LARGE,
        LARGE,
        LARGE,
        LARGE,
        LARGE,
        LARGE,
        LARGE,
        LARGE | SURROGATE,
        LARGE,
        LARGE,
    ];

    /// By the high nibble of the byte itself.
    pub(super) const BYTE_2_HIGH: [u8; 16] = [
        TOO_SHORT,
        TOO_SHORT,
        TOO_SHORT,
        TOO_SHORT,
        TOO_SHORT,
        TOO_SHORT,
        TOO_SHORT,
        TOO_SHORT,
        TOO_LONG | OVERLONG_2 | TWO_CONTS | OVERLONG_3 | TOO_LARGE_1000 | OVERLONG_4,
        TOO_LONG | OVERLONG_2 | TWO_CONTS | OVERLONG_3 | TOO_LARGE,
        TOO_LONG | OVERLONG_2 | TWO_CONTS | SURROGATE | TOO_LARGE,
        TOO_LONG | OVERLONG_2 | TWO_CONTS | SURROGATE | TOO_LARGE,
        TOO_SHORT,
        TOO_SHORT,
        TOO_SHORT,
        TOO_SHORT,
    ];
}

#[cfg(target_arch = "x86_64")]
impl Utf8Pass for Utf8Avx512 {
    #[inline(always)]
    unsafe fn new() -> Self {
        use std::arch::x86_64::*;
        // SAFETY: the caller guarantees AVX-512F.
        unsafe {
            Utf8Avx512 {
                prev: _mm512_setzero_si512(),
                error: _mm512_setzero_si512(),
            }
        }
    }

    #[inline(always)]
    unsafe fn window<K: Block>(&mut self, src: *const u8) {
        use std::arch::x86_64::*;
        use utf8_lookup::*;
        // SAFETY: the caller guarantees AVX-512F/BW and 64 bytes at `src`; the tables
        // are 16 bytes each.
        unsafe {
            let table = |t: &[u8; 16]| _mm512_broadcast_i32x4(_mm_loadu_si128(t.as_ptr().cast()));
            let nibbles = _mm512_set1_epi8(0x0f);
            let input = _mm512_loadu_si512(src.cast());
            // The window moved up by 16 bytes, the last 16 of the previous one first:
            // `alignr` then takes the bytes 1, 2 and 3 places before each byte.
            let idx = _mm512_setr_epi32(28, 29, 30, 31, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11);
            let rotated = _mm512_permutex2var_epi32(input, idx, self.prev);
            let prev1 = _mm512_alignr_epi8::<15>(input, rotated);
            let prev2 = _mm512_alignr_epi8::<14>(input, rotated);
            let prev3 = _mm512_alignr_epi8::<13>(input, rotated);
            let high = |v: __m512i| _mm512_and_si512(_mm512_srli_epi16::<4>(v), nibbles);
            let special = _mm512_and_si512(
                _mm512_and_si512(
                    _mm512_shuffle_epi8(table(&BYTE_1_HIGH), high(prev1)),
                    _mm512_shuffle_epi8(table(&BYTE_1_LOW), _mm512_and_si512(prev1, nibbles)),
                ),
                _mm512_shuffle_epi8(table(&BYTE_2_HIGH), high(input)),
            );
            // The bytes that must be the second continuation of a three- or four-byte
            // sequence, or the third of a four-byte one: there the tables' TWO_CONTS
            // bit must be set, and nowhere else.
            let must23 = _mm512_cmpgt_epu8_mask(prev2, _mm512_set1_epi8(0xdf_u8 as i8))
                | _mm512_cmpgt_epu8_mask(prev3, _mm512_set1_epi8(0xef_u8 as i8));
            let must23_80 = _mm512_maskz_mov_epi8(must23, _mm512_set1_epi8(0x80_u8 as i8));
            self.error = _mm512_or_si512(self.error, _mm512_xor_si512(must23_80, special));
            self.prev = input;
        }
    }

    #[inline(always)]
    unsafe fn valid(&self) -> bool {
        use std::arch::x86_64::*;
        // A sequence cut off at the end of the last window: the last three bytes may
        // not start one that goes on.
        // SAFETY: the caller guarantees AVX-512F/BW.
        unsafe {
            let mut max = [0xffu8; 64];
            max[61..].copy_from_slice(&[0xef, 0xdf, 0xbf]);
            let max = _mm512_loadu_si512(max.as_ptr().cast());
            let incomplete = _mm512_subs_epu8(self.prev, max);
            _mm512_test_epi8_mask(
                _mm512_or_si512(self.error, incomplete),
                _mm512_or_si512(self.error, incomplete),
            ) == 0
        }
    }
}

/// The first bytes of a type wrapper, little-endian, for word compares.
const fn word(s: &[u8]) -> u64 {
    let mut w = 0u64;
    let mut k = 0;
    while k < s.len() {
        w |= (s[k] as u64) << (8 * k);
        k += 1;
    }
    w
}

/// The longest number text [`short_number`] checks: 38 characters, DynamoDB's most
/// digits (a plain number no longer than that is one DynamoDB stores, see
/// [`dynamo_number`]); it classifies the 48 bytes from the text's start.
const SHORT: usize = 38;
const SHORT_READ: usize = 48;

const LOW5: u64 = (1 << 40) - 1;
const LOW6: u64 = (1 << 48) - 1;
const LOW7: u64 = (1 << 56) - 1;
/// `{"?":"`: the wrapper of a one-letter tag whose value is a string.
const SCALAR_MASK: u64 = LOW6 & !(0xff << 16);
const S: u64 = word(br#"{"S":""#);
const MAP: u64 = word(br#"{"M":{"#);
const LIST: u64 = word(br#"{"L":["#);
const BOOL: u64 = word(br#"{"BOOL":"#);
const NULL: u64 = word(br#"{"NULL":"#);
const SS: u64 = word(br#"{"SS":["#);
const NS: u64 = word(br#"{"NS":["#);
const BS: u64 = word(br#"{"BS":["#);
const TRUE: u64 = word(b"true}");
const FALSE: u64 = word(b"false}");

/// The walk's state. What keeps its reads and writes in bounds without a check each
/// (the accessors below rely on it; `debug_assert!`s check it in tests and fuzzing):
/// - `b` holds at least `n + 65` bytes, the index `n / 64 + 2` words, `out` at least
///   `n + 64` bytes ([`transcode`] sizes them so);
/// - every step of the walk moves `i` past bytes it matched (never the zeros after the
///   document), or just past a quote that a scan found, which is below `n`: so `i <= n`
///   whenever it reads, and it reads at most 16 bytes past `i`, or a 64-byte block
///   from a position up to `n`;
/// - the scans for special bytes start at most at `n`, and `b[n]` is special (a zero);
/// - `o <= i`: nothing written is longer than what it stands for.
struct Walk<'a> {
    /// The item and the rest of the document (`n` bytes), then at least 65 zeros.
    b: &'a [u8],
    n: usize,
    /// Bit k of `bits[w]`: byte `64 w + k` of `b` is special (see [`Block::mask64`]).
    bits: &'a [u64],
    /// Read position in `b`.
    i: usize,
    /// The output vector's spare capacity: at least `n + 64` bytes.
    out: &'a mut [MaybeUninit<u8>],
    /// Write position in `out`. Every byte below it has been written, and it never
    /// passes `i` (nothing written is longer than what it stands for), so a block
    /// written at `o` stays within `out`.
    o: usize,
    quote_numbers: bool,
    /// With `ATTRS`: where each attribute stands (see [`transcode`]).
    attrs: &'a mut Vec<Attr>,
}

impl Walk<'_> {
    #[inline(always)]
    fn at(&self, i: usize) -> u8 {
        debug_assert!(i <= self.n + 16);
        // SAFETY: `i` is at most 16 bytes past a read position, and `b` holds `n + 65`
        // bytes (see [`Walk`]).
        unsafe { *self.b.get_unchecked(i) }
    }

    /// The eight bytes at `i`, little-endian.
    #[inline(always)]
    fn word(&self, i: usize) -> u64 {
        debug_assert!(i <= self.n + 8);
        // SAFETY: as in `at`, `i + 8` is within `b`; unaligned reads are allowed.
        u64::from_le(unsafe { self.b.as_ptr().add(i).cast::<u64>().read_unaligned() })
    }

    #[inline(always)]
    fn put(&mut self, c: u8) {
        debug_assert!(self.o <= self.n);
        // SAFETY: `o <= i <= n`, and `out` holds `n + 64` bytes (see [`Walk`]).
        unsafe { *self.out.get_unchecked_mut(self.o) = MaybeUninit::new(c) };
        self.o += 1;
    }

    #[inline(always)]
    fn put_word(&mut self, w: u64, len: usize) {
        debug_assert!(self.o <= self.n);
        // SAFETY: as in `put`, `o + 8` is within `out`; `MaybeUninit<u8>` has the layout
        // of `u8`, and unaligned writes are allowed.
        unsafe {
            let dst = self.out.as_mut_ptr().add(self.o).cast::<u64>();
            dst.write_unaligned(w.to_le());
        }
        self.o += len;
    }

    /// The position of the first special byte at or after `from` (or of a byte marked
    /// with them): the index's eight bytes from the one that holds `from`'s bit, read
    /// as one word (at least 57 bits from `from`), without a branch unless they have
    /// none.
    #[inline(always)]
    fn special_from(&self, from: usize) -> usize {
        self.special_and_rest(from).0
    }

    /// [`Walk::special_from`], and the index bits it read from that position on (bit 0:
    /// the special byte found; zeros past the word read): a later scan from further on
    /// can take its answer from them, without a load on the walk's critical path.
    #[inline(always)]
    fn special_and_rest(&self, mut from: usize) -> (usize, u64) {
        loop {
            debug_assert!(from <= self.n);
            // SAFETY: `from <= n` (the scan starts there at most, and it goes on only
            // while `b[n]`, which is special, is not among the bits read), so the eight
            // bytes from byte `from / 8` of the index end at most at `n / 8 + 8`, within
            // its `n / 64 + 2` words (see [`Walk`]); unaligned reads are allowed.
            let w = unsafe {
                self.bits
                    .as_ptr()
                    .cast::<u8>()
                    .add(from / 8)
                    .cast::<u64>()
                    .read_unaligned()
            };
            let m = u64::from_le(w) >> (from % 8);
            if m != 0 {
                let t = m.trailing_zeros();
                return (from + t as usize, m >> t);
            }
            from = (from & !7) + 64;
        }
    }

    /// Copies `b[from..from + len]` to the output, 64 bytes at a time (the last block may
    /// copy bytes beyond, which later writes overwrite or which stay past the length).
    /// The first block is copied whatever the length: most strings fit in it.
    #[inline(always)]
    fn copy(&mut self, from: usize, len: usize) {
        let mut k = 0;
        loop {
            debug_assert!(from + k <= self.n && self.o + k <= self.n);
            // SAFETY: the copied range ends at most at `n` (it is text the walk read), and
            // `o <= from` (`o <= i`, and the walk copies what it reads at or after `i`),
            // so each block starts at most at `n`: 64 bytes from there are within `b`
            // and within `out` (see [`Walk`]). `MaybeUninit<u8>` has the layout of `u8`,
            // and unaligned reads and writes are allowed.
            unsafe {
                let w = self
                    .b
                    .as_ptr()
                    .add(from + k)
                    .cast::<[u8; 64]>()
                    .read_unaligned();
                let dst = self.out.as_mut_ptr().add(self.o + k).cast::<[u8; 64]>();
                dst.write_unaligned(w);
            }
            k += 64;
            if k >= len {
                break;
            }
        }
        self.o += len;
    }

    /// [`short_number`] on the `len` bytes of a number text at `start`, classified with
    /// `K`'s instructions.
    #[inline(always)]
    fn short_number<K: Block>(&self, start: usize, len: usize) -> bool {
        debug_assert!(start <= self.n);
        // SAFETY: the text is one the walk found (it ends at a quote, below `n`), so
        // `start <= n`: 64 bytes from there are within `b` (see [`Walk`]); the kernel
        // `K` was chosen for a CPU that has its instruction set.
        short_number(unsafe { K::classes(self.b.as_ptr().add(start)) }, len)
    }

    /// A string whose opening quote is at `i`, copied with its quotes. Escapes are kept
    /// as they are: each is checked where it stands, and the string is copied whole.
    #[inline(always)]
    fn string<K: Block>(&mut self) -> Result<(), Bail> {
        let start = self.i;
        let mut from = start + 1;
        loop {
            let e = self.special_from(from);
            match self.at(e) {
                b'"' => {
                    self.copy(start, e + 1 - start);
                    self.i = e + 1;
                    return Ok(());
                }
                // A backslash is below `n` (it is not one of the zeros after it).
                b'\\' => from = escape_end(&self.b[..self.n], e)?,
                _ => return Err(Bail),
            }
        }
    }

    /// An `N` value's string at `i`: its text checked to be a number DynamoDB stores,
    /// written as a number (or as the string, with `quote_numbers`).
    #[inline(always)]
    fn number<K: Block>(&mut self) -> Result<(), Bail> {
        if self.at(self.i) != b'"' {
            return Err(Bail);
        }
        let start = self.i + 1;
        let e = self.special_from(start);
        if self.at(e) != b'"' {
            return Err(Bail);
        }
        let text = &self.b[start..e];
        if !self.short_number::<K>(start, text.len())
            && (!is_json_number(text) || dynamo_number(text).is_err())
        {
            return Err(Bail);
        }
        if self.quote_numbers {
            self.copy(start - 1, e + 2 - start);
        } else {
            self.copy(start, e - start);
        }
        self.i = e + 1;
        Ok(())
    }

    /// The value of an `S`, `N` or `B` wrapper at `i` (`{"S":"…`), up to the wrapper's
    /// closing brace: the string copied (for `N` without its quotes, unless
    /// `quote_numbers`), and for `N` its text checked. `ahead`: the index bits from the
    /// value's first byte on as a scan read them (see [`Walk::special_and_rest`]), or 0.
    #[inline(always)]
    fn scalar<K: Block>(&mut self, is_n: bool, ahead: u64) -> Result<(), Bail> {
        let q = self.i + 5;
        // Most values end within the bits the name's scan read: the value's end is then
        // found without loading the index again.
        let e = if ahead != 0 {
            q + 1 + ahead.trailing_zeros() as usize
        } else {
            self.special_from(q + 1)
        };
        debug_assert_eq!(e, self.special_from(q + 1));
        if self.at(e) != b'"' {
            if is_n {
                return Err(Bail);
            }
            // An escape (or an error): the general string path, from the quote.
            self.i = q;
            return self.string::<K>();
        }
        let strip = usize::from(is_n & !self.quote_numbers);
        self.copy(q + strip, e + 1 - q - 2 * strip);
        if is_n && !self.short_number::<K>(q + 1, e - q - 1) {
            let text = &self.b[q + 1..e];
            if !is_json_number(text) || dynamo_number(text).is_err() {
                return Err(Bail);
            }
        }
        self.i = e + 1;
        Ok(())
    }

    /// An attribute name at `i` and its colon, copied; returns where its text starts,
    /// and the index bits the scan read from the eighth byte after the name's closing
    /// quote on (where the value of a `{"S":"` wrapper after the colon starts; zeros
    /// past the word read).
    #[inline(always)]
    fn key<K: Block>(&mut self) -> Result<(usize, u64), Bail> {
        let q = self.i;
        if self.at(q) != b'"' {
            return Err(Bail);
        }
        let (e, rest) = self.special_and_rest(q + 1);
        if self.at(e) != b'"' || self.at(e + 1) != b':' {
            return Err(Bail);
        }
        self.copy(q, e + 2 - q);
        self.i = e + 2;
        // Bit 0 of `rest` is the quote at `e`; the value starts at `e + 8`.
        Ok((q + 1, rest >> 8))
    }

    /// The elements of a set, from its `[` at `i`: strings, or numbers with `numbers`.
    #[inline(always)]
    fn set<K: Block>(&mut self, numbers: bool) -> Result<(), Bail> {
        self.put(b'[');
        self.i += 1;
        if self.at(self.i) == b']' {
            self.put(b']');
            self.i += 1;
            return Ok(());
        }
        loop {
            if numbers {
                self.number::<K>()?;
            } else {
                if self.at(self.i) != b'"' {
                    return Err(Bail);
                }
                self.string::<K>()?;
            }
            match self.at(self.i) {
                b',' => {
                    self.put(b',');
                    self.i += 1;
                }
                b']' => {
                    self.put(b']');
                    self.i += 1;
                    return Ok(());
                }
                _ => return Err(Bail),
            }
        }
    }

    /// The item's attribute map at `i`, with every value in it; with `ATTRS`, where each
    /// attribute stands.
    #[inline(always)]
    fn item<K: Block, const ATTRS: bool>(
        &mut self,
        reserved: Option<&Reserved>,
    ) -> Result<(), Bail> {
        if self.at(0) != b'{' || self.at(1) == b'}' {
            return Err(Bail);
        }
        self.put(b'{');
        self.i = 1;
        // Bit 0: the innermost container is a list (1) or a map (0), bit 1 the one
        // around it, and so on out to the item itself (a map), with a 1 above: the
        // level of nesting and each container's kind in one register. `TOP`: the item.
        const TOP: u64 = 0b10;
        let mut stack = TOP;
        'member: loop {
            let mut ahead = 0;
            if stack & 1 == 0 {
                let (start, rest) = self.key::<K>()?;
                ahead = rest;
                if stack == TOP {
                    if let Some(r) = reserved {
                        if r.is_taken(&self.b[start..self.i - 2]) {
                            return Err(Bail);
                        }
                    }
                    if ATTRS {
                        self.attrs.push(Attr {
                            name: start,
                            value: self.i,
                            end: 0,
                            out: (self.o, 0),
                        });
                    }
                }
            }
            // One attribute value object `{"T":…}`.
            let w = self.word(self.i);
            let tag = (w >> 16) as u8;
            if w & SCALAR_MASK == S & SCALAR_MASK && matches!(tag, b'S' | b'N' | b'B') {
                // `S`, `N` and `B` alike, without a branch on which: most values.
                self.scalar::<K>(tag == b'N', ahead)?;
            } else {
                match w & LOW6 {
                    MAP | LIST => {
                        let (open, close) = if w & LOW6 == MAP {
                            (b'{', b'}')
                        } else {
                            (b'[', b']')
                        };
                        self.i += 5;
                        self.put(open);
                        self.i += 1;
                        if self.at(self.i) == close {
                            self.put(close);
                            self.i += 1;
                        } else {
                            // At most `MAX_LEVELS - 1` levels inside the item: the 1
                            // above stays at bit `MAX_LEVELS` or below.
                            if stack >> MAX_LEVELS != 0 {
                                return Err(Bail);
                            }
                            stack = stack << 1 | u64::from(open == b'[');
                            continue 'member;
                        }
                    }
                    _ if w == BOOL => {
                        let v = self.word(self.i + 8);
                        if v & LOW5 == TRUE {
                            self.put_word(word(b"true"), 4);
                            self.i += 12;
                        } else if v & LOW6 == FALSE {
                            self.put_word(word(b"false"), 5);
                            self.i += 13;
                        } else {
                            return Err(Bail);
                        }
                    }
                    _ if w == NULL => {
                        if self.word(self.i + 8) & LOW5 != TRUE {
                            return Err(Bail);
                        }
                        self.put_word(word(b"null"), 4);
                        self.i += 12;
                    }
                    _ => match w & LOW7 {
                        SS | BS => {
                            self.i += 6;
                            self.set::<K>(false)?;
                        }
                        NS => {
                            self.i += 6;
                            self.set::<K>(true)?;
                        }
                        _ => return Err(Bail),
                    },
                }
            }
            // The wrapper's `}`, then what follows the value: more members, or the end
            // of containers (each of them a value whose wrapper then ends).
            loop {
                // At the wrapper's `}` (checked below) of a value of the item.
                if ATTRS && stack == TOP {
                    if let Some(a) = self.attrs.last_mut() {
                        a.end = self.i + 1;
                        a.out.1 = self.o;
                    }
                }
                // Most often `},` and another member.
                if self.word(self.i) & 0xffff == word(b"},") {
                    self.put(b',');
                    self.i += 2;
                    continue 'member;
                }
                if self.at(self.i) != b'}' {
                    return Err(Bail);
                }
                self.i += 1;
                match self.at(self.i) {
                    b',' => {
                        self.put(b',');
                        self.i += 1;
                        continue 'member;
                    }
                    b'}' if stack & 1 == 0 => {
                        self.i += 1;
                        if stack == TOP {
                            return Ok(());
                        }
                        self.put(b'}');
                    }
                    b']' if stack & 1 == 1 => {
                        self.put(b']');
                        self.i += 1;
                    }
                    _ => return Err(Bail),
                }
                stack >>= 1;
            }
        }
    }
}

/// The digits, points, minus signs and zeros among the bytes from a position (bit k:
/// byte k), at least [`SHORT_READ`] of them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Classes {
    digits: u64,
    dots: u64,
    minus: u64,
    zeros: u64,
}

/// True when the `len` bytes classified in `c` are a JSON number without exponent of at
/// most [`SHORT`] characters (`-?(0|[1-9][0-9]*)(\.[0-9]+)?`), which DynamoDB always
/// stores (at most 38 digits, no exponent: see [`dynamo_number`]). Checked on the masks
/// at once; false sends the text to the full check.
#[inline(always)]
fn short_number(c: Classes, len: usize) -> bool {
    let Classes {
        digits,
        dots,
        minus,
        zeros,
    } = c;
    // Every test without a branch (`&` on the truth values): the branches would follow
    // the lengths and digits of the data, and be mispredicted.
    let len_ok = len.wrapping_sub(1) < SHORT;
    let all = (1u64 << len.min(SHORT)) - 1;
    let (digits, dots, minus, zeros) = (digits & all, dots & all, minus & all, zeros & all);
    let sign = minus & 1;
    // Only digits, one optional point, one optional leading minus.
    let alphabet = (digits | dots | minus == all) & (minus & !1 == 0);
    let one_dot = dots & dots.wrapping_sub(1) == 0;
    // A digit first (after the sign), and a digit on each side of the point.
    let first_digit = digits >> sign & 1 == 1;
    let dot_ok = (dots == 0) | ((dots << 1 & digits != 0) & (dots >> 1 & digits != 0));
    // No leading zero before another digit.
    let leading_zero = (zeros >> sign & 1 == 1) & (digits >> (sign + 1) & 1 == 1);
    len_ok & alphabet & one_dot & first_digit & dot_ok & !leading_zero
}

/// Bit masks of the digits, points, minus signs and zeros among the first 16 bytes of `w`.
#[inline(always)]
fn classify_16(w: &[u8]) -> (u32, u32, u32, u32) {
    let w = &w[..16];
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::*;
        // SAFETY: SSE2 is part of x86_64, and `w` holds the 16 bytes loaded.
        unsafe {
            let v = _mm_loadu_si128(w.as_ptr().cast());
            let d = _mm_sub_epi8(v, _mm_set1_epi8(b'0' as i8));
            // c - '0' < 10 (unsigned) exactly when min(c - '0', 9) == c - '0'.
            let digit = _mm_cmpeq_epi8(_mm_min_epu8(d, _mm_set1_epi8(9)), d);
            let dot = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'.' as i8));
            let minus = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'-' as i8));
            let zero = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'0' as i8));
            (
                _mm_movemask_epi8(digit) as u32,
                _mm_movemask_epi8(dot) as u32,
                _mm_movemask_epi8(minus) as u32,
                _mm_movemask_epi8(zero) as u32,
            )
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let (mut digits, mut dots, mut minus, mut zeros) = (0u32, 0u32, 0u32, 0u32);
        for (k, &c) in w.iter().enumerate() {
            digits |= u32::from(c.is_ascii_digit()) << k;
            dots |= u32::from(c == b'.') << k;
            minus |= u32::from(c == b'-') << k;
            zeros |= u32::from(c == b'0') << k;
        }
        (digits, dots, minus, zeros)
    }
}

/// The end of the escape sequence whose backslash is at `b[i]` (`b`: the document,
/// without the zeros after it), checked as the scanner checks it.
#[inline(always)]
fn escape_end(b: &[u8], i: usize) -> Result<usize, Bail> {
    match b.get(i + 1) {
        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => Ok(i + 2),
        Some(b'u') => u_escape(b, i).map_err(|_| Bail),
        _ => Err(Bail),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_masks_mark_every_special_byte() {
        for k in Kernel::ALL {
            if !k.is_available() || k == Kernel::Scalar {
                continue;
            }
            for pos in 0..64 {
                for special in [b'"', b'\\', 0x00, 0x1f] {
                    let mut src = [b'a'; 64];
                    src[pos] = special;
                    src[63 - pos / 2] = 0xe9;
                    if 63 - pos / 2 == pos {
                        src[pos] = special;
                    }
                    let m = mask_with(k, &src);
                    assert_eq!(m.trailing_zeros() as usize, pos, "{k:?} {pos} {special}");
                    // Exact on x86_64; the eight-byte words may mark a byte or two more.
                    if k != Kernel::Swar {
                        assert_eq!(m, 1 << pos, "{k:?} {pos} {special}");
                    }
                }
            }
            for plain in [[b'a'; 64], [0x20; 64], [0xff; 64], [0x7f; 64]] {
                assert_eq!(mask_with(k, &plain), 0, "{k:?}");
            }
        }
    }

    fn mask_with(k: Kernel, src: &[u8; 64]) -> u64 {
        let s = src.as_ptr();
        // SAFETY: 64 bytes at `s`, and only available kernels are tried.
        unsafe {
            match k {
                Kernel::Swar => Swar::mask64(s),
                #[cfg(target_arch = "x86_64")]
                Kernel::Sse2 => Sse2::mask64(s),
                #[cfg(target_arch = "x86_64")]
                Kernel::Avx2 => avx2_mask(s),
                #[cfg(target_arch = "x86_64")]
                Kernel::Avx512 => avx512_mask(s),
                _ => 0,
            }
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn avx2_mask(s: *const u8) -> u64 {
        // SAFETY: as in `mask_with`.
        unsafe { Avx2::mask64(s) }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512bw")]
    unsafe fn avx512_mask(s: *const u8) -> u64 {
        // SAFETY: as in `mask_with`.
        unsafe { Avx512::mask64(s) }
    }

    /// Compact documents of every type are taken by the fast kernels (not left to the
    /// transcoder), and what they write is the plain row.
    #[test]
    fn fast_kernels_take_compact_items() {
        let cases: &[(&str, &str)] = &[
            (r#"{"a":{"S":"x"}}"#, r#"{"a":"x""#),
            ("{\"a\":{\"S\":\"Zo\u{eb}\"}}", "{\"a\":\"Zo\u{eb}\""),
            (
                r#"{"pk":{"S":"k\"\u00e9\ud83d\ude00"},"n":{"N":"-1.5"},"e":{"N":"1E+3"}}"#,
                r#"{"pk":"k\"\u00e9\ud83d\ude00","n":-1.5,"e":1E+3"#,
            ),
            (
                r#"{"b":{"BOOL":true},"f":{"BOOL":false},"z":{"NULL":true},"x":{"B":"AAEC"}}"#,
                r#"{"b":true,"f":false,"z":null,"x":"AAEC""#,
            ),
            (
                r#"{"m":{"M":{"l":{"L":[{"N":"1"},{"M":{}},{"L":[]},{"SS":["a","b"]}]}}},"s":{"NS":["1","2"]},"t":{"BS":[]}}"#,
                r#"{"m":{"l":[1,{},[],["a","b"]]},"s":[1,2],"t":[]"#,
            ),
        ];
        let reserved = Reserved::new(&["version", "is_deleted"]);
        for k in Kernel::ALL {
            if !k.is_available() || k == Kernel::Scalar {
                continue;
            }
            for ((doc, want), attrs) in cases.iter().zip([1, 1, 3, 4, 3]) {
                let (mut pad, mut bits, mut out) = (Vec::new(), Vec::new(), b"[".to_vec());
                let mut recorded = vec![Attr::default()];
                let scan = transcode(
                    k,
                    doc.as_bytes(),
                    Some(&reserved),
                    false,
                    &mut pad,
                    &mut bits,
                    &mut out,
                    Some(&mut recorded),
                )
                .unwrap_or_else(|_| panic!("{k:?} left {doc} to the transcoder"));
                // Each attribute: its name in quotes and a colon, its value object, then
                // a comma or (the last one) the item's closing brace; the plain values
                // written, with the names, make up the row.
                assert_eq!(recorded.len(), attrs, "{k:?} {doc} {recorded:?}");
                let d = doc.as_bytes();
                let mut row = b"{".to_vec();
                for (j, a) in recorded.iter().enumerate() {
                    assert_eq!(d[a.name - 1], b'"', "{doc} {a:?}");
                    assert_eq!(&d[a.value - 2..a.value + 1], b"\":{", "{doc} {a:?}");
                    assert_eq!(d[a.end - 1], b'}', "{doc} {a:?}");
                    let last = j + 1 == recorded.len();
                    assert_eq!(d[a.end], if last { b'}' } else { b',' }, "{doc} {a:?}");
                    if !last {
                        assert_eq!(recorded[j + 1].name, a.end + 2, "{doc} {a:?}");
                    }
                    if j > 0 {
                        row.push(b',');
                    }
                    row.extend_from_slice(&d[a.name - 1..a.value]);
                    row.extend_from_slice(&out[1 + a.out.0..1 + a.out.1]);
                }
                assert_eq!(recorded.last().map(|a| a.end), Some(doc.len() - 1), "{doc}");
                assert_eq!(String::from_utf8_lossy(&row), *want, "{k:?} {recorded:?}");
                assert_eq!(scan.read, doc.len(), "{k:?} {doc}");
                // Each document here is UTF-8: AVX-512 finds so, the others for ASCII.
                let utf8 = k == Kernel::Avx512 || doc.is_ascii();
                assert_eq!(scan.utf8, utf8, "{k:?} {doc}");
                assert_eq!(String::from_utf8_lossy(&out[1..]), *want, "{k:?}");
            }
            let (mut pad, mut bits, mut out) = (Vec::new(), Vec::new(), Vec::new());
            for doc in [
                r#"{"version":{"N":"1"}}"#,
                r#"{"a" :{"S":"x"}}"#,
                r#"{"a":{"N":"01"}}"#,
            ] {
                assert!(transcode(
                    k,
                    doc.as_bytes(),
                    Some(&reserved),
                    false,
                    &mut pad,
                    &mut bits,
                    &mut out,
                    None,
                )
                .is_err());
                assert!(out.is_empty());
            }
        }
    }

    /// The window pass's UTF-8 finding for `bytes` (padded as `transcode` pads them).
    fn utf8_pass(k: Kernel, bytes: &[u8]) -> bool {
        let mut b = bytes.to_vec();
        b.resize((bytes.len() / 64 + 2) * 64, 0);
        fn pass<P: Utf8Pass, K: Block>(b: &[u8]) -> bool {
            // SAFETY: only available kernels are tried; windows of 64 bytes.
            unsafe {
                let mut p = P::new();
                for w in b.chunks_exact(64) {
                    p.window::<K>(w.as_ptr());
                }
                p.valid()
            }
        }
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx512f,avx512bw")]
        unsafe fn avx512(b: &[u8]) -> bool {
            pass::<Utf8Avx512, Avx512>(b)
        }
        match k {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: the caller checked that the CPU has AVX-512.
            Kernel::Avx512 => unsafe { avx512(&b) },
            _ => pass::<Ascii, Swar>(&b),
        }
    }

    /// The AVX-512 pass finds exactly what `std` finds, on sequences cut at every place
    /// around a window's edge and on random mixes of the bytes that matter; the other
    /// kernels' pass finds ASCII.
    #[test]
    fn window_pass_utf8_is_std_utf8() {
        let check = |bytes: &[u8]| {
            let std_ok = std::str::from_utf8(bytes).is_ok();
            assert_eq!(
                utf8_pass(Kernel::Swar, bytes),
                bytes.is_ascii(),
                "{bytes:x?}"
            );
            if Kernel::Avx512.is_available() {
                assert_eq!(utf8_pass(Kernel::Avx512, bytes), std_ok, "{bytes:x?}");
            }
        };
        // Every pair of bytes, and every byte after a lead, on both sides of an edge.
        for at in [0, 61, 62, 63, 64, 126] {
            for x in 0..=255u8 {
                for y in 0..=255u8 {
                    let mut v = vec![b'a'; at];
                    v.extend([x, y]);
                    check(&v);
                    v.push(b'a');
                    check(&v);
                }
            }
        }
        // Every lead byte and second byte, with the third and fourth at the edges of
        // their classes, across an edge.
        for at in [0, 62] {
            for x in 0xc0..=0xffu8 {
                for y in 0..=255u8 {
                    for z in [0x41, 0x80, 0xbf, 0xc0] {
                        for w in [0x41, 0x80] {
                            let mut v = vec![b'a'; at];
                            v.extend([x, y, z, w]);
                            check(&v);
                        }
                    }
                }
            }
        }
        // Every character class, whole and cut short, at each place around an edge.
        let chars = [
            "\u{7f}", "\u{80}", "\u{7ff}", "\u{800}", "\u{d7ff}", "\u{e000}", "\u{ffff}",
        ];
        let chars = chars
            .iter()
            .map(|c| c.to_string())
            .chain(["\u{10000}".into(), "\u{10ffff}".into()]);
        for c in chars {
            for at in 56..72 {
                for cut in 0..=c.len() {
                    let mut v = vec![b'a'; at];
                    v.extend(&c.as_bytes()[..cut]);
                    check(&v);
                    v.extend(b"bc");
                    check(&v);
                }
            }
        }
        // Random mixes of the bytes at the classes' edges, and of valid characters.
        let edges = [
            0x00, 0x41, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc1, 0xc2, 0xdf, 0xe0,
            0xe1, 0xec, 0xed, 0xee, 0xef, 0xf0, 0xf1, 0xf3, 0xf4, 0xf5, 0xf7, 0xf8, 0xff,
        ];
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..20_000 {
            let len = (next() % 200) as usize;
            let mut v = Vec::with_capacity(len + 4);
            while v.len() < len {
                let r = next();
                match r % 4 {
                    0 => v.push(edges[(r >> 8) as usize % edges.len()]),
                    1 => v.push(b'x'),
                    _ => {
                        let c = char::from_u32((r >> 8) as u32 % 0x11_0000).unwrap_or('\u{fffd}');
                        v.extend(c.to_string().as_bytes());
                    }
                }
            }
            check(&v);
        }
    }

    /// Whenever the short check takes a text, the full check takes it too; and it takes
    /// every plain number of up to 38 characters.
    #[test]
    fn short_numbers_are_numbers() {
        let texts = [
            "0",
            "-0",
            "7",
            "-12.5",
            "0.001",
            "1234567890123456",
            "12345678901234567",
            "46928821650214736.2379083975852",
            "-4692882165021473.62379083975852",
            "12345678901234567890123456789012",
            "123456789012345678901234567890123",
            "5078033157643.649617422463985880546335",
            "-507803315764.649617422463985880546335",
            "12345678901234567890123456789012345678",
            "123456789012345678901234567890123456789",
            "1234567890123456789012345678901234567.8",
            "0.000000000000000000000000000000000001",
            "100000000000000000000000000000000000000000000000",
            "01",
            "-",
            ".5",
            "5.",
            "1..2",
            "1.2.3",
            "--1",
            "1-",
            "1e5",
            "1E+3",
            "+1",
            "00.1",
            "-01",
            "1.",
            "12345678901234567890123456789.0x",
            "١",
        ];
        for text in texts {
            // The text, then what follows a number's closing quote in a document.
            let mut w = [b'x'; 64];
            let cut = text.len().min(SHORT_READ);
            w[..cut].copy_from_slice(&text.as_bytes()[..cut]);
            w[cut] = b'"';
            let full = is_json_number(text.as_bytes()) && dynamo_number(text.as_bytes()).is_ok();
            let plain = text.len() <= SHORT && !text.contains(['e', 'E', '+']);
            for (kernel, c) in classes_of_each_kernel(&w) {
                let short = short_number(c, text.len());
                assert!(!short || full, "{text} ({kernel:?})");
                assert_eq!(short, plain && full, "{text} ({kernel:?})");
            }
        }
    }

    /// Every kernel's classes of every byte value, at every place of the bytes read.
    #[test]
    fn number_classes_agree() {
        for value in 0..=255u8 {
            for at in 0..SHORT_READ {
                let mut w = [b'7'; 64];
                w[at] = value;
                let want = Classes {
                    digits: (0..SHORT_READ)
                        .filter(|&k| w[k].is_ascii_digit())
                        .fold(0, |m, k| m | 1 << k),
                    dots: u64::from(value == b'.') << at,
                    minus: u64::from(value == b'-') << at,
                    zeros: u64::from(value == b'0') << at,
                };
                let low = (1u64 << SHORT_READ) - 1;
                for (kernel, c) in classes_of_each_kernel(&w) {
                    let c = Classes {
                        digits: c.digits & low,
                        dots: c.dots & low,
                        minus: c.minus & low,
                        zeros: c.zeros & low,
                    };
                    assert_eq!(c, want, "byte {value:#04x} at {at} ({kernel:?})");
                }
            }
        }
    }

    /// The number classes of `w` by each kernel this CPU runs.
    fn classes_of_each_kernel(w: &[u8; 64]) -> Vec<(Kernel, Classes)> {
        let mut all = Vec::new();
        for k in Kernel::ALL {
            if !k.is_available() || k == Kernel::Scalar {
                continue;
            }
            // SAFETY: `w` holds 64 bytes, and `k` runs on this CPU.
            let c = unsafe {
                match k {
                    #[cfg(target_arch = "x86_64")]
                    Kernel::Sse2 => Sse2::classes(w.as_ptr()),
                    #[cfg(target_arch = "x86_64")]
                    Kernel::Avx2 => Avx2::classes(w.as_ptr()),
                    #[cfg(target_arch = "x86_64")]
                    Kernel::Avx512 => avx512_classes(w.as_ptr()),
                    _ => Swar::classes(w.as_ptr()),
                }
            };
            all.push((k, c));
        }
        all
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512bw")]
    unsafe fn avx512_classes(s: *const u8) -> Classes {
        // SAFETY: as in `classes_of_each_kernel`.
        unsafe { Avx512::classes(s) }
    }

    #[test]
    fn detected_is_available() {
        assert!(Kernel::detected().is_available());
        for k in Kernel::ALL {
            assert_eq!(Kernel::from_name(k.name()), Some(k));
        }
    }
}
