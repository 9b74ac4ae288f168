//! The diagnoses view.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::widgets::{Paragraph, Widget};

use crate::app::App;

pub(super) fn render(_app: &App, area: Rect, buf: &mut Buffer) {
    Paragraph::new("diagnoses").render(area, buf);
}
