//! The SVG text wgfit writes around what plotters draws: the `<g>` groups that say what is
//! what.

use std::fmt::Write as _;

/// Opens `<g class="CLASS" name="value" ...>`; the caller closes it.
pub(super) fn open_group(svg: &mut String, class: &str, attrs: &[(&str, String)]) {
    let _ = write!(svg, r#"<g class="{class}""#);
    for (name, value) in attrs {
        let _ = write!(svg, r#" {name}="{}""#, escape(value));
    }
    svg.push_str(">\n");
}

/// `body` in a `<g>` of `class` with `attrs`.
pub(super) fn wrap(svg: &mut String, class: &str, attrs: &[(&str, String)], body: &str) {
    open_group(svg, class, attrs);
    svg.push_str(body);
    svg.push_str("</g>\n");
}

/// Text safe inside an XML attribute or element: metric names come from files.
pub(super) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_escape_their_attributes() {
        let mut svg = String::new();
        wrap(
            &mut svg,
            "c",
            &[("data-name", "a\"<&>'".to_string())],
            "<x/>\n",
        );
        assert_eq!(
            svg,
            "<g class=\"c\" data-name=\"a&quot;&lt;&amp;&gt;&apos;\">\n<x/>\n</g>\n"
        );
    }
}
