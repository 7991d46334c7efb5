//! An incremental, validating JSON scanner for the streamed merge ([`super::stream`]).
//!
//! [`scan_value`] finds where a JSON value ends, checking its grammar on the way (strings,
//! their escapes and UTF-8, numbers, literals, nesting), without building anything; it tells a value cut short by the end of the bytes so far ([`Stop::Incomplete`])
//! from bytes that are not JSON ([`Stop::Invalid`]), and can note where an object's
//! `metadata` and `metadata.annotations` stand ([`Marks`]) so the cluster annotations can be
//! inserted without a second pass.
//!
//! [`ListReader`] reads one member's list (or Table) as its bytes arrive: the members of the
//! top-level object one by one (`kind`, `apiVersion`, `metadata`, `columnDefinitions` are
//! kept), and the elements of its `items` (or `rows`) array one at a time. It holds only
//! the bytes not handed out yet: at most one element (or one other top-level member) and
//! the frame that completes it. A frame is read in place; only an element cut across
//! frames is copied, joined with the next frame's first bytes. An element cut across
//! frames is scanned again when more bytes came; past 64 KiB only once the buffer has
//! doubled since the last try, so a big element arriving in many small frames costs a few
//! scans, not one per frame.

use bytes::{Buf, Bytes, BytesMut};
use std::ops::Range;

/// Why a scan stopped short of a value's end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stop {
    /// The bytes end before the value does: more are needed.
    Incomplete,
    /// The bytes are not JSON.
    Invalid,
}

/// Where an object's `metadata` value and that value's `annotations` value stand (start and
/// end, relative to the scanned bytes); the first of each.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Marks {
    /// The value of the object's member `metadata`.
    pub metadata: Option<Range32>,
    /// The value of `metadata`'s member `annotations` (when `metadata` is an object).
    pub annotations: Option<Range32>,
}

/// A byte range (start, end).
pub(crate) type Range32 = (usize, usize);

/// The deepest nesting accepted (serde_json's own limit is 128 too).
const MAX_DEPTH: u32 = 128;

/// ASCII bytes a string may hold as they are (not `"`, `\`, or a control character).
static PLAIN: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0x20;
    while i < 0x80 {
        t[i] = true;
        i += 1;
    }
    t[b'"' as usize] = false;
    t[b'\\' as usize] = false;
    t
};

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// A mask whose lowest set bit is the high bit of the first byte of `x` (little-endian)
/// that ends or escapes a string, is a control character or is not ASCII; 0 when there is
/// none. (Higher bits may be set wrongly, by the borrows: only the lowest is exact.)
#[inline]
fn special8(x: u64) -> u64 {
    let zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGHS;
    let quote = zero(x ^ (ONES * u64::from(b'"')));
    let backslash = zero(x ^ (ONES * u64::from(b'\\')));
    let control = x.wrapping_sub(ONES * 0x20) & !x & HIGHS;
    quote | backslash | control | (x & HIGHS)
}

/// The index of the first byte at or after `i` that is not JSON whitespace.
#[inline]
pub(crate) fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && matches!(b[i], b' ' | b'\n' | b'\r' | b'\t') {
        i += 1;
    }
    i
}

/// `b[i]` is `"`: the index just past the string (whose bytes are UTF-8).
#[inline]
pub(crate) fn scan_string(b: &[u8], mut i: usize) -> Result<usize, Stop> {
    let n = b.len();
    i += 1;
    loop {
        loop {
            if i + 8 <= n {
                let mut w = [0u8; 8];
                w.copy_from_slice(&b[i..i + 8]);
                let special = special8(u64::from_le_bytes(w));
                if special == 0 {
                    i += 8;
                    continue;
                }
                i += (special.trailing_zeros() / 8) as usize;
            } else {
                while i < n && PLAIN[b[i] as usize] {
                    i += 1;
                }
            }
            break;
        }
        let Some(&c) = b.get(i) else {
            return Err(Stop::Incomplete);
        };
        match c {
            b'"' => return Ok(i + 1),
            b'\\' => match b.get(i + 1) {
                None => return Err(Stop::Incomplete),
                Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => i += 2,
                Some(b'u') => {
                    for k in i + 2..i + 6 {
                        match b.get(k) {
                            None => return Err(Stop::Incomplete),
                            Some(h) if h.is_ascii_hexdigit() => {}
                            Some(_) => return Err(Stop::Invalid),
                        }
                    }
                    i += 6;
                }
                Some(_) => return Err(Stop::Invalid),
            },
            0x80.. => {
                let width = match c {
                    0xC2..=0xDF => 2,
                    0xE0..=0xEF => 3,
                    0xF0..=0xF4 => 4,
                    _ => return Err(Stop::Invalid),
                };
                let Some(char) = b.get(i..i + width) else {
                    return Err(Stop::Incomplete);
                };
                if std::str::from_utf8(char).is_err() {
                    return Err(Stop::Invalid);
                }
                i += width;
            }
            _ => return Err(Stop::Invalid),
        }
    }
}

