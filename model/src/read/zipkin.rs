//! (being written)
use std::io::BufRead;

use super::{Reading, ReadError, ReadErrorKind, Location};

pub(crate) fn read(_input: &mut dyn BufRead, reading: &mut Reading<'_>) -> Result<(), ReadError> {
    Err(reading.error(Location::Input, ReadErrorKind::Invalid("not yet".into())))
}
