//! Colours by meaning, read from TOML themes.
//!
//! Three themes are built in (`dark`, the default, `light` and
//! `high-contrast`); more go in the config directory's `themes/NAME.toml`.
//! A theme names a base with `inherits` and sets only the roles it changes.
//! When `NO_COLOR` is set (to anything but an empty string, as
//! <https://no-color.org> defines), every role becomes a text attribute
//! instead: bold for warnings and errors, reverse video for the selection.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use ratatui::style::{Color, Modifier, Style};
use toml::de::{DeTable, DeValue};
use toml::Spanned;

use super::keymap::line_of;

const BUILT_IN: &[(&str, &str)] = &[
    ("dark", include_str!("../../themes/dark.toml")),
    ("light", include_str!("../../themes/light.toml")),
    (
        "high-contrast",
        include_str!("../../themes/high-contrast.toml"),
    ),
];

/// Name of the theme used when none is chosen.
pub const DEFAULT_THEME: &str = "dark";

/// How many `inherits` links a theme may follow, which also stops cycles.
const MAX_INHERITANCE: usize = 8;

/// The roles every theme defines. `dark` sets all of them, and every other
/// theme inherits from it in the end.
const ROLES: [&str; 10] = [
    "text",
    "muted",
    "accent",
    "ok",
    "warning",
    "error",
    "selection",
    "border",
    "title",
    "highlight",
];

/// The key of the list of styles that tell replicas apart.
const REPLICAS: &str = "replicas";

#[derive(Debug, thiserror::Error)]
pub enum ThemeError {
    #[error("unknown theme {name:?}; the themes are {known} (add your own as {dir}/NAME.toml)")]
    Unknown {
        name: String,
        known: String,
        dir: PathBuf,
    },
    #[error("cannot read the theme {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}: {message}")]
    Invalid {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("theme {name:?} inherits through more than {MAX_INHERITANCE} themes; check `inherits` for a cycle")]
    TooDeep { name: String },
}

/// The styles of every role, ready to draw with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Theme {
    pub name: String,
    pub text: Style,
    pub muted: Style,
    pub accent: Style,
    pub ok: Style,
    pub warning: Style,
    pub error: Style,
    pub selection: Style,
    pub border: Style,
    pub title: Style,
    /// Search matches in log lines.
    pub highlight: Style,
    /// Styles that tell the replicas' lines apart, used in turn by replica
    /// index.
    pub replicas: Vec<Style>,
}

/// A loaded theme and the problems worth telling the operator about.
#[derive(Debug)]
pub struct LoadedTheme {
    pub theme: Theme,
    /// Unknown roles, which are ignored rather than rejected so that a theme
    /// written for a newer shipdeck still loads.
    pub warnings: Vec<String>,
}

impl Theme {
    /// Loads theme `name` from the config directory's `themes/` (when
    /// there is a config directory) or the built-in ones. `no_color` turns
    /// colours into attributes, for `NO_COLOR`.
    pub fn load(dir: Option<&Path>, name: &str, no_color: bool) -> Result<LoadedTheme, ThemeError> {
        let themes_dir = dir.map(|dir| dir.join("themes"));
        let mut warnings = Vec::new();
        let mut roles = BTreeMap::new();
        let mut replicas = None;
        let mut chain = Vec::new();
        let mut next = Some(name.to_owned());
        while let Some(current) = next.take() {
            if chain.len() == MAX_INHERITANCE {
                return Err(ThemeError::TooDeep {
                    name: name.to_owned(),
                });
            }
            let (path, text) = read_theme(themes_dir.as_deref(), &current)?;
            let parsed = parse_theme(&path, &text)?;
            warnings.extend(parsed.warnings);
            for (role, style) in parsed.roles {
                roles.entry(role).or_insert(style);
            }
            if replicas.is_none() {
                replicas = parsed.replicas;
            }
            next = parsed
                .inherits
                .or_else(|| (current != DEFAULT_THEME).then(|| DEFAULT_THEME.to_owned()));
            chain.push(current);
        }
        let style = |role: &str| roles.get(role).copied().unwrap_or_default();
        let theme = Theme {
            name: name.to_owned(),
            text: style("text"),
            muted: style("muted"),
            accent: style("accent"),
            ok: style("ok"),
            warning: style("warning"),
            error: style("error"),
            selection: style("selection"),
            border: style("border"),
            title: style("title"),
            highlight: style("highlight"),
            replicas: replicas.unwrap_or_default(),
        };
        Ok(LoadedTheme {
            theme: if no_color { theme.monochrome() } else { theme },
            warnings,
        })
    }