/// `b[i]` starts a number: the index just past it. A number running to the end of the
/// bytes is incomplete (more digits may follow).
fn scan_number(b: &[u8], mut i: usize) -> Result<usize, Stop> {
    let n = b.len();
    let digits = |mut i: usize| -> Result<usize, Stop> {
        match b.get(i) {
            None => return Err(Stop::Incomplete),
            Some(d) if d.is_ascii_digit() => {}
            Some(_) => return Err(Stop::Invalid),
        }
        while i < n && b[i].is_ascii_digit() {
            i += 1;
        }
        Ok(i)
    };
    if b[i] == b'-' {
        i += 1;
    }
    match b.get(i) {
        None => return Err(Stop::Incomplete),
        Some(b'0') => i += 1,
        Some(b'1'..=b'9') => i = digits(i)?,
        Some(_) => return Err(Stop::Invalid),
    }
    if b.get(i) == Some(&b'.') {
        i = digits(i + 1)?;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        i = digits(i)?;
    }
    if i >= n {
        return Err(Stop::Incomplete);
    }
    Ok(i)
}

/// `b[i..]` should be `word`: the index just past it.
fn scan_literal(b: &[u8], i: usize, word: &[u8]) -> Result<usize, Stop> {
    let have = &b[i..(i + word.len()).min(b.len())];
    if have != &word[..have.len()] {
        Err(Stop::Invalid)
    } else if have.len() < word.len() {
        Err(Stop::Incomplete)
    } else {
        Ok(i + word.len())
    }
}

/// The index just past the JSON value that starts at `start` (after whitespace), checking
/// its grammar. With `marks`, notes where the value's (an object's) `metadata` and
/// `metadata.annotations` stand.
pub(crate) fn scan_value(b: &[u8], start: usize, marks: Option<&mut Marks>) -> Result<usize, Stop> {
    let i = skip_ws(b, start);
    match (marks, b.get(i)) {
        (Some(marks), Some(b'{')) => members(b, i, 1, |key, v| {
            if key == b"metadata" && marks.metadata.is_none() {
                let end = match b.get(v) {
                    Some(b'{') => members(b, v, 2, |key, a| {
                        let end = value(b, a, 2)?;
                        if key == b"annotations" && marks.annotations.is_none() {
                            marks.annotations = Some((a, end));
                        }
                        Ok(end)
                    })?,
                    _ => value(b, v, 1)?,
                };
                marks.metadata = Some((v, end));
                Ok(end)
            } else {
                value(b, v, 1)
            }
        }),
        _ => value(b, i, 0),
    }
}

/// The value at `i` (after whitespace), inside `depth` containers.
fn value(b: &[u8], i: usize, depth: u32) -> Result<usize, Stop> {
    let i = skip_ws(b, i);
    let Some(&c) = b.get(i) else {
        return Err(Stop::Incomplete);
    };
    match c {
        b'"' => scan_string(b, i),
        b'{' => members(b, i, depth + 1, |_, v| value(b, v, depth + 1)),
        b'[' => elements(b, i, depth + 1),
        b't' => scan_literal(b, i, b"true"),
        b'f' => scan_literal(b, i, b"false"),
        b'n' => scan_literal(b, i, b"null"),
        b'-' | b'0'..=b'9' => scan_number(b, i),
        _ => Err(Stop::Invalid),
    }
}

/// The object at `b[i] == '{'` (at `depth`): each member's value scanned by `f(key, its
/// start)`, which returns its end.
#[inline]
fn members(
    b: &[u8],
    mut i: usize,
    depth: u32,
    mut f: impl FnMut(&[u8], usize) -> Result<usize, Stop>,
) -> Result<usize, Stop> {
    if depth > MAX_DEPTH {
        return Err(Stop::Invalid);
    }
    i = skip_ws(b, i + 1);
    match b.get(i) {
        None => return Err(Stop::Incomplete),
        Some(b'}') => return Ok(i + 1),
        Some(_) => {}
    }
    loop {
        if b[i] != b'"' {
            return Err(Stop::Invalid);
        }
        let end = scan_string(b, i)?;
        let key = &b[i + 1..end - 1];
        i = skip_ws(b, end);
        match b.get(i) {
            None => return Err(Stop::Incomplete),
            Some(b':') => {}
            Some(_) => return Err(Stop::Invalid),
        }
        i = skip_ws(b, i + 1);
        if i >= b.len() {
            return Err(Stop::Incomplete);
        }
        i = skip_ws(b, f(key, i)?);
        match b.get(i) {
            None => return Err(Stop::Incomplete),
            Some(b',') => {
                i = skip_ws(b, i + 1);
                if i >= b.len() {
                    return Err(Stop::Incomplete);
                }
            }
            Some(b'}') => return Ok(i + 1),
            Some(_) => return Err(Stop::Invalid),
        }
    }
}

