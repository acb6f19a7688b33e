//! Spec names (`get-ok`, `routing-key`) to Rust identifiers.

/// Rust keywords (strict, reserved and 2024 `gen`) that need renaming as field names.
const KEYWORDS: &[&str] = &[
    "abstract", "as", "async", "await", "become", "box", "break", "const", "continue", "crate", "do", "dyn", "else",
    "enum", "extern", "false", "final", "fn", "for", "gen", "if", "impl", "in", "let", "loop", "macro", "match", "mod",
    "move", "mut", "override", "priv", "pub", "ref", "return", "self", "static", "struct", "super", "trait", "true",
    "try", "type", "typeof", "unsafe", "unsized", "use", "virtual", "where", "while", "yield",
];

/// True when `name` is a spec name the generator can turn into identifiers:
/// a lowercase ASCII letter, then lowercase letters, digits and `-`.
pub fn is_valid(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some('a'..='z')) && chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '-'))
}

/// `get-ok` → `GetOk`.
pub fn upper_camel(name: &str) -> String {
    name.split('-')
        .flat_map(|word| {
            let mut chars = word.chars();
            chars.next().map(|c| c.to_ascii_uppercase()).into_iter().chain(chars)
        })
        .collect()
}

/// `routing-key` → `routing_key`; `type` → `kind`; other keywords get a trailing `_`.
pub fn field(name: &str) -> String {
    let snake = name.replace('-', "_");
    if snake == "type" {
        "kind".to_owned()
    } else if KEYWORDS.contains(&snake.as_str()) {
        snake + "_"
    } else {
        snake
    }
}

/// `frame-method` → `FRAME_METHOD`.
pub fn screaming(name: &str) -> String {
    name.replace('-', "_").to_ascii_uppercase()
}

/// The reply-code constant name: `not-found` → `NOT_FOUND`, `reply-success` → `SUCCESS`.
pub fn reply_code(name: &str) -> String {
    screaming(name.strip_prefix("reply-").unwrap_or(name))
}

/// `basic` + `get-ok` → `BasicGetOk`.
pub fn method_struct(class: &str, method: &str) -> String {
    upper_camel(class) + &upper_camel(method)
}

/// `basic` → `BasicProperties`.
pub fn properties_struct(class: &str) -> String {
    upper_camel(class) + "Properties"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_names() {
        assert_eq!(method_struct("basic", "get-ok"), "BasicGetOk");
        assert_eq!(method_struct("exchange", "declare"), "ExchangeDeclare");
        assert_eq!(field("routing-key"), "routing_key");
        assert_eq!(field("no-wait"), "no_wait");
        assert_eq!(field("type"), "kind");
        assert_eq!(field("match"), "match_");
        assert_eq!(screaming("frame-min-size"), "FRAME_MIN_SIZE");
        assert_eq!(reply_code("reply-success"), "SUCCESS");
        assert_eq!(reply_code("not-found"), "NOT_FOUND");
        assert_eq!(properties_struct("basic"), "BasicProperties");
    }

    #[test]
    fn validates_names() {
        assert!(is_valid("get-ok"));
        assert!(is_valid("reserved-1"));
        assert!(!is_valid(""));
        assert!(!is_valid("1st"));
        assert!(!is_valid("Get"));
        assert!(!is_valid("get_ok"));
        assert!(!is_valid("-x"));
    }
}