    /// Returns the built-in default, for tests and as a fallback.
    pub fn dark() -> Self {
        match Self::load(None, DEFAULT_THEME, false) {
            Ok(loaded) => loaded.theme,
            // The built-in file is checked by a unit test, so this arm only
            // guards against a broken build.
            Err(_) => Self::plain(DEFAULT_THEME),
        }
    }

    /// Returns whether `NO_COLOR` requests output without colours.
    pub fn no_color_requested() -> bool {
        std::env::var_os("NO_COLOR").is_some_and(|value| !value.is_empty())
    }

    fn plain(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            text: Style::new(),
            muted: Style::new(),
            accent: Style::new(),
            ok: Style::new(),
            warning: Style::new(),
            error: Style::new(),
            selection: Style::new(),
            border: Style::new(),
            title: Style::new(),
            highlight: Style::new(),
            replicas: Vec::new(),
        }
    }

    /// Returns the style of replica `index`'s lines.
    pub fn replica(&self, index: usize) -> Style {
        match self.replicas.len() {
            0 => self.text,
            count => self.replicas[index % count],
        }
    }

    /// Returns the same roles as text attributes only, for `NO_COLOR`.
    pub fn monochrome(&self) -> Self {
        let mut theme = Self::plain(&self.name);
        theme.muted = Style::new().add_modifier(Modifier::DIM);
        theme.accent = Style::new().add_modifier(Modifier::BOLD);
        theme.warning = Style::new().add_modifier(Modifier::BOLD);
        theme.error = Style::new().add_modifier(Modifier::BOLD | Modifier::UNDERLINED);
        theme.selection = Style::new().add_modifier(Modifier::REVERSED);
        theme.title = Style::new().add_modifier(Modifier::BOLD);
        theme.highlight = Style::new().add_modifier(Modifier::BOLD | Modifier::UNDERLINED);
        theme
    }

    /// Names of the built-in themes and those in `dir/themes/`.
    pub fn available(dir: Option<&Path>) -> Vec<String> {
        let mut names: Vec<String> = BUILT_IN
            .iter()
            .map(|(name, _)| (*name).to_owned())
            .collect();
        if let Some(Ok(entries)) = dir.map(|dir| std::fs::read_dir(dir.join("themes"))) {
            for entry in entries.flatten() {
                let path = entry.path();
                if path
                    .extension()
                    .is_some_and(|extension| extension == "toml")
                {
                    if let Some(stem) = path.file_stem().and_then(|stem| stem.to_str()) {
                        names.push(stem.to_owned());
                    }
                }
            }
        }
        names.sort();
        names.dedup();
        names
    }
}

/// Reads a user theme, which may shadow a built-in one, or a built-in one.
fn read_theme(themes_dir: Option<&Path>, name: &str) -> Result<(PathBuf, String), ThemeError> {
    let is_plain_name =
        !name.is_empty() && !name.contains(['/', '\\']) && name != "." && name != "..";
    if let Some(themes_dir) = themes_dir.filter(|_| is_plain_name) {
        let path = themes_dir.join(format!("{name}.toml"));
        match std::fs::read_to_string(&path) {
            Ok(text) => return Ok((path, text)),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(ThemeError::Read { path, source }),
        }
    }
    BUILT_IN
        .iter()
        .find(|(built_in, _)| *built_in == name)
        .map(|(built_in, text)| {
            (
                PathBuf::from(format!("themes/{built_in}.toml (built in)")),
                (*text).to_owned(),
            )
        })
        .ok_or_else(|| ThemeError::Unknown {
            name: name.to_owned(),
            known: Theme::available(themes_dir.and_then(Path::parent)).join(", "),
            dir: themes_dir.map_or_else(
                || PathBuf::from("~/.config/shipdeck/themes"),
                Path::to_path_buf,
            ),
        })
}

struct ParsedTheme {
    inherits: Option<String>,
    roles: BTreeMap<String, Style>,
    replicas: Option<Vec<Style>>,
    warnings: Vec<String>,
}

