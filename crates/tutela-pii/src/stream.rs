//! Streaming over a reader: one line at a time in a reused buffer, so memory stays
//! constant whatever the input size. Invalid UTF-8 is an error naming the line.

use crate::{scan_line, Redactor, Span};
use std::io::{BufRead, Write};

#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error("line {line} is not valid UTF-8 (byte {byte} of the line)")]
    InvalidUtf8 { line: u64, byte: usize },
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// What a streaming pass saw.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    pub lines: u64,
    pub bytes: u64,
    pub spans: u64,
}

/// Calls `each(line_no, line, spans)` for every line; `progress(bytes)` now and then.
pub fn for_each_line(
    input: &mut dyn BufRead,
    mut each: impl FnMut(u64, &str, &[Span]) -> std::io::Result<()>,
    mut progress: impl FnMut(u64),
) -> Result<Totals, StreamError> {
    let mut buf = Vec::with_capacity(64 * 1024);
    let mut spans = Vec::with_capacity(64);
    let mut t = Totals::default();
    loop {
        buf.clear();
        let n = input.read_until(b'\n', &mut buf)?;
        if n == 0 {
            return Ok(t);
        }
        t.lines += 1;
        t.bytes += n as u64;
        let content = buf.strip_suffix(b"\n").unwrap_or(&buf);
        let line = simdutf8::compat::from_utf8(content).map_err(|e| StreamError::InvalidUtf8 {
            line: t.lines,
            byte: e.valid_up_to(),
        })?;
        spans.clear();
        scan_line(line, &mut spans);
        t.spans += spans.len() as u64;
        each(t.lines, line, &spans)?;
        if t.lines % 4096 == 0 {
            progress(t.bytes);
        }
    }
}

/// Writes spans as JSON lines `{"line","start","end","type"}` (never the text).
pub fn scan(
    input: &mut dyn BufRead,
    output: &mut dyn Write,
    progress: impl FnMut(u64),
) -> Result<Totals, StreamError> {
    let mut out = String::with_capacity(128);
    for_each_line(
        input,
        |n, _, spans| {
            for s in spans {
                out.clear();
                use std::fmt::Write as _;
                let _ = writeln!(
                    out,
                    "{{\"line\":{n},\"start\":{},\"end\":{},\"type\":\"{}\"}}",
                    s.start, s.end, s.kind
                );
                output.write_all(out.as_bytes())?;
            }
            Ok(())
        },
        progress,
    )
}

/// Writes the input with every finding replaced by `redactor`'s output.
pub fn redact(
    input: &mut dyn BufRead,
    output: &mut dyn Write,
    redactor: &Redactor,
    progress: impl FnMut(u64),
) -> Result<Totals, StreamError> {
    let mut out = String::with_capacity(64 * 1024);
    for_each_line(
        input,
        |_, line, spans| {
            out.clear();
            redactor.redact_line(line, spans, &mut out);
            out.push('\n');
            output.write_all(out.as_bytes())
        },
        progress,
    )
}
