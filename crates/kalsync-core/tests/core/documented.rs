//! The rules files the README and `examples/rules/` show are valid, and say what they claim.

use kalsync_core::{InstanceSettings, Template};

const README: &str = include_str!("../../../../README.md");

fn toml_blocks(markdown: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in markdown.lines() {
        match (&mut current, line.trim()) {
            (None, "```toml") => current = Some(String::new()),
            (Some(block), "```") => {
                blocks.push(std::mem::take(block));
                current = None;
            }
            (Some(block), _) => {
                block.push_str(line);
                block.push('\n');
            }
            (None, _) => {}
        }
    }
    blocks
}

#[test]
fn every_toml_block_in_the_readme_is_a_valid_rules_file() {
    let blocks = toml_blocks(README);
    assert!(blocks.len() >= 4, "the README shows rules examples");
    for block in blocks {
        if let Err(e) = InstanceSettings::from_toml(&block) {
            panic!(
                "README block does not parse: {}\n{block}",
                e.located("README.md", &block)
            );
        }
    }
}

#[test]
fn the_example_files_equal_the_templates_they_name() {
    let files = [
        (
            include_str!("../../../../examples/rules/showas-info.toml"),
            Template::ShowasInfo,
        ),
        (
            include_str!("../../../../examples/rules/showas-divert.toml"),
            Template::ShowasDivert,
        ),
        (
            include_str!("../../../../examples/rules/prefix.toml"),
            Template::Prefix,
        ),
        (
            include_str!("../../../../examples/rules/prefix-then-showas.toml"),
            Template::PrefixThenShowas,
        ),
    ];
    for (text, template) in files {
        let settings = InstanceSettings::from_toml(text).expect("example parses");
        let reasons: Vec<_> = settings
            .rules
            .iter()
            .map(|r| (r.reason.clone(), r.mode, r.when.clone()))
            .collect();
        let expected: Vec<_> = InstanceSettings::with_template(template)
            .rules
            .iter()
            .map(|r| (r.reason.clone(), r.mode, r.when.clone()))
            .collect();
        assert_eq!(reasons, expected, "{template}");
    }
}