/// The array at `b[i] == '['` (at `depth`).
fn elements(b: &[u8], mut i: usize, depth: u32) -> Result<usize, Stop> {
    if depth > MAX_DEPTH {
        return Err(Stop::Invalid);
    }
    i = skip_ws(b, i + 1);
    match b.get(i) {
        None => return Err(Stop::Incomplete),
        Some(b']') => return Ok(i + 1),
        Some(_) => {}
    }
    loop {
        i = skip_ws(b, value(b, i, depth)?);
        match b.get(i) {
            None => return Err(Stop::Incomplete),
            Some(b',') => i += 1,
            Some(b']') => return Ok(i + 1),
            Some(_) => return Err(Stop::Invalid),
        }
    }
}

/// What a [`ListReader`] reads in: the frame in place, else the joined bytes. (Of the
/// fields, so that reading can move its position while it holds the bytes.)
fn window<'a>(frame: &'a Option<Bytes>, joined: &'a BytesMut) -> &'a [u8] {
    match frame {
        Some(f) => f,
        None => joined,
    }
}

/// A value cut across frames is scanned again at every frame while it is shorter than
/// this, and then only once the buffer has doubled (a complete value past this length may
/// so wait for more bytes, or the body's end, to be handed out).
const RESCAN_ALWAYS: usize = 64 * 1024;

/// A value cut across frames (shorter than [`RESCAN_ALWAYS`]) is joined with this many
/// bytes of the next frame first; most values end within them (a Service is under 1 KiB),
/// and the rest of the frame is then read in place. One that does not gets the whole frame
/// joined.
const JOIN_AHEAD: usize = 4 * 1024;

/// What [`ListReader::next`] found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Event {
    /// More bytes are needed (or, after [`ListReader::finish`], there are none: see `next`).
    NeedMore,
    /// The element array (`items` or `rows`) begins: `kind` and whatever came before it are
    /// known.
    ArrayStart,
    /// One element: its bytes are [`ListReader::bytes`] of this range until the next call.
    Element(Range<usize>, Marks),
    /// The list's object ended (and only whitespace followed, when the body ended).
    End,
}

/// Where a [`ListReader`] stands in the member's body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum At {
    /// Before the top-level `{`.
    Start,
    /// After `{`: a key or `}`.
    FirstKey,
    /// After `,`: a key.
    Key,
    /// After a top-level member: `,` or `}`.
    Next,
    /// In the element array, before its first element or `]`.
    FirstElement,
    /// In the element array after an element: `,` or `]`.
    NextElement,
    /// In the element array after `,`: an element.
    Element,
    /// After the top-level object: whitespace until the end.
    Done,
}

/// Reads one member's list (or Table) body as it arrives; see the module docs.
pub(crate) struct ListReader {
    /// The frame being read in place, when what is left to read is all in one frame;
    /// `None`: it is in `joined`.
    frame: Option<Bytes>,
    /// A value's start (what was left of a frame) joined with the bytes after it.
    joined: BytesMut,
    /// Where the bytes not read yet start in `frame` or `joined` (those before go at the
    /// next push).
    pos: usize,
    /// A frame whose first bytes were copied to the end of `joined`, from `joined[.1]` on:
    /// once reading is past `.1`, it goes on in the frame itself. (`joined` does not change
    /// while this is set.)
    resume: Option<(Bytes, usize)>,
    at: At,
    /// Do not scan an incomplete value again before this many bytes are left to read.
    wait_for: usize,
    eof: bool,
    /// The element array's key, when known (`items` or `rows`); `None`: either.
    array_key: Option<&'static str>,
    /// The key of the element array that was found.
    pub found_key: Option<&'static str>,
    /// `kind`, once read.
    pub kind: Option<String>,
    /// `apiVersion`, once read.
    pub api_version: Option<String>,
    /// `metadata.resourceVersion`, once read.
    pub resource_version: Option<String>,
    /// `columnDefinitions` (a Table's), as its JSON text.
    pub columns: Option<String>,
    /// Elements handed out.
    pub elements: usize,
}

/// The parts of a list's `metadata` kept.
#[derive(serde::Deserialize)]
struct ListMeta {
    #[serde(rename = "resourceVersion", default)]
    resource_version: Option<String>,
}

impl ListReader {
    /// A reader whose element array is `array_key` (`items`, `rows`), or either when `None`.
    pub(crate) fn new(array_key: Option<&'static str>) -> Self {
        ListReader {
            frame: None,
            joined: BytesMut::new(),
            pos: 0,
            resume: None,
            at: At::Start,
            wait_for: 0,
            eof: false,
            array_key,
            found_key: None,
            kind: None,
            api_version: None,
            resource_version: None,
            columns: None,
            elements: 0,
        }
    }

