//! Mustache rendering of `svc.yml` and of task config templates from an environment map.
//!
//! Owns the rendering rules the scheduler promises: `{{X}}` inserts the value verbatim (these
//! are YAML and properties files, not HTML, so nothing is escaped), `{{#X}}…{{/X}}` renders when
//! `X` is set, non-empty and not `false` (any case), `{{^X}}…{{/X}}` is the inverse, and a
//! variable that is referenced but not set is an error that names it, as the SDK's missing-value
//! check did. The template engine itself is `ramhorns`; this module does no I/O.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};

use ramhorns::encoding::Encoder;
use ramhorns::traits::ContentSequence;
use ramhorns::{Content, Section, Template};

use crate::spec::SpecError;

/// One environment value. Truthiness follows the scheduler's environment conventions, where
/// options become strings and a disabled feature is the string `false`.
struct Value<'a>(&'a str);

impl Content for Value<'_> {
    fn is_truthy(&self) -> bool {
        !self.0.is_empty() && !self.0.eq_ignore_ascii_case("false")
    }

    fn render_escaped<E: Encoder>(&self, encoder: &mut E) -> Result<(), E::Error> {
        encoder.write_unescaped(self.0)
    }

    fn render_unescaped<E: Encoder>(&self, encoder: &mut E) -> Result<(), E::Error> {
        encoder.write_unescaped(self.0)
    }
}

/// The environment as template content, recording every variable that was asked for and missing.
struct Env<'a> {
    values: &'a BTreeMap<String, String>,
    missing: RefCell<BTreeSet<String>>,
}

impl Env<'_> {
    fn value<E: Encoder>(&self, name: &str, encoder: &mut E) -> Result<bool, E::Error> {
        match self.values.get(name) {
            Some(value) => Value(value).render_unescaped(encoder).map(|()| true),
            None => {
                self.missing.borrow_mut().insert(name.to_string());
                // Claim the field so that no outer content is consulted; it renders as nothing.
                Ok(true)
            }
        }
    }
}

impl Content for Env<'_> {
    fn render_field_escaped<E: Encoder>(
        &self,
        _hash: u64,
        name: &str,
        encoder: &mut E,
    ) -> Result<bool, E::Error> {
        self.value(name, encoder)
    }

    fn render_field_unescaped<E: Encoder>(
        &self,
        _hash: u64,
        name: &str,
        encoder: &mut E,
    ) -> Result<bool, E::Error> {
        self.value(name, encoder)
    }

    fn render_field_section<C, E>(
        &self,
        _hash: u64,
        name: &str,
        section: Section<C>,
        encoder: &mut E,
    ) -> Result<bool, E::Error>
    where
        C: ContentSequence,
        E: Encoder,
    {
        // A section on an unset variable is simply false: that is how optional features are
        // written in svc.yml, so it is not a missing value.
        if let Some(value) = self.values.get(name) {
            Value(value).render_section(section, encoder)?;
        }
        Ok(true)
    }

    fn render_field_inverse<C, E>(
        &self,
        _hash: u64,
        name: &str,
        section: Section<C>,
        encoder: &mut E,
    ) -> Result<bool, E::Error>
    where
        C: ContentSequence,
        E: Encoder,
    {
        match self.values.get(name) {
            Some(value) => Value(value).render_inverse(section, encoder)?,
            None => section.render(encoder)?,
        }
        Ok(true)
    }
}

/// Renders `template` (named `template_name` in errors) from `env`.
///
/// Fails when the template does not parse or references variables that `env` does not set; the
/// error names the template and every missing variable.
pub fn render(
    template_name: &str,
    template: &str,
    env: &BTreeMap<String, String>,
) -> Result<String, SpecError> {
    let template_error = |reason: String| SpecError::Template {
        template: template_name.to_string(),
        reason,
    };
    // ramhorns renders unbalanced sections leniently; a spec with one is a mistake to report.
    check_sections(template).map_err(template_error)?;
    let parsed = Template::new(template).map_err(|error| template_error(error.to_string()))?;
    let content = Env {
        values: env,
        missing: RefCell::new(BTreeSet::new()),
    };
    let rendered = parsed.render(&content);
    let missing = content.missing.into_inner();
    if !missing.is_empty() {
        return Err(SpecError::MissingValues {
            template: template_name.to_string(),
            names: missing.into_iter().collect(),
        });
    }
    Ok(rendered)
}

