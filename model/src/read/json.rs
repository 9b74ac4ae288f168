//! Plumbing shared by the JSON readers (OTLP JSON, Jaeger, Zipkin): streaming a
//! top-level array one element at a time, turning serde_json errors into located
//! [`ReadError`]s, and the field decoders every format needs.

use std::fmt;
use std::io::{self, BufRead};

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, SeqAccess, Visitor};
use serde_json::value::RawValue;

use super::{Format, Location, ReadError, ReadErrorKind, Reading};

/// Skips a UTF-8 byte order mark: format detection looks past it, serde_json does not.
pub(crate) fn skip_bom(input: &mut dyn BufRead) -> io::Result<()> {
    if input.fill_buf()?.starts_with(b"\xef\xbb\xbf") {
        input.consume(3);
    }
    Ok(())
}

/// What a reader does with each element of a streamed array (numbered from 1).
pub(crate) trait Elements {
    fn element(&mut self, n: u64, raw: &RawValue) -> Result<(), ReadError>;
}

/// Streams a JSON array one element at a time: each element is buffered as raw JSON
/// (a syntax error there is an error of the stream) and handed to `elements`, which
/// decodes it (a decoding error there costs only that element). `null` is an empty array.
pub(crate) struct ArraySeed<'a, E> {
    pub(crate) elements: &'a mut E,
    /// Where an error that must end the read waits while serde unwinds.
    pub(crate) stop: &'a mut Option<ReadError>,
    /// What the array should hold, for the error when it is something else.
    pub(crate) what: &'static str,
}

impl<'de, E: Elements> DeserializeSeed<'de> for ArraySeed<'_, E> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de, E: Elements> Visitor<'de> for ArraySeed<'_, E> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.what)
    }

    fn visit_unit<Er: de::Error>(self) -> Result<(), Er> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut n = 0;
        while let Some(raw) = seq.next_element::<Box<RawValue>>()? {
            n += 1;
            if let Err(e) = self.elements.element(n, &raw) {
                return Err(stop_with(self.stop, e));
            }
        }
        Ok(())
    }
}

/// Parks `error` and returns the serde error that unwinds the deserializer.
pub(crate) fn stop_with<E: de::Error>(stop: &mut Option<ReadError>, error: ReadError) -> E {
    *stop = Some(error);
    E::custom("the read was stopped")
}

/// Turns the outcome of a streamed document into the read's result: a parked error
/// first, else the JSON error with its line and column.
pub(crate) fn end_of_stream(
    result: serde_json::Result<()>,
    stop: Option<ReadError>,
    reading: &mut Reading<'_>,
    format: Format,
) -> Result<(), ReadError> {
    if let Some(error) = stop {
        return Err(error);
    }
    let Err(e) = result else { return Ok(()) };
    let location = Location::LineColumn(e.line() as u64, e.column() as u64);
    let kind = if e.is_eof() {
        ReadErrorKind::Truncated("the JSON document is not closed".into())
    } else if e.is_io() {
        ReadErrorKind::Io(io::Error::other(without_position(&e)))
    } else {
        ReadErrorKind::Syntax {
            format,
            reason: without_position(&e),
        }
    };
    // After a broken document there is no safe place to resume: even a lenient read
    // stops here, keeping what came before.
    let error = reading.error(location, kind);
    reading.skip(error)
}

/// serde_json's message without its " at line L column C" (reported separately).
pub(crate) fn without_position(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rfind(" at line ") {
        Some(at) => text[..at].to_owned(),
        None => text,
    }
}

/// Decodes one buffered element; the error names the spot within the element.
pub(crate) fn parse_element<'a, T: Deserialize<'a>>(raw: &'a RawValue) -> Result<T, String> {
    serde_json::from_str(raw.get()).map_err(|e| {
        format!(
            "{} (line {}, column {} of the element)",
            without_position(&e),
            e.line(),
            e.column()
        )
    })
}

/// `null` means "not set": the field's default.
pub(crate) fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}
