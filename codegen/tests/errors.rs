//! Every spec problem is an error naming `file:line:col`, never a panic.

use warren_codegen::{Error, parse};

/// Root attributes, on line 1; `body` starts on line 2.
fn spec(body: &str) -> String {
    format!("<amqp major=\"0\" minor=\"9\" revision=\"1\" port=\"5672\">\n{body}\n</amqp>\n")
}

/// A valid class, for specs whose problem lies elsewhere.
const TX: &str =
    r#"<class name="tx" index="90"><method name="select" index="10"><chassis name="server"/></method></class>"#;

fn error(xml: &str) -> Error {
    match parse(xml) {
        Ok(_) => panic!("spec was accepted:\n{xml}"),
        Err(e) => e,
    }
}

/// Asserts the error is at `line:col` and its message contains `text`.
#[track_caller]
fn assert_error(xml: &str, line: u32, col: u32, text: &str) {
    let e = error(xml);
    let shown = e.to_string();
    let prefix = format!("<input>:{line}:{col}: ");
    assert!(shown.starts_with(&prefix), "expected {prefix}..., got {shown}");
    assert!(
        e.message().contains(text),
        "expected a message containing {text:?}, got {shown}"
    );
}

#[test]
fn valid_spec_parses() {
    let s = parse(&spec(TX)).unwrap();
    assert_eq!(s.classes.len(), 1);
    assert_eq!((s.major, s.minor, s.revision, s.port), (0, 9, 1, 5672));
}

#[test]
fn xml_syntax_error() {
    let e = error("<amqp>\n  <class name=\"x\">\n</amqp>");
    assert_eq!(e.pos().map(|p| p.line), Some(3), "{e}");
    assert!(!e.message().contains(" at 3:"), "position repeated: {e}");
}

#[test]
fn wrong_root_element() {
    assert_error("<spec/>", 1, 1, "root element must be <amqp>");
}

