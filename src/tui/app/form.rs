//! A small form of one-line fields, for what needs more than the palette's
//! one line: a secret's name and value, a silence's duration and comment.
//!
//! A masked field keeps its text in memory that is zeroed when it is
//! dropped or replaced. It grows by copying into a larger buffer and
//! zeroing the old one, because a `String` that reallocates leaves copies
//! of the earlier text in freed memory. Its `Debug` output shows only the
//! length, so neither logs nor test failures print it.

use std::fmt;

use zeroize::Zeroizing;

use crate::config::SecretValue;
use crate::model::DeploymentKey;

/// Bytes a masked field reserves at first; longer values grow it.
const MASKED_CAPACITY: usize = 256;

/// The action a form takes once submitted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FormPurpose {
    /// Add a secret: its name, then its value.
    AddSecret,
    /// Replace the value of secret `name`.
    SetSecret { name: String },
    /// Silence `rule` of `key`: a duration, then a comment.
    Silence { key: DeploymentKey, rule: String },
}

/// One labelled line of text.
#[derive(Clone, PartialEq, Eq)]
pub struct FormField {
    pub label: &'static str,
    pub masked: bool,
    text: Zeroizing<String>,
}

impl FormField {
    pub fn plain(label: &'static str, text: &str) -> Self {
        Self {
            label,
            masked: false,
            text: Zeroizing::new(text.to_owned()),
        }
    }

    pub fn masked(label: &'static str) -> Self {
        Self {
            label,
            masked: true,
            text: Zeroizing::new(String::with_capacity(MASKED_CAPACITY)),
        }
    }

    /// Returns the text of a plain field; a masked field returns nothing,
    /// so that no view can draw its text by mistake.
    pub fn text(&self) -> &str {
        if self.masked {
            ""
        } else {
            &self.text
        }
    }

    /// Returns how many characters the field holds, which is all a masked
    /// field shows.
    pub fn chars(&self) -> usize {
        self.text.chars().count()
    }

    pub fn push(&mut self, character: char) {
        if self.text.len() + character.len_utf8() > self.text.capacity() {
            let wanted = (self.text.capacity() * 2).max(MASKED_CAPACITY);
            let mut larger = Zeroizing::new(String::with_capacity(wanted));
            larger.push_str(&self.text);
            // The old buffer is zeroed as it drops here.
            self.text = larger;
        }
        self.text.push(character);
    }

    pub fn pop(&mut self) {
        self.text.pop();
    }

    pub fn clear(&mut self) {
        // Zeroizing a String zeroes its bytes and leaves it empty.
        zeroize::Zeroize::zeroize(&mut *self.text);
    }

    /// Moves the text into a [`SecretValue`], which zeroes it when dropped,
    /// and leaves the field empty.
    pub fn take_secret(&mut self) -> SecretValue {
        SecretValue::new(std::mem::take(&mut *self.text))
    }
}

impl fmt::Debug for FormField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut debug = f.debug_struct("FormField");
        debug.field("label", &self.label);
        if self.masked {
            debug.field("chars", &self.chars());
        } else {
            debug.field("text", &*self.text);
        }
        debug.finish()
    }
}

/// A form on the layer stack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Form {
    pub purpose: FormPurpose,
    pub title: String,
    pub fields: Vec<FormField>,
    /// The field that receives typed characters.
    pub focus: usize,
    /// The reason the last submission was rejected.
    pub error: Option<String>,
    /// One line under the fields that describes what the form does.
    pub note: String,
}

impl Form {
    pub fn focused(&mut self) -> Option<&mut FormField> {
        self.fields.get_mut(self.focus)
    }

    pub fn next_field(&mut self) {
        if !self.fields.is_empty() {
            self.focus = (self.focus + 1) % self.fields.len();
        }
    }

    /// Zeroes every field, for a form that is closed without sending.
    pub fn wipe(&mut self) {
        for field in &mut self.fields {
            field.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masked_field_hides_text_in_debug() {
        let mut field = FormField::masked("value");
        for character in "hunter2".chars() {
            field.push(character);
        }
        let debug = format!("{field:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(debug.contains("chars: 7"), "{debug}");
        assert_eq!(field.text(), "");
    }

    #[test]
    fn masked_field_grows_and_hands_over() {
        let mut field = FormField::masked("value");
        let long: String = "é".repeat(MASKED_CAPACITY);
        for character in long.chars() {
            field.push(character);
        }
        assert_eq!(field.chars(), MASKED_CAPACITY);
        let secret = field.take_secret();
        assert_eq!(secret.expose(), long);
        assert_eq!(field.chars(), 0);
    }

    #[test]
    fn plain_field_edits() {
        let mut field = FormField::plain("duration", "1h");
        field.push('x');
        field.pop();
        field.pop();
        assert_eq!(field.text(), "1");
        field.clear();
        assert_eq!(field.text(), "");
    }
}