    /// Sets the element array's key (after a first read with either).
    pub(crate) fn set_array_key(&mut self, key: &'static str) {
        self.array_key = Some(key);
    }

    /// Adds bytes of the body (an element handed out before is gone then). A frame is read
    /// in place; only a value that runs across frames is copied, with its start joined to
    /// the next bytes: a small one with just enough of the new frame to likely end it
    /// ([`JOIN_AHEAD`]), after which reading goes on in the frame itself.
    pub(crate) fn push(&mut self, data: Bytes) {
        // (Pushed before the last frame was read: it is joined whole first.)
        self.absorb();
        let rest = self.unread().len();
        if rest == 0 {
            self.frame = Some(data);
            self.joined.clear();
            self.pos = 0;
            return;
        }
        match self.frame.take() {
            Some(frame) => {
                self.joined.clear();
                let take = match rest < RESCAN_ALWAYS {
                    true => data.len().min(rest + JOIN_AHEAD),
                    false => data.len(),
                };
                self.joined.extend_from_slice(&frame[self.pos..]);
                self.joined.extend_from_slice(&data[..take]);
                if take < data.len() {
                    self.resume = Some((data, rest));
                }
            }
            None => {
                self.joined.advance(self.pos);
                self.joined.extend_from_slice(&data);
            }
        }
        self.pos = 0;
    }

    /// The bytes not read yet.
    fn unread(&self) -> &[u8] {
        &window(&self.frame, &self.joined)[self.pos..]
    }

    /// Past the joined start of a frame: reading goes on in the frame.
    fn settle(&mut self) {
        if let Some((frame, from)) = self.resume.take_if(|(_, from)| self.pos >= *from) {
            self.pos -= from;
            self.frame = Some(frame);
        }
    }

    /// The rest of a frame whose start was joined is joined too (the value runs on past
    /// what was joined); `false` when there is none.
    fn absorb(&mut self) -> bool {
        match self.resume.take() {
            Some((frame, from)) => {
                let copied = self.joined.len() - from;
                self.joined.extend_from_slice(&frame[copied..]);
                true
            }
            None => false,
        }
    }

    /// The body ended.
    pub(crate) fn finish(&mut self) {
        self.eof = true;
    }

    /// The bytes of an element [`ListReader::next`] returned.
    pub(crate) fn bytes(&self, r: Range<usize>) -> &[u8] {
        &window(&self.frame, &self.joined)[r]
    }

    /// Whether the body so far is over: `Ok(true)` when it is (nothing but whitespace after
    /// the list), `Err` when more bytes came after it.
    fn done(&mut self) -> Result<bool, Stop> {
        self.absorb();
        let rest = self.unread();
        if skip_ws(rest, 0) < rest.len() {
            return Err(Stop::Invalid);
        }
        self.frame = None;
        self.joined.clear();
        self.pos = 0;
        Ok(self.eof)
    }

    /// The next thing in the body. `Err(Stop::Incomplete)` only after [`ListReader::finish`]
    /// (the body was cut short); `Err(Stop::Invalid)`: not a JSON object, or not JSON.
    pub(crate) fn next(&mut self) -> Result<Event, Stop> {
        loop {
            match self.step()? {
                Event::NeedMore if self.absorb() => continue,
                event => return Ok(event),
            }
        }
    }

