use super::*;

const MINIMAL: &str = "Metadata-Version: 2.1\nName: Shared_Pkg\nVersion: 1.0.0\n";

fn parse(text: &str) -> CoreMetadata {
    CoreMetadata::parse(text.as_bytes()).unwrap_or_else(|e| panic!("{e}\n---\n{text}"))
}

fn refuse(text: &str) -> MetadataError {
    match CoreMetadata::parse(text.as_bytes()) {
        Ok(parsed) => panic!("accepted: {parsed:?}\n---\n{text}"),
        Err(e) => e,
    }
}

#[test]
fn minimal_metadata() {
    let m = parse(MINIMAL);
    assert_eq!(m.metadata_version, "2.1");
    assert_eq!(m.name, "Shared_Pkg");
    assert_eq!(m.project_name().as_str(), "shared-pkg");
    assert_eq!(m.version_raw, "1.0.0");
    assert_eq!(m.version, parse_version("1").unwrap());
    assert_eq!(m.summary, None);
    assert_eq!(m.description, None);
    assert!(m.requires_dist.is_empty());
}

#[test]
fn full_metadata() {
    let text = "Metadata-Version: 2.4\n\
        Name: demo\n\
        Version: 2.0rc1\n\
        Summary: A demo package\n\
        Keywords: a,b,c\n\
        Author: Zoë\n\
        Author-email: Zoë <zoe@example.com>\n\
        Maintainer: M\n\
        Maintainer-email: m@example.com\n\
        Home-page: https://example.com\n\
        Download-URL: https://example.com/dl\n\
        License-Expression: MIT OR Apache-2.0\n\
        License-File: LICENSE\n\
        License-File: licenses/NOTICE\n\
        Classifier: Private :: Do Not Upload\n\
        Classifier: Programming Language :: Python :: 3\n\
        Project-URL: Source, https://example.com/src\n\
        Requires-Python: >=3.9\n\
        Requires-Dist: requests>=2\n\
        Requires-Dist: pytest; extra == \"test\"\n\
        Provides-Extra: test\n\
        Description-Content-Type: text/markdown; charset=UTF-8; variant=GFM\n\
        \n\
        # Demo\n\nHello.\n";
    let m = parse(text);
    assert_eq!(m.summary.as_deref(), Some("A demo package"));
    assert_eq!(m.keywords.as_deref(), Some("a,b,c"));
    assert_eq!(m.author.as_deref(), Some("Zoë"));
    assert_eq!(m.author_email.as_deref(), Some("Zoë <zoe@example.com>"));
    assert_eq!(m.maintainer.as_deref(), Some("M"));
    assert_eq!(m.maintainer_email.as_deref(), Some("m@example.com"));
    assert_eq!(m.home_page.as_deref(), Some("https://example.com"));
    assert_eq!(m.download_url.as_deref(), Some("https://example.com/dl"));
    assert_eq!(m.license_expression.as_deref(), Some("MIT OR Apache-2.0"));
    assert_eq!(m.license_files, ["LICENSE", "licenses/NOTICE"]);
    assert_eq!(m.classifiers.len(), 2);
    assert_eq!(m.project_urls, ["Source, https://example.com/src"]);
    assert_eq!(m.requires_python.as_deref(), Some(">=3.9"));
    assert_eq!(
        m.requires_dist,
        ["requests>=2", "pytest; extra == \"test\""]
    );
    assert_eq!(m.provides_extra, ["test"]);
    assert_eq!(
        m.description_content_type.as_deref(),
        Some("text/markdown; charset=UTF-8; variant=GFM")
    );
    assert_eq!(m.description.as_deref(), Some("# Demo\n\nHello.\n"));
    assert_eq!(m.metadata_version_number(), Some((2, 4)));
}

#[test]
fn folded_headers_are_unfolded() {
    let m = parse(&format!(
        "{MINIMAL}Requires-Dist: requests\n  >=2.0\nKeywords: one,\n\ttwo\nLicense: line one\n        line two\n"
    ));
    assert_eq!(m.requires_dist, ["requests >=2.0"]);
    assert_eq!(m.keywords.as_deref(), Some("one, two"));
    assert_eq!(m.license.as_deref(), Some("line one\nline two"));
}

#[test]
fn repeated_requires_dist_keep_their_order() {
    let m = parse(&format!(
        "{MINIMAL}Requires-Dist: b\nRequires-Dist: a>=1\nrequires-dist: c[x]; python_version < '3.11'\n"
    ));
    assert_eq!(
        m.requires_dist,
        ["b", "a>=1", "c[x]; python_version < '3.11'"]
    );
}

#[test]
fn body_is_the_description() {
    let m = parse(&format!(
        "{MINIMAL}Description: ignored\n\nThe body\n\n  indented\n"
    ));
    assert_eq!(m.description.as_deref(), Some("The body\n\n  indented\n"));
}