fn parse_theme(path: &Path, text: &str) -> Result<ParsedTheme, ThemeError> {
    let invalid = |span: std::ops::Range<usize>, message: String| ThemeError::Invalid {
        path: path.to_path_buf(),
        line: line_of(text, span.start),
        message,
    };
    let document = DeTable::parse(text).map_err(|error| {
        invalid(
            error.span().unwrap_or(0..0),
            format!("invalid TOML: {}", error.message()),
        )
    })?;
    let mut parsed = ParsedTheme {
        inherits: None,
        roles: BTreeMap::new(),
        replicas: None,
        warnings: Vec::new(),
    };
    for (key, value) in document.get_ref() {
        let key_name: &str = key.get_ref();
        if key_name == "inherits" {
            let DeValue::String(base) = value.get_ref() else {
                return Err(invalid(
                    value.span(),
                    "inherits must be a theme name such as \"dark\"".to_owned(),
                ));
            };
            parsed.inherits = Some(base.to_string());
        } else if key_name == REPLICAS {
            let styles = replica_styles(value)
                .map_err(|(span, message)| invalid(span, format!("{REPLICAS}: {message}")))?;
            parsed.replicas = Some(styles);
        } else if ROLES.contains(&key_name) {
            let style = role_style(value)
                .map_err(|(span, message)| invalid(span, format!("{key_name}: {message}")))?;
            parsed.roles.insert(key_name.to_owned(), style);
        } else {
            parsed.warnings.push(format!(
                "{}:{}: unknown role {key_name:?} ignored; the roles are {}",
                path.display(),
                line_of(text, key.span().start),
                ROLES.join(", ")
            ));
        }
    }
    Ok(parsed)
}

type SpannedError = (std::ops::Range<usize>, String);

fn role_style(value: &Spanned<DeValue<'_>>) -> Result<Style, SpannedError> {
    match value.get_ref() {
        DeValue::String(name) => Ok(Style::new().fg(colour(name, value.span())?)),
        DeValue::Table(table) => {
            let mut style = Style::new();
            for (field, item) in table {
                style = apply_field(style, field.get_ref(), item)
                    .map_err(|message| (item.span(), message))?
                    .ok_or_else(|| {
                        (
                            field.span(),
                            format!(
                                "unknown field {:?}; use fg, bg, bold, dim, italic, underline or reverse",
                                &**field.get_ref()
                            ),
                        )
                    })?;
            }
            Ok(style)
        }
        _ => Err((
            value.span(),
            "expected a colour such as \"cyan\" or a table such as { fg = \"black\", bg = \"cyan\" }".to_owned(),
        )),
    }
}

/// Reads the list of replica styles: colours or role tables, at least one.
fn replica_styles(value: &Spanned<DeValue<'_>>) -> Result<Vec<Style>, SpannedError> {
    let DeValue::Array(items) = value.get_ref() else {
        return Err((
            value.span(),
            "expected a list of colours such as [\"cyan\", \"magenta\"]".to_owned(),
        ));
    };
    if items.is_empty() {
        return Err((value.span(), "list at least one colour".to_owned()));
    }
    items.iter().map(role_style).collect()
}

/// Applies one field of a role table; `Ok(None)` for an unknown field.
fn apply_field(
    style: Style,
    field: &str,
    item: &Spanned<DeValue<'_>>,
) -> Result<Option<Style>, String> {
    let modifier = match field {
        "fg" | "bg" => {
            let DeValue::String(name) = item.get_ref() else {
                return Err(format!("{field} must be a colour name, index or #rrggbb"));
            };
            let colour = colour(name, item.span()).map_err(|(_, message)| message)?;
            return Ok(Some(if field == "fg" {
                style.fg(colour)
            } else {
                style.bg(colour)
            }));
        }
        "bold" => Modifier::BOLD,
        "dim" => Modifier::DIM,
        "italic" => Modifier::ITALIC,
        "underline" => Modifier::UNDERLINED,
        "reverse" => Modifier::REVERSED,
        _ => return Ok(None),
    };
    match item.get_ref() {
        DeValue::Boolean(true) => Ok(Some(style.add_modifier(modifier))),
        DeValue::Boolean(false) => Ok(Some(style.remove_modifier(modifier))),
        _ => Err(format!("{field} must be true or false")),
    }
}

