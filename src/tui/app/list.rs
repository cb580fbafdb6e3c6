//! The selection and scroll position of a list that shows a page of rows.

use std::ops::Range;

use crate::tui::action::Command;

/// Selected row and first visible row of a list.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ListCursor {
    pub selected: usize,
    pub offset: usize,
}

impl ListCursor {
    /// Applies a movement command to a list of `len` rows showing `page`
    /// rows at a time; returns whether the command was a movement.
    pub fn apply(&mut self, command: Command, len: usize, page: usize) -> bool {
        let last = len.saturating_sub(1);
        let step = page.max(1);
        self.selected = match command {
            Command::MoveUp => self.selected.saturating_sub(1),
            Command::MoveDown => (self.selected + 1).min(last),
            Command::PageUp => self.selected.saturating_sub(step),
            Command::PageDown => (self.selected + step).min(last),
            Command::First => 0,
            Command::Last => last,
            _ => return false,
        };
        self.clamp(len, page);
        true
    }

    /// Keeps the selection inside the list and on the visible page.
    pub fn clamp(&mut self, len: usize, page: usize) {
        self.selected = self.selected.min(len.saturating_sub(1));
        if self.selected < self.offset {
            self.offset = self.selected;
        } else if page > 0 && self.selected >= self.offset + page {
            self.offset = self.selected + 1 - page;
        }
        // Fill the page after the list shrank or the page grew.
        self.offset = self.offset.min(len.saturating_sub(page));
    }

    /// The rows on the page.
    pub fn visible(&self, len: usize, page: usize) -> Range<usize> {
        let start = self.offset.min(len);
        start..(start + page).min(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moves_and_scrolls() {
        let mut cursor = ListCursor::default();
        for _ in 0..12 {
            cursor.apply(Command::MoveDown, 100, 10);
        }
        assert_eq!(
            cursor,
            ListCursor {
                selected: 12,
                offset: 3
            }
        );
        cursor.apply(Command::Last, 100, 10);
        assert_eq!(
            cursor,
            ListCursor {
                selected: 99,
                offset: 90
            }
        );
        cursor.apply(Command::PageUp, 100, 10);
        assert_eq!(
            cursor,
            ListCursor {
                selected: 89,
                offset: 89
            }
        );
        cursor.apply(Command::First, 100, 10);
        assert_eq!(
            cursor,
            ListCursor {
                selected: 0,
                offset: 0
            }
        );
        assert_eq!(cursor.visible(100, 10), 0..10);
    }

    #[test]
    fn empty_list_and_zero_page() {
        let mut cursor = ListCursor::default();
        assert!(cursor.apply(Command::MoveDown, 0, 0));
        assert_eq!(cursor, ListCursor::default());
        assert_eq!(cursor.visible(0, 0), 0..0);
    }

    #[test]
    fn shrinking_list_pulls_selection_back() {
        let mut cursor = ListCursor {
            selected: 50,
            offset: 45,
        };
        cursor.clamp(20, 10);
        assert_eq!(
            cursor,
            ListCursor {
                selected: 19,
                offset: 10
            }
        );
    }
}