#[test]
fn crlf_body() {
    let m = parse("Metadata-Version: 2.1\r\nName: a\r\nVersion: 1\r\n\r\nBody\r\n");
    assert_eq!(m.name, "a");
    assert_eq!(m.description.as_deref(), Some("Body\r\n"));
}

#[test]
fn legacy_description_header() {
    let m = parse(&format!(
        "{MINIMAL}Description: Title\n        =====\n        \n        Text with\n       |  indent\nClassifier: X\n"
    ));
    assert_eq!(
        m.description.as_deref(),
        Some("Title\n=====\n\nText with\n  indent")
    );
    assert_eq!(m.classifiers, ["X"]);
}

#[test]
fn blank_body_falls_back_to_the_header() {
    let m = parse(&format!("{MINIMAL}Description: short\n\n \n\n"));
    assert_eq!(m.description.as_deref(), Some("short"));
}

#[test]
fn every_1x_and_2x_metadata_version_is_accepted() {
    for version in [
        "1.0", "1.1", "1.2", "2.0", "2.1", "2.2", "2.3", "2.4", "2.5", "2.6", "2.99",
    ] {
        let m = parse(&format!(
            "Metadata-Version: {version}\nName: a\nVersion: 1\n"
        ));
        assert_eq!(m.metadata_version, version);
    }
}

#[test]
fn metadata_version_3_is_refused() {
    let e = refuse("Metadata-Version: 3.0\nName: a\nVersion: 1\n");
    assert_eq!(e.field(), Some("Metadata-Version"));
    assert!(
        e.to_string()
            .starts_with("Invalid core metadata: Metadata-Version 3.0 is not supported"),
        "{e}"
    );
}

#[test]
fn malformed_metadata_versions_are_refused() {
    for version in ["2", "two", "0.9", "2.x", "2.1.1", "-2.1", "99999999999.0"] {
        let e = refuse(&format!(
            "Metadata-Version: {version}\nName: a\nVersion: 1\n"
        ));
        assert_eq!(e.field(), Some("Metadata-Version"), "{version}: {e}");
    }
}

#[test]
fn required_fields_are_checked_in_order() {
    assert_eq!(
        refuse("Name: a\nVersion: 1\n").field(),
        Some("Metadata-Version")
    );
    assert_eq!(
        refuse("Metadata-Version: 2.1\nVersion: 1\n").field(),
        Some("Name")
    );
    assert_eq!(
        refuse("Metadata-Version: 2.1\nName: a\n").field(),
        Some("Version")
    );
    assert_eq!(
        refuse("Metadata-Version: 2.1\nName: a\nVersion:\n").field(),
        Some("Version")
    );
    let e = refuse("Metadata-Version: 2.1\nName: bad name\nVersion: nope\n");
    assert_eq!(e.field(), Some("Name"));
    assert!(e.reason().contains("not a valid project name"), "{e}");
    let e = refuse("Metadata-Version: 2.1\nName: ok\nVersion: nope\n");
    assert_eq!(
        e.to_string(),
        "Invalid core metadata: Version 'nope' is not a valid PEP 440 version; use a version \
         such as 1.0, 2.1.3 or 1.0rc1"
    );
    assert!(
        refuse("")
            .reason()
            .contains("'Metadata-Version' is missing")
    );
}

#[test]
fn duplicate_single_fields_are_refused() {
    let e = refuse("Metadata-Version: 2.1\nName: a\nName: b\nVersion: 1\n");
    assert_eq!(e.field(), Some("Name"));
    assert!(e.reason().contains("more than once"));
}

#[test]
fn bad_requires_python_is_refused() {
    let e = refuse(&format!("{MINIMAL}Requires-Python: >=3.x\n"));
    assert_eq!(e.field(), Some("Requires-Python"));
    assert!(e.reason().contains("'>=3.x'"), "{e}");
    let m = parse(&format!("{MINIMAL}Requires-Python: >=3.8, <4\n"));
    assert_eq!(m.requires_python.as_deref(), Some(">=3.8, <4"));
}

#[test]
fn bad_requires_dist_is_refused() {
    let e = refuse(&format!(
        "{MINIMAL}Requires-Dist: requests\nRequires-Dist: foo >>> 1\n"
    ));
    assert_eq!(e.field(), Some("Requires-Dist"));
    assert!(
        e.reason()
            .starts_with("Requires-Dist 'foo >>> 1' is not a valid PEP 508"),
        "{e}"
    );
    assert!(!e.to_string().contains('\n'), "{e}");
}

#[test]
fn direct_references_are_allowed() {
    let m = parse(&format!(
        "{MINIMAL}Requires-Dist: foo @ https://example.com/foo.whl\n"
    ));
    assert_eq!(m.requires_dist.len(), 1);
}

#[test]
fn dynamic_identity_fields_are_refused() {
    for field in ["Name", "version", "Metadata-Version"] {
        let e = refuse(&format!("{MINIMAL}Dynamic: {field}\n"));
        assert_eq!(e.field(), Some("Dynamic"), "{field}");
    }
    let m = parse(&format!("{MINIMAL}Dynamic: Requires-Dist\n"));
    assert_eq!(m.dynamic, ["Requires-Dist"]);
}