#[test]
fn missing_attribute() {
    assert_error(
        &spec(r#"<class name="tx"/>"#),
        2,
        1,
        "<class> needs a `index` attribute",
    );
    assert_error("<amqp major=\"0\" minor=\"9\" revision=\"1\"/>", 1, 1, "needs a `port`");
}

#[test]
fn bad_numbers() {
    assert_error(
        &spec(r#"<class name="tx" index="x"/>"#),
        2,
        25,
        "`index` must be a number from 0 to 65535, not `x`",
    );
    assert_error(&spec(r#"<class name="tx" index="70000"/>"#), 2, 25, "not `70000`");
    assert_error(&spec(r#"<class name="tx" index="-1"/>"#), 2, 25, "not `-1`");
    assert_error(
        "<amqp major=\"256\" minor=\"9\" revision=\"1\" port=\"1\"/>",
        1,
        14,
        "0 to 255",
    );
    assert_error(&spec(r#"<constant name="big" value="4294967296"/>"#), 2, 29, "`value`");
}

#[test]
fn bad_flag() {
    let xml = spec(r#"<class name="tx" index="90"><method name="select" index="10" synchronous="yes"/></class>"#);
    assert_error(&xml, 2, 75, "`synchronous` must be \"0\" or \"1\", not `yes`");
}

#[test]
fn invalid_name() {
    assert_error(
        &spec(r#"<class name="Tx" index="90"/>"#),
        2,
        14,
        "name `Tx` must be a lowercase letter",
    );
    assert_error(&spec(r#"<constant name="frame_end" value="1"/>"#), 2, 17, "`frame_end`");
}

#[test]
fn duplicate_class_index() {
    let xml = spec(&format!("{TX}\n<class name=\"other\" index=\"90\"/>"));
    assert_error(&xml, 3, 1, "duplicate class index 90 (`other`) (first at line 2)");
}

#[test]
fn duplicate_class_name() {
    let xml = spec(&format!("{TX}\n<class name=\"tx\" index=\"91\"/>"));
    assert_error(&xml, 3, 1, "duplicate class name `tx`");
}

#[test]
fn duplicate_method_index() {
    let xml = spec(
        r#"<class name="tx" index="90">
  <method name="select" index="10"><chassis name="server"/></method>
  <method name="commit" index="10"><chassis name="server"/></method>
</class>"#,
    );
    assert_error(&xml, 4, 3, "duplicate method index 10 in class `tx` (`tx.commit`)");
}

#[test]
fn duplicate_method_name() {
    let xml = spec(
        r#"<class name="tx" index="90">
  <method name="select" index="10"><chassis name="server"/></method>
  <method name="select" index="11"><chassis name="server"/></method>
</class>"#,
    );
    assert_error(&xml, 4, 3, "duplicate method `tx.select`");
}

#[test]
fn duplicate_field_name() {
    let xml = spec(
        r#"<class name="tx" index="90"><method name="select" index="10"><chassis name="server"/>
  <field name="a" type="short"/>
  <field name="a" type="long"/>
</method></class>"#,
    );
    assert_error(&xml, 4, 3, "duplicate field `a` in method `tx.select`");
}

#[test]
fn duplicate_constant() {
    let xml = spec(&format!(
        "<constant name=\"a\" value=\"1\"/>\n<constant name=\"a\" value=\"2\"/>\n{TX}"
    ));
    assert_error(&xml, 3, 1, "duplicate constant `a`");
}

#[test]
fn duplicate_domain() {
    let xml = spec(&format!(
        "<domain name=\"a\" type=\"short\"/>\n<domain name=\"a\" type=\"long\"/>\n{TX}"
    ));
    assert_error(&xml, 3, 1, "duplicate domain `a`");
}

#[test]
fn unknown_domain_in_field() {
    let xml = spec(
        r#"<class name="tx" index="90"><method name="select" index="10"><chassis name="server"/>
  <field name="a" domain="nope"/>
</method></class>"#,
    );
    assert_error(&xml, 3, 27, "unknown domain or type `nope`");
}

#[test]
fn unknown_type_in_domain() {
    let xml = spec(&format!("<domain name=\"a\" type=\"int\"/>\n{TX}"));
    assert_error(&xml, 2, 24, "domain `a` has unknown type `int`");
}

#[test]
fn domain_cycle() {
    let xml = spec(&format!(
        "<domain name=\"a\" type=\"b\"/>\n<domain name=\"b\" type=\"c\"/>\n<domain name=\"c\" type=\"b\"/>\n{TX}"
    ));
    assert_error(&xml, 2, 24, "domain cycle: a -> b -> c -> b");
}

#[test]
fn domain_shadowing_a_primitive() {
    let xml = spec(&format!("<domain name=\"octet\" type=\"short\"/>\n{TX}"));
    assert_error(
        &xml,
        2,
        28,
        "domain `octet` shadows the primitive `octet` but resolves to `short`",
    );
}

#[test]
fn domain_chains_resolve() {
    let xml = spec(
        r#"<domain name="octet" type="octet"/>
<domain name="name" type="shortstr"/>
<domain name="queue-name" type="name"/>
<class name="tx" index="90"><method name="select" index="10"><chassis name="server"/>
  <field name="queue" domain="queue-name"/>
  <field name="o" domain="octet"/>
</method></class>"#,
    );
    let s = parse(&xml).unwrap();
    let tys: Vec<_> = s.classes[0].methods[0].fields.iter().map(|f| f.ty).collect();
    use warren_codegen::model::Type;
    assert_eq!(tys, [Type::ShortStr, Type::Octet]);
}

#[test]
fn field_needs_exactly_one_of_domain_and_type() {
    let both = spec(
        r#"<class name="tx" index="90"><method name="select" index="10"><chassis name="server"/>
  <field name="a" domain="short" type="short"/></method></class>"#,
    );
    assert_error(&both, 3, 3, "field `a` has both `domain` and `type`");
    let neither = spec(
        r#"<class name="tx" index="90"><method name="select" index="10"><chassis name="server"/>
  <field name="a"/></method></class>"#,
    );
    assert_error(&neither, 3, 3, "field `a` needs a `domain` or `type` attribute");
}

#[test]
fn reserved_field_must_name_its_primitive() {
    let xml = spec(
        r#"<domain name="flag" type="bit"/>
<class name="tx" index="90"><method name="select" index="10"><chassis name="server"/>
  <field name="reserved-1" domain="flag" reserved="1"/></method></class>"#,
    );
    assert_error(
        &xml,
        4,
        36,
        "reserved field `reserved-1` must give its primitive as `type=\"bit\"`",
    );
}

#[test]
fn response_to_unknown_method() {
    let xml = spec(
        r#"<class name="tx" index="90"><method name="select" index="10" synchronous="1"><chassis name="server"/>
  <response name="select-ok"/>
</method></class>"#,
    );
    assert_error(
        &xml,
        3,
        3,
        "response `select-ok` of `tx.select` is not a method of class `tx`",
    );
}

#[test]
fn response_on_asynchronous_method() {
    let xml = spec(
        r#"<class name="tx" index="90"><method name="select" index="10"><chassis name="server"/>
  <response name="select"/>
</method></class>"#,
    );
    assert_error(&xml, 3, 3, "has a <response> but is not synchronous");
}

#[test]
fn bad_chassis() {
    let xml = spec(
        r#"<class name="tx" index="90"><method name="select" index="10"><chassis name="broker"/></method></class>"#,
    );
    assert_error(&xml, 2, 77, "chassis must be \"client\" or \"server\", not `broker`");
}

#[test]
fn method_without_chassis() {
    let xml = spec(r#"<class name="tx" index="90"><method name="select" index="10"/></class>"#);
    assert_error(&xml, 2, 29, "method `tx.select` has no <chassis");
}

#[test]
fn bad_constant_class() {
    let xml = spec(&format!("<constant name=\"oops\" value=\"1\" class=\"soft\"/>\n{TX}"));
    assert_error(&xml, 2, 40, "constant class must be \"soft-error\" or \"hard-error\"");
}

#[test]
fn reply_code_too_big() {
    let xml = spec(&format!(
        "<constant name=\"huge\" value=\"70000\" class=\"hard-error\"/>\n{TX}"
    ));
    assert_error(&xml, 2, 1, "reply code `huge` = 70000 does not fit 16 bits");
}

#[test]
fn duplicate_reply_code_value() {
    let xml = spec(&format!(
        "<constant name=\"a\" value=\"404\" class=\"soft-error\"/>\n<constant name=\"b\" value=\"404\" class=\"hard-error\"/>\n{TX}"
    ));
    assert_error(&xml, 3, 1, "duplicate reply code value 404 (`b`)");
}

#[test]
fn reply_success_cannot_be_an_error() {
    let xml = spec(&format!(
        "<constant name=\"reply-success\" value=\"200\" class=\"soft-error\"/>\n{TX}"
    ));
    assert_error(&xml, 2, 1, "`reply-success` cannot be an error");
}

#[test]
fn constant_clashing_with_generated_constant() {
    let xml = spec(&format!("<constant name=\"default-port\" value=\"1\"/>\n{TX}"));
    assert_error(
        &xml,
        2,
        1,
        "constant `default-port` clashes with the generated `DEFAULT_PORT`",
    );
}

/// `basic` with `n` shortstr properties, plus a content method.
fn basic_with_properties(n: usize) -> String {
    let props: String = (0..n)
        .map(|k| format!("<field name=\"p{k}\" type=\"shortstr\"/>\n"))
        .collect();
    spec(&format!(
        "<class name=\"basic\" index=\"60\">\n{props}<method name=\"deliver\" index=\"60\" content=\"1\"><chassis name=\"client\"/></method></class>"
    ))
}

#[test]
fn fifteen_properties_fit_sixteen_do_not() {
    parse(&basic_with_properties(15)).unwrap();
    // Line 2 opens the class, properties start on line 3.
    assert_error(
        &basic_with_properties(16),
        18,
        1,
        "class `basic` has more than 15 content properties",
    );
}

#[test]
fn reserved_or_bit_property() {
    let reserved = spec(
        r#"<class name="basic" index="60"><field name="reserved-1" type="shortstr" reserved="1"/>
<method name="deliver" index="60"><chassis name="client"/></method></class>"#,
    );
    assert_error(&reserved, 2, 32, "content property `reserved-1` cannot be reserved");
    let bit = spec(
        r#"<class name="basic" index="60"><field name="flag" type="bit"/>
<method name="deliver" index="60"><chassis name="client"/></method></class>"#,
    );
    assert_error(&bit, 2, 32, "content property `flag` cannot be a bit");
}

#[test]
fn content_without_properties() {
    let xml = spec(
        r#"<class name="tx" index="90"><method name="select" index="10" content="1"><chassis name="server"/></method></class>"#,
    );
    assert_error(
        &xml,
        2,
        29,
        "method `tx.select` carries content but class `tx` has no content properties",
    );
}

#[test]
fn field_clashing_with_decoder_local() {
    let xml = spec(
        r#"<class name="tx" index="90"><method name="select" index="10"><chassis name="server"/>
  <field name="i" type="short"/></method></class>"#,
    );
    assert_error(
        &xml,
        3,
        3,
        "field `i` in method `tx.select` clashes with a local of the generated decoder",
    );
}

#[test]
fn fields_mapping_to_one_rust_name() {
    let xml = spec(
        r#"<class name="tx" index="90"><method name="select" index="10"><chassis name="server"/>
  <field name="kind" type="short"/>
  <field name="type" type="short"/></method></class>"#,
    );
    assert_error(&xml, 4, 3, "duplicate Rust field name `kind` in method `tx.select`");
}

#[test]
fn generated_type_names_clash() {
    // `wire` + `error` is `WireError`, a type the generated code uses.
    let xml = spec(
        r#"<class name="wire" index="1"><method name="error" index="1"><chassis name="server"/></method></class>"#,
    );
    assert_error(&xml, 2, 30, "generated type name `WireError` clashes");
    // `basic.properties` would collide with `BasicProperties`.
    let xml = spec(
        r#"<class name="basic" index="60"><field name="content-type" type="shortstr"/>
<method name="properties" index="1"><chassis name="server"/></method></class>"#,
    );
    assert_error(&xml, 3, 1, "duplicate generated type name `BasicProperties`");
    // `a-b` + `c` and `a` + `b-c` are both `ABC`.
    let xml = spec(
        r#"<class name="a-b" index="1"><method name="c" index="1"><chassis name="server"/></method></class>
<class name="a" index="2"><method name="b-c" index="1"><chassis name="server"/></method></class>"#,
    );
    assert_error(&xml, 3, 27, "duplicate generated type name `ABC`");
}

#[test]
fn spec_without_methods() {
    assert_error(&spec(""), 1, 1, "the spec defines no methods");
}