/// The tags of `template` as (sigil, name, line), in order.
fn tags(template: &str) -> Vec<(Option<char>, String, usize)> {
    let mut tags = Vec::new();
    let mut offset = 0;
    while let Some(start) = template[offset..].find("{{") {
        let open = offset + start + 2;
        let Some(end) = template[open..].find("}}") else {
            break;
        };
        let raw = template[open..open + end]
            .trim_matches(|c| c == '{' || c == '}')
            .trim();
        let sigil = raw.chars().next().filter(|c| "#^/&!".contains(*c));
        let name = raw.trim_start_matches(['#', '^', '/', '&', '!']).trim();
        let line = template[..open].matches('\n').count() + 1;
        tags.push((sigil, name.to_string(), line));
        offset = open + end + 2;
    }
    tags
}

/// Checks that every `{{#X}}`/`{{^X}}` is closed by a matching `{{/X}}`.
fn check_sections(template: &str) -> Result<(), String> {
    let mut open: Vec<(String, usize)> = Vec::new();
    for (sigil, name, line) in tags(template) {
        match sigil {
            Some('#') | Some('^') => open.push((name, line)),
            Some('/') => match open.pop() {
                Some((opened, _)) if opened == name => {}
                Some((opened, opened_line)) => {
                    return Err(format!(
                        "line {line}: {{{{/{name}}}}} closes {{{{#{opened}}}}} opened on line {opened_line}"
                    ))
                }
                None => return Err(format!("line {line}: {{{{/{name}}}}} closes no section")),
            },
            _ => {}
        }
    }
    match open.pop() {
        Some((name, line)) => Err(format!(
            "line {line}: section {{{{#{name}}}}} is never closed"
        )),
        None => Ok(()),
    }
}

/// The variables `template` references (`{{X}}`, `{{#X}}`, `{{^X}}`, `{{{X}}}`, `{{&X}}`), in
/// order of first appearance. Used to check option keys against what a template consumes.
pub fn referenced_names(template: &str) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for (sigil, name, _) in tags(template) {
        if !matches!(sigil, Some('/') | Some('!')) && !name.is_empty() && !names.contains(&name) {
            names.push(name);
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn values_are_inserted_verbatim() {
        let out = render(
            "t",
            "a: '{{X}}'",
            &env(&[("X", "[[\"hostname\",\"<&>\"]]")]),
        )
        .unwrap();
        assert_eq!(out, "a: '[[\"hostname\",\"<&>\"]]'");
    }

    #[test]
    fn sections_treat_unset_empty_and_false_as_false() {
        let template = "{{#A}}a{{/A}}{{^A}}not-a{{/A}}";
        assert_eq!(render("t", template, &env(&[])).unwrap(), "not-a");
        assert_eq!(render("t", template, &env(&[("A", "")])).unwrap(), "not-a");
        assert_eq!(
            render("t", template, &env(&[("A", "FALSE")])).unwrap(),
            "not-a"
        );
        assert_eq!(render("t", template, &env(&[("A", "true")])).unwrap(), "a");
        assert_eq!(render("t", template, &env(&[("A", "0")])).unwrap(), "a");
    }

    #[test]
    fn variables_inside_sections_see_the_environment() {
        let out = render("t", "{{#Z}}rack={{Z}}{{/Z}}", &env(&[("Z", "zone-a")])).unwrap();
        assert_eq!(out, "rack=zone-a");
    }

    #[test]
    fn missing_values_are_named() {
        let error = render("svc.yml", "{{A}} {{B}} {{A}} {{C}}", &env(&[("B", "1")])).unwrap_err();
        assert_eq!(
            error.to_string(),
            "svc.yml: missing template values: A, C (set them in the options or environment)"
        );
    }

    #[test]
    fn an_unclosed_section_is_a_template_error() {
        let error = render("svc.yml", "a\n{{#A}} never closed", &env(&[])).unwrap_err();
        assert_eq!(
            error.to_string(),
            "svc.yml: line 2: section {{#A}} is never closed"
        );
        let error = render("svc.yml", "{{#A}}{{/B}}", &env(&[])).unwrap_err();
        assert_eq!(
            error.to_string(),
            "svc.yml: line 1: {{/B}} closes {{#A}} opened on line 1"
        );
        let error = render("svc.yml", "{{/B}}", &env(&[])).unwrap_err();
        assert!(error.to_string().contains("closes no section"), "{error}");
    }

    #[test]
    fn referenced_names_lists_each_variable_once() {
        let names =
            referenced_names("{{A}} {{#B}}{{C}}{{/B}} {{^D}}{{/D}} {{{E}}} {{A}} {{! note }}");
        assert_eq!(names, ["A", "B", "C", "D", "E"]);
    }
}