#[test]
fn unknown_and_empty_values_are_absent() {
    let m = parse(&format!(
        "{MINIMAL}Summary: UNKNOWN\nHome-page: UNKNOWN\nLicense: UNKNOWN\nAuthor:\nPlatform: UNKNOWN\nClassifier: UNKNOWN\nDescription: UNKNOWN\n"
    ));
    assert_eq!(m.summary, None);
    assert_eq!(m.home_page, None);
    assert_eq!(m.license, None);
    assert_eq!(m.author, None);
    assert_eq!(m.description, None);
    assert!(m.classifiers.is_empty());
}

#[test]
fn folded_summary_is_refused() {
    let e = refuse(&format!("{MINIMAL}Summary: one\n  two\n"));
    assert_eq!(e.field(), Some("Summary"));
    assert!(e.reason().contains("single line"));
}

#[test]
fn non_utf8_is_refused() {
    let mut bytes = MINIMAL.as_bytes().to_vec();
    bytes.extend_from_slice(b"Author: Zo\xeb\n");
    let e = CoreMetadata::parse(&bytes).unwrap_err();
    assert!(e.reason().contains("not valid UTF-8"), "{e}");
}

#[test]
fn byte_order_mark_is_ignored() {
    let m = parse(&format!("\u{feff}{MINIMAL}"));
    assert_eq!(m.metadata_version, "2.1");
}

#[test]
fn reliable_for_sdist() {
    assert!(!parse(MINIMAL).is_reliable_for_sdist());
    let base = "Metadata-Version: 2.2\nName: a\nVersion: 1\n";
    assert!(parse(base).is_reliable_for_sdist());
    assert!(!parse(&format!("{base}Dynamic: Classifier\n")).is_reliable_for_sdist());
    assert!(parse("Metadata-Version: 2.10\nName: a\nVersion: 1\n").is_reliable_for_sdist());
}

mod properties {
    use super::super::*;
    use proptest::prelude::*;

    fn field_line() -> impl Strategy<Value = String> {
        let key = prop_oneof![
            Just("Metadata-Version"),
            Just("Name"),
            Just("Version"),
            Just("Summary"),
            Just("Requires-Dist"),
            Just("Requires-Python"),
            Just("Dynamic"),
            Just("Description"),
            Just("License"),
        ];
        (key, ".{0,40}", proptest::bool::ANY).prop_map(|(key, value, folded)| {
            if folded {
                format!("{key}: {value}\n        {value}\n")
            } else {
                format!("{key}: {value}\n")
            }
        })
    }

    proptest! {
        #[test]
        fn never_panics_on_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = CoreMetadata::parse(&bytes);
        }

        #[test]
        fn never_panics_on_text(text in any::<String>()) {
            let _ = CoreMetadata::parse(text.as_bytes());
        }

        #[test]
        fn never_panics_on_header_shaped_input(
            lines in proptest::collection::vec(field_line(), 0..12),
            body in ".{0,60}",
        ) {
            let text = format!("{}\n{body}", lines.concat());
            if let Ok(m) = CoreMetadata::parse(text.as_bytes()) {
                let _ = m.project_name();
                let _ = m.is_reliable_for_sdist();
            }
        }

        #[test]
        fn arbitrary_requirements_never_panic(value in ".{0,80}") {
            let _ = CoreMetadata::parse(
                format!("Metadata-Version: 2.1\nName: a\nVersion: 1\nRequires-Dist: {value}\nRequires-Python: {value}\n").as_bytes(),
            );
        }

        #[test]
        fn well_formed_metadata_round_trips(
            name in "[A-Za-z0-9]([A-Za-z0-9._-]{0,20}[A-Za-z0-9])?",
            version in "[0-9]{1,3}(\\.[0-9]{1,3}){0,3}",
            summary in "[A-Za-z0-9][A-Za-z0-9 ,.]{0,40}[A-Za-z0-9]",
            deps in proptest::collection::vec("[a-z]([a-z0-9_]{0,8}[a-z0-9])?( ?>= ?[0-9]\\.[0-9])?", 0..4),
        ) {
            let mut text = format!("Metadata-Version: 2.3\nName: {name}\nVersion: {version}\nSummary: {summary}\n");
            for dep in &deps {
                text.push_str(&format!("Requires-Dist: {dep}\n"));
            }
            let m = CoreMetadata::parse(text.as_bytes()).unwrap();
            prop_assert_eq!(&m.name, &name);
            prop_assert_eq!(&m.version_raw, &version);
            prop_assert_eq!(m.summary.as_deref(), Some(summary.as_str()));
            prop_assert_eq!(&m.requires_dist, &deps);
            prop_assert_eq!(m.project_name(), ProjectName::new(&name).unwrap());
        }
    }
}
