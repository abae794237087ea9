//! Themes: semantic roles (`selection`, `danger`, `null`, `chart_series`…) mapped to styles.
//! The shipped themes live in `themes/*.yaml` and are embedded; `ui.theme` names one of them or
//! a YAML file of the user's, which is read over the default so it may name only some roles.
//! Widgets ask the theme for a role and never pick a colour themselves.

use std::path::Path;

use ratatui::style::{Color, Modifier, Style};
use serde::Deserialize;

const DARK: &str = include_str!("../../themes/dark.yaml");
const LIGHT: &str = include_str!("../../themes/light.yaml");
const HIGH_CONTRAST: &str = include_str!("../../themes/high-contrast.yaml");

/// How many colours the terminal shows; hex colours are brought down to what it can show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColorDepth {
    /// `NO_COLOR` is set: modifiers (bold, reversed…) only.
    None,
    Ansi16,
    /// xterm's 256 colours: `#rrggbb` becomes the nearest of its 6×6×6 cube.
    Ansi256,
    TrueColor,
}

impl ColorDepth {
    /// From the environment: `NO_COLOR` (any value) wins, then `COLORTERM`, then `TERM`.
    pub fn detect() -> Self {
        Self::from_env(
            std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty()),
            std::env::var("COLORTERM").ok().as_deref(),
            std::env::var("TERM").ok().as_deref(),
        )
    }

    fn from_env(no_color: bool, colorterm: Option<&str>, term: Option<&str>) -> Self {
        if no_color {
            return Self::None;
        }
        if matches!(colorterm, Some("truecolor" | "24bit")) {
            return Self::TrueColor;
        }
        match term {
            Some(t) if t.contains("direct") => Self::TrueColor,
            Some(t) if t.contains("256color") => Self::Ansi256,
            _ => Self::Ansi16,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct StyleSpec {
    fg: Option<String>,
    bg: Option<String>,
    #[serde(default)]
    bold: bool,
    #[serde(default)]
    dim: bool,
    #[serde(default)]
    italic: bool,
    #[serde(default)]
    underlined: bool,
    #[serde(default)]
    reversed: bool,
}

macro_rules! roles {
    ($($role:ident),* $(,)?) => {
        /// A theme file: every role optional, so a user's file can change a few.
        #[derive(Debug, Default, Deserialize)]
        #[serde(deny_unknown_fields)]
        struct ThemeFile {
            $($role: Option<StyleSpec>,)*
            chart_series: Option<Vec<String>>,
        }

        /// Styles by role, ready for widgets.
        #[derive(Debug, Clone, PartialEq)]
        pub struct Theme {
            $(pub $role: Style,)*
            /// Colours of the series in a chart, in order; never empty.
            pub chart_series: Vec<Style>,
        }

        impl Theme {
            fn from_file(file: &ThemeFile, base: Option<&Theme>, depth: ColorDepth) -> Result<Self, String> {
                let fallback = Theme::plain();
                let base = base.unwrap_or(&fallback);
                Ok(Theme {
                    $($role: match &file.$role {
                        Some(spec) => style(spec, depth).map_err(|e| format!("`{}`: {e}", stringify!($role)))?,
                        None => base.$role,
                    },)*
                    chart_series: match &file.chart_series {
                        Some(colors) if !colors.is_empty() => colors
                            .iter()
                            .map(|c| Ok(restrict(Style::new().fg(color(c)?), depth)))
                            .collect::<Result<_, String>>()
                            .map_err(|e| format!("`chart_series`: {e}"))?,
                        _ => base.chart_series.clone(),
                    },
                })
            }

            /// No colours at all; the base every theme file is read over.
            pub fn plain() -> Self {
                Theme {
                    $($role: Style::new(),)*
                    chart_series: vec![Style::new()],
                }
            }
        }
    };
}

roles!(
    text,
    muted,
    title,
    border,
    border_focused,
    selection,
    header,
    accent,
    success,
    warning,
    danger,
    null,
    number,
    sql_keyword,
    sql_function,
    sql_string,
    sql_number,
    sql_comment,
    status_bar,
    key_hint,
    tab_active,
    tab,
);

/// A theme that could not be used, with why; the UI shows it and goes on with `dark`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("theme `{name}`: {reason}; using the dark theme")]
pub struct ThemeError {
    pub name: String,
    pub reason: String,
}

impl Theme {
    /// The shipped default.
    pub fn dark(depth: ColorDepth) -> Self {
        Self::embedded(DARK, depth)
    }

    /// `name` is `dark`, `light`, `high-contrast` or a path to a YAML theme file; a file is read
    /// over `dark`. On any problem, the dark theme and the problem.
    pub fn load(name: &str, depth: ColorDepth) -> (Self, Option<ThemeError>) {
        let dark = Self::dark(depth);
        let text = match name {
            "dark" | "" => return (dark, None),
            "light" => return (Self::embedded(LIGHT, depth), None),
            "high-contrast" => return (Self::embedded(HIGH_CONTRAST, depth), None),
            path => match std::fs::read_to_string(Path::new(path)) {
                Ok(text) => text,
                Err(e) => {
                    let reason = format!(
                        "cannot read it as a file ({e}); use dark, light, high-contrast or a path to a theme file"
                    );
                    return (
                        dark,
                        Some(ThemeError {
                            name: name.into(),
                            reason,
                        }),
                    );
                }
            },
        };
        match Self::parse(&text, Some(&dark), depth) {
            Ok(theme) => (theme, None),
            Err(reason) => (
                dark,
                Some(ThemeError {
                    name: name.into(),
                    reason,
                }),
            ),
        }
    }

    fn parse(text: &str, base: Option<&Theme>, depth: ColorDepth) -> Result<Self, String> {
        let file: ThemeFile = serde_yaml::from_str(text).map_err(|e| e.to_string())?;
        Self::from_file(&file, base, depth)
    }

    fn embedded(text: &str, depth: ColorDepth) -> Self {
        // The shipped files are checked by a unit test, so this cannot fall back in practice.
        Self::parse(text, None, depth).unwrap_or_else(|_| Self::plain())
    }

    /// The style of the `index`th series, cycling through the theme's colours.
    pub fn series(&self, index: usize) -> Style {
        self.chart_series[index % self.chart_series.len()]
    }
}

fn style(spec: &StyleSpec, depth: ColorDepth) -> Result<Style, String> {
    let mut style = Style::new();
    if let Some(fg) = &spec.fg {
        style = style.fg(color(fg)?);
    }
    if let Some(bg) = &spec.bg {
        style = style.bg(color(bg)?);
    }
    for (on, modifier) in [
        (spec.bold, Modifier::BOLD),
        (spec.dim, Modifier::DIM),
        (spec.italic, Modifier::ITALIC),
        (spec.underlined, Modifier::UNDERLINED),
        (spec.reversed, Modifier::REVERSED),
    ] {
        if on {
            style = style.add_modifier(modifier);
        }
    }
    Ok(restrict(style, depth))
}

const ANSI: [(&str, Color, (u8, u8, u8)); 16] = [
    ("black", Color::Black, (0, 0, 0)),
    ("red", Color::Red, (205, 0, 0)),
    ("green", Color::Green, (0, 205, 0)),
    ("yellow", Color::Yellow, (205, 205, 0)),
    ("blue", Color::Blue, (0, 0, 238)),
    ("magenta", Color::Magenta, (205, 0, 205)),
    ("cyan", Color::Cyan, (0, 205, 205)),
    ("gray", Color::Gray, (229, 229, 229)),
    ("dark_gray", Color::DarkGray, (127, 127, 127)),
    ("light_red", Color::LightRed, (255, 0, 0)),
    ("light_green", Color::LightGreen, (0, 255, 0)),
    ("light_yellow", Color::LightYellow, (255, 255, 0)),
    ("light_blue", Color::LightBlue, (92, 92, 255)),
    ("light_magenta", Color::LightMagenta, (255, 0, 255)),
    ("light_cyan", Color::LightCyan, (0, 255, 255)),
    ("white", Color::White, (255, 255, 255)),
];

fn color(text: &str) -> Result<Color, String> {
    let name = text.trim().to_ascii_lowercase().replace('-', "_");
    if name == "reset" {
        return Ok(Color::Reset);
    }
    if let Some((_, c, _)) = ANSI.iter().find(|(n, _, _)| *n == name) {
        return Ok(*c);
    }
    if let Some(hex) = name.strip_prefix('#') {
        if hex.len() == 6 {
            if let Ok(v) = u32::from_str_radix(hex, 16) {
                return Ok(Color::Rgb((v >> 16) as u8, (v >> 8) as u8, v as u8));
            }
        }
    }
    Err(format!(
        "`{text}` is not a colour; use an ANSI name such as `cyan` or `light_red`, `reset`, or `#rrggbb`"
    ))
}

/// Brings a style down to what the terminal shows.
fn restrict(style: Style, depth: ColorDepth) -> Style {
    match depth {
        ColorDepth::TrueColor => style,
        // A role told apart by its background (a selection, the status bar) stays visible by
        // being reversed instead.
        ColorDepth::None => {
            let marked = matches!(style.bg, Some(c) if c != Color::Reset);
            let style = Style {
                fg: None,
                bg: None,
                ..style
            };
            if marked {
                style.add_modifier(Modifier::REVERSED)
            } else {
                style
            }
        }
        ColorDepth::Ansi16 => Style {
            fg: style.fg.map(nearest_ansi),
            bg: style.bg.map(nearest_ansi),
            ..style
        },
        ColorDepth::Ansi256 => Style {
            fg: style.fg.map(cube),
            bg: style.bg.map(cube),
            ..style
        },
    }
}

/// The nearest colour of xterm's 6×6×6 cube (indices 16–231).
fn cube(color: Color) -> Color {
    let Color::Rgb(r, g, b) = color else {
        return color;
    };
    let level = |v: u8| (u16::from(v) * 5 + 127) / 255;
    Color::Indexed((16 + 36 * level(r) + 6 * level(g) + level(b)) as u8)
}

fn nearest_ansi(color: Color) -> Color {
    let Color::Rgb(r, g, b) = color else {
        return color;
    };
    let distance = |(r2, g2, b2): (u8, u8, u8)| {
        let d = |a: u8, b: u8| (i32::from(a) - i32::from(b)).pow(2);
        d(r, r2) + d(g, g2) + d(b, b2)
    };
    ANSI.iter()
        .min_by_key(|(_, _, rgb)| distance(*rgb))
        .map_or(color, |(_, c, _)| *c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_themes_parse_with_every_role() {
        for (name, text) in [
            ("dark", DARK),
            ("light", LIGHT),
            ("high-contrast", HIGH_CONTRAST),
        ] {
            let file: ThemeFile = serde_yaml::from_str(text).unwrap();
            let theme = Theme::parse(text, None, ColorDepth::TrueColor)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(file.chart_series.is_some(), "{name}: chart_series");
            assert_ne!(theme.selection, Style::new(), "{name}: selection");
            assert!(theme.chart_series.len() >= 4, "{name}");
        }
    }

    #[test]
    fn a_user_file_changes_only_the_roles_it_names() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mine.yaml");
        std::fs::write(&path, "danger: {fg: '#ff8800', bold: true}\n").unwrap();
        let (theme, error) = Theme::load(path.to_str().unwrap(), ColorDepth::TrueColor);
        assert_eq!(error, None);
        assert_eq!(
            theme.danger,
            Style::new()
                .fg(Color::Rgb(255, 136, 0))
                .add_modifier(Modifier::BOLD)
        );
        assert_eq!(
            theme.selection,
            Theme::dark(ColorDepth::TrueColor).selection
        );
    }

    #[test]
    fn a_broken_theme_is_reported_and_dark_is_used() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.yaml");
        std::fs::write(&path, "danger: {fg: purplish}\nselecton: {bold: true}\n").unwrap();
        let (theme, error) = Theme::load(path.to_str().unwrap(), ColorDepth::TrueColor);
        assert_eq!(theme, Theme::dark(ColorDepth::TrueColor));
        let error = error.unwrap().to_string();
        assert!(error.contains("selecton"), "{error}");
        let (_, missing) = Theme::load("solarized", ColorDepth::TrueColor);
        assert!(missing
            .unwrap()
            .reason
            .contains("dark, light, high-contrast"));
        std::fs::write(&path, "danger: {fg: purplish}\n").unwrap();
        let (_, error) = Theme::load(path.to_str().unwrap(), ColorDepth::TrueColor);
        assert!(error.unwrap().reason.contains("`purplish` is not a colour"));
    }

    #[test]
    fn no_color_keeps_modifiers_and_16_colours_map_hex_to_ansi() {
        assert_eq!(
            ColorDepth::from_env(true, Some("truecolor"), None),
            ColorDepth::None
        );
        assert_eq!(
            ColorDepth::from_env(false, None, Some("xterm")),
            ColorDepth::Ansi16
        );
        assert_eq!(
            ColorDepth::from_env(false, None, Some("xterm-256color")),
            ColorDepth::Ansi256
        );
        assert_eq!(
            ColorDepth::from_env(false, Some("truecolor"), Some("xterm-256color")),
            ColorDepth::TrueColor
        );
        assert_eq!(cube(Color::Rgb(255, 0, 0)), Color::Indexed(196));
        assert_eq!(cube(Color::Rgb(0, 0, 0)), Color::Indexed(16));
        assert_eq!(cube(Color::Cyan), Color::Cyan);
        let none = Theme::dark(ColorDepth::None);
        assert_eq!(none.selection.fg, None);
        assert_eq!(none.selection.bg, None);
        assert!(none.selection.add_modifier.contains(Modifier::REVERSED));
        assert!(none.header.add_modifier.contains(Modifier::BOLD));
        let light = Theme::load("light", ColorDepth::Ansi16).0;
        assert!(!matches!(light.warning.fg, Some(Color::Rgb(..))));
        assert_eq!(nearest_ansi(Color::Rgb(220, 210, 10)), Color::Yellow);
        assert_eq!(nearest_ansi(Color::Cyan), Color::Cyan);
    }
}