    /// [`ListReader::next`] within the bytes pushed (a frame's rest not joined yet aside).
    fn step(&mut self) -> Result<Event, Stop> {
        if !self.eof && self.resume.is_none() && self.unread().len() < self.wait_for {
            return Ok(Event::NeedMore);
        }
        loop {
            self.settle();
            let b = &window(&self.frame, &self.joined)[self.pos..];
            let i = skip_ws(b, 0);
            if self.at == At::Done {
                return match self.done()? {
                    true => Ok(Event::End),
                    false => Ok(Event::NeedMore),
                };
            }
            let Some(&c) = b.get(i) else {
                return self.short(b.len());
            };
            match (self.at, c) {
                (At::Start, b'{') => {
                    self.at = At::FirstKey;
                    self.pos += i + 1;
                }
                (At::Start, _) => return Err(Stop::Invalid),
                (At::FirstKey, b'}') | (At::Next, b'}') => {
                    self.at = At::Done;
                    self.pos += i + 1;
                }
                (At::Next, b',') => {
                    self.at = At::Key;
                    self.pos += i + 1;
                }
                (At::Next, _) => return Err(Stop::Invalid),
                (At::FirstKey | At::Key, b'"') => {
                    // A whole member: key, colon, and (unless it is the array) value.
                    let end = match scan_string(b, i) {
                        Ok(e) => e,
                        Err(Stop::Incomplete) => return self.short(b.len()),
                        Err(e) => return Err(e),
                    };
                    let key = &b[i + 1..end - 1];
                    let colon = skip_ws(b, end);
                    match b.get(colon) {
                        None => return self.short(b.len()),
                        Some(b':') => {}
                        Some(_) => return Err(Stop::Invalid),
                    }
                    let v = skip_ws(b, colon + 1);
                    if v >= b.len() {
                        return self.short(b.len());
                    }
                    let array = [("items", &b"items"[..]), ("rows", &b"rows"[..])]
                        .into_iter()
                        .find(|(name, k)| {
                            *k == key
                                && self.array_key.is_none_or(|a| a == *name)
                                && self.found_key.is_none()
                        })
                        .map(|(name, _)| name);
                    if let (Some(name), b'[') = (array, b[v]) {
                        self.found_key = Some(name);
                        self.at = At::FirstElement;
                        self.pos += v + 1;
                        self.wait_for = 0;
                        return Ok(Event::ArrayStart);
                    }
                    let value_end = match scan_value(b, v, None) {
                        Ok(e) => e,
                        Err(Stop::Incomplete) => return self.short(b.len()),
                        Err(e) => return Err(e),
                    };
                    let value = &b[v..value_end];
                    match key {
                        b"kind" => self.kind = serde_json::from_slice(value).ok(),
                        b"apiVersion" => self.api_version = serde_json::from_slice(value).ok(),
                        b"metadata" => {
                            if let Ok(m) = serde_json::from_slice::<ListMeta>(value) {
                                self.resource_version = m.resource_version;
                            }
                        }
                        b"columnDefinitions" => {
                            self.columns = std::str::from_utf8(value).ok().map(str::to_string)
                        }
                        _ => {}
                    }
                    if array.is_some() {
                        // `items: null`: no elements.
                        self.found_key = array;
                    }
                    self.at = At::Next;
                    self.pos += value_end;
                    self.wait_for = 0;
                }
                (At::FirstKey | At::Key, _) => return Err(Stop::Invalid),
                (At::FirstElement, b']') | (At::NextElement, b']') => {
                    self.at = At::Next;
                    self.pos += i + 1;
                }
                (At::NextElement, b',') => {
                    self.at = At::Element;
                    self.pos += i + 1;
                }
                (At::NextElement, _) => return Err(Stop::Invalid),
                (At::FirstElement | At::Element, _) => {
                    let mut marks = Marks::default();
                    let end = match scan_value(b, i, Some(&mut marks)) {
                        Ok(e) => e,
                        Err(Stop::Incomplete) => return self.short(b.len()),
                        Err(e) => return Err(e),
                    };
                    let shift = |r: Option<Range32>| r.map(|(s, e)| (s - i, e - i));
                    let marks = Marks {
                        metadata: shift(marks.metadata),
                        annotations: shift(marks.annotations),
                    };
                    let at = self.pos;
                    self.at = At::NextElement;
                    self.pos += end;
                    self.wait_for = 0;
                    self.elements += 1;
                    return Ok(Event::Element(at + i..at + end, marks));
                }
                (At::Done, _) => unreachable!("handled above"),
            }
        }
    }