fn colour(name: &str, span: std::ops::Range<usize>) -> Result<Color, SpannedError> {
    Color::from_str(name).map_err(|_| {
        (
            span,
            format!("invalid colour {name:?}; use a name such as cyan or darkgray, an index from 0 to 255, or #rrggbb"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_theme(dir: &Path, name: &str, text: &str) {
        std::fs::create_dir_all(dir.join("themes")).unwrap();
        std::fs::write(dir.join("themes").join(format!("{name}.toml")), text).unwrap();
    }

    #[test]
    fn built_in_themes_load_without_warnings() {
        let dir = tempfile::tempdir().unwrap();
        for (name, _) in BUILT_IN {
            let loaded = Theme::load(Some(dir.path()), name, false).unwrap();
            assert!(loaded.warnings.is_empty(), "{name}: {:?}", loaded.warnings);
            assert_ne!(
                loaded.theme.selection,
                Style::new(),
                "{name} sets a selection"
            );
        }
        assert_eq!(Theme::dark().error, Style::new().fg(Color::LightRed));
    }

    #[test]
    fn user_theme_inherits_and_overrides() {
        let dir = tempfile::tempdir().unwrap();
        write_theme(
            dir.path(),
            "mine",
            "inherits = \"light\"\nerror = \"#ff0000\"\nsparkles = \"red\"\n",
        );
        let loaded = Theme::load(Some(dir.path()), "mine", false).unwrap();
        let light = Theme::load(Some(dir.path()), "light", false).unwrap().theme;
        assert_eq!(loaded.theme.error, Style::new().fg(Color::Rgb(255, 0, 0)));
        assert_eq!(loaded.theme.ok, light.ok, "unset roles come from the base");
        assert_eq!(loaded.warnings.len(), 1);
        assert!(
            loaded.warnings[0].contains(":3: unknown role \"sparkles\""),
            "{:?}",
            loaded.warnings
        );
    }

    #[test]
    fn user_theme_without_inherits_uses_dark() {
        let dir = tempfile::tempdir().unwrap();
        write_theme(dir.path(), "mine", "ok = \"blue\"\n");
        let theme = Theme::load(Some(dir.path()), "mine", false).unwrap().theme;
        assert_eq!(theme.ok, Style::new().fg(Color::Blue));
        assert_eq!(theme.error, Theme::dark().error);
    }

    #[test]
    fn invalid_themes_name_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let cases = [
            (
                "ok = \"green\"\nerror = \"reddish\"\n",
                ":2: error: invalid colour \"reddish\"",
            ),
            (
                "selection = { fg = \"black\", blink = true }\n",
                ":1: selection: unknown field \"blink\"",
            ),
            (
                "title = { bold = \"yes\" }\n",
                ":1: title: bold must be true or false",
            ),
            ("inherits = 3\n", ":1: inherits must be a theme name"),
        ];
        for (text, expected) in cases {
            write_theme(dir.path(), "bad", text);
            let error = Theme::load(Some(dir.path()), "bad", false)
                .unwrap_err()
                .to_string();
            assert!(error.contains("themes/bad.toml"), "{error}");
            assert!(error.contains(expected), "{error}");
        }
    }

    #[test]
    fn replica_styles_inherit_and_cycle() {
        let dir = tempfile::tempdir().unwrap();
        write_theme(
            dir.path(),
            "mine",
            "replicas = [\"red\", { fg = \"blue\", bold = true }]\n",
        );
        let theme = Theme::load(Some(dir.path()), "mine", false).unwrap().theme;
        assert_eq!(theme.replica(0), Style::new().fg(Color::Red));
        assert_eq!(
            theme.replica(3),
            Style::new().fg(Color::Blue).add_modifier(Modifier::BOLD)
        );
        let inherited = Theme::load(Some(dir.path()), "light", false).unwrap().theme;
        assert!(
            inherited.replicas.len() >= 4,
            "built-in themes list replica colours"
        );
        write_theme(dir.path(), "bad", "replicas = \"red\"\n");
        let error = Theme::load(Some(dir.path()), "bad", false)
            .unwrap_err()
            .to_string();
        assert!(error.contains(":1: replicas: expected a list"), "{error}");
    }

    #[test]
    fn inheritance_cycle_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        write_theme(dir.path(), "a", "inherits = \"b\"\n");
        write_theme(dir.path(), "b", "inherits = \"a\"\n");
        let error = Theme::load(Some(dir.path()), "a", false).unwrap_err();
        assert!(matches!(error, ThemeError::TooDeep { .. }), "{error}");
    }

    #[test]
    fn unknown_theme_lists_known_ones() {
        let dir = tempfile::tempdir().unwrap();
        let error = Theme::load(Some(dir.path()), "solarized", false)
            .unwrap_err()
            .to_string();
        assert!(error.contains("dark, high-contrast, light"), "{error}");
    }

    #[test]
    fn no_color_keeps_only_attributes() {
        let dir = tempfile::tempdir().unwrap();
        let theme = Theme::load(Some(dir.path()), "dark", true).unwrap().theme;
        for style in [
            theme.text,
            theme.muted,
            theme.ok,
            theme.warning,
            theme.error,
            theme.selection,
        ] {
            assert_eq!(style.fg, None);
            assert_eq!(style.bg, None);
        }
        assert!(theme.selection.add_modifier.contains(Modifier::REVERSED));
        assert!(theme.error.add_modifier.contains(Modifier::BOLD));
    }
}