    /// The buffer (`len` bytes) ends inside a value: scan again when more bytes came (a
    /// value longer than [`RESCAN_ALWAYS`] only once the buffer has doubled), or the body
    /// was cut short.
    fn short(&mut self, len: usize) -> Result<Event, Stop> {
        if self.eof {
            return Err(Stop::Incomplete);
        }
        self.wait_for = if len < RESCAN_ALWAYS {
            len + 1
        } else {
            len.saturating_mul(2)
        };
        Ok(Event::NeedMore)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn whole(s: &str) -> Result<usize, Stop> {
        scan_value(s.as_bytes(), 0, None)
    }

    #[test]
    fn values_end_where_they_end_and_bad_ones_are_invalid() {
        for ok in [
            r#"{}"#,
            r#"[]"#,
            r#"{"a":[1,2.5,-3e+7,true,false,null,"x\"\\\/\b\f\n\r\t\u00e9"],"b":{}}"#,
            r#" { "a" : [ ] , "b" : { "c" : "d" } } "#,
            "\"héllo wörld, a string longer than eight bytes\"",
            "[0,-0,0.0,1E5,1e-5]",
        ] {
            let end = whole(ok).unwrap_or_else(|e| panic!("{ok}: {e:?}"));
            assert_eq!(&ok[end..].trim(), &"", "{ok}");
            // Every proper prefix (of the value itself) is incomplete.
            let trimmed = ok.trim_end();
            for cut in 0..trimmed.len() {
                if !trimmed.is_char_boundary(cut) {
                    continue;
                }
                assert_eq!(
                    whole(&trimmed[..cut]),
                    Err(Stop::Incomplete),
                    "{ok} cut at {cut}"
                );
            }
        }
        for bad in [
            r#"{"a" 1}"#,
            r#"{"a":1,}"#,
            r#"[1,]"#,
            r#"{"a":tru}"#,
            r#"{"a":01}"#,
            r#"{"a":1.}"#,
            r#"{"a":-}"#,
            r#"{"a":"\x"}"#,
            r#"{"a":"\u12g4"}"#,
            "{\"a\":\"new\nline\"}",
            r#"[1}"#,
            r#"{"a":1]"#,
            r#"{1:2}"#,
            r#"}"#,
            r#"{"a":+1}"#,
        ] {
            assert_eq!(whole(bad), Err(Stop::Invalid), "{bad}");
        }
        let deep = "[".repeat(200);
        assert_eq!(whole(&deep), Err(Stop::Invalid));
        let fine = format!("{}{}", "[".repeat(100), "]".repeat(100));
        assert_eq!(whole(&fine), Ok(200));
    }

    /// A random JSON text (objects, arrays, strings with escapes and non-ASCII, numbers,
    /// literals), `depth` levels at most.
    fn random_json(rng: &mut impl rand::Rng, depth: u32) -> String {
        let pick = if depth == 0 {
            rng.random_range(2..6)
        } else {
            rng.random_range(0..6)
        };
        match pick {
            0 => {
                let n = rng.random_range(0..4);
                let members: Vec<String> = (0..n)
                    .map(|_| format!("{}:{}", random_string(rng), random_json(rng, depth - 1)))
                    .collect();
                format!(
                    "{{{}}}",
                    members.join(if rng.random() { "," } else { " ,\n " })
                )
            }
            1 => {
                let n = rng.random_range(0..4);
                let items: Vec<String> = (0..n).map(|_| random_json(rng, depth - 1)).collect();
                format!("[{}]", items.join(","))
            }
            2 => random_string(rng),
            3 => ["0", "-12", "3.25", "1e5", "-0.5E-3", "42"][rng.random_range(0..6)].into(),
            4 => ["true", "false", "null"][rng.random_range(0..3)].into(),
            _ => format!(
                "{{\"metadata\":{{\"annotations\":{{\"a\":{}}}}}}}",
                random_string(rng)
            ),
        }
    }

    fn random_string(rng: &mut impl rand::Rng) -> String {
        const PARTS: [&str; 10] = [
            "a",
            "metadata",
            "\\\"",
            "\\u00e9",
            "\\n",
            "é",
            "\u{1F600}",
            "abcdefghij",
            " ",
            "\\\\",
        ];
        let n = rng.random_range(0..5);
        let body: String = (0..n)
            .map(|_| PARTS[rng.random_range(0..PARTS.len())])
            .collect();
        format!("\"{body}\"")
    }

    /// The scanner's verdict on texts that start an object or array agrees with serde_json's
    /// (through `RawValue`, which checks grammar and UTF-8 as the scanner does): valid,
    /// cut short, or not JSON; random texts and random damage to them.
    #[test]
    fn the_scanner_agrees_with_serde_json() {
        use rand::{Rng, SeedableRng};
        const NOISE: &[u8] = b"{}[],:\"\\ 0123456789.eE+-tfnaul\x01\x7f\xc3\xa9\xe2\x82\xff";
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        let mut checked = 0;
        for _ in 0..20_000 {
            let mut text = random_json(&mut rng, 4).into_bytes();
            if text.first().is_some_and(|c| !matches!(c, b'{' | b'[')) {
                text.insert(0, b'[');
                text.push(b']');
            }
            match rng.random_range(0..4) {
                0 => {}
                1 => text.truncate(rng.random_range(0..=text.len())),
                2 => {
                    let at = rng.random_range(0..=text.len());
                    text.insert(at, NOISE[rng.random_range(0..NOISE.len())]);
                }
                _ => {
                    if !text.is_empty() {
                        text.remove(rng.random_range(0..text.len()));
                    }
                }
            }
            if !matches!(text.get(skip_ws(&text, 0)), Some(b'{' | b'[')) {
                continue;
            }
            let ours = match scan_value(&text, 0, None) {
                Ok(end) if skip_ws(&text, end) == text.len() => "valid",
                Ok(_) => "invalid",
                Err(Stop::Incomplete) => "incomplete",
                Err(Stop::Invalid) => "invalid",
            };
            let theirs = match serde_json::from_slice::<&serde_json::value::RawValue>(&text) {
                Ok(_) => "valid",
                Err(e) if e.is_eof() => "incomplete",
                Err(_) => "invalid",
            };
            let shown = String::from_utf8_lossy(&text);
            match (ours, theirs) {
                (a, b) if a == b => {}
                // A number cut short: serde_json says invalid, though more digits may come.
                ("incomplete", "invalid") if text.last().is_some_and(|c| b".eE+-".contains(c)) => {}
                // Bad UTF-8 before the cut: serde_json checks UTF-8 only at the end.
                ("invalid", "incomplete")
                    if std::str::from_utf8(&text).is_err_and(|e| e.error_len().is_some()) => {}
                // A `\u` less than four bytes before the end: serde_json takes four bytes
                // before it checks them.
                ("invalid", "incomplete")
                    if text[text.len().saturating_sub(5)..]
                        .windows(2)
                        .any(|w| w == b"\\u") => {}
                (a, b) => panic!("{shown:?}: scanner {a}, serde_json {b}"),
            }
            checked += 1;
        }
        assert!(checked > 15_000, "{checked}");
    }

    #[test]
    fn strings_stop_at_the_first_special_byte_in_a_word() {
        // The word test is exact only for the word as a whole.
        for s in [
            "\"abcdefg\\\"hijklmnop\"",
            "\"\u{7f}\u{80}abcdefgh\"",
            "\"ab\u{1}cdefghijk\"",
        ] {
            let r = whole(s);
            if s.contains('\u{1}') {
                assert_eq!(r, Err(Stop::Invalid), "{s:?}");
            } else {
                assert_eq!(r, Ok(s.len()), "{s:?}");
            }
        }
    }

    #[test]
    fn marks_find_metadata_and_annotations() {
        let item = r#"{"kind":"Pod","spec":{"metadata":{"annotations":{}}},"metadata":{"name":"x","labels":{"annotations":"no"},"annotations":{"a":"b"}},"x":1}"#;
        let mut m = Marks::default();
        let end = scan_value(item.as_bytes(), 0, Some(&mut m)).unwrap();
        assert_eq!(end, item.len());
        let (ms, me) = m.metadata.unwrap();
        assert!(
            item[ms..me].starts_with(r#"{"name":"x""#),
            "{}",
            &item[ms..me]
        );
        assert!(item[ms..me].ends_with(r#""a":"b"}}"#));
        let (s, e) = m.annotations.unwrap();
        assert_eq!(&item[s..e], r#"{"a":"b"}"#);
        let mut m = Marks::default();
        scan_value(br#"{"metadata":null}"#, 0, Some(&mut m)).unwrap();
        assert_eq!(m.metadata, Some((12, 16)));
        assert_eq!(m.annotations, None);
    }

    /// Feeds `body` in pieces of `size` and collects what the reader says.
    fn read(body: &str, size: usize, key: Option<&'static str>) -> (ListReader, Vec<String>) {
        let mut r = ListReader::new(key);
        let mut out = Vec::new();
        let mut chunks = body.as_bytes().chunks(size.max(1));
        loop {
            match r.next() {
                Ok(Event::NeedMore) => match chunks.next() {
                    Some(c) => r.push(Bytes::copy_from_slice(c)),
                    None => r.finish(),
                },
                Ok(Event::ArrayStart) => out.push("[".into()),
                Ok(Event::Element(range, _)) => {
                    out.push(String::from_utf8(r.bytes(range).to_vec()).unwrap())
                }
                Ok(Event::End) => return (r, out),
                Err(e) => {
                    out.push(format!("{e:?}"));
                    return (r, out);
                }
            }
        }
    }

    #[test]
    fn a_list_is_read_element_by_element_whatever_the_frames() {
        let body = r#" {"kind":"ServiceList","apiVersion":"v1","metadata":{"resourceVersion":"42","x":[1]},"items":[{"metadata":{"name":"a"}} , {"metadata":{"name":"b"},"s":"]}"}],"after":{"k":"v"}}  "#;
        for size in [1, 2, 3, 7, 16, 1000] {
            let (r, out) = read(body, size, None);
            assert_eq!(
                out,
                [
                    "[",
                    r#"{"metadata":{"name":"a"}}"#,
                    r#"{"metadata":{"name":"b"},"s":"]}"}"#
                ],
                "{size}"
            );
            assert_eq!(r.kind.as_deref(), Some("ServiceList"));
            assert_eq!(r.api_version.as_deref(), Some("v1"));
            assert_eq!(r.resource_version.as_deref(), Some("42"));
            assert_eq!(r.found_key, Some("items"));
            assert_eq!(r.elements, 2);
        }
        // Metadata after the items, and `items: null`.
        let (r, out) = read(
            r#"{"items":[],"metadata":{"resourceVersion":"7"},"kind":"XList"}"#,
            3,
            Some("items"),
        );
        assert_eq!(out, ["["]);
        assert_eq!(r.resource_version.as_deref(), Some("7"));
        let (r, out) = read(r#"{"kind":"XList","items":null}"#, 4, Some("items"));
        assert!(out.is_empty(), "{out:?}");
        assert_eq!(r.found_key, Some("items"));
        // A Table's rows; `items` is then an ordinary member.
        let (r, out) = read(
            r#"{"kind":"Table","columnDefinitions":[{"name":"Name"}],"items":[1],"rows":[{"cells":["a"]}]}"#,
            5,
            Some("rows"),
        );
        assert_eq!(out, ["[", r#"{"cells":["a"]}"#]);
        assert_eq!(r.columns.as_deref(), Some(r#"[{"name":"Name"}]"#));
    }

    #[test]
    fn cut_short_and_malformed_bodies_say_so_after_the_good_elements() {
        let good = r#"{"kind":"L","items":[{"a":1},{"b":2}]}"#;
        for cut in 1..good.len() {
            let (_, out) = read(&good[..cut], 3, None);
            assert_eq!(out.last().unwrap(), "Incomplete", "{cut}: {out:?}");
        }
        let (_, out) = read(r#"{"kind":"L","items":[{"a":1},{"b":tru}]}"#, 4, None);
        assert_eq!(out, ["[", r#"{"a":1}"#, "Invalid"]);
        let (_, out) = read(r#"{"kind":"L","items":[{"a":1}]} x"#, 4, None);
        assert_eq!(out, ["[", r#"{"a":1}"#, "Invalid"]);
        let (_, out) = read(r#"[1]"#, 4, None);
        assert_eq!(out, ["Invalid"]);
    }

    #[test]
    fn elements_across_frames_of_any_size_come_out_whole_and_in_order() {
        // Elements from a few bytes to past RESCAN_ALWAYS, so that frames of every size
        // below cut them: joined with JOIN_AHEAD of the next frame and read on in place,
        // joined whole when they run past that, and grown in the joined bytes.
        let items: Vec<String> = (0..120)
            .map(|i| {
                let len = match i % 6 {
                    0 => 3,
                    1 => 300,
                    2 => JOIN_AHEAD - 10,
                    3 => JOIN_AHEAD * 2 + 7,
                    4 => 900,
                    _ => RESCAN_ALWAYS + 1000 * (i % 5),
                };
                format!(
                    r#"{{"metadata":{{"name":"i{i}"}},"data":"{}"}}"#,
                    "x".repeat(len)
                )
            })
            .collect();
        let body = format!(
            r#"{{"kind":"L","items":[{}],"metadata":{{"resourceVersion":"9"}}}} "#,
            items.join(" ,\n")
        );
        for size in [1000, 4095, 4096, 5000, 9000, 70_000, 300_000] {
            let (r, out) = read(&body, size, None);
            assert_eq!(out.len(), items.len() + 1, "{size}: {:?}", out.last());
            assert_eq!(&out[1..], &items[..], "{size}");
            assert_eq!(r.resource_version.as_deref(), Some("9"), "{size}");
        }
        // Small elements in large frames: only the elements cut across frames are copied
        // (each joined with JOIN_AHEAD of the next frame), never a whole frame.
        let small: Vec<String> = (0..400)
            .map(|i| {
                format!(
                    r#"{{"metadata":{{"name":"s{i}"}},"data":"{}"}}"#,
                    "y".repeat(700)
                )
            })
            .collect();
        let list = format!(r#"{{"kind":"L","items":[{}]}}"#, small.join(","));
        let (r, out) = read(&list, 64 * 1024, None);
        assert_eq!(&out[1..], &small[..]);
        assert!(
            r.joined.capacity() < 4 * JOIN_AHEAD,
            "{} bytes joined at once",
            r.joined.capacity()
        );
        // Bytes after the list in the frame whose start was joined are still seen.
        let (_, out) = read(&format!("{} x", body.trim_end()), 5000, None);
        assert_eq!(out.last().map(String::as_str), Some("Invalid"));
    }

    #[test]
    fn a_big_element_in_small_frames_is_scanned_a_few_times() {
        let big = format!(
            r#"{{"kind":"L","items":[{{"data":"{}"}}]}}"#,
            "x".repeat(1 << 20)
        );
        let mut r = ListReader::new(None);
        let mut scans = 0;
        let mut chunks = big.as_bytes().chunks(1024);
        loop {
            let before = r.wait_for;
            match r.next().unwrap() {
                Event::NeedMore => {
                    if r.wait_for != before {
                        scans += 1;
                    }
                    match chunks.next() {
                        Some(c) => r.push(Bytes::copy_from_slice(c)),
                        None => r.finish(),
                    }
                }
                Event::ArrayStart => {}
                Event::Element(range, _) => {
                    assert_eq!(range.len(), (1 << 20) + 11);
                    break;
                }
                Event::End => unreachable!(),
            }
        }
        // One per frame up to 64 KiB, then one per doubling.
        assert!(scans < 80, "{scans} scans");
    }
}
